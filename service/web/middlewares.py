"""Middlewares: the request's context and log line, and problem+json for every error.

`request_context` (outermost) picks the request id (the client's `X-Request-ID` if it
is 1-128 characters of `[A-Za-z0-9._:-]`, else a new one), binds it for structlog, sets
it on every response and logs one line per request. It also counts the requests in
flight, which a graceful shutdown waits for, and records each request's metrics by its
route's canonical path. `problems` turns Vellum's exception tree, aiohttp's HTTP
errors and anything unexpected into RFC 9457 problem responses.
"""

from __future__ import annotations

import re
import time
import uuid
from urllib.parse import urlsplit

import msgspec
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from service.errors import (
    CrossSiteRequest,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RequestError,
    RequestTimeout,
    TooManyAttempts,
    VellumError,
)
from service.media import PROBLEM_JSON
from service.web.typedefs import BODY_BYTES, CONFIG, DOCUMENT_ID, LIFECYCLE, METRICS, REQUEST_ID

log = structlog.get_logger("vellum.http")

_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_problem_encoder = msgspec.json.Encoder()
RETRY_AFTER_SECONDS = 1


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    asserted = request.headers.get("X-Request-ID", "")
    request_id = asserted if _VALID_REQUEST_ID.fullmatch(asserted) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    lifecycle = request.app[LIFECYCLE]
    metrics = request.app[METRICS]
    lifecycle.request_started()
    metrics.in_flight.inc()
    status: int | str = "aborted"  # no response: the client went away, or a bug
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as exc:  # below 400 (a redirect): aiohttp answers it
        status = exc.status
        raise
    except BaseException:
        log.warning("request_aborted", **_request_fields(request, started))
        raise
    finally:
        lifecycle.release_body(request.get(BODY_BYTES, 0))
        lifecycle.request_finished()
        metrics.in_flight.dec()
        metrics.request_answered(
            request.method, _route(request), status, time.perf_counter() - started
        )
    if lifecycle.draining:
        response.force_close()  # keep-alive clients reconnect to another replica
    response.headers["X-Request-ID"] = request_id
    log.info("request", status=response.status, **_request_fields(request, started))
    return response


# Routes that must answer however busy the server is: probes and scrapes.
_NEVER_SHED = frozenset({"/healthz", "/readyz", "/metrics"})


@web.middleware
async def load_shedding(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse work beyond `max_in_flight` requests with 503 + Retry-After, at once,
    rather than queueing it without limit."""
    limit = request.app[CONFIG].max_in_flight
    if request.app[LIFECYCLE].in_flight > limit and _route(request) not in _NEVER_SHED:
        request.app[METRICS].shed.inc()
        raise Overloaded(
            f"more than {limit} requests are in flight; retry shortly", limit_in_flight=limit
        )
    return await handler(request)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def same_site_writes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """403 for a POST, PUT, PATCH or DELETE that a browser made from another site:
    `Sec-Fetch-Site` other than same-origin or none (typed by the user), or an `Origin`
    that is not this server's. Clients other than browsers send neither header."""
    if request.method not in _SAFE_METHODS:
        fetch_site = request.headers.get("Sec-Fetch-Site")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            raise CrossSiteRequest(
                f"a browser sent this {request.method} from another site ({fetch_site})"
            )
        origin = request.headers.get("Origin")
        if origin is not None and not _same_origin(origin, request):
            raise CrossSiteRequest(f"a browser sent this {request.method} from another origin")
    return await handler(request)


def _same_origin(origin: str, request: web.Request) -> bool:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower()


def _route(request: web.Request) -> str | None:
    """The matched route's canonical path (`/v1/documents/{id}`); None if none matched."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else None


def _request_fields(request: web.Request, started: float) -> dict[str, object]:
    return {
        "method": request.method,
        "route": _route(request),
        "path": request.path,
        "document_id": request.get(DOCUMENT_ID),
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except VellumError as exc:
        error = exc
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = from_aiohttp(exc)
    except Exception:
        log.exception("unhandled_error")
        error = VellumError("an unexpected error occurred; the request id identifies it")
    if error.status >= 500:
        log.error("request_failed", problem=error.slug, detail=error.detail)
    return problem_response(request, error)


def from_aiohttp(exc: web.HTTPException) -> VellumError:
    """aiohttp's own HTTP errors (no route, no such method, too large) as Vellum's."""
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return MethodNotAllowed(
            f"{exc.method} is not allowed here",
            allowed=sorted(exc.allowed_methods),
        )
    if exc.status == 404:
        return NotFound("no such resource")
    if exc.status == 413:
        return PayloadTooLarge("the body is too large")
    error = RequestError(exc.reason)
    error.status = exc.status
    return error


def problem_response(request: web.Request, error: VellumError) -> web.Response:
    body = {**error.problem(), "instance": request.path, "request_id": request.get(REQUEST_ID)}
    response = web.Response(
        status=error.status,
        body=_problem_encoder.encode(body),
        content_type=PROBLEM_JSON,
        headers=problem_headers(error),
    )
    if isinstance(error, RequestTimeout):
        response.force_close()  # the rest of a body too slow to wait for is not read
    return response


def problem_headers(error: VellumError) -> dict[str, str]:
    """The headers an error's answer carries, whatever its body (problem+json or a page)."""
    headers = {}
    if error.status == 503:  # the error's own wait (S3 SlowDown asks for more), or 1 s
        wait = error.extensions.get("retry_after_seconds", RETRY_AFTER_SECONDS)
        headers["Retry-After"] = str(wait)
    if isinstance(error, TooManyAttempts):
        headers["Retry-After"] = str(error.extensions["retry_after_seconds"])
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.extensions["allowed"])
    return headers
