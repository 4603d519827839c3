"""Reading CSV files that people make (spreadsheet exports, ticket-system drops): the one set of
rules both CSV importers follow (help requests, :mod:`auxeng.redflags.help_csv`; survey answers,
:func:`auxeng.surveys.responses.import_responses_csv`).

- :func:`decode`: bytes to text. UTF-8 (a byte-order mark is fine); anything else is one clear
  :class:`NotText` error naming the line and byte ("not UTF-8 text at line 3, byte 41 (0xe9)"),
  UTF-16 included, instead of a traceback.
- :func:`records`: the records of the text, each with the physical line where it starts (as a
  text editor counts) and its record number (as a spreadsheet numbers rows: the header is 1,
  a blank line counts, a multi-line comment is one row). A record that cannot be read is a
  :class:`Problem` naming its line, and reading goes on with the next one: a quote that is
  never closed, text after a closing quote, a quoted field that swallowed what looks like
  the next row(s) (an unbalanced quote), a field over the ``csv`` module's size limit
  (131,072 characters; the rest of the file is skipped then, as it cannot be told apart).
- :func:`located`: how both importers report a bad row, ``<file>:<line>: <reason>`` (the form
  editors and compilers use), ``line`` being the physical line where the record starts.
- :func:`parse_moment`: an ISO date or date-time to an aware UTC moment within
  :data:`EARLIEST`..:data:`LATEST`; anything else (``0001-01-01T00:30:00+01:00`` too) is a
  ``ValueError`` for the row, never an ``OverflowError`` for the whole import.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class NotText(ValueError):
    """The file is not UTF-8 text (the message says where)."""


class OutOfRange(ValueError):
    """An ISO date or date-time outside :data:`EARLIEST`..:data:`LATEST`."""


@dataclass(frozen=True)
class Row:
    """A record: ``line`` where it starts in the file (1-based), ``number`` as a spreadsheet numbers it."""

    line: int
    number: int
    values: list[str]


@dataclass(frozen=True)
class Problem:
    """A record that could not be read (skipped), at ``line`` / spreadsheet row ``number``."""

    line: int
    number: int
    message: str


def where(name: str, line: int) -> str:
    """``<file>:<line>``: a place in a CSV file as both importers name it (``line`` 1-based,
    counting physical lines: every line of a multi-line quoted field counts)."""
    return f"{name}:{line}"


def located(name: str, line: int, reason: str) -> str:
    """A bad row (or header) as both importers report it: ``<file>:<line>: <reason>``."""
    return f"{where(name, line)}: {reason}"


def decode(data: bytes) -> str:
    """``data`` as text (a UTF-8 byte-order mark dropped); :class:`NotText` if it is not UTF-8."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise NotText("UTF-16 text (it starts with a UTF-16 byte-order mark): save it as UTF-8 CSV")
    if len(data) >= 4 and data.count(b"\x00") * 4 >= len(data):
        raise NotText("UTF-16 text (every other byte is NUL): save it as UTF-8 CSV")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = len(_LINE_BREAK.findall(data[: exc.start].decode("utf-8", "replace"))) + 1
        raise NotText(
            f"not UTF-8 text at line {line}, byte {exc.start} ({data[exc.start]:#04x}); save it as UTF-8 CSV"
        ) from None


def records(text: str) -> Iterator[Row | Problem]:
    """The non-blank records of ``text`` (the header first) and the problems met, in file order.

    The first record's width (the header's) tells which embedded lines of a multi-line field
    look like a row of their own: one with at least that many fields less one (and at least two).
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    width = 0
    number = 0
    while True:
        start = reader.line_num + 1
        number += 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num
            span = f"line {start}" if end <= start else f"lines {start}-{end}"
            reason = str(exc)
            if "field larger than field limit" in reason:
                yield Problem(
                    start,
                    number,
                    f"a field longer than {csv.field_size_limit():,} characters (an unbalanced quote?); "
                    "the rest of the file is skipped",
                )
                return
            if "unexpected end of data" in reason:
                message = f"a quote opened in this row is never closed; {span} (the end of the file) skipped"
            elif "expected after" in reason:
                message = f"text after a closing quote (an unbalanced quote?); {span} skipped"
            else:
                message = f"not valid CSV ({reason}); {span} skipped"
            yield Problem(start, number, message)
            continue
        if not any(value.strip() for value in values):
            continue
        if not width:
            width = len(values)
        end = reader.line_num
        swallowed = _swallowed_row(values, start, width) if end > start else None
        if swallowed is not None:
            yield Problem(
                start,
                number,
                f"a quoted field holds what looks like another row (line {swallowed}): an unbalanced "
                f"quote?; lines {start}-{end} skipped",
            )
            continue
        yield Row(start, number, values)


def _swallowed_row(values: list[str], start: int, width: int) -> int | None:
    """The line of the first embedded line of a field that looks like a whole row, or None."""
    line = start
    for value in values:
        pieces = _LINE_BREAK.split(value)
        for offset, piece in enumerate(pieces[1:], start=1):
            fields = next(csv.reader([piece]), [])
            if len(fields) >= max(2, width - 1):
                return line + offset
        line += len(pieces) - 1
    return None


def parse_moment(raw: str, timezone: tzinfo, *, bare_date_at: time) -> tuple[datetime, date | None]:
    """The aware UTC moment ``raw`` stands for, and its day when ``raw`` is a bare date.

    ``raw`` is ``YYYY-MM-DD`` (that day at ``bare_date_at`` in ``timezone``) or an ISO
    date-time of at least ``YYYY-MM-DDTHH:MM`` (in ``timezone`` when it has no offset).
    ValueError when it is neither; :class:`OutOfRange` (a ValueError) outside
    :data:`EARLIEST`..:data:`LATEST`.
    """
    text = raw.strip()
    day: date | None = None
    if len(text) == 10:
        day = date.fromisoformat(text)
        moment = datetime.combine(day, bare_date_at)
    elif len(text) < 16:  # at least YYYY-MM-DDTHH:MM; rejects 20261120 and the like
        raise ValueError(text)
    else:
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise OutOfRange(_range_message(text)) from None
    if not EARLIEST <= moment < LATEST:
        raise OutOfRange(_range_message(text))
    return moment, day


def _range_message(text: str) -> str:
    return f"{text!r} is out of range ({EARLIEST.year}-{LATEST.year - 1})"
