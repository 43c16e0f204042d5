"""The labelled evaluation set of the normalizer (issue #16) and the harness that scores it.

`labels/aeb-N.json` holds a reader's labels of one article of the shared corpus
(`ARTICLE_CORPUS_DIR`, else `<repo>/../shared/corpus`): paragraph count, section labels,
quotations (span, depth, phenomenon tags) and bracketed insertions. Labels hold offsets
and SHA-256 digests only, never article text; the digests are checked against the corpus
at run time, so a label can never silently drift from the text it describes.

- `corpus`: finds the corpus, loads and checks the labels.
- `score`: compares what a system found with the labels; pure, no corpus needed.
- `systems`: the systems scored: the working tree's normalizer, the quotes module of
  commit 0b00191 ("today's normalizer", loaded from git at run time) and a naive regex.
- `python -m tests.eval` (`make eval`) prints the table.
"""
