"""Helpers for the delivery tests: settings, queued messages, engagements and invitations in the store."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from auxeng.delivery import BaseTransport, QueuedMessage
from auxeng.messaging.outbox import OutboundMessage, enqueue
from auxeng.settings import Settings, load_settings
from auxeng.store.db import session_scope
from auxeng.store.models import (
    EngagementRow,
    OptOutRow,
    OutboxRow,
    SurveyInvitationRow,
    TeamRow,
)

# The business clock of the tests: a Tuesday morning, UTC.
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
DUE = NOW - timedelta(hours=1)


def make_settings(**changes: Any) -> Settings:
    """Settings from an empty environment, with ``changes`` applied."""
    return dataclasses.replace(load_settings({}), **changes)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


def email_message(n: int, **overrides: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "dedupe_key": f"test:{n}:email",
        "channel": "email",
        "kind": "survey_invite",
        "recipient": f"person{n}@example.com",
        "recipient_email": f"person{n}@example.com",
        "not_before": DUE,
        "subject": f"How did engagement {n} go?",
        "body_text": f"Hello person {n},\n\nPlease answer: https://auxeng.example.com/s/{n}\n",
        "body_html": f"<p>Hello person {n},</p><p><a href='https://auxeng.example.com/s/{n}'>Answer</a></p>",
        "payload": {
            "to_name": f"Person {n}",
            "headers": {
                "List-Unsubscribe": f"<https://auxeng.example.com/optout/{n}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        },
    }
    values.update(overrides)
    return OutboundMessage(**values)


def slack_message(n: int, recipient: str, **overrides: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "dedupe_key": f"test:{n}:slack",
        "channel": "slack",
        "kind": "survey_invite",
        "recipient": recipient,
        "recipient_email": f"person{n}@example.com",
        "not_before": DUE,
        "body_text": f"Hello person {n}: how did it go? https://auxeng.example.com/s/{n}",
        "payload": {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"*Survey* {n}"}}]},
    }
    values.update(overrides)
    return OutboundMessage(**values)


def queue(engine: Engine, *messages: OutboundMessage) -> int:
    with session_scope(engine) as session:
        return enqueue(session, messages, now=NOW - timedelta(days=1))


def rows(engine: Engine) -> dict[str, OutboxRow]:
    """Every outbox row by dedupe key."""
    with session_scope(engine) as session:
        return {r.dedupe_key: r for r in session.scalars(select(OutboxRow).order_by(OutboxRow.id))}


def add_engagement(
    engine: Engine,
    key: str,
    *,
    status: str = "active",
    ended: bool = True,
    removed: bool = False,
) -> None:
    with session_scope(engine) as session:
        if session.get(TeamRow, "team-a") is None:
            session.add(TeamRow(key="team-a", name="Team A", updated_at=NOW))
            session.flush()
        session.add(
            EngagementRow(
                key=key,
                title=f"Engagement {key}",
                host_team_key="team-a",
                start_date=date(2026, 9, 1),
                end_date=date(2026, 11, 20),
                status=status,
                follow_up="survey",
                anonymous=False,
                fingerprint="x" * 64,
                revision=1,
                created_at=NOW - timedelta(days=60),
                updated_at=NOW - timedelta(days=1),
                removed_at=NOW - timedelta(hours=2) if removed else None,
                ended_at=NOW - timedelta(days=3) if ended else None,
            )
        )


def add_invitation(engine: Engine, engagement_key: str, email: str, *, answered: bool = False) -> int:
    with session_scope(engine) as session:
        invitation = SurveyInvitationRow(
            survey="host",
            engagement_key=engagement_key,
            email=email,
            side="host",
            role="lead",
            status="invited",
            invited_on=date(2026, 11, 21),
            closes_at=NOW + timedelta(days=18),
            reminders_queued=0,
            answered_at=NOW - timedelta(hours=5) if answered else None,
            created_at=NOW - timedelta(days=3),
            updated_at=NOW - timedelta(days=3),
        )
        session.add(invitation)
        session.flush()
        return invitation.id


def invitation_status(engine: Engine, invitation_id: int) -> tuple[str, str | None]:
    with session_scope(engine) as session:
        row = session.get(SurveyInvitationRow, invitation_id)
        return row.status, row.skip_reason


def opt_out(engine: Engine, email: str, when: datetime) -> None:
    with session_scope(engine) as session:
        session.add(OptOutRow(email=email, opted_out_at=when, source="link"))


class Recorder(BaseTransport):
    """A transport that keeps what it is given (for tests of the outbox logic, not of a service).

    ``errors`` maps a recipient to the exception its sends raise.
    """

    name = "recorder"

    def __init__(self, channel: str = "email", errors: dict[str, BaseException] | None = None) -> None:
        self.channel = channel
        self.errors = errors or {}
        self.sent: list[QueuedMessage] = []
        self.opened = 0

    def __enter__(self) -> Recorder:
        self.opened += 1
        return self

    def send(self, message: QueuedMessage) -> str | None:
        error = self.errors.get(message.recipient)
        if error is not None:
            raise error
        self.sent.append(message)
        return f"rec-{message.id}"

    @property
    def recipients(self) -> list[str]:
        return [m.recipient for m in self.sent]
