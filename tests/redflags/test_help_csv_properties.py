"""Properties of the help-request CSV drop import (:func:`auxeng.redflags.help_csv.import_help_requests`),
with Hypothesis, on SQLite and PostgreSQL.

- Any bytes as a drop file never raise: the import returns its report (it documents no error
  type: every problem is a ``"<file>:<line>: <problem>"`` string of ``report.errors``), the
  store takes what it stores (no NUL reaches PostgreSQL), and importing again adds nothing.
- Valid rows survive any number of bad neighbours: out-of-range and bad dates, dates in the
  future, wrong field counts, unknown, empty and removed teams, empty summaries, bad and huge
  links, NUL and other control characters, text after a closing quote, a conflicting repeat of
  a link; at the end of the file a quote never closed or a field over the CSV module's limit;
  and a neighbouring file of the drop that is not UTF-8. Each valid row is stored exactly once
  (as cleaned), each bad row is an error naming its file and line, and importing the same drop
  again imports and updates nothing.

The store is emptied of help requests and the drop folder rewritten at the start of every
example (the demo registry, which the import only reads, stays), so the function-scoped
fixtures are safe to share between examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, note
from hypothesis import strategies as st
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from auxeng.redflags.help_csv import SUMMARY_MAX, CsvImportReport, import_help_requests
from auxeng.store.models import HelpRequestRow, TeamRow
from auxeng.text import CONTROL, clean_text
from tests.checkins.store_helpers import DEMO_TEXT, FIRST_RUN, load, moment
from tests.redflags.test_help_csv import settings_for
from tests.support.csv_builder import CONTROL_CHARACTERS, CsvBuilder, free_text, store_properties

NOW = moment(FIRST_RUN, 8)  # 2026-11-26 08:00 UTC
BERLIN = ZoneInfo("Europe/Berlin")  # settings_for's time zone
TEAMS = (
    "payments-core",
    "checkout",
    "pricing",
    "fulfillment",
    "carrier-integrations",
    "warehouse-ops",
    "customer-care",
    "reviews",
    "search-relevance",
    "marketing-data",
    "supplier-portal",
)
REMOVED_TEAM = "loyalty"
TICKET = "https://tickets.example.com/PLAT-"
CSV_LIMIT = 131_072


@pytest.fixture
def demo(store):
    """The demo registry loaded as of the first run, with ``loyalty`` removed from it."""
    load(store, DEMO_TEXT, FIRST_RUN)
    with Session(store) as session:
        session.execute(update(TeamRow).where(TeamRow.key == REMOVED_TEAM).values(removed_at=NOW))
        session.commit()
    return store


def fresh(store, folder: Path) -> Path:
    """No help request in the store and an empty drop folder (the start of every example)."""
    with Session(store) as session:
        session.execute(delete(HelpRequestRow))
        session.commit()
    folder.mkdir(exist_ok=True)
    for path in folder.iterdir():
        path.unlink()
    return folder


def run_import(store, location: Path, *, now: datetime = NOW) -> CsvImportReport:
    with Session(store) as session:
        report = import_help_requests(session, settings=settings_for(location), now=now)
        session.commit()
    return report


def stored(store) -> list[HelpRequestRow]:
    with Session(store) as session:
        return list(session.scalars(select(HelpRequestRow).order_by(HelpRequestRow.id)))


def snapshot(store) -> list[tuple]:
    return [
        (r.id, r.source_ref, r.team_key, r.requested_at, r.summary, r.link, r.author, r.updated_at)
        for r in stored(store)
    ]


def assert_only_valid_requests(store) -> None:
    """What any import may store: a live team, a moment in range and not after NOW, clean text."""
    for row in stored(store):
        assert row.team_key in TEAMS
        assert datetime(2000, 1, 1, tzinfo=UTC) <= row.requested_at <= NOW + timedelta(days=1)
        assert row.summary and not CONTROL.search(row.summary) and len(row.summary) <= SUMMARY_MAX
        assert row.author is None or not CONTROL.search(row.author)
        assert row.link is None or row.link.startswith(("http://", "https://"))


# --- arbitrary bytes ------------------------------------------------------------------------------

HEADERS = ["", "team,date,summary,link,author\n", "Team_Key,Requested_On,SUMMARY,Link\r\n"]


@store_properties(60)
@given(
    header=st.sampled_from(HEADERS),
    body=st.one_of(
        st.binary(max_size=400),
        st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.lists(
            st.tuples(
                st.sampled_from([*TEAMS, REMOVED_TEAM, "", "nobody", "CHECKOUT"]),
                st.sampled_from(["2026-11-20", "2026-11-20T14:03", "0001-01-01T00:30:00+01:00", "x", ""]),
                free_text(max_size=30),
                st.sampled_from(["", TICKET + "1", "http://[abc", "ftp://x", "\x00"]),
            ).map(lambda row: ",".join(row) + "\n"),
            max_size=6,
        ).map(lambda rows: "".join(rows).encode("utf-8", "surrogatepass")),
    ),
)
@example(header=HEADERS[1], body=b"checkout,2026-11-20,Asked,http://[abc\n")
@example(header=HEADERS[1], body=b"checkout,2026-11-20,NUL\x00here,\n\xff\xfe")
@example(header="", body=b"\xff\xfet\x00e\x00a\x00m\x00")
def test_arbitrary_bytes_never_raise(demo, tmp_path, header, body):
    folder = fresh(demo, tmp_path / "drop")
    (folder / "drop.csv").write_bytes(header.encode() + body)
    report = run_import(demo, folder)
    assert report.files == ["drop.csv"]
    assert all(error.startswith("drop.csv:") for error in report.errors), report.errors
    assert_only_valid_requests(demo)
    assert report.imported == len(stored(demo))
    again = run_import(demo, folder, now=NOW + timedelta(hours=1))
    assert (again.imported, again.updated) == (0, 0)
    assert again.errors == report.errors


# --- valid rows among bad neighbours ---------------------------------------------------------------


@dataclass(frozen=True)
class ValidAsk:
    team: str  # as written (case and spaces may differ from the key)
    key: str
    when: str
    requested_at: datetime
    summary: str
    link: str
    author: str


@st.composite
def valid_asks(draw, number: int) -> ValidAsk:
    key = draw(st.sampled_from(TEAMS))
    team = draw(st.sampled_from([key, key, key.upper(), f"  {key} "]))
    day = draw(st.dates(date(2000, 1, 2), FIRST_RUN))
    style = draw(st.sampled_from(["date", "local", "offset", "utc"]))
    if style == "date" or day >= FIRST_RUN - timedelta(days=1):  # a bare date: noon in Berlin, even today
        when, requested_at = day.isoformat(), datetime.combine(day, time(12), BERLIN).astimezone(UTC)
    else:
        clock = draw(st.times(time(0, 0), time(23, 59)).map(lambda t: t.replace(microsecond=0)))
        local = datetime.combine(day, clock)
        if style == "local":
            when, requested_at = local.isoformat(), local.replace(tzinfo=BERLIN).astimezone(UTC)
        elif style == "offset":
            offset = timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60)))
            aware = local.replace(tzinfo=timezone(offset))
            when, requested_at = aware.isoformat(), aware.astimezone(UTC)
        else:
            when, requested_at = f"{local.isoformat()}Z", local.replace(tzinfo=UTC)
    summary = f"Ask {number}: " + draw(
        st.one_of(free_text(), free_text(), st.integers(SUMMARY_MAX, 3000).map(lambda n: "x" * n))
    )
    link = draw(st.sampled_from(["", f"{TICKET}{number}", f"{TICKET}{number}?from=csv&x=%20"]))
    author = draw(st.one_of(st.just(""), free_text(max_size=20, multi_line=False), st.just("a" * 400)))
    return ValidAsk(team, key, when, requested_at, summary, link, author)


def bad_asks(number: int) -> st.SearchStrategy[dict]:
    """A row that must be refused, as {column: value} (values may be any text), or {"raw": text}
    for a record written as is (text after a closing quote), or {"width": n} for the wrong number
    of fields."""
    good = {"team": "checkout", "date": "2026-11-20", "summary": f"Bad {number}", "link": "", "author": ""}

    def with_(**values):
        return st.fixed_dictionaries({name: st.just(v) for name, v in good.items()} | values)

    control = st.sampled_from(CONTROL_CHARACTERS)
    return st.one_of(
        with_(
            date=st.sampled_from(
                [
                    "0001-01-01T00:30:00+01:00",
                    "0001-01-01",
                    "1999-12-31",
                    "1999-12-31T23:59:59+00:00",
                    "2100-01-01",
                    "9999-12-31T23:59:59-01:00",
                ]
            )
        ),
        with_(
            date=st.sampled_from(
                [
                    "2026-13-40",
                    "2026-02-30",
                    "yesterday",
                    "20261120",
                    "",
                    "2026-11-20T25:00",
                    "2026-11",
                    "x" * 5000,
                ]
            )
        ),
        with_(date=st.sampled_from(["2026-11-27", "2026-11-26T09:00:00+00:00", "2027-01-01T00:00"])),
        with_(team=st.sampled_from(["nobody", "paymnts-core", "", "   ", REMOVED_TEAM, "x" * 5000])),
        with_(team=control.map(lambda c: f"nobody{c}")),
        with_(summary=st.sampled_from(["", "   ", "\x00", "\x00\x01 \x7f"])),
        with_(
            link=st.sampled_from(
                [
                    "ftp://files.example.com/x",
                    "javascript:alert(1)",
                    "http://",
                    "https://tickets.example.com/a b",
                    "tickets.example.com/PLAT-1",
                    TICKET + "9" * 1000,
                    "http://[abc",  # urlsplit: Invalid IPv6 URL
                    "https://a\uff03b/c",  # urlsplit: invalid characters under NFKC normalization
                ]
            )
        ),
        st.integers(1, 3).map(lambda drop: {"width": -drop}),
        st.integers(1, 3).map(lambda extra: {"width": extra}),
        st.just({"raw": f'checkout,2026-11-20,"Bad {number}"x,'}),
    )


@st.composite
def drops(draw):
    """The rows of one drop file (valid, bad, blank, repeats) in file order, and an optional
    ending (a quote never closed, a field over the CSV limit) and a neighbouring non-UTF-8 file."""
    valid = [draw(valid_asks(n)) for n in range(draw(st.integers(0, 5)))]
    rows: list[tuple[str, object]] = [("valid", ask) for ask in valid]
    for number in range(draw(st.integers(0, 8))):
        rows.insert(draw(st.integers(0, len(rows))), ("bad", draw(bad_asks(number))))
    for _ in range(draw(st.integers(0, 2))):
        rows.insert(draw(st.integers(0, len(rows))), ("blank", None))
    with_link = [n for n, (kind, row) in enumerate(rows) if kind == "valid" and row.link]
    for _ in range(draw(st.integers(0, 2))) if with_link else ():
        first = draw(st.sampled_from(with_link))
        same = draw(st.booleans())  # an exact repeat (a duplicate) or the same link with other values
        rows.insert(
            draw(st.integers(first + 1, len(rows))), ("repeat" if same else "conflict", rows[first][1])
        )
    ending = draw(st.sampled_from([None, None, "unclosed", "huge"]))
    neighbour = draw(st.sampled_from([None, None, "latin1"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    columns = draw(st.permutations(["team", "date", "summary", "link", "author"]))
    return rows, ending, neighbour, newline, columns


def write_drop(folder: Path, case) -> tuple[list[tuple[ValidAsk, int]], dict[int, str], int, list[str]]:
    """Write the case's files; (valid asks and their lines, bad lines -> kind, duplicates, errors
    expected from outside the rows)."""
    rows, ending, neighbour, newline, columns = case
    builder = CsvBuilder(newline)
    builder.row(columns)
    valid, bad, duplicates, file_errors = [], {}, 0, []
    for kind, row in rows:
        if kind == "blank":
            builder.blank()
        elif kind == "valid":
            values = {"team": row.team, "date": row.when, "summary": row.summary, "link": row.link}
            values["author"] = row.author
            valid.append((row, builder.row([values[c] for c in columns]).line))
        elif kind in ("repeat", "conflict"):
            values = {"team": row.team, "date": row.when, "summary": row.summary, "link": row.link}
            values["author"] = row.author
            if kind == "conflict":
                values["summary"] = "Edited " + row.summary
            line = builder.row([values[c] for c in columns]).line
            if kind == "repeat":
                duplicates += 1
            else:
                bad[line] = "conflict"
        elif "raw" in row:
            bad[builder.raw(row["raw"] + "," * (len(columns) - 4) + newline).line] = "raw"
        elif "width" in row:
            values = ["checkout", "2026-11-20", "Wrong width", "", ""]
            values = (
                values[: len(columns) + row["width"]] if row["width"] < 0 else values + ["x"] * row["width"]
            )
            bad[builder.row(values).line] = "width"
        else:
            bad[builder.row([row[c] for c in columns]).line] = "bad"
    if ending == "unclosed":
        bad[builder.raw(f'checkout,2026-11-20,"never closed{newline}more{newline}').line] = "unclosed"
    elif ending == "huge":
        bad[builder.row(["checkout", "2026-11-20", "y" * (CSV_LIMIT + 10), "", ""]).line] = "huge"
    (folder / "drop.csv").write_text(builder.text(), encoding="utf-8", newline="")
    if neighbour == "latin1":
        latin = b"team,date,summary,link\nreviews,2026-11-20,Caf\xe9 down,\n"
        (folder / "neighbour.csv").write_bytes(latin)
        file_errors.append(f"neighbour.csv: not UTF-8 text at line 2, byte {latin.index(0xE9)} (0xe9)")
    return valid, bad, duplicates, file_errors


def expected_summary(summary: str) -> str:
    cleaned = clean_text(summary)
    return cleaned if len(cleaned) <= SUMMARY_MAX else cleaned[: SUMMARY_MAX - 1].rstrip() + "…"


@store_properties(50)
@given(case=drops())
def test_valid_rows_survive_bad_neighbours_and_a_reimport_adds_nothing(demo, tmp_path, case):
    folder = fresh(demo, tmp_path / "drop")
    valid, bad, duplicates, file_errors = write_drop(folder, case)
    note(f"valid lines {[line for _ask, line in valid]}, bad lines {bad}")

    report = run_import(demo, folder)

    for error in file_errors:
        assert any(e.startswith(error) for e in report.errors), (error, report.errors)
    row_errors = [e for e in report.errors if e.startswith("drop.csv:")]
    assert len(row_errors) + len(file_errors) == len(report.errors), report.errors
    lines = [int(e.split(":")[1]) for e in row_errors]
    assert sorted(lines) == sorted(bad), (bad, report.errors)  # one error per bad row, naming its line
    assert all(len(e.split(": ", 1)[1]) > 0 for e in row_errors)
    assert (report.imported, report.updated, report.duplicates) == (len(valid), 0, duplicates)
    rows = stored(demo)
    assert len(rows) == len(valid)
    by_summary = {row.summary: row for row in rows}
    for ask, line in valid:
        row = by_summary.get(expected_summary(ask.summary))
        assert row is not None, f"the valid row at line {line} was not stored"
        assert (row.team_key, row.requested_at, row.link) == (ask.key, ask.requested_at, ask.link or None)
        assert row.author == (clean_text(ask.author)[:320] or None)
    assert_only_valid_requests(demo)

    before = snapshot(demo)
    again = run_import(demo, folder)
    assert (again.imported, again.updated, again.unchanged) == (0, 0, len(valid))
    assert snapshot(demo) == before
