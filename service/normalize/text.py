"""Text normalization: what the record's `text` is, given the decoded original.

1. A leading byte order mark (U+FEFF) is dropped: it marks the encoding, not the text.
2. Line breaks become `\\n`: CRLF, lone CR, and U+2028 / U+2029 / U+0085 / VT / FF.
3. Unicode NFC, so that the same visible text has one representation.

Typography (curly quotes, apostrophes, dashes, ellipses) is kept as written; no other
character is added or removed.
"""

from __future__ import annotations

import re
import unicodedata

NORMALIZER_VERSION = "0.1"

_LINE_BREAKS = re.compile("\r\n|[\r\u2028\u2029\u0085\x0b\x0c]")


def normalize_text(decoded: str) -> str:
    text = decoded.removeprefix("\ufeff")
    text = _LINE_BREAKS.sub("\n", text)
    return unicodedata.normalize("NFC", text)
