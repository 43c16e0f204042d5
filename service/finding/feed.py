"""The change feed (SPEC §9): `index/changes/` in key order, which is the order of `at`.

One LIST per page, then one HEAD per entry: the entry counts when its record exists and
holds the SHA-256 the entry names (a failed write's or a duplicate's entry does not).
Only entries older than the settle window are read, and a write publishes its record
within that window or never (service.finding.entries), so an entry skipped once is
skipped for ever and none can appear behind a cursor given out.

An archive written before 2026-12-07 holds feed entries of the nested layout, and while
`vellum reindex` migrates it, both forms of one entry (service.finding.keys). The feed
places every entry at its flat form (`keys.flat_key`), which is its key order but for the
nested entries of one `at`, listed before the flat ones of that `at`: a flat entry placed
at or before the last entry walked (the cursor's place) is the twin of a nested one
walked already, and is passed over. A page that ends on one ends on that place (the flat
form of the last nested entry walked): listing after it passes over the rest of the twins.
"""

from __future__ import annotations

import asyncio
import itertools
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
    place = keys.flat_key(start)
    items: list[Change] = []
    for _ in range(MAX_PAGES):
        page = await store.list_page(
            keys.CHANGES, start_after=list_after(start, keys.CHANGES), limit=limit
        )
        settled = [keys.parse_change(key) for key in page]
        settled = [change for change in settled if change.at < horizon]
        places = [keys.flat_key(change.key) for change in settled]
        walked = list(itertools.accumulate(places, max, initial=place))[:-1]  # before each
        fresh = [here > before for here, before in zip(places, walked, strict=True)]
        looked = (change for change, new in zip(settled, fresh, strict=True) if new)
        valid = iter(await asyncio.gather(*(_published(store, change) for change in looked)))
        for change, here, new in zip(settled, places, fresh, strict=True):
            if not new:  # a nested entry's twin, walked already
                start = place
                continue
            start, place = change.key, here
            if next(valid):
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
