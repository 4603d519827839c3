"""Survey planning on the store: who is invited, reminded and alerted, once, by the rules."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from auxeng.messaging import tokens
from auxeng.messaging.sendwindow import SendWindow
from auxeng.registry.lifecycle import mark_ended
from auxeng.registry.parse import parse_registry
from auxeng.registry.sync import sync_registry
from auxeng.settings import load_settings
from auxeng.store.models import (
    OptOutRow,
    OutboxRow,
    SurveyInvitationRow,
    SurveyResponseRow,
)
from auxeng.surveys import detractors, invitations
from tests.conftest import DEMO_REGISTRY
from tests.support.registry_edits import edit_engagement

KEY = b"test-secret-key-0123456789abcdef"
SETTINGS = load_settings({"AUXENG_PUBLIC_URL": "https://airflow.example.com/auxeng"})
DEMO_TEXT = DEMO_REGISTRY.read_text()
ENG_031_HOST = {"bea.zhang@example.com", "chidi.berg@example.com", "arjun.yilmaz@example.com"}
ENG_031_PLATFORM = {"heidi.sauer@example.com", "niaj.das@example.com"}


def moment(day: date, hour: int = 8) -> datetime:
    return datetime.combine(day, time(hour), UTC)


def load(store, text: str, as_of: date) -> None:
    sync_registry(store, parse_registry(text), source="test", now=moment(as_of, 5))
    mark_ended(store, as_of, now=moment(as_of, 5))


def plan(store, step, as_of: date | None = None, **kwargs) -> invitations.PlanReport:
    with Session(store) as session:
        if as_of is not None:
            kwargs.update(as_of=as_of, now=kwargs.get("now", moment(as_of)))
        report = step(session, settings=kwargs.pop("settings", SETTINGS), key=KEY, **kwargs)
        session.commit()
    return report


def invitation_rows(store, engagement: str) -> dict[str, SurveyInvitationRow]:
    with Session(store) as session:
        rows = session.scalars(
            select(SurveyInvitationRow).where(SurveyInvitationRow.engagement_key == engagement)
        )
        return {row.email: row for row in rows}


def outbox(store, **where) -> list[OutboxRow]:
    with Session(store) as session:
        query = select(OutboxRow).order_by(OutboxRow.id)
        for name, value in where.items():
            query = query.where(getattr(OutboxRow, name) == value)
        return list(session.scalars(query))


@pytest.fixture
def demo(store):
    load(store, DEMO_TEXT, date(2026, 11, 26))
    return store


def test_reminder_due_and_fatigue_rules_are_plain_functions():
    sent = datetime(2026, 11, 26, 9, 15, tzinfo=UTC)  # when the invitation reached the person
    assert invitations.reminder_due(sent, 0, SETTINGS, sent + timedelta(days=3, seconds=-1)) == 0
    assert invitations.reminder_due(sent, 0, SETTINGS, sent + timedelta(days=3)) == 1
    assert invitations.reminder_due(sent, 0, SETTINGS, sent + timedelta(days=7)) == 2
    assert invitations.reminder_due(sent, 2, SETTINGS, sent) == 2
    assert invitations.reminder_due(None, 0, SETTINGS, sent + timedelta(days=30)) == 0  # not sent yet
    assert invitations.reminder_moments(sent, SETTINGS) == [
        sent + timedelta(days=3),
        sent + timedelta(days=7),
    ]
    earlier = [(date(2026, 10, 28), "ENG-1", "retro")]
    assert invitations.fatigue_blocker(earlier, date(2026, 11, 26), 30) == earlier[0]  # 29 days later
    assert invitations.fatigue_blocker(earlier, date(2026, 11, 27), 30) is None  # 30 days later
    assert invitations.fatigue_blocker(earlier, date(2026, 11, 26), 0) is None


def test_ended_engagement_invites_host_and_platform_people_by_email_and_slack(demo):
    report = plan(demo, invitations.plan_invitations, date(2026, 11, 26))
    assert "ENG-2026-031" in report.engagements
    assert "ENG-2026-038" in report.stale  # ended 2026-09-04: too old to survey
    rows = invitation_rows(demo, "ENG-2026-031")
    assert set(rows) == ENG_031_HOST | ENG_031_PLATFORM
    assert {e for e, r in rows.items() if r.survey == "post_engagement"} == ENG_031_HOST
    assert {e for e, r in rows.items() if r.survey == "retro"} == ENG_031_PLATFORM
    assert {r.status for r in rows.values()} == {"invited"}

    bea = rows["bea.zhang@example.com"]
    messages = outbox(demo, invitation_id=bea.id)
    assert [m.channel for m in messages] == ["email", "slack"]
    email, slack = messages
    assert email.kind == "survey_invite" and email.requires_ended and not email.stop_if_answered
    assert "Move Customer Care Tools to Kubernetes" in email.subject
    links = [url for _, url in re.findall(r"^ +(\d+): (\S+)$", email.body_text, re.MULTILINE)]
    assert [parse_qs(urlparse(link).query)["score"] for link in links] == [[str(n)] for n in range(11)]
    token = urlparse(links[0]).path.rsplit("/", 1)[1]
    claims = tokens.verify(token, "survey", key=KEY, now=moment(date(2026, 11, 26)))
    assert claims.subject == str(bea.id)
    assert links[0].startswith("https://airflow.example.com/auxeng/survey/")
    assert email.payload["headers"]["List-Unsubscribe"].startswith(
        "<https://airflow.example.com/auxeng/optout/"
    )
    assert email.body_html.count("?score=") == 11
    assert slack.recipient.startswith("U0") or slack.recipient.startswith("email:")
    assert "/auxeng/survey/" in slack.body_text


def test_messages_wait_for_working_hours_in_the_recipients_time_zone(demo):
    plan(demo, invitations.plan_invitations, date(2026, 11, 26), now=moment(date(2026, 11, 26), 6))
    rows = outbox(demo, kind="survey_invite")
    assert rows
    for row in rows:
        window = SendWindow(ZoneInfo(row.payload["send_window"]["tz"]))
        assert window.contains(row.not_before), (row.recipient, row.not_before)
        assert row.not_before >= moment(date(2026, 11, 26), 6)


def test_planning_again_queues_nothing_new(demo):
    first = plan(demo, invitations.plan_invitations, date(2026, 11, 26))
    assert first.invited and first.messages == 2 * first.invited
    again = plan(demo, invitations.plan_invitations, date(2026, 11, 26))
    later = plan(demo, invitations.plan_invitations, date(2026, 11, 27))
    assert (again.invited, again.messages, later.invited, later.messages) == (0, 0, 0, 0)


def test_fatigue_skips_a_second_invitation_within_30_days_and_records_why(store):
    text = edit_engagement(
        DEMO_TEXT,
        "ENG-2026-032",
        "      - {email: bob.martin@example.com, role: advisor}\n",
        "      - {email: bob.martin@example.com, role: advisor}\n"
        "      - {email: heidi.sauer@example.com, role: advisor}\n",
    )
    load(store, text, date(2026, 11, 21))
    plan(store, invitations.plan_invitations, date(2026, 11, 21))
    load(store, text, date(2026, 11, 24))
    report = plan(store, invitations.plan_invitations, date(2026, 11, 24))
    skipped = invitation_rows(store, "ENG-2026-032")["heidi.sauer@example.com"]
    assert skipped.status == "skipped"
    assert "fatigue: already invited on 2026-11-21 (ENG-2026-031 retro)" in skipped.skip_reason
    assert report.skipped["fatigue"] == 1
    assert not outbox(store, invitation_id=skipped.id)


def test_opted_out_people_are_recorded_as_skipped_and_never_queued(demo):
    with Session(demo) as session:
        session.add(
            OptOutRow(email="bea.zhang@example.com", opted_out_at=moment(date(2026, 10, 1)), source="link")
        )
        session.commit()
    plan(demo, invitations.plan_invitations, date(2026, 11, 26))
    bea = invitation_rows(demo, "ENG-2026-031")["bea.zhang@example.com"]
    assert (bea.status, bea.skip_reason) == ("skipped", "opted out on 2026-10-01")
    assert not outbox(demo, invitation_id=bea.id)


def test_cancelled_engagements_are_not_surveyed(store):
    text = edit_engagement(
        DEMO_TEXT, "ENG-2026-031", "    end: 2026-11-20\n", "    end: 2026-11-20\n    status: cancelled\n"
    )
    load(store, text, date(2026, 11, 26))
    report = plan(store, invitations.plan_invitations, date(2026, 11, 26))
    assert "ENG-2026-031" not in report.engagements
    assert invitation_rows(store, "ENG-2026-031") == {}


def test_reminders_on_days_3_and_7_stop_once_answered(demo):
    invited_on = date(2026, 11, 26)
    plan(demo, invitations.plan_invitations, invited_on)
    rows = invitation_rows(demo, "ENG-2026-031")
    invited = len([r for r in rows.values() if r.status == "invited"])
    assert plan(demo, invitations.plan_reminders, invited_on + timedelta(days=5)).reminders == 0  # not sent
    with Session(demo) as session:  # what a drainer does: the invitations went out that morning
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.kind == "survey_invite")
            .values(status="sent", sent_at=moment(invited_on, 9))
        )
        session.commit()
    assert plan(demo, invitations.plan_reminders, invited_on + timedelta(days=2)).reminders == 0
    first = plan(demo, invitations.plan_reminders, invited_on + timedelta(days=3))
    assert first.reminders >= invited
    assert plan(demo, invitations.plan_reminders, invited_on + timedelta(days=4)).reminders == 0

    bea = rows["bea.zhang@example.com"]
    with Session(demo) as session:
        session.get(SurveyInvitationRow, bea.id).answered_at = moment(invited_on + timedelta(days=5))
        session.commit()
    second = plan(demo, invitations.plan_reminders, invited_on + timedelta(days=7))
    assert second.reminders == first.reminders - 1
    assert plan(demo, invitations.plan_reminders, invited_on + timedelta(days=20)).reminders == 0
    bea_kinds = [
        (m.kind, m.dedupe_key.split(":")[2]) for m in outbox(demo, invitation_id=bea.id, channel="email")
    ]
    assert bea_kinds == [("survey_invite", "2026-11-26"), ("survey_reminder", "1")]
    reminder = outbox(demo, invitation_id=bea.id, kind="survey_reminder")[0]
    assert reminder.stop_if_answered
    # Monday 2026-11-29 is a Sunday: the first reminder waits for Monday 09:00, her time
    assert reminder.not_before.astimezone(ZoneInfo("America/New_York")).weekday() < 5


def test_detractor_alert_goes_to_the_auxeng_lead_once_per_response(demo):
    plan(demo, invitations.plan_invitations, date(2026, 11, 26))
    bea = invitation_rows(demo, "ENG-2026-031")["bea.zhang@example.com"]
    with Session(demo) as session:
        for score, ref in ((3, "a" * 64), (9, "b" * 64)):
            session.add(
                SurveyResponseRow(
                    response_ref=ref,
                    invitation_id=bea.id,
                    survey="post_engagement",
                    engagement_key="ENG-2026-031",
                    respondent_email=bea.email,
                    nps=score,
                    answers={"went_well": "Pairing", "to_change": "<script>alert(1)</script> handover"},
                    source="web",
                    submitted_at=moment(date(2026, 11, 27)),
                    updated_at=moment(date(2026, 11, 27)),
                )
            )
        session.commit()
    report = plan(demo, detractors.plan_detractor_alerts, now=moment(date(2026, 11, 28)))
    assert report.alerts == 1
    alerts = outbox(demo, kind="detractor_alert")
    assert [(m.channel, m.recipient_email) for m in alerts] == [
        ("email", "heidi.sauer@example.com"),
        ("slack", "heidi.sauer@example.com"),
    ]
    email = alerts[0]
    assert "3/10" in email.subject and "Bea" in email.body_text
    assert "&lt;script&gt;" in email.body_html and "<script>" not in email.body_html
    assert "&lt;script&gt;" in alerts[1].body_text
    assert plan(demo, detractors.plan_detractor_alerts, now=moment(date(2026, 11, 29))).messages == 0
    with Session(demo) as session:
        assert (
            session.scalar(
                select(func.count()).select_from(OutboxRow).where(OutboxRow.kind == "detractor_alert")
            )
            == 2
        )


def test_a_reopened_engagement_is_invited_afresh_when_it_ends_again(demo):
    from auxeng.delivery import deliver

    plan(demo, invitations.plan_invitations, date(2026, 11, 26), now=moment(date(2026, 11, 26), 6))
    moved = edit_engagement(DEMO_TEXT, "ENG-2026-031", "    end: 2026-11-20\n", "    end: 2026-12-04\n")
    load(demo, moved, date(2026, 11, 26))  # reopened before anything went out
    report = deliver(demo, now=moment(date(2026, 11, 26), 6), settings=SETTINGS, dry_run=False, transports={})
    assert report.voided_invitations
    bea = invitation_rows(demo, "ENG-2026-031")["bea.zhang@example.com"]
    assert bea.status == "void"
    assert {m.status for m in outbox(demo, invitation_id=bea.id)} == {"skipped"}

    load(demo, moved, date(2026, 12, 7))
    plan(demo, invitations.plan_invitations, date(2026, 12, 7))
    bea = invitation_rows(demo, "ENG-2026-031")["bea.zhang@example.com"]
    assert (bea.status, bea.invited_on) == ("invited", date(2026, 12, 7))
    fresh = [m for m in outbox(demo, invitation_id=bea.id) if m.status == "pending"]
    assert [m.dedupe_key.split(":")[2] for m in fresh] == ["2026-12-07", "2026-12-07"]
