"""Three-month check-ins on the store: scheduling, calendar invitations, moves, cancellations, survey, close."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from auxeng.checkins import planning
from auxeng.messaging import tokens
from auxeng.settings import load_settings
from auxeng.store.models import (
    CheckinEventRow,
    CheckinRow,
    OptOutRow,
    SurveyInvitationRow,
)
from auxeng.surveys import invitations
from auxeng.surveys.responses import record_response
from auxeng.vocabulary import SurveyKind
from tests.checkins.store_helpers import (
    DEMO_TEXT,
    FIRST_RUN,
    KEY,
    LOS_ANGELES,
    calendar,
    checkin,
    load,
    mark_sent,
    moment,
    outbox,
    outbox_count,
    run,
    vevent,
)
from tests.support.registry_edits import edit_engagement

BERLIN = ZoneInfo("Europe/Berlin")

# Check-ins whose invitation day has come by 2026-11-26 while their meeting day is still ahead:
# key -> (organizer, attendees in order, meeting time zone, meeting day).
INVITED_ON_FIRST_RUN = {
    "ENG-2026-028": (
        "oscar.lee@example.com",
        ["oscar.lee@example.com", "olga.dahl@example.com", "pavel.evans@example.com"],
        "Europe/Berlin",
        date(2026, 11, 27),
    ),
    "ENG-2026-026": (  # due Saturday 2026-11-28: the meeting is on Monday
        "judy.amari@example.com",
        ["judy.amari@example.com", "wen.moss@example.com", "xavi.ng@example.com"],
        "America/Los_Angeles",
        date(2026, 11, 30),
    ),
    "ENG-2026-025": (  # ended 2026-08-31: due 2026-11-30 (month-end clamp)
        "ivan.petrov@example.com",
        ["ivan.petrov@example.com", "carol.moss@example.com", "dan.ng@example.com"],
        "America/New_York",
        date(2026, 11, 30),
    ),
    "ENG-2026-027": (
        "kai.brandt@example.com",
        ["kai.brandt@example.com", "rafa.moss@example.com", "sana.ng@example.com"],
        "America/Los_Angeles",
        date(2026, 12, 2),
    ),
}
SCHEDULED_ON_FIRST_RUN = {
    "ENG-2026-028": date(2026, 11, 27),
    "ENG-2026-026": date(2026, 11, 28),
    "ENG-2026-025": date(2026, 11, 30),
    "ENG-2026-027": date(2026, 12, 2),
    "ENG-2026-038": date(2026, 12, 4),
    "ENG-2026-030": date(2026, 12, 14),
    "ENG-2026-031": date(2027, 2, 20),
    "ENG-2026-039": date(2027, 2, 20),
    "ENG-2026-032": date(2027, 2, 23),
    "ENG-2026-033": date(2027, 2, 25),
}
MISSED_ON_FIRST_RUN = {
    *(f"ENG-2025-{n:03d}" for n in range(1, 17) if n != 7),  # ENG-2025-007 is cancelled
    *("ENG-2026-017", "ENG-2026-018", "ENG-2026-019", "ENG-2026-021"),
    *("ENG-2026-022", "ENG-2026-023", "ENG-2026-024"),
}
CHECKIN_ANSWER = {"maintainability": 2, "help_needed": "regularly", "not_taken_over": "alerts", "nps": 5}

# A small program for the people edge cases: a team without a manager, a manager without a
# time zone (the tech lead has one), nobody with a time zone (the program's zone applies), and
# a manager and tech lead in different zones (the manager's applies).
SMALL_REGISTRY = """\
program:
  name: AuxEng
  managers:
    - {name: Dana Ruiz, email: dana.ruiz@example.com}
teams:
  - {key: orphans, name: Orphan Team}
  - key: no-zone
    name: No Zone
    manager: {name: Goran Schmidt, email: goran.schmidt@example.com}
  - key: nobody-zoned
    name: Nobody Zoned
    manager: {name: Mona Berg, email: mona.berg@example.com}
  - key: zoned
    name: Zoned
    manager: {name: Mia Costa, email: mia.costa@example.com}
