"""Turning a request body into a verified `Submission`: step 1 of the write protocol.

Pure functions (no I/O): everything a submission needs is checked here, before any
byte is written, so a rejected request stores nothing. Bulk imports use the same
`from_json_document` for each line.

The original of a text/plain body is the body exactly as received, in its charset. The
original of a JSON document is its `text` encoded as UTF-8, so the same article posted
either way (without a source) has the same original and the same id.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec

from service import media
from service.errors import (
    InvalidDocument,
    MalformedJson,
    MetadataTooLarge,
    NestingTooDeep,
    UnknownField,
)
from service.types import Source


class _DocumentWire(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`DocumentIn` as it is read: `metadata` kept as its raw JSON bytes, so its size is
    checked before it is decoded (64 KiB of `[[],[],…]` decodes to 1.35 MiB of objects;
    a 5 MiB body of it to about 100 MiB)."""

    text: str
    source: Source | None = None
    metadata: msgspec.Raw = msgspec.Raw()


_decoder = msgspec.json.Decoder(_DocumentWire)
_metadata_decoder = msgspec.json.Decoder(dict[str, Any] | None)
_JSON_CHARSET = media.resolve_charset(media.DEFAULT_CHARSET)
MAX_METADATA_DEPTH = 32  # levels of objects and arrays inside `metadata`
_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(?P<field>[^`]*)`")
_MISSING_FIELD = re.compile(r"Object missing required field `(?P<field>[^`]*)`")
_BYTE = re.compile(r"\(byte (?P<byte>\d+)\)")


class Submission(msgspec.Struct, frozen=True, kw_only=True):
    original: bytes
    sha256: bytes  # of `original`
    charset: media.Charset
    text: str  # decoded, not yet normalized
    source: Source | None = None
    metadata: dict[str, Any] | None = None

    @property
    def media_type(self) -> str:
        return f"{media.TEXT_PLAIN}; charset={self.charset.label}"


def from_text_body(
    body: bytes, charset: media.Charset, *, sha256: bytes | None = None
) -> Submission:
    """A text/plain body: the original is the body itself."""
    text = media.decode(body, charset)
    _require_text(text)
    return Submission(
        original=body,
        sha256=sha256 or hashlib.sha256(body).digest(),
        charset=charset,
        text=text,
    )


def from_json_document(body: bytes, *, max_metadata_bytes: int) -> Submission:
    """An `application/json` body, or one line of an NDJSON import.

    The body must be UTF-8 (RFC 8259). That is checked here, before the JSON is parsed,
    so invalid UTF-8 is always `invalid-encoding` whatever the JSON parser would call it
    (msgspec 0.22 and 0.23 word it differently)."""
    media.decode(body, _JSON_CHARSET)
    document = _decode_document(body)
    _require_text(document.text)
    metadata = _metadata(document.metadata, max_metadata_bytes)
    original = document.text.encode("utf-8")
    return Submission(
        original=original,
        sha256=hashlib.sha256(original).digest(),
        charset=_JSON_CHARSET,
        text=document.text,
        source=document.source,
        metadata=metadata,
    )


def _metadata(raw: msgspec.Raw, max_metadata_bytes: int) -> dict[str, Any] | None:
    """The metadata, decoded only once its size as compact JSON is within the limit
    (measured on the bytes, whitespace removed, without building any object)."""
    size = len(raw)
    if size > max_metadata_bytes:
        size = len(msgspec.json.format(raw, indent=-1))
    if size > max_metadata_bytes:
        raise MetadataTooLarge(
            f"metadata is {size} bytes as JSON; the limit is {max_metadata_bytes}",
            field="metadata",
            limit_bytes=max_metadata_bytes,
        )
    if not raw:
        return None
    try:
        metadata = _metadata_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidDocument(f"'metadata': {_PATH.sub('', str(exc))}", field="metadata") from exc
    except RecursionError:
        raise NestingTooDeep(
            "the JSON is nested too deeply to read",
            field="metadata",
            limit_depth=MAX_METADATA_DEPTH,
        ) from None
    if metadata is not None:
        _require_shallow(metadata)
    return metadata


def _require_shallow(metadata: dict[str, Any]) -> None:
    """Refuse metadata nested deeper than MAX_METADATA_DEPTH (walked without recursion)."""
    level: list[Any] = [metadata]
    for depth in range(1, MAX_METADATA_DEPTH + 2):
        containers = [value for value in level if isinstance(value, dict | list)]
        if not containers:
            return
        if depth > MAX_METADATA_DEPTH:
            break
        level = [
            child
            for container in containers
            for child in (container.values() if isinstance(container, dict) else container)
        ]
    raise NestingTooDeep(
        f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep",
        field="metadata",
        limit_depth=MAX_METADATA_DEPTH,
    )


def _require_text(text: str) -> None:
    if not text.strip():
        raise InvalidDocument(
            "text is empty or only whitespace" if text else "text is empty", field="text"
        )


def _decode_document(body: bytes) -> _DocumentWire:
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _invalid_document(str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise _malformed(body, str(exc)) from exc
    except RecursionError:
        raise NestingTooDeep(
            "the JSON is nested too deeply to read", limit_depth=MAX_METADATA_DEPTH
        ) from None


def _invalid_document(message: str) -> InvalidDocument:
    at = _PATH.search(message)
    path = at.group("path") if at else ""
    message = message[: at.start()] if at else message
    if unknown := _UNKNOWN_FIELD.fullmatch(message):
        field = _join(path, unknown.group("field"))
        return UnknownField(f"unknown field {field!r}", field=field)
    if missing := _MISSING_FIELD.fullmatch(message):
        field = _join(path, missing.group("field"))
        return InvalidDocument(f"{field!r} is required", field=field)
    if not path:
        return InvalidDocument(f"the body must be a JSON object: {message}", field=None)
    return InvalidDocument(f"{path!r}: {message}", field=path)


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def _malformed(body: bytes, message: str) -> MalformedJson:
    """A JSON syntax error, with its position as byte offset, line and column (1-based)."""
    found = _BYTE.search(message)
    position = min(int(found.group("byte")), len(body)) if found else len(body)
    line = body.count(b"\n", 0, position) + 1
    column = position - (body.rfind(b"\n", 0, position) + 1) + 1
    reason = _BYTE.sub("", message.removeprefix("JSON is malformed: ")).strip()
    return MalformedJson(
        f"malformed JSON at line {line}, column {column} (byte {position}): {reason}",
        position=position,
        line=line,
        column=column,
    )
