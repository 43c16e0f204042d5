"""Every typed key of the web layer, in one place: what an application holds (no globals)
and what a request carries from middleware to handler (as aiohttp-demos' typedefs.py)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from service.bootstrap import Services
from service.config import Config
from service.keys import KeysFile
from service.metrics import Metrics
from service.web.lifecycle import Lifecycle
from service.web.readiness import Readiness

# The application's.
CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", Metrics)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
# The storage's readiness, cached briefly (service.web.readiness).
READINESS = web.AppKey("readiness", Readiness)
# The composition root's services (service.bootstrap), from start-up to cleanup.
SERVICES = web.AppKey("services", Services)
# Set when this server accepts an import, so its import poller looks at once.
IMPORT_WAKE = web.AppKey("import_wake", asyncio.Event)
# The OpenAPI document, encoded once at start-up (service.web.openapi).
OPENAPI = web.AppKey("openapi", bytes)
# API keys (service.web.auth), when configured; one scrypt check at a time.
KEYS_FILE = web.AppKey("keys_file", KeysFile)
SCRYPT_SLOT = web.AppKey("scrypt_slot", asyncio.Lock)

# A request's.
REQUEST_ID = web.RequestKey("request_id", str)
DOCUMENT_ID = web.RequestKey("document_id", str)
KEY_ID = web.RequestKey("key_id", str)  # the API key's id, never the key
# Body bytes this request holds, counted in Lifecycle.body_bytes until it ends.
BODY_BYTES = web.RequestKey("body_bytes", int)
