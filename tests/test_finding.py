"""Finding documents (SPEC §9): by URL and time, by external id, near-duplicates, and the
canonical form of URLs. The change feed: tests/test_changes.py."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from service.analysis import Analyzer
from service.archive import Archive
from service.finding.canonical import NotAUrl, canonical
from service.finding.entries import IndexWriter
from service.ingest import rebuild_record
from service.timestamps import utc_now
from tests.test_heads import calls
from tests.test_metrics import scrape


async def post(client, text: str, **source: str) -> dict:  # type: ignore[no-untyped-def]
    body = {"text": text, "source": source} if source else {"text": text}
    response = await client.post("/v1/documents", json=body)
    assert response.status == 201, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def find(client, status: int = 200, **query: str) -> dict:  # type: ignore[no-untyped-def]
    response = await client.get("/v1/documents", params=query)
    assert response.status == status, await response.text()
    return await response.json(content_type=None)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://www.Example.com/a", "http://example.com/a"),
        ("http://example.com:80/a#part", "https://EXAMPLE.com:443/a"),
        ("http://example.com", "example.com/"),
        ("http://example.com/%7Euser/%61", "http://example.com/~user/a"),
        ("http://bücher.de/x", "http://xn--bcher-kva.de/x"),
        ("http://user:secret@example.com./a", "http://example.com/a"),
    ],
)
def test_canonical_forms_that_are_one(one: str, other: str) -> None:
    assert canonical(one).surt == canonical(other).surt


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("http://example.com/a", "http://example.com/A"),  # paths compared as sent
        ("http://example.com/a?x=1&y=2", "http://example.com/a?y=2&x=1"),
        ("http://example.com/%2F", "http://example.com//"),  # reserved escapes kept
        ("http://example.com:8080/", "http://example.com/"),
        ("http://news.example.com/", "http://example.com/"),
    ],
)
def test_canonical_forms_that_differ(one: str, other: str) -> None:
    assert canonical(one).surt != canonical(other).surt


def test_the_surt_key_reverses_the_host() -> None:
    assert canonical("https://www.News.Example.com:8443/a/b?c=d#e").surt == (
        "com,example,news:8443)/a/b?c=d"
    )
    with pytest.raises(NotAUrl):
        canonical("http:///no-host")


async def test_a_url_finds_its_captures_newest_first_whatever_its_spelling(client) -> None:
    first = await post(client, "The first capture.", url="https://example.com/story", title="T1")
    second = await post(client, "The second capture.", url="http://www.example.com/story#x")
    await post(client, "Another page.", url="https://example.com/story2")
    found = await find(client, url="EXAMPLE.com/story")
    assert [item["id"] for item in found["items"]] == [second["id"], first["id"]]
    assert found["next"] is None
    item = found["items"][1]
    record = await (await client.get(f"/v1/documents/{first['id']}")).json()
    assert item == {
        "id": first["id"],
        "version": 1,
        "received_at": record["provenance"]["received_at"],
        "url": "https://example.com/story",
        "title": "T1",
        "original": {"sha256": first["original"]["sha256"], "size": first["original"]["size"]},
    }
    assert found["items"][0]["title"] is None
    assert await find(client, url="example.com/nothing") == {"items": [], "next": None}


async def test_prefix_host_and_domain_matches(client) -> None:
    urls = [
        "http://example.com/news/a",
        "http://example.com/news/b",
        "http://example.com/sport",
        "http://example.com:8080/news/c",
        "http://live.example.com/news",
        "http://examples.com/news",
        "http://example.org/news",
    ]
    made = {url: (await post(client, f"Page {i}.", url=url))["id"] for i, url in enumerate(urls)}

    async def urls_of(match: str, url: str) -> set[str]:
        found = await find(client, url=url, match=match)
        return {item["url"] for item in found["items"]}

    assert await urls_of("prefix", "example.com/news") == set(urls[:2])
    assert await urls_of("host", "example.com") == set(urls[:4])
    assert await urls_of("domain", "example.com") == set(urls[:5])
    assert await urls_of("exact", "example.com:8080/news/c") == {urls[3]}
    assert len(made) == len(urls)


async def test_from_and_to_bound_the_receipt_time(client) -> None:
    ids = []
    for n in range(3):
        ids.append((await post(client, f"Capture {n}.", url="http://example.com/t"))["id"])
        await asyncio.sleep(0.002)
    everything = (await find(client, url="example.com/t"))["items"]
    times = [item["received_at"] for item in everything]  # newest first
    middle = await find(client, url="example.com/t", **{"from": times[1], "to": times[1]})
    assert [item["id"] for item in middle["items"]] == [ids[1]]
    newer = await find(client, url="example.com/t", **{"from": times[1]})
    assert [item["id"] for item in newer["items"]] == [ids[2], ids[1]]
    year = times[0][:4]
    assert len((await find(client, url="example.com/t", to=year))["items"]) == 3
    assert len((await find(client, url="example.com/t", **{"from": year}))["items"]) == 3
    after = str(int(year) + 1)
    assert (await find(client, url="example.com/t", **{"from": after}))["items"] == []
    assert (await find(client, url="example.com/t", to=str(int(year) - 1)))["items"] == []
    for match in ("prefix", "domain"):
        bounded = await find(client, url="example.com/t", match=match, to=times[1])
        assert [item["id"] for item in bounded["items"]] == [ids[1], ids[0]]


async def test_pages_follow_the_cursor_without_repeats_or_gaps(client) -> None:
    ids = {(await post(client, f"Paged {n}.", url="http://example.com/p"))["id"] for n in range(7)}
    for match in ("exact", "host"):
        seen: list[str] = []
        query = {"url": "example.com/p", "limit": "3", "match": match}
        while True:
            page = await find(client, **query)
            assert len(page["items"]) <= 3
            seen += [item["id"] for item in page["items"]]
            if page["next"] is None:
                break
            query["cursor"] = page["next"]
        assert sorted(seen) == sorted(ids)


async def test_a_reprocessed_document_is_one_item_of_its_latest_version(client, store) -> None:
    made = await post(client, "Reprocessed later.", url="http://example.com/r", external_id="r-1")
    archive = Archive(store)
    record = await archive.record(made["id"])
    async with Analyzer(0) as analyzer:
        analysis = await analyzer.analyze(record.text, None)
    assert await IndexWriter(archive).publish(rebuild_record(record, analysis, utc_now())) is None
    for query in ({"url": "example.com/r"}, {"external_id": "r-1"}):
        items = (await find(client, **query))["items"]
        assert [(item["id"], item["version"]) for item in items] == [(made["id"], 2)]


async def test_external_id_lookup_is_exact(client) -> None:
    one = await post(client, "Wire story.", external_id="AP-123")
    await post(client, "Another story.", external_id="AP-1234")
    two = await post(client, "Wire story, updated.", external_id="AP-123")
    found = await find(client, external_id="AP-123")
    assert [item["id"] for item in found["items"]] == [two["id"], one["id"]]
    assert (await find(client, external_id="ap-123"))["items"] == []


async def test_long_urls_and_ids_fit_the_key_limit_and_still_match_exactly(client, store) -> None:
    base = "http://example.com/" + "a" * 1500
    long_one = await post(client, "Long one.", url=base + "1", external_id="x" * 1200 + "1")
    await post(client, "Long two.", url=base + "2", external_id="x" * 1200 + "2")
    assert all(len(key.encode()) < 1024 - 300 for key in await store.list_keys(""))
    found = await find(client, url=base + "1")
    assert [item["id"] for item in found["items"]] == [long_one["id"]]
    by_id = await find(client, external_id="x" * 1200 + "1")
    assert [item["id"] for item in by_id["items"]] == [long_one["id"]]
    assert len((await find(client, url=base, match="prefix"))["items"]) == 2
    assert len((await find(client, url=base + "1", match="prefix"))["items"]) == 1


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({}, "url"),
        ({"url": "http://a.com/", "external_id": "x"}, "external_id"),
        ({"url": "http:///"}, "url"),
        ({"url": "a.com", "match": "fuzzy"}, "match"),
        ({"url": "a.com", "from": "2026-13-01T00:00:00Z"}, "from"),
        ({"url": "a.com", "from": "yesterday"}, "from"),
        ({"url": "a.com", "to": "20261"}, "to"),
        ({"url": "a.com", "to": "2026-12-01T00:00:00"}, "to"),  # no offset
        ({"url": "a.com", "limit": "0"}, "limit"),
        ({"url": "a.com", "limit": "1001"}, "limit"),
        ({"url": "a.com", "limit": "ten"}, "limit"),
        ({"url": "a.com", "cursor": "not-a-cursor"}, "cursor"),
        ({"external_id": "x", "match": "prefix"}, "match"),
    ],
)
async def test_bad_lookup_parameters_are_400_naming_them(client, query, parameter) -> None:  # type: ignore[no-untyped-def]
    problem = await find(client, 400, **query)
    assert problem["type"] == "/problems/bad-parameter"
    assert problem["parameter"] == parameter


async def test_a_cursor_of_another_lookup_is_refused(client) -> None:
    for n in range(2):
        await post(client, f"Cursor {n}.", url="http://example.com/c", external_id="c")
    page = await find(client, external_id="c", limit="1")
    problem = await find(client, 400, url="example.com/c", cursor=page["next"])
    assert problem["parameter"] == "cursor"


async def test_repeated_parameters_are_refused(client) -> None:
    response = await client.get("/v1/documents?url=a.com&url=b.com")
    assert response.status == 400
    assert (await response.json(content_type=None))["parameter"] == "url"


SYNDICATED = (
    "The city council voted on Tuesday to expand the bus network, adding four routes "
    "that will connect the northern suburbs with the hospital district. The mayor said "
    "the plan would be paid for by the transport levy approved last spring, and that "
    "the first buses would run in March."
)


async def test_near_duplicates_are_named_on_arrival_and_by_similar(client) -> None:
    first = await post(client, SYNDICATED)
    assert first["near_duplicates"] == []
    copy = await post(client, SYNDICATED + " (AP)")
    other = await post(client, "Something else entirely: a recipe for plum cake with cream.")
    assert [near["id"] for near in copy["near_duplicates"]] == [first["id"]]
    assert copy["near_duplicates"][0]["distance"] <= 3
    similar = await client.get(f"/v1/documents/{first['id']}/similar")
    assert similar.status == 200
    items = (await similar.json())["items"]
    assert [item["id"] for item in items] == [copy["id"]]
    assert other["id"] not in {item["id"] for item in items}
    exact = await client.get(f"/v1/documents/{first['id']}/similar", params={"max_distance": "0"})
    assert (await exact.json())["items"] == [item for item in items if item["distance"] == 0]


async def test_many_copies_are_named_with_one_get_each_and_no_listing_of_versions(
    client,
) -> None:
    """A wire story archived many times: the 201 of the next copy names every one, and
    costs the four band listings plus one GET (of its head) per copy, not a listing of
    each copy's versions."""
    copies = [(await post(client, SYNDICATED, external_id=f"wire-{n}"))["id"] for n in range(12)]
    before = calls(await scrape(client))
    made = await post(client, SYNDICATED, external_id="wire-latest")
    after = calls(await scrape(client))
    assert sorted(near["id"] for near in made["near_duplicates"]) == sorted(copies)
    spent = {op: after[op] - before.get(op, 0.0) for op in after if after[op] != before.get(op)}
    assert spent["list_keys"] == 4  # the bands; the versions of no copy
    assert spent["get"] == len(copies) + 1  # and the shared original, checked after its 412


