"""Building CSV files row by row while knowing where each row lands, for the importers' property
tests: each record's physical start line (as the help-request import reports it) and its
spreadsheet row number (as the survey-response import reports it; the header is row 1, a blank
line is a row, a multi-line record is one row)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

CONTROL_CHARACTERS = "\x00\x01\x07\x08\x0b\x0c\x1b\x7f"


@dataclass(frozen=True)
class Placed:
    """Where a record starts: physical ``line`` and spreadsheet row ``number``."""

    line: int
    number: int


@dataclass
class CsvBuilder:
    """The text of a CSV file, built record by record (``newline`` ends each record)."""

    newline: str = "\n"
    parts: list[str] = field(default_factory=list)
    line: int = 1
    number: int = 1

    def raw(self, text: str) -> Placed:
        """A record written as is (``text`` ends with its line break, or is the file's end)."""
        placed = Placed(self.line, self.number)
        self.parts.append(text)
        self.line += text.count("\n")  # newline is "\n" or "\r\n"; fields hold no lone "\r"
        self.number += 1
        return placed

    def row(self, values: list[str]) -> Placed:
        """A record of ``values``, quoted as a spreadsheet writes them."""
        out = io.StringIO()
        csv.writer(out, lineterminator=self.newline).writerow(values)
        return self.raw(out.getvalue())

    def blank(self) -> Placed:
        return self.raw(self.newline)

    def text(self) -> str:
        return "".join(self.parts)


def free_text(*, max_size: int = 60, multi_line: bool = True) -> st.SearchStrategy[str]:
    """Text people type: letters, punctuation, quotes, commas, accents, emoji, now and then a
    control character (NUL included) and, when ``multi_line``, line breaks (then without commas,
    so that no embedded line looks like a row of its own)."""
    alphabet = st.one_of(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.sampled_from("éßü—…😀中\u2028\x85"),
        st.sampled_from(CONTROL_CHARACTERS),
    )
    single = st.text(alphabet, max_size=max_size)
    if not multi_line:
        return single
    lines = st.lists(single.map(lambda t: t.replace(",", ";")), min_size=2, max_size=3).map("\n".join)
    return st.one_of(single, single, lines)


def store_properties(examples: int) -> settings:
    """Hypothesis settings for the importers' properties: a fixed number of derandomized examples,
    no example database; function-scoped fixtures allowed, as each example empties the tables it
    writes first."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
