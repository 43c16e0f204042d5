"""The storage port: what Vellum needs from an object store, and nothing more.

Keys are relative to the archive (the adapter adds its configured prefix). Objects are
never overwritten: `put_if_absent` is the only write, a conditional create whose body the
server verifies against the SHA-256 the caller computed.

Errors: `ObjectNotFound` for a missing key, `StorageUnavailable` when the store cannot be
reached or answers with a server error, `StorageError` for anything else.
"""

from __future__ import annotations

from typing import Protocol


class ObjectStore(Protocol):
    async def put_if_absent(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str
    ) -> bool:
        """Create `key` holding `data` unless it exists. True if this call created it."""

    async def get(self, key: str) -> bytes:
        """The object's bytes; ObjectNotFound if there is none."""

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`, in lexicographic order."""

    async def check(self) -> None:
        """Return if the store is reachable and the bucket exists, else raise."""
