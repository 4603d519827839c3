"""Import requests for help from CSV drop files (the ticket-system export of host teams).

Host teams that track their asks to the platform team in a ticket system drop a CSV
file where :attr:`Settings.help_requests_csv` [AUXENG_HELP_REQUESTS_CSV] points: one
file, or a directory whose ``*.csv`` files are all read (sorted by name). Each row
becomes a :class:`~auxeng.store.models.HelpRequestRow` with ``source="csv"``.

The format
    UTF-8 (a byte-order mark is fine), comma-separated, a header row first. Column
    names are case-insensitive (spaces and dashes count as ``_``); extra columns are
    ignored:

    ``team`` or ``team_key``   key of a host team of the registry (required)
    ``date`` or ``requested_on``  when it was asked (required): ``2026-11-20``, which
                                  means noon that day in ``settings.timezone``
                                  [AUXENG_TIMEZONE], or an ISO date-time,
                                  ``2026-11-20T14:03:00+01:00`` (one without an offset
                                  is in ``settings.timezone`` too). A row dated
                                  after the run's ``now`` is rejected; a bare date
                                  is accepted up to today, even before noon.
    ``summary``                what was asked (required, stored trimmed, at most
                               1000 characters)
    ``link``                   the ticket's http(s) address (optional, may be empty)
    ``author``                 who asked (optional)

Identity and re-imports
    A row is identified by its link when it has one, else by a hash of its team, date
    (as written: a day, or the moment in UTC) and summary. Importing a file again
    changes nothing; a row with a link whose summary (or date, team, author) was edited
    updates the stored request. Editing a row *without* a link makes it a new request
    (the old one stays): give rows a link when the summaries may change.

Errors are per row: a row with an unknown or removed team, a bad or future date, an
empty summary, a link that is not http(s) or the wrong number of fields is reported as
``"<file name>:<line>: <problem>"`` (:func:`auxeng.csvinput.located`, the line where the
row starts) and skipped; the other rows are imported. A file that cannot be read, is not
UTF-8 or lacks a required column is one error, and the other files are still imported. A
row repeated within the drop is imported once and counted as a duplicate.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng import csvinput
from auxeng.redflags import help_requests
from auxeng.settings import Settings
from auxeng.store.models import TeamRow
from auxeng.text import clean_text

log = logging.getLogger(__name__)

SOURCE = "csv"
SUMMARY_MAX = 1000
LINK_MAX = 1000
AUTHOR_MAX = 320
SOURCE_REF_MAX = 300  # HelpRequestRow.source_ref
BARE_DATE_HOUR = 12  # a row dated by day only was asked at noon, local time

# canonical column -> the header names accepted for it
COLUMNS: dict[str, tuple[str, ...]] = {
    "team": ("team", "team_key"),
    "date": ("date", "requested_on"),
    "summary": ("summary",),
    "link": ("link",),
    "author": ("author",),
}
REQUIRED = ("team", "date", "summary")


@dataclass
class CsvImportReport:
    """What one import did. ``errors`` are ``"<file>:<line>: <problem>"`` strings."""

    configured: bool = True
    files: list[str] = field(default_factory=list)
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts only (JSON-able, small enough for an XCom); the errors are logged one by one."""
        return {
            "configured": self.configured,
            "files": len(self.files),
            "imported": self.imported,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "errors": len(self.errors),
        }


@dataclass(frozen=True)
class _Request:
    team_key: str
    requested_at: datetime
    summary: str
    link: str | None
    author: str | None
    source_ref: str


def import_help_requests(session: Session, *, settings: Settings, now: datetime) -> CsvImportReport:
    """Import the CSV drop at ``settings.help_requests_csv`` into ``session`` (the caller commits).

    ``now`` is the aware moment of the run: rows dated after it are rejected, and it
    stamps ``imported_at`` / ``updated_at``. Returns an empty report (``configured``
    False) when no drop is configured. Each error is also logged as a warning.
    """
    report = CsvImportReport()
    location = settings.help_requests_csv
    if location is None:
        report.configured = False
        log.info("No help-request CSV drop configured (AUXENG_HELP_REQUESTS_CSV): nothing to import")
        return report
    if location.is_dir():
        paths = sorted(p for p in location.glob("*.csv") if p.is_file())
        if not paths:
            log.info("No *.csv file in %s: nothing to import", location)
    elif location.is_file():
        paths = [location]
    else:
        paths = []
        _error(report, f"{location}: no such file or directory (AUXENG_HELP_REQUESTS_CSV)")

    teams = {row.key.lower(): row for row in session.scalars(select(TeamRow))}
    seen: dict[str, tuple[_Request, str]] = {}  # source_ref -> (request, "file:line") in this drop
    for path in paths:
        report.files.append(path.name)
        _import_file(session, path, report, teams=teams, seen=seen, settings=settings, now=now)
    _store(session, [request for request, _ in seen.values()], report, now=now)
    log.info("Help-request CSV import: %s", report.summary())
    return report


def _error(report: CsvImportReport, message: str) -> None:
    report.errors.append(message)
    log.warning("Help-request CSV: %s", message)


