"""The corpus and the labels: where they are, how they load, how they are checked.

Offsets in a label are Python `str` indices (code points) into the corpus article's
`text` exactly as in `articles.jsonl`. Every label records the SHA-256 of the whole
text and of each span's content; `load_labels` recomputes them and raises `LabelError`
naming the file and the field on any mismatch, so a label is never scored against a
text it was not made for.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import msgspec

REPO = Path(__file__).resolve().parents[2]
LABELS_DIR = Path(__file__).resolve().parent / "labels"
TAGS = frozenset(
    {
        "curly",
        "straight",
        "single",
        "national",
        "nested",
        "multi-paragraph",
        "unclosed",
        "non-textbook",
        "space-after-open",
        "malformed-nesting",
    }
)

Span = tuple[int, int]


class LabelError(Exception):
    """A label file that is malformed or does not match the corpus text."""


class Article(msgspec.Struct, frozen=True):
    id: str
    text: str
    lang: str


class QuoteLabel(msgspec.Struct, frozen=True):
    span: Span
    depth: int
    tags: frozenset[str]


class Label(msgspec.Struct, frozen=True):
    article: str
    lang: str
    paragraphs: int
    sections: tuple[Span, ...]
    quotes: tuple[QuoteLabel, ...]
    insertions: tuple[Span, ...]


def corpus_dir() -> Path:
    return Path(os.environ.get("ARTICLE_CORPUS_DIR", REPO.parent / "shared" / "corpus"))


def corpus_present() -> bool:
    return (corpus_dir() / "articles.jsonl").is_file()


def load_articles(ids: set[str] | None = None) -> dict[str, Article]:
    articles: dict[str, Article] = {}
    with (corpus_dir() / "articles.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            item = json.loads(line)
            if ids is None or item["id"] in ids:
                articles[item["id"]] = Article(id=item["id"], text=item["text"], lang=item["lang"])
    return articles


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def label_files(directory: Path = LABELS_DIR) -> list[Path]:
    """Every `aeb-*.json` of `directory`, in the corpus's numeric order."""

    def order(path: Path) -> tuple[int, str]:
        number = re.fullmatch(r"aeb-(\d+)", path.stem)
        return (int(number.group(1)) if number else -1, path.name)

    return sorted(directory.glob("aeb-*.json"), key=order)


def load_labels(directory: Path = LABELS_DIR) -> tuple[list[Label], dict[str, Article]]:
    """Every label of `directory`, checked against the corpus, and the articles they label."""
    raw: dict[Path, Any] = {}
    for path in label_files(directory):
        try:
            raw[path] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise LabelError(f"{path.name}: not JSON ({exc})") from exc
    articles = load_articles(
        {str(item.get("article")) for item in raw.values() if isinstance(item, dict)}
    )
    labels = [check_label(path.name, item, articles) for path, item in raw.items()]
    return labels, articles


def check_label(name: str, item: Any, articles: dict[str, Article]) -> Label:
    """The label `item` (decoded JSON of the file `name`), checked against `articles`."""
    if not isinstance(item, dict):
        raise LabelError(f"{name}: not a JSON object")
    article_id = item.get("article")
    if f"{article_id}.json" != name:
        raise LabelError(f"{name}: `article` is {article_id!r}, not the file's name")
    if article_id not in articles:
        raise LabelError(f"{name}: article {article_id} is not in the corpus")
    text = articles[article_id].text
    if item.get("text_sha256") != sha256(text):
        raise LabelError(f"{name}: text_sha256 does not match the corpus text of {article_id}")
    paragraphs = item.get("paragraphs")
    if not isinstance(paragraphs, int) or isinstance(paragraphs, bool) or paragraphs < 1:
        raise LabelError(f"{name}: `paragraphs` must be a positive integer")

    def span(field: str, index: int, entry: Any) -> Span:
        where = f"{name}: {field}[{index}]"
        if not isinstance(entry, dict):
            raise LabelError(f"{where} is not an object")
        start, end = entry.get("start"), entry.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end):
            raise LabelError(f"{where}: start/end must be integers, 0 <= start <= end")
        if end > len(text):
            raise LabelError(f"{where}: end {end} is past the text's end ({len(text)})")
        if entry.get("sha256") != sha256(text[start:end]):
            raise LabelError(f"{where}: sha256 does not match text[{start}:{end}] of the corpus")
        return (start, end)

    def quote(index: int, entry: Any) -> QuoteLabel:
        where = f"{name}: quotes[{index}]"
        at = span("quotes", index, entry)
        depth, tags = entry.get("depth"), entry.get("tags", [])
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise LabelError(f"{where}: depth must be an integer >= 1")
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise LabelError(f"{where}: tags must be a list of strings")
        if not set(tags) <= TAGS:
            raise LabelError(f"{where}: unknown tags {sorted(set(tags) - TAGS)}")
        return QuoteLabel(span=at, depth=depth, tags=frozenset(tags))

    return Label(
        article=article_id,
        lang=str(item.get("lang", "")),
        paragraphs=paragraphs,
        sections=tuple(span("sections", i, e) for i, e in enumerate(item.get("sections", []))),
        quotes=tuple(quote(i, e) for i, e in enumerate(item.get("quotes", []))),
        insertions=tuple(
            span("insertions", i, e) for i, e in enumerate(item.get("insertions", []))
        ),
    )
