"""The `authenticate` middleware: API keys and their scopes (keys: service.keys).

When keys are configured (VELLUM_KEYS_FILE), a route whose entry in service.web.endpoints
names a scope needs `Authorization: Bearer vk_<id>_<secret>` of a key with that scope
(`admin` implies the others). No or an unknown key: 401 `unauthorized` with
`WWW-Authenticate: Bearer realm="vellum"` (plus `error="invalid_token"` when a key was
given); a key without the scope: 403 `forbidden` naming it; a known key id with too many
wrong secrets lately: 429 `too-many-attempts` with `Retry-After`, without running scrypt.
Unverified tokens are checked one at a time, off the event loop, so wrong secrets cannot
take more than one core; an attempt is reserved before its scrypt (so a burst of wrong
secrets for one key id runs at most the allowance), and beyond `MAX_UNVERIFIED_WAITING`
tokens waiting for scrypt a request gets 503 `overloaded` at once. The key's id (never
the key) is bound for the request's log line and kept on the request for provenance.

Paths no route has, and methods a path lacks, pass through to their 404 and 405; a route
missing from the table needs `admin`. The pages under /ui are not API routes: they take
a session cookie instead (service.web.ui.guard), whose login checks the key with
`key_of`, under the same limits.
"""

from __future__ import annotations

import asyncio
import math

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from service import keys as keys_module
from service.errors import Forbidden, Overloaded, TooManyAttempts, Unauthorized
from service.keys import KeyEntry, Keyring, KeysFile, Scope, parse_token
from service.web.endpoints import ROUTES
from service.web.middlewares import problem_response
from service.web.typedefs import KEY_ID, KEYS_FILE, SCRYPT_SLOT
from service.web.ui import PREFIX as PAGES_PREFIX

SCOPES: dict[tuple[str, str], Scope | None] = {
    (route.method, route.path): route.scope for route in ROUTES
}


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    keys = request.app.get(KEYS_FILE)
    resource = request.match_info.route.resource
    if keys is None or resource is None or resource.canonical.startswith(PAGES_PREFIX):
        return await handler(request)
    method = "GET" if request.method == "HEAD" else request.method
    scope = SCOPES.get((method, resource.canonical), "admin")
    if scope is None:
        return await handler(request)
    try:
        await _authorize(request, keys, scope)
    except (Unauthorized, Forbidden) as error:
        response = problem_response(request, error)
        response.headers["WWW-Authenticate"] = error.challenge
        return response
    except (TooManyAttempts, Overloaded) as error:
        return problem_response(request, error)
    return await handler(request)


async def _authorize(request: web.Request, keys: KeysFile, scope: Scope) -> None:
    """Note the request's key, which has `scope`; else raise Unauthorized or Forbidden."""
    header = request.headers.get("Authorization")
    if header is None:
        raise Unauthorized(
            "this route needs an API key: Authorization: Bearer <key>", token_given=False
        )
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be: Bearer <key>", token_given=False)
    entry = await key_of(request, keys, token.strip())
    if entry is None:
        raise Unauthorized("the API key is malformed, unknown or revoked", token_given=True)
    request[KEY_ID] = entry.id
    structlog.contextvars.bind_contextvars(key_id=entry.id)
    if not entry.allows(scope):
        raise Forbidden(
            f"API key {entry.id} lacks the {scope!r} scope this route needs", required_scope=scope
        )


async def key_of(request: web.Request, keys: KeysFile, token: str) -> KeyEntry | None:
    """The key a token is, or None; TooManyAttempts or Overloaded when it cannot be
    checked now. Costs a scrypt only the first time a process sees the token."""
    keyring = keys.keyring()
    entry = keyring.cached(token)
    if entry is None:
        entry = await _verify(request.app[SCRYPT_SLOT], keys, keyring, token)
    return entry


async def _verify(
    slot: asyncio.Lock, keys: KeysFile, keyring: Keyring, token: str
) -> KeyEntry | None:
    """The key of a token not verified yet, or None. scrypt (tens of milliseconds) runs
    only for a well-formed token of a known key id that has not failed too often."""
    parsed = parse_token(token)
    if parsed is None or parsed[0] not in keyring.entries:
        return None
    key_id = parsed[0]
    wait = keys.failures.reserve(key_id)
    if wait is not None:
        seconds = math.ceil(wait)
        raise TooManyAttempts(
            f"too many wrong secrets for API key {key_id} lately; retry in {seconds} s",
            retry_after_seconds=seconds,
        )
    entry: KeyEntry | None = None
    ran = False
    try:
        limit = keys_module.MAX_UNVERIFIED_WAITING
        if keys.waiting >= limit:
            raise Overloaded(
                f"more than {limit} API keys are waiting to be checked; retry shortly",
                limit_waiting=limit,
            )
        keys.waiting += 1
        try:
            async with slot:
                ran = True
                entry = await asyncio.to_thread(keyring.verify, token)
        finally:
            keys.waiting -= 1
    finally:
        keys.failures.settle(key_id, failed=ran and entry is None)
    return entry
