"""A record's provenance as W3C PROV-O, in JSON-LD.

Entities: the original (the bytes received) and the record version. Activities: the
receipt (the original arriving) and the normalization (the record being made from it).
Agents: the submitter (its API key id, or an anonymous submitter) and the software.
What the submitter asserted (`source`) is attached to the original as `dcterms` values,
apart from what Vellum computed. IRIs are the service's own URLs under `base`, so each
entity can be dereferenced; the context is inline, so no document needs fetching.
"""

from __future__ import annotations

from typing import Any

from service.types import Record

CONTEXT: dict[str, Any] = {
    "prov": "http://www.w3.org/ns/prov#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "dcterms": "http://purl.org/dc/terms/",
    "vellum": "urn:vellum:",
    "generatedAtTime": {"@id": "prov:generatedAtTime", "@type": "xsd:dateTime"},
    "startedAtTime": {"@id": "prov:startedAtTime", "@type": "xsd:dateTime"},
    "endedAtTime": {"@id": "prov:endedAtTime", "@type": "xsd:dateTime"},
    "wasDerivedFrom": {"@id": "prov:wasDerivedFrom", "@type": "@id"},
    "wasGeneratedBy": {"@id": "prov:wasGeneratedBy", "@type": "@id"},
    "wasAttributedTo": {"@id": "prov:wasAttributedTo", "@type": "@id"},
    "wasAssociatedWith": {"@id": "prov:wasAssociatedWith", "@type": "@id"},
    "wasRevisionOf": {"@id": "prov:wasRevisionOf", "@type": "@id"},
    "used": {"@id": "prov:used", "@type": "@id"},
}


def prov_document(record: Record, base: str) -> dict[str, Any]:
    """The PROV-O JSON-LD document of one record version; `base` is the service's URL."""
    document = f"{base}/v1/documents/{record.id}"
    record_iri = f"{document}?version={record.version}"
    original_iri = f"{document}/original"
    activities = f"{document}/provenance?version={record.version}"
    receipt, normalization = f"{activities}#receipt", f"{activities}#normalization"
    provenance = record.provenance
    submitter = (
        f"{base}/v1/keys/{provenance.submitter}"
        if provenance.submitter
        else f"{activities}#anonymous-submitter"
    )
    software = f"{base}/#software-{provenance.software.name}-{provenance.software.version}"
    source = record.source
    asserted = {
        "dcterms:title": source.title,
        "dcterms:creator": source.authors,
        "dcterms:publisher": source.publisher,
        "dcterms:date": source.published_at,
        "dcterms:language": source.language,
        "dcterms:identifier": source.external_id,
        "dcterms:source": source.url,
    }
    record_entity: dict[str, Any] = {
        "@id": record_iri,
        "@type": "prov:Entity",
        "rdfs:label": f"{record.id} record version {record.version}",
        "vellum:schema": provenance.schema_version,
        "wasDerivedFrom": original_iri,
        "wasGeneratedBy": normalization,
        "generatedAtTime": provenance.received_at,
    }
    if provenance.derived_from.previous_version is not None:
        record_entity["wasRevisionOf"] = (
            f"{document}?version={provenance.derived_from.previous_version}"
        )
    return {
        "@context": CONTEXT,
        "@graph": [
            {
                "@id": original_iri,
                "@type": "prov:Entity",
                "rdfs:label": f"original of {record.id}",
                "vellum:sha256": record.original.sha256,
                "vellum:mediaType": record.original.media_type,
                "vellum:size": record.original.size,
                "wasGeneratedBy": receipt,
                "wasAttributedTo": submitter,
                **{name: value for name, value in asserted.items() if value is not None},
            },
            record_entity,
            {
                "@id": receipt,
                "@type": "prov:Activity",
                "rdfs:label": f"receipt over {provenance.channel}",
                "vellum:channel": provenance.channel,
                "vellum:requestId": provenance.request_id,
                "startedAtTime": provenance.received_at,
                "endedAtTime": provenance.received_at,
                "wasAssociatedWith": submitter,
            },
            {
                "@id": normalization,
                "@type": "prov:Activity",
                "rdfs:label": f"normalization {provenance.normalizer_version}",
                "vellum:normalizerVersion": provenance.normalizer_version,
                "used": original_iri,
                "wasAssociatedWith": software,
            },
            {
                "@id": submitter,
                "@type": "prov:Agent",
                "rdfs:label": provenance.submitter or "anonymous submitter",
            },
            {
                "@id": software,
                "@type": ["prov:Agent", "prov:SoftwareAgent"],
                "rdfs:label": f"{provenance.software.name} {provenance.software.version}",
            },
        ],
    }
