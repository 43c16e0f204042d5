"""Shared fixtures: one real SeaweedFS S3 server per session, a fresh archive per test.

The server is Vellum's own `EmbeddedS3` on free loopback ports in a temp dir, stopped
by its pid at the end of the session. Every test gets its own key prefix in the one
bucket, so tests never see each other's objects. AWS_* variables are stripped so a
developer's credentials never reach a test.
"""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.config import Config
from service.logging import configure_logging
from service.storage.embedded import EmbeddedS3
from service.storage.port import ObjectStore
from service.storage.s3 import S3ObjectStore, S3Settings

CORPUS = Path(
    os.environ.get("ARTICLE_CORPUS_DIR", Path(__file__).resolve().parents[2] / "shared/corpus")
)


@pytest.fixture(scope="session", autouse=True)
def _no_aws_environment() -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("AWS_")}
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Settings]:
    """A real SeaweedFS S3 server for the whole session."""
    server = EmbeddedS3(tmp_path_factory.mktemp("seaweedfs"), bucket="vellum-test")
    settings = server.start()
    try:
        probe = S3ObjectStore(settings)
        try:
            asyncio.run(server.wait_ready(probe))
        finally:
            probe.close()
        yield settings
    finally:
        server.stop()


@pytest.fixture
def s3_settings(s3_server: S3Settings) -> S3Settings:
    """The session server's settings with a prefix of this test's own."""
    return msgspec.structs.replace(s3_server, prefix=f"tests/{uuid.uuid4().hex}")


@pytest.fixture
def store(s3_settings: S3Settings) -> Iterator[S3ObjectStore]:
    adapter = S3ObjectStore(s3_settings)
    yield adapter
    adapter.close()


@pytest.fixture
def config() -> Config:
    # In-process analysis: a pool of processes per test app would cost a start each.
    return Config(
        max_body_bytes=5 * 1024 * 1024, max_metadata_bytes=64 * 1024, analysis_processes=0
    )


@pytest.fixture
def make_client(aiohttp_client, config: Config):  # type: ignore[no-untyped-def]
    """Build a test client of the Vellum app over a given store (and config)."""

    async def make(store: ObjectStore, app_config: Config | None = None) -> TestClient:
        app: web.Application = create_app(app_config or config, store=store)
        return await aiohttp_client(app)

    return make


@pytest.fixture
async def client(make_client, store: S3ObjectStore) -> AsyncIterator[TestClient]:  # type: ignore[no-untyped-def]
    return await make_client(store)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Vellum's log, as JSON lines, captured for the test."""
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    yield stream
    structlog.reset_defaults()


async def all_keys(store: ObjectStore) -> list[str]:
    return await store.list_keys("")
