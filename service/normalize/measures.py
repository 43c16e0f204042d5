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
_WORD = re.compile(rf"[^\W_{_CJK}]+(?:[’'.\-][^\W_{_CJK}]+)*")
_CJK_CHAR = re.compile(f"[{_CJK}]")


def words(text: str) -> list[str]:
    return _WORD.findall(text) + _CJK_CHAR.findall(text)


def measure(text: str, paragraphs: int, quotes: int) -> tuple[Stats, Fingerprints]:
    tokens = words(text)
    return (
        Stats(chars=len(text), words=len(tokens), paragraphs=paragraphs, quotes=quotes),
        Fingerprints(
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            simhash=f"{simhash(tokens):016x}",
        ),
    )


@functools.lru_cache(maxsize=1 << 16)
def _word_hash(word: str) -> bytes:
    return hashlib.blake2b(word.lower().encode("utf-8"), digest_size=8).digest()


def simhash(tokens: list[str]) -> int:
    if not tokens:
        return 0
    # One 8-byte hash per occurrence, so frequent words weigh more. Then count, for each
    # of the 64 bits, the hashes that set it: byte column by byte column, each column as
    # one big integer, so a bit's count is one shift, one mask and one popcount.
    digests = b"".join(map(_word_hash, tokens))
    lowest_bits = int.from_bytes(b"\x01" * len(tokens), "big")
    half = len(tokens) / 2
    result = 0
    for byte in range(8):
        column = int.from_bytes(digests[byte::8], "big")
        for bit in range(8):
            if ((column >> bit) & lowest_bits).bit_count() > half:
                result |= 1 << ((7 - byte) * 8 + bit)
    return result
