"""Handlers of the lookups (SPEC §9): by URL or external id, near-duplicates, the change
feed. Parameters are read here (service.finding.params), the lookups are service.finding's."""

from __future__ import annotations

import msgspec
from aiohttp import web

from service import media
from service.errors import BadParameter
from service.finding import params
from service.finding.model import Similar
from service.ids import parse_id
from service.web.typedefs import DOCUMENT_ID, SERVICES

_json = msgspec.json.Encoder()


def _one(request: web.Request, name: str) -> str | None:
    """The parameter's value; BadParameter when it is given more than once."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise BadParameter(f"{name} may be given once", parameter=name)
    return values[0] if values else None


def _answer(body: object) -> web.Response:
    return web.Response(body=_json.encode(body), content_type=media.APPLICATION_JSON)


async def find_documents(request: web.Request) -> web.Response:
    """`?url=…` (with `match`) or `?external_id=…`; `from`, `to`, `limit`, `cursor`."""
    url, external_id = _one(request, "url"), _one(request, "external_id")
    if url is not None and external_id is not None:
        raise BadParameter("give url or external_id, not both", parameter="external_id")
    asked_from, asked_to = _one(request, "from"), _one(request, "to")
    since = None if asked_from is None else params.moment(asked_from, "from", end=False)
    until = None if asked_to is None else params.moment(asked_to, "to", end=True)
    limit = params.limit(_one(request, "limit"))
    cursor = _one(request, "cursor")
    finder = request.app[SERVICES].finder
    if external_id is not None:
        if _one(request, "match") is not None:
            raise BadParameter("match applies to url only", parameter="match")
        found = await finder.by_external_id(
            external_id, since=since, until=until, limit=limit, cursor=cursor
        )
        return _answer(found)
    if url is None:
        raise BadParameter("give url (or external_id) to look documents up", parameter="url")
    match = params.match(_one(request, "match"))
    found = await finder.by_url(url, match, since=since, until=until, limit=limit, cursor=cursor)
    return _answer(found)


async def similar(request: web.Request) -> web.Response:
    document_id = parse_id(request.match_info["id"])
    request[DOCUMENT_ID] = document_id
    max_distance = params.max_distance(_one(request, "max_distance"))
    items = await request.app[SERVICES].finder.similar(document_id, max_distance)
    return _answer(Similar(items=items))


async def changes(request: web.Request) -> web.Response:
    after = _one(request, "after")
    limit = params.limit(_one(request, "limit"))
    return _answer(await request.app[SERVICES].finder.changes(after, limit))
