"""HTTP digest fields (RFC 9530): parsing `Content-Digest`, formatting `Repr-Digest`.

A field is a structured-field dictionary of algorithm = `:base64:` byte sequences, e.g.
`sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`. Vellum checks `sha-256` and
`sha-512`; a field naming neither is rejected rather than silently ignored, since the
client asked for an integrity check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable

from service.errors import DigestMismatch, MalformedDigest

_ALGORITHMS: dict[str, Callable[[bytes], bytes]] = {
    "sha-256": lambda data: hashlib.sha256(data).digest(),
    "sha-512": lambda data: hashlib.sha512(data).digest(),
}


def parse_digest_field(header: str) -> dict[str, bytes]:
    digests: dict[str, bytes] = {}
    for member in header.split(","):
        name, sep, value = member.strip().partition("=")
        value = value.split(";", 1)[0].strip()  # parameters carry nothing we check
        if not sep or len(value) < 2 or value[0] != ":" or value[-1] != ":":
            raise MalformedDigest(
                "Content-Digest must be a dictionary like sha-256=:<base64>:",
                header=header[:200],
            )
        try:
            digests[name.strip().lower()] = base64.b64decode(value[1:-1], validate=True)
        except binascii.Error as exc:
            raise MalformedDigest(
                f"Content-Digest {name.strip()} is not valid base64", header=header[:200]
            ) from exc
    return digests


def verify_content_digest(header: str, content: bytes, *, sha256: bytes | None = None) -> None:
    """Raise unless every supported digest in `header` matches `content`."""
    digests = parse_digest_field(header)
    checked = [name for name in digests if name in _ALGORITHMS]
    if not checked:
        raise MalformedDigest(
            "Content-Digest names no supported algorithm; use sha-256 or sha-512",
            supported=sorted(_ALGORITHMS),
        )
    for name in checked:
        known = sha256 if name == "sha-256" else None
        actual = known if known is not None else _ALGORITHMS[name](content)
        if digests[name] != actual:
            raise DigestMismatch(
                f"the body's {name} digest is not the one given in Content-Digest",
                algorithm=name,
            )


def digest_field(sha256: bytes) -> str:
    return f"sha-256=:{base64.b64encode(sha256).decode('ascii')}:"
