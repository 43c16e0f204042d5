"""Handlers of /v1/imports: start a bulk import, follow it, read its errors and results."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import structlog
from aiohttp import web

from service import media
from service.errors import (
    NotFound,
    ObjectNotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    VellumError,
)
from service.jobs import model
from service.jobs.imports import Jobs
from service.jobs.lines import LineCounter
from service.timestamps import now_text
from service.web.body import stream_body
from service.web.pace import RateFloor
from service.web.typedefs import IMPORT_WAKE, KEY_ID, LIFECYCLE, REQUEST_ID, SERVICES

NDJSON = media.APPLICATION_NDJSON
_ACCEPTED = (NDJSON, "application/jsonl", "application/x-jsonlines")
_json = msgspec.json.Encoder()
log = structlog.get_logger("vellum.imports")


async def create_import(request: web.Request) -> web.Response:
    """Stream the body into storage (never whole in memory), then queue the job: 202.

    The body holds one of `max_import_uploads` slots while it arrives, and must keep
    above its rate floor (`service.web.pace`); on any failure the adapter aborts the
    multipart upload, and the sweep (`service.jobs.uploads`) aborts any left open."""
    declared = media.parse_media_type(request.headers.get("Content-Type"))
    if declared.essence not in _ACCEPTED:
        raise UnsupportedMediaType(
            f"{declared.essence!r} is not accepted; send {NDJSON}", supported=list(_ACCEPTED)
        )
    config = request.app[SERVICES].config
    jobs = request.app[SERVICES].jobs
    job = model.new_job_id()
    lines = LineCounter()

    floor = RateFloor(
        config.import_min_bytes_per_second,
        config.import_rate_window_seconds,
        now=asyncio.get_running_loop().time(),
    )

    async def body() -> AsyncIterator[bytes]:
        async for chunk in stream_body(
            request,
            idle_seconds=config.body_timeout_seconds,
            floor=floor,
            max_seconds=config.import_upload_max_seconds,
        ):
            lines.feed(chunk)
            yield chunk

    if request.content_length is not None and request.content_length > config.max_import_bytes:
        raise PayloadTooLarge(
            f"the import is larger than the limit of {config.max_import_bytes} bytes",
            limit_bytes=config.max_import_bytes,
        )
    with request.app[LIFECYCLE].import_upload(config.max_import_uploads):
        uploaded = await jobs.store.upload(
            model.input_key(job), body(), content_type=NDJSON, limit=config.max_import_bytes
        )
    manifest = model.Manifest(
        job=job,
        created_at=now_text(),
        channel="http",
        input_key=model.input_key(job),
        input_bytes=uploaded.size,
        input_sha256=uploaded.sha256.hex(),
        input_lines=lines.count,
        input_etag=(await jobs.store.head(model.input_key(job))).etag,
        request_id=request[REQUEST_ID],
        submitter=request.get(KEY_ID),
    )
    checkpoint = await jobs.create(manifest)
    request.app[IMPORT_WAKE].set()
    status = model.JobStatus.of(manifest, checkpoint)
    return web.Response(
        status=202,
        body=_json.encode(status),
        content_type=media.APPLICATION_JSON,
        headers={"Location": status.links.self},
    )


async def get_import(request: web.Request) -> web.Response:
    jobs, job = await _job(request)
    status = model.JobStatus.of(await jobs.manifest(job), await jobs.latest(job))
    return web.Response(body=_json.encode(status), content_type=media.APPLICATION_JSON)


async def cancel_import(request: web.Request) -> web.Response:
    """Ask for the job to stop; it ends `cancelled` at its next chunk boundary."""
    jobs, job = await _job(request)
    latest = await jobs.latest(job)
    if latest.state not in model.TERMINAL:
        await jobs.cancel(job)
    status = model.JobStatus.of(await jobs.manifest(job), latest)
    return web.Response(status=202, body=_json.encode(status), content_type=media.APPLICATION_JSON)


async def get_errors(request: web.Request) -> web.StreamResponse:
    return await _stream_chunks(request, "errors")


async def get_results(request: web.Request) -> web.StreamResponse:
    return await _stream_chunks(request, "results")


async def _stream_chunks(request: web.Request, kind: str) -> web.StreamResponse:
    """The job's entries of one kind as NDJSON, in line order, chunk by chunk.

    A storage error before the first chunk is read is a problem answer. One after the 200
    has begun cannot be: the connection is aborted instead (no chunked terminator), so a
    client never takes a cut-off listing for a whole one."""
    jobs, job = await _job(request)
    keys = await jobs.chunks(job, kind)
    first = await jobs.store.get(keys[0]) if keys else b""
    response = web.StreamResponse(headers={"Content-Type": NDJSON})
    await response.prepare(request)
    await response.write(first)
    for key in keys[1:]:
        try:
            data = await jobs.store.get(key)
        except VellumError as error:
            log.warning("import_listing_aborted", job=job, kind=kind, problem=error.slug)
            response.force_close()
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write(data)
    await response.write_eof()
    return response


async def _job(request: web.Request) -> tuple[Jobs, str]:
    job = model.parse_job_id(request.match_info["job"])
    jobs = request.app[SERVICES].jobs
    try:
        await jobs.manifest(job)
    except ObjectNotFound:
        raise NotFound(f"no import job {job}", job=job) from None
    return jobs, job
