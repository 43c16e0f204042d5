"""The find page, `GET /ui/`: lookups by URL and by external id, and the latest changes.

The lookups are issue #17's (service.finding.lookups.Finder), with the API's parameters
read the same way (service.finding.params): `url` with `match` (exact, prefix, host,
domain), `from` and `to` (RFC 3339 or 4-14 digits of yyyyMMddhhmmss), or `external_id`;
`cursor` pages on. A field left empty in the form counts as not given. A bad parameter is
said beside the form (status 400), like the API's problem would say it.

The change feed is read forward from a cursor, so its newest entries cannot be listed
directly. The page reads the feed from the start of ever wider windows (10 minutes, an
hour, a day, a week, 30 days, a year, all of it) until one holds LATEST entries, reading
at most FEED_READS pages of FEED_PAGE from it, and shows the newest LATEST it saw, newest
first: a handful of listings on any archive, and exact unless more than
FEED_READS x FEED_PAGE versions became visible in that window.
"""

from __future__ import annotations

import collections
from datetime import timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from service.errors import BadParameter
from service.finding import keys, params
from service.finding.cursors import encode_cursor
from service.finding.lookups import Finder
from service.finding.model import Captures, Change
from service.timestamps import utc_now
from service.web.typedefs import KEY_ID, SERVICES

LATEST = 20
FEED_PAGE = 1000
FEED_READS = 5
WINDOWS = (
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=7),
    timedelta(days=30),
    timedelta(days=365),
    None,  # the whole feed
)
MATCHES = ("exact", "prefix", "host", "domain")


async def find_page(request: web.Request) -> web.Response:
    finder = request.app[SERVICES].finder
    asked = {name: value for name, value in request.query.items() if value.strip()}
    context: dict[str, Any] = {
        "key_id": request.get(KEY_ID),
        "asked": asked,
        "matches": MATCHES,
        "captures": None,
        "lookup": None,
        "problem": None,
    }
    status = 200
    try:
        if "url" in asked or "external_id" in asked:
            context["lookup"] = "url" if "url" in asked else "external_id"
            context["captures"] = await _captures(finder, asked)
    except BadParameter as error:
        context["problem"], status = error.detail, error.status
    context["latest"] = await latest_changes(finder)
    return aiohttp_jinja2.render_template("find.html", request, context, status=status)


async def _captures(finder: Finder, asked: dict[str, str]) -> Captures:
    if "url" in asked and "external_id" in asked:
        raise BadParameter("give url or external_id, not both", parameter="external_id")
    since = params.moment(asked["from"], "from", end=False) if "from" in asked else None
    until = params.moment(asked["to"], "to", end=True) if "to" in asked else None
    limit = params.limit(asked.get("limit"))
    cursor = asked.get("cursor")
    if "external_id" in asked:
        return await finder.by_external_id(
            asked["external_id"], since=since, until=until, limit=limit, cursor=cursor
        )
    match = params.match(asked.get("match"))
    return await finder.by_url(
        asked["url"], match, since=since, until=until, limit=limit, cursor=cursor
    )


async def latest_changes(finder: Finder) -> list[Change]:
    """The newest LATEST entries of the change feed, newest first (the module says how)."""
    now = utc_now()
    newest: collections.deque[Change] = collections.deque(maxlen=LATEST)
    for window in WINDOWS:
        newest.clear()
        after = None if window is None else encode_cursor(keys.CHANGES + keys.at_text(now - window))
        for _ in range(FEED_READS):
            page = await finder.changes(after, FEED_PAGE)
            newest.extend(page.items)
            if len(page.items) < FEED_PAGE:
                break
            after = page.next
        if len(newest) == LATEST:
            break
    return list(reversed(newest))
