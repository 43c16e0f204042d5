"""The change feed is exactly-once with two servers writing to one bucket at once, one of
them slowed for part of the settle window, while a consumer follows the feed from the
start (SPEC §9). Real S3 (SeaweedFS); the delay is the one injected fault."""

from __future__ import annotations

import asyncio

from service.config import Config
from service.storage.s3 import S3ObjectStore, S3Settings

SETTLE_SECONDS = 2.0
WRITES_PER_SERVER = 12


class SlowStore:
    """The real store, with every index entry and record write held back: a writer slowed
    past part of the window (within its deadline, 60% of it)."""

    def __init__(self, inner: S3ObjectStore, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds

    async def put_if_absent(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str
    ) -> bool:
        if key.startswith(("index/", "records/")):
            await asyncio.sleep(self.seconds)
        return await self.inner.put_if_absent(key, data, sha256=sha256, content_type=content_type)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


async def test_two_writers_and_a_consumer_see_every_version_exactly_once(
    make_client, s3_settings: S3Settings
) -> None:
    config = Config(analysis_processes=0, changes_settle_seconds=SETTLE_SECONDS)
    fast_store, slow_inner = S3ObjectStore(s3_settings), S3ObjectStore(s3_settings)
    try:
        fast = await make_client(fast_store, config)
        slow = await make_client(SlowStore(slow_inner, 0.4), config)
        created: list[str] = []
        seen: list[tuple[str, int]] = []
        writing = True

        async def write(client, name: str) -> None:  # type: ignore[no-untyped-def]
            async def one(n: int) -> None:
                await asyncio.sleep(0.1 * n)  # spread over a few settle windows
                body = {"text": f"Written by the {name} server, number {n}."}
                response = await client.post("/v1/documents", json=body)
                assert response.status == 201, await response.text()
                created.append((await response.json())["id"])

            await asyncio.gather(*(one(n) for n in range(WRITES_PER_SERVER)))

        async def consume() -> None:
            after: str | None = None
            quiet_since: float | None = None
            loop = asyncio.get_running_loop()
            while True:
                query = {"limit": "5"} | ({"after": after} if after else {})
                page = await (await fast.get("/v1/changes", params=query)).json()
                seen.extend((item["id"], item["version"]) for item in page["items"])
                after = page["next"]
                if page["items"] or writing:
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = loop.time()
                elif loop.time() - quiet_since > SETTLE_SECONDS * 1.5:
                    return
                await asyncio.sleep(0.05)

        async def writers() -> None:
            nonlocal writing
            await asyncio.gather(write(fast, "fast"), write(slow, "slow"))
            writing = False

        await asyncio.gather(writers(), consume())
        assert len(created) == 2 * WRITES_PER_SERVER
        assert sorted(seen) == sorted((document_id, 1) for document_id in created)
        assert len(set(seen)) == len(seen)
    finally:
        await fast_store.close()
        await slow_inner.close()
