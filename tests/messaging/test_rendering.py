"""Every message kind, every branch, read as people read it: no sentences glued together."""

from __future__ import annotations

import html
import re

import pytest

from auxeng.messaging.rendering import render
from tests.messaging.contexts import contexts

# A sentence end directly followed by the next sentence, a link or an opening bold.
GLUED = re.compile(r"[a-z][.!?:](?:[A-Z<]|\*\S)")
BLOCK_TAGS = re.compile(
    r"</?(?:p|div|li|ul|ol|br|h[1-6]|table|tr|td|th|blockquote|pre|hr)\b[^>]*>", re.IGNORECASE
)
CASES = list(contexts())


def visible_text(markup: str) -> str:
    """The HTML part as a mail client shows it: blocks on their own lines, inline tags gone."""
    return html.unescape(re.sub(r"<[^>]+>", "", BLOCK_TAGS.sub("\n", markup)))


def glued(text: str) -> list[str]:
    return [text[max(0, m.start() - 30) : m.end() + 20] for m in GLUED.finditer(text)]


def test_every_message_kind_is_covered():
    from auxeng.settings import include_dir

    templates = {p.name.split(".")[0] for p in (include_dir() / "templates" / "messages").glob("[!_]*.txt")}
    assert {kind for kind, _, _ in CASES} == templates


@pytest.mark.parametrize(("kind", "variant", "context"), CASES, ids=[f"{k}-{v}" for k, v, _ in CASES])
def test_no_sentence_runs_into_the_next(kind, variant, context):
    rendered = render(kind, **context)
    parts = {
        "subject": rendered.subject,
        "text": rendered.text,
        "html": visible_text(rendered.html),
        "slack": rendered.slack,
    }
    assert {name: glued(text) for name, text in parts.items() if glued(text)} == {}
