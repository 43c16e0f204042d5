"""The session cookie of the pages: which API key logged in, and until when, signed.

When API keys are configured, a person logs in once with a key that has the `read`
scope (POST /ui/login); the answer sets a cookie that says `v1.<key id>.<expiry>.<mac>`
and nothing else: not the key, not its secret. The MAC is HMAC-SHA256 over
`v1.<key id>.<expiry>` under a key derived from that API key's entry in the keys file:
HMAC-SHA256(the entry's scrypt hash, "vellum ui session"). So no separate secret has to
be configured, every worker and replica that shares the keys file checks the same
cookies, a key's sessions end the moment it is revoked (its entry is gone) or re-made
(a new salt gives a new hash), and a cookie made for one key says nothing about another.
The cost: whoever can read the keys file can make a session for a key with `read`
(never call the API with it: the file holds no secrets), so the keys file is a secret
(`vellum keys create` makes it mode 0600). Checking a cookie is one HMAC, no scrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from service.keys import KeyEntry, Keyring

COOKIE = "vellum_session"
SESSION_SECONDS = 8 * 3600  # a working day; then the key is asked for again
_DERIVATION = b"vellum ui session"
_VALUE = re.compile(r"v1\.([a-z2-7]{8})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


def issue(entry: KeyEntry, now: float) -> str:
    """A cookie value for `entry`, good for SESSION_SECONDS from `now`."""
    signed = f"v1.{entry.id}.{int(now) + SESSION_SECONDS}"
    return f"{signed}.{_mac(entry, signed)}"


def check(value: str | None, keyring: Keyring, now: float) -> KeyEntry | None:
    """The key a cookie value was issued for, if it is well formed, signed for a key in
    the keyring, and not expired; else None."""
    if value is None or (found := _VALUE.fullmatch(value)) is None:
        return None
    key_id, expires, mac = found.groups()
    entry = keyring.entries.get(key_id)
    if entry is None or int(expires) <= now:
        return None
    if not hmac.compare_digest(mac, _mac(entry, f"v1.{key_id}.{expires}")):
        return None
    return entry


def _mac(entry: KeyEntry, signed: str) -> str:
    key = hmac.new(bytes.fromhex(entry.hash), _DERIVATION, hashlib.sha256).digest()
    mac = hmac.new(key, signed.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
