"""Analyses that misbehave, for the tests of the analysis processes.

The normalizer itself is linear in its input (tests/test_normalizer_linearity.py) and
has no text it fails on, so no real text stands for a stuck, a crashing or a failing
analysis. The tests put `packed_slow_on_mark` in place of
`service.analysis._analyze_packed` (`service.analysis_child.analyze_packed`): each child
is started with that function (by name) and runs it, and it misbehaves on a text holding
one of the marks.
"""

from __future__ import annotations

import os
import time

from service.analysis_child import analyze_packed

SLOW_MARK = "[an analysis that never ends]"
DEATH_MARK = "[an analysis that kills its process]"
REFUSED_MARK = "[a text the normalizer refuses]"


def packed_slow_on_mark(text: str, title: str | None) -> bytes:
    if SLOW_MARK in text:
        time.sleep(120)  # far past every deadline the tests set: the child is killed first
    if DEATH_MARK in text:
        os._exit(3)  # as a crash of the interpreter or the out-of-memory killer would
    if REFUSED_MARK in text:
        raise ValueError("a text the normalizer refuses")
    return analyze_packed(text, title)
