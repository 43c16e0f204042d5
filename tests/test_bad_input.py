"""Every bad input of SPEC §4: its status and problem type, and nothing stored."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import msgspec
import pytest

from tests.conftest import all_keys

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
VALID_ID = "a" * 32


def sha256_field(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


# name: (body, content type, extra headers, status, problem slug, expected extension members)
POSTS: dict[str, tuple[bytes, str | None, dict[str, str], int, str, dict[str, Any]]] = {
    "empty text/plain": (b"", TEXT, {}, 422, "invalid-document", {"field": "text"}),
    "whitespace text/plain": (" \r\n\t\u3000 ".encode(), TEXT, {}, 422, "invalid-document", {"field": "text"}),
    "empty JSON text": (b'{"text": ""}', JSON, {}, 422, "invalid-document", {"field": "text"}),
    "whitespace JSON text": (b'{"text": " \\n\\t "}', JSON, {}, 422, "invalid-document", {"field": "text"}),
    "missing text": (b'{"body": "x"}', JSON, {}, 422, "unknown-field", {"field": "body"}),
    "missing text, empty object": (b"{}", JSON, {}, 422, "invalid-document", {"field": "text"}),
    "text is a number": (b'{"text": 42}', JSON, {}, 422, "invalid-document", {"field": "text"}),
    "text is null": (b'{"text": null}', JSON, {}, 422, "invalid-document", {"field": "text"}),
    "text is a list": (b'{"text": ["a"]}', JSON, {}, 422, "invalid-document", {"field": "text"}),
    "body is an array": (b'["text"]', JSON, {}, 422, "invalid-document", {"field": None}),
    "body is a string": (b'"text"', JSON, {}, 422, "invalid-document", {"field": None}),
    "unknown top-level field": (b'{"text": "a", "extra": 1}', JSON, {}, 422, "unknown-field", {"field": "extra"}),
    "unknown source field": (b'{"text": "a", "source": {"author": "x"}}', JSON, {}, 422, "unknown-field", {"field": "source.author"}),
    "source not an object": (b'{"text": "a", "source": "x"}', JSON, {}, 422, "invalid-document", {"field": "source"}),
    "authors not strings": (b'{"text": "a", "source": {"authors": [1]}}', JSON, {}, 422, "invalid-document", {"field": "source.authors[0]"}),
    "metadata not an object": (b'{"text": "a", "metadata": [1]}', JSON, {}, 422, "invalid-document", {"field": "metadata"}),
    "invalid UTF-8 text/plain": (b"caf\xe9 au lait", TEXT, {}, 400, "invalid-encoding", {"position": 3}),
    "invalid UTF-8 in JSON": (b'{"text": "caf\xe9"}', JSON, {}, 400, "invalid-encoding", {"position": 13}),
    "undefined windows-1252 byte": (b"ok \x81 not", "text/plain; charset=windows-1252", {}, 400, "invalid-encoding", {"position": 3}),
    "unknown charset": (b"text", "text/plain; charset=klingon-8", {}, 415, "unknown-charset", {}),
    "codec that is no charset": (b"text", "text/plain; charset=rot13", {}, 415, "unknown-charset", {}),
    "utf-7 refused": (b"text", "text/plain; charset=utf-7", {}, 415, "unknown-charset", {}),
    "JSON in latin-1": (b'{"text": "a"}', "application/json; charset=latin-1", {}, 415, "unknown-charset", {}),
    "unsupported media type": (b"<p>a</p>", "text/html", {}, 415, "unsupported-media-type", {}),
    "no content type": (b"text", None, {}, 415, "unsupported-media-type", {}),
    "malformed JSON": (b'{"text": "a",\n "source": }', JSON, {}, 400, "malformed-json", {"line": 2, "column": 12}),
    "truncated JSON": (b'{"text": "a', JSON, {}, 400, "malformed-json", {"position": 11}),
    "lone surrogate": (b'{"text": "\\ud800x"}', JSON, {}, 400, "malformed-json", {}),
    "trailing garbage": (b'{"text": "a"} x', JSON, {}, 400, "malformed-json", {}),
    "digest mismatch": (b"text", TEXT, {"Content-Digest": sha256_field(b"other")}, 400, "digest-mismatch", {}),
    "digest not base64": (b"text", TEXT, {"Content-Digest": "sha-256=:!!!:"}, 400, "malformed-digest", {}),
    "digest not a dictionary": (b"text", TEXT, {"Content-Digest": "abc"}, 400, "malformed-digest", {}),
    "digest with no known algorithm": (b"text", TEXT, {"Content-Digest": "md5=:AAAA:"}, 400, "malformed-digest", {}),
}  # fmt: skip


def assert_problem(response, body: dict[str, Any], status: int, slug: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status == status, body
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.parametrize("case", sorted(POSTS))
async def test_bad_post_is_rejected_and_nothing_stored(client, store, case: str) -> None:
    body, content_type, headers, status, slug, extensions = POSTS[case]
    if content_type is not None:
        headers = {"Content-Type": content_type, **headers}
    response = await client.post("/v1/documents", data=body, headers=headers)
    problem = await response.json(content_type=None)
    assert_problem(response, problem, status, slug)
    for name, value in extensions.items():
        assert problem[name] == value, (name, problem)
    assert await all_keys(store) == []


async def test_metadata_over_its_limit_is_422_with_the_limit(client, store, config) -> None:
    limit = config.max_metadata_bytes
    big = {"blob": "x" * limit}
    response = await client.post("/v1/documents", json={"text": "a", "metadata": big})
    problem = await response.json(content_type=None)
    assert_problem(response, problem, 422, "metadata-too-large")
    assert problem["limit_bytes"] == limit
    assert await all_keys(store) == []


async def test_metadata_at_its_limit_is_accepted(make_client, store, config) -> None:
    # {"k":"xxxx"} is 8 bytes of JSON around the string
    client = await make_client(store, msgspec.structs.replace(config, max_metadata_bytes=100))
    metadata = {"k": "x" * 92}
    assert len(json.dumps(metadata, separators=(",", ":"))) == 100
    response = await client.post("/v1/documents", json={"text": "a", "metadata": metadata})
    assert response.status == 201
    metadata = {"k": "x" * 93}
    response = await client.post("/v1/documents", json={"text": "a", "metadata": metadata})
    assert response.status == 422


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_limit_accepts_exactly_the_limit(make_client, store, config, chunked) -> None:
    limit = 1000
    client = await make_client(store, msgspec.structs.replace(config, max_body_bytes=limit))

    async def post(size: int):  # type: ignore[no-untyped-def]
        body = b"x" * size

        async def stream():  # type: ignore[no-untyped-def]
            for start in range(0, size, 300):
                yield body[start : start + 300]

        return await client.post(
            "/v1/documents", data=stream() if chunked else body, headers={"Content-Type": TEXT}
        )

    over = await post(limit + 1)
    problem = await over.json(content_type=None)
    assert_problem(over, problem, 413, "payload-too-large")
    assert problem["limit_bytes"] == limit
    assert await all_keys(store) == []
    assert (await post(limit)).status == 201


@pytest.mark.parametrize(
    ("path", "status", "slug"),
    [
        ("/v1/documents/not-an-id", 400, "malformed-id"),
        ("/v1/documents/" + "A" * 32, 400, "malformed-id"),
        ("/v1/documents/" + "a" * 33, 400, "malformed-id"),
        ("/v1/documents/" + "a" * 31 + "1", 400, "malformed-id"),
        ("/v1/documents/..%2F..%2Fetc%2Fpasswd", 400, "malformed-id"),
        ("/v1/documents/not-an-id/original", 400, "malformed-id"),
        (f"/v1/documents/{VALID_ID}", 404, "document-not-found"),
        (f"/v1/documents/{VALID_ID}/original", 404, "document-not-found"),
        (f"/v1/documents/{VALID_ID}?version=0", 400, "malformed-id"),
        (f"/v1/documents/{VALID_ID}?version=-1", 400, "malformed-id"),
        (f"/v1/documents/{VALID_ID}?version=1.5", 400, "malformed-id"),
        (f"/v1/documents/{VALID_ID}?version=", 400, "malformed-id"),
        (f"/v1/documents/{VALID_ID}?version=2", 404, "document-not-found"),
        ("/v1/nothing-here", 404, "not-found"),
    ],
)
async def test_bad_reads(client, path: str, status: int, slug: str) -> None:
    response = await client.get(path)
    assert_problem(response, await response.json(content_type=None), status, slug)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", f"/v1/documents/{VALID_ID}", "GET, HEAD"),
        ("PUT", "/v1/documents", "GET, HEAD, POST"),
        ("POST", "/healthz", "GET, HEAD"),
    ],
)
async def test_method_not_allowed(client, store, method: str, path: str, allowed: str) -> None:
    response = await client.request(method, path, data=b"x")
    assert_problem(response, await response.json(content_type=None), 405, "method-not-allowed")
    assert response.headers["Allow"] == allowed
    assert await all_keys(store) == []
