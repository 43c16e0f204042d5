"""Issue #15's targets, each as a ratio measured in this run, and whether it is met.

All at C = 16 (`report.RAW_TARGETS_CONCURRENCY`), against baselines of the same run:

- ingest docs/s ≥ 0.5× the raw PUT pairs' (bench.raw_s3);
- Vellum's CPU per ingest (its process tree, analysis included) ≤ 4× the raw client's
  per PUT pair; per latest read ≤ 4× the raw client's per GET;
- the S3 transport's CPU per call ≤ 1.5× the raw client's: a phase of target
  `TRANSPORT_TARGET` (the transport alone, doing the raw client's PUT pairs in the bench
  process) against the raw phase; "not measured" when the run has none;
- everything around the S3 calls and the normalizer ≤ 1× the raw PUT pair: derived as
  Vellum's CPU per ingest, less its S3 calls per ingest (counted on its /metrics) times
  the transport's CPU per call (the transport row's, else the boto3 ceiling's half PUT
  pair: Vellum's transport is that client), less the normalizer's CPU per article
  (bench.normalizer);
- a read of the latest version is one S3 GET and no other call (counted on /metrics over
  the read phase: every document read has one version);
- bulk import ≥ 1.0× the boto3 PUT-pair ceiling;
- ingest p99 ≤ 2× the boto3 ceiling's (issue #7's, kept).

`fan_out` says how much of the ingest gap the number of S3 calls explains by itself: an
ingest makes a dozen calls (SPEC §9's index entries, the 201's `near_duplicates`) where
the raw client makes two, and on a machine shared with the S3 server each call also
costs SeaweedFS's CPU.
"""

from __future__ import annotations

import urllib.request

import msgspec
from prometheus_client.parser import text_string_to_metric_families

from bench.measure import Phase
from bench.normalizer import NormalizerResult

TRANSPORT_TARGET = "transport"  # Vellum's S3 adapter alone, in the bench (bench.transport)
TRANSPORT_CPU_TARGET = 1.5  # its client CPU per call ÷ the raw client's
_OPERATIONS = "vellum_storage_operations_total"


class Verdict(msgspec.Struct, frozen=True):
    target: str  # what issue #15 asks, as text
    measured: float | None  # the ratio (or count) measured; None: not measured
    bound: float
    at_most: bool  # met when measured ≤ bound (else ≥)
    met: bool | None  # None: not measured
    how: str  # how the figure was derived


def _judge(target: str, measured: float | None, bound: float, at_most: bool, how: str) -> Verdict:
    met = None
    if measured is not None:
        met = measured <= bound if at_most else measured >= bound
    return Verdict(target, measured, bound, at_most, met, how)


class StorageCalls(msgspec.Struct, frozen=True):
    """Vellum's S3 calls per document of one phase, by port operation (from /metrics)."""

    target: str
    operation: str
    concurrency: int
    per_doc: dict[str, float]


def storage_calls(url: str) -> dict[str, float]:
    """The server's storage calls so far, by operation (every outcome)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:  # noqa: S310
        text = response.read().decode()
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == _OPERATIONS:
                operation = sample.labels["operation"]
                counts[operation] = counts.get(operation, 0.0) + sample.value
    return counts


def per_doc(before: dict[str, float], after: dict[str, float], docs: int) -> dict[str, float]:
    """The calls made between two `storage_calls`, per document, by operation."""
    return {
        op: (count - before.get(op, 0.0)) / max(docs, 1)
        for op, count in sorted(after.items())
        if count != before.get(op, 0.0)
    }


def verdicts(
    phases: list[Phase],
    calls: list[StorageCalls],
    normalizer: NormalizerResult,
    import_ratio: float,
    concurrency: int,
) -> list[Verdict]:
    at = {(p.target, p.operation): p for p in phases if p.concurrency == concurrency}
    per_doc = {(c.target, c.operation): c.per_doc for c in calls if c.concurrency == concurrency}
    raw_put, raw_get = at.get(("raw", "ingest")), at.get(("raw", "read"))
    ingest, read = at.get(("vellum", "ingest")), at.get(("vellum", "read"))
    transport, boto3 = at.get((TRANSPORT_TARGET, "ingest")), at.get(("boto3", "ingest"))

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else a / b

    def cpu(phase: Phase | None, role: str) -> float | None:
        return None if phase is None else phase.cpu_ms_per_doc[role]

    ingest_calls = _ingest_calls(phases, calls, concurrency)
    around = None
    if ingest is not None and ingest_calls is not None:
        s3_cpu = ingest_calls[1]
        around = ingest.cpu_ms_per_doc["vellum"] - s3_cpu - normalizer.ms_per_article
    read_calls = per_doc.get(("vellum", "read"))
    one_get = None
    if read_calls is not None:
        one_get = 1.0 if read_calls == {"get": 1.0} else sum(read_calls.values())
    p99 = ratio(ingest.p99_ms if ingest else None, boto3.p99_ms if boto3 else None)
    return [
        _judge(
            "ingest docs/s ≥ 0.5× the raw PUT pairs'",
            ratio(ingest.docs_per_second if ingest else None, _rate(raw_put)),
            0.5,
            False,
            "Vellum's docs/s ÷ the raw client's",
        ),
        _judge(
            "CPU per ingest ≤ 4× the raw client's per PUT pair",
            ratio(cpu(ingest, "vellum"), cpu(raw_put, "bench")),
            4.0,
            True,
            "Vellum's process tree (analysis included) ÷ the bench process's",
        ),
        _judge(
            "CPU per latest read ≤ 4× the raw client's per GET",
            ratio(cpu(read, "vellum"), cpu(raw_get, "bench")),
            4.0,
            True,
            "Vellum's process tree ÷ the bench process's",
        ),
        _judge(
            "S3 transport CPU per call ≤ 1.5× the raw client's",
            ratio(cpu(transport, "bench"), cpu(raw_put, "bench")),
            TRANSPORT_CPU_TARGET,
            True,
            f"the {TRANSPORT_TARGET!r} row's client CPU per PUT pair ÷ the raw row's",
        ),
        _judge(
            "around S3 and the normalizer ≤ 1× the raw PUT pair",
            ratio(around, cpu(raw_put, "bench")),
            1.0,
            True,
            "(Vellum's CPU per ingest − its S3 calls per ingest × the transport's CPU per "
            "call − the normalizer's per article) ÷ the raw PUT pair's"
            + ("" if transport else "; transport: the boto3 ceiling's"),
        ),
        _judge(
            "a latest read is one S3 GET",
            one_get,
            1.0,
            True,
            "S3 calls per read on Vellum's /metrics: "
            + (", ".join(f"{op} {n:.2f}" for op, n in (read_calls or {}).items()) or "none"),
        ),
        _judge(
            "bulk import ≥ 1.0× the boto3 PUT-pair ceiling",
            import_ratio,
            1.0,
            False,
            "import docs/s ÷ boto3 ingest docs/s at the import's concurrency",
        ),
        _judge(
            "ingest p99 ≤ 2× the ceiling's",
            p99,
            2.0,
            True,
            "Vellum's p99 ÷ the boto3 ceiling's",
        ),
    ]


class FanOut(msgspec.Struct, frozen=True):
    """What Vellum's S3 calls per ingest cost by themselves, in one run at one concurrency."""

    calls: dict[str, float]  # per ingest, by port operation
    transport_ms: float  # Vellum's client CPU for those calls (the transport's per call)
    seaweedfs_ms: float  # SeaweedFS's CPU per Vellum ingest (measured)
    cpu_floor: float  # transport_ms ÷ the raw client's CPU per PUT pair
    rate_ceiling: float  # the raw rate's share left if Vellum cost nothing but its calls


