"""Ingest and retrieval through the HTTP API against a real S3 server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import unicodedata

import pytest

from tests.conftest import CORPUS, all_keys

TEXT_UTF8 = "text/plain; charset=utf-8"


async def post_text(client, body: bytes, content_type: str = TEXT_UTF8, **headers):  # type: ignore[no-untyped-def]
    return await client.post(
        "/v1/documents", data=body, headers={"Content-Type": content_type, **headers}
    )


async def fetch_original(client, document_id: str):  # type: ignore[no-untyped-def]
    response = await client.get(f"/v1/documents/{document_id}/original")
    assert response.status == 200
    return response, await response.read()


ROUND_TRIPS = {
    "utf-8": ("Café “quoted” — done…\n".encode(), TEXT_UTF8),
    "windows-1252": (b"Caf\xe9 \x93quoted\x94 \x97 done\x85\n", "text/plain; charset=windows-1252"),
    "iso-8859-1": (b"Gr\xfc\xdfe aus K\xf6ln\n", "text/plain; charset=ISO-8859-1"),
    "crlf": (b"First paragraph.\r\n\r\nSecond paragraph.\r\n", TEXT_UTF8),
    "nfd": (unicodedata.normalize("NFD", "Crème brûlée à São Paulo").encode(), TEXT_UTF8),
    "non-bmp": ("Emoji 🇺🇦 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and 👩‍👩‍👧".encode(), TEXT_UTF8),
    "bom": (b"\xef\xbb\xbfWith a byte order mark", TEXT_UTF8),
    "no-charset": (b"Plain ASCII without a charset parameter", "text/plain"),
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
async def test_original_round_trips_byte_exact(client, name: str) -> None:
    body, content_type = ROUND_TRIPS[name]
    created = await post_text(client, body, content_type)
    assert created.status == 201, await created.text()
    receipt = await created.json()
    assert receipt["original"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert receipt["original"]["size"] == len(body)
    assert created.headers["Location"] == f"/v1/documents/{receipt['id']}"

    response, original = await fetch_original(client, receipt["id"])
    assert original == body
    expected_type = content_type.lower() if "charset" in content_type else TEXT_UTF8
    assert response.headers["Content-Type"] == expected_type
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert response.headers["Repr-Digest"] == f"sha-256=:{digest}:"


async def test_record_text_is_decoded_nfc_with_paragraphs_on_blank_lines(client) -> None:
    body = "Cre\u0300me\r\nbru\u0302le\u0301e\rend".encode("utf-8")
    receipt = await (await post_text(client, body)).json()
    record = await (await client.get(f"/v1/documents/{receipt['id']}")).json()
    assert record["text"] == "Crème\n\nbrûlée\n\nend"
    assert unicodedata.is_normalized("NFC", record["text"])


async def test_windows_1252_is_decoded_into_the_record(client) -> None:
    body = b"\x93Smart quotes\x94 \x96 and \x80 signs"
    response = await post_text(client, body, "text/plain; charset=windows-1252")
    record = await (await client.get(f"/v1/documents/{(await response.json())['id']}")).json()
    assert record["text"] == "“Smart quotes” – and € signs"
    assert record["original"]["charset"] == "windows-1252"
    assert record["original"]["media_type"] == "text/plain; charset=windows-1252"


async def test_four_megabyte_article_round_trips(client) -> None:
    paragraph = "Ein Absatz mit Umlauten äöü und “Zitaten” — und Emoji 🙂.\n\n"
    body = (paragraph * (4 * 1024 * 1024 // len(paragraph.encode()) + 1)).encode()[:4_000_000]
    body = body.decode("utf-8", "ignore").encode()  # cut on a character boundary
    created = await post_text(client, body)
    assert created.status == 201
    _, original = await fetch_original(client, (await created.json())["id"])
    assert original == body


async def test_json_post_stores_source_and_metadata_verbatim(client) -> None:
    source = {
        "url": "https://example.org/a",
        "title": "A title",
        "authors": ["Ann Author", "Bo Byline"],
        "publisher": "Example Post",
        "published_at": "Tuesday, 3 March 2026 (updated)",
        "language": "en",
        "external_id": "ex-42",
    }
    metadata = {"desk": "metro", "tags": ["a", "b"], "nested": {"n": 1.5, "ok": True}}
    response = await client.post(
        "/v1/documents", json={"text": "Body text.", "source": source, "metadata": metadata}
    )
    assert response.status == 201
    record = await (await client.get(f"/v1/documents/{(await response.json())['id']}")).json()
    assert record["source"] == source
    assert record["metadata"] == metadata
    assert record["schema"] == "vellum.article/1"
    assert record["version"] == 1
    provenance = record["provenance"]
    assert provenance["channel"] == "http"
    assert provenance["request_id"] == response.headers["X-Request-ID"]
    assert provenance["received_at"].endswith("Z")
    assert provenance["software"]["name"] == "vellum"
    assert provenance["derived_from"]["original_sha256"] == record["original"]["sha256"]


async def test_record_fields_are_always_present(client) -> None:
    response = await post_text(client, b"Just text.")
    record = await (await client.get(f"/v1/documents/{(await response.json())['id']}")).json()
    assert record["source"] == {
        "url": None,
        "title": None,
        "authors": None,
        "publisher": None,
        "published_at": None,
        "language": None,
        "external_id": None,
    }
    assert record["metadata"] is None
    assert record["provenance"]["import_job"] is None


async def test_text_plain_and_json_without_source_give_the_same_document(client) -> None:
    text = "Same article, two ways in. “Quoted.”"
    first = await post_text(client, text.encode())
    second = await client.post("/v1/documents", json={"text": text})
    assert first.status == 201
    assert second.status == 200
    assert (await first.json())["id"] == (await second.json())["id"]


async def test_a_different_source_is_a_different_document(client) -> None:
    text = "One text, two asserted sources."
    first = await client.post("/v1/documents", json={"text": text, "source": {"url": "a"}})
    second = await client.post("/v1/documents", json={"text": text, "source": {"url": "b"}})
    assert first.status == second.status == 201
    assert (await first.json())["id"] != (await second.json())["id"]


async def test_the_same_bytes_in_another_charset_are_another_document(client) -> None:
    body = b"caf\xc3\xa9"  # "café" in UTF-8, "cafÃ©" in windows-1252
    as_utf8 = await post_text(client, body)
    as_1252 = await post_text(client, body, "text/plain; charset=windows-1252")
    assert as_utf8.status == as_1252.status == 201
    assert (await as_utf8.json())["id"] != (await as_1252.json())["id"]


async def test_duplicate_post_answers_200_with_the_same_body(client, store) -> None:
    first = await post_text(client, b"Posted twice.")
    keys_after_first = await all_keys(store)
    second = await post_text(client, b"Posted twice.")
    assert (first.status, second.status) == (201, 200)
    assert await first.json() == await second.json()
    assert await all_keys(store) == keys_after_first


async def test_concurrent_identical_posts_make_one_document(client, store) -> None:
    body = b"Twenty clients send this at once."
    responses = await asyncio.gather(*(post_text(client, body) for _ in range(20)))
    statuses = sorted(response.status for response in responses)
    assert statuses == [200] * 19 + [201]
    ids = {(await response.json())["id"] for response in responses}
    assert len(ids) == 1
    keys = await all_keys(store)
    assert [key.rsplit("/", 1)[1] for key in keys if key.startswith("records/")] == [
        "000000001.json",
        "latest.json",
    ]
    assert len([key for key in keys if key.startswith("originals/")]) == 1


async def test_get_record_etag_and_304(client) -> None:
    receipt = await (await post_text(client, b"Cache me.")).json()
    url = f"/v1/documents/{receipt['id']}"
    first = await client.get(url)
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert first.headers["Cache-Control"] == "no-cache"
    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.headers["ETag"] == etag
    other = await client.get(url, headers={"If-None-Match": '"something-else"'})
    assert other.status == 200


async def test_get_record_by_version(client) -> None:
    receipt = await (await post_text(client, b"Versioned.")).json()
    response = await client.get(f"/v1/documents/{receipt['id']}", params={"version": "1"})
    assert response.status == 200
    assert (await response.json())["version"] == 1
    assert "immutable" in response.headers["Cache-Control"]
    missing = await client.get(f"/v1/documents/{receipt['id']}", params={"version": "2"})
    assert missing.status == 404
    assert (await missing.json())["type"] == "/problems/version-not-found"


async def test_content_digest_that_matches_is_accepted(client) -> None:
    body = b"Checked on arrival."
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    response = await post_text(client, body, **{"Content-Digest": f"sha-256=:{digest}:"})
    assert response.status == 201
    json_body = json.dumps({"text": "Checked JSON."}).encode()
    digest = base64.b64encode(hashlib.sha512(json_body).digest()).decode()
    response = await client.post(
        "/v1/documents",
        data=json_body,
        headers={"Content-Type": "application/json", "Content-Digest": f"sha-512=:{digest}:"},
    )
    assert response.status == 201


async def test_request_id_is_echoed_or_generated(client) -> None:
    mine = await client.get("/healthz", headers={"X-Request-ID": "trace-42:a.b_c-d"})
    assert mine.headers["X-Request-ID"] == "trace-42:a.b_c-d"
    bad = await client.get("/healthz", headers={"X-Request-ID": "has spaces/and slashes"})
    assert bad.headers["X-Request-ID"] not in ("", "has spaces/and slashes")
    too_long = await client.get("/healthz", headers={"X-Request-ID": "a" * 129})
    assert too_long.headers["X-Request-ID"] != "a" * 129


async def test_health_and_readiness(client) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["status"] == "ok"


def corpus_articles() -> list[dict[str, str]]:
    path = CORPUS / "articles.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.mark.skipif(not corpus_articles(), reason="shared article corpus not present")
async def test_every_corpus_article_round_trips(client) -> None:
    for article in corpus_articles():
        body = article["text"].encode("utf-8")
        created = await post_text(client, body)
        assert created.status == 201, article["id"]
        document_id = (await created.json())["id"]
        _, original = await fetch_original(client, document_id)
        assert original == body, article["id"]
        record = await (await client.get(f"/v1/documents/{document_id}")).json()
        expected = "".join(unicodedata.normalize("NFC", article["text"]).split())
        assert "".join(record["text"].split()) == expected, article["id"]


async def test_a_retry_of_the_request_that_created_a_document_is_told_created(client) -> None:  # type: ignore[no-untyped-def]
    """A PUT that committed before a timeout, retried with the same request id, used to
    get 200 "duplicate" although that very request created the document."""
    headers = {"Content-Type": "text/plain", "X-Request-ID": "retry-after-timeout-1"}
    first = await client.post("/v1/documents", data=b"Committed, answer lost.", headers=headers)
    retry = await client.post("/v1/documents", data=b"Committed, answer lost.", headers=headers)
    assert (first.status, retry.status) == (201, 201)
    assert (await first.json())["id"] == (await retry.json())["id"]
    other = {"Content-Type": "text/plain", "X-Request-ID": "another-request"}
    duplicate = await client.post("/v1/documents", data=b"Committed, answer lost.", headers=other)
    assert duplicate.status == 200
    anonymous = await client.post(
        "/v1/documents", data=b"Committed, answer lost.", headers={"Content-Type": "text/plain"}
    )
    assert anonymous.status == 200
