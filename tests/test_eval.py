"""The normalizer against the labelled evaluation set (tests/eval/, issue #16).

The threshold test reads the shared corpus and skips when it is absent; the scorer's own
tests use tiny hand-made inputs and always run, so the scorer is shown able to fail.
"""

from __future__ import annotations

import pytest

from tests.eval.corpus import (
    Article,
    Label,
    LabelError,
    QuoteLabel,
    check_label,
    corpus_present,
    load_labels,
    sha256,
)
from tests.eval.report import evaluate
from tests.eval.score import Found, InkMismatch, Scores, ink_of, score
from tests.eval.systems import TODAY, naive, normalizer, quotes_at

F1_WITH_DEPTH = 0.98
PRECISION_WITH_DEPTH = 0.98
PHENOMENON_RECALL = 0.9


@pytest.fixture(scope="module")
def scores() -> Scores:
    if not corpus_present():
        pytest.skip("shared article corpus not present")
    labels, articles = load_labels()
    if not labels:
        pytest.skip("no labels in tests/eval/labels")
    return evaluate(labels, articles, normalizer)


def test_quotes_are_found_with_their_depth(scores: Scores) -> None:
    counts = scores.quotes_depth
    assert counts.f1 >= F1_WITH_DEPTH, f"F1 {counts.f1:.3f} ({counts})"
    assert counts.precision >= PRECISION_WITH_DEPTH, f"precision {counts.precision:.3f}"


def test_every_phenomenon_is_recalled(scores: Scores) -> None:
    low = {
        tag: f"{c.true_positives}/{c.labelled}"
        for tag, c in scores.tag_recall.items()
        if c.recall < PHENOMENON_RECALL
    }
    assert not low, f"recall below {PHENOMENON_RECALL}: {low}"


def test_paragraph_counts_are_right(scores: Scores) -> None:
    wrong = [
        f"{article}: {got} found, {want} labelled" for article, want, got in scores.paragraphs_wrong
    ]
    assert not wrong, "; ".join(wrong)


def test_section_labels_are_right(scores: Scores) -> None:
    wrong = [
        f"{article}: {missed} missed, {extra} extra"
        for article, missed, extra in scores.sections_wrong
    ]
    assert not wrong, "; ".join(wrong)


# The scorer itself, on a tiny article: ‘He said “no” twice.’ with one nested quote.
TEXT = "A ‘He said “no” twice.’\n\nNOTE: [sic] end"
ARTICLE = Article(id="aeb-0", text=TEXT, lang="en")
OUTER = (TEXT.index("He"), TEXT.index("’"))
INNER = (TEXT.index("no"), TEXT.index("no") + 2)
NOTE = (TEXT.index("NOTE"), TEXT.index(":"))
SIC = (TEXT.index("sic"), TEXT.index("]"))
LABEL = Label(
    article="aeb-0",
    lang="en",
    paragraphs=2,
    sections=(NOTE,),
    quotes=(
        QuoteLabel(span=OUTER, depth=1, tags=frozenset({"single"})),
        QuoteLabel(span=INNER, depth=2, tags=frozenset({"curly", "nested"})),
    ),
    insertions=(SIC,),
)


def _score(found: Found) -> Scores:
    return score([LABEL], {"aeb-0": ARTICLE}, {"aeb-0": found})


def test_scorer_gives_full_marks_to_the_labels_themselves() -> None:
    scores = _score(Found(TEXT, 2, (NOTE,), ((OUTER, 1), (INNER, 2)), (SIC,)))
    assert scores.quotes_depth.f1 == 1.0
    assert all(c.recall == 1.0 for c in scores.tag_recall.values())
    assert scores.paragraphs_wrong == scores.sections_wrong == []
    assert scores.insertions.precision == scores.insertions.recall == 1.0


def test_scorer_counts_a_wrong_depth_against_depth_but_not_text() -> None:
    scores = _score(Found(TEXT, 2, (NOTE,), ((OUTER, 1), (INNER, 1)), (SIC,)))
    assert scores.quotes_text.f1 == 1.0
    assert scores.quotes_depth.precision == scores.quotes_depth.recall == 0.5
    assert scores.tag_recall["nested"].recall == 0.0
    assert scores.tag_recall["single"].recall == 1.0


