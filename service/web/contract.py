"""GET /openapi.json: the API's contract, encoded once at start-up (service.web.openapi)."""

from __future__ import annotations

from aiohttp import web

from service.media import APPLICATION_JSON
from service.web.typedefs import OPENAPI


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type=APPLICATION_JSON)
