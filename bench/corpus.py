"""Article texts to post: the shared corpus when present, else synthetic articles.

Every document handed out is unique (a trailing `[bench <run> <n>]` line), so every
POST creates a new document and every conditional PUT succeeds.
"""

from __future__ import annotations

import random
from pathlib import Path

import msgspec

SYNTHETIC_ARTICLES = 40
_WORDS = (
    *("council", "budget", "river", "harbour", "minister", "said", "report", "vote"),
    *("city", "reporters", "evening", "schools", "market", "rail", "plan", "weather"),
    *("officials", "season", "growth", "record"),
)


class _Line(msgspec.Struct):
    text: str


class Corpus(msgspec.Struct, frozen=True):
    source: str  # the articles.jsonl read, or "synthetic"
    texts: tuple[str, ...]

    @property
    def mean_bytes(self) -> float:
        return sum(len(text.encode()) for text in self.texts) / len(self.texts)


def load(corpus_dir: Path) -> Corpus:
    path = corpus_dir / "articles.jsonl"
    if not path.is_file():
        return Corpus("synthetic", tuple(synthetic_article(n) for n in range(SYNTHETIC_ARTICLES)))
    decoder = msgspec.json.Decoder(_Line)
    lines = path.read_bytes().splitlines()
    texts = tuple(decoder.decode(line).text for line in lines if line.strip())
    return Corpus(str(path), texts)


def synthetic_article(seed: int, target_bytes: int = 5000) -> str:
    """A deterministic article-like text: paragraphs, curly quotes, an apostrophe."""
    rng = random.Random(seed)  # noqa: S311 (reproducible filler, not security)
    paragraphs: list[str] = []
    size = 0
    while size < target_bytes:
        sentence = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 18)))
        quoted = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 9)))
        paragraph = (
            f"{sentence.capitalize()}. “{quoted.capitalize()},” the mayor’s office said — "
            f"and {rng.choice(_WORDS)} didn’t change…"
        )
        paragraphs.append(paragraph)
        size += len(paragraph.encode()) + 2
    return "\n\n".join(paragraphs)


class Documents:
    """Hands out unique documents, cycling through the corpus."""

    def __init__(self, corpus: Corpus, run_id: str) -> None:
        self.corpus = corpus
        self.run_id = run_id
        self.issued = 0

    def take(self, count: int) -> list[bytes]:
        start = self.issued
        self.issued += count
        texts = self.corpus.texts
        return [
            f"{texts[n % len(texts)]}\n\n[bench {self.run_id} {n}]".encode()
            for n in range(start, start + count)
        ]
