"""The host and subdomain indexes: the captures of a host, or of a domain, newest first.

Every capture with a URL has an entry under its host (`index/host/com,example,news#…`)
and one under each of its parent domains of 2, 3 and 4 labels
(`index/subdomain/com,example#…`): at most `MAX_ENTRIES` entries. Without a public
suffix list a domain of two labels stands for the registrable one (`co.uk` gets entries
too, which cost a PUT and answer nothing wrong). A host of one label or an IP address has
its host entry only. A host of 6 labels or more has no entries under its parents of 5
labels or more: a domain that deep is answered from its parent of 4 labels, filtered by
the URL each entry carries.

So each lookup reads one or two listings, each newest first (service.finding.captures
merges two by key):

- `host`: the host's entries, all of them (any port);
- `prefix`: the host's entries whose URL starts with the asked one (the key tells; a cut
  URL is confirmed against the record, as every item is);
- `domain`: the domain's host entries and its subdomain entries, merged; for a domain of
  5 labels or more, the subdomain entries of its parent of 4 labels whose URL is under it.
  A domain of one label (a top-level domain, `localhost`) has no entries of its
  subdomains: refused (400), ask by host instead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime

import msgspec

from service.errors import BadParameter
from service.finding import keys
from service.finding.canonical import Canonical
from service.finding.model import Match

MAX_ENTRIES = 4  # per capture: its host, and its parent domains of 2 to 4 labels
_DEEPEST = MAX_ENTRIES  # labels of the deepest parent domain that gets entries


class Listing(msgspec.Struct, frozen=True):
    """One prefix listing of a lookup, and which of its entries may answer it (None:
    every one)."""

    prefix: str
    keep: Callable[[keys.Capture], bool] | None = None


def parents(host: str) -> list[str]:
    """The parent domains of a SURT host that get subdomain entries: those of 2 to 4
    labels, shortest first (`com,example,news,live` -> `com,example`, `com,example,news`)."""
    labels = host.split(",")  # an IP address is one label
    return [",".join(labels[:n]) for n in range(2, min(len(labels), _DEEPEST + 1))]


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
    if len(labels) == 1:
        raise BadParameter(
            "match=domain needs a domain of two labels or more (the subdomains of a "
            "top-level domain are not indexed by time); ask by host",
            parameter="match",
        )
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
