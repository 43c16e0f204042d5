"""Every endpoint of the HTTP API, declared: one `Route` per method and path.

Bodies are named by the msgspec types they are encoded from, parameters and headers by
name (PARAMETERS, HEADERS), errors by the problem classes of service.errors that the
route can raise, and `scope` by the API key scope it needs (service.web.auth enforces
it), `handler` by the function that answers it. service.app registers the routes from this
table and service.web.openapi generates the OpenAPI document from it: a route exists in
both or in neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from msgspec import Meta

from service.errors import (
    BadParameter,
    DigestMismatch,
    DocumentNotFound,
    IntegrityError,
    InvalidDocument,
    InvalidEncoding,
    MalformedDigest,
    MalformedId,
    MalformedJson,
    MetadataTooLarge,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    StorageError,
    StorageUnavailable,
    UnknownCharset,
    UnknownField,
    UnsupportedMediaType,
    VellumError,
    VersionNotFound,
    WriteDeadlinePassed,
)
from service.finding.model import Captures, Changes, Match, Similar
from service.jobs.model import JobStatus
from service.keys import Scope
from service.media import APPLICATION_JSON as JSON
from service.media import APPLICATION_LD_JSON, TEXT_PLAIN
from service.media import APPLICATION_NDJSON as NDJSON
from service.types import (
    DocumentId,
    DocumentIn,
    DocumentReceipt,
    Health,
    JobId,
    Record,
    Version,
    VersionList,
)
from service.web import contract, documents, finding, health, imports, metrics

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

RequestId = Annotated[str, Meta(pattern="^[A-Za-z0-9._:-]{1,128}$")]
DigestField = Annotated[str, Meta(description="RFC 9530: `sha-256=:<base64>:`")]
Seconds = Annotated[int, Meta(ge=0)]
JsonObject = dict[str, Any]
Limit = Annotated[int, Meta(ge=1, le=1000)]
Distance = Annotated[int, Meta(ge=0, le=3)]


class Content(msgspec.Struct, frozen=True):
    media_type: str
    shape: Any  # a type msgspec describes: a Struct, str, dict[str, Any], ...


class Answer(msgspec.Struct, frozen=True):
    status: int
    description: str
    content: tuple[Content, ...] = ()
    headers: tuple[str, ...] = ()  # names in HEADERS; X-Request-ID is always added


class Parameter(msgspec.Struct, frozen=True):
    where: Literal["path", "query", "header"]
    shape: Any
    description: str
    required: bool = False


class Header(msgspec.Struct, frozen=True):
    shape: Any
    description: str


class Route(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    answers: tuple[Answer, ...]
    body: tuple[Content, ...] = ()
    body_description: str = ""
    parameters: tuple[str, ...] = ()  # names in PARAMETERS; X-Request-ID is always added
    problems: tuple[type[VellumError], ...] = ()  # besides internal-error (500)
    # The API key scope the route needs when keys are configured (`admin` implies the
    # others); None: open to anyone (health, metrics, this contract).
    scope: Scope | None


PARAMETERS = {
    "id": Parameter("path", DocumentId, "The document id.", required=True),
    "version": Parameter("query", Version, "A record version; the latest when absent."),
    "job": Parameter("path", JobId, "The import job id.", required=True),
    "X-Request-ID": Parameter(
        "header", RequestId, "Your request id, echoed back; a new one is made if invalid."
    ),
    "If-None-Match": Parameter("header", str, "ETags you hold: 304 if one matches."),
    "Content-Digest": Parameter(
        "header", DigestField, "Digest of the body (`sha-256` or `sha-512`), checked first."
    ),
    "url": Parameter("query", str, "A source URL, matched on its canonical form (SPEC §9)."),
    "match": Parameter(
        "query",
        Match,
        "`exact` (default), `prefix`, `host` (any port) or `domain` (and subdomains, of"
        " any number of labels: `com` is every .com host).",
    ),
    "external_id": Parameter("query", str, "An asserted `source.external_id`, matched exactly."),
    "from": Parameter(
        "query",
        str,
        "Received at or after: RFC 3339, or 4-14 digits of yyyyMMddhhmmss (UTC) naming the"
        " start of that period.",
    ),
    "to": Parameter(
        "query",
        str,
        "Received at or before: RFC 3339, or 4-14 digits of yyyyMMddhhmmss (UTC) naming the"
        " end of that period.",
    ),
    "limit": Parameter("query", Limit, "Items per page, 1-1000 (default 100)."),
    "cursor": Parameter("query", str, "The `next` of the previous page."),
    "max_distance": Parameter("query", Distance, "Most bits the simhashes differ in (default 3)."),
    "after": Parameter("query", str, "A `cursor` or `next` of the feed; from the start if absent."),
}
HEADERS = {
    "X-Request-ID": Header(RequestId, "The request id (yours if valid, else a new one)."),
    "Location": Header(str, "The new resource: `/v1/documents/{id}`, `/v1/imports/{job}`."),
    "ETag": Header(str, "Strong entity tag of this representation."),
    "Cache-Control": Header(str, "`immutable` for a fixed version, else `no-cache`."),
    "Repr-Digest": Header(DigestField, "SHA-256 of the original bytes (RFC 9530)."),
    "Retry-After": Header(Seconds, "Seconds to wait before retrying."),
    "Allow": Header(str, "The methods the path has."),
    "WWW-Authenticate": Header(
        str, 'The challenge: `Bearer realm="vellum"`, with `error` when a key was refused.'
    ),
}

_STORAGE = (StorageUnavailable, StorageError)
_READ = (MalformedId, DocumentNotFound, *_STORAGE)
_RECEIPT = (Content(JSON, DocumentReceipt),)
_JOB = (Content(JSON, JobStatus),)
_JOB_READ = (MalformedId, NotFound, *_STORAGE)

ROUTES: tuple[Route, ...] = (
    Route(
        method="POST",
        path="/v1/documents",
        handler=documents.create_document,
        operation_id="createDocument",
        scope="ingest",
        summary="Ingest one article",
        body=(Content(TEXT_PLAIN, str), Content(JSON, DocumentIn)),
        body_description=(
            "The raw article as `text/plain; charset=…` (any charset Python decodes; UTF-8"
            " when none is given), or a JSON `DocumentIn` (UTF-8). The original of a JSON"
            " body is its `text` encoded as UTF-8."
        ),
        parameters=("Content-Digest",),
        answers=(
            Answer(201, "Created: the document is archived.", _RECEIPT, ("Location",)),
            Answer(200, "Duplicate: the document was archived already.", _RECEIPT, ("Location",)),
        ),
        problems=(
            MalformedJson,
            InvalidEncoding,
            MalformedDigest,
            DigestMismatch,
            PayloadTooLarge,
            UnsupportedMediaType,
            UnknownCharset,
            InvalidDocument,
            UnknownField,
            MetadataTooLarge,
            WriteDeadlinePassed,
            *_STORAGE,
        ),
    ),
    Route(
        method="GET",
        path="/v1/documents",
        handler=finding.find_documents,
        operation_id="findDocuments",
        scope="read",
        summary="Documents by source URL (and time) or by external id, newest first",
        parameters=("url", "match", "external_id", "from", "to", "limit", "cursor"),
        answers=(
            Answer(200, "The captures found (no items when none).", (Content(JSON, Captures),)),
        ),
        problems=(BadParameter, *_STORAGE),
    ),
    Route(
        method="GET",
        path="/v1/documents/{id}/similar",
        handler=finding.similar,
        operation_id="similarDocuments",
        scope="read",
        summary="Near-duplicates: documents whose simhash differs in at most max_distance bits",
        parameters=("id", "max_distance"),
        answers=(Answer(200, "The near-duplicates, nearest first.", (Content(JSON, Similar),)),),
        problems=(*_READ, BadParameter),
    ),
    Route(
        method="GET",
        path="/v1/changes",
        handler=finding.changes,
        operation_id="listChanges",
        scope="read",
        summary="The change feed: every record version once, in the order it became visible",
        parameters=("after", "limit"),
        answers=(
            Answer(200, "The next changes; `next` always present.", (Content(JSON, Changes),)),
        ),
        problems=(BadParameter, *_STORAGE),
    ),
    Route(
        method="GET",
        path="/v1/documents/{id}",
        handler=documents.get_document,
        operation_id="getDocument",
        scope="read",
        summary="A record version as stored (the latest by default)",
        parameters=("id", "version", "If-None-Match"),
        answers=(
            Answer(200, "The record.", (Content(JSON, Record),), ("ETag", "Cache-Control")),
            Answer(304, "Not modified.", (), ("ETag", "Cache-Control")),
        ),
        problems=(*_READ, VersionNotFound),
    ),
    Route(
        method="GET",
        path="/v1/documents/{id}/original",
        handler=documents.get_original,
        operation_id="getOriginal",
        scope="read",
        summary="The exact original bytes, with their original media type",
        parameters=("id", "If-None-Match"),
        answers=(
            Answer(
                200,
                "The original bytes (`text/plain` with the charset they were posted in).",
                (Content(TEXT_PLAIN, str),),
                ("Repr-Digest", "ETag", "Cache-Control"),
            ),
            Answer(304, "Not modified.", (), ("Repr-Digest", "ETag", "Cache-Control")),
        ),
        problems=(*_READ, IntegrityError),
    ),
    Route(
        method="GET",
        path="/v1/documents/{id}/provenance",
        handler=documents.get_provenance,
        operation_id="getProvenance",
        scope="read",
        summary="Provenance of a record version as W3C PROV-O JSON-LD",
        parameters=("id", "version"),
        answers=(Answer(200, "PROV-O JSON-LD.", (Content(APPLICATION_LD_JSON, JsonObject),)),),
        problems=(*_READ, VersionNotFound),
    ),
    Route(
        method="GET",
        path="/v1/documents/{id}/versions",
        handler=documents.get_versions,
        operation_id="listVersions",
        scope="read",
        summary="The record versions of a document, oldest first",
        parameters=("id",),
        answers=(Answer(200, "The versions.", (Content(JSON, VersionList),)),),
        problems=_READ,
    ),
    Route(
        method="POST",
        path="/v1/imports",
        handler=imports.create_import,
        operation_id="createImport",
        scope="ingest",
        summary="Start a bulk import: NDJSON, one `DocumentIn` per line",
        body=(Content(NDJSON, str),),
        body_description="One JSON document per line, as the JSON body of POST /v1/documents.",
        answers=(Answer(202, "Archived and queued.", _JOB, ("Location",)),),
        problems=(PayloadTooLarge, UnsupportedMediaType, *_STORAGE),
    ),
    Route(
        method="GET",
        path="/v1/imports/{job}",
        handler=imports.get_import,
        operation_id="getImport",
        scope="read",
        summary="An import job's state and counts",
        parameters=("job",),
        answers=(Answer(200, "The job.", _JOB),),
        problems=_JOB_READ,
    ),
    Route(
        method="DELETE",
        path="/v1/imports/{job}",
        handler=imports.cancel_import,
        operation_id="cancelImport",
        scope="admin",
        summary="Cancel an import job (it stops at its next chunk)",
        parameters=("job",),
        answers=(Answer(202, "Cancelling (or finished already).", _JOB),),
        problems=_JOB_READ,
    ),
    Route(
        method="GET",
        path="/v1/imports/{job}/errors",
        handler=imports.get_errors,
        operation_id="getImportErrors",
        scope="read",
        summary='The failed lines: NDJSON of `{"line": n, "problem": {...}}`',
        parameters=("job",),
        answers=(Answer(200, "NDJSON, in line order.", (Content(NDJSON, str),)),),
        problems=_JOB_READ,
    ),
    Route(
        method="GET",
        path="/v1/imports/{job}/results",
        handler=imports.get_results,
        operation_id="getImportResults",
        scope="read",
        summary='The stored lines: NDJSON of `{"line": n, "id": ..., "outcome": ...}`',
        parameters=("job",),
        answers=(Answer(200, "NDJSON, in line order.", (Content(NDJSON, str),)),),
        problems=_JOB_READ,
    ),
    Route(
        method="GET",
        path="/healthz",
        handler=health.healthz,
        operation_id="healthz",
        scope=None,
        summary="Liveness: 200 while the process serves HTTP (also while draining)",
        answers=(Answer(200, "Alive.", (Content(JSON, Health),)),),
    ),
    Route(
        method="GET",
        path="/readyz",
        handler=health.readyz,
        operation_id="readyz",
        scope=None,
        summary="Readiness: not draining, and a real storage call succeeds",
        answers=(Answer(200, "Ready.", (Content(JSON, Health),)),),
        problems=(ServiceUnavailable, *_STORAGE),
    ),
    Route(
        method="GET",
        path="/openapi.json",
        handler=contract.openapi_json,
        operation_id="openapi",
        scope=None,
        summary="This OpenAPI 3.1 document: the machine-readable contract",
        answers=(Answer(200, "OpenAPI 3.1.", (Content(JSON, JsonObject),)),),
    ),
    Route(
        method="GET",
        path="/metrics",
        handler=metrics.metrics,
        operation_id="metrics",
        scope=None,
        summary="Prometheus metrics (OpenMetrics when the Accept header asks for it)",
        answers=(
            Answer(
                200,
                "The Prometheus text exposition format.",
                (Content(TEXT_PLAIN, str), Content("application/openmetrics-text", str)),
            ),
        ),
    ),
)

# Answers any path can give: a path no route has, a method the path does not have.
ANY_PATH = {"NotFound": (NotFound,), "MethodNotAllowed": (MethodNotAllowed,)}
