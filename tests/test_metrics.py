"""GET /metrics: requests by canonical route and status, latency, documents created and
duplicate, storage calls and errors, in-flight and shed requests, per application."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.errors import ObjectNotFound, StorageUnavailable
from service.metrics import Metrics
from service.storage.metered import MeteredStore
from service.storage.s3 import S3ObjectStore

ABSENT_ID = "a" * 32
TEXT = {"Content-Type": "text/plain; charset=utf-8"}


async def scrape(client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics: (name, labels) -> value."""
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_documents_and_storage_calls_are_counted(client) -> None:
    body = b"Metrics count what happened.\n\nOnce each."
    assert (await client.post("/v1/documents", data=body, headers=TEXT)).status == 201
    assert (await client.post("/v1/documents", data=body, headers=TEXT)).status == 200
    assert (await client.get(f"/v1/documents/{ABSENT_ID}")).status == 404
    assert (await client.post("/v1/documents", json={"text": "  "})).status == 422

    samples = await scrape(client)
    requests = "vellum_http_requests_total"
    post = {"method": "POST", "route": "/v1/documents"}
    assert value(samples, requests, **post, status="201") == 1
    assert value(samples, requests, **post, status="200") == 1
    assert value(samples, requests, **post, status="422") == 1
    one_document = {"method": "GET", "route": "/v1/documents/{id}"}
    assert value(samples, requests, **one_document, status="404") == 1
    assert not any(ABSENT_ID in str(labels) for _, labels in samples)  # never the raw path
    latency = "vellum_http_request_duration_seconds_count"
    assert value(samples, latency, **post) == 3
    assert value(samples, latency, **one_document) == 1

    documents = "vellum_documents_total"
    assert value(samples, documents, channel="http", outcome="created") == 1
    assert value(samples, documents, channel="http", outcome="duplicate") == 1

    # Ingest: original, index entries (the change feed and four simhash bands: no URL or
    # external id asserted) and record, twice (the second time all but the feed entry
    # exist, and the existing original is read back before it is reused), and the head
    # once, then the duplicate's stored record is read and its feed entry deleted; the
    # 404 finds no head, then lists the document's versions.
    operations = "vellum_storage_operations_total"
    assert value(samples, operations, operation="put_if_absent", outcome="ok") == 2 * 7 + 1
    assert value(samples, operations, operation="get", outcome="not_found") == 1
    assert value(samples, operations, operation="delete", outcome="ok") == 1
    assert value(samples, operations, operation="get", outcome="ok") == 2
    assert value(samples, operations, operation="list_keys", outcome="ok") >= 1
    assert value(samples, "vellum_storage_operation_duration_seconds_count", operation="get") == 3

    assert value(samples, "vellum_http_requests_in_flight") == 1  # the scrape itself
    assert ("vellum_http_requests_shed_total", frozenset()) in samples
    assert value(samples, "vellum_http_requests_shed_total") == 0


async def test_a_scrape_counts_itself_by_the_next_scrape(client) -> None:
    await scrape(client)
    samples = await scrape(client)
    metrics_route = {"method": "GET", "route": "/metrics", "status": "200"}
    assert value(samples, "vellum_http_requests_total", **metrics_route) == 1
    assert value(samples, "vellum_http_requests_in_flight") == 1


async def test_unmatched_paths_share_one_route_label(client) -> None:
    for path in ("/nowhere", "/nowhere/else"):
        assert (await client.get(path)).status == 404
    assert (await client.delete("/healthz")).status == 405
    samples = await scrape(client)
    requests = "vellum_http_requests_total"
    assert value(samples, requests, method="GET", route="unmatched", status="404") == 2
    assert value(samples, requests, method="DELETE", route="unmatched", status="405") == 1


class Unreachable:
    """A store whose every call (of any port) fails as if S3 were down."""

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        async def fail(*args: object, **kwargs: object) -> None:
            raise StorageUnavailable("injected: connection refused")

        return fail


async def test_storage_errors_are_counted_by_kind(make_client) -> None:
    client = await make_client(Unreachable())
    assert (await client.get("/readyz")).status == 503
    assert (await client.get(f"/v1/documents/{ABSENT_ID}/versions")).status == 503
    samples = await scrape(client)
    errors = "vellum_storage_errors_total"
    assert value(samples, errors, operation="check", kind="storage-unavailable") == 1
    assert value(samples, errors, operation="list_keys", kind="storage-unavailable") == 1
    operations = "vellum_storage_operations_total"
    assert value(samples, operations, operation="check", outcome="error") == 1
    requests = "vellum_http_requests_total"
    assert value(samples, requests, method="GET", route="/readyz", status="503") == 1


async def test_a_missing_object_is_not_found_not_an_error(store: S3ObjectStore) -> None:
    metrics = Metrics()
    metered = MeteredStore(store, metrics)
    with pytest.raises(ObjectNotFound):
        await metered.get("no/such/key")
    get = {"operation": "get"}
    assert (
        metrics.registry.get_sample_value(
            "vellum_storage_operations_total", get | {"outcome": "not_found"}
        )
        == 1
    )
    assert metrics.registry.get_sample_value("vellum_storage_errors_total", get) is None


async def test_each_application_has_its_own_registry(make_client, store) -> None:
    first = await make_client(store)
    second = await make_client(store)
    await first.get("/healthz")
    samples = await scrape(second)
    assert (
        value(samples, "vellum_http_requests_total", method="GET", route="/healthz", status="200")
        == 0
    )


async def test_openmetrics_is_served_when_asked_for(client) -> None:
    response = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.content_type == "application/openmetrics-text"
    assert (await response.text()).endswith("# EOF\n")


async def test_lookups_are_counted_and_timed_by_kind(client) -> None:
    body = {
        "text": "A lookup counted.",
        "source": {"url": "http://example.com/a", "external_id": "x"},
    }
    made = await client.post("/v1/documents", json=body)
    assert made.status == 201  # its near_duplicates: one similar lookup
    document = (await made.json())["id"]
    for match in ("exact", "prefix", "host", "domain"):
        for _ in range(2 if match == "host" else 1):
            asked = {"url": "example.com/", "match": match}
            assert (await client.get("/v1/documents", params=asked)).status == 200
    assert (await client.get("/v1/documents", params={"external_id": "x"})).status == 200
    assert (await client.get(f"/v1/documents/{document}/similar")).status == 200
    assert (await client.get("/v1/changes")).status == 200
    refused = {"url": "example.com", "match": "domain", "cursor": "nope"}
    assert (await client.get("/v1/documents", params=refused)).status == 400  # not answered

    samples = await scrape(client)
    answered = {
        "url_exact": 1,
        "url_prefix": 1,
        "url_host": 2,
        "url_domain": 1,
        "external_id": 1,
        "similar": 2,
        "changes": 1,
    }
    for kind, count in answered.items():
        assert value(samples, "vellum_lookups_total", kind=kind) == count, kind
        assert value(samples, "vellum_lookup_duration_seconds_count", kind=kind) == count, kind