@pytest.mark.parametrize("value", ["4", "-1", "x", "1.5"])
async def test_max_distance_outside_0_to_3_is_400(client, value: str) -> None:
    made = await post(client, "Distance.")
    response = await client.get(f"/v1/documents/{made['id']}/similar?max_distance={value}")
    assert response.status == 400
    assert (await response.json(content_type=None))["parameter"] == "max_distance"


async def test_similar_of_an_absent_or_malformed_id(client) -> None:
    assert (await client.get(f"/v1/documents/{'a' * 32}/similar")).status == 404
    assert (await client.get("/v1/documents/nope/similar")).status == 400


async def test_a_lookup_that_reads_its_most_pages_goes_on_from_its_cursor(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.finding import captures

    monkeypatch.setattr(captures, "_PAGE", 2)
    monkeypatch.setattr(captures, "MAX_PAGES", 1)
    urls = [f"http://example.com/{name}" for name in "abcde"]
    ids = {(await post(client, f"Bounded {url}.", url=url))["id"] for url in urls}
    for match in ("host", "domain", "prefix"):
        seen: list[str] = []
        query = {"url": "example.com/", "match": match, "limit": "1000"}
        for _ in range(20):
            page = await find(client, **query)
            seen += [item["id"] for item in page["items"]]
            if page["next"] is None:
                break
            query["cursor"] = page["next"]
        assert sorted(seen) == sorted(ids), match


ON_REAL_S3 = [
    test_a_url_finds_its_captures_newest_first_whatever_its_spelling,
    test_prefix_host_and_domain_matches,
    test_from_and_to_bound_the_receipt_time,
    test_pages_follow_the_cursor_without_repeats_or_gaps,
    test_long_urls_and_ids_fit_the_key_limit_and_still_match_exactly,
    test_a_lookup_that_reads_its_most_pages_goes_on_from_its_cursor,
    test_external_id_lookup_is_exact,
]


@pytest.mark.parametrize("check", ON_REAL_S3, ids=lambda check: check.__name__[5:40])
async def test_lookups_hold_on_real_s3(  # type: ignore[no-untyped-def]
    make_client, s3_settings, store, monkeypatch: pytest.MonkeyPatch, check
) -> None:
    """SeaweedFS lists in folder order (`a/1` before `a#1`) and skips a folder named as
    `start-after`: every lookup above holds there too."""
    client = await make_client(store)
    wanted = inspect.signature(check).parameters
    given = {"client": client, "store": store, "monkeypatch": monkeypatch}
    await check(**{name: given[name] for name in wanted})
