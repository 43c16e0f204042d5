"""The cost of finding documents (SPEC §9, docs/performance.md "Finding documents").

In this process, on the bench's SeaweedFS, with the storage port counted call by call:

1. ingest with the indexes on, beside the same ingest with them off (records only): S3
   calls and CPU per document, Vellum's (this process, the normalizer in it) and the S3
   server's apart;
2. each lookup (by URL exact, prefix, host, domain; by external id; similar; a page of
   the change feed) over an archive of 10^4 (then 10^5) documents: the time and the S3
   calls of one lookup, median of `REPEATS`. The documents the lookups find (`PROBES`)
   are ingested whole; the rest of the archive is index entries written directly (a feed,
   a URL, a host, a subdomain and four band entries each, on other hosts), which is what
   a listing walks past.

`python -m bench.finding [--finding-sizes 10000,100000]` runs it alone on a SeaweedFS of
its own; `python -m bench` runs it last.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from bench import corpus, procstat
from bench.processes import seaweedfs
from bench.settings import parse
from service.analysis import Analyzer
from service.archive import Archive
from service.finding import hosts, keys
from service.finding.cursors import encode_cursor
from service.finding.entries import IndexWriter
from service.finding.lookups import Finder
from service.ingest import Arrival, Ingestor
from service.media import TEXT_PLAIN
from service.storage.s3 import S3ObjectStore, S3Settings
from service.submission import from_json_document
from service.timestamps import utc_now
from service.types import Record

INGEST_DOCS = 200
PROBES = 100
CAPTURES = 20  # of the probe URL, and of the probe external id
REPEATS = 7
CONCURRENCY = 16
_EMPTY = hashlib.sha256(b"").digest()
T = TypeVar("T")


class Counted:
    """The store, counting its calls by operation."""

    def __init__(self, inner: S3ObjectStore) -> None:
        self.inner = inner
        self.calls: collections.Counter[str] = collections.Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await method(*args, **kwargs)

        return counted


class IngestCost(msgspec.Struct, frozen=True):
    indexes: bool
    docs: int
    s3_calls_per_doc: dict[str, float]
    vellum_cpu_ms_per_doc: float
    seaweedfs_cpu_ms_per_doc: float
    docs_per_second: float


class LookupCost(msgspec.Struct, frozen=True):
    archive_docs: int
    lookup: str
    items: int
    s3_calls: dict[str, float]
    median_ms: float


class FindingResult(msgspec.Struct, frozen=True):
    ingest: list[IngestCost]
    lookups: list[LookupCost]
    populate_entries_per_second: float


class _RecordsOnly(IndexWriter):
    """The write protocol without index entries: the baseline of the ingest phase."""

    async def publish(self, record: Record) -> Record | None:
        if await self.archive.put_record(record):
            return None
        return await self.archive.record(record.id, record.version)


async def _bounded(items: Sequence[T], call: Callable[[T], Awaitable[object]], limit: int) -> None:
    """`call` on each item, `limit` at a time."""
    pending = iter(items)

    async def lane() -> None:
        for item in pending:
            await call(item)

    await asyncio.gather(*(lane() for _ in range(limit)))


def _submission(text: str, **source: str) -> Any:
    body = msgspec.json.encode({"text": text, "source": source})
    return from_json_document(body, max_metadata_bytes=65536)


async def _ingest_cost(
    store: Counted, texts: list[str], indexes: bool, weed_pid: int
) -> IngestCost:
    archive = Archive(store)
    writer = IndexWriter(archive) if indexes else _RecordsOnly(archive)
    ingestor = Ingestor(archive, Analyzer(0), indexes=writer)
    store.calls.clear()
    started, cpu, weed = time.perf_counter(), time.process_time(), procstat.tree_seconds(weed_pid)

    async def one(n: int) -> None:
        url = f"https://ingest.example.net/{indexes}/{n}"
        await ingestor.ingest(_submission(texts[n], url=url), Arrival(channel="http"))

    await _bounded(range(len(texts)), one, CONCURRENCY)
    docs = len(texts)
    return IngestCost(
        indexes=indexes,
        docs=docs,
        s3_calls_per_doc={name: count / docs for name, count in sorted(store.calls.items())},
        vellum_cpu_ms_per_doc=(time.process_time() - cpu) * 1000 / docs,
        seaweedfs_cpu_ms_per_doc=(procstat.tree_seconds(weed_pid) - weed) * 1000 / docs,
        docs_per_second=docs / (time.perf_counter() - started),
    )


async def _populate(store: S3ObjectStore, first: int, last: int) -> tuple[str, int]:
    """Entries of documents first..last-1 (no records): feed, URL, host, subdomain, four
    bands each; the key of the last feed entry, and how many entries were written."""
    rng = random.Random(first)  # noqa: S311 (filler)
    base = utc_now() - timedelta(days=1)
    entries: list[str] = []
    last_change = ""
    for n in range(first, last):
        document_id = hashlib.sha256(b"%d" % n).hexdigest()[:32].translate(_BASE32)
        at = base + timedelta(milliseconds=n)
        simhash = f"{rng.getrandbits(64):016x}"
        last_change = keys.change_key(at, document_id, 1, at, "0" * 64)
        host = f"org,example,h{n % 1000}"
        entries += [last_change, keys.lookup_key(keys.URL, f"{host})/a/{n}", at, document_id, 1)]
        entries += hosts.entry_keys(f"{host})/a/{n}", host, at, document_id, 1)
        entries += [keys.band_key(band, simhash, document_id, 1) for band in range(keys.BANDS)]

    async def put(key: str) -> None:
        await store.put_if_absent(key, b"", sha256=_EMPTY, content_type=TEXT_PLAIN)

    await _bounded(entries, put, 64)
    return last_change, len(entries)


_BASE32 = str.maketrans("0189", "2345")


async def _probes(store: Counted, texts: list[str]) -> list[Record]:
    ingestor = Ingestor(Archive(store), Analyzer(0))
    made: list[Record] = []

    async def one(n: int) -> None:
        path = "/story" if n < CAPTURES else f"/story/{n}"
        source = {"url": f"https://probe.example.com{path}"}
        if n < CAPTURES:
            source["external_id"] = "probe-1"
        outcome = await ingestor.ingest(
            _submission(texts[n % len(texts)] + f"\n\n[probe {n}]", **source),
            Arrival(channel="http"),
        )
        made.append(outcome.record)

    # 8 at once: a probe's 9 PUTs of entries (feed, URL, host, subdomain, external id,
    # bands), 16 documents at once, are more than the adapter lets wait (Overloaded).
    await _bounded(range(PROBES), one, CONCURRENCY // 2)
    return made


async def _lookups(store: Counted, size: int, probe: Record, after: str) -> list[LookupCost]:
    finder = Finder(Archive(store), clock=lambda: utc_now() + timedelta(seconds=60))
    cases: dict[str, Callable[[], Awaitable[int]]] = {
        "url exact": lambda: _count(finder.by_url("probe.example.com/story")),
        "url prefix": lambda: _count(finder.by_url("probe.example.com/story", "prefix")),
        "url host": lambda: _count(finder.by_url("probe.example.com", "host")),
        "url domain": lambda: _count(finder.by_url("example.com", "domain")),
        "external id": lambda: _count(finder.by_external_id("probe-1")),
        "similar": lambda: _len(finder.near(probe)),
        "changes page": lambda: _len_changes(finder.changes(encode_cursor(after), 100)),
    }
    results = []
    for name, run in cases.items():
        times, items = [], 0
        store.calls.clear()
        for _ in range(REPEATS):
            started = time.perf_counter()
            items = await run()
            times.append((time.perf_counter() - started) * 1000)
        calls = {op: count / REPEATS for op, count in sorted(store.calls.items())}
        results.append(LookupCost(size, name, items, calls, statistics.median(times)))
    return results


async def _count(page: Awaitable[Any]) -> int:
    return len((await page).items)


async def _len(found: Awaitable[list[Any]]) -> int:
    return len(await found)


async def _len_changes(page: Awaitable[Any]) -> int:
    return len((await page).items)


async def run(
    s3: S3Settings, prefix: str, weed_pid: int, sizes: Sequence[int], texts: Sequence[str]
) -> FindingResult:
    """Every phase, under `prefix` of the bench's bucket (see the module's docstring)."""
    inner = S3ObjectStore(msgspec.structs.replace(s3, prefix=prefix))
    try:
        store = Counted(inner)
        batch = [f"{texts[n % len(texts)]}\n\n[finding {n}]" for n in range(2 * INGEST_DOCS)]
        ingest = [
            await _ingest_cost(store, batch[:INGEST_DOCS], False, weed_pid),
            await _ingest_cost(store, batch[INGEST_DOCS:], True, weed_pid),
        ]
        lookups: list[LookupCost] = []
        populated, populate_seconds, after, written = 0, 0.0, "", 0
        probes: list[Record] = []
        for size in sizes:
            started = time.perf_counter()
            after, entries = await _populate(inner, populated, size - PROBES)
            populate_seconds += time.perf_counter() - started
            written += entries
            populated = size - PROBES
            probes = probes or await _probes(store, list(texts))
            print(f"bench: finding: {size} documents indexed", file=sys.stderr, flush=True)
            lookups += await _lookups(store, size, probes[0], after)
        rate = written / max(populate_seconds, 1e-9)
        return FindingResult(ingest=ingest, lookups=lookups, populate_entries_per_second=rate)
    finally:
        await inner.close()


def describe(result: FindingResult) -> str:
    lines = ["finding documents (bench.finding):"]
    for cost in result.ingest:
        calls = ", ".join(f"{op} {n:.2f}" for op, n in cost.s3_calls_per_doc.items())
        state = "on " if cost.indexes else "off"
        lines.append(
            f"  ingest, indexes {state}: {cost.docs_per_second:.0f} docs/s, Vellum CPU"
            f" {cost.vellum_cpu_ms_per_doc:.1f} ms/doc, SeaweedFS "
            f"{cost.seaweedfs_cpu_ms_per_doc:.1f} ms/doc; S3 calls/doc: {calls}"
        )
    for lookup in result.lookups:
        calls = ", ".join(f"{op} {n:g}" for op, n in lookup.s3_calls.items())
        lines.append(
            f"  {lookup.archive_docs:>7} docs  {lookup.lookup:<13} {lookup.items:>3} items  "
            f"{lookup.median_ms:7.1f} ms  S3: {calls}"
        )
    lines.append(
        f"  (index entries written directly at {result.populate_entries_per_second:.0f}/s)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """This phase alone, with `python -m bench`'s flags (`--finding-sizes`)."""
    settings = parse(argv)
    texts = corpus.load(Path(settings.corpus_dir)).texts
    with (
        tempfile.TemporaryDirectory(prefix="vellum-bench-finding-") as workdir,
        seaweedfs(Path(workdir), "vellum-bench") as (s3, weed_pid),
    ):
        result = asyncio.run(run(s3, "bench/finding", weed_pid, settings.finding_sizes, texts))
    print(describe(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
