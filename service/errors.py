"""Vellum's one exception tree. Each class knows its HTTP status and problem type.

    VellumError                      500 internal-error
    ├── ConfigError                  (start-up) bad configuration
    ├── EmbeddedStorageError         (start-up) the embedded S3 server cannot run
    ├── UnsafeStorage                (start-up) the endpoint lacks a guarantee the write
    │                                    protocol relies on (SPEC §2)
    ├── StorageError                 500 storage-error
    │   ├── StorageUnavailable       503 storage-unavailable
    │   │   └── WriteDeadlinePassed  503 write-deadline-passed (index entries took longer
    │   │                                than the change feed allows; carries limit_seconds)
    │   ├── ObjectNotFound           404 not-found (translated by callers)
    │   └── IntegrityError           500 integrity-error (stored bytes fail their digest)
    ├── AnalysisFailed               500 analysis-failed (the normalizer's process died)
    ├── AnalysisTimeout              503 analysis-timeout (past the analysis deadline;
    │                                    carries limit_seconds)
    ├── ServiceUnavailable           503 draining
    │   └── Overloaded               503 overloaded (too much work in flight)
    └── RequestError                 4xx: the client's request is at fault
        ├── BadRequest               400 bad-request
        │   ├── MalformedJson        400 malformed-json (carries line, column, position)
        │   ├── InvalidEncoding      400 invalid-encoding
        │   ├── MalformedDigest      400 malformed-digest
        │   ├── DigestMismatch       400 digest-mismatch
        │   ├── MalformedId          400 malformed-id (ids and versions)
        │   ├── BadParameter         400 bad-parameter (a lookup's query parameter;
        │   │                            carries parameter)
        │   └── RequestTimeout       408 request-timeout (body too slow; carries limit_seconds)
        ├── Unauthorized             401 unauthorized (carries the WWW-Authenticate challenge)
        ├── Forbidden                403 forbidden (carries required_scope)
        ├── CrossSiteRequest         403 cross-site-request (a browser sent it from
        │                                another site)
        ├── NotFound                 404 not-found
        │   ├── DocumentNotFound     404 document-not-found
        │   └── VersionNotFound      404 version-not-found
        ├── MethodNotAllowed         405 method-not-allowed
        ├── TooManyAttempts          429 too-many-attempts (wrong secrets for a key id;
        │                                carries retry_after_seconds)
        ├── PayloadTooLarge          413 payload-too-large (carries limit_bytes)
        ├── UnsupportedMediaType     415 unsupported-media-type
        │   └── UnknownCharset       415 unknown-charset
        └── InvalidDocument          422 invalid-document (carries field)
            ├── UnknownField         422 unknown-field (carries field)
            ├── MetadataTooLarge     422 metadata-too-large (carries limit_bytes)
            └── NestingTooDeep       422 nesting-too-deep (carries limit_depth)

The web layer turns any of them into an RFC 9457 problem: `type` is `/problems/<slug>`,
`title` the class's title, `detail` the message, plus the extension members given as
keyword arguments (`limit_bytes`, `field`, ...). Handlers raise; they never build error
responses by hand. Foreign exceptions are translated where they are caught
(`raise StorageUnavailable(...) from exc`).
"""

from __future__ import annotations

from typing import Any, ClassVar


