"""bench.verdict: each of issue #15's targets is judged met, NOT met or not measured."""

from __future__ import annotations

from bench.measure import Phase
from bench.normalizer import NormalizerResult
from bench.verdict import StorageCalls, describe_fan_out, fan_out, verdicts


def phase(target: str, operation: str, rate: float, role: str, cpu: float, p99: float) -> Phase:
    return Phase(
        target=target,
        operation=operation,
        concurrency=16,
        docs=100,
        errors=0,
        seconds=1.0,
        docs_per_second=rate,
        p50_ms=1.0,
        p99_ms=p99,
        cpu_ms_per_doc={"vellum": 0.0, "seaweedfs": 0.0, "bench": 0.0, "other": 0.0, role: cpu},
        other_share_of_core=0.0,
    )


NORMALIZER = NormalizerResult(
    articles=1,
    megabytes=0.005,
    mb_per_second=5.0,
    mb_per_second_without_language=8.0,
    language_share=0.3,
    ms_per_article=1.0,
    longest_article_megabytes=0.01,
    longest_article_ms=2.0,
    growth=[],
)


def test_each_target_is_met_not_met_or_not_measured() -> None:
    phases = [
        phase("raw", "ingest", 400.0, "bench", 0.5, 50.0),
        phase("boto3", "ingest", 300.0, "bench", 2.0, 40.0),
        phase("vellum", "ingest", 100.0, "vellum", 6.0, 100.0),
        phase("raw", "read", 1000.0, "bench", 0.25, 10.0),
        phase("vellum", "read", 500.0, "vellum", 0.9, 10.0),
    ]
    calls = [
        StorageCalls("vellum", "ingest", 16, {"put_if_absent": 2.0}),
        StorageCalls("vellum", "read", 16, {"get": 1.0}),
    ]
    found = {v.target: v for v in verdicts(phases, calls, NORMALIZER, 1.2, 16)}
    rate = found["ingest docs/s ≥ 0.5× the raw PUT pairs'"]
    assert (rate.measured, rate.met) == (0.25, False)
    assert found["CPU per ingest ≤ 4× the raw client's per PUT pair"].measured == 12.0
    assert found["CPU per latest read ≤ 4× the raw client's per GET"].met is True
    transport = found["S3 transport CPU per call ≤ 1.5× the raw client's"]
    assert (transport.measured, transport.met) == (None, None)
    # 6 ms, less two calls at half the boto3 pair's 2 ms, less the normalizer's 1 ms: 3 ms
    around = found["around S3 and the normalizer ≤ 1× the raw PUT pair"]
    assert (around.measured, around.met) == (6.0, False)
    assert found["a latest read is one S3 GET"].met is True
    assert found["bulk import ≥ 1.0× the boto3 PUT-pair ceiling"].met is True
    assert found["ingest p99 ≤ 2× the ceiling's"].measured == 2.5


def test_a_read_with_a_listing_is_not_one_get() -> None:
    calls = [StorageCalls("vellum", "read", 16, {"get": 1.0, "list_keys": 1.0})]
    found = {v.target: v for v in verdicts([], calls, NORMALIZER, 0.5, 16)}
    one_get = found["a latest read is one S3 GET"]
    assert (one_get.measured, one_get.met) == (2.0, False)


def test_the_calls_per_ingest_set_a_cpu_floor_and_a_rate_ceiling() -> None:
    phases = [
        phase("raw", "ingest", 400.0, "bench", 0.5, 50.0),
        phase("transport", "ingest", 400.0, "bench", 0.6, 50.0),
        phase("vellum", "ingest", 100.0, "vellum", 6.0, 100.0),
    ]
    phases[0].cpu_ms_per_doc["seaweedfs"] = 1.5
    phases[2].cpu_ms_per_doc.update(seaweedfs=9.0, bench=0.4)
    calls = [StorageCalls("vellum", "ingest", 16, {"put_if_absent": 8.0, "list_keys": 4.0})]
    found = fan_out(phases, calls, 16)
    assert found is not None
    # 12 calls at half the transport's 0.6 ms pair: 3.6 ms, 7.2× the raw pair's 0.5 ms
    assert round(found.transport_ms, 6) == 3.6
    assert round(found.cpu_floor, 6) == 7.2
    # raw all-in 0.5 + 1.5 = 2 ms; the calls alone 3.6 + 9.0 + 0.4 = 13 ms
    assert round(found.rate_ceiling, 6) == round(2.0 / 13.0, 6)
    assert "12.0 (put_if_absent 8.00, list_keys 4.00)" in describe_fan_out(found, 16)
    assert fan_out(phases[:2], calls, 16) is None  # no Vellum ingest: not measured
