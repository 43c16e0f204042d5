"""Cursors of the lookups and of the change feed: opaque to clients, an index key to
resume after inside (`k:` and the key, base64url), refused (400) when not of the index
the lookup reads."""

from __future__ import annotations

import base64
import binascii

from service.errors import BadParameter

MAX_PAGES = 10  # listing pages a lookup or a feed read takes per call, then a cursor


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(f"k:{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, name: str, family: str) -> str:
    """The key a cursor resumes after; BadParameter unless it is one of `family`'s."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith("k:") or not text[2:].startswith(family):
        raise BadParameter(f"{name} is not a cursor this lookup gave out", parameter=name)
    return text[2:]


def list_after(start: str, prefix: str) -> str:
    """What to list after: nothing before the prefix. Never the prefix itself, nor any
    "folder" of keys: SeaweedFS then skips every key under it (and lists in folder
    order, `a/1` before `a#1`, which every cursor here resumes consistently: each is an
    entry's key or a name no key has, past a folder's last entry)."""
    return start if start > prefix else ""
