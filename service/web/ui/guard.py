"""The `pages` middleware: what every answer under /ui gets, and who may see the pages.

- Headers: a Content-Security-Policy that allows this server's stylesheet and nothing
  else (no script at all, not even ours: there is none), `nosniff`, no framing, no
  referrer to other sites (a page's address names a document; `same-origin`, not
  `no-referrer`, which makes a browser send `Origin: null` with our own form posts), and
  `no-store` but for the stylesheet.
- Access: with API keys configured, every page but the login form, logout and the
  stylesheet needs the session cookie of a key that still has the `read` scope
  (service.web.ui.session); without one a GET is sent to the login form, anything else
  gets 401. Without keys (loopback) the pages are open, like the API.
- Errors: an HTML page with the status, title and detail of the problem the API would
  have answered (and its Retry-After or Allow), never problem+json.

It runs inside `problems` and outside `same_site_writes`, so a form posted from another
site is refused (403) as the API's writes are, and the refusal is a page too.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import aiohttp_jinja2
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from service.errors import Forbidden, Unauthorized, VellumError
from service.web.middlewares import from_aiohttp, problem_headers
from service.web.typedefs import KEY_ID, KEYS_FILE, REQUEST_ID
from service.web.ui import PREFIX, session
from service.web.ui.pages import see_other

log = structlog.get_logger("vellum.http")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# Pages anyone may fetch, keys or not (canonical paths).
STYLESHEET = f"{PREFIX}/static/vellum.css"
OPEN = frozenset({f"{PREFIX}/login", f"{PREFIX}/logout", STYLESHEET})


@web.middleware
async def pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path != PREFIX and not request.path.startswith(f"{PREFIX}/"):
        return await handler(request)
    try:
        response = await _allowed(request, handler)
    except VellumError as error:
        response = error_page(request, error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_page(request, from_aiohttp(exc))
    except Exception:
        log.exception("unhandled_error")
        response = error_page(request, VellumError("an unexpected error occurred"))
    response.headers.update(SECURITY_HEADERS)
    if request.path != STYLESHEET:  # not even the API's `public, immutable` records here:
        response.headers["Cache-Control"] = "no-store"  # a session, not a key, fetched them
    return response


async def _allowed(request: web.Request, handler: Handler) -> web.StreamResponse:
    keys = request.app.get(KEYS_FILE)
    resource = request.match_info.route.resource
    if keys is None or resource is None or resource.canonical in OPEN:
        return await handler(request)
    entry = session.check(request.cookies.get(session.COOKIE), keys.keyring(), time.time())
    if entry is None:
        if request.method in ("GET", "HEAD"):
            return see_other(f"{PREFIX}/login?next={quote(request.rel_url.path_qs, safe='/')}")
        raise Unauthorized("log in first: these pages need an API key", token_given=False)
    request[KEY_ID] = entry.id
    structlog.contextvars.bind_contextvars(key_id=entry.id)
    if not entry.allows("read"):
        raise Forbidden(f"API key {entry.id} lacks the 'read' scope", required_scope="read")
    return await handler(request)


def error_page(request: web.Request, error: VellumError) -> web.Response:
    if error.status >= 500:
        log.error("request_failed", problem=error.slug, detail=error.detail)
    context = {"error": error, "request_id": request.get(REQUEST_ID), "key_id": request.get(KEY_ID)}
    response = aiohttp_jinja2.render_template("error.html", request, context, status=error.status)
    response.headers.update(problem_headers(error))
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = error.challenge
    return response
