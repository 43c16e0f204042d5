"""The analysis process's side of service.analysis: one child, one socket pair.

A frame on the socket is 4 bytes of length (big-endian), then one byte of kind, then
the payload. To the child: TEXT, the text and title (msgpack). From it: READY once it is
warm, then ANALYSIS (the packed Analysis) or FAILED (the exception, as text) per text.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
from collections.abc import Callable
from typing import BinaryIO

import msgspec

from service.normalize import analyze

LENGTH_BYTES = 4
TEXT, READY, ANALYSIS, FAILED = b"T", b"R", b"A", b"F"
WARM_UP_TEXT = "Warming up: this sentence loads the language model in every analysis process."

AnalyzePacked = Callable[[str, str | None], bytes]

_encoder = msgspec.msgpack.Encoder()
_request_decoder = msgspec.msgpack.Decoder(tuple[str, str | None])


def analyze_packed(text: str, title: str | None) -> bytes:
    """The analysis, packed (cheaper to send back than a pickle)."""
    return _encoder.encode(analyze(text, title))


def frame(kind: bytes, payload: bytes) -> list[bytes]:
    return [(len(payload) + 1).to_bytes(LENGTH_BYTES, "big"), kind, payload]


def serve(channel: socket.socket, server_pid: int, analysis: AnalyzePacked) -> None:
    """A child's life: warm up, say READY, then answer each text until the server closes
    its end (or exits, see `_exit_with`)."""
    # Ctrl-C in a terminal reaches the whole process group; the server closes its end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        server = os.pidfd_open(server_pid)
    except ProcessLookupError:
        os._exit(1)
    threading.Thread(target=_exit_with, args=(server,), daemon=True).start()
    analysis(WARM_UP_TEXT, None)  # the language model loads before any deadline runs
    with channel, channel.makefile("rb") as incoming:
        try:
            channel.sendall(b"".join(frame(READY, b"")))
            while (request := _read_request(incoming)) is not None:
                text, title = _request_decoder.decode(request)
                try:
                    answer = frame(ANALYSIS, analysis(text, title))
                except Exception as exc:  # the normalizer's bug fails this text, not the child
                    answer = frame(FAILED, f"{type(exc).__name__}: {exc}".encode())
                channel.sendall(b"".join(answer))
        except (BrokenPipeError, ConnectionResetError):
            return  # the server went away mid-answer


def _read_request(incoming: BinaryIO) -> bytes | None:
    """The next text's frame payload; None when the server has closed its end."""
    length = incoming.read(LENGTH_BYTES)
    if len(length) < LENGTH_BYTES:
        return None
    body = incoming.read(int.from_bytes(length, "big"))
    return body[1:]  # the kind byte: TEXT


def _exit_with(server: int) -> None:
    """Exit when the server does, also when it was SIGKILLed mid-analysis (it can no
    longer close its end): a pidfd becomes readable when its process exits."""
    select.select([server], [], [])
    os._exit(1)
