"""The keys of the indexes (docs/format.md, "Indexes"): every lookup is a prefix listing.

    index/changes/<at>_<id>_<version>_<received_at>_<record sha256>
    index/url/<text>#<inverted received_at>/<id>/<inverted version>
    index/external-id/<text>#<inverted received_at>/<id>/<inverted version>
    index/host/<host>#<inverted received_at>/<id>/<url>/<inverted version>
    index/subdomain/<domain>#<inverted received_at>/<id>/<url>/<inverted version>
    index/simhash/<band 0-3>/<band, 4 hex>/<simhash, 16 hex>.<id>.<version>

Entries are empty objects: a key says all an entry says. `<at>` and `<received_at>` are
`yyyyMMddThhmmss.ffffffZ` (UTC, microseconds: keys sort in time order). An inverted time
is the 20 digits of `yyyyMMddhhmmssffffff` each replaced by 9 minus it, and an inverted
version is 999999999 minus the version, so that newest sorts first. `<text>` is a URL's
SURT key or an external id, escaped (`escape`) so that `#`, which ends it, never occurs
in it, and cut to at most `MAX_TEXT` bytes (`key_text`): a key stays far below S3's
1,024 bytes. In the host and subdomain indexes (service.finding.hosts) `<host>` and
`<domain>` are a SURT host (`com,example,news`), cut to `HOST_TEXT` bytes, and `<url>` the
capture's SURT key, with `/` and `~` escaped too (`segment`: one path segment, below the
`/~` a cursor resumes at), cut to `URL_TEXT` bytes; it comes before the version because
SeaweedFS refuses a key whose last segment is over 255 bytes. A band entry is one segment
after its bucket (`.` is neither a hex nor a base32 digit), as SeaweedFS makes a folder of
every other segment: entries written before 2026-12-07 have the nested form
`<simhash>/<id>/<version>`, which `parse_band` reads too (`vellum reindex` replaces them,
service.finding.maintenance). A feed entry is one segment after `index/changes/` for the
same reason; entries written before 2026-12-07 have the nested form
`<at>/<id>/<version>/<received_at>/<record sha256>`, which `parse_change` reads too. `_`
sorts after `/`, so where both forms are held a folder `<at>` and what it holds come before
the files `<at>_...` in S3's key order and in SeaweedFS's folder walk alike; `flat_key`
gives an entry's flat form, the place the feed gives it (service.finding.feed).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import msgspec

from service.timestamps import FORMAT

ROOT = "index/"
CHANGES = f"{ROOT}changes/"
URL = f"{ROOT}url/"
EXTERNAL_ID = f"{ROOT}external-id/"
HOST = f"{ROOT}host/"
SUBDOMAIN = f"{ROOT}subdomain/"
SIMHASH = f"{ROOT}simhash/"
END = "#"  # ends an escaped text; `escape` never leaves one in it
LONG = "^"  # marks a cut text; `escape` never leaves one in it either
MAX_TEXT = 640  # bytes of an escaped text kept whole; longer ones are cut
CUT = 558  # a cut text keeps at most this many bytes, then LONG and the text's SHA-256
HOST_TEXT = 240  # the host and subdomain indexes' `<host>`: bytes kept whole
URL_TEXT = 384  # and their `<url>`: a key of theirs is at most 705 bytes
_SPARE = MAX_TEXT - CUT  # bytes a cut text leaves for LONG and the digest
BANDS = 4
_SAFE = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?"
)
_AT = "%Y%m%dT%H%M%S.%fZ"
_MAX_VERSION = 999_999_999


def escape(text: str) -> str:
    """`text` with every character outside RFC 3986's path and query characters (and `%`
    itself) written as `%XX` of its UTF-8 bytes: one text, one escape, and back."""
    return "".join(
        char if char in _SAFE else "".join(f"%{byte:02X}" for byte in char.encode())
        for char in text
    )


def segment(text: str) -> str:
    """The text escaped (`escape`) with `/` and `~` escaped as well: one path segment of a
    key that sorts before `~`."""
    return escape(text).replace("/", "%2F").replace("~", "%7E")


def key_text(text: str, limit: int = MAX_TEXT, escaped: str | None = None) -> str:
    """The escaped text (`escaped`, else `escape(text)`) as it stands in keys: whole up to
    `limit` bytes; else its first `limit - 82` bytes (never splitting an escape), LONG,
    and the SHA-256 hex of the whole text. A cut text is shared by every text that starts
    alike and has the same digest: a reader still compares the text itself (the
    record's) before answering."""
    escaped = escape(text) if escaped is None else escaped
    if len(escaped) <= limit:
        return escaped
    cut = head(escaped, limit - _SPARE)
    return f"{cut}{LONG}{hashlib.sha256(text.encode()).hexdigest()}"


def head(escaped: str, cut: int = CUT) -> str:
    """At most `cut` bytes of an escaped text, never splitting an escape: the part of a
    text every key of a longer text that starts with it also starts with."""
    cut = min(len(escaped), cut)
    percent = escaped.rfind("%", max(0, cut - 2), cut)
    return escaped[: percent if percent != -1 else cut]


def may_start_with(text: str, escaped: str) -> bool:
    """Whether the text a key's (escaped, maybe cut) `text` stands for may start with the
    escaped text `escaped`: surely when whole; when cut, as far as its head tells."""
    kept, cut, _ = text.partition(LONG)
    if not cut or len(escaped) <= len(kept):
        return kept.startswith(escaped)
    return escaped.startswith(kept)


def received_instant(received_at: str) -> datetime:
    return datetime.strptime(received_at, FORMAT).replace(tzinfo=UTC)


def inverted(moment: datetime) -> str:
    digits = moment.astimezone(UTC).strftime("%Y%m%d%H%M%S%f")
    return digits.translate(_NINES)


def uninverted(text: str) -> datetime:
    return datetime.strptime(text.translate(_NINES), "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)


_NINES = str.maketrans("0123456789", "9876543210")


def at_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_AT)


def at_instant(text: str) -> datetime:
    return datetime.strptime(text, _AT).replace(tzinfo=UTC)


def inverted_version(version: int) -> str:
    return f"{_MAX_VERSION - version:09d}"


def change_key(
    at: datetime, document_id: str, version: int, received: datetime, record_sha256: str
) -> str:
    parts = (at_text(at), document_id, f"{version:09d}", at_text(received), record_sha256)
    return CHANGES + "_".join(parts)


def lookup_key(family: str, text: str, received: datetime, document_id: str, version: int) -> str:
    """An entry of the URL (`family` URL) or external id (EXTERNAL_ID) index."""
    return (
        f"{family}{key_text(text)}{END}{inverted(received)}/{document_id}/"
        f"{inverted_version(version)}"
    )


def host_key(
    family: str, host: str, surt: str, received: datetime, document_id: str, version: int
) -> str:
    """An entry of the host (`family` HOST) or subdomain (SUBDOMAIN) index: the capture of
    `surt` (a SURT key) under `host` (a SURT host)."""
    return (
        f"{family}{key_text(host, HOST_TEXT)}{END}{inverted(received)}/{document_id}/"
        f"{key_text(surt, URL_TEXT, segment(surt))}/{inverted_version(version)}"
    )


def band_key(band: int, simhash: str, document_id: str, version: int) -> str:
    return f"{band_prefix(band, simhash)}{simhash}.{document_id}.{version:09d}"


def band_prefix(band: int, simhash: str) -> str:
    return f"{SIMHASH}{band}/{simhash[4 * band : 4 * band + 4]}/"


class Change(msgspec.Struct, frozen=True):
    key: str
    at: datetime
    id: str
    version: int
    received: datetime
    record_sha256: str


class Capture(msgspec.Struct, frozen=True):
    """An entry of the URL, external id, host or subdomain index, read from its key."""

    key: str
    text: str  # as in the key: escaped, maybe cut (the host indexes': the `<url>`)
    received: datetime
    id: str
    version: int


class Band(msgspec.Struct, frozen=True):
    band: int
    simhash: str
    id: str
    version: int
    nested: bool  # of the layout written before 2026-12-07: `<simhash>/<id>/<version>`


def flat_key(key: str) -> str:
    """The flat form of a feed or band entry's key (`change_key`, `band_key`): itself when
    flat. Of any other key under `index/changes/` (a cursor's `index/changes/<at>`), its
    place among the flat ones."""
    if key.startswith(CHANGES):
        return CHANGES + key.removeprefix(CHANGES).replace("/", "_")
    band, value, entry = key.removeprefix(SIMHASH).split("/", 2)
    return f"{SIMHASH}{band}/{value}/{entry.replace('/', '.')}"


def parse_change(key: str) -> Change:
    """A feed entry of either layout, flat (`change_key`) or nested."""
    at, document_id, version, received, record_sha256 = (
        flat_key(key).removeprefix(CHANGES).split("_")
    )
    return Change(
        key, at_instant(at), document_id, int(version), at_instant(received), record_sha256
    )


def parse_capture(family: str, key: str) -> Capture:
    text, _, tail = key.removeprefix(family).rpartition(END)
    received, document_id, version = tail.split("/")
    return Capture(key, text, uninverted(received), document_id, _MAX_VERSION - int(version))


def parse_host_entry(family: str, key: str) -> Capture:
    _, _, tail = key.removeprefix(family).partition(END)
    received, document_id, url, version = tail.split("/")
    return Capture(key, url, uninverted(received), document_id, _MAX_VERSION - int(version))


def parse_entry(key: str) -> Capture:
    """An entry of the URL, external id, host or subdomain index, whichever it is of."""
    for family in (HOST, SUBDOMAIN):
        if key.startswith(family):
            return parse_host_entry(family, key)
    return parse_capture(URL if key.startswith(URL) else EXTERNAL_ID, key)


def parse_band(key: str) -> Band:
    """A band entry of either layout, flat (`band_key`) or nested."""
    flat = flat_key(key)
    band, _, entry = flat.removeprefix(SIMHASH).split("/", 2)
    simhash, document_id, version = entry.split(".")
    return Band(int(band), simhash, document_id, int(version), nested=flat != key)