people:
  - {email: lead.one@example.com, name: Lead One, timezone: Europe/Berlin}
  - {email: tech.one@example.com, name: Tech One, timezone: Asia/Tokyo}
  - {email: goran.schmidt@example.com, name: Goran Schmidt}
  - {email: tech.two@example.com, name: Tech Two, timezone: America/Chicago}
  - {email: mia.costa@example.com, name: Mia Costa, timezone: America/Sao_Paulo}
engagements:
  - key: ENG-A
    title: "No manager"
    host_team: orphans
    start: 2026-07-01
    end: 2026-08-31
    auxeng:
      - {email: lead.one@example.com, role: engineer, lead: true}
    host:
      - {email: tech.one@example.com, role: tech_lead}
      - {email: dev.one@example.com, role: engineer}
  - key: ENG-B
    title: "Manager without a time zone"
    host_team: no-zone
    start: 2026-07-01
    end: 2026-08-31
    auxeng:
      - {email: lead.one@example.com, role: engineer, lead: true}
    host:
      - {email: tech.two@example.com, role: tech_lead}
  - key: ENG-C
    title: "Nobody has a time zone"
    host_team: nobody-zoned
    start: 2026-07-01
    end: 2026-08-31
    auxeng:
      - {email: lead.one@example.com, role: engineer, lead: true}
    host:
      - {email: tech.three@example.com, role: tech_lead}
  - key: ENG-D
    title: "Manager and tech lead in different time zones"
    host_team: zoned
    start: 2026-07-01
    end: 2026-08-31
    auxeng:
      - {email: lead.one@example.com, role: engineer, lead: true}
    host:
      - {email: tech.one@example.com, role: tech_lead}
