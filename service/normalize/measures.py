"""Statistics and fingerprints of the normalized text.

Words are runs of letters, digits and marks, joined by an inner apostrophe, hyphen or
full stop (`don’t`, `well-known`, `U.S`, `3.5`); each Han, Hiragana or Katakana character
counts as a word of its own, since Chinese and Japanese do not separate words by spaces.

The simhash is Charikar's 64-bit near-duplicate hash over the text's lowercased words,
each weighted by how often it occurs and hashed with 64-bit BLAKE2b (big-endian): bit i
of the simhash is set when the words whose hash has bit i set outweigh half of all words.
Texts that differ a little differ in few bits. It is written as 16 lowercase hex digits (a
string, since JSON numbers lose precision past 2^53).
"""

from __future__ import annotations

import functools
import hashlib
import re

from service.types import Fingerprints, Stats

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD_CHAR = rf"[^\W_{_CJK}]"
# Possessive (`++`, `*+`): a run of word characters never gives one back, since no joiner is
# one; so the matches are those of plain `+` and `*`, found without backtracking.
_WORD = re.compile(rf"{_WORD_CHAR}++(?:[’'.\-]{_WORD_CHAR}++)*+")
_CJK_CHAR = re.compile(f"[{_CJK}]")
# UTF-8 lead bytes: every _CJK character starts with one of the first (U+3040–U+3FFF with
# E3, U+4000–U+9FFF with E4–E9, U+F900–U+FAFF with EF), every character beyond the BMP
# with one of the second.
_CJK_LEADS = b"\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xef"
_ASTRAL_LEADS = b"\xf0\xf1\xf2\xf3\xf4"


def words(text: str) -> list[str]:
    return _words(text, text.encode("utf-8", "surrogatepass"))


def measure(text: str, paragraphs: int, quotes: int) -> tuple[Stats, Fingerprints]:
    encoded = text.encode("utf-8")
    tokens = _words(text, encoded)
    return (
        Stats(chars=len(text), words=len(tokens), paragraphs=paragraphs, quotes=quotes),
        Fingerprints(
            sha256=hashlib.sha256(encoded).hexdigest(),
            simhash=f"{simhash(tokens):016x}",
        ),
    )


def _words(text: str, encoded: bytes) -> list[str]:
    """`words(text)`, given `text` in UTF-8: a pass is skipped when its bytes are absent."""
    word = _WORD if _holds_any(encoded, _ASTRAL_LEADS) else _bmp_word()
    tokens: list[str] = word.findall(text)
    if _holds_any(encoded, _CJK_LEADS):
        tokens += _CJK_CHAR.findall(text)
    return tokens


def _holds_any(encoded: bytes, values: bytes) -> bool:
    return any(value in encoded for value in values)


@functools.cache
def _bmp_word() -> re.Pattern[str]:
    """`_WORD` for text without characters beyond the BMP, its letters spelled out as the
    code point ranges `_WORD_CHAR` matches there: the regex engine looks those up in a
    bitmap, which is faster than asking the Unicode database about every character."""
    bmp = "".join(map(chr, range(0x10000)))
    runs = re.finditer(rf"{_WORD_CHAR}+", bmp)
    ranges = "".join(rf"\u{run.start():04x}-\u{run.end() - 1:04x}" for run in runs)
    return re.compile(_WORD.pattern.replace(_WORD_CHAR, f"[{ranges}]"))


class _WordHashes(dict[str, bytes]):
    """Each word's 8-byte hash, computed on first use. A plain dict lookup is cheaper than
    a call to an `lru_cache`d function; the size stays bounded by forgetting every word
    once `_CACHED_WORDS` are held."""

    def __missing__(self, word: str) -> bytes:
        digest = hashlib.blake2b(word.lower().encode("utf-8"), digest_size=8).digest()
        if len(self) >= _CACHED_WORDS:
            self.clear()
        self[word] = digest
        return digest


_CACHED_WORDS = 1 << 16
_word_hashes = _WordHashes()


def simhash(tokens: list[str]) -> int:
    if not tokens:
        return 0
    # One 8-byte hash per occurrence, so frequent words weigh more. Then count, for each
    # of the 64 bits, the hashes that set it: byte column by byte column, each column as
    # one big integer, so a bit's count is one mask and one popcount.
    digests = b"".join(map(_word_hashes.__getitem__, tokens))
    lowest_bits = int.from_bytes(b"\x01" * len(tokens), "big")
    masks = [lowest_bits << bit for bit in range(8)]
    half = len(tokens) / 2
    result = 0
    for byte in range(8):
        column = int.from_bytes(digests[byte::8], "big")
        for bit, mask in enumerate(masks):
            if (column & mask).bit_count() > half:
                result |= 1 << ((7 - byte) * 8 + bit)
    return result
