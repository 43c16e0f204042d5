"""Deterministic document ids and the storage keys they map to.

A document id is 32 characters of lowercase RFC 4648 base32 (`a-z`, `2-7`, no padding):
the first 160 bits of

    SHA-256("vellum.id/1" LF original-sha256-hex LF charset LF canonical-source-json)

`charset` is the canonical codec of the original (`utf-8`, `cp1252`, ...): the same bytes
read in two charsets are two different texts. `canonical-source-json` is the asserted
source as compact JSON with keys sorted and unasserted (null) fields left out, so `{}`,
no source at all and a source of only nulls are the same. See docs/format.md.

Import job ids have the same form (`encode_id` of 160 bits; random, or derived from a CLI
import's input): `is_id` checks either.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

import msgspec

from service.errors import MalformedId
from service.types import ID_PATTERN, Source

ID_LENGTH = 32
ID_BYTES = 20  # 160 bits: 32 characters of base32, no padding
_ID_PATTERN = re.compile(ID_PATTERN)
_VERSION_PATTERN = re.compile(r"[1-9][0-9]{0,8}")
_VERSION_KEY = re.compile(r"records/[^/]+/[0-9]{9}\.json")
LATEST_NAME = "latest.json"

_canonical_source = msgspec.json.Encoder(order="sorted")


def canonical_source(source: Source | None) -> bytes:
    if source is None:
        return b"{}"
    asserted = {
        field: value
        for field in source.__struct_fields__
        if (value := getattr(source, field)) is not None
    }
    return _canonical_source.encode(asserted)


def document_id(original_sha256_hex: str, codec: str, source: Source | None) -> str:
    material = b"\n".join(
        [b"vellum.id/1", original_sha256_hex.encode(), codec.encode(), canonical_source(source)]
    )
    return encode_id(hashlib.sha256(material).digest())


def encode_id(digest: bytes) -> str:
    """An id of the first 160 bits of `digest`: lowercase base32, no padding."""
    return base64.b32encode(digest[:ID_BYTES]).decode("ascii").lower()


def random_id() -> str:
    return encode_id(secrets.token_bytes(ID_BYTES))


def is_id(value: str) -> bool:
    """Whether `value` has the form of a document or job id."""
    return _ID_PATTERN.fullmatch(value) is not None


def parse_id(value: str) -> str:
    """Return `value` if it is a well-formed document id, else raise MalformedId."""
    if not is_id(value):
        raise MalformedId(
            f"document ids are {ID_LENGTH} characters of a-z and 2-7",
            id=value[:64],
        )
    return value


def parse_version(value: str) -> int:
    if not _VERSION_PATTERN.fullmatch(value):
        raise MalformedId("version must be a positive integer below 10^9", version=value[:64])
    return int(value)


# Storage keys, relative to the archive's prefix (the storage adapter adds it):
#   originals/sha256/<hex>                  exact original bytes
#   records/<id>/<version, 9 digits>.json   one immutable record version
#   records/<id>/latest.json                the newest version's bytes (derived, replaced)


def original_key(sha256_hex: str) -> str:
    return f"originals/sha256/{sha256_hex}"


def records_prefix(document_id: str) -> str:
    return f"records/{document_id}/"


def record_key(document_id: str, version: int) -> str:
    return f"{records_prefix(document_id)}{version:09d}.json"


def latest_key(document_id: str) -> str:
    """The head object: a copy of the newest version, so that a read of it is one GET."""
    return f"{records_prefix(document_id)}{LATEST_NAME}"


def is_version_key(key: str) -> bool:
    """Whether `key` (under `records/`) is an immutable record version, not a head."""
    return _VERSION_KEY.fullmatch(key) is not None


def version_of(record_key: str) -> int:
    """The version a record version's key names (`is_version_key` first)."""
    return int(record_key.rsplit("/", 1)[1].removesuffix(".json"))
