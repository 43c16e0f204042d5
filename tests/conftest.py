"""Shared fixtures: a fresh archive per test, in memory or on one real SeaweedFS.

Two tiers. `store` (and `client`, the app over it) is the in-memory adapter, held to the
S3 adapter's contract by tests/test_storage.py: the unit tier, `make test-fast`, needs no
server. `s3_store` is the S3 adapter on a real SeaweedFS S3 server, Vellum's own
`EmbeddedS3` on free loopback ports in a temp dir, started once per session and stopped by
its pid; every test gets its own key prefix in the one bucket, so tests never see each
other's objects. A test that uses the server is marked `integration` here, by the fixtures
it needs, as are the modules in `INTEGRATION_MODULES` (they start servers of their own).
AWS_* variables are stripped so a developer's credentials never reach a test.
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
from service.storage.memory import MemoryStore
from service.storage.port import ObjectStore
from service.storage.s3 import S3ObjectStore, S3Settings

CORPUS = Path(
    os.environ.get("ARTICLE_CORPUS_DIR", Path(__file__).resolve().parents[2] / "shared/corpus")
)


# Modules whose tests start `weed`, `vellum` or analysis processes themselves.
INTEGRATION_MODULES = frozenset(
    {
        "test_analysis",
        "test_deploy",
        "test_embedded",
        "test_server",
        "test_slow_clients",
        "test_storage_faults",
        "test_workers",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if "s3_server" in getattr(item, "fixturenames", ()) or module in INTEGRATION_MODULES:
            item.add_marker(pytest.mark.integration)


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
        asyncio.run(server.wait_ready())
        yield settings
    finally:
        server.stop()


@pytest.fixture
def s3_settings(s3_server: S3Settings) -> S3Settings:
    """The session server's settings with a prefix of this test's own."""
    return msgspec.structs.replace(s3_server, prefix=f"tests/{uuid.uuid4().hex}")


@pytest.fixture
async def s3_store(s3_settings: S3Settings) -> AsyncIterator[S3ObjectStore]:
    """The S3 adapter on the session's real server, under this test's own prefix."""
    adapter = S3ObjectStore(s3_settings)
    yield adapter
    await adapter.close()


@pytest.fixture
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """A fresh archive: in memory (the unit tier), unless the test also uses the real
    server (`s3_settings`, e.g. to run `vellum` against it): then the S3 adapter on it,
    so the test sees what that server holds."""
    if "s3_settings" in request.fixturenames:
        s3: S3ObjectStore = request.getfixturevalue("s3_store")
        return s3
    return MemoryStore()


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
async def client(make_client, store: ObjectStore) -> AsyncIterator[TestClient]:  # type: ignore[no-untyped-def]
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
