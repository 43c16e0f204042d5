"""Vellum's one timestamp format: RFC 3339 in UTC with microseconds (`...T13:52:45.696836Z`),
in records' provenance and in import jobs alike."""

from __future__ import annotations

from datetime import UTC, datetime

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """`moment` in UTC, as Vellum writes every time."""
    return moment.astimezone(UTC).strftime(FORMAT)


def now_text() -> str:
    return rfc3339(utc_now())
