"""API keys: the keys file, hashing, and verification (no HTTP here; see service.web.auth).

A key reads `vk_<id>_<secret>`: `id` is 8 characters of lowercase base32 (public: it goes
into logs and provenance), `secret` 52 characters of lowercase base32 (256 random bits).
The keys file (VELLUM_KEYS_FILE) holds one JSON object per line and never the key:

    {"id": "k3vq7b2a", "scopes": ["ingest"], "created_at": "2025-01-31T09:00:00Z",
     "kdf": "scrypt", "n": 16384, "r": 8, "p": 1, "salt": "<32 hex>", "hash": "<64 hex>"}

`hash` is scrypt(secret, salt, n, r, p) with a random 16-byte salt per key, compared with
`hmac.compare_digest`. Key ids are public, so a client may send a known id with wrong
secrets to make the server run scrypt: `FailedAttempts` refuses a key id's unverified
tokens for a while after `FAILURES_ALLOWED` wrong secrets within `FAILURE_WINDOW_SECONDS`
(tokens verified before still pass). An attempt is reserved before its scrypt runs and
counts against that allowance until it is known to be right, so however many arrive at
once, at most `FAILURES_ALLOWED` scrypts run for one key id per window. The web layer
runs one scrypt at a time and lets at most `MAX_UNVERIFIED_WAITING` tokens wait for it.
Every entry is checked when the file loads (id, hex salt and hash, scrypt parameters
within bounds, no id twice): a malformed entry is a start-up error naming its line.
Blank lines are ignored; deleting a line (`vellum keys revoke ID`)
revokes that key. A server notices a changed keys file within `RELOAD_SECONDS` and loads it
again (`KeysFile`); a file that does not load leaves the keys in use as they were. A
verified token is remembered by its SHA-256 (never the token itself), so scrypt's cost
(about 50 ms) is paid once per key and process.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec
import structlog

from service.errors import ConfigError

log = structlog.get_logger("vellum")

Scope = Literal["ingest", "read", "admin"]
SCOPES: tuple[Scope, ...] = ("ingest", "read", "admin")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB of memory per hash
RELOAD_SECONDS = 1.0  # the keys file is looked at (one stat) at most this often
FAILURES_ALLOWED = 10  # wrong secrets per key id within the window, then 429
FAILURE_WINDOW_SECONDS = 60.0
MAX_UNVERIFIED_WAITING = 32  # tokens waiting for scrypt at once, then 503
SCRYPT_MAX_MEMORY = 64 * 1024 * 1024
_KEY_ID = re.compile(r"[a-z2-7]{8}")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")
_TOKEN = re.compile(r"vk_([a-z2-7]{8})_([a-z2-7]{52})")


class KeyEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the keys file: a key's id, scopes and salted hash, never the key."""

    id: str
    scopes: tuple[Scope, ...]
    created_at: str
    kdf: Literal["scrypt"] = "scrypt"
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P
    salt: str
    hash: str

    def allows(self, scope: Scope) -> bool:
        """`admin` implies every scope."""
        return scope in self.scopes or "admin" in self.scopes

    def problem(self) -> str | None:
        """What is wrong with this entry, or None: checked when the file loads, so a bad
        entry is a start-up error rather than a 500 when its key is used."""
        if not _KEY_ID.fullmatch(self.id):
            return "id must be 8 characters of a-z and 2-7"
        if not self.scopes:
            return "scopes must name at least one scope"
        if not _HEX.fullmatch(self.salt) or len(self.salt) < 16:
            return "salt must be at least 8 bytes of lowercase hex"
        if not _HEX.fullmatch(self.hash) or not 32 <= len(self.hash) <= 128:
            return "hash must be 16-64 bytes of lowercase hex"
        if self.n < 2 or self.n & (self.n - 1) or not 1 <= self.r <= 64 or not 1 <= self.p <= 16:
            return "scrypt needs n a power of 2 (at least 2), r 1-64, p 1-16"
        if 128 * self.r * (self.n + self.p + 2) > SCRYPT_MAX_MEMORY:
            return f"scrypt parameters need more than {SCRYPT_MAX_MEMORY // 2**20} MiB"
        return None

    def matches(self, secret: str) -> bool:
        expected = bytes.fromhex(self.hash)
        derived = _scrypt(secret, bytes.fromhex(self.salt), self.n, self.r, self.p, len(expected))
        return hmac.compare_digest(derived, expected)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(KeyEntry)


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, size: int = 32) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, dklen=size, maxmem=SCRYPT_MAX_MEMORY
    )


def _base32(size: int) -> str:
    return base64.b32encode(secrets.token_bytes(size)).decode().rstrip("=").lower()


