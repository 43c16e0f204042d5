"""The lookups' parameters from text (a query string, a command line): BadParameter (400)
naming the parameter and what it takes, for any value that is not one."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from service.errors import BadParameter
from service.finding.model import MATCHES, Match

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_DISTANCE = 3
_DIGITS = re.compile(r"[0-9]{4}(?:[0-9]{2}){0,5}")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_FIELDS = ("%Y", "%m", "%d", "%H", "%M", "%S")
_STEPS = {
    3: timedelta(days=1),
    4: timedelta(hours=1),
    5: timedelta(minutes=1),
    6: timedelta(seconds=1),
}


def moment(value: str, name: str, *, end: bool) -> datetime:
    """An RFC 3339 timestamp (to the microsecond), or 4-14 digits of yyyyMMddhhmmss in UTC
    standing for the period they name: its first microsecond, or its last when `end`."""
    if _RFC3339.fullmatch(value):
        try:
            return datetime.fromisoformat(value.upper().replace(" ", "T")).astimezone(UTC)
        except ValueError:
            raise BadParameter(f"{name}: {value} is not a time", parameter=name) from None
    if not _DIGITS.fullmatch(value):
        raise BadParameter(
            f"{name} must be an RFC 3339 timestamp or 4, 6, 8, 10, 12 or 14 digits of "
            "yyyyMMddhhmmss (UTC)",
            parameter=name,
        )
    fields = len(value) // 2 - 1
    try:
        start = datetime.strptime(value, "".join(_FIELDS[:fields])).replace(tzinfo=UTC)
    except ValueError:
        raise BadParameter(f"{name}: {value} is not a time", parameter=name) from None
    return _period_end(start, fields) if end else start


def _period_end(start: datetime, fields: int) -> datetime:
    """The last microsecond of the period of `fields` fields that begins at `start`."""
    if fields == 1:
        following = start.replace(year=start.year + 1)
    elif fields == 2:
        carry, month = divmod(start.month, 12)
        following = start.replace(year=start.year + carry, month=month + 1)
    else:
        following = start + _STEPS[fields]
    return following - timedelta(microseconds=1)


def limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise BadParameter(
            f"limit must be a whole number from 1 to {MAX_LIMIT}",
            parameter="limit",
            limit_max=MAX_LIMIT,
        )
    return int(value)


def match(value: str | None) -> Match:
    if value is None:
        return "exact"
    for known in MATCHES:
        if value == known:
            return known
    raise BadParameter(f"match must be one of {', '.join(MATCHES)}", parameter="match")


def max_distance(value: str | None) -> int:
    if value is None:
        return MAX_DISTANCE
    if not value.isdigit() or int(value) > MAX_DISTANCE:
        raise BadParameter(
            f"max_distance must be 0 to {MAX_DISTANCE}",
            parameter="max_distance",
            limit_max=MAX_DISTANCE,
        )
    return int(value)
