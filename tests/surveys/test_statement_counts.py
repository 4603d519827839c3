"""Planning sends a fixed number of statements, however many engagements the store holds.

Counted with a ``before_cursor_execute`` listener (counts are deterministic, unlike times);
``bench/planning.py`` measures the same at 10,000 engagements, with the seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from auxeng.messaging.outbox import ENQUEUE_CHUNK, OutboundMessage, enqueue
from auxeng.settings import load_settings
from auxeng.store.models import OutboxRow, SurveyInvitationRow
from auxeng.surveys import invitations
from tests.support.statements import (
    PLAN_AS_OF,
    PLAN_NOW,
    counting,
    fresh_store,
    load_synthetic,
    plan_step,
    plan_surveys,
)

SETTINGS = load_settings({"AUXENG_PUBLIC_URL": "https://airflow.example.com/auxeng"})
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_planning_surveys_takes_the_same_statements_at_100_and_1000_engagements(store_url, tmp_path):
    counts = {}
    for engagements in (100, 1000):
        engine = fresh_store(store_url, tmp_path, f"auxeng-{engagements}.db")
        load_synthetic(engine, engagements)
        report, statements = plan_surveys(engine, SETTINGS)
        assert report.invited > 0 and report.stale  # both paths of the planner ran
        assert report.messages == 2 * report.invited
        assert statements.inserts("auxeng_survey_invitations") == 1, statements.by_verb()
        assert statements.inserts("auxeng_outbox") == 1, statements.by_verb()
        counts[engagements] = len(statements)
        with Session(engine) as session:
            stored = session.scalar(select(func.count()).select_from(SurveyInvitationRow))
            queued = session.scalar(select(func.count()).select_from(OutboxRow))
        # A second run queues nothing and invites nobody: idempotent, in as few statements.
        again, _ = plan_surveys(engine, SETTINGS)
        assert (again.invited, again.messages) == (0, 0)
        with Session(engine) as session:
            assert session.scalar(select(func.count()).select_from(SurveyInvitationRow)) == stored
            assert session.scalar(select(func.count()).select_from(OutboxRow)) == queued
        engine.dispose()
    assert counts[100] == counts[1000], counts
    assert counts[100] <= 12, counts  # 9 SELECTs, one INSERT of invitations, one of messages


def test_reminding_takes_the_same_statements_at_100_and_1000_engagements(store_url, tmp_path):
    counts = {}
    for engagements in (100, 1000):
        engine = fresh_store(store_url, tmp_path, f"auxeng-{engagements}.db")
        load_synthetic(engine, engagements)
        invited, _ = plan_surveys(engine, SETTINGS)
        with engine.begin() as conn:  # every invitation reached its person 3 hours later
            conn.execute(update(OutboxRow).values(status="sent", sent_at=PLAN_NOW + timedelta(hours=3)))
        report, statements = plan_step(
            engine, invitations.plan_reminders, SETTINGS, as_of=PLAN_AS_OF + timedelta(days=4)
        )
        assert report.reminders == invited.invited and report.messages == 2 * invited.invited
        assert statements.inserts("auxeng_outbox") == 1, statements.by_verb()
        assert statements.by_verb()["UPDATE"] <= 2, statements.by_verb()  # when sent, how many reminders
        counts[engagements] = len(statements)
        with Session(engine) as session:
            assert session.scalar(select(func.sum(SurveyInvitationRow.reminders_queued))) == invited.invited
        engine.dispose()
    assert counts[100] == counts[1000], counts
    assert counts[100] <= 10, counts


def _alternating(count: int, start: int = 0) -> list[OutboundMessage]:
    return [
        OutboundMessage(
            dedupe_key=f"test:{n}:{'email' if n % 2 == 0 else 'slack'}",
            channel="email" if n % 2 == 0 else "slack",
            kind="test",
            recipient=f"p{n}@example.com" if n % 2 == 0 else f"U{n:06d}",
            recipient_email=f"P{n}@Example.com",
            subject=f"Hello {n}" if n % 2 == 0 else None,
            body_text=f"text {n}",
            body_html=f"<p>{n}</p>" if n % 2 == 0 else None,
            payload={"n": n},
            not_before=NOW + timedelta(minutes=n),
            invitation_id=None if n % 3 else n,
            stop_if_answered=n % 5 == 0,
        )
        for n in range(start, start + count)
    ]


def test_alternating_email_and_slack_rows_go_in_a_few_inserts_and_never_twice(store):
    messages = _alternating(1000)
    with counting(store) as statements, Session(store) as session:
        assert enqueue(session, messages, now=NOW) == 1000
        session.commit()
    assert statements.inserts("auxeng_outbox") == -(-1000 // ENQUEUE_CHUNK) == 2, statements.by_verb()

    # Same dedupe keys again (and 10 new ones, one of them twice in the batch): only the new ones.
    again = _alternating(1000) + _alternating(10, start=1000) + _alternating(1, start=1000)
    with counting(store) as statements, Session(store) as session:
        assert enqueue(session, again, now=NOW + timedelta(hours=1)) == 10
        session.commit()
    assert statements.inserts("auxeng_outbox") == 3

    with Session(store) as session:
        assert session.scalar(select(func.count()).select_from(OutboxRow)) == 1010
        email, slack = (
            session.scalars(select(OutboxRow).where(OutboxRow.dedupe_key == key)).one()
            for key in ("test:0:email", "test:1:slack")
        )
        # The first write stands: created at NOW, not an hour later.
        assert (email.created_at, email.subject, email.body_html, email.recipient_email) == (
            NOW,
            "Hello 0",
            "<p>0</p>",
            "p0@example.com",
        )
        assert (slack.subject, slack.body_html, slack.payload, slack.invitation_id) == (
            None,
            None,
            {"n": 1},
            None,
        )
        assert (slack.status, slack.attempts, slack.stop_if_answered, slack.requires_ended) == (
            "pending",
            0,
            False,
            False,
        )


def test_enqueueing_nothing_sends_nothing(store):
    with counting(store) as statements, Session(store) as session:
        assert enqueue(session, [], now=NOW) == 0
    assert len(statements) == 0
