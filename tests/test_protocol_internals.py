"""service/web/protocol.py uses private parts of aiohttp: only the version it was tested
with may run it. An aiohttp upgrade fails here first (see the module's docstring)."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from service.web.protocol import PRIVATE_HANDLER_ATTRIBUTES, TESTED_AIOHTTP

LOCKS = Path(__file__).resolve().parents[1] / "requirements"


def test_the_installed_aiohttp_is_the_tested_one() -> None:
    assert aiohttp.__version__ == TESTED_AIOHTTP


def test_the_locked_aiohttp_is_the_tested_one() -> None:
    for lock in ("runtime.txt", "test.txt"):
        pinned = re.search(r"^aiohttp==(\S+)", (LOCKS / lock).read_text(), re.MULTILINE)
        assert pinned is not None, lock
        assert pinned.group(1) == TESTED_AIOHTTP, lock


async def test_the_private_names_protocol_py_uses_exist() -> None:
    slots = {name for cls in RequestHandler.__mro__ for name in getattr(cls, "__slots__", ())}
    assert set(PRIVATE_HANDLER_ATTRIBUTES) <= slots
    assert callable(getattr(web.AppRunner, "_make_server", None))
    assert hasattr(web.Server(lambda request: None), "_kwargs")  # type: ignore[arg-type, return-value]