"""
PARIS_SETTINGS = load_settings(
    {"AUXENG_PUBLIC_URL": "https://airflow.example.com/auxeng", "AUXENG_TIMEZONE": "Europe/Paris"}
)


def all_checkins(store) -> dict[str, CheckinRow]:
    with Session(store) as session:
        return {row.engagement_key: row for row in session.scalars(select(CheckinRow))}


def events(store, engagement: str) -> list[tuple[str, dict]]:
    with Session(store) as session:
        return [
            (event.event, event.detail)
            for event in session.scalars(
                select(CheckinEventRow)
                .join(CheckinRow, CheckinRow.id == CheckinEventRow.checkin_id)
                .where(CheckinRow.engagement_key == engagement)
                .order_by(CheckinEventRow.id)
            )
        ]


def attendee_emails(event) -> list[str]:
    found = event["ATTENDEE"]
    return [str(a).removeprefix("mailto:") for a in (found if isinstance(found, list) else [found])]


def invitation_rows(
    store, engagement: str, survey: str = SurveyKind.CHECKIN
) -> dict[str, SurveyInvitationRow]:
    with Session(store) as session:
        rows = session.scalars(
            select(SurveyInvitationRow).where(
                SurveyInvitationRow.engagement_key == engagement, SurveyInvitationRow.survey == survey
            )
        )
        return {row.email: row for row in rows}


def surveyed(store, as_of: date) -> None:
    load(store, DEMO_TEXT, as_of)
    run(store, planning.schedule_checkins, as_of)
    run(store, planning.send_checkin_surveys, as_of)


# --- pure -------------------------------------------------------------------------------


def test_outcome_of_no_responses_has_no_scores():
    assert planning.outcome([]) == {
        "responses": 0,
        "maintainability_min": None,
        "maintainability_mean": None,
        "help_needed": None,
        "help_counts": {},
        "nps_mean": None,
        "nps": [],
        "not_taken_over": [],
    }


def test_outcome_takes_lowest_and_mean_comfort_the_most_worrying_help_answer_and_mean_nps():
    answers = [
        (9, {"maintainability": 4, "help_needed": "never"}),
        (6, {"maintainability": 2, "help_needed": "once_or_twice", "not_taken_over": "the alerts"}),
        (8, {"maintainability": 5, "help_needed": "never", "not_taken_over": ""}),
        (None, {"help_needed": "once_or_twice"}),
    ]
    assert planning.outcome(answers) == {
        "responses": 4,
        "maintainability_min": 2,
        "maintainability_mean": 3.67,
        "help_needed": "once_or_twice",
        "help_counts": {"never": 2, "once_or_twice": 2},
        "nps_mean": 7.67,
        "nps": [9, 6, 8],
        "not_taken_over": ["the alerts"],
    }
    worst = planning.outcome([(10, {"help_needed": "never"}), (3, {"help_needed": "regularly"})])
    assert (worst["help_needed"], worst["nps_mean"], worst["maintainability_min"]) == ("regularly", 6.5, None)


def test_checkin_uid_is_stable_per_engagement():
    assert planning.checkin_uid("ENG-2026-028") == "checkin-eng-2026-028@auxeng-followups"
    assert planning.checkin_uid("eng-2026-028") == planning.checkin_uid("ENG-2026-028")
    assert planning.checkin_uid("ENG-2026-027") != planning.checkin_uid("ENG-2026-028")


# --- first run on the demo registry -----------------------------------------------------


def test_first_run_creates_one_checkin_per_ended_engagement_and_records_stale_ones_as_missed(demo):
    report = run(demo, planning.schedule_checkins, FIRST_RUN)
    rows = all_checkins(demo)
    assert report.created == len(rows) == 32
    assert set(report.missed) == MISSED_ON_FIRST_RUN
    assert {k for k, c in rows.items() if c.status == "missed"} == MISSED_ON_FIRST_RUN
    assert {k: c.due_on for k, c in rows.items() if c.status == "scheduled"} == SCHEDULED_ON_FIRST_RUN
    for cancelled_or_running in ("ENG-2025-007", "ENG-2026-029", "ENG-2026-036", "ENG-2026-034"):
        assert cancelled_or_running not in rows
    old = rows["ENG-2025-004"]  # due 2025-11-28: a year before the first run
    assert (old.due_on, old.calendar_method, old.survey_sent_on) == (date(2025, 11, 28), None, None)
    assert old.note.startswith("due on 2025-11-28, more than 30 days before 2026-11-26")
    late = rows["ENG-2026-038"]  # invitation day is tomorrow
    assert (late.invite_on, late.calendar_method, late.sequence) == (date(2026, 11, 27), None, 0)
    assert rows["ENG-2026-028"].uid == "checkin-eng-2026-028@auxeng-followups"


def test_first_run_invites_lead_manager_and_tech_lead_only_where_the_invitation_day_came(demo):
    report = run(demo, planning.schedule_checkins, FIRST_RUN)
    assert (report.invitations, report.updates, report.cancellations) == (4, 0, 0)
    assert report.messages == 12
    rows = outbox(demo)
    assert {row.engagement_key for row in rows} == set(INVITED_ON_FIRST_RUN)  # nothing for missed ones
    assert {(row.kind, row.channel, row.status) for row in rows} == {("checkin_calendar", "email", "pending")}
    for key, (_organizer, attendees, _zone, _day) in INVITED_ON_FIRST_RUN.items():
        assert [row.recipient for row in calendar(demo, key)] == attendees, key
        assert checkin(demo, key).calendar_method == "REQUEST"


def test_calendar_invitation_is_a_request_at_ten_in_the_host_managers_time_zone(demo):
    run(demo, planning.schedule_checkins, FIRST_RUN)
    for key, (organizer, attendees, zone, day) in INVITED_ON_FIRST_RUN.items():
        row = checkin(demo, key)
        assert (row.slot_timezone, row.sequence) == (zone, 0), key
        for message in calendar(demo, key):
            assert message.payload["calendar"]["method"] == "REQUEST"
            cal, event = vevent(message)
            assert str(cal["METHOD"]) == "REQUEST"
            assert str(event["UID"]) == planning.checkin_uid(key)
            assert int(event["SEQUENCE"]) == 0
            assert str(event["STATUS"]) == "CONFIRMED"
            assert str(event["ORGANIZER"]) == f"mailto:{organizer}"
            assert attendee_emails(event) == attendees
            start, end = event.decoded("DTSTART"), event.decoded("DTEND")
            assert start.astimezone(ZoneInfo(zone)) == datetime.combine(day, time(10), ZoneInfo(zone)), key
            assert end - start == timedelta(minutes=30)
    olga = calendar(demo, "ENG-2026-028")[1]
    assert olga.subject == (
        'Three-month check-in: "CI/CD for Fulfillment" on Friday 27 November 2026, 10:00 (Europe/Berlin)'
    )


def test_a_second_run_the_same_day_queues_nothing_new(scheduled):
    before = outbox_count(scheduled)
    again = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 14))
    assert (again.created, again.invitations, again.messages, again.withdrawn) == (0, 0, 0, 0)
    assert outbox_count(scheduled) == before == 12
    assert [e for e, _ in events(scheduled, "ENG-2026-028")] == ["created", "calendar_request"]


# --- moves and cancellations ------------------------------------------------------------


def move_027(store) -> None:
    moved = edit_engagement(DEMO_TEXT, "ENG-2026-027", "    end: 2026-09-02\n", "    end: 2026-09-09\n")
    load(store, moved, FIRST_RUN)


def test_end_date_moved_after_the_invitation_went_out_sends_an_update_with_sequence_1(scheduled):
    mark_sent(scheduled)
    move_027(scheduled)
    report = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 13))
    assert (report.moved, report.updates, report.invitations, report.withdrawn) == (1, 1, 0, 0)
    row = checkin(scheduled, "ENG-2026-027")
    assert (row.end_date, row.due_on, row.invite_on) == (
        date(2026, 9, 9),
        date(2026, 12, 9),
        date(2026, 12, 2),
    )
    assert (row.sequence, row.calendar_method, row.calendar_due) == (1, "REQUEST", date(2026, 12, 9))
    assert [m.status for m in calendar(scheduled, "ENG-2026-027")] == ["sent"] * 3 + ["pending"] * 3
    updates = calendar(scheduled, "ENG-2026-027", "pending")
    assert [m.recipient for m in updates] == INVITED_ON_FIRST_RUN["ENG-2026-027"][1]
    for message in updates:
        cal, event = vevent(message)
        assert str(cal["METHOD"]) == "REQUEST"
        assert str(event["UID"]) == "checkin-eng-2026-027@auxeng-followups"
        assert int(event["SEQUENCE"]) == 1
        assert event.decoded("DTSTART").astimezone(LOS_ANGELES) == datetime(
            2026, 12, 9, 10, tzinfo=LOS_ANGELES
        )
        assert message.subject.startswith('Updated: Three-month check-in: "Marketing Data')
    assert events(scheduled, "ENG-2026-027")[-2] == (
        "moved",
        {
            "end_date": {"from": "2026-09-02", "to": "2026-09-09"},
            "due_on": {"from": "2026-12-02", "to": "2026-12-09"},
        },
    )
    before = outbox_count(scheduled)
    again = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 14))
    assert (again.moved, again.updates, again.messages) == (0, 0, 0)
    assert outbox_count(scheduled) == before


def test_end_date_moved_while_the_invitation_is_pending_withdraws_it_until_the_new_invitation_day(scheduled):
    move_027(scheduled)
    report = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 9))
    assert (report.moved, report.withdrawn, report.messages) == (1, 3, 0)
    messages = calendar(scheduled, "ENG-2026-027")
    assert [(m.status, m.reason) for m in messages] == [("skipped", "check-in moved to 2026-12-09")] * 3
    row = checkin(scheduled, "ENG-2026-027")
    assert (row.due_on, row.invite_on, row.calendar_method) == (date(2026, 12, 9), date(2026, 12, 2), None)

    # Nobody had it, so the new time goes out on the new invitation day, as a first invitation.
    run(scheduled, planning.schedule_checkins, date(2026, 12, 1))
    assert calendar(scheduled, "ENG-2026-027", "pending") == []
    report = run(scheduled, planning.schedule_checkins, date(2026, 12, 2))
    assert (report.invitations, report.updates, report.messages) == (1, 0, 3)
    fresh = calendar(scheduled, "ENG-2026-027", "pending")
    assert [int(vevent(m)[1]["SEQUENCE"]) for m in fresh] == [1, 1, 1]
    assert not any(m.subject.startswith("Updated") for m in fresh)
    start = vevent(fresh[0])[1].decoded("DTSTART")
    assert start.astimezone(LOS_ANGELES) == datetime(2026, 12, 9, 10, tzinfo=LOS_ANGELES)


def cancel_028(store) -> None:
    cancelled = edit_engagement(
        DEMO_TEXT, "ENG-2026-028", "    end: 2026-08-27\n", "    end: 2026-08-27\n    status: cancelled\n"
    )
    load(store, cancelled, FIRST_RUN)


def test_cancelled_engagement_after_the_request_went_out_gets_a_cancel(scheduled):
    mark_sent(scheduled)
    cancel_028(scheduled)
    report = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 13))
    assert (report.cancelled, report.cancellations, report.messages) == (1, 1, 3)
    row = checkin(scheduled, "ENG-2026-028")
    assert (row.status, row.note) == ("cancelled", "engagement ENG-2026-028 was cancelled")
    assert (row.sequence, row.calendar_method) == (1, "CANCEL")
    cancels = calendar(scheduled, "ENG-2026-028", "pending")
    assert [m.recipient for m in cancels] == INVITED_ON_FIRST_RUN["ENG-2026-028"][1]
    for message in cancels:
        assert message.payload["calendar"]["method"] == "CANCEL"
        assert message.subject == 'Cancelled: three-month check-in of "CI/CD for Fulfillment"'
        cal, event = vevent(message)
        assert str(cal["METHOD"]) == "CANCEL"
        assert str(event["UID"]) == "checkin-eng-2026-028@auxeng-followups"
        assert int(event["SEQUENCE"]) == 1
        assert str(event["STATUS"]) == "CANCELLED"
    assert [e for e, _ in events(scheduled, "ENG-2026-028")][-2:] == ["cancelled", "calendar_cancel"]
    again = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 14))
    assert (again.cancelled, again.cancellations, again.messages) == (0, 0, 0)


def test_cancelled_engagement_while_the_request_is_pending_withdraws_it_without_a_cancel(scheduled):
    cancel_028(scheduled)
    report = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 9))
    assert (report.cancelled, report.cancellations, report.withdrawn, report.messages) == (1, 0, 3, 0)
    messages = calendar(scheduled, "ENG-2026-028")
    assert [m.status for m in messages] == ["skipped"] * 3
    assert {m.payload["calendar"]["method"] for m in messages} == {"REQUEST"}
    row = checkin(scheduled, "ENG-2026-028")
    assert (row.status, row.calendar_method) == ("cancelled", None)
    assert events(scheduled, "ENG-2026-028")[-1] == (
        "calendar_withdrawn",
        {"reason": "nothing had been sent yet"},
    )


def test_engagement_restored_after_a_withdrawn_invitation_is_invited_again_under_a_new_sequence(scheduled):
    cancel_028(scheduled)
    run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 9))
    load(scheduled, DEMO_TEXT, FIRST_RUN)  # the cancellation was a mistake
    report = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 10))
    assert (report.invitations, report.messages) == (1, 3)
    row = checkin(scheduled, "ENG-2026-028")
    assert (row.status, row.calendar_method) == ("scheduled", "REQUEST")
    fresh = calendar(scheduled, "ENG-2026-028", "pending")
    assert [m.recipient for m in fresh] == INVITED_ON_FIRST_RUN["ENG-2026-028"][1]
    assert {int(vevent(m)[1]["SEQUENCE"]) for m in fresh} == {row.sequence}
    assert row.sequence > 0  # SEQUENCE 0 went into the withdrawn messages


# --- check-in survey, reminders, close --------------------------------------------------


def test_checkin_survey_on_the_due_date_asks_host_members_and_the_manager_once(scheduled):
    with Session(scheduled) as session:
        session.add(
            OptOutRow(
                email="quinn.fischer@example.com", opted_out_at=moment(date(2026, 10, 1)), source="link"
            )
        )
        session.commit()
    due = date(2026, 11, 27)
    assert run(scheduled, planning.send_checkin_surveys, FIRST_RUN).surveyed == 0  # not due yet
    load(scheduled, DEMO_TEXT, due)
    run(scheduled, planning.schedule_checkins, due)
    report = run(scheduled, planning.send_checkin_surveys, due)
    assert (report.surveyed, report.people_invited, dict(report.skipped_people)) == (1, 3, {"opted out": 1})
    rows = invitation_rows(scheduled, "ENG-2026-028")
    assert {email: (r.role, r.side, r.status, r.round) for email, r in rows.items()} == {
        "pavel.evans@example.com": ("tech_lead", "host", "invited", 0),
        "quinn.fischer@example.com": ("engineer", "host", "skipped", 0),
        "rosa.garcia@example.com": ("engineer", "host", "invited", 0),
        "olga.dahl@example.com": ("manager", "host", "invited", 0),  # team manager and member: once
    }
    assert rows["quinn.fischer@example.com"].skip_reason == "opted out on 2026-10-01"
    closes_at = datetime(2026, 12, 11, 23, 59, 59, tzinfo=UTC)
    assert {r.closes_at for r in rows.values()} == {closes_at}
    row = checkin(scheduled, "ENG-2026-028")
    assert (row.status, row.survey_sent_on, row.invited, row.closes_at) == ("surveying", due, 3, closes_at)

    messages = outbox(scheduled, kind="survey_invite")
    assert sorted((m.recipient_email, m.channel) for m in messages) == sorted(
        (email, channel)
        for email in ("pavel.evans@example.com", "rosa.garcia@example.com", "olga.dahl@example.com")
        for channel in ("email", "slack")
    )
    email = next(m for m in messages if m.channel == "email" and m.recipient == "pavel.evans@example.com")
    assert email.subject == 'Three months on: how is "CI/CD for Fulfillment" going?'
    assert (email.invitation_id, email.requires_ended) == (rows["pavel.evans@example.com"].id, True)
    (link,) = re.findall(r"^Answer here: (\S+)$", email.body_text, re.MULTILINE)
    assert link.startswith("https://airflow.example.com/auxeng/survey/")
    claims = tokens.verify(link.rsplit("/", 1)[1], "survey", key=KEY, now=moment(due))
    assert claims.subject == str(rows["pavel.evans@example.com"].id)

    before = outbox_count(scheduled)
    again = run(scheduled, planning.send_checkin_surveys, due, now=moment(due, 15))
    assert (again.surveyed, again.messages) == (0, 0)
    assert outbox_count(scheduled) == before


def test_checkin_survey_also_asks_a_team_manager_who_is_not_on_the_engagement(store):
    load(store, SMALL_REGISTRY, FIRST_RUN)
    run(store, planning.schedule_checkins, FIRST_RUN, settings=PARIS_SETTINGS)
    report = run(store, planning.send_checkin_surveys, date(2026, 11, 30), settings=PARIS_SETTINGS)
    assert (report.surveyed, report.people_invited) == (4, 8)
    assert {e: r.role for e, r in invitation_rows(store, "ENG-B").items()} == {
        "tech.two@example.com": "tech_lead",
        "goran.schmidt@example.com": "manager",
    }
    assert {e: r.role for e, r in invitation_rows(store, "ENG-A").items()} == {
        "tech.one@example.com": "tech_lead",
        "dev.one@example.com": "engineer",
    }


def test_checkin_reminders_go_to_those_who_have_not_answered(store):
    surveyed(store, date(2026, 11, 27))
    mark_sent(store, moment(date(2026, 11, 27), 10))  # the invitations reached everyone that morning
    rows = invitation_rows(store, "ENG-2026-028")
    record_response(
        store, rows["pavel.evans@example.com"].id, CHECKIN_ANSWER, now=moment(date(2026, 11, 28)), key=KEY
    )
    checkin_only = {"surveys": (SurveyKind.CHECKIN,)}
    assert run(store, invitations.plan_reminders, date(2026, 11, 29), **checkin_only).reminders == 0
    assert (
        run(store, invitations.plan_reminders, date(2026, 11, 30)).reminders == 0
    )  # default: end-of-engagement
    report = run(store, invitations.plan_reminders, date(2026, 11, 30), **checkin_only)
    assert report.reminders == 3  # everyone asked on 2026-11-27 but Pavel, who answered
    reminders = outbox(store, kind="survey_reminder", channel="email")
    assert {m.recipient for m in reminders if m.engagement_key == "ENG-2026-028"} == {
        "rosa.garcia@example.com",
        "olga.dahl@example.com",
        "quinn.fischer@example.com",
    }
    assert all(m.stop_if_answered for m in reminders)
    assert {m.subject for m in reminders} == {
        'Reminder: Three months on: how is "CI/CD for Fulfillment" going?'
    }
    assert run(store, invitations.plan_reminders, date(2026, 11, 30), **checkin_only).reminders == 0


def test_close_after_the_window_answered_with_scores_or_unanswered(store):
    surveyed(store, date(2026, 11, 27))  # ENG-2026-028, closes 2026-12-11
    surveyed(store, date(2026, 11, 28))  # ENG-2026-026, closes 2026-12-12
    rows = invitation_rows(store, "ENG-2026-028")
    answered = moment(date(2026, 11, 30))
    record_response(store, rows["pavel.evans@example.com"].id, CHECKIN_ANSWER, now=answered, key=KEY)
    record_response(
        store,
        rows["rosa.garcia@example.com"].id,
        {"maintainability": 4, "help_needed": "never", "nps": 9},
        now=answered,
        key=KEY,
    )
    last_day = date(2026, 12, 11)
    early = run(store, planning.close_checkins, last_day, now=datetime(2026, 12, 11, 23, 0, tzinfo=UTC))
    assert dict(early.closed) == {}
    assert checkin(store, "ENG-2026-028").status == "surveying"

    closed = run(store, planning.close_checkins, date(2026, 12, 12))
    assert dict(closed.closed) == {"answered": 1}
    row = checkin(store, "ENG-2026-028")
    assert (row.status, row.responses, row.closed_at) == ("answered", 2, moment(date(2026, 12, 12)))
    assert (row.maintainability_min, row.maintainability_mean, row.help_needed, row.nps_mean) == (
        2,
        3.0,
        "regularly",
        7.0,
    )
    assert row.scores["not_taken_over"] == ["alerts"]
    assert checkin(store, "ENG-2026-026").status == "surveying"

    later = run(store, planning.close_checkins, date(2026, 12, 13))
    assert dict(later.closed) == {"unanswered": 1}
    quiet = checkin(store, "ENG-2026-026")
    assert (quiet.status, quiet.responses, quiet.maintainability_min, quiet.nps_mean) == (
        "unanswered",
        0,
        None,
        None,
    )
    assert dict(run(store, planning.close_checkins, date(2026, 12, 14)).closed) == {}


# --- people edge cases ------------------------------------------------------------------


def test_host_team_without_a_manager_warns_and_invites_the_lead_and_tech_lead(store):
    load(store, SMALL_REGISTRY, FIRST_RUN)
    report = run(store, planning.schedule_checkins, FIRST_RUN, settings=PARIS_SETTINGS)
    warning = (
        "host team orphans has no manager: the ENG-A check-in goes to the AuxEng lead and the tech lead only"
    )
    assert report.warnings == [warning]
    assert checkin(store, "ENG-A").warnings == [warning]
    assert checkin(store, "ENG-B").warnings == []
    messages = calendar(store, "ENG-A")
    assert [m.recipient for m in messages] == ["lead.one@example.com", "tech.one@example.com"]
    _cal, event = vevent(messages[0])
    assert attendee_emails(event) == ["lead.one@example.com", "tech.one@example.com"]
    assert str(event["ORGANIZER"]) == "mailto:lead.one@example.com"


def test_an_advisor_alone_is_not_the_auxeng_lead_the_program_manager_organizes(store):
    advisor_only = edit_engagement(
        SMALL_REGISTRY,
        "ENG-B",
        "{email: lead.one@example.com, role: engineer, lead: true}",
        "{email: adviser.one@example.com, role: advisor}",
    )
    load(store, advisor_only, FIRST_RUN)
    report = run(store, planning.schedule_checkins, FIRST_RUN, settings=PARIS_SETTINGS)
    assert "ENG-B has no AuxEng lead: program manager dana.ruiz@example.com organizes" in report.warnings
    _cal, event = vevent(calendar(store, "ENG-B")[0])
    assert str(event["ORGANIZER"]) == "mailto:dana.ruiz@example.com"
    assert "adviser.one@example.com" not in attendee_emails(event)


def test_meeting_time_zone_is_the_managers_else_the_tech_leads_else_the_programs(store):
    load(store, SMALL_REGISTRY, FIRST_RUN)
    run(store, planning.schedule_checkins, FIRST_RUN, settings=PARIS_SETTINGS)
    monday = date(2026, 11, 30)  # ended 2026-08-31: due 2026-11-30
    expected = {
        "ENG-A": "Asia/Tokyo",  # no manager: the tech lead's zone
        "ENG-B": "America/Chicago",  # the manager has no zone: the tech lead's
        "ENG-C": "Europe/Paris",  # nobody has one: the program's (AUXENG_TIMEZONE)
        "ENG-D": "America/Sao_Paulo",  # the manager's, not the tech lead's (Asia/Tokyo)
    }
    for key, zone in expected.items():
        row = checkin(store, key)
        assert row.slot_timezone == zone, key
        start = vevent(calendar(store, key)[0])[1].decoded("DTSTART")
        assert start == datetime.combine(monday, time(10), ZoneInfo(zone)), key


def test_a_skipped_checkin_invitation_stays_skipped_and_a_void_one_is_invited_again(scheduled):
    """The one ``invite()`` rule, as for end-of-engagement surveys: only a new or void invitation
    is (re)invited; a skipped one (here: opted out at the time) is never re-sent by accident."""
    with Session(scheduled) as session:
        session.add(
            OptOutRow(
                email="quinn.fischer@example.com", opted_out_at=moment(date(2026, 10, 1)), source="link"
            )
        )
        session.commit()
    due = date(2026, 11, 27)
    load(scheduled, DEMO_TEXT, due)
    run(scheduled, planning.schedule_checkins, due)
    run(scheduled, planning.send_checkin_surveys, due)
    with Session(scheduled) as session:
        session.execute(delete(OptOutRow))
        rows = invitation_rows(scheduled, "ENG-2026-028")
        session.execute(
            update(SurveyInvitationRow)
            .where(SurveyInvitationRow.id == rows["rosa.garcia@example.com"].id)
            .values(status="void")
        )
        session.execute(
            update(CheckinRow).where(CheckinRow.engagement_key == "ENG-2026-028").values(status="scheduled")
        )
        session.commit()

    later = due + timedelta(days=1)
    report = run(scheduled, planning.send_checkin_surveys, later)

    rows = invitation_rows(scheduled, "ENG-2026-028")
    assert {email: r.status for email, r in rows.items()} == {
        "pavel.evans@example.com": "invited",
        "quinn.fischer@example.com": "skipped",
        "rosa.garcia@example.com": "invited",
        "olga.dahl@example.com": "invited",
    }
    assert rows["rosa.garcia@example.com"].invited_on == later
    assert rows["pavel.evans@example.com"].invited_on == due  # stands: not asked again
    assert report.messages > 0
    sent_to = Counter(m.recipient_email for m in outbox(scheduled, kind="survey_invite"))
    assert sent_to["pavel.evans@example.com"] == 2  # email and Slack, once
    assert sent_to["rosa.garcia@example.com"] == 4  # the void invitation's pair, and the new one
    assert sent_to["quinn.fischer@example.com"] == 0


def test_a_checkin_whose_invitations_arrived_late_closes_that_much_later(store):
    """Held two days (an outage, a weekend), the invitations' 14-day window counts from when they
    arrived: the check-in closes on the 13th, not the 11th."""
    surveyed(store, date(2026, 11, 27))  # ENG-2026-028, closes 2026-12-11 if they arrive that day
    mark_sent(store, moment(date(2026, 11, 29), 10))
    assert run(store, planning.close_checkins, date(2026, 12, 12)).closed == {}
    row = checkin(store, "ENG-2026-028")
    assert row.status == "surveying"
    assert row.closes_at == datetime(2026, 12, 13, 23, 59, 59, tzinfo=UTC)
    assert {
        r.closes_at for r in invitation_rows(store, "ENG-2026-028").values() if r.status == "invited"
    } == {row.closes_at}
    assert dict(run(store, planning.close_checkins, date(2026, 12, 14)).closed) == {"unanswered": 1}