def _import_file(
    session: Session,
    path: Path,
    report: CsvImportReport,
    *,
    teams: dict[str, TeamRow],
    seen: dict[str, tuple[_Request, str]],
    settings: Settings,
    now: datetime,
) -> None:
    name = path.name
    try:
        text = csvinput.decode(path.read_bytes())
    except csvinput.NotText as exc:
        _error(report, f"{name}: {exc}; file skipped")
        return
    except OSError as exc:
        _error(report, f"{name}: cannot be read ({exc.strerror or exc}); file skipped")
        return

    found = csvinput.records(text)
    head = next(found, None)
    try:
        if head is None:
            raise ValueError("empty file: a header row team,date,summary,link is required")
        if isinstance(head, csvinput.Problem):
            raise ValueError(head.message)
        header = head.values
        columns = _columns(header)
    except ValueError as exc:
        _error(report, csvinput.located(name, head.line if head else 1, f"{exc}; file skipped"))
        return

    for record in found:
        if isinstance(record, csvinput.Problem):
            _error(report, csvinput.located(name, record.line, record.message))
            continue
        values = record.values
        request, problems = _parse_row(
            values, header_size=len(header), columns=columns, teams=teams, settings=settings, now=now
        )
        if problems:
            _error(report, csvinput.located(name, record.line, "; ".join(problems)))
            continue
        assert request is not None
        where = csvinput.where(name, record.line)
        if request.source_ref in seen:
            first, first_where = seen[request.source_ref]
            if first == request:
                report.duplicates += 1
            else:
                same = "link" if request.link else "team, date and summary"
                _error(
                    report,
                    csvinput.located(
                        name,
                        record.line,
                        f"same {same} as {first_where} but other values; {first_where} kept",
                    ),
                )
            continue
        seen[request.source_ref] = (request, where)


def _columns(header: list[str]) -> dict[str, int]:
    """Canonical column name -> index in the row; raises ValueError naming what is wrong."""
    index: dict[str, int] = {}
    for position, raw in enumerate(header):
        normalized = raw.strip().lower().replace(" ", "_").replace("-", "_")
        for canonical, names in COLUMNS.items():
            if normalized in names:
                if canonical in index:
                    raise ValueError(f"column {raw.strip()!r} repeats {header[index[canonical]].strip()!r}")
                index[canonical] = position
    missing = [name for name in REQUIRED if name not in index]
    if missing:
        found = ",".join(h.strip() for h in header)
        raise ValueError(
            f"missing required column(s) {', '.join(missing)} in header {found!r} "
            "(expected team,date,summary[,link])"
        )
    return index


def _parse_row(
    values: list[str],
    *,
    header_size: int,
    columns: dict[str, int],
    teams: dict[str, TeamRow],
    settings: Settings,
    now: datetime,
) -> tuple[_Request | None, list[str]]:
    if len(values) != header_size:
        return None, [f"{len(values)} field(s), the header has {header_size}"]

    def cell(name: str) -> str:
        return clean_text(values[columns[name]]) if name in columns else ""

    problems: list[str] = []
    team_raw = cell("team")
    team = teams.get(team_raw.lower())
    if team is None:
        problems.append(f"unknown team {team_raw!r}" if team_raw else "empty team")
    elif team.removed_at is not None:
        problems.append(f"team {team_raw!r} was removed from the registry")

    date_raw = cell("date")
    requested_at, day_token, future = None, "", False
    try:
        requested_at, day_token, future = _parse_when(date_raw, settings, now)
    except csvinput.OutOfRange as exc:
        problems.append(f"date {exc}")
    except ValueError:
        problems.append(
            f"bad date {date_raw!r} (expected YYYY-MM-DD or an ISO date-time such as 2026-11-20T14:03:00+01:00)"
        )
    if future:
        problems.append(
            f"date {date_raw!r} is in the future (after {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"
        )

    summary = cell("summary")
    if not summary:
        problems.append("empty summary")
    elif len(summary) > SUMMARY_MAX:
        summary = summary[: SUMMARY_MAX - 1].rstrip() + "…"

    link = cell("link") or None
    if link is not None:
        try:
            parts = urlsplit(link)
        except ValueError:  # "http://[abc" (an unbalanced IPv6 bracket), "https://a＃b" (NFKC)
            parts = None
        if (
            parts is None
            or parts.scheme.lower() not in ("http", "https")
            or not parts.netloc
            or any(c.isspace() for c in link)
        ):
            problems.append(f"link {_short(link)!r} is not an http(s) URL")
        elif len(link) > LINK_MAX:
            problems.append(f"link {_short(link)!r} is longer than {LINK_MAX} characters")

    author = cell("author")[:AUTHOR_MAX] or None
    if problems:
        return None, problems
    assert team is not None
    assert requested_at is not None
    if link is not None:
        source_ref = link if len(link) <= SOURCE_REF_MAX else f"link-sha256:{_sha256(link)}"
    else:
        source_ref = f"sha256:{_sha256(team.key, day_token, summary)}"
    return _Request(team.key, requested_at, summary, link, author, source_ref), []


def _parse_when(raw: str, settings: Settings, now: datetime) -> tuple[datetime, str, bool]:
    """The aware UTC moment, the token that stands for the date in the row's hash, and
    whether it is in the future; raises ValueError when ``raw`` is not an ISO date or date-time
    (:class:`~auxeng.csvinput.OutOfRange` when it is one out of range).

    A bare date is noon in ``settings.timezone`` (token: the date) and is in the future
    only from the next day on (today's rows are accepted in the morning too); a
    date-time keeps its offset, or is in ``settings.timezone`` without one (token: the
    UTC moment), and is in the future when after ``now``.
    """
    moment, day = csvinput.parse_moment(raw, settings.timezone, bare_date_at=time(BARE_DATE_HOUR))
    if day is not None:
        return moment, day.isoformat(), day > now.astimezone(settings.timezone).date()
    return moment, moment.isoformat(), moment > now


def _store(session: Session, requests: list[_Request], report: CsvImportReport, *, now: datetime) -> None:
    """Add the new requests and update the changed ones."""
    done = help_requests.upsert(session, SOURCE, [asdict(request) for request in requests], now=now)
    report.imported += done.imported
    report.updated += done.updated
    report.unchanged += done.unchanged


def _sha256(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _short(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
