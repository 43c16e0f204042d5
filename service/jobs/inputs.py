"""An import reads the input its job was made for, or fails: the input's digest and ETag
are taken when the job is made, every read is pinned to that ETag (If-Match), and at the
job's end the SHA-256 of the bytes read is compared with the manifest's.

A job that reads its input from its first byte to its last in one run hashes the windows
as it reads them (no extra read); one resumed from a checkpoint reads the input once more
at its end to hash it whole.
"""

from __future__ import annotations

import hashlib

from service.jobs import model
from service.jobs.lines import WINDOW_BYTES
from service.storage.port import BulkStore


async def input_digest(store: BulkStore, key: str, size: int, *, if_match: str | None) -> str:
    """The SHA-256 (hex) of the `size` bytes of `key`, read in windows pinned to
    `if_match`."""
    digest = hashlib.sha256()
    for start in range(0, size, WINDOW_BYTES):
        digest.update(
            await store.get_range(key, start, min(start + WINDOW_BYTES, size), if_match=if_match)
        )
    return digest.hexdigest()


async def input_changed(
    store: BulkStore, manifest: model.Manifest, read_digest: str | None
) -> str | None:
    """Why the job must fail because its input is not the one it was made for, or None.

    `read_digest` is the SHA-256 of the bytes the job read, when it read them all in
    one run; else the input is hashed here. Jobs made before inputs were pinned (no
    ETag in the manifest) are not checked."""
    if manifest.input_etag is None:
        return None
    found = read_digest or await input_digest(
        store, manifest.input_key, manifest.input_bytes, if_match=manifest.input_etag
    )
    if found == manifest.input_sha256:
        return None
    return (
        f"input {manifest.input_key} has SHA-256 {found}, not the {manifest.input_sha256} "
        "it had when the job was made: it changed"
    )
