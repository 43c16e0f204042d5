"""Handlers of the pages: the record viewer, logging in and out, the stylesheet.

The viewer draws a record exactly as archived: its spans become nested elements through
service.span_tree, and the template shows every character of the text as text. It is
rendered off the event loop, as a record may hold megabytes of text and a million spans.
"""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import msgspec
from aiohttp import web

from service.ids import parse_id, parse_version
from service.span_tree import build_regions
from service.types import Record
from service.web.auth import key_of
from service.web.typedefs import DOCUMENT_ID, KEY_ID, KEYS_FILE, SERVICES
from service.web.ui import PREFIX, session
from service.web.ui.article import article_html

STYLESHEET = resources.files("service.web.ui").joinpath("static/vellum.css").read_bytes()
_pretty = msgspec.json.Encoder()
MAX_DISTANCE = 3  # near-duplicates shown: as the 201's `near_duplicates` (SPEC §9)


async def document_page(request: web.Request) -> web.Response:
    document_id = parse_id(request.match_info["id"])
    request[DOCUMENT_ID] = document_id
    asked = request.query.get("version")
    archive = request.app[SERVICES].archive
    record = await archive.record(document_id, None if asked is None else parse_version(asked))
    versions = await archive.versions(document_id)
    similar = await request.app[SERVICES].finder.near(record, MAX_DISTANCE)
    context = await asyncio.to_thread(_viewer_context, record, versions)
    context["key_id"] = request.get(KEY_ID)
    context["similar"] = similar
    text = await asyncio.to_thread(aiohttp_jinja2.render_string, "document.html", request, context)
    return web.Response(text=text, content_type="text/html")


def _viewer_context(record: Record, versions: list[int]) -> dict[str, Any]:
    regions = build_regions(
        record.text, record.blocks, record.quotes, record.insertions, record.ellipses
    )
    base = f"{PREFIX}/documents/{record.id}"
    headline_block = _headline_block(record)
    metadata = record.metadata
    return {
        "record": record,
        "article": article_html(record.quotes, regions, headline_block),
        "dropped": sum(region.dropped for region in regions),
        "versions": versions,
        "base": base,
        "api": f"/v1/documents/{record.id}",
        "source_href": _web_address(record.source.url),
        "metadata": None if metadata is None else msgspec.json.format(_pretty.encode(metadata)),
        "unclosed": sum(quote.close is None for quote in record.quotes),
    }


def _headline_block(record: Record) -> int | None:
    """The block a detected headline is (the first, holding exactly its text), if any."""
    if record.headline is None or record.headline.source != "detected" or not record.blocks:
        return None
    start, end = record.blocks[0].span
    return 0 if record.text[start:end] == record.headline.text else None


def _web_address(url: str | None) -> str | None:
    """The asserted URL as a link only when it is http(s): never `javascript:` and kin."""
    if url is None:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


async def login_form(request: web.Request) -> web.Response:
    return _login_page(request, status=200, problem=None)


async def log_in(request: web.Request) -> web.Response:
    """Check the posted key once (scrypt, under the API's limits) and set the cookie."""
    keys = request.app.get(KEYS_FILE)
    form = await request.post()
    target = _safe_next(form.get("next"))
    if keys is None:
        return see_other(target)
    given = form.get("key")
    token = given.strip() if isinstance(given, str) else ""
    entry = await key_of(request, keys, token) if token else None
    if entry is None:
        return _login_page(
            request, status=401, problem="That key is malformed, unknown or revoked."
        )
    if not entry.allows("read"):
        problem = f"API key {entry.id} lacks the read scope these pages need."
        return _login_page(request, status=403, problem=problem)
    response = see_other(target)
    response.set_cookie(
        session.COOKIE,
        session.issue(entry, time.time()),
        max_age=session.SESSION_SECONDS,
        path=PREFIX,
        secure=is_https(request),
        httponly=True,
        samesite="Strict",
    )
    return response


async def log_out(request: web.Request) -> web.Response:
    response = see_other(f"{PREFIX}/login")
    response.del_cookie(
        session.COOKIE, path=PREFIX, secure=is_https(request), httponly=True, samesite="Strict"
    )
    return response


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(
        body=STYLESHEET,
        content_type="text/css",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


async def home_redirect(request: web.Request) -> web.Response:
    return see_other(f"{PREFIX}/")


def _login_page(request: web.Request, *, status: int, problem: str | None) -> web.Response:
    context = {
        "key_id": request.get(KEY_ID),
        "keys_configured": KEYS_FILE in request.app,
        "problem": problem,
        "next": _safe_next(request.query.get("next")),
    }
    response = aiohttp_jinja2.render_template("login.html", request, context, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="vellum", error="invalid_token"'
    return response


def _safe_next(asked: object) -> str:
    """Where to go after logging in: a page of ours, never another site (`//host`)."""
    if isinstance(asked, str) and asked.startswith(f"{PREFIX}/") and asked.isprintable():
        return asked
    return f"{PREFIX}/"


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def is_https(request: web.Request) -> bool:
    """The cookie is Secure over https, also behind a proxy that ends TLS and says so
    (X-Forwarded-Proto can only make the cookie stricter, so it is safe to believe)."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
