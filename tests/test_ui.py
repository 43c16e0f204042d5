"""The pages under /ui, over the in-memory archive: the viewer draws the record's own
spans as nested elements, text is never markup, every answer carries the CSP and nosniff,
errors are pages, and with API keys a session cookie (of a `read` key) guards them."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import pytest

import service.keys
from service.config import Config
from service.keys import KeyEntry, create_key, load_keys, revoke_key
from service.web.ui import session
from service.web.ui.guard import CONTENT_SECURITY_POLICY

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
HOSTILE = (
    '<script>document.title="pwned"</script> <img src=x onerror=alert(1)> &amp; &lt;b&gt; '
    "“said ‏עברית‎ e\u0301\u0301 «x»” [sic]…"
)


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag, self.attrs, self.children = tag, attrs, []  # type: list[Node | str]

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find(self, predicate: Any) -> list[Node]:
        found = [self] if predicate(self) else []
        for child in self.children:
            if isinstance(child, Node):
                found += child.find(predicate)
        return found


class TreeBuilder(HTMLParser):
    VOID = frozenset({"meta", "link", "input", "img", "br", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, (self.stack[-1].tag, tag)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def blocks(page: Node) -> list[Node]:
    return page.find(lambda n: "block" in n.classes)


def quotes_in(node: Node) -> list[Node]:
    return [n for n in node.find(lambda n: "quote" in n.classes) if n is not node]


async def post_seed(client, name: str) -> str:  # type: ignore[no-untyped-def]
    body = (SEEDS / name).read_bytes()
    kind = "application/json" if name.endswith(".json") else "text/plain; charset=utf-8"
    response = await client.post("/v1/documents", data=body, headers={"Content-Type": kind})
    assert response.status == 201
    document_id: str = (await response.json())["id"]
    return document_id


async def page(client, path: str, status: int = 200) -> Node:  # type: ignore[no-untyped-def]
    response = await client.get(path)
    assert response.status == status, await response.text()
    assert response.content_type == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    return parse(await response.text())


async def test_a_nested_quote_is_drawn_inside_its_outer_one(client) -> None:
    document_id = await post_seed(client, "01-nested-quotes.txt")
    tree = await page(client, f"/ui/documents/{document_id}")
    third = blocks(tree)[2]
    outer = [q for q in quotes_in(third) if q.attrs["data-depth"] == "1"]
    assert outer[0].text().startswith("When the mayor told us")
    (inner,) = quotes_in(outer[0])
    assert inner.attrs["data-depth"] == "2"
    assert inner.text() == "the harbor can’t wait,"
    assert "depth-2" in inner.classes


async def test_every_block_shows_exactly_its_text(client) -> None:
    document_id = await post_seed(client, "07-labelled-sections.txt")
    record = await (await client.get(f"/v1/documents/{document_id}")).json()
    tree = await page(client, f"/ui/documents/{document_id}")
    shown = blocks(tree)
    assert [b.text() for b in shown] == [
        record["text"][b["span"][0] : b["span"][1]] for b in record["blocks"]
    ]
    sections = [b for b in shown if b.tag == "section"]
    assert [s.attrs["data-label"] for s in sections] == ["EDITOR’S NOTE", "CORRECTION"]
    labels = [s.find(lambda n: "label" in n.classes)[0].text() for s in sections]
    assert labels == ["EDITOR’S NOTE", "CORRECTION"]


async def test_a_quote_over_three_paragraphs_has_a_fragment_in_each(client) -> None:
    document_id = await post_seed(client, "02-multi-paragraph-repeated.txt")
    tree = await page(client, f"/ui/documents/{document_id}")
    fragments = [quotes_in(b) for b in blocks(tree)]
    assert [len(f) for f in fragments] == [0, 1, 1, 1, 0]
    parts = [f[0] for f in fragments if f]
    assert {p.attrs["data-quote"] for p in parts} == {"0"}
    assert ["first" in p.classes for p in parts] == [True, False, False]
    assert ["last" in p.classes for p in parts] == [False, False, True]
    assert parts[1].text().startswith("“We will not ask")


async def test_an_unclosed_quote_and_insertions_and_ellipses_are_marked(client) -> None:
    unclosed_id = await post_seed(client, "04-malformed-quotes.txt")
    tree = await page(client, f"/ui/documents/{unclosed_id}")
    (text,) = tree.find(lambda n: "text" in n.classes)  # the article's, not the legend's
    (unclosed,) = text.find(lambda n: "unclosed" in n.classes)
    assert unclosed.text().startswith("We were never told")
    assert {"first", "last"} <= unclosed.classes

    marks_id = await post_seed(client, "06-insertions-ellipses.txt")
    tree = await page(client, f"/ui/documents/{marks_id}")
    insertions = tree.find(lambda n: "insertion" in n.classes and "data-insertion" in n.attrs)
    assert [i.text() for i in insertions] == ["the government", "sic", "PDF, 2 pages"]
    ellipses = tree.find(lambda n: "ellipsis" in n.classes and "data-ellipsis" in n.attrs)
    assert [e.text() for e in ellipses] == ["…", "...", ". . ."]


async def test_headline_source_language_stats_provenance_and_versions(client) -> None:
    document_id = await post_seed(client, "14-asserted-title.json")
    response = await client.get(f"/ui/documents/{document_id}")
    html = await response.text()
    tree = parse(html)
    (headline,) = tree.find(lambda n: "headline" in n.classes and n.tag == "h1")
    assert headline.text() == "Library extends opening hours"
    assert "headline asserted" in html
    assert 'href="https://example.org/library-hours"' in html
    assert "Sam Reporter" in html
    assert "&#34;desk&#34;" in html or "&quot;desk&quot;" in html
    assert re.search(r"<code>en</code>, confidence 0\.\d\d", html)
    assert "Version 1 of 1" in html
    for link in ("/original", "/record?version=1", "/provenance?version=1"):
        assert f'href="/ui/documents/{document_id}{link}"' in html
        linked = await client.get(f"/ui/documents/{document_id}{link}")
        assert linked.status == 200
        assert linked.headers["Cache-Control"] == "no-store"
        assert linked.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "channel" in html.lower()
    assert "normalizer" in html


async def test_article_text_is_never_markup(client) -> None:
    response = await client.post(
        "/v1/documents",
        json={"text": HOSTILE, "source": {"title": "<b>x</b>", "url": "javascript:alert(1)"}},
    )
    document_id = (await response.json())["id"]
    html = await (await client.get(f"/ui/documents/{document_id}")).text()
    tree = parse(html)
    assert not tree.find(lambda n: n.tag in ("script", "img", "b"))
    assert not re.search(r"<script|<img|<b>|javascript:alert\(1\)\"", html)
    record = await (await client.get(f"/v1/documents/{document_id}")).json()
    assert "".join(b.text() for b in blocks(tree)) == record["text"]
    assert 'href="javascript:' not in html


async def test_errors_under_ui_are_pages(client) -> None:
    missing = await page(client, f"/ui/documents/{'a' * 32}", status=404)
    assert "404" in missing.text()
    await page(client, "/ui/documents/not-an-id", status=400)
    await page(client, f"/ui/documents/{'a' * 32}?version=x", status=400)
    await page(client, "/ui/nothing-here", status=404)
    api = await client.get("/v1/nothing-here")
    assert api.content_type == "application/problem+json"


async def test_the_stylesheet_is_served_as_css(client) -> None:
    response = await client.get("/ui/static/vellum.css")
    assert response.status == 200
    assert response.content_type == "text/css"
    assert ".quote" in await response.text()


# With API keys: the session cookie.


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return tmp_path / "keys.jsonl"


@pytest.fixture
def made(keys_file: Path) -> dict[str, tuple[str, KeyEntry]]:
    """A read and an ingest key, made before the server starts (it sees new ones within
    a second)."""
    return {scope: create_key(keys_file, [scope]) for scope in ("read", "ingest")}


@pytest.fixture
async def guarded(make_client, store, config: Config, keys_file: Path, made):  # type: ignore[no-untyped-def]
    return await make_client(store, msgspec.structs.replace(config, keys_file=keys_file))


async def log_in(client, key: str, **headers: str):  # type: ignore[no-untyped-def]
    return await client.post(
        "/ui/login",
        data={"key": key, "next": "/ui/documents/x?version=2"},
        headers=headers,
        allow_redirects=False,
    )


async def test_pages_need_a_session_and_the_login_form_is_open(guarded) -> None:
    response = await guarded.get(f"/ui/documents/{'a' * 32}?version=2", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == (
        f"/ui/login?next=/ui/documents/{'a' * 32}%3Fversion%3D2"
    )
    form = await guarded.get(response.headers["Location"])
    assert form.status == 200
    assert 'name="key"' in await form.text()
    assert f'value="/ui/documents/{"a" * 32}?version=2"' in await form.text()


async def test_a_read_key_logs_in_with_a_strict_http_only_cookie(guarded, made) -> None:
    key, entry = made["read"]
    response = await log_in(guarded, key)
    assert response.status == 303
    assert response.headers["Location"] == "/ui/documents/x?version=2"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{session.COOKIE}=v1.{entry.id}.")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http here
    assert key.split("_")[2] not in cookie
    missing = await guarded.get(f"/ui/documents/{'a' * 32}", allow_redirects=False)
    assert missing.status == 404  # past the guard, to the archive

    out = await guarded.post("/ui/logout", allow_redirects=False)
    assert out.status == 303
    assert f"{session.COOKIE}=" in out.headers["Set-Cookie"]
    assert "Max-Age=0" in out.headers["Set-Cookie"]
    again = await guarded.get(f"/ui/documents/{'a' * 32}", allow_redirects=False)
    assert again.status == 303


async def test_behind_a_tls_proxy_the_cookie_is_secure(guarded, made) -> None:
    key, _ = made["read"]
    response = await log_in(guarded, key, **{"X-Forwarded-Proto": "https"})
    assert "Secure" in response.headers["Set-Cookie"]


async def test_wrong_or_unscoped_keys_do_not_log_in(guarded, made) -> None:
    ingest, _ = made["ingest"]
    refused = await log_in(guarded, ingest)
    assert refused.status == 403
    assert "lacks the read scope" in await refused.text()
    wrong = await log_in(guarded, ingest[:-4] + "aaaa")
    assert wrong.status == 401
    assert "Set-Cookie" not in wrong.headers
    assert (await log_in(guarded, "")).status == 401


async def test_a_login_posted_from_another_site_is_refused(guarded, made) -> None:
    key, _ = made["read"]
    cross = await log_in(guarded, key, **{"Sec-Fetch-Site": "cross-site"})
    assert cross.status == 403
    assert cross.content_type == "text/html"
    assert "Set-Cookie" not in cross.headers
    other = await log_in(guarded, key, Origin="https://evil.example")
    assert other.status == 403


async def test_a_revoked_key_s_session_ends_when_the_server_sees_the_file(
    guarded, made, keys_file
) -> None:
    key, entry = made["read"]
    assert (await log_in(guarded, key)).status == 303
    assert (await guarded.get(f"/ui/documents/{'a' * 32}")).status == 404
    revoke_key(keys_file, entry.id)
    await asyncio.sleep(service.keys.RELOAD_SECONDS + 0.1)
    response = await guarded.get(f"/ui/documents/{'a' * 32}", allow_redirects=False)
    assert response.status == 303


def test_a_session_value_is_signed_expires_and_names_only_its_key(keys_file) -> None:
    key, entry = create_key(keys_file, ["read"])
    other_key, other = create_key(keys_file, ["read"])
    keyring = load_keys(keys_file)
    value = session.issue(entry, now=1000.0)
    assert session.check(value, keyring, now=1001.0) == entry
    assert session.check(value, keyring, now=1000.0 + session.SESSION_SECONDS) is None
    prefix, expires, mac = value.rsplit(".", 2)
    assert session.check(f"{prefix}.{int(expires) + 9999}.{mac}", keyring, now=1001.0) is None
    forged = f"v1.{other.id}.{expires}.{mac}"
    assert session.check(forged, keyring, now=1001.0) is None
    assert session.check("garbage", keyring, now=1001.0) is None
    assert session.check(None, keyring, now=1001.0) is None
    assert key.split("_")[2] not in value
    assert other_key.split("_")[2] not in value


# The find page (issue #17's lookups).


@pytest.fixture
async def settled(make_client, store, config: Config):  # type: ignore[no-untyped-def]
    """The app with a settle window short enough for the feed to show what was just
    posted."""
    return await make_client(store, msgspec.structs.replace(config, changes_settle_seconds=0.01))


async def post_with_source(client, text: str, **source: str) -> str:  # type: ignore[no-untyped-def]
    response = await client.post("/v1/documents", json={"text": text, "source": source})
    assert response.status == 201
    document_id: str = (await response.json())["id"]
    return document_id


def document_links(tree: Node, table: str) -> list[str]:
    (found,) = tree.find(lambda n: n.tag == "table" and table in n.classes)
    return [a.attrs["href"] or "" for a in found.find(lambda n: n.tag == "a")]


async def test_the_find_page_finds_captures_by_url_and_external_id(settled) -> None:
    story = await post_with_source(
        settled, "A story about the harbor.", url="https://www.Example.org/harbor", title="<Harbor>"
    )
    other = await post_with_source(
        settled, "Another story, elsewhere.", url="https://news.example.org/b", external_id="X-1"
    )
    tree = await page(settled, "/ui/?url=http://example.org/harbor&match=exact&from=&to=")
    assert document_links(tree, "captures") == [f"/ui/documents/{story}?version=1"]
    assert "<Harbor>" in tree.text()  # a title is text

    tree = await page(settled, "/ui/?url=example.org&match=domain&from=2020&to=")
    assert sorted(document_links(tree, "captures")) == sorted(
        f"/ui/documents/{i}?version=1" for i in (story, other)
    )
    tree = await page(settled, "/ui/?url=example.org&match=domain&to=2020")
    assert "No captures match." in tree.text()

    tree = await page(settled, "/ui/?external_id=X-1")
    assert document_links(tree, "captures") == [f"/ui/documents/{other}?version=1"]


async def test_a_bad_lookup_is_said_beside_the_form(settled) -> None:
    tree = await page(settled, "/ui/?url=example.org&from=yesterday", status=400)
    (said,) = tree.find(lambda n: "refused" in n.classes)
    assert said.text().startswith("from must be an RFC 3339 timestamp")
    tree = await page(settled, "/ui/?url=example.org&match=fuzzy", status=400)
    assert tree.find(lambda n: "refused" in n.classes)


async def test_the_find_page_shows_the_latest_changes_newest_first(settled) -> None:
    first = await post_with_source(settled, "The first article of the day.")
    second = await post_with_source(settled, "The second article of the day.")
    await asyncio.sleep(0.05)  # past the settle window
    tree = await page(settled, "/ui/")
    assert document_links(tree, "changes") == [
        f"/ui/documents/{second}?version=1",
        f"/ui/documents/{first}?version=1",
    ]


async def test_the_viewer_names_near_duplicates(client) -> None:
    text = (
        "The city council voted on Tuesday to expand the bus network, adding four routes "
        "that will connect the northern suburbs with the hospital district. The mayor said "
        "the plan would be paid for by the transport levy approved last spring."
    )
    first = await post_with_source(client, text)
    second = await post_with_source(client, text + " (AP)")
    html = await (await client.get(f"/ui/documents/{first}")).text()
    assert f'href="/ui/documents/{second}"' in html


def test_the_article_escapes_text_and_attributes_whatever_the_record_holds() -> None:
    from service.span_tree import build_regions
    from service.types import Block, Quote
    from service.web.ui.article import article_html

    text = 'X"><script>: <b>&amp;</b> “q”'
    label = 'X"><script>'
    blocks = [Block(kind="section", span=(0, len(text)), label=label)]
    quote = Quote(span=(len(text) - 2, len(text) - 1), depth=7, open="“", close=None, blocks=(0, 0))
    html = str(article_html([quote], build_regions(text, blocks, [quote], [], []), None))
    assert "<script>" not in html
    assert "<b>" not in html
    tree = parse(html)
    (section,) = tree.find(lambda n: n.tag == "section")
    assert section.attrs["data-label"] == label
    assert section.text() == text
    (shown,) = tree.find(lambda n: "quote" in n.classes)
    assert {"depth-4", "unclosed", "first", "last"} <= shown.classes
    assert shown.attrs["data-depth"] == "7"
