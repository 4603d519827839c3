"""The durable outbox: every message the pack sends is first a row here.

Queuing is idempotent (a deterministic ``dedupe_key`` under a unique
constraint), so planners can run any number of times. Delivery
(:mod:`auxeng.delivery`) drains due rows and marks each one as it goes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from auxeng.store.db import insert_skipping_duplicates
from auxeng.store.models import OutboxRow

CHANNELS = ("email", "slack")
EMAIL, SLACK = CHANNELS


@dataclass(frozen=True)
class OutboundMessage:
    """A rendered message ready to queue.

    ``recipient`` is an email address for email; for Slack it is a user id
    (``U…``, sent as a DM), a channel id or name (``C…``/``#name``), or
    ``email:<address>`` to look the user up by email at send time.
    ``recipient_email`` is the person behind it (opt-outs are checked against it).
    """

    dedupe_key: str
    channel: str
    kind: str
    recipient: str
    not_before: datetime
    recipient_email: str | None = None
    subject: str | None = None
    body_text: str = ""
    body_html: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    engagement_key: str | None = None
    invitation_id: int | None = None
    response_id: int | None = None
    stop_if_answered: bool = False
    requires_ended: bool = False

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"{self.dedupe_key}: unknown channel {self.channel!r} (expected email or slack)")
        if self.not_before.tzinfo is None:
            raise ValueError(f"{self.dedupe_key}: not_before must be time-zone aware")
        if len(self.dedupe_key) > 300:
            raise ValueError(f"dedupe key longer than 300 characters: {self.dedupe_key[:60]}…")


def message_id(dedupe_key: str, domain: str) -> str:
    """The stable ``Message-ID`` of an email: the same row always gets the same id."""
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
    return f"<auxeng.{digest}@{domain}>"


def samples(messages: Sequence[OutboundMessage], limit: int = 6) -> list[str]:
    """A few queued messages as log lines: channel, recipient, subject (or the start of the text)."""
    return [f"{m.channel} → {m.recipient}: {m.subject or m.body_text[:80]}" for m in messages[:limit]]


def enqueue(session: Session, messages: Iterable[OutboundMessage], *, now: datetime) -> int:
    """Queue messages; ones already queued under the same dedupe key are left as they are.

    Returns how many rows were newly queued. Runs in the caller's transaction.
    """
    rows = [
        {
            "dedupe_key": m.dedupe_key,
            "channel": m.channel,
            "kind": m.kind,
            "recipient": m.recipient,
            "recipient_email": m.recipient_email.lower() if m.recipient_email else None,
            "subject": m.subject,
            "body_text": m.body_text,
            "body_html": m.body_html,
            "payload": m.payload,
            "engagement_key": m.engagement_key,
            "invitation_id": m.invitation_id,
            "response_id": m.response_id,
            "stop_if_answered": m.stop_if_answered,
            "requires_ended": m.requires_ended,
            "status": "pending",
            "attempts": 0,
            "not_before": m.not_before,
            "created_at": now,
            "updated_at": now,
        }
        for m in messages
    ]
    if not rows:
        return 0
    statement = insert_skipping_duplicates(session, OutboxRow, ["dedupe_key"])
    queued = 0
    for start in range(0, len(rows), 500):
        result = session.execute(statement.returning(OutboxRow.id), rows[start : start + 500])
        queued += len(result.all())
    return queued
