"""The one rule for free text that enters the store from outside (CSV files, Slack, forms).

Line endings are normalised to ``\\n`` and control characters other than tab and newline are
dropped: PostgreSQL cannot store NUL in a text column (one such character would make it refuse
a whole import), and none of them belongs in a comment or a summary.
"""

from __future__ import annotations

import re

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(raw: str) -> str:
    """``raw`` as stored: line endings normalised, control characters dropped, ends stripped."""
    return CONTROL.sub("", raw.replace("\r\n", "\n").replace("\r", "\n")).strip()


def has_control(raw: str) -> bool:
    """Whether ``raw`` holds a character :func:`clean_text` drops (tab and newline aside)."""
    return CONTROL.search(raw.replace("\r", "")) is not None
