"""The one rule for free text that enters the store from outside (CSV files, Slack, forms, the registry).

Line endings are normalised to ``\\n`` and control characters other than tab and newline are
dropped: PostgreSQL cannot store NUL in a text column (one such character would make it refuse
a whole import), and none of them belongs in a comment or a summary. The registry refuses such
text instead of cleaning it (:func:`first_control`, and the patterns :data:`NO_CONTROL` and
:data:`ONE_LINE` its JSON Schema carries). Values quoted back in messages go through
:func:`shown` or :func:`clip`: escaped onto one line and cut short.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable

CONTROL_CHARACTERS = r"\x00-\x08\x0b-\x1f\x7f"
"""C0 control characters except tab and newline (so CR is one), plus DEL, as a regex class body."""
CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")
_CONTROL_OR_NEWLINE = re.compile(f"[{CONTROL_CHARACTERS}\\n]")

NO_CONTROL = f"^[^{CONTROL_CHARACTERS}]*$"
"""A pattern (Python, Rust and ECMAScript syntax alike) for text that may span lines: no control character."""
ONE_LINE = f"^[^{CONTROL_CHARACTERS}\\n]*$"
"""A pattern for one-line text: no control character and no line break."""

_SURROUNDING = " \t\r\n"


def clean_text(raw: str) -> str:
    """``raw`` as stored: line endings normalised, control characters dropped, ends stripped."""
    return CONTROL.sub("", raw.replace("\r\n", "\n").replace("\r", "\n")).strip()


def has_control(raw: str) -> bool:
    """Whether ``raw`` holds a character :func:`clean_text` drops (tab and newline aside)."""
    return CONTROL.search(raw.replace("\r", "")) is not None


def first_control(raw: str, *, one_line: bool = False) -> int | None:
    """The index of the first character of ``raw`` that :data:`NO_CONTROL` (or, with ``one_line``,
    :data:`ONE_LINE`) refuses, or None. Spaces, tabs and line breaks around the text do not
    count: they are trimmed (a YAML block scalar ends with a line break)."""
    start, end = len(raw) - len(raw.lstrip(_SURROUNDING)), len(raw.rstrip(_SURROUNDING))
    found = (_CONTROL_OR_NEWLINE if one_line else CONTROL).search(raw, start, max(start, end))
    return found.start() if found else None


def describe_control(raw: str, at: int) -> str:
    """``contains a control character (U+0000) at position 5``: what :func:`first_control` found,
    with its position counted from 1."""
    char = raw[at]
    what = "a line break" if char in "\r\n" else "a control character"
    return f"contains {what} (U+{ord(char):04X}) at position {at + 1}"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring, _REPR.maxlong, _REPR.maxother, _REPR.fillvalue = 40, 40, 40, "…"


def shown(value: object, limit: int = 80) -> str:
    """``value`` as a message quotes it: its ``repr`` (strings quoted, line breaks and control
    characters escaped), at most ``limit`` characters, a longer one cut with ``…``. Any type is
    fine, and a huge string or list costs no more than a short one."""
    if isinstance(value, str):
        return _cut(lambda n: repr(value[:n]), len(value), limit)
    try:
        text = _REPR.repr(value)  # bounded by the limits above; strings inside are repr'd too
    except ValueError:  # an int of more than 4,300 digits has no repr
        text = f"<a number of about {int(value.bit_length() * 0.30103) + 1} digits>"
    except RecursionError:
        text = f"<{type(value).__name__} nested too deep to show>"
    return _cut(lambda n: text[:n], len(text), limit)


def clip(text: str, limit: int = 80) -> str:
    """``text`` as a message includes it unquoted: on one line (characters ``str.isprintable``
    refuses are escaped as in a ``repr``), at most ``limit`` characters, a longer one cut with ``…``."""
    return _cut(
        lambda n: "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:n]), len(text), limit
    )


def _cut(render: Callable[[int], str], length: int, limit: int) -> str:
    """``render(length)`` if it fits in ``limit`` characters, else the longest ``render(n)`` that
    leaves room for the ``…``."""
    if length <= limit and len(whole := render(length)) <= limit:
        return whole
    n = min(length, limit)
    while n and len(render(n)) > limit - 1:
        n -= 1
    return render(n) + "…"
