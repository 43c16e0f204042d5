"""Prometheus metrics of one application, in a registry of its own (never the global one).

    vellum_http_requests_total{method, route, status}        requests answered
    vellum_http_request_duration_seconds{method, route}      latency histogram
    vellum_http_requests_in_flight                           requests being served now
    vellum_http_requests_shed_total                          refused with 503 under load
    vellum_http_header_timeouts_total                        connections closed: a request's
                                                             line and headers too slow
    vellum_documents_total{channel, outcome}                 ingests: created or duplicate
    vellum_import_lines_total{outcome}                       import lines: created,
                                                             duplicate or failed
    vellum_storage_operations_total{operation, outcome}      storage port calls
    vellum_storage_operation_duration_seconds{operation}     their latency histogram
    vellum_storage_errors_total{operation, kind}             failed calls by problem slug
    vellum_lookups_total{kind}                               lookups answered (SPEC §9)
    vellum_lookup_duration_seconds{kind}                     their latency histogram

Under `vellum serve --workers N` every worker writes its values to files in a shared
directory (prometheus_client's multiprocess mode) and `exposition()` adds up all workers'
counters and histograms, and the gauges of the live ones, whichever worker is scraped.

`route` is the route's canonical path (`/v1/documents/{id}`), never the raw path, and
`unmatched` for a request no route matched, so label values stay few. Another metric is
one call away: `metrics.gauge("vellum_imports_running", "Import jobs running")`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from service.finding.model import LOOKUP_KINDS

UNMATCHED_ROUTE = "unmatched"
# Seconds: from a cached read (~1 ms) to a large ingest over a slow S3 (~10 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_OUTCOMES = ("created", "duplicate")
# Any other method is counted as OTHER: a client cannot make new series at will.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """The application's metrics; `exposition()` is what GET /metrics shows."""

    def __init__(self, shared_dir: Path | None = None) -> None:
        self.shared_dir = shared_dir
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "vellum_http_requests",
            "HTTP requests answered, by route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "vellum_http_request_duration_seconds",
            "Time from receiving a request to its response, by route",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = self.gauge(
            "vellum_http_requests_in_flight", "HTTP requests being served now"
        )
        self.shed = Counter(
            "vellum_http_requests_shed",
            "Requests refused with 503 because in-flight work was over its bound",
            registry=registry,
        )
        self.header_timeouts = Counter(
            "vellum_http_header_timeouts",
            "Connections closed because a request's line and headers did not arrive in time",
            registry=registry,
        )
        self.documents = Counter(
            "vellum_documents",
            "Documents ingested: created (new) or duplicate (archived already)",
            ["channel", "outcome"],
            registry=registry,
        )
        self.import_lines = Counter(
            "vellum_import_lines",
            "Lines of import jobs worked through by this server, by outcome",
            ["outcome"],
            registry=registry,
        )
        for outcome in _OUTCOMES:
            self.documents.labels(channel="http", outcome=outcome)  # present at 0
        self.storage_operations = Counter(
            "vellum_storage_operations",
            "Calls of the storage port (S3), by operation and outcome (ok, not_found, error)",
            ["operation", "outcome"],
            registry=registry,
        )
        self.storage_duration = Histogram(
            "vellum_storage_operation_duration_seconds",
            "Latency of storage port (S3) calls, by operation",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.storage_errors = Counter(
            "vellum_storage_errors",
            "Failed storage port (S3) calls, by operation and kind (problem slug)",
            ["operation", "kind"],
            registry=registry,
        )

        self.lookups = Counter(
            "vellum_lookups",
            "Lookups answered (SPEC §9): url_exact, url_prefix, url_host, url_domain,"
            " external_id, similar (also a POST's near_duplicates) or changes",
            ["kind"],
            registry=registry,
        )
        self.lookup_duration = Histogram(
            "vellum_lookup_duration_seconds",
            "Time to answer a lookup, by kind",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        for kind in LOOKUP_KINDS:
            self.lookups.labels(kind=kind)  # present at 0

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        """A new gauge in this registry (import progress, queue depths, ...)."""
        return Gauge(
            name, documentation, labels, registry=self.registry, multiprocess_mode="livesum"
        )

    def exposition(self) -> CollectorRegistry:
        """This process's registry, or the sum over every worker's shared files."""
        if self.shared_dir is None:
            return self.registry
        combined = CollectorRegistry()
        MultiProcessCollector(combined, path=str(self.shared_dir))  # type: ignore[no-untyped-call]
        return combined

    def request_answered(
        self, method: str, route: str | None, status: int | str, seconds: float
    ) -> None:
        route = route or UNMATCHED_ROUTE
        method = method if method in _METHODS else "OTHER"
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.request_duration.labels(method=method, route=route).observe(seconds)

    def document_ingested(self, *, created: bool, channel: str) -> None:
        outcome = "created" if created else "duplicate"
        self.documents.labels(channel=channel, outcome=outcome).inc()

    def import_chunk(self, *, created: int, duplicates: int, failed: int) -> None:
        """One chunk of an import done: its lines, and the documents it ingested."""
        for outcome, lines in (("created", created), ("duplicate", duplicates), ("failed", failed)):
            self.import_lines.labels(outcome=outcome).inc(lines)
        self.documents.labels(channel="import", outcome="created").inc(created)
        self.documents.labels(channel="import", outcome="duplicate").inc(duplicates)

    def lookup_answered(self, kind: str, seconds: float) -> None:
        self.lookups.labels(kind=kind).inc()
        self.lookup_duration.labels(kind=kind).observe(seconds)

    def storage_call(self, operation: str, outcome: str, seconds: float) -> None:
        self.storage_operations.labels(operation=operation, outcome=outcome).inc()
        self.storage_duration.labels(operation=operation).observe(seconds)