class VellumError(Exception):
    status: int = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    @property
    def type_uri(self) -> str:
        return f"/problems/{self.slug}"

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 members of this error (the web layer adds instance, request id)."""
        return {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extensions,
        }


class ConfigError(VellumError):
    slug = "config-error"
    title = "Invalid configuration"


class EmbeddedStorageError(VellumError):
    slug = "embedded-storage-error"
    title = "The embedded S3 server could not run"


class UnsafeStorage(VellumError):
    slug = "unsafe-storage"
    title = "The S3 endpoint lacks a guarantee Vellum relies on"


class StorageError(VellumError):
    slug = "storage-error"
    title = "Storage error"


class StorageUnavailable(StorageError):
    status = 503
    slug = "storage-unavailable"
    title = "Storage unavailable"


class WriteDeadlinePassed(StorageUnavailable):
    """Storage too slow for the change feed: like StorageUnavailable, nothing is published
    and the request (or an import's chunk) is to be retried."""

    slug = "write-deadline-passed"
    title = "The write did not finish within the change feed's deadline; retry"


class ObjectNotFound(StorageError):
    status = 404
    slug = "not-found"
    title = "Not found"


class IntegrityError(StorageError):
    slug = "integrity-error"
    title = "Stored data failed its integrity check"


class AnalysisFailed(VellumError):
    slug = "analysis-failed"
    title = "The text could not be analysed"


class AnalysisTimeout(VellumError):
    status = 503
    slug = "analysis-timeout"
    title = "The text was not analysed within its deadline"


class ServiceUnavailable(VellumError):
    status = 503
    slug = "draining"
    title = "Service is shutting down"


class Overloaded(ServiceUnavailable):
    slug = "overloaded"
    title = "Too much work in flight; retry later"


class RequestError(VellumError):
    status = 400
    slug = "bad-request"
    title = "Bad request"


class BadRequest(RequestError):
    pass


class MalformedJson(BadRequest):
    slug = "malformed-json"
    title = "Malformed JSON"


class InvalidEncoding(BadRequest):
    slug = "invalid-encoding"
    title = "Body is not valid in its charset"


class MalformedDigest(BadRequest):
    slug = "malformed-digest"
    title = "Malformed Content-Digest"


class DigestMismatch(BadRequest):
    slug = "digest-mismatch"
    title = "Content-Digest does not match the body"


class MalformedId(BadRequest):
    slug = "malformed-id"
    title = "Malformed document id or version"


class BadParameter(BadRequest):
    slug = "bad-parameter"
    title = "Bad query parameter"


class RequestTimeout(BadRequest):
    status = 408
    slug = "request-timeout"
    title = "The request body arrived too slowly"


class NotFound(RequestError):
    status = 404
    slug = "not-found"
    title = "Not found"


class DocumentNotFound(NotFound):
    slug = "document-not-found"
    title = "Document not found"


class VersionNotFound(NotFound):
    slug = "version-not-found"
    title = "Record version not found"


class Unauthorized(RequestError):
    status = 401
    slug = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str, *, token_given: bool) -> None:
        super().__init__(detail)
        error = ', error="invalid_token"' if token_given else ""
        self.challenge = f'Bearer realm="vellum"{error}'


class Forbidden(RequestError):
    status = 403
    slug = "forbidden"
    title = "The API key lacks the scope this route needs"

    def __init__(self, detail: str, *, required_scope: str) -> None:
        super().__init__(detail, required_scope=required_scope)
        self.challenge = (
            f'Bearer realm="vellum", error="insufficient_scope", scope="{required_scope}"'
        )


class CrossSiteRequest(RequestError):
    status = 403
    slug = "cross-site-request"
    title = "Cross-site browser requests may not change anything"


class MethodNotAllowed(RequestError):
    status = 405
    slug = "method-not-allowed"
    title = "Method not allowed"


class TooManyAttempts(RequestError):
    status = 429
    slug = "too-many-attempts"
    title = "Too many wrong secrets for this API key; retry later"


class PayloadTooLarge(RequestError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(RequestError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class UnknownCharset(UnsupportedMediaType):
    slug = "unknown-charset"
    title = "Unknown charset"


class InvalidDocument(RequestError):
    status = 422
    slug = "invalid-document"
    title = "Invalid document"


class UnknownField(InvalidDocument):
    slug = "unknown-field"
    title = "Unknown field"


class MetadataTooLarge(InvalidDocument):
    slug = "metadata-too-large"
    title = "Metadata too large"


class NestingTooDeep(InvalidDocument):
    slug = "nesting-too-deep"
    title = "JSON nested too deeply"
