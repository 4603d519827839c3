"""Slack Block Kit: the limits Slack enforces, and the blocks people's text goes into, cut to fit.

Slack refuses the whole message (``invalid_blocks``) when one block is over a limit, so
every Block Kit builder makes its blocks here: text that is too long ends in :data:`MARK`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

SECTION_TEXT_LIMIT = 3000
FIELD_TEXT_LIMIT = 2000
FIELDS_LIMIT = 10
HEADER_TEXT_LIMIT = 150
CONTEXT_ELEMENTS_LIMIT = 10
MESSAGE_BLOCKS_LIMIT = 50
MARK = "…"

# What a cut may leave half-written at its end: an escape (``&amp;``) or a link (``<url|label>``).
_BROKEN_TAIL = re.compile(r"&#?\w*$|<[^>]*$")


def truncate(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start ending in :data:`MARK`."""
    if len(text) <= limit:
        return text
    return _BROKEN_TAIL.sub("", text[: limit - len(MARK)]).rstrip() + MARK


def mrkdwn(text: str, limit: int = SECTION_TEXT_LIMIT) -> dict[str, str]:
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, HEADER_TEXT_LIMIT)}}


def fields(texts: Iterable[str]) -> dict[str, Any]:
    """A section of side-by-side mrkdwn fields (the first :data:`FIELDS_LIMIT`)."""
    return {"type": "section", "fields": [mrkdwn(t, FIELD_TEXT_LIMIT) for t in list(texts)[:FIELDS_LIMIT]]}


def context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [mrkdwn(t) for t in texts[:CONTEXT_ELEMENTS_LIMIT]]}


def sections(text: str) -> list[dict[str, Any]]:
    """Sections of mrkdwn ``text``: whole lines packed up to the limit, a longer line cut."""
    chunks: list[str] = []
    for line in text.split("\n"):
        line = truncate(line, SECTION_TEXT_LIMIT)
        if chunks and len(chunks[-1]) + 1 + len(line) <= SECTION_TEXT_LIMIT:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return [{"type": "section", "text": mrkdwn(chunk)} for chunk in chunks if chunk.strip()]


def message(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``blocks`` as one message may carry them: past :data:`MESSAGE_BLOCKS_LIMIT`, a note says how many are left out."""
    if len(blocks) <= MESSAGE_BLOCKS_LIMIT:
        return blocks
    kept = blocks[: MESSAGE_BLOCKS_LIMIT - 1]
    return [*kept, context(f"{MARK} {len(blocks) - len(kept)} more blocks not shown")]
