"""GET /metrics: the application's Prometheus registry in the format the scraper asks for
(the Prometheus text format, or OpenMetrics when the Accept header prefers it)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from service.web.typedefs import METRICS


async def metrics(request: web.Request) -> web.Response:
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encode(request.app[METRICS].exposition())
    return web.Response(body=body, headers={"Content-Type": content_type})
