"""The results of a run: one table for people, bench/results.json for tools.

Each Vellum phase is set against the boto3 phase of the same operation and concurrency:
docs/s as a fraction of the ceiling's (1.0 would be as fast as plain boto3), and p50 and
p99 latency as multiples of the ceiling's.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from bench.finding import FindingResult
from bench.hostile import HostileResult
from bench.measure import Phase
from bench.normalizer import NormalizerResult
from bench.procstat import Machine
from bench.settings import Settings
from bench.verdict import TRANSPORT_CPU_TARGET, TRANSPORT_TARGET, FanOut, StorageCalls, Verdict

OTHER_CPU_WARNING = 0.25  # of one core, averaged over the run
WORKERS_TARGET = "vellum×2"  # phases of `vellum serve --workers 2`
RAW_TARGET = "raw"  # the minimal hand-signed client (bench.raw_s3): the storage limit
# Issue #15's targets, against the raw ceiling at this concurrency.
RAW_TARGETS_CONCURRENCY = 16
INGEST_RATE_TARGET = 0.5  # Vellum's docs/s ÷ the raw PUT pairs'
CPU_TARGET = 4.0  # Vellum's CPU per ingest (read) ÷ the raw client's per PUT pair (GET)
# "pinned": GET /v1/documents/{id}?version=1, one S3 GET, against the one-GET ceiling.
CEILING_OF = {"pinned": "read"}


class Corpus(msgspec.Struct, frozen=True):
    source: str
    articles: int
    mean_bytes: float


class Ratio(msgspec.Struct, frozen=True):
    target: str  # "vellum" (one process) or "vellum×2" (`serve --workers 2`)
    operation: str
    concurrency: int
    docs_per_second: float  # Vellum's ÷ the ceiling's
    p50: float  # Vellum's ÷ the ceiling's
    p99: float


class ImportResult(msgspec.Struct, frozen=True):
    """One NDJSON import through the API: no HTTP request per document."""

    docs: int
    failed: int
    seconds: float
    docs_per_second: float
    ratio_to_ingest_ceiling: float  # ÷ the boto3 PUT-pair ceiling at the same concurrency
    concurrency: int
    vellum_cpu_ms_per_doc: float
    vellum_peak_rss_mib: float  # the server's high-water mark over the whole run
    children_peak_rss_mib: float  # its analysis processes and their forkserver, summed


class Results(msgspec.Struct, frozen=True, kw_only=True):
    date: str
    machine: Machine
    versions: dict[str, str]
    settings: Settings
    corpus: Corpus
    vellum_s3_max_connections: int
    measured_seconds: float  # wall time of the phases, warm-up included
    other_share_of_core: float  # CPU of processes not ours, per wall second of the run
    phases: list[Phase]
    ratios: list[Ratio]
    normalizer: NormalizerResult
    hostile: list[HostileResult]
    bulk_import: ImportResult
    finding: FindingResult | None = None  # bench.finding: indexes and lookups
    storage_calls: list[StorageCalls] = []  # Vellum's S3 calls per document, by phase
    verdicts: list[Verdict] = []  # issue #15's targets (bench.verdict)
    fan_out: FanOut | None = None  # what the S3 calls per ingest explain (bench.verdict)


def ratios(phases: list[Phase]) -> list[Ratio]:
    ceilings = {(p.operation, p.concurrency): p for p in phases if p.target == "boto3"}
    found = []
    for phase in phases:
        ceiling = ceilings.get(
            (CEILING_OF.get(phase.operation, phase.operation), phase.concurrency)
        )
        if phase.target in ("boto3", RAW_TARGET) or ceiling is None:
            continue
        found.append(
            Ratio(
                target=phase.target,
                operation=phase.operation,
                concurrency=phase.concurrency,
                docs_per_second=phase.docs_per_second / ceiling.docs_per_second,
                p50=phase.p50_ms / ceiling.p50_ms,
                p99=phase.p99_ms / ceiling.p99_ms,
            )
        )
    return found


_ABSOLUTE = (
    ("target", "<9"),
    ("op", "<6"),
    ("C", ">3"),
    ("docs", ">5"),
    ("err", ">4"),
    ("docs/s", ">7"),
    ("p50 ms", ">7"),
    ("p99 ms", ">7"),
)
_RATIOS = (("×docs/s", ">7"), ("×p50", ">5"), ("×p99", ">5"))
_CPU = (("vellum", ">6"), ("weed", ">5"), ("bench", ">5"), ("other", ">5"))
_HEADER = _ABSOLUTE + _RATIOS + _CPU


def _width(columns: tuple[tuple[str, str], ...]) -> int:
    return sum(int(align[1:]) for _, align in columns) + len(columns) - 1


def table(results: Results) -> str:
    """The phases, with ratios to their ceilings and CPU ms per document by process."""
    by_phase = {(r.target, r.operation, r.concurrency): r for r in results.ratios}
    rows = []
    for phase in results.phases:
        ratio = by_phase.get((phase.target, phase.operation, phase.concurrency))
        relative = (
            (f"{ratio.docs_per_second:.2f}", f"{ratio.p50:.2f}", f"{ratio.p99:.2f}")
            if ratio is not None
            else ("", "", "")
        )
        cpu = phase.cpu_ms_per_doc
        rows.append(
            (
                phase.target,
                phase.operation,
                str(phase.concurrency),
                str(phase.docs),
                str(phase.errors),
                f"{phase.docs_per_second:.1f}",
                f"{phase.p50_ms:.1f}",
                f"{phase.p99_ms:.1f}",
                *relative,
                *(f"{cpu[role]:.1f}" for role in ("vellum", "seaweedfs", "bench", "other")),
            )
        )
    lines = [
        f"{'':{_width(_ABSOLUTE)}} {'÷ boto3 ceiling':^{_width(_RATIOS)}} "
        f"{'CPU ms per document':^{_width(_CPU)}}".rstrip(),
        " ".join(f"{name:{align}}" for name, align in _HEADER),
    ]
    lines.extend(
        " ".join(f"{cell:{align}}" for cell, (_, align) in zip(row, _HEADER, strict=True))
        for row in rows
    )
    return "\n".join(lines)


def describe_raw(results: Results) -> str:
    """Vellum and its S3 transport against the raw ceiling: rate and CPU per document, with
    issue #15's targets.

    The raw client's CPU is the bench process's (`bench` column): it runs there, as does
    the transport (`S3ObjectStore` alone). Vellum's is its whole process tree's (`vellum`),
    analysis processes included."""
    at = {
        (p.target, p.operation, p.concurrency): p
        for p in results.phases
        if p.target in (RAW_TARGET, TRANSPORT_TARGET, "vellum")
    }
    c = RAW_TARGETS_CONCURRENCY
    lines = []
    for operation, what in (("ingest", "PUT pair"), ("read", "GET")):
        raw, vellum = at.get((RAW_TARGET, operation, c)), at.get(("vellum", operation, c))
        if raw is None or vellum is None:
            continue
        rate = vellum.docs_per_second / raw.docs_per_second
        cpu = vellum.cpu_ms_per_doc["vellum"] / raw.cpu_ms_per_doc["bench"]
        rate_target = f" (target ≥ {INGEST_RATE_TARGET})" if operation == "ingest" else ""
        lines.append(
            f"raw {operation} C={c}: {raw.docs_per_second:.1f} docs/s, client CPU "
            f"{raw.cpu_ms_per_doc['bench']:.2f} ms per {what}; Vellum "
            f"{rate:.2f}× its docs/s{rate_target}, {cpu:.1f}× its CPU per {what} "
            f"(target ≤ {CPU_TARGET:g})"
        )
        transport = at.get((TRANSPORT_TARGET, operation, c))
        if transport is not None:
            ratio = transport.cpu_ms_per_doc["bench"] / raw.cpu_ms_per_doc["bench"]
            verdict = "met" if ratio <= TRANSPORT_CPU_TARGET else "NOT met"
            lines.append(
                f"transport {operation} C={c}: {transport.docs_per_second:.1f} docs/s "
                f"({transport.docs_per_second / raw.docs_per_second:.2f}× raw), client CPU "
                f"{transport.cpu_ms_per_doc['bench']:.2f} ms per {what} = {ratio:.2f}× raw; "
                f"transport CPU/call ≤ {TRANSPORT_CPU_TARGET:g}× raw: {verdict}"
            )
    return "\n".join(lines)


def describe_scaling(results: Results) -> str:
    """docs/s of `serve --workers 2` as a multiple of one process's, per operation and C."""
    one = {(p.operation, p.concurrency): p for p in results.phases if p.target == "vellum"}
    parts = [
        f"{p.operation} C={p.concurrency} {p.docs_per_second / one[key].docs_per_second:.2f}×"
        for p in results.phases
        if p.target == WORKERS_TARGET and (key := (p.operation, p.concurrency)) in one
    ]
    return "workers: 2 processes against 1: " + ", ".join(parts)


