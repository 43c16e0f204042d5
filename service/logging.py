"""structlog set-up: JSON lines (or a console renderer on a TTY), configured once.

Context (request id, route, document id) is bound at the edge with contextvars. No
caller ever logs article text, API keys or credentials. On a console, tracebacks are
plain (no frame locals: they would show article text), and control characters in any
value (a request path may carry them, percent-decoded) are escaped, so a client cannot
write terminal escape sequences or fake lines into an operator's terminal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import msgspec
import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_json = msgspec.json.Encoder(enc_hook=str)


def _escape(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _escape_controls(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """Console only (JSON escapes them itself): control characters shown escaped."""
    return {
        key: _escape(value) if isinstance(value, str) and key != "exception" else value
        for key, value in event.items()
    }


def _serialize(event: dict[str, Any], **_: Any) -> str:
    return _json.encode(event).decode("utf-8")


def configure_logging(
    log_format: str = "auto", level: str = "info", stream: TextIO | None = None
) -> None:
    stream = stream or sys.stderr
    console = log_format == "console" or (log_format == "auto" and stream.isatty())
    escaping: list[structlog.typing.Processor] = [_escape_controls] if console else []
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        if console
        else structlog.processors.JSONRenderer(serializer=_serialize)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info
            if not console
            else structlog.processors.StackInfoRenderer(),
            *escaping,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
