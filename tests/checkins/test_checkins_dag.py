"""``auxeng_checkins`` runs for real (``dag.test()``) over a sequence of dates, on the demo
data, against a real SMTP server, the Slack stand-in and the response page under uvicorn.

ENG-2026-027 (ended 2026-09-02, due 2026-12-02) walks from its calendar invitation,
through an end-date change (same UID, SEQUENCE 1), the check-in survey on the new due
date, an answer through the page, reminders to the others only, to a closed check-in
with its scores. ENG-2026-038's invitation is cancelled (METHOD:CANCEL) when the
engagement is. Re-runs send nothing new. The ``.ics`` files are read back from the
received emails with the same iCalendar library.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import select

from auxeng.checkins.planning import checkin_uid
from auxeng.store.db import get_engine, session_scope
from auxeng.store.models import CheckinEventRow, CheckinRow
from tests.support.dagruns import at, run
from tests.support.registry_edits import edit_engagement
from tests.web.conftest import KEY_TEXT, live, registry_store, web_app  # noqa: F401

pytestmark = pytest.mark.airflow

ENGAGEMENT, CANCELLED_LATER = "ENG-2026-027", "ENG-2026-038"
LEAD, MANAGER, TECH_LEAD, ENGINEER = (
    "kai.brandt@example.com",
    "rafa.moss@example.com",
    "sana.ng@example.com",
    "teo.okafor@example.com",
)
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def pack(pack_env, live, smtp_connection, slack_api_connection, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AUXENG_SECRET_KEY", KEY_TEXT)
    monkeypatch.setenv("AUXENG_PUBLIC_URL", live.public_url)
    return live


def day_of(dags, moment_day: date) -> None:
    """One day of the pack: registry sync, end detection, check-ins at 08:30, delivery at 12:00
    and 20:00 UTC (working hours in Europe, then in America)."""
    run(dags, "auxeng_sync_registry", at(moment_day, 4))
    run(dags, "auxeng_detect_ended", at(moment_day, 5))
    run(dags, "auxeng_checkins", at(moment_day, 8, 30))
    run(dags, "auxeng_deliver_outbox", at(moment_day, 12))
    run(dags, "auxeng_deliver_outbox", at(moment_day, 20))


def calendars(smtp_server, uid: str) -> list[tuple[str, Calendar]]:
    """(recipient, parsed .ics attachment) of every received email carrying the check-in ``uid``."""
    found = []
    for received in smtp_server.messages:
        for part in received.message.walk():
            if part.get_filename() == "invite.ics":
                cal = Calendar.from_ical(part.get_payload(decode=True))
                (event,) = cal.walk("VEVENT")
                if str(event["UID"]) == uid:
                    found.append((received.rcpt_tos[0], cal))
    return found


def subject_of(received) -> str:
    return " ".join(str(received.message["Subject"]).split())


def event_of(cal: Calendar):
    (event,) = cal.walk("VEVENT")
    return event


def attendees(cal: Calendar) -> set[str]:
    return {str(a).removeprefix("mailto:") for a in event_of(cal).get("ATTENDEE")}


def checkin(store_url, key: str) -> CheckinRow:
    with session_scope(get_engine(store_url)) as session:
        row = session.scalars(select(CheckinRow).where(CheckinRow.engagement_key == key)).one()
        session.expunge(row)
        return row


def test_one_check_in_from_invitation_to_closed_with_a_move_and_a_cancellation(
    dags,
    pack,
    pack_env,
    store_url,
    smtp_server,
    slack_standin,
):
    uid, cancelled_uid = checkin_uid(ENGAGEMENT), checkin_uid(CANCELLED_LATER)

    # Wednesday 25 November: 7 days before the due date, the invitation goes out.
    day_of(dags, date(2026, 11, 25))
    first = calendars(smtp_server, uid)
    assert sorted(to for to, _ in first) == sorted([LEAD, MANAGER, TECH_LEAD])
    for _, cal in first:
        event = event_of(cal)
        assert str(cal["METHOD"]) == "REQUEST"
        assert int(event["SEQUENCE"]) == 0
        assert str(event["ORGANIZER"]) == f"mailto:{LEAD}"
        assert attendees(cal) == {LEAD, MANAGER, TECH_LEAD}
        start, end = event.decoded("DTSTART"), event.decoded("DTEND")
        # 10:00 on the due date in the host manager's (Rafa's) time zone, 30 minutes
        assert start.astimezone(LOS_ANGELES) == datetime(2026, 12, 2, 10, tzinfo=LOS_ANGELES)
        assert end - start == timedelta(minutes=30)
    row = checkin(store_url, ENGAGEMENT)
    assert (row.status, row.due_on, row.sequence, row.calendar_method) == (
        "scheduled",
        date(2026, 12, 2),
        0,
        "REQUEST",
    )

    # Re-running the same day sends nothing new.
    received = len(smtp_server.messages)
    run(dags, "auxeng_checkins", at(date(2026, 11, 25), 8, 30))
    run(dags, "auxeng_deliver_outbox", at(date(2026, 11, 25), 21))
    assert len(smtp_server.messages) == received

    # Friday 27 November: the end date moved by a week: same UID, SEQUENCE 1, new time.
    # ENG-2026-038's invitation (due 4 December) goes out the same day.
    text = pack_env.read_text()
    pack_env.write_text(edit_engagement(text, ENGAGEMENT, "end: 2026-09-02", "end: 2026-09-09"))
    day_of(dags, date(2026, 11, 27))
    updates = [(to, cal) for to, cal in calendars(smtp_server, uid) if int(event_of(cal)["SEQUENCE"]) == 1]
    assert sorted(to for to, _ in updates) == sorted([LEAD, MANAGER, TECH_LEAD])
    for _, cal in updates:
        assert str(cal["METHOD"]) == "REQUEST"
        start = event_of(cal).decoded("DTSTART")
        assert start.astimezone(LOS_ANGELES) == datetime(2026, 12, 9, 10, tzinfo=LOS_ANGELES)
    assert len(calendars(smtp_server, uid)) == 6
    assert len(calendars(smtp_server, cancelled_uid)) == 3

    # Monday 30 November: ENG-2026-038 is cancelled: METHOD:CANCEL, same UID, SEQUENCE 1.
    text = pack_env.read_text()
    block_start = text.index(f"  - key: {CANCELLED_LATER}\n")
    title_line = text.index("\n", text.index("title:", block_start))
    pack_env.write_text(text[: title_line + 1] + "    status: cancelled\n" + text[title_line + 1 :])
    day_of(dags, date(2026, 11, 30))
    cancels = [cal for _, cal in calendars(smtp_server, cancelled_uid) if str(cal["METHOD"]) == "CANCEL"]
    assert len(cancels) == 3
    for cal in cancels:
        assert int(event_of(cal)["SEQUENCE"]) == 1 and str(event_of(cal)["STATUS"]) == "CANCELLED"
    assert checkin(store_url, CANCELLED_LATER).status == "cancelled"
    received = len(smtp_server.messages)
    day_of(dags, date(2026, 12, 1))
    assert not [m for m in smtp_server.messages[received:] if ENGAGEMENT in subject_of(m)]
    assert len(calendars(smtp_server, cancelled_uid)) == 6

    # Wednesday 9 December, the new due date: the check-in survey to the host team's people.
    survey_day = date(2026, 12, 9)
    day_of(dags, survey_day)
    subject = f'Three months on: how is "{_title(store_url)}" going?'
    surveys = {m.rcpt_tos[0]: m.message for m in smtp_server.messages if subject_of(m) == subject}
    assert set(surveys) == {MANAGER, TECH_LEAD, ENGINEER}
    row = checkin(store_url, ENGAGEMENT)
    assert (row.status, row.survey_sent_on, row.invited) == ("surveying", survey_day, 3)

    # Sana answers through the page: uncomfortable, needs help regularly.
    body = surveys[TECH_LEAD].get_body(("plain",)).get_content()
    link = urlparse(next(word for word in body.split() if "/survey/" in word))
    pack.clock.now = datetime.combine(survey_day + timedelta(days=1), time(15), UTC)
    page = pack.client.get(link.path)
    assert page.status_code == 200 and "How comfortable does your team feel maintaining" in page.text
    answer = pack.client.post(
        link.path,
        data={
            "maintainability": "2",
            "help_needed": "regularly",
            "not_taken_over": "The <b>alerting</b> rules",
            "nps": "6",
        },
    )
    assert answer.status_code in (200, 303), answer.text

    # Saturday 12 December: reminders (held to Monday's working hours) to the two others only.
    day_of(dags, date(2026, 12, 12))
    run(dags, "auxeng_deliver_outbox", at(date(2026, 12, 14), 20))
    reminded = {m.rcpt_tos[0] for m in smtp_server.messages if subject_of(m) == f"Reminder: {subject}"}
    assert reminded == {MANAGER, ENGINEER}

    # Thursday 24 December: the 14-day window is over: answered, with the scores.
    day_of(dags, date(2026, 12, 24))
    row = checkin(store_url, ENGAGEMENT)
    assert (row.status, row.responses, row.maintainability_min, row.help_needed, row.nps_mean) == (
        "answered",
        1,
        2,
        "regularly",
        6.0,
    )
    assert row.scores["not_taken_over"] == ["The <b>alerting</b> rules"]

    # Re-running any of those days sends nothing new.
    received = len(smtp_server.messages)
    for again in (date(2026, 11, 25), date(2026, 12, 9), date(2026, 12, 24)):
        run(dags, "auxeng_checkins", at(again, 8, 30))
        run(dags, "auxeng_deliver_outbox", at(again, 20))
    assert len(smtp_server.messages) == received
    with session_scope(get_engine(store_url)) as session:
        events = list(
            session.scalars(
                select(CheckinEventRow.event)
                .join(CheckinRow, CheckinRow.id == CheckinEventRow.checkin_id)
                .where(CheckinRow.engagement_key == ENGAGEMENT)
                .order_by(CheckinEventRow.id)
            )
        )
    assert events == ["created", "calendar_request", "moved", "calendar_request", "surveyed", "closed"]


def _title(store_url) -> str:
    from auxeng.store.models import EngagementRow

    with session_scope(get_engine(store_url)) as session:
        return session.get(EngagementRow, ENGAGEMENT).title


def test_the_override_dag_reschedules_one_check_in_and_refuses_a_bad_request(
    dags, pack, store_url, smtp_server, slack_standin
):
    uid = checkin_uid(ENGAGEMENT)
    day_of(dags, date(2026, 11, 25))
    assert len(calendars(smtp_server, uid)) == 3

    moment = at(date(2026, 11, 26), 9)
    run(
        dags,
        "auxeng_checkin_override",
        moment,
        engagement=ENGAGEMENT,
        action="reschedule",
        new_due_date="2026-12-16",
        reason="host manager on leave",
    )
    run(dags, "auxeng_deliver_outbox", at(date(2026, 11, 26), 20))
    updates = [cal for _, cal in calendars(smtp_server, uid) if int(event_of(cal)["SEQUENCE"]) == 1]
    assert len(updates) == 3
    for cal in updates:
        start = event_of(cal).decoded("DTSTART")
        assert start.astimezone(LOS_ANGELES) == datetime(2026, 12, 16, 10, tzinfo=LOS_ANGELES)
    row = checkin(store_url, ENGAGEMENT)
    assert (row.due_on, row.due_override, row.override_reason, row.override_by) == (
        date(2026, 12, 16),
        date(2026, 12, 16),
        "host manager on leave",
        "dag_test",  # the run's triggering user, as Airflow records it for dag.test()
    )
    # The daily run keeps the override (the end date alone would say 2 December).
    received = len(smtp_server.messages)
    day_of(dags, date(2026, 11, 27))
    assert len(calendars(smtp_server, uid)) == 6
    assert checkin(store_url, ENGAGEMENT).due_on == date(2026, 12, 16)
    assert not [m for m in smtp_server.messages[received:] if str(uid) in m.message.as_string()]

    dag = dags.dags["auxeng_checkin_override"]
    failed = dag.test(
        logical_date=at(date(2026, 11, 27), 10),
        run_conf={"engagement": "ENG-1999-404", "action": "skip", "new_due_date": None, "reason": "typo"},
    )
    assert failed.state == "failed"
    states = {ti.task_id: ti.state for ti in failed.get_task_instances()}
    assert states["apply_override"] == "failed" and states["update_calendar"] == "upstream_failed"
    assert checkin(store_url, ENGAGEMENT).status == "scheduled"


def test_a_dry_run_of_the_check_ins_reports_and_changes_nothing(dags, pack, store_url, smtp_server):
    run(dags, "auxeng_sync_registry", at(date(2026, 11, 26), 4))
    run(dags, "auxeng_detect_ended", at(date(2026, 11, 26), 5))
    dag = dags.dags["auxeng_checkins"]
    for task in dag.tasks:
        task.retries = 0
    dag_run = dag.test(logical_date=at(date(2026, 11, 26), 8, 30), run_conf={"dry_run": True})
    assert dag_run.state == "success"
    (schedule,) = [ti for ti in dag_run.get_task_instances() if ti.task_id == "schedule_checkins"]
    assert schedule.xcom_pull(task_ids="schedule_checkins")["calendar_invitations"] == 4
    with session_scope(get_engine(store_url)) as session:
        assert session.scalars(select(CheckinRow)).first() is None
    assert smtp_server.messages == []
