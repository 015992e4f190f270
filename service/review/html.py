"""HTML for people: Jinja2 templates kept as package data, autoescaped, and card Markdown as HTML.

Every value is escaped by Jinja2's autoescape; card text is CommonMark (CDS Hooks 2.0.1 §Card
Attributes: `detail` is GitHub-flavored Markdown) rendered by markdown-it-py with raw HTML
turned off, so what the catalogue says is shown and nothing it holds can become markup or
script. Links markdown-it-py judges unsafe (javascript:, vbscript:, file:, data:) are not made.
"""

from __future__ import annotations

import functools
import re

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

# GFM as CDS clients render it, as far as the catalogue uses it: tables and strikethrough too.
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
INDICATOR_LABELS = {"critical": "Critical", "warning": "Warning", "info": "Info"}


def markdown(text: str) -> Markup:
    """Card Markdown as HTML (raw HTML in it is shown as text)."""
    return Markup(MARKDOWN.render(text))  # safe: markdown-it escapes text, raw HTML is off


def slug(heading: str) -> str:
    """GitHub's heading anchor (the specification's own links use these)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def document(text: str) -> Markup:
    """A whole Markdown document as HTML, each heading with its GitHub anchor as id."""
    tokens = MARKDOWN.parse(text)
    for opening, inline in zip(tokens, tokens[1:], strict=False):
        if opening.type == "heading_open":
            opening.attrSet("id", slug(inline.content.replace("`", "")))
    return Markup(MARKDOWN.renderer.render(tokens, MARKDOWN.options, {}))  # safe: as in `markdown`


@functools.cache
def environment() -> Environment:
    """The templates of service/review/templates, built once."""
    env = Environment(
        loader=PackageLoader("service.review", "templates"),
        autoescape=select_autoescape(["html", "svg"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = markdown
    env.filters["document"] = document
    env.globals["indicator_labels"] = INDICATOR_LABELS
    return env


def render_page(template: str, **values: object) -> str:
    """One page from its template."""
    return environment().get_template(template).render(**values)
