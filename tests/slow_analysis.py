"""An analysis that outlasts any deadline, for the tests of the analysis deadline.

The normalizer itself is linear in its input (tests/test_normalizer_linearity.py), so no
text of a given size is slow enough to stand for a stuck analysis. The tests put
`packed_slow_on_mark` in place of `service.analysis._analyze_packed`: the pool then sends
this function (by name) to its children, which run it, and it sleeps on a text holding
`SLOW_MARK`, as an analysis stuck on some input would.
"""

from __future__ import annotations

import time

from service.analysis import _analyze_packed

SLOW_MARK = "[an analysis that never ends]"


def packed_slow_on_mark(text: str, title: str | None) -> bytes:
    if SLOW_MARK in text:
        time.sleep(120)  # far past every deadline the tests set: the child is killed first
    return _analyze_packed(text, title)
