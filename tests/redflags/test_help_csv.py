"""The CSV drop import of help requests, on real files and the real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from auxeng.redflags.help_csv import CsvImportReport, import_help_requests
from auxeng.settings import Settings, load_settings
from auxeng.store.models import HelpRequestRow, TeamRow
from tests.checkins.store_helpers import DEMO_TEXT, FIRST_RUN, load, moment

NOW = moment(FIRST_RUN, 8)  # 2026-11-26 08:00 UTC
HEADER = "team,date,summary,link\n"
TICKET = "https://tickets.example.com/PLAT-"


def settings_for(path: Path | None) -> Settings:
    env = {"AUXENG_TIMEZONE": "Europe/Berlin"}  # UTC+1 in November
    if path is not None:
        env["AUXENG_HELP_REQUESTS_CSV"] = str(path)
    return load_settings(env)


@pytest.fixture
def demo(store):
    """The store with the demo registry loaded as of the first run."""
    load(store, DEMO_TEXT, FIRST_RUN)
    return store


def run_import(store, path: Path | None, *, now: datetime = NOW) -> CsvImportReport:
    with Session(store) as session:
        report = import_help_requests(session, settings=settings_for(path), now=now)
        session.commit()
    return report


def requests(store) -> list[HelpRequestRow]:
    with Session(store) as session:
        return list(session.scalars(select(HelpRequestRow).order_by(HelpRequestRow.id)))


def by_summary(store) -> dict[str, HelpRequestRow]:
    return {row.summary: row for row in requests(store)}


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def counts(report: CsvImportReport) -> tuple[int, int, int, int]:
    return report.imported, report.updated, report.unchanged, report.duplicates


def test_good_file_is_imported(demo, tmp_path):
    drop = write(
        tmp_path / "asks.csv",
        "team,date,summary,link,author,priority\n"
        f"payments-core,2026-11-20,  Ledger DAG fails on retry  ,{TICKET}101,Ana Lopez,P2\n"
        "checkout,2026-11-20T14:03:00+01:00,How do we rotate the webhook secret?,,,P3\n"
        'pricing,2026-11-26,"Price feed, again",,,\n',
    )
    report = run_import(demo, drop)

    assert report.errors == []
    assert report.files == ["asks.csv"]
    assert report.summary() == {
        "configured": True,
        "files": 1,
        "imported": 3,
        "updated": 0,
        "unchanged": 0,
        "duplicates": 0,
        "errors": 0,
    }
    json.dumps(report.summary())
    rows = by_summary(demo)
    assert set(rows) == {
        "Ledger DAG fails on retry",
        "How do we rotate the webhook secret?",
        "Price feed, again",
    }

    ledger = rows["Ledger DAG fails on retry"]
    assert (ledger.team_key, ledger.source, ledger.source_ref) == ("payments-core", "csv", f"{TICKET}101")
    assert ledger.link == f"{TICKET}101"
    assert ledger.author == "Ana Lopez"
    # a bare date is noon in settings.timezone (Europe/Berlin, UTC+1 in November)
    assert ledger.requested_at == datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    assert ledger.imported_at == ledger.updated_at == NOW

    webhook = rows["How do we rotate the webhook secret?"]
    assert webhook.requested_at == datetime(2026, 11, 20, 13, 3, tzinfo=UTC)
    assert webhook.requested_at.tzinfo is not None
    assert (webhook.link, webhook.author) == (None, None)
    assert webhook.source_ref.startswith("sha256:")

    # today's bare date is accepted although its noon is still ahead of the run
    assert rows["Price feed, again"].requested_at == datetime(2026, 11, 26, 11, 0, tzinfo=UTC)


def test_bad_rows_are_reported_with_file_and_line_and_skipped(demo, tmp_path, caplog):
    with Session(demo) as session:
        session.execute(update(TeamRow).where(TeamRow.key == "loyalty").values(removed_at=NOW))
        session.commit()
    drop = write(
        tmp_path / "march.csv",
        HEADER
        + f"payments-core,2026-11-02,First good row,{TICKET}1\n"  # line 2
        + "paymnts-core,2026-11-03,Typo in the team,\n"  # 3
        + "checkout,2026-13-40,Impossible date,\n"  # 4
        + "checkout,2026-11-27,Tomorrow,\n"  # 5
        + "checkout,2026-11-26T09:00:00+00:00,Later today,\n"  # 6
        + "pricing,2026-11-04,   ,\n"  # 7
        + "pricing,2026-11-05,Bad link,ftp://files.example.com/x\n"  # 8
        + "pricing,2026-11-06,Too few fields\n"  # 9
        + "loyalty,2026-11-07,Removed team,\n"  # 10
        + "\n"  # 11: blank, ignored
        + 'reviews,2026-11-08,"Spans\ntwo lines",\n'  # 12-13
        + f"payments-core,2026-11-02,First good row,{TICKET}1\n"  # 14: duplicate of line 2
        + "fulfillment,2026-11-09,Last good row,\n"  # 15
        + 'nowhere,2026-11-10,"After a second\r\nmulti-line row",\n'  # 16-17
        + f'payments-core,2026-11-02,"Same link, other summary",{TICKET}1\n',  # 18
    )
    with caplog.at_level(logging.WARNING, logger="auxeng.redflags.help_csv"):
        report = run_import(demo, drop)

    assert report.errors == [
        "march.csv:3: unknown team 'paymnts-core'",
        "march.csv:4: bad date '2026-13-40' (expected YYYY-MM-DD or an ISO date-time such as "
        "2026-11-20T14:03:00+01:00)",
        "march.csv:5: date '2026-11-27' is in the future (after 2026-11-26 08:00 UTC)",
        "march.csv:6: date '2026-11-26T09:00:00+00:00' is in the future (after 2026-11-26 08:00 UTC)",
        "march.csv:7: empty summary",
        "march.csv:8: link 'ftp://files.example.com/x' is not an http(s) URL",
        "march.csv:9: 3 field(s), the header has 4",
        "march.csv:10: team 'loyalty' was removed from the registry",
        "march.csv:16: unknown team 'nowhere'",
        "march.csv:18: same link as march.csv:2 but other values; march.csv:2 kept",
    ]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"Help-request CSV: {error}" for error in report.errors]
    assert counts(report) == (3, 0, 0, 1)
    assert report.summary()["errors"] == 10
    assert sorted(by_summary(demo)) == ["First good row", "Last good row", "Spans\ntwo lines"]


def test_reimporting_the_same_file_changes_nothing(demo, tmp_path):
    drop = write(
        tmp_path / "asks.csv",
        HEADER
        + f"payments-core,2026-11-20,Ledger DAG fails,{TICKET}101\n"
        + "checkout,2026-11-21T10:00:00-05:00,Webhook secret,\n"
        + "nobody,2026-11-21,Unknown team,\n",
    )
    first = run_import(demo, drop)
    assert counts(first) == (2, 0, 0, 0)
    before = [(r.id, r.source_ref, r.requested_at, r.summary, r.updated_at) for r in requests(demo)]

    again = run_import(demo, drop, now=NOW + timedelta(days=1))

    assert counts(again) == (0, 0, 2, 0)
    assert again.errors == ["asks.csv:4: unknown team 'nobody'"]
    after = [(r.id, r.source_ref, r.requested_at, r.summary, r.updated_at) for r in requests(demo)]
    assert after == before


def test_an_edited_summary_of_a_row_with_a_link_updates_it(demo, tmp_path):
    drop = tmp_path / "asks.csv"
    write(
        drop, HEADER + f"payments-core,2026-11-20,Ledger DAG fails,{TICKET}101\ncheckout,2026-11-21,Other,\n"
    )
    run_import(demo, drop)
    (ledger_id,) = [r.id for r in requests(demo) if r.link]
    later = NOW + timedelta(days=2)

    write(
        drop,
        HEADER
        + f"payments-core,2026-11-20,Ledger DAG fails on every retry,{TICKET}101\ncheckout,2026-11-21,Other,\n",
    )
    report = run_import(demo, drop, now=later)

    assert counts(report) == (0, 1, 1, 0)
    assert report.errors == []
    rows = requests(demo)
    assert len(rows) == 2
    (ledger,) = [r for r in rows if r.id == ledger_id]
    assert ledger.summary == "Ledger DAG fails on every retry"
    assert (ledger.imported_at, ledger.updated_at) == (NOW, later)


def test_a_directory_imports_every_csv_file_and_a_bad_file_does_not_stop_the_others(demo, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    write(
        folder / "a-team-export.csv",
        "team,date,description,link\npayments-core,2026-11-20,No summary column,\n",
    )
    write(folder / "b-team-export.csv", HEADER + "checkout,2026-11-20,Imported from b,\n")
    write(folder / "c-latin1.csv", HEADER + "pricing,2026-11-20,Café down,\n", encoding="latin-1")
    write(folder / "notes.txt", "not a CSV drop file\n")

    report = run_import(demo, folder)

    assert report.files == ["a-team-export.csv", "b-team-export.csv", "c-latin1.csv"]
    assert len(report.errors) == 2
    assert report.errors[0].startswith("a-team-export.csv:1: missing required column(s) summary")
    assert report.errors[1].startswith("c-latin1.csv: not UTF-8")
    assert counts(report) == (1, 0, 0, 0)
    assert [(r.team_key, r.summary) for r in requests(demo)] == [("checkout", "Imported from b")]


def test_a_bad_header_below_blank_lines_is_named_by_its_line(demo, tmp_path):
    drop = write(tmp_path / "late-header.csv", "\n\nteam,date\npayments-core,2026-11-20\n")

    report = run_import(demo, drop)

    assert report.errors == [
        "late-header.csv:3: missing required column(s) summary in header 'team,date' "
        "(expected team,date,summary[,link]); file skipped"
    ]


def test_a_byte_order_mark_and_header_case_are_accepted(demo, tmp_path):
    drop = write(
        tmp_path / "excel.csv",
        "Team_Key,Requested_On,SUMMARY,Link\r\n"
        f"Payments-Core,2026-11-20,Exported from a spreadsheet,{TICKET}7\r\n",
        encoding="utf-8-sig",
    )
    assert drop.read_bytes().startswith(b"\xef\xbb\xbf")

    report = run_import(demo, drop)

    assert report.errors == []
    assert counts(report) == (1, 0, 0, 0)
    (row,) = requests(demo)
    assert (row.team_key, row.summary, row.link) == (
        "payments-core",
        "Exported from a spreadsheet",
        f"{TICKET}7",
    )


def test_a_long_summary_is_cut_and_a_too_long_link_rejected(demo, tmp_path):
    long_link = TICKET + "9" * 1000
    drop = write(
        tmp_path / "long.csv",
        HEADER + f"checkout,2026-11-20,{'x' * 1500},\ncheckout,2026-11-21,Long link,{long_link}\n",
    )
    report = run_import(demo, drop)

    assert counts(report) == (1, 0, 0, 0)
    assert report.errors == [f"long.csv:3: link '{long_link[:79]}…' is longer than 1000 characters"]
    (row,) = requests(demo)
    assert len(row.summary) == 1000
    assert row.summary.endswith("…")


def test_not_configured_is_an_empty_report(demo, caplog):
    with caplog.at_level(logging.INFO, logger="auxeng.redflags.help_csv"):
        report = run_import(demo, None)

    assert report.summary() == {
        "configured": False,
        "files": 0,
        "imported": 0,
        "updated": 0,
        "unchanged": 0,
        "duplicates": 0,
        "errors": 0,
    }
    assert report.errors == []
    assert requests(demo) == []
    assert any(
        "not configured" in r.getMessage() or "No help-request CSV" in r.getMessage() for r in caplog.records
    )


def test_a_missing_path_is_one_error(demo, tmp_path):
    report = run_import(demo, tmp_path / "nowhere.csv")

    assert report.files == []
    assert len(report.errors) == 1
    assert "nowhere.csv: no such file or directory" in report.errors[0]


HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile" / "csv"


@pytest.mark.parametrize(
    ("name", "errors", "summaries"),
    [
        (
            "help_year_one.csv",
            ["help_year_one.csv:2: date '0001-01-01T00:30:00+01:00' is out of range (2000-2099)"],
            ["After the bad date"],
        ),
        (
            "help_unbalanced_quote.csv",
            [
                "help_unbalanced_quote.csv:2: a quoted field holds what looks like another row (line 3): "
                "an unbalanced quote?; lines 2-3 skipped"
            ],
            ["After the quote"],
        ),
        (
            "help_quote_to_eof.csv",
            [
                "help_quote_to_eof.csv:2: a quote opened in this row is never closed; "
                "lines 2-3 (the end of the file) skipped"
            ],
            [],
        ),
        ("help_nul.csv", [], ["Nul and bell in the summary"]),
    ],
)
def test_hostile_files_are_reported_row_by_row(demo, tmp_path, name, errors, summaries):
    drop = tmp_path / name
    drop.write_bytes((HOSTILE / name).read_bytes())
    report = run_import(demo, drop)
    assert report.errors == errors
    assert sorted(by_summary(demo)) == summaries


def test_a_bad_date_in_one_file_does_not_stop_the_other_files(demo, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.csv").write_bytes((HOSTILE / "help_year_one.csv").read_bytes())
    write(folder / "b.csv", HEADER + "checkout,2026-11-21,From b,\n")
    report = run_import(demo, folder)
    assert len(report.errors) == 1
    assert sorted(by_summary(demo)) == ["After the bad date", "From b"]


@pytest.mark.parametrize("link", ["http://[abc", "https://tickets.example.com]/1", "https://a\uff03b/c"])
def test_a_link_urlsplit_refuses_is_a_row_error_not_a_failed_import(demo, tmp_path, link):
    """urlsplit raises ValueError for an unbalanced IPv6 bracket or a host that NFKC-normalises to
    a delimiter; that was the whole import's exception (found by test_help_csv_properties.py)."""
    drop = write(
        tmp_path / "drop.csv",
        f"team,date,summary,link\ncheckout,2026-11-20,Bad link,{link}\npricing,2026-11-20,Good,\n",
    )
    report = run_import(demo, drop)
    assert report.errors == [f"drop.csv:2: link {link!r} is not an http(s) URL"]
    assert [(row.team_key, row.summary) for row in requests(demo)] == [("pricing", "Good")]