def _ingest_calls(
    phases: list[Phase], calls: list[StorageCalls], concurrency: int
) -> tuple[dict[str, float], float] | None:
    """Vellum's S3 calls per ingest at `concurrency`, by operation, and the client CPU
    they cost by themselves: the calls times the transport's CPU per call (the
    `TRANSPORT_TARGET` row's PUT pair halved, else the boto3 ceiling's)."""
    at = {(p.target, p.operation): p for p in phases if p.concurrency == concurrency}
    pair = at.get((TRANSPORT_TARGET, "ingest")) or at.get(("boto3", "ingest"))
    found = [
        c.per_doc
        for c in calls
        if (c.target, c.operation, c.concurrency) == ("vellum", "ingest", concurrency)
    ]
    if pair is None or not found:
        return None
    return found[0], sum(found[0].values()) * pair.cpu_ms_per_doc["bench"] / 2


def fan_out(phases: list[Phase], calls: list[StorageCalls], concurrency: int) -> FanOut | None:
    """The CPU floor and the rate ceiling that the calls per ingest set by themselves: with
    every other cost of Vellum at zero, an ingest would still cost its calls' transport
    CPU, SeaweedFS's CPU for them and the load generator's; the machine's CPU is what both
    Vellum and the raw client are bound by (docs/performance.md)."""
    at = {(p.target, p.operation): p for p in phases if p.concurrency == concurrency}
    raw, ingest = at.get(("raw", "ingest")), at.get(("vellum", "ingest"))
    found = _ingest_calls(phases, calls, concurrency)
    if raw is None or ingest is None or found is None:
        return None
    per_ingest, transport_ms = found
    raw_cpu = raw.cpu_ms_per_doc
    raw_total = raw_cpu["bench"] + raw_cpu["seaweedfs"]
    floor_total = transport_ms + ingest.cpu_ms_per_doc["seaweedfs"] + ingest.cpu_ms_per_doc["bench"]
    return FanOut(
        calls=per_ingest,
        transport_ms=transport_ms,
        seaweedfs_ms=ingest.cpu_ms_per_doc["seaweedfs"],
        cpu_floor=transport_ms / raw_cpu["bench"] if raw_cpu["bench"] else 0.0,
        rate_ceiling=raw_total / floor_total if floor_total else 0.0,
    )


def describe_fan_out(found: FanOut | None, concurrency: int) -> str:
    if found is None:
        return f"S3 calls per ingest (C={concurrency}): not measured"
    calls = ", ".join(f"{op} {n:.2f}" for op, n in found.calls.items())
    return (
        f"S3 calls per ingest (C={concurrency}): {sum(found.calls.values()):.1f} ({calls}) "
        f"against the raw client's 2. By themselves they cost {found.transport_ms:.1f} ms of "
        f"Vellum's CPU ({found.cpu_floor:.1f}× the raw PUT pair: the floor of the CPU target) "
        f"and {found.seaweedfs_ms:.1f} ms of SeaweedFS's, so with nothing else Vellum's ingest "
        f"could reach {found.rate_ceiling:.2f}× the raw docs/s on this machine"
    )


def _rate(phase: Phase | None) -> float | None:
    return None if phase is None else phase.docs_per_second


def describe(found: list[Verdict], concurrency: int) -> str:
    lines = [f"issue #15 targets (C={concurrency}):"]
    for verdict in found:
        sign = "≤" if verdict.at_most else "≥"
        if verdict.measured is None:
            state, figure = "not measured", "—"
        else:
            state, figure = ("met" if verdict.met else "NOT met"), f"{verdict.measured:.2f}"
        lines.append(
            f"  {state:<12} {figure:>6} (target {sign} {verdict.bound:g})  {verdict.target}; "
            f"{verdict.how}"
        )
    return "\n".join(lines)
