"""The host and subdomain indexes: the captures of a host, or of a domain, newest first.

Every capture with a URL has an entry under its host (`index/host/com,example,news#…`)
and one under each of its parent domains of 1 to 4 labels (`index/subdomain/com#…`,
`index/subdomain/com,example#…`): at most `MAX_ENTRIES` entries. No public suffix list
is needed: every level has its entries. A host of one label or an IP address has its
host entry only. A host of 6 labels or more has no entries under its parents of 5 labels
or more: a domain that deep is answered from its parent of 4 labels, filtered by the URL
each entry carries.

So each lookup reads one or two listings, each newest first (service.finding.captures
merges two by key):

- `host`: the host's entries, all of them (any port);
- `prefix`: the host's entries whose URL starts with the asked one (the key tells; a cut
  URL is confirmed against the record, as every item is);
- `domain`: the domain's host entries and its subdomain entries, merged; for a domain of
  5 labels or more, the subdomain entries of its parent of 4 labels whose URL is under it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime

import msgspec

from service.finding import keys
from service.finding.canonical import Canonical
from service.finding.model import Match

_DEEPEST = 4  # labels of the deepest parent domain that gets entries
MAX_ENTRIES = 1 + _DEEPEST  # per capture: its host, and its parent domains of 1 to 4 labels


class Listing(msgspec.Struct, frozen=True):
    """One prefix listing of a lookup, and which of its entries may answer it (None:
    every one)."""

    prefix: str
    keep: Callable[[keys.Capture], bool] | None = None


def parents(host: str) -> list[str]:
    """The parent domains of a SURT host that get subdomain entries: those of 1 to 4
    labels, shortest first (`com,example,news` -> `com`, `com,example`)."""
    labels = host.split(",")  # an IP address is one label: no parents
    return [",".join(labels[:n]) for n in range(1, min(len(labels), _DEEPEST + 1))]


def entry_keys(
    surt: str, host: str, received: datetime, document_id: str, version: int
) -> list[str]:
    """The host and subdomain entries of one record version of a capture of `surt`."""
    found = [keys.host_key(keys.HOST, host, surt, received, document_id, version)]
    found += [
        keys.host_key(keys.SUBDOMAIN, domain, surt, received, document_id, version)
        for domain in parents(host)
    ]
    return found


def listings(asked: Canonical, match: Match) -> list[Listing]:
    """What a `prefix`, `host` or `domain` lookup of `asked` lists."""
    own = f"{keys.HOST}{keys.key_text(asked.host, keys.HOST_TEXT)}{keys.END}"
    if match == "host":
        return [Listing(own)]
    if match == "prefix":
        return [Listing(own, _starting(keys.segment(asked.surt)))]
    labels = asked.host.split(",")
    if _is_address(asked.host):
        return [Listing(own)]  # an address has no subdomains
    if len(labels) <= _DEEPEST:
        return [Listing(own), Listing(_subdomains(asked.host))]
    under = keys.segment(asked.host)
    return [
        Listing(
            _subdomains(",".join(labels[:_DEEPEST])),
            _starting(f"{under},", f"{under})", f"{under}:"),
        )
    ]


def _subdomains(domain: str) -> str:
    return f"{keys.SUBDOMAIN}{keys.key_text(domain, keys.HOST_TEXT)}{keys.END}"


def _starting(*escaped: str) -> Callable[[keys.Capture], bool]:
    """Whether an entry's URL may start with one of the escaped texts."""
    return lambda entry: any(keys.may_start_with(entry.text, text) for text in escaped)


def _is_address(host: str) -> bool:
    """Whether a SURT host is an IP address (kept as it is; an IPv6 one in brackets)."""
    try:
        ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return True
