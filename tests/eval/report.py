"""The evaluation table: every system's scores side by side (`make eval`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tests.eval.corpus import Article, Label
from tests.eval.score import Counts, Scores, score
from tests.eval.systems import TODAY, System, naive, normalizer, quotes_at


def evaluate(labels: Sequence[Label], articles: dict[str, Article], system: System) -> Scores:
    found = {label.article: system(articles[label.article].text) for label in labels}
    return score(labels, articles, found)


def _text(scores: Scores) -> Counts:
    return scores.quotes_text


def _depth(scores: Scores) -> Counts:
    return scores.quotes_depth


def _ratio_cell(pick: Callable[[Scores], Counts], which: str) -> Callable[[Scores], str]:
    return lambda scores: f"{getattr(pick(scores), which):.3f}"


def _tag_cell(tag: str) -> Callable[[Scores], str]:
    def cell(scores: Scores) -> str:
        counts = scores.tag_recall.get(tag)
        if counts is None:
            return "-"
        return f"{counts.recall:.3f} ({counts.true_positives}/{counts.labelled})"

    return cell


def table(labels: Sequence[Label], articles: dict[str, Article]) -> str:
    today = quotes_at(TODAY)
    skipped = f"today's column skipped: git cannot show {TODAY}:service/normalize/quotes.py"
    today_scores = None
    if today is not None:
        try:
            today_scores = evaluate(labels, articles, today)
        except Exception as exc:  # old code over new types: report it, score the rest
            skipped = f"today's column skipped: the {TODAY} quotes module failed ({exc!r})"
    columns = [
        ("naive regex", evaluate(labels, articles, naive)),
        (f"today ({TODAY})", today_scores),
        ("working tree", evaluate(labels, articles, normalizer)),
    ]
    scored = [scores for _, scores in columns if scores is not None]
    tags = sorted({tag for scores in scored for tag in scores.tag_recall})
    total = len(labels)

    rows: list[tuple[str, list[str]]] = []

    def row(name: str, cell: Callable[[Scores], str]) -> None:
        rows.append((name, [cell(s) if s else "skipped" for _, s in columns]))

    row("quotes labelled / found", lambda s: f"{s.quotes_text.labelled} / {s.quotes_text.found}")
    for kind, pick in (("text", _text), ("text+depth", _depth)):
        for which in ("precision", "recall", "f1"):
            row(f"quote {which} ({kind})", _ratio_cell(pick, which))
    for tag in tags:
        row(f"  recall: {tag}", _tag_cell(tag))
    row("paragraph counts right", lambda s: f"{total - len(s.paragraphs_wrong)} of {total}")
    row("section labels right", lambda s: f"{total - len(s.sections_wrong)} of {total}")
    row("insertion precision", lambda s: f"{s.insertions.precision:.3f}")
    row("insertion recall", lambda s: f"{s.insertions.recall:.3f}")

    names = [name for name, _ in columns]
    first = max(len(name) for name, _ in rows)
    widths = [max(len(name), *(len(cells[i]) for _, cells in rows)) for i, name in enumerate(names)]
    lines = [
        f"Normalizer evaluation: {total} labelled articles, "
        f"{sum(len(label.quotes) for label in labels)} quotes",
        "  ".join([" " * first, *(name.rjust(w) for name, w in zip(names, widths, strict=True))]),
    ]
    for name, cells in rows:
        cells_out = (cell.rjust(w) for cell, w in zip(cells, widths, strict=True))
        lines.append("  ".join([name.ljust(first), *cells_out]))
    if today_scores is None:
        lines.append(skipped)
    for name, scores in columns:
        if scores is None:
            continue
        for article, want, got in scores.paragraphs_wrong:
            lines.append(f"{name}: {article} paragraphs {got}, labelled {want}")
        for article, missed, extra in scores.sections_wrong:
            lines.append(f"{name}: {article} sections: {missed} missed, {extra} extra")
    return "\n".join(lines)
