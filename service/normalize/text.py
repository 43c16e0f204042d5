"""Text normalization: what the record's `text` is, given the decoded original.

1. A leading byte order mark (U+FEFF) is dropped: it marks the encoding, not the text.
2. Line breaks become `\\n`: CRLF, lone CR, U+2028, U+2029, U+0085, VT and FF.
3. Unicode NFC, so that the same visible text has one representation. (CPython puts the
   combining marks after a character in canonical order by insertion sort, which takes
   time quadratic in the length of a run of marks out of order; so a run of more than
   `_LONG_RUN` such marks is put in canonical order here first, by a linear stable sort
   on combining class. That gives the same NFC: canonical ordering is that very sort.)
4. Each line is trimmed, and each run of other whitespace inside it becomes one space
   (one no-break space if the run holds a no-break space: U+00A0, U+202F or U+2007,
   which typography uses on purpose, e.g. before `»` or `:` in French).
5. Lines become paragraphs, and paragraphs are joined by exactly one blank line (`\\n\\n`).
   A line of nothing but invisible format characters (U+200B, U+200C, U+200D, U+2060,
   U+FEFF) counts as blank: its characters are kept at the end of the paragraph before it
   (after one space), or at the start of the first paragraph. Lines between blank lines
   form a *group*. Every line is a paragraph ("a line break separates paragraphs"), but
   for a *wrapped* group, which becomes one paragraph. A line break in a group is
   - *no wrap* when the line before it is shorter than `_WRAP_MIN_CHARS`, or the first
     word of the line after would have fitted on it (its length, a space and that word
     at most the group's longest line), or that word is a web address, or a Han, kana or
     Hangul character or CJK punctuation stands on either side of the break;
   - else a *wrap* when the line after starts with a letter or mark that is not a
     capital (lower case, or a script without case) and the line before ends in a
     hyphen after a letter or in no sentence punctuation (`. ! ? : ; …` `。！？`, also
     before closing quotes or brackets);
   - else undecided (a capital after the break, say).
   A group is wrapped when none of its breaks is *no wrap* and at least half of them are
   wraps. Its lines are joined by one
   space, or by nothing after a line ending in a hyphen (`-` or U+2010) that follows a
   letter (`well-` + `known` gives `well-known`). A table, a list, an address block or
   a column of short lines keeps one paragraph per line.

Only whitespace changes: every other character of the decoded text is kept, in order.
Typography (curly quotes, apostrophes, dashes, ellipses) is kept as written.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata

NORMALIZER_VERSION = "1.1"
PARAGRAPH_BREAK = "\n\n"

_LINE_BREAKS = "\u2028\u2029\u0085\x0b\x0c"  # and CR, alone or before LF
# Whitespace other than a single space or a line break: the runs that need tidying.
_UNTIDY_SPACE = re.compile(r"[^\S\n]{2,}|[^\S\n ]")
# The characters _UNTIDY_SPACE looks for besides a second space: every whitespace
# character (`str.isspace`, the same as `\s`) but space and LF. All lie in the BMP.
_UNTIDY_CHARS = "".join(re.findall(r"[^\S\n ]", "".join(map(chr, range(0x10000)))))
_NO_BREAK_SPACES = "\u00a0\u202f\u2007"
_WRAP_MIN_CHARS = 30
_JOINING_HYPHENS = ("-", "\u2010")
_ADDRESSES = ("http://", "https://", "www.")
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_SENTENCE_END = tuple(".!?:;…。！？")
_CLOSING = "”’\"'»›」』)]}"
# Scripts written without spaces between words, or whose lines are not wrapped like prose.
_UNWRAPPED_SCRIPT = re.compile(
    "[\u1100-\u11ff\u3000-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7af\uff00-\uffef]"
)
# Unicode's stream-safe format (UAX #15) allows 30 non-starters in a row; real text has few.
_LONG_RUN = 30


def normalize_text(decoded: str) -> str:
    text = _unify_line_breaks(decoded.removeprefix("\ufeff"))
    text = _nfc(text)
    if "  " in text or any(char in text for char in _UNTIDY_CHARS):
        text = _UNTIDY_SPACE.sub(_one_space, text)
    return PARAGRAPH_BREAK.join(_paragraphs(_line_groups(text)))


def _nfc(text: str) -> str:
    if unicodedata.is_normalized("NFC", text):
        return text
    if _holds_long_run(text):
        text = _long_nonstarter_runs().sub(_canonical_order, text)
    return unicodedata.normalize("NFC", text)


def _holds_long_run(text: str) -> bool:
    """Whether `text` may hold more than `_LONG_RUN` non-starters in a row: a cheap test
    (at least that many characters outside ASCII) before the exact one."""
    return len(text.encode("utf-8")) - len(text) > _LONG_RUN and bool(
        _long_nonstarter_runs().search(text)
    )


@functools.cache
def _long_nonstarter_runs() -> re.Pattern[str]:
    """Runs of more than `_LONG_RUN` characters that decompose to non-starters only
    (combining class above 0): the combining marks, and the few characters of class 0
    that decompose to them (Tibetan U+0F73, U+0F75, U+0F81). Built on first use."""
    nonstarters = [
        char
        for char in map(chr, range(0x110000))
        if unicodedata.combining(char)
        or (
            unicodedata.decomposition(char)[:1] not in ("", "<")
            and all(map(unicodedata.combining, unicodedata.normalize("NFD", char)))
        )
    ]
    return re.compile(f"[{re.escape(''.join(nonstarters))}]{{{_LONG_RUN + 1},}}")


def _canonical_order(run: re.Match[str]) -> str:
    """A run of non-starters decomposed and stably sorted by combining class, buckets
    in class order: what NFD's canonical ordering makes of it, in linear time."""
    by_class: dict[int, list[str]] = {}
    for char in run.group():
        for part in unicodedata.normalize("NFD", char):
            by_class.setdefault(unicodedata.combining(part), []).append(part)
    return "".join("".join(by_class[key]) for key in sorted(by_class))


