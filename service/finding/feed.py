"""The change feed (SPEC §9): `index/changes/` in key order, which is the order of `at`.

One LIST per page, then one HEAD per entry: the entry counts when its record exists and
holds the SHA-256 the entry names (a failed write's or a duplicate's entry does not).
Only entries older than the settle window are read, and a write publishes its record
within that window or never (service.finding.entries), so an entry skipped once is
skipped for ever and none can appear behind a cursor given out.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from service.errors import ObjectNotFound
from service.finding import keys
from service.finding.cursors import MAX_PAGES, decode_cursor, encode_cursor, list_after
from service.finding.model import Change, Changes
from service.ids import record_key
from service.storage.port import ObjectStore
from service.timestamps import rfc3339


async def read_changes(
    store: ObjectStore, after: str | None, limit: int, horizon: datetime
) -> Changes:
    """Record versions in order of `at`, after the cursor `after` (from the start when
    None), only those whose `at` is before `horizon` (now less the settle window)."""
    start = decode_cursor(after, "after", keys.CHANGES) if after else keys.CHANGES
    items: list[Change] = []
    for _ in range(MAX_PAGES):
        page = await store.list_page(
            keys.CHANGES, start_after=list_after(start, keys.CHANGES), limit=limit
        )
        settled = [keys.parse_change(key) for key in page]
        settled = [change for change in settled if change.at < horizon]
        valid = await asyncio.gather(*(_published(store, change) for change in settled))
        for change, published in zip(settled, valid, strict=True):
            start = change.key
            if published:
                items.append(_change(change))
            if len(items) == limit:
                return Changes(items=items, next=encode_cursor(start))
        if len(settled) < len(page) or len(page) < limit:
            break
    return Changes(items=items, next=encode_cursor(start))


async def _published(store: ObjectStore, change: keys.Change) -> bool:
    """Whether the entry's record exists and is the one this entry was written for."""
    try:
        info = await store.head(record_key(change.id, change.version))
    except ObjectNotFound:
        return False
    return info.sha256 == change.record_sha256


def _change(change: keys.Change) -> Change:
    return Change(
        id=change.id,
        version=change.version,
        at=rfc3339(change.at),
        received_at=rfc3339(change.received),
        cursor=encode_cursor(change.key),
    )
