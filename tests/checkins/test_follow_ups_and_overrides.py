"""Monthly follow-ups and manual check-in overrides on the store."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.checkins import follow_ups, planning
from auxeng.checkins.follow_ups import latest_round_due
from auxeng.checkins.overrides import OverrideError, apply_override
from auxeng.messaging import tokens
from auxeng.store.models import (
    CheckinEventRow,
    CheckinRow,
    FollowUpRow,
    SurveyInvitationRow,
)
from auxeng.surveys.responses import record_response
from auxeng.vocabulary import MessageKind, SurveyKind
from tests.checkins.store_helpers import (
    DEMO_TEXT,
    FIRST_RUN,
    KEY,
    LOS_ANGELES,
    SETTINGS,
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

FINISHED = {"progress": "well", "notes": "", "next": "finished"}
# Demo engagements with ``follow_up: monthly`` that have ended by 2026-11-26.
MONTHLY = {
    "ENG-2025-002",
    "ENG-2025-006",
    "ENG-2025-010",
    "ENG-2025-014",
    "ENG-2026-018",
    "ENG-2026-022",
    "ENG-2026-026",
    "ENG-2026-030",
}
WHO = "dana.ruiz@example.com"


def override(store, engagement: str, action: str, reason: str = "the team asked", **kwargs):
    as_of = kwargs.pop("as_of", FIRST_RUN)
    with Session(store) as session:
        result = apply_override(
            session,
            engagement_key=engagement,
            action=action,
            reason=reason,
            requested_by=kwargs.pop("requested_by", WHO),
            as_of=as_of,
            now=kwargs.pop("now", moment(as_of, 9)),
            settings=SETTINGS,
            **kwargs,
        )
        session.commit()
    return result


def last_event(store, engagement: str) -> tuple[str, dict]:
    with Session(store) as session:
        event = session.scalars(
            select(CheckinEventRow)
            .join(CheckinRow, CheckinRow.id == CheckinEventRow.checkin_id)
            .where(CheckinRow.engagement_key == engagement)
            .order_by(CheckinEventRow.id.desc())
        ).first()
        return event.event, event.detail


def follow_up_rows(store) -> dict[str, FollowUpRow]:
    with Session(store) as session:
        return {row.engagement_key: row for row in session.scalars(select(FollowUpRow))}


def follow_up_invitations(store, engagement: str | None = None) -> list[SurveyInvitationRow]:
    with Session(store) as session:
        query = (
            select(SurveyInvitationRow)
            .where(SurveyInvitationRow.survey == SurveyKind.FOLLOW_UP)
            .order_by(SurveyInvitationRow.engagement_key, SurveyInvitationRow.round)
        )
        if engagement:
            query = query.where(SurveyInvitationRow.engagement_key == engagement)
        return list(session.scalars(query))


# --- follow-ups -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "due"),
    [
        (date(2026, 1, 31), 0),
        (date(2026, 2, 27), 0),
        (date(2026, 2, 28), 1),  # no 31 February: the last day of the month
        (date(2026, 3, 30), 1),
        (date(2026, 3, 31), 2),
        (date(2026, 4, 30), 3),  # no 31 April either
        (date(2026, 7, 30), 5),
        (date(2026, 7, 31), 6),
        (date(2027, 1, 1), 6),  # never more than the months followed up
    ],
)
def test_latest_round_due_counts_calendar_months_clamped_at_month_end(as_of, due):
    assert latest_round_due(date(2026, 1, 31), 6, as_of) == due


def test_latest_round_due_with_no_months_is_zero():
    assert latest_round_due(date(2026, 1, 31), 0, date(2027, 1, 1)) == 0


def test_first_follow_up_run_sends_only_the_latest_due_month_within_the_cut_off(demo):
    report = run(demo, follow_ups.plan_follow_ups, FIRST_RUN)
    assert (report.follow_ups, report.messages, report.warnings) == (3, 6, [])
    rows = follow_up_rows(demo)
    assert set(rows) == MONTHLY
    # (the dict's later entries override the first line for the three engagements still followed up)
    assert {k: (r.status, r.last_round) for k, r in rows.items()} == {
        **{k: ("completed", 6) for k in MONTHLY},  # month 6 more than 30 days ago: nothing sent
        "ENG-2026-022": ("completed", 6),  # month 6 on 2026-11-05: within the cut-off, sent
        "ENG-2026-026": ("active", 2),  # month 2 on 2026-10-28 (month 1 is not sent as well)
        "ENG-2026-030": ("active", 2),  # month 2 on 2026-11-14
    }
    assert [(i.engagement_key, i.round, i.email, i.side) for i in follow_up_invitations(demo)] == [
        ("ENG-2026-022", 6, "alice.chen@example.com", "auxeng"),
        ("ENG-2026-026", 2, "judy.amari@example.com", "auxeng"),
        ("ENG-2026-030", 2, "grace.lind@example.com", "auxeng"),
    ]
    messages = outbox(demo, kind=MessageKind.FOLLOW_UP_REMINDER)
    assert {m.engagement_key for m in messages} == {"ENG-2026-022", "ENG-2026-026", "ENG-2026-030"}
    assert all(m.stop_if_answered and m.requires_ended for m in messages)
    email = next(m for m in messages if m.engagement_key == "ENG-2026-026" and m.channel == "email")
    assert email.recipient == "judy.amari@example.com"
    assert email.subject == (
        'Follow-up 2/6: time for a sync with Warehouse Ops ("Zero-downtime deploys for Warehouse Ops")'
    )
    for person in ("Xavi Ng (tech lead)", "Yara Okafor (engineer)", "Wen Moss (manager)"):
        assert person in email.body_text
    (link,) = re.findall(r"https://airflow\.example\.com/auxeng/survey/\S+", email.body_text)
    claims = tokens.verify(link.rsplit("/", 1)[1], "survey", key=KEY, now=moment(FIRST_RUN))
    assert claims.subject == str(follow_up_invitations(demo, "ENG-2026-026")[0].id)

    before = outbox_count(demo)
    again = run(demo, follow_ups.plan_follow_ups, FIRST_RUN, now=moment(FIRST_RUN, 15))
    assert (again.follow_ups, again.messages) == (0, 0)
    assert outbox_count(demo) == before
    assert len(follow_up_invitations(demo)) == 3


def test_lead_answering_finished_stops_the_follow_up(demo):
    run(demo, follow_ups.plan_follow_ups, FIRST_RUN)
    (invitation,) = follow_up_invitations(demo, "ENG-2026-026")
    answered = moment(date(2026, 11, 27), 10)
    record_response(demo, invitation.id, FINISHED, now=answered, key=KEY)

    report = run(demo, follow_ups.plan_follow_ups, date(2026, 11, 28))  # month 3 would be due today
    assert (report.follow_ups_finished, report.follow_ups, report.messages) == (1, 0, 0)
    row = follow_up_rows(demo)["ENG-2026-026"]
    assert (row.status, row.finished_by, row.finished_at, row.last_round) == (
        "finished",
        "judy.amari@example.com",
        answered,
        2,
    )
    assert row.finish_reason == "marked finished by the lead (month 2)"
    assert [(m.status, m.reason) for m in outbox(demo, engagement_key="ENG-2026-026")] == [
        ("skipped", "follow-up finished: marked finished by the lead (month 2)")
    ] * 2
    for later in (date(2026, 12, 28), date(2027, 1, 28)):
        assert run(demo, follow_ups.plan_follow_ups, later).follow_ups == 1  # ENG-2026-030 only
    assert [i.round for i in follow_up_invitations(demo, "ENG-2026-026")] == [2]
    assert follow_up_rows(demo)["ENG-2026-026"].status == "finished"


def test_follow_up_completes_after_the_last_month(demo):
    run(demo, follow_ups.plan_follow_ups, FIRST_RUN)
    for day in (date(2026, 12, 14), date(2027, 1, 14), date(2027, 2, 14)):
        assert run(demo, follow_ups.plan_follow_ups, day).follow_ups == 2  # ENG-2026-026 and -030
        assert follow_up_rows(demo)["ENG-2026-030"].status == "active"
    report = run(demo, follow_ups.plan_follow_ups, date(2027, 3, 14))
    assert report.follow_ups == 2  # month 6 of both (ENG-2026-026's was due on 2027-02-28)
    rows = follow_up_rows(demo)
    for key in ("ENG-2026-026", "ENG-2026-030"):
        assert (rows[key].status, rows[key].last_round) == ("completed", 6), key
        assert rows[key].finish_reason == "all 6 monthly reminders went out"
    assert [i.round for i in follow_up_invitations(demo, "ENG-2026-026")] == [2, 3, 4, 5, 6]
    assert [(i.round, i.invited_on) for i in follow_up_invitations(demo, "ENG-2026-030")] == [
        (2, FIRST_RUN),
        (3, date(2026, 12, 14)),
        (4, date(2027, 1, 14)),
        (5, date(2027, 2, 14)),
        (6, date(2027, 3, 14)),
    ]
    before = outbox_count(demo)
    assert run(demo, follow_ups.plan_follow_ups, date(2027, 4, 14)).follow_ups == 0
    assert outbox_count(demo) == before


# --- overrides --------------------------------------------------------------------------


def test_reschedule_records_who_and_why_and_updates_a_sent_invitation(scheduled):
    mark_sent(scheduled)
    result = override(scheduled, "ENG-2026-027", "reschedule", "  manager   on leave ", new_due="2026-12-10")
    assert result.summary() == {
        "engagement": "ENG-2026-027",
        "action": "reschedule",
        "status": "scheduled",
        "due_on": "2026-12-10",
        "reason": "manager on leave",
        "requested_by": WHO,
    }
    row = checkin(scheduled, "ENG-2026-027")
    assert (row.due_on, row.due_override, row.invite_on) == (
        date(2026, 12, 10),
        date(2026, 12, 10),
        date(2026, 12, 3),
    )
    assert (row.override_reason, row.override_by, row.override_at) == (
        "manager on leave",
        WHO,
        moment(FIRST_RUN, 9),
    )
    assert last_event(scheduled, "ENG-2026-027") == (
        "override_reschedule",
        {"by": WHO, "reason": "manager on leave", "due_on": {"from": "2026-12-02", "to": "2026-12-10"}},
    )

    report = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 10))
    assert (report.updates, report.messages) == (1, 3)
    updates = calendar(scheduled, "ENG-2026-027", "pending")
    assert [m.recipient for m in updates] == [
        "kai.brandt@example.com",
        "rafa.moss@example.com",
        "sana.ng@example.com",
    ]
    for message in updates:
        cal, event = vevent(message)
        assert (str(cal["METHOD"]), int(event["SEQUENCE"])) == ("REQUEST", 1)
        assert str(event["UID"]) == "checkin-eng-2026-027@auxeng-followups"
        assert event.decoded("DTSTART") == datetime(2026, 12, 10, 10, tzinfo=LOS_ANGELES)
    assert checkin(scheduled, "ENG-2026-027").sequence == 1
    # the registry's due date no longer applies: a later run keeps the override
    again = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 11))
    assert (again.moved, again.messages) == (0, 0)
    assert checkin(scheduled, "ENG-2026-027").due_on == date(2026, 12, 10)


def test_skip_cancels_a_sent_invitation_on_the_next_scheduling_run(scheduled):
    mark_sent(scheduled)
    result = override(scheduled, "ENG-2026-025", "skip", "team reorganised")
    assert (result.status, result.due_on) == ("skipped", date(2026, 11, 30))
    row = checkin(scheduled, "ENG-2026-025")
    assert (row.status, row.note, row.override_reason) == (
        "skipped",
        f"skipped by {WHO}: team reorganised",
        "team reorganised",
    )
    report = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 10))
    assert (report.cancellations, report.messages) == (1, 3)
    cancels = calendar(scheduled, "ENG-2026-025", "pending")
    assert [m.recipient for m in cancels] == [
        "ivan.petrov@example.com",
        "carol.moss@example.com",
        "dan.ng@example.com",
    ]
    for message in cancels:
        cal, event = vevent(message)
        assert (str(cal["METHOD"]), int(event["SEQUENCE"]), str(event["STATUS"])) == (
            "CANCEL",
            1,
            "CANCELLED",
        )
    assert checkin(scheduled, "ENG-2026-025").status == "skipped"
    assert run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 11)).messages == 0
    with pytest.raises(
        OverrideError, match=r"^ENG-2026-025: the check-in is already skipped \(team reorganised\)$"
    ):
        override(scheduled, "ENG-2026-025", "skip", "again")


def test_resume_after_a_sent_cancel_sends_a_new_request(scheduled):
    mark_sent(scheduled)
    override(scheduled, "ENG-2026-025", "skip", "team reorganised")
    run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 10))
    mark_sent(scheduled)
    result = override(
        scheduled, "ENG-2026-025", "resume", "reorganisation postponed", now=moment(FIRST_RUN, 11)
    )
    assert (result.status, result.due_on) == ("scheduled", date(2026, 11, 30))
    assert last_event(scheduled, "ENG-2026-025") == (
        "override_resume",
        {"by": WHO, "reason": "reorganisation postponed", "due_on": "2026-11-30"},
    )
    report = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 12))
    assert report.messages == 3
    requests = calendar(scheduled, "ENG-2026-025", "pending")
    assert [(vevent(m)[0]["METHOD"], int(vevent(m)[1]["SEQUENCE"])) for m in requests] == [("REQUEST", 2)] * 3
    row = checkin(scheduled, "ENG-2026-025")
    assert (row.status, row.sequence, row.calendar_method) == ("scheduled", 2, "REQUEST")


def test_skip_while_pending_withdraws_and_resume_invites_again(scheduled):
    override(scheduled, "ENG-2026-027", "skip", "team on holiday")
    skipped = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 10))
    assert (skipped.withdrawn, skipped.cancellations, skipped.messages) == (3, 0, 0)
    assert [m.status for m in calendar(scheduled, "ENG-2026-027")] == ["skipped"] * 3

    override(scheduled, "ENG-2026-027", "resume", "holiday cancelled", now=moment(FIRST_RUN, 11))
    resumed = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 12))
    assert (resumed.invitations, resumed.messages) == (1, 3)
    fresh = calendar(scheduled, "ENG-2026-027", "pending")
    assert [m.recipient for m in fresh] == [
        "kai.brandt@example.com",
        "rafa.moss@example.com",
        "sana.ng@example.com",
    ]
    assert {(str(vevent(m)[0]["METHOD"]), int(vevent(m)[1]["SEQUENCE"])) for m in fresh} == {("REQUEST", 1)}


def test_resume_of_a_missed_checkin_needs_a_new_due_date(scheduled):
    with pytest.raises(
        OverrideError, match=r"^ENG-2025-001: the check-in was due on 2025-10-11; resume it with"
    ):
        override(scheduled, "ENG-2025-001", "resume", "we want it after all")
    result = override(scheduled, "ENG-2025-001", "resume", "we want it after all", new_due="2026-12-20")
    assert (result.status, result.due_on) == ("scheduled", date(2026, 12, 20))
    row = checkin(scheduled, "ENG-2025-001")
    # a week before the Sunday due date is a Sunday: queued on the Friday before
    assert (row.status, row.due_on, row.invite_on) == ("scheduled", date(2026, 12, 20), date(2026, 12, 11))
    report = run(scheduled, planning.schedule_checkins, FIRST_RUN, now=moment(FIRST_RUN, 10))
    assert report.missed == [] and report.messages == 0  # invitation day not come yet
    assert checkin(scheduled, "ENG-2025-001").status == "scheduled"


def test_finish_follow_up_override_stops_the_reminders(demo):
    with pytest.raises(
        OverrideError, match=r"^ENG-2026-030 has no active monthly follow-up \(follow-up: none\)$"
    ):
        override(demo, "ENG-2026-030", "finish_follow_up", "no need anymore")
    run(demo, follow_ups.plan_follow_ups, FIRST_RUN)
    result = override(demo, "ENG-2026-030", "finish_follow_up", "no need anymore")
    assert (result.status, result.due_on, result.reason) == ("finished", None, "no need anymore")
    row = follow_up_rows(demo)["ENG-2026-030"]
    assert (row.status, row.finished_by, row.finish_reason, row.finished_at) == (
        "finished",
        WHO,
        "no need anymore",
        moment(FIRST_RUN, 9),
    )
    assert [(m.status, m.reason) for m in outbox(demo, engagement_key="ENG-2026-030")] == [
        ("skipped", "follow-up finished: no need anymore")
    ] * 2
    later = run(demo, follow_ups.plan_follow_ups, date(2026, 12, 14))
    assert later.follow_ups == 1  # month 3 of ENG-2026-026; nothing for ENG-2026-030
    assert [i.round for i in follow_up_invitations(demo, "ENG-2026-030")] == [2]
    with pytest.raises(OverrideError, match=r"follow-up: finished"):
        override(demo, "ENG-2026-030", "finish_follow_up", "no need anymore")


@pytest.mark.parametrize(
    ("engagement", "action", "reason", "new_due", "message"),
    [
        ("ENG-2099-999", "skip", "not ours", None, r"^unknown engagement 'ENG-2099-999'$"),
        ("ENG-2026-038", "skip", "   ", None, r"^ENG-2026-038: give a reason \(at least 3 characters\)$"),
        (
            "ENG-2026-038",
            "reschedule",
            "later please",
            "2026-11-01",
            r"^ENG-2026-038: new_due_date 2026-11-01 is in the past \(today is 2026-11-26\)$",
        ),
        (
            "ENG-2026-038",
            "reschedule",
            "later please",
            "next week",
            r"^ENG-2026-038: new_due_date 'next week' is not a date \(YYYY-MM-DD\)$",
        ),
        (
            "ENG-2026-038",
            "reschedule",
            "later please",
            None,
            r"^ENG-2026-038: reschedule needs new_due_date \(YYYY-MM-DD\)$",
        ),
    ],
    ids=["unknown-engagement", "empty-reason", "date-in-the-past", "bad-date-text", "no-date"],
)
def test_override_errors_name_the_engagement_and_change_nothing(
    scheduled, engagement, action, reason, new_due, message
):
    before = checkin(scheduled, "ENG-2026-038")
    with pytest.raises(OverrideError, match=message):
        override(scheduled, engagement, action, reason, new_due=new_due)
    after = checkin(scheduled, "ENG-2026-038")
    assert (after.status, after.due_on, after.override_reason) == (before.status, before.due_on, None)


def test_a_checkin_already_surveying_cannot_be_rescheduled(scheduled):
    due = date(2026, 11, 27)
    load(scheduled, DEMO_TEXT, due)
    run(scheduled, planning.schedule_checkins, due)
    run(scheduled, planning.send_checkin_surveys, due)
    with pytest.raises(
        OverrideError,
        match=r"^ENG-2026-028: the check-in is surveying \(survey sent on 2026-11-27\); only a check-in not",
    ):
        override(scheduled, "ENG-2026-028", "reschedule", "later please", new_due="2026-12-20", as_of=due)
    row = checkin(scheduled, "ENG-2026-028")
    assert (row.status, row.due_on, row.due_override) == ("surveying", due, None)
