"""The canonical form of a source URL (SPEC §9), as a SURT key: `com,example)/path?query`.

    https://WWW.Example.com:443/a%7Eb?q=1#top   ->   com,example)/a~b?q=1

The scheme is ignored (http and https alike); the host is lowercased, IDNA-encoded, a
leading `www.` and a trailing dot dropped; the scheme's default port (80, 443) is dropped,
any other port kept as `:port`; user information and the fragment are dropped; an empty
path is `/`; path and query are kept exactly as sent but for percent-encodings of
unreserved characters (`A-Z a-z 0-9 - . _ ~`), which are decoded. A URL without a scheme
(`example.com/news`) is read as `http://example.com/news`. The host's labels are reversed
and joined with commas, then `)`, as the Wayback CDX index sorts them, so every URL of a
host, or of a domain and its subdomains, shares a key prefix. An IP address is not reversed
(an IPv6 one keeps its brackets).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import urllib.parse

import msgspec

from service.finding import keys
from service.finding.model import Match

_DEFAULT_PORTS = {"http": 80, "https": 443}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class NotAUrl(ValueError):
    """The text has no host: it cannot be a source URL's canonical form."""


class Canonical(msgspec.Struct, frozen=True):
    """A URL in canonical form: `host` is the reversed host (`com,example`), `port` its
    non-default port or None, `rest` the path and query (`/a?b`)."""

    host: str
    port: int | None
    rest: str

    @property
    def authority(self) -> str:
        """The SURT host part: `com,example` or `com,example:8080`."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def surt(self) -> str:
        return f"{self.authority}){self.rest}"


def canonical(url: str) -> Canonical:
    """The canonical form of `url`; NotAUrl when it names no host."""
    text = url.strip()
    if not _SCHEME.match(text):
        text = f"http://{text.removeprefix('//')}"
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise NotAUrl(f"not a URL: {exc}") from exc
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise NotAUrl("the URL has no host")
    if port == _DEFAULT_PORTS.get(parts.scheme.lower()):
        port = None
    path = _ESCAPE.sub(_unescape, parts.path) or "/"
    query = _ESCAPE.sub(_unescape, parts.query)
    rest = f"{path}?{query}" if query else path
    return Canonical(host=surt_host(host), port=port, rest=rest)


def surt_host(host: str) -> str:
    """`www.News.Example.com` -> `com,example,news`; an IP address stays as it is."""
    name = host.lower()
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return f"[{name}]" if address.version == 6 else name
    # A name IDNA cannot encode (an over-long label) is kept lowercased, escaped in keys.
    with contextlib.suppress(UnicodeError):
        name = name.encode("idna").decode("ascii")
    name = name.removeprefix("www.")
    return ",".join(reversed(name.split(".")))


def _unescape(match: re.Match[str]) -> str:
    """An escaped unreserved character, decoded; any other escape, as it was sent."""
    character = chr(int(match.group(1), 16))
    return character if character in _UNRESERVED else match.group(0)


def exact_prefix(asked: Canonical) -> str:
    """The URL index's prefix of every capture of the URL `asked` (a cut text needs its
    record's URL compared: `matches`)."""
    return f"{keys.URL}{keys.key_text(asked.surt)}{keys.END}"


def matches(found: Canonical, asked: Canonical, match: Match) -> bool:
    """Whether a URL (`found`) is a `match` of `asked`."""
    if match == "exact":
        return found.surt == asked.surt
    if match == "prefix":
        return found.surt.startswith(asked.surt)
    if match == "host":
        return found.host == asked.host
    return found.host == asked.host or found.host.startswith(f"{asked.host},")
