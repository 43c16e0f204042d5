"""The web application over the composition root's services (service.bootstrap).

`create_app` registers every route of the table in service.web.endpoints, and the pages
of service.web.ui.routes, and starts the services with one `cleanup_ctx` generator, so
their whole life is in one place: opened at start-up (the storage first), closed after
in-flight requests have finished (the storage last). Two more run this server's import
poller and stale-upload sweep on them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from service.bootstrap import open_services
from service.config import Config, shared_metrics_dir
from service.jobs.poller import ImportPoller
from service.jobs.uploads import sweep_stale_uploads
from service.keys import KeysFile
from service.metrics import Metrics
from service.storage.port import BulkStore
from service.web import openapi
from service.web.auth import authenticate
from service.web.endpoints import ROUTES
from service.web.lifecycle import Lifecycle
from service.web.middlewares import load_shedding, problems, request_context, same_site_writes
from service.web.readiness import Readiness
from service.web.typedefs import (
    CONFIG,
    IMPORT_WAKE,
    KEYS_FILE,
    LIFECYCLE,
    METRICS,
    OPENAPI,
    READINESS,
    SCRYPT_SLOT,
    SERVICES,
)
from service.web.ui.guard import pages
from service.web.ui.routes import install_pages


def create_app(config: Config, *, store: BulkStore | None = None) -> web.Application:
    """The Vellum application. Pass `store` to use an already open storage adapter."""
    app = web.Application(
        middlewares=[
            request_context,
            authenticate,
            problems,
            pages,
            same_site_writes,
            load_shedding,
        ],
        client_max_size=config.max_body_bytes,
    )
    app[CONFIG] = config
    app[LIFECYCLE] = Lifecycle()
    app[METRICS] = Metrics(shared_metrics_dir())
    app[IMPORT_WAKE] = asyncio.Event()
    app[OPENAPI] = openapi.encoded(ROUTES)
    app[READINESS] = Readiness()
    if config.keys_file is not None:
        app[KEYS_FILE] = KeysFile(config.keys_file)
        app[SCRYPT_SLOT] = asyncio.Lock()

    async def services(app: web.Application) -> AsyncIterator[None]:
        async with open_services(config, store=store, metrics=app[METRICS]) as opened:
            app[SERVICES] = opened
            yield

    app.cleanup_ctx.append(services)
    app.cleanup_ctx.append(_import_poller)
    app.cleanup_ctx.append(_stale_upload_sweep)
    for route in ROUTES:
        if route.method == "GET":
            app.router.add_get(route.path, route.handler)  # HEAD too
        else:
            app.router.add_route(route.method, route.path, route.handler)
    install_pages(app)
    return app


async def _import_poller(app: web.Application) -> AsyncIterator[None]:
    """Run open import jobs in the background, unless VELLUM_IMPORT_WORKER=false."""
    if not app[CONFIG].import_worker:
        yield
        return
    services = app[SERVICES]
    poller = ImportPoller(services.jobs, services.runner, app[IMPORT_WAKE])
    task = asyncio.create_task(poller.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _stale_upload_sweep(app: web.Application) -> AsyncIterator[None]:
    """Abort abandoned import uploads at start-up and then hourly (service.jobs.uploads)."""
    services = app[SERVICES]
    task = asyncio.create_task(
        sweep_stale_uploads(
            services.store, upload_max_seconds=services.config.import_upload_max_seconds
        )
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
