"""Importing survey answers from CSV (``python -m auxeng import-responses FILE``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from auxeng.messaging.tokens import response_ref
from auxeng.store.db import session_scope
from auxeng.store.models import SurveyInvitationRow, SurveyResponseRow
from auxeng.surveys.responses import CSV_COLUMNS, import_responses_csv
from tests.conftest import REPO
from tests.web.conftest import (
    ANONYMOUS_ENGAGEMENT,
    ANONYMOUS_HOST_PERSON,
    AUXENG_PERSON,
    ENGAGEMENT,
    HOST_PERSON,
    KEY,
    KEY_TEXT,
    NOW,
    count,
    invite,
)

HEADER = ",".join(CSV_COLUMNS)


def _csv(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def _import(engine, text, *, now=NOW):
    return import_responses_csv(engine, text, now=now, key=KEY, file_name="answers.csv")


def _responses(engine) -> list[SurveyResponseRow]:
    with session_scope(engine) as session:
        return list(session.scalars(select(SurveyResponseRow).order_by(SurveyResponseRow.id)))


def _invitations(engine) -> list[SurveyInvitationRow]:
    with session_scope(engine) as session:
        return list(session.scalars(select(SurveyInvitationRow).order_by(SurveyInvitationRow.id)))


GOOD_ROWS = (
    f'{ENGAGEMENT},{HOST_PERSON},post_engagement,9,Pairing,"Longer handover, please",yes,partly,2026-11-25',
    f"{ENGAGEMENT},{AUXENG_PERSON.upper()},retro,7,,Start earlier,partly,yes,2026-11-26T15:00",
    f"{ANONYMOUS_ENGAGEMENT},{ANONYMOUS_HOST_PERSON},post_engagement,3,,Too short,no,no,",
)


def test_good_rows_create_invitations_and_responses(registry_store):
    report = _import(registry_store, _csv(*GOOD_ROWS))

    assert report.errors == []
    assert (report.created, report.updated, report.unchanged) == (3, 0, 0)
    host, retro, anonymous = _invitations(registry_store)
    assert (host.survey, host.engagement_key, host.email, host.side, host.role) == (
        "post_engagement",
        ENGAGEMENT,
        HOST_PERSON,
        "host",
        "tech_lead",
    )
    assert host.status == "invited"
    assert host.invited_on == date(2026, 11, 25)
    submitted = datetime(2026, 11, 25, tzinfo=UTC)  # the program's time zone is UTC in tests
    assert host.closes_at == submitted + timedelta(days=21)
    assert host.answered_at == submitted
    assert (retro.email, retro.side) == (AUXENG_PERSON, "auxeng")

    first, second, third = _responses(registry_store)
    assert first.invitation_id == host.id
    assert first.respondent_email == HOST_PERSON
    assert first.source == "csv"
    assert first.nps == 9
    assert first.answers == {
        "went_well": "Pairing",
        "to_change": "Longer handover, please",
        "business_goals": "yes",
        "technical_goals": "partly",
    }
    assert first.submitted_at == submitted
    assert first.response_ref == response_ref(host.id, key=KEY)
    assert second.survey == "retro"
    assert second.submitted_at == datetime(2026, 11, 26, 15, tzinfo=UTC)
    assert (third.invitation_id, third.respondent_email) == (None, None)
    assert third.response_ref == response_ref(anonymous.id, key=KEY)
    assert anonymous.answered_at is not None


def test_an_existing_invitation_is_used(registry_store):
    invitation_id = invite(registry_store)
    report = _import(registry_store, _csv(GOOD_ROWS[0]))
    assert report.created == 1
    assert [row.id for row in _invitations(registry_store)] == [invitation_id]
    (row,) = _responses(registry_store)
    assert row.invitation_id == invitation_id


def test_bad_rows_are_reported_each_with_its_error_and_good_rows_are_saved(registry_store):
    text = _csv(
        GOOD_ROWS[0],
        f"{ENGAGEMENT},chidi.berg@example.com,post_engagement,11,,,yes,yes,",
        "ENG-1999-001,x@example.com,post_engagement,5,,,yes,yes,",
        f"{ENGAGEMENT},nobody@example.com,post_engagement,5,,,yes,yes,",
        f"{ENGAGEMENT},{AUXENG_PERSON},post_engagement,5,,,yes,yes,",
        f"{ENGAGEMENT},{HOST_PERSON},exit_interview,5,,,yes,yes,",
        f"{ENGAGEMENT},chidi.berg@example.com,post_engagement,5,,,yes,yes,yesterday",
        f"{ENGAGEMENT},chidi.berg@example.com,post_engagement,5,,,,maybe,",
        f"{ENGAGEMENT},{HOST_PERSON},post_engagement,8,,,yes,yes,2026-11-25",
        f"{ENGAGEMENT},chidi.berg@example.com,post_engagement,5,,,yes,yes,2026-12-01",
        f"{ENGAGEMENT},chidi.berg@example.com,post_engagement,5",
        f"{ENGAGEMENT},chidi.berg@example.com,post_engagement,ten,,{'x' * 5001},yes,yes,",
    )
    report = _import(registry_store, text)

    assert report.errors == [
        f"answers.csv:3: ({ENGAGEMENT}, chidi.berg@example.com) nps: 11 is out of range 0-10",
        "answers.csv:4: (ENG-1999-001, x@example.com) engagement: ENG-1999-001 is not in the store (run sync-registry?)",
        f"answers.csv:5: ({ENGAGEMENT}, nobody@example.com) email: nobody@example.com is not a member of {ENGAGEMENT}",
        f"answers.csv:6: ({ENGAGEMENT}, {AUXENG_PERSON}) email: {AUXENG_PERSON} is on the auxeng side of {ENGAGEMENT}; "
        "the post_engagement survey is for the host side",
        f"answers.csv:7: ({ENGAGEMENT}, {HOST_PERSON}) survey: 'exit_interview' is not one of post_engagement, retro "
        "(the surveys whose answers this CSV format carries)",
        f"answers.csv:8: ({ENGAGEMENT}, chidi.berg@example.com) submitted_at: 'yesterday' is not an ISO date "
        "(2026-11-30) or date-time (2026-11-30T14:05)",
        f"answers.csv:9: ({ENGAGEMENT}, chidi.berg@example.com) business_goals: an answer is required; "
        "technical_goals: 'maybe' is not one of yes, partly, no",
        f"answers.csv:10: ({ENGAGEMENT}, {HOST_PERSON}) the same engagement, email and survey as line 2",
        f"answers.csv:11: ({ENGAGEMENT}, chidi.berg@example.com) submitted_at: 2026-12-01 is in the future",
        "answers.csv:12: has 4 values but the header has 9 columns",
        f"answers.csv:13: ({ENGAGEMENT}, chidi.berg@example.com) nps: 'ten' is not a whole number; "
        "to_change: is 5,001 characters long; the limit is 5,000",
    ]
    assert (report.created, report.updated, report.unchanged) == (1, 0, 0)
    (row,) = _responses(registry_store)
    assert (row.respondent_email, row.nps) == (HOST_PERSON, 9)
    assert len(_invitations(registry_store)) == 1


def test_reimporting_the_same_file_changes_nothing(registry_store, tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text(_csv(*GOOD_ROWS), encoding="utf-8")
    first = import_responses_csv(registry_store, path, now=NOW, key=KEY)
    assert first.created == 3
    before = [
        (r.id, r.nps, r.answers, r.submitted_at, r.updated_at, r.source) for r in _responses(registry_store)
    ]
    invitations_before = [
        (i.id, i.answered_at, i.updated_at, i.closes_at) for i in _invitations(registry_store)
    ]

    again = import_responses_csv(registry_store, path, now=NOW + timedelta(days=40), key=KEY)

    assert again.errors == []
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    after = [
        (r.id, r.nps, r.answers, r.submitted_at, r.updated_at, r.source) for r in _responses(registry_store)
    ]
    assert after == before
    assert [(i.id, i.answered_at, i.updated_at, i.closes_at) for i in _invitations(registry_store)] == (
        invitations_before
    )


def test_a_changed_row_updates_the_response(registry_store):
    _import(registry_store, _csv(*GOOD_ROWS))
    changed = GOOD_ROWS[0].replace(",9,", ",10,")
    report = _import(registry_store, _csv(changed, *GOOD_ROWS[1:]), now=NOW + timedelta(days=1))
    assert (report.created, report.updated, report.unchanged) == (0, 1, 2)
    assert _responses(registry_store)[0].nps == 10
    assert _responses(registry_store)[0].updated_at == NOW + timedelta(days=1)
    assert len(_responses(registry_store)) == 3


def test_an_answer_submitted_after_the_survey_closed_is_refused(registry_store):
    invite(registry_store, closes_at=datetime(2026, 11, 20, 9, tzinfo=UTC))
    late = f"{ENGAGEMENT},{HOST_PERSON},post_engagement,9,,,yes,yes,2026-11-21"
    in_time = f"{ENGAGEMENT},{HOST_PERSON},post_engagement,9,,,yes,yes,2026-11-19"
    report = _import(registry_store, _csv(late))
    assert report.errors == [
        f"answers.csv:2: ({ENGAGEMENT}, {HOST_PERSON}) the survey closed on 2026-11-20 09:00 UTC"
    ]
    assert _responses(registry_store) == []
    assert _import(registry_store, _csv(in_time)).created == 1


def test_a_bad_header_is_one_clear_error(registry_store):
    report = _import(
        registry_store, "engagement,email,survey,score,went_well\nENG-2026-031,a@b.c,retro,5,x\n"
    )
    assert len(report.errors) == 1
    (error,) = report.errors
    assert "missing column(s) nps, to_change, business_goals, technical_goals" in error
    assert "unknown column(s) 'score'" in error
    assert (report.created, report.updated, report.unchanged) == (0, 0, 0)
    assert count(registry_store, SurveyResponseRow) == 0

    assert error.startswith("answers.csv:1: header: missing column(s)")
    assert _import(registry_store, "").errors[0].startswith("answers.csv: the file is empty")
    text_only = import_responses_csv(registry_store, "engagement\n", now=NOW, key=KEY)
    assert text_only.errors[0].startswith("<text>:1: header: missing column(s) email")


def test_header_names_are_forgiving_and_submitted_at_is_optional(registry_store):
    header = "\ufeff Engagement ,EMAIL,survey,nps,went_well,to_change,business_goals,technical_goals"
    report = _import(registry_store, f"{header}\n{ENGAGEMENT},{HOST_PERSON},post_engagement,9,,,yes,yes\n")
    assert report.errors == []
    assert report.created == 1
    assert _responses(registry_store)[0].submitted_at == NOW


def test_bad_rows_are_named_by_the_file_line_where_they_start_multi_line_comments_counted(registry_store):
    text = _csv(
        f'{ENGAGEMENT},{HOST_PERSON},post_engagement,9,"line one\nline two\nline three",,yes,yes,',
        "",
        f"{ENGAGEMENT},chidi.berg@example.com,post_engagement,11,,,yes,yes,",
        f'{ENGAGEMENT},{HOST_PERSON},post_engagement,8,"again\r\non two lines",,yes,yes,',
        f"{ENGAGEMENT},chidi.berg@example.com,post_engagement,12,,,yes,yes,",
    )
    report = _import(registry_store, text)
    assert report.errors == [
        f"answers.csv:6: ({ENGAGEMENT}, chidi.berg@example.com) nps: 11 is out of range 0-10",
        f"answers.csv:7: ({ENGAGEMENT}, {HOST_PERSON}) the same engagement, email and survey as line 2",
        f"answers.csv:9: ({ENGAGEMENT}, chidi.berg@example.com) nps: 12 is out of range 0-10",
    ]
    assert _responses(registry_store)[0].answers["went_well"] == "line one\nline two\nline three"


def _cli(store_url: str, path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AUXENG_"))}
    env.update(
        PYTHONPATH=str(REPO / "plugins"),
        AIRFLOW_HOME=os.environ["AIRFLOW_HOME"],
        AIRFLOW_CONN_AUXENG_DB=json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": store_url}}),
        AUXENG_SECRET_KEY=KEY_TEXT,
    )
    return subprocess.run(
        [sys.executable, "-m", "auxeng", "import-responses", str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_prints_the_report_and_fails_on_bad_rows(registry_store, store_url, tmp_path):
    good = f"{ENGAGEMENT},{HOST_PERSON},post_engagement,9,,,yes,yes,"
    bad = f"{ENGAGEMENT},chidi.berg@example.com,post_engagement,11,,,yes,yes,"
    path = tmp_path / "answers.csv"
    path.write_text(_csv(good, bad), encoding="utf-8")

    failed = _cli(store_url, path)
    assert failed.returncode == 1, failed.stderr
    assert "1 created, 0 updated, 0 unchanged, 1 row(s) rejected" in failed.stdout
    assert f"{path}:3: ({ENGAGEMENT}, chidi.berg@example.com) nps: 11 is out of range 0-10" in failed.stderr

    path.write_text(_csv(good), encoding="utf-8")
    passed = _cli(store_url, path)
    assert passed.returncode == 0, passed.stderr
    assert "0 created, 0 updated, 1 unchanged, 0 row(s) rejected" in passed.stdout
    (row,) = _responses(registry_store)
    assert row.response_ref == response_ref(row.invitation_id, key=KEY)

    missing = _cli(store_url, tmp_path / "nope.csv")
    assert missing.returncode == 1
    assert "no such file" in missing.stderr


def test_check_in_answers_are_not_importable_from_the_end_of_engagement_csv_format(registry_store):
    report = _import(registry_store, _csv(f"{ENGAGEMENT},{HOST_PERSON},checkin,8,,,yes,yes,"))

    assert report.created == 0
    assert report.errors == [
        f"answers.csv:2: ({ENGAGEMENT}, {HOST_PERSON}) survey: 'checkin' is not one of post_engagement, retro "
        "(the surveys whose answers this CSV format carries)"
    ]


HOSTILE = REPO / "tests" / "data" / "hostile" / "csv"


def test_an_out_of_range_submitted_at_skips_only_its_row(registry_store):
    report = import_responses_csv(registry_store, HOSTILE / "responses_year_one.csv", now=NOW, key=KEY)
    assert report.errors == [
        f"responses_year_one.csv:2: ({ENGAGEMENT}, {HOST_PERSON}) submitted_at: '0001-01-01T00:30:00+01:00' "
        "is out of range "
        "(2000-2099)"
    ]
    assert report.created == 1


def test_an_unbalanced_quote_is_reported_not_merged(registry_store):
    report = import_responses_csv(
        registry_store, HOSTILE / "responses_unbalanced_quote.csv", now=NOW, key=KEY
    )
    assert report.errors == [
        "responses_unbalanced_quote.csv:2: a quoted field holds what looks like another row (line 3): "
        "an unbalanced quote?; lines 2-3 skipped"
    ]
    assert (report.created, report.updated, report.unchanged) == (0, 0, 0)


def test_files_that_are_not_utf8_are_one_clear_error(registry_store, tmp_path):
    latin = import_responses_csv(registry_store, HOSTILE / "responses_latin1.csv", now=NOW, key=KEY)
    assert latin.errors == [
        "responses_latin1.csv: the file is not UTF-8 text at line 2, byte 111 (0xe9); save it as UTF-8 CSV"
    ]
    utf16 = import_responses_csv(registry_store, HOSTILE / "responses_utf16.csv", now=NOW, key=KEY)
    assert utf16.errors == [
        "responses_utf16.csv: the file is UTF-16 text (it starts with a UTF-16 byte-order mark): save it as UTF-8 CSV"
    ]


def test_a_huge_field_is_a_problem_not_a_traceback(registry_store):
    report = _import(
        registry_store, _csv(f"{ENGAGEMENT},{HOST_PERSON},post_engagement,9,{'x' * 140_000},,yes,yes,")
    )
    assert report.errors == [
        "answers.csv:2: a field longer than 131,072 characters (an unbalanced quote?); the rest of the file is skipped"
    ]


def test_a_csv_row_never_overwrites_an_answer_from_the_survey_page(registry_store):
    from auxeng.surveys.responses import record_response

    invitation_id = invite(registry_store)
    record_response(
        registry_store,
        invitation_id,
        {"nps": "4", "business_goals": "no", "technical_goals": "no"},
        now=NOW - timedelta(days=1),
        key=KEY,
    )
    report = _import(registry_store, _csv(GOOD_ROWS[0]))
    assert report.errors == []
    assert report.skipped == [
        f"answers.csv:2: ({ENGAGEMENT}, {HOST_PERSON}) skipped: answered on the survey page (web) on 2026-11-26; "
        "a CSV row never overwrites that answer"
    ]
    (row,) = _responses(registry_store)
    assert (row.source, row.nps) == ("web", 4)


def test_submitted_at_before_the_invitation_is_refused(registry_store):
    invite(registry_store)
    report = _import(
        registry_store, _csv(f"{ENGAGEMENT},{HOST_PERSON},post_engagement,9,,,yes,yes,2026-01-05")
    )
    assert len(report.errors) == 1
    assert "is before the invitation was queued" in report.errors[0]
    assert _responses(registry_store) == []


def test_nul_in_a_comment_and_key_is_dropped(registry_store):
    report = _import(
        registry_store, _csv(f"{ENGAGEMENT}\x00,{HOST_PERSON},post_engagement,9,Nul\x00here,,yes,yes,")
    )
    assert report.errors == []
    (row,) = _responses(registry_store)
    assert row.answers["went_well"] == "Nulhere"
