"""The viewer's article as HTML, block by block, from service.span_tree's regions.

Every piece of text and every attribute value goes through `markupsafe.escape`, the
escaping Jinja2's autoescape applies, so the article's text is never markup; the result
is a `Markup` the template inserts as it is. It is built here rather than by a template
macro because a record may hold hundreds of thousands of spans: a macro call per element
made a 2 MB article with 160,000 spans take seven seconds, this takes under one.

What each element says (the stylesheet draws it; tests/test_ui.py reads it):
- a block: `<p class="block">` (`is-headline` when it is the detected headline), a
  labelled section `<section class="block section" data-label=…>`, text outside every
  block `<p class="block outside">`; all `dir="auto"`, so right-to-left text reads so;
- a quote fragment: `<span class="quote depth-N [unclosed] [first] [last]"
  data-quote=INDEX data-depth=DEPTH>` (N capped at 4 for colours, DEPTH as recorded);
- `<span class="insertion" data-insertion=I>`, `<span class="ellipsis" data-ellipsis=I>`,
  `<span class="label" data-label=B>`, with `first`/`last` as for quotes.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from service.span_tree import Element, Region
from service.types import Quote

_COLOURS = 4  # depths beyond share the last colour


def article_html(
    quotes: Sequence[Quote], regions: list[Region], headline_block: int | None
) -> Markup:
    parts: list[str] = []
    for region in regions:
        if region.kind == "section":
            label = "" if not region.label else f' data-label="{escape(region.label)}"'
            parts.append(
                f'<section class="block section" dir="auto" data-block="{region.index}"{label}>'
            )
            closing = "</section>\n"
        elif region.kind == "outside":
            parts.append('<p class="block outside" dir="auto">')
            closing = "</p>\n"
        else:
            headline = " is-headline" if region.index == headline_block else ""
            parts.append(f'<p class="block{headline}" dir="auto" data-block="{region.index}">')
            closing = "</p>\n"
        _children(quotes, region.children, parts)
        parts.append(closing)
    return Markup("".join(parts))  # noqa: S704 (text escaped, tags ours: module docstring)


def _children(quotes: Sequence[Quote], children: list[Element | str], parts: list[str]) -> None:
    for child in children:
        if isinstance(child, str):
            parts.append(escape(child))
            continue
        parts.append(_opening(quotes, child))
        _children(quotes, child.children, parts)
        parts.append("</span>")


def _opening(quotes: Sequence[Quote], element: Element) -> str:
    ends = (" first" if element.first else "") + (" last" if element.last else "")
    if element.kind == "quote":
        quote = quotes[element.index]
        unclosed = " unclosed" if quote.close is None else ""
        colour = min(quote.depth, _COLOURS)
        return (
            f'<span class="quote depth-{colour}{unclosed}{ends}" '
            f'data-quote="{element.index}" data-depth="{quote.depth}">'
        )
    return f'<span class="{element.kind}{ends}" data-{element.kind}="{element.index}">'
