"""The normalizer: pure functions from a decoded article to the parts of its record.

No I/O, no clock, no randomness: the same input gives the same output, byte for byte.
`NORMALIZER_VERSION` goes into every record's provenance; change it whenever the output
for some input changes.
"""

from service.normalize.text import NORMALIZER_VERSION, normalize_text

__all__ = ["NORMALIZER_VERSION", "normalize_text"]
