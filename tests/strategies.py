"""Hypothesis strategies: article-like text full of the things the normalizer must survive."""

from __future__ import annotations

from hypothesis import strategies as st

QUOTE_MARKS = list("“”‘’„‚«»‹›「」『』〝〞\"'")
WORDS = [
    "the",
    "Americans",
    "don’t",
    "’90s",
    "rock ’n’ roll",
    "O'Brien",
    "said",
    "Zoë",
    "東京",
    "и",
]
PUNCTUATION = [".", ",", "…", "...", ". . .", "[", "]", "[sic]", "—", "–", "-", ":", "?", "!"]
SPACES = [" ", "  ", "\t", "\u00a0", "\u202f", "\u3000", "\u200b"]
BREAKS = ["\n", "\n\n", "\r\n", "\r", "\u2028", "\u2029", "\n \n", "\x0c"]
LABELS = ["EDITOR’S NOTE: ", "CORRECTION: ", "DEAR ABBY: ", "Q: ", "VIP : "]

pieces = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(QUOTE_MARKS),
    st.sampled_from(PUNCTUATION),
    st.sampled_from(SPACES),
    st.sampled_from(BREAKS),
    st.sampled_from(LABELS),
    st.text(max_size=5),  # anything at all, including combining marks and surrogates' neighbours
)

article_text = st.lists(pieces, max_size=80).map("".join)
"""Strings shaped like messy articles: words, every kind of quotation mark, brackets,
ellipses, odd spaces and line breaks, labels, and arbitrary Unicode."""
