"""`python -m tests.eval`: print the evaluation table (`make eval`)."""

from __future__ import annotations

import sys

from tests.eval.corpus import LabelError, corpus_dir, corpus_present, load_labels
from tests.eval.report import table


def main() -> int:
    if not corpus_present():
        print(f"eval skipped: no articles.jsonl in {corpus_dir()} (set ARTICLE_CORPUS_DIR)")
        return 0
    try:
        labels, articles = load_labels()
    except LabelError as exc:
        print(f"eval: bad label: {exc}", file=sys.stderr)
        return 1
    print(table(labels, articles))
    return 0


if __name__ == "__main__":
    sys.exit(main())