def test_scorer_reports_missed_extra_and_misplaced_things() -> None:
    apostrophe = (TEXT.index("twice"), TEXT.index("’") + 1)
    scores = _score(Found(TEXT, 3, (), ((OUTER, 1), (apostrophe, 1)), ()))
    assert (scores.quotes_text.true_positives, scores.quotes_text.found) == (1, 2)
    assert scores.quotes_text.precision == 0.5
    assert scores.paragraphs_wrong == [("aeb-0", 2, 3)]
    assert scores.sections_wrong == [("aeb-0", 1, 0)]
    assert scores.insertions.recall == 0.0


def test_scorer_compares_spans_whatever_the_whitespace() -> None:
    spaced = TEXT.replace("A ", "A   ").replace("\n\n", "\n\n\n")
    shift = 2
    moved = [(start + shift, end + shift) for start, end in (OUTER, INNER)]
    note = (NOTE[0] + shift + 1, NOTE[1] + shift + 1)
    sic = (SIC[0] + shift + 1, SIC[1] + shift + 1)
    scores = _score(Found(spaced, 2, (note,), ((moved[0], 1), (moved[1], 2)), (sic,)))
    assert scores.quotes_depth.f1 == 1.0
    assert scores.sections_wrong == []
    assert scores.insertions.recall == 1.0


def test_scorer_refuses_a_text_with_other_characters() -> None:
    with pytest.raises(InkMismatch):
        _score(Found(TEXT.replace("no", "yes"), 2, (), (), ()))


def test_ink_counts_non_space_characters_before_each_index() -> None:
    assert ink_of("a b\n\nc") == [0, 1, 1, 2, 2, 2, 3]


def test_naive_baseline_pairs_marks_within_a_paragraph() -> None:
    found = naive('“a” and "b\n\nc"')
    assert found.quotes == (((1, 2), 1),)
    assert found.paragraphs == 2


def _label_json(**changes: object) -> dict[str, object]:
    def entry(span: tuple[int, int], **more: object) -> dict[str, object]:
        return {"start": span[0], "end": span[1], "sha256": sha256(TEXT[span[0] : span[1]]), **more}

    item: dict[str, object] = {
        "article": "aeb-0",
        "text_sha256": sha256(TEXT),
        "lang": "en",
        "paragraphs": 2,
        "sections": [entry(NOTE)],
        "quotes": [entry(OUTER, depth=1, tags=["single"]), entry(INNER, depth=2, tags=["nested"])],
        "insertions": [entry(SIC)],
    }
    item.update(changes)
    return item


def test_a_label_is_read_with_its_spans() -> None:
    label = check_label("aeb-0.json", _label_json(), {"aeb-0": ARTICLE})
    assert label.quotes[1] == QuoteLabel(span=INNER, depth=2, tags=frozenset({"nested"}))
    assert (label.sections, label.insertions, label.paragraphs) == ((NOTE,), (SIC,), 2)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"text_sha256": sha256(TEXT + "!")}, "text_sha256 does not match"),
        (
            {"quotes": [{"start": 0, "end": 1, "sha256": sha256("B"), "depth": 1}]},
            r"quotes\[0\]: sha256 does not match",
        ),
        ({"insertions": [{"start": 0, "end": 999, "sha256": ""}]}, "past the text's end"),
        (
            {"quotes": [{"start": 0, "end": 1, "sha256": sha256("A"), "depth": 0}]},
            "depth must be",
        ),
        (
            {"quotes": [{"start": 0, "end": 1, "sha256": sha256("A"), "depth": 1, "tags": ["x"]}]},
            "unknown tags",
        ),
        ({"article": "aeb-1"}, "not the file's name"),
        ({"paragraphs": 0}, "positive integer"),
    ],
)
def test_a_label_that_does_not_match_the_corpus_is_an_error(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(LabelError, match=message):
        check_label("aeb-0.json", _label_json(**changes), {"aeb-0": ARTICLE, "aeb-1": ARTICLE})


def test_todays_quotes_module_is_loaded_from_git() -> None:
    system = quotes_at(TODAY)
    if system is None:
        pytest.skip(f"git cannot show {TODAY}:service/normalize/quotes.py here")
    found = system("He said “no”.")
    assert found.quotes == (((9, 11), 1),)