def _unify_line_breaks(text: str) -> str:
    # Each `in` is a fast scan, and most texts hold none of these.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    for char in _LINE_BREAKS:
        if char in text:
            text = text.replace(char, "\n")
    return text


def _one_space(run: re.Match[str]) -> str:
    for char in run.group():
        if char in _NO_BREAK_SPACES:
            return char
    return " "


def _line_groups(text: str) -> list[list[str]]:
    """Tidied non-blank lines, grouped by the blank lines between them; a line of
    invisible characters only is blank, its characters kept on the line before."""
    if not any(char in text for char in _INVISIBLE):
        # No invisible lines: split at blank lines, then into lines (the same groups).
        chunks = (chunk.split("\n") for chunk in _BLANK_LINES.split(text))
        found = [[line for line in map(str.strip, lines) if line] for lines in chunks]
        return [group for group in found if group]
    return _line_groups_one_by_one(text)


def _line_groups_one_by_one(text: str) -> list[list[str]]:
    """`_line_groups`, line by line: the rule written out, for any text."""
    groups: list[list[str]] = [[]]
    leading = ""  # invisible lines before the first visible one
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            if groups[-1]:
                groups.append([])
        elif line[0] not in _INVISIBLE or line.strip(_INVISIBLE).strip():
            groups[-1].append(line)
        elif groups[-1] or len(groups) > 1:
            (groups[-1] or groups[-2])[-1] += " " + line
            if groups[-1]:
                groups.append([])
        else:
            leading += line + " "
    groups = [group for group in groups if group]
    if leading and groups:
        groups[0][0] = leading + groups[0][0]
    elif leading:
        groups = [[leading.rstrip(" ")]]
    return groups


def _paragraphs(groups: list[list[str]]) -> list[str]:
    if max(map(len, groups), default=0) == 1:
        return [group[0] for group in groups]
    paragraphs: list[str] = []
    for group in groups:
        if len(group) > 1 and _wrapped(group):
            paragraphs.append(_join_wrapped(group))
        else:
            paragraphs.extend(group)
    return paragraphs


def _wrapped(group: list[str]) -> bool:
    width = max(map(len, group))
    breaks = [_wrap(line, following, width) for line, following in itertools.pairwise(group)]
    return min(breaks) >= 0 and 2 * breaks.count(1) >= len(breaks)


def _wrap(line: str, following: str, width: int) -> int:
    """The break between two lines of a group whose longest line is `width` long: -1 no
    wrap, 1 a wrap, 0 undecided (the module docstring)."""
    word = following.split(" ", 1)[0]
    if (
        len(line) < _WRAP_MIN_CHARS
        or len(line) + 1 + len(word) <= width
        or word.startswith(_ADDRESSES)
        or _UNWRAPPED_SCRIPT.match(line[-1])
        or _UNWRAPPED_SCRIPT.match(following[0])
    ):
        return -1
    first = following[0]
    if not unicodedata.category(first).startswith(("L", "M")) or first.isupper() or first.istitle():
        return 0
    return int(_hyphenated(line) or not line.rstrip(_CLOSING).endswith(_SENTENCE_END))


def _hyphenated(line: str) -> bool:
    return line.endswith(_JOINING_HYPHENS) and len(line) > 1 and line[-2].isalpha()


def _join_wrapped(group: list[str]) -> str:
    parts = [group[0]]
    for previous, line in itertools.pairwise(group):
        if _hyphenated(previous):
            parts.append(line)
        else:
            parts.append(" " + line)
    return "".join(parts)