def describe_import(result: ImportResult) -> str:
    return (
        f"import: {result.docs} docs in {result.seconds:.1f} s = {result.docs_per_second:.1f} "
        f"docs/s ({result.ratio_to_ingest_ceiling:.2f}× the boto3 ceiling at "
        f"C={result.concurrency}), {result.vellum_cpu_ms_per_doc:.1f} ms Vellum CPU per doc, "
        f"{result.failed} failed; Vellum peak RSS {result.vellum_peak_rss_mib:.0f} MiB, "
        f"its analysis processes {result.children_peak_rss_mib:.0f} MiB more"
    )


def summary(results: Results) -> str:
    machine = results.machine
    lines = [
        f"{results.date}  {machine.nproc} CPUs ({machine.cpu_model}), Python {machine.python}",
        f"corpus: {results.corpus.source} ({results.corpus.articles} articles, "
        f"mean {results.corpus.mean_bytes / 1024:.1f} KiB); "
        f"Vellum's S3 pool: {results.vellum_s3_max_connections} connections",
        f"measured: {results.measured_seconds:.0f} s; CPU used by other processes: "
        f"{results.other_share_of_core:.0%} of one core on average",
    ]
    if results.other_share_of_core > OTHER_CPU_WARNING:
        lines.append(
            f"WARNING: other processes used more than {OTHER_CPU_WARNING:.0%} of a core "
            "during the run; these figures are less trustworthy than usual."
        )
    lines.extend(
        f"first error in {p.target} {p.operation} C={p.concurrency}: {p.first_error}"
        for p in results.phases
        if p.first_error is not None
    )
    return "\n".join(lines)


def write(results: Results, path: Path) -> None:
    path.write_bytes(msgspec.json.format(msgspec.json.encode(results)) + b"\n")
