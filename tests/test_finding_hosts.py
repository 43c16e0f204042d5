"""Lookups by prefix, host and domain answer newest capture first (SPEC §9), from the host
and subdomain indexes (service.finding.hosts): paged, bounded in time, kept by
`vellum reindex` and `vellum verify`."""

from __future__ import annotations

import inspect

import pytest

from service.archive import Archive
from service.finding import keys
from service.finding.entries import IndexWriter
from service.finding.maintenance import reindex
from service.jobs.verify import verify
from tests.test_finding import find, post

# Posted in this order, so received in it: newest first is the reverse.
INTERLEAVED = [
    "http://example.com/news/b",
    "http://news.example.com/news/a",
    "http://example.com/news/a",
    "http://example.com/sport",
    "http://a.news.example.com/x",
    "http://example.com:8080/news/c",
    "http://example.com/news/b?page=2",
    "http://news.example.com/news/b",
    "http://example.com/news",
]
HOST = {
    url for url in INTERLEAVED if url.startswith(("http://example.com/", "http://example.com:"))
}
NEWS = {url for url in HOST if "/news" in url and ":8080" not in url}  # prefix example.com/news


async def post_interleaved(client) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """Each URL's capture, newest first, as a lookup shows it."""
    for n, url in enumerate(INTERLEAVED):
        await post(client, f"Capture {n} of {url}.", url=url)
    items = (await find(client, url="example.com", match="domain", limit="100"))["items"]
    return items  # type: ignore[no-any-return]


def newest_first(items: list[dict[str, object]]) -> bool:
    received = [str(item["received_at"]) for item in items]
    return received == sorted(received, reverse=True)


