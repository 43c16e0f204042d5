"""The systems the evaluation scores, each a function from an article's text to `Found`.

- `normalizer`: the working tree's `service.normalize.analyze`.
- `quotes_at(commit)`: the same, but with the quotes of `service/normalize/quotes.py` as
  it was at `commit`, read with `git show` and executed as a module at run time (it
  imports only `service.types`); None when git or the commit is unavailable. Commit
  0b00191 is "today's normalizer", the one issue #16 set out to replace.
- `naive`: a regex baseline: “…”, "…", «…», „…“ and 「…」 pairs within a paragraph,
  all at depth 1; paragraphs split at blank lines; no sections; `[…]` pairs.
"""

from __future__ import annotations

import re
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

from service.normalize import Analysis, analyze
from tests.eval.corpus import REPO
from tests.eval.score import Found

TODAY = "0b00191"

System = Callable[[str], Found]


def _found(analysis: Analysis, quotes: Any) -> Found:
    return Found(
        text=analysis.text,
        paragraphs=len(analysis.blocks),
        sections=tuple(
            (block.span[0], block.span[0] + len(block.label))
            for block in analysis.blocks
            if block.kind == "section" and block.label is not None
        ),
        quotes=tuple(((quote.span[0], quote.span[1]), quote.depth) for quote in quotes),
        insertions=tuple((marked.span[0], marked.span[1]) for marked in analysis.insertions),
    )


def normalizer(text: str) -> Found:
    analysis = analyze(text)
    return _found(analysis, analysis.quotes)


def quotes_at(commit: str) -> System | None:
    """The normalizer with the quotes module of `commit`, or None if git cannot show it."""
    path = "service/normalize/quotes.py"
    try:
        shown = subprocess.run(
            ["git", "show", f"{commit}:{path}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    name = f"_vellum_eval_quotes_{commit}"
    module = types.ModuleType(name)
    module.__file__ = f"{commit}:{path}"
    sys.modules[name] = module  # dataclasses look their module up while decorating
    try:
        # The source is this repository's own history, named by a fixed commit.
        exec(compile(shown.stdout, module.__file__, "exec"), module.__dict__)
    finally:
        del sys.modules[name]
    find_quotes = module.__dict__["find_quotes"]

    def system(text: str) -> Found:
        analysis = analyze(text)
        return _found(analysis, find_quotes(analysis.text, analysis.blocks))

    return system


_NAIVE_QUOTE = re.compile(r"“([^”]*)”|\"([^\"]*)\"|«([^»]*)»|„([^“]*)“|「([^」]*)」")
_PARAGRAPH = re.compile(r"[^\n]+(?:\n(?!\s*\n)[^\n]*)*")  # a run of lines without a blank one
_BRACKETED = re.compile(r"\[([^\[\]]*)\]")


def naive(text: str) -> Found:
    quotes: list[tuple[tuple[int, int], int]] = []
    insertions: list[tuple[int, int]] = []
    paragraphs = 0
    for paragraph in _PARAGRAPH.finditer(text):
        if not paragraph.group().strip():
            continue
        paragraphs += 1
        start, end = paragraph.span()
        for match in _NAIVE_QUOTE.finditer(text, start, end):
            group = next(g for g in range(1, 6) if match.group(g) is not None)
            quotes.append((match.span(group), 1))
        insertions.extend(match.span(1) for match in _BRACKETED.finditer(text, start, end))
    return Found(
        text=text,
        paragraphs=paragraphs,
        sections=(),
        quotes=tuple(quotes),
        insertions=tuple(insertions),
    )
