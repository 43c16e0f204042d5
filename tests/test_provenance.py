"""Provenance as PROV-O JSON-LD, read back as RDF; record versions."""

from __future__ import annotations

import json

import rdflib
from rdflib.namespace import PROV, RDF

DCTERMS = rdflib.Namespace("http://purl.org/dc/terms/")


async def post(client, payload: dict[str, object]) -> str:  # type: ignore[no-untyped-def]
    response = await client.post("/v1/documents", json=payload, headers={"X-Request-ID": "prov-1"})
    assert response.status == 201
    document_id: str = (await response.json())["id"]
    return document_id


async def test_provenance_is_prov_o_json_ld(client) -> None:
    document_id = await post(
        client, {"text": "Provenance matters.", "source": {"title": "A title", "authors": ["Ann"]}}
    )
    response = await client.get(f"/v1/documents/{document_id}/provenance")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/ld+json")
    graph = rdflib.Graph().parse(data=await response.text(), format="json-ld")

    base = str(client.make_url(""))
    record = rdflib.URIRef(f"{base}/v1/documents/{document_id}?version=1")
    original = rdflib.URIRef(f"{base}/v1/documents/{document_id}/original")
    assert (record, RDF.type, PROV.Entity) in graph
    assert (original, RDF.type, PROV.Entity) in graph
    assert (record, PROV.wasDerivedFrom, original) in graph
    (normalization,) = graph.objects(record, PROV.wasGeneratedBy)
    assert (normalization, RDF.type, PROV.Activity) in graph
    assert (normalization, PROV.used, original) in graph
    (software,) = graph.objects(normalization, PROV.wasAssociatedWith)
    assert (software, RDF.type, PROV.SoftwareAgent) in graph
    (receipt,) = graph.objects(original, PROV.wasGeneratedBy)
    assert (receipt, RDF.type, PROV.Activity) in graph
    (submitter,) = graph.objects(receipt, PROV.wasAssociatedWith)
    assert (submitter, RDF.type, PROV.Agent) in graph
    (generated,) = graph.objects(record, PROV.generatedAtTime)
    assert generated.datatype == rdflib.XSD.dateTime
    # What was asserted stays apart, on the original, as asserted.
    assert (original, DCTERMS.title, rdflib.Literal("A title")) in graph
    assert (original, DCTERMS.creator, rdflib.Literal("Ann")) in graph


async def test_versions_list_the_record_versions(client) -> None:
    document_id = await post(client, {"text": "Versioned text."})
    response = await client.get(f"/v1/documents/{document_id}/versions")
    assert response.status == 200
    body = await response.json()
    assert body == {
        "id": document_id,
        "latest": 1,
        "versions": [{"version": 1, "href": f"/v1/documents/{document_id}?version=1"}],
    }
    missing = await client.get(f"/v1/documents/{'a' * 32}/versions")
    assert missing.status == 404
    assert json.loads(await missing.text())["type"] == "/problems/document-not-found"