def parse_token(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = _TOKEN.fullmatch(token)
    return (match[1], match[2]) if match else None


class Keyring:
    """The keys of one keys file, and the tokens verified so far (by SHA-256)."""

    def __init__(self, entries: list[KeyEntry], previous: Keyring | None = None) -> None:
        self.entries = {entry.id: entry for entry in entries}
        # Tokens verified against the previous version of the file stay verified while
        # their key is unchanged: a reload costs no scrypt.
        self._verified: dict[bytes, KeyEntry] = (
            {}
            if previous is None
            else {
                digest: entry
                for digest, entry in previous._verified.items()
                if self.entries.get(entry.id) == entry
            }
        )

    def __len__(self) -> int:
        return len(self.entries)

    def cached(self, token: str) -> KeyEntry | None:
        """The key of a token verified before, without scrypt; None if not verified yet."""
        return self._verified.get(hashlib.sha256(token.encode()).digest())

    def verify(self, token: str) -> KeyEntry | None:
        """The key this token is, or None. Slow (scrypt) unless verified before."""
        if (known := self.cached(token)) is not None:
            return known
        parsed = parse_token(token)
        if parsed is None:
            return None
        entry = self.entries.get(parsed[0])
        if entry is None or not entry.matches(parsed[1]):
            return None
        # One entry per key at most: a key has exactly one token.
        self._verified[hashlib.sha256(token.encode()).digest()] = entry
        return entry


class KeysFile:
    """The keys of a keys file as it is now: `keyring()` loads it again when it changed."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.clock = clock
        self.failures = FailedAttempts(clock)
        self.waiting = 0  # unverified tokens waiting for scrypt (kept by the web layer)
        self._version = _file_version(path)
        self._keyring = load_keys(path)  # a ConfigError at start-up
        self._checked_at = clock()

    def keyring(self) -> Keyring:
        now = self.clock()
        if now - self._checked_at < RELOAD_SECONDS:
            return self._keyring
        self._checked_at = now
        try:
            version = _file_version(self.path)
            if version != self._version:
                self._keyring = load_keys(self.path, previous=self._keyring)
                self._version = version
                log.info("keys_reloaded", keys=len(self._keyring))
        except (OSError, ConfigError) as exc:
            log.error("keys_reload_failed", detail=str(exc), keys=len(self._keyring))
        return self._keyring


class FailedAttempts:
    """Wrong secrets per key id. Only ids in the keys file are ever counted (an unknown id
    costs no scrypt), so this holds at most one small queue per key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._times: dict[str, collections.deque[float]] = {}
        self._pending: dict[str, int] = {}  # attempts reserved, their scrypt not done

    def retry_after(self, key_id: str) -> float | None:
        """Seconds until `key_id` may be tried again, or None if it may be tried now."""
        times = self._recent(key_id)
        if len(times) + self._pending.get(key_id, 0) < FAILURES_ALLOWED:
            return None
        if not times:  # every attempt allowed is being checked: they settle in moments
            return 1.0
        return max(times[0] + FAILURE_WINDOW_SECONDS - self.clock(), 1.0)

    def reserve(self, key_id: str) -> float | None:
        """Take one of `key_id`'s attempts before its scrypt runs: None when taken (then
        call `settle`), else the seconds until one may be taken."""
        wait = self.retry_after(key_id)
        if wait is None:
            self._pending[key_id] = self._pending.get(key_id, 0) + 1
        return wait

    def settle(self, key_id: str, *, failed: bool) -> None:
        """The end of a reserved attempt: a wrong secret counts for the window."""
        left = self._pending.get(key_id, 0) - 1
        if left > 0:
            self._pending[key_id] = left
        else:
            self._pending.pop(key_id, None)
        if failed:
            self.failed(key_id)

    def failed(self, key_id: str) -> None:
        times = self._times.setdefault(key_id, collections.deque(maxlen=FAILURES_ALLOWED))
        times.append(self.clock())

    def _recent(self, key_id: str) -> collections.deque[float]:
        times = self._times.get(key_id)
        if times is None:
            return collections.deque()
        horizon = self.clock() - FAILURE_WINDOW_SECONDS
        while times and times[0] <= horizon:
            times.popleft()
        return times


def _file_version(path: Path) -> tuple[int, int, int]:
    """Changes when the file is rewritten, appended to, or replaced (a Kubernetes Secret's
    symlink swap included)."""
    found = path.stat()
    return found.st_ino, found.st_mtime_ns, found.st_size


def load_keys(path: Path, previous: Keyring | None = None) -> Keyring:
    """The keys of a keys file; a missing or malformed file is a ConfigError."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ConfigError(f"VELLUM_KEYS_FILE: cannot read {path}: {exc.strerror}") from exc
    entries: list[KeyEntry] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = _decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise ConfigError(f"VELLUM_KEYS_FILE: {path} line {number}: {exc}") from exc
        problem = entry.problem()
        if problem is None and any(seen.id == entry.id for seen in entries):
            problem = f"key id {entry.id} is on an earlier line too"
        if problem is not None:
            raise ConfigError(f"VELLUM_KEYS_FILE: {path} line {number}: {problem}")
        entries.append(entry)
    return Keyring(entries, previous)


def create_key(
    path: Path, scopes: list[Scope], *, now: datetime | None = None
) -> tuple[str, KeyEntry]:
    """Append a new key to the keys file (made with mode 0600); return the key and its entry.

    The key is returned here and nowhere else: the file keeps only its salted hash.
    """
    text = path.read_bytes() if path.exists() else b""
    existing = load_keys(path).entries if text else {}
    key_id = _base32(5)
    while key_id in existing:
        key_id = _base32(5)
    secret = _base32(32)
    salt = secrets.token_bytes(16)
    entry = KeyEntry(
        id=key_id,
        scopes=tuple(s for s in SCOPES if s in scopes),
        created_at=(now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        salt=salt.hex(),
        hash=_scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P).hex(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "ab") as handle:
        if text and not text.endswith(b"\n"):
            handle.write(b"\n")
        handle.write(_encoder.encode(entry) + b"\n")
    return f"vk_{key_id}_{secret}", entry


def revoke_key(path: Path, key_id: str) -> KeyEntry:
    """Remove a key from the keys file (replaced atomically, mode 0600); return its entry."""
    entries = load_keys(path).entries
    if key_id not in entries:
        raise ConfigError(f"no key {key_id} in {path}")
    kept = b"".join(
        _encoder.encode(entry) + b"\n" for entry in entries.values() if entry.id != key_id
    )
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:  # mkstemp makes it 0600
            handle.write(kept)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return entries[key_id]
