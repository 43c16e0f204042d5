"""Media types and charsets of submitted bodies: parsing, resolving and strict decoding.

Accepted on ingest: `text/plain` (any charset Python can decode as text, default UTF-8
when none is given) and `application/json` (UTF-8 only, as RFC 8259 requires).
Charset labels are matched case-insensitively through Python's codec registry
(`windows-1252`, `cp1252`, `latin-1`, `iso-8859-1`, `utf-8`, `shift_jis`, ...). Codecs that
are not character sets (`rot13`, `base64`, `idna`, `unicode_escape`, ...) and UTF-7 (whose
alternative spellings of ASCII are a known injection vector) are refused as unknown.
"""

from __future__ import annotations

import codecs

import msgspec

from service.errors import InvalidEncoding, UnknownCharset, UnsupportedMediaType

TEXT_PLAIN = "text/plain"
APPLICATION_JSON = "application/json"
APPLICATION_NDJSON = "application/x-ndjson"  # imports, their errors and results
APPLICATION_LD_JSON = "application/ld+json"  # provenance (PROV-O)
PROBLEM_JSON = "application/problem+json"  # every error (RFC 9457)
DEFAULT_CHARSET = "utf-8"
_NOT_CHARSETS = {"idna", "punycode", "raw-unicode-escape", "unicode-escape", "utf-7"}


class MediaType(msgspec.Struct, frozen=True):
    essence: str  # type/subtype, lowercase
    charset: str | None  # the label as sent, lowercase


class Charset(msgspec.Struct, frozen=True):
    label: str  # as the client named it, lowercase: kept in the record
    codec: str  # Python's canonical codec name: part of the document id


def parse_media_type(header: str | None) -> MediaType:
    """Split a Content-Type header into its essence and charset parameter."""
    if not header or not header.strip():
        raise UnsupportedMediaType(
            "a Content-Type is required: text/plain; charset=... or application/json",
            supported=[TEXT_PLAIN, APPLICATION_JSON],
        )
    essence, *params = header.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return MediaType(essence=essence.strip().lower(), charset=charset)


def resolve_charset(label: str | None) -> Charset:
    label = label or DEFAULT_CHARSET
    try:
        info = codecs.lookup(label)
    except LookupError:
        info = None
    if info is None or not info._is_text_encoding or info.name in _NOT_CHARSETS:
        raise UnknownCharset(f"unknown charset {label[:64]!r}", charset=label[:64])
    return Charset(label=label, codec=info.name)


def decode(data: bytes, charset: Charset) -> str:
    """Decode strictly; a byte the charset cannot map is an error, never replaced."""
    try:
        return data.decode(charset.codec)
    except UnicodeDecodeError as exc:
        raise InvalidEncoding(
            f"the body is not valid {charset.label}: byte {exc.start} cannot be decoded",
            charset=charset.label,
            position=exc.start,
        ) from exc
