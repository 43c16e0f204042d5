"""Typed keys of the objects an application holds (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from service.archive import Archive
from service.config import Config
from service.ingest import Ingestor
from service.storage.port import ObjectStore


@dataclass
class Lifecycle:
    """Mutable serving state: set to draining on SIGTERM so /readyz turns 503."""

    draining: bool = False


CONFIG = web.AppKey("config", Config)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
STORE = web.AppKey("store", ObjectStore)
ARCHIVE = web.AppKey("archive", Archive)
INGESTOR = web.AppKey("ingestor", Ingestor)