async def all_pages(client, limit: str, **query: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    items: list[dict[str, object]] = []
    asked = {**query, "limit": limit}
    for _ in range(50):
        page = await find(client, **asked)
        assert len(page["items"]) <= int(limit)
        items += page["items"]
        if page["next"] is None:
            return items
        asked["cursor"] = page["next"]
    raise AssertionError("the pages never ended")


LOOKUPS = [
    ("prefix", "example.com/news", NEWS),
    ("host", "example.com", HOST),
    ("domain", "example.com", set(INTERLEAVED)),
    ("domain", "news.example.com", {url for url in INTERLEAVED if "news.example" in url}),
]


@pytest.mark.parametrize(("match", "url", "expected"), LOOKUPS)
async def test_prefix_host_and_domain_answer_newest_first_across_urls(  # type: ignore[no-untyped-def]
    client, match: str, url: str, expected: set[str]
) -> None:
    everything = await post_interleaved(client)
    assert [item["url"] for item in everything] == INTERLEAVED[::-1]
    newest = [item["url"] for item in everything if item["url"] in expected]
    found = (await find(client, url=url, match=match))["items"]
    assert [item["url"] for item in found] == newest
    for limit in ("1", "2", "3"):  # no capture lost or repeated, page after page
        paged = await all_pages(client, limit, url=url, match=match)
        assert [item["url"] for item in paged] == newest
    times = [str(item["received_at"]) for item in found]
    middle = await all_pages(client, "1", url=url, match=match, to=times[1], **{"from": times[-2]})
    assert [item["url"] for item in middle] == newest[1:-1]
    assert newest_first(middle)


async def test_a_subdomain_is_found_by_domain_not_by_host_and_a_path_elsewhere_not_by_prefix(
    client,  # type: ignore[no-untyped-def]
) -> None:
    await post_interleaved(client)
    by_host = {
        item["url"] for item in (await find(client, url="example.com", match="host"))["items"]
    }
    assert "http://news.example.com/news/a" not in by_host
    assert by_host == HOST
    by_prefix = (await find(client, url="example.com/news", match="prefix"))["items"]
    assert {item["url"] for item in by_prefix} == NEWS  # not news.example.com/news/…, not :8080
    sub = await find(client, url="news.example.com", match="host")
    assert [item["url"] for item in sub["items"]] == [
        "http://news.example.com/news/b",
        "http://news.example.com/news/a",
    ]


DEEP = [
    "http://a.b.c.d.e.example.com/1",  # 7 labels: no entries under its parents of 5 and 6
    "http://c.d.e.example.com/2",
    "http://x.c.d.e.example.com/3",
    "http://b.c.d.e.example.com/4",
    "http://y.d.e.example.com/5",
]


async def test_a_domain_deeper_than_the_entries_is_answered_from_its_parent(client) -> None:  # type: ignore[no-untyped-def]
    for n, url in enumerate(DEEP):
        await post(client, f"Deep {n}.", url=url)

    async def urls(url: str, match: str = "domain") -> list[object]:
        return [item["url"] for item in (await find(client, url=url, match=match))["items"]]

    assert await urls("c.d.e.example.com") == [DEEP[3], DEEP[2], DEEP[1], DEEP[0]]
    assert await urls("b.c.d.e.example.com") == [DEEP[3], DEEP[0]]
    assert await urls("a.b.c.d.e.example.com") == [DEEP[0]]
    assert await urls("e.example.com") == DEEP[::-1]
    assert await urls("a.b.c.d.e.example.com", "host") == [DEEP[0]]


async def test_an_address_is_its_own_domain(client) -> None:  # type: ignore[no-untyped-def]
    made = await post(client, "An address.", url="http://192.0.2.7/a")
    found = await find(client, url="192.0.2.7", match="domain")
    assert [item["id"] for item in found["items"]] == [made["id"]]


async def test_a_top_level_or_one_label_domain_is_answered_newest_first(client) -> None:  # type: ignore[no-untyped-def]
    """`match=domain` of `com` is every .com host; of `localhost`, the host itself and its
    subdomains: SPEC §9 makes no exception for one label."""
    urls = [
        "http://example.com/1",
        "http://localhost/2",
        "http://news.example.org/3",
        "http://a.news.example.com/4",
        "http://dev.localhost/5",
        "http://example.net/6",
    ]
    made = [(await post(client, f"Top {n}.", url=url))["id"] for n, url in enumerate(urls)]

    async def ids_of(url: str) -> list[object]:
        return [item["id"] for item in (await find(client, url=url, match="domain"))["items"]]

    assert await ids_of("com") == [made[3], made[0]]
    assert await ids_of("localhost") == [made[4], made[1]]
    assert await ids_of("org") == [made[2]]
    page = await find(client, url="com", match="domain", limit="1")
    assert [item["id"] for item in page["items"]] == [made[3]]
    rest = await find(client, url="com", match="domain", cursor=page["next"])
    assert [item["id"] for item in rest["items"]] == [made[0]]


def test_a_capture_has_at_most_five_host_entries() -> None:
    from service.finding.hosts import entry_keys

    moment = keys.received_instant("2026-12-07T10:00:00.000000Z")
    for host, count in [
        ("com,example", 2),
        ("com,example,news", 3),
        ("uk,co,bbc,news", 4),
        ("com,example,e,d,c,b,a", 5),
        ("192.0.2.7", 1),
        ("localhost", 1),
    ]:
        assert len(entry_keys(f"{host})/", host, moment, "a" * 32, 1)) == count, host


async def test_reindex_writes_the_host_entries_of_records_indexed_before_them(store) -> None:  # type: ignore[no-untyped-def]
    """Records whose entries were written before the host indexes: reindex adds them."""
    from service.analysis import Analyzer
    from service.ingest import Arrival, Ingestor
    from service.submission import from_json_document

    archive = Archive(store)
    ingestor = Ingestor(archive, Analyzer(0))
    made = []
    for n, url in enumerate(["http://example.com/a", "http://news.example.com/b"]):
        body = f'{{"text": "Older capture {n}.", "source": {{"url": "{url}"}}}}'.encode()
        submission = from_json_document(body, max_metadata_bytes=65536)
        made.append((await ingestor.ingest(submission, Arrival(channel="http"))).record)
    written = sorted(
        await store.list_keys("index/host/") + await store.list_keys("index/subdomain/")
    )
    for key in written:  # as an archive indexed before the host indexes existed has them
        await store.delete(key)
    report = await reindex(IndexWriter(archive))
    assert report.created == 5  # example.com's host and com; news.example.com's, com,example, com
    again = sorted(await store.list_keys("index/host/") + await store.list_keys("index/subdomain/"))
    assert again == written
    news = made[1]
    at = keys.inverted(keys.received_instant(news.provenance.received_at))
    assert f"index/subdomain/com,example#{at}/{news.id}/com,example,news)%2Fb/999999998" in again
    assert (await reindex(IndexWriter(archive))).created == 0


async def test_verify_reports_and_removes_a_host_entry_whose_record_is_missing(
    client,
    store,  # type: ignore[no-untyped-def]
) -> None:
    kept = await post(client, "Kept.", url="http://example.com/kept")
    missing = "b" * 32
    stale = [
        f"index/host/com,example#79738792899999999999/{missing}/com,example)%2Fgone/999999998",
        f"index/subdomain/com,example#79738792899999999999/{missing}/com,example,n)%2F/999999998",
    ]
    await IndexWriter(Archive(store)).put_entries(stale)
    assert len((await find(client, url="example.com", match="domain"))["items"]) == 1
    report = await verify(store, settle_seconds=0.01)
    assert [(f.kind, f.key) for f in report.findings] == [("stale-index", key) for key in stale]
    assert all("does not exist" in finding.detail for finding in report.findings)
    assert not set(stale) & set(await store.list_keys("index/"))
    found = await find(client, url="example.com", match="host")
    assert [item["id"] for item in found["items"]] == [kept["id"]]


ON_REAL_S3 = [
    test_a_subdomain_is_found_by_domain_not_by_host_and_a_path_elsewhere_not_by_prefix,
    test_a_domain_deeper_than_the_entries_is_answered_from_its_parent,
    test_reindex_writes_the_host_entries_of_records_indexed_before_them,
    test_verify_reports_and_removes_a_host_entry_whose_record_is_missing,
]


@pytest.mark.parametrize("check", ON_REAL_S3, ids=lambda check: check.__name__[5:40])
async def test_host_lookups_hold_on_real_s3(  # type: ignore[no-untyped-def]
    make_client, s3_settings, store, check
) -> None:
    """SeaweedFS lists in folder order and refuses a key whose last segment is over 255
    bytes: every test above holds there too."""
    given = {"client": await make_client(store), "store": store}
    await check(**{name: given[name] for name in inspect.signature(check).parameters})


@pytest.mark.parametrize(("match", "url", "expected"), LOOKUPS)
async def test_newest_first_holds_on_real_s3(  # type: ignore[no-untyped-def]
    make_client, s3_settings, store, match: str, url: str, expected: set[str]
) -> None:
    client = await make_client(store)
    await test_prefix_host_and_domain_answer_newest_first_across_urls(client, match, url, expected)
