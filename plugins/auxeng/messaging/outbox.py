"""The durable outbox: every message the pack sends is first a row here.

This module owns every change to ``auxeng_outbox``; nothing else updates its rows.

- :func:`enqueue`: idempotent (a deterministic ``dedupe_key`` under a unique constraint),
  so planners can run any number of times.
- :func:`withdraw_each` / :func:`which_went_out`: a planner takes back pending messages it no
  longer wants (moved check-ins, stopped follow-ups), or asks which already went out: many at once;
  :func:`withdraw_superseded` takes back the older versions of a message a planner queues anew.
- :func:`retry`: a failed message is queued again (the dashboard).
- Delivery (:mod:`auxeng.delivery.drain`) goes through :func:`claim`, :func:`renew`,
  :func:`release`, :func:`skip`, :func:`reschedule`, then per group of messages
  :func:`start_sending` before handing them to the transport and, after, :func:`mark_sent`
  (the group's sent rows in one UPDATE), :func:`mark_failed`, :func:`note_attempt` and
  :func:`unsend`; :func:`doubt` for the rows a dead drainer left ``sending``.

Status: ``pending`` → ``sending`` → ``sent`` | ``failed`` | back to ``pending`` (transient
error, or not handed over); ``pending`` → ``skipped`` (with a :class:`SkipCause`);
``sending`` → ``in_doubt`` once its drainer's lease ran out (it died before recording the
outcome: the message may have gone out, so it is not sent again by itself);
``retry`` takes ``failed`` or ``in_doubt`` back to ``pending``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Text, bindparam, case, literal, or_, select, update
from sqlalchemy.orm import Session

from auxeng.messaging.mime import message_id as message_id  # re-exported: callers know it from here
from auxeng.messaging.mime import render
from auxeng.store.db import insert_skipping_duplicates
from auxeng.store.models import OutboxRow, UTCDateTime
from auxeng.vocabulary import OutboxStatus, SkipCause

CHANNELS = ("email", "slack")
EMAIL, SLACK = CHANNELS
ENQUEUE_CHUNK = 500  # rows per INSERT statement (19 columns: 9,500 parameters, under SQLite's 32,766)
WITHDRAW_CHUNK = 200  # prefixes (or engagements) per statement when withdrawing or looking up many
_o = OutboxRow.__table__
_MOMENT, _REASON = UTCDateTime(), Text()


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


def unsubscribe_headers(link: str) -> dict[str, str]:
    """The headers of a bulk email with which clients offer one-click unsubscribe (RFC 2369, RFC 8058)."""
    return {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def samples(messages: Sequence[OutboundMessage], limit: int = 6) -> list[str]:
    """A few queued messages as log lines: channel, recipient, subject (or the start of the text)."""
    return [f"{m.channel} → {m.recipient}: {m.subject or m.body_text[:80]}" for m in messages[:limit]]


def enqueue(session: Session, messages: Iterable[OutboundMessage], *, now: datetime) -> int:
    """Queue messages; ones already queued under the same dedupe key are left as they are.

    Returns how many rows were newly queued. Runs in the caller's transaction. An email's
    bytes are rendered here (:func:`auxeng.messaging.mime.render`), once: delivery only adds
    the From, Date and Message-ID lines.

    Every row names every column it sets (None where a message has none), and they go through
    Core (``insert(table)``, executemany): one INSERT … RETURNING per :data:`ENQUEUE_CHUNK` rows,
    whatever the mix of email and Slack rows. (The ORM's bulk insert leaves out None values and
    splits the rows on their column sets: alternating email/Slack rows took one statement each.)
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
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "not_before": m.not_before,
            "created_at": now,
            "updated_at": now,
            "rendered": render(m) if m.channel == EMAIL else None,
        }
        for m in messages
    ]
    if not rows:
        return 0
    statement = insert_skipping_duplicates(session, _o, ["dedupe_key"]).returning(_o.c.id)
    queued = 0
    for start in range(0, len(rows), ENQUEUE_CHUNK):
        result = session.execute(statement, rows[start : start + ENQUEUE_CHUNK])
        queued += len(result.all())
    return queued


# --- planners ---------------------------------------------------------------------------


def withdraw_each(
    session: Session,
    *,
    kind: str,
    prefixes: Mapping[str, tuple[str, datetime]] | None = None,
    engagements: Mapping[str, tuple[str, datetime]] | None = None,
) -> int:
    """Skip (cause ``withdrawn``) the pending messages of ``kind`` under each dedupe prefix (or of
    each engagement) that no drainer holds at that one's moment, with its reason: ``prefixes`` or
    ``engagements`` map each to (reason, moment). One UPDATE per :data:`WITHDRAW_CHUNK` of them;
    returns how many messages were withdrawn."""
    column = OutboxRow.dedupe_key if prefixes is not None else OutboxRow.engagement_key
    items = list((prefixes if prefixes is not None else engagements or {}).items())

    def hit(value: str) -> ColumnElement[bool]:
        return column.startswith(value, autoescape=True) if prefixes is not None else column == value

    withdrawn = 0
    for start in range(0, len(items), WITHDRAW_CHUNK):
        chunk = items[start : start + WITHDRAW_CHUNK]
        at = case(*((hit(value), literal(moment, _MOMENT)) for value, (_why, moment) in chunk))
        why = case(*((hit(value), literal(reason, _REASON)) for value, (reason, _at) in chunk))
        withdrawn += (
            session.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.kind == kind,
                    or_(*(hit(value) for value, _ in chunk)),
                    OutboxRow.status == OutboxStatus.PENDING,
                    or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < at),
                )
                .values(
                    status=OutboxStatus.SKIPPED, skip_cause=SkipCause.WITHDRAWN, reason=why, updated_at=at
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            or 0
        )
    return withdrawn


def withdraw_superseded(
    session: Session, *, kind: str, current: Mapping[str, str], why: str, now: datetime
) -> int:
    """Skip (cause ``withdrawn``, reason ``why``) the pending messages of ``kind`` under each dedupe
    prefix of ``current`` whose dedupe key does not start with the version now wanted there
    (``current[prefix]``, itself under ``prefix``), and that no drainer holds. One UPDATE per
    :data:`WITHDRAW_CHUNK` prefixes; returns how many messages were withdrawn."""
    items = list(current.items())
    withdrawn = 0
    for start in range(0, len(items), WITHDRAW_CHUNK):
        chunk = items[start : start + WITHDRAW_CHUNK]
        withdrawn += (
            session.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.kind == kind,
                    or_(
                        *(
                            OutboxRow.dedupe_key.startswith(prefix, autoescape=True)
                            & ~OutboxRow.dedupe_key.startswith(wanted, autoescape=True)
                            for prefix, wanted in chunk
                        )
                    ),
                    OutboxRow.status == OutboxStatus.PENDING,
                    or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < now),
                )
                .values(
                    status=OutboxStatus.SKIPPED, skip_cause=SkipCause.WITHDRAWN, reason=why, updated_at=now
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            or 0
        )
    return withdrawn


def which_went_out(session: Session, *, kind: str, dedupe_prefixes: Iterable[str], now: datetime) -> set[str]:
    """The prefixes of ``dedupe_prefixes`` under which a message of ``kind`` was sent (or is being
    sent right now, or may have been: ``in_doubt``): one query per :data:`WITHDRAW_CHUNK` prefixes."""
    prefixes = list(dict.fromkeys(dedupe_prefixes))
    found: set[str] = set()
    for start in range(0, len(prefixes), WITHDRAW_CHUNK):
        chunk = prefixes[start : start + WITHDRAW_CHUNK]
        keys = session.scalars(
            select(OutboxRow.dedupe_key).where(
                OutboxRow.kind == kind,
                or_(*(OutboxRow.dedupe_key.startswith(p, autoescape=True) for p in chunk)),
                or_(
                    OutboxRow.status.in_((OutboxStatus.SENT, OutboxStatus.SENDING, OutboxStatus.IN_DOUBT)),
                    (OutboxRow.status == OutboxStatus.PENDING) & (OutboxRow.claimed_until >= now),
                ),
            )
        )
        for key in keys:
            found.update(p for p in chunk if key.startswith(p))
    return found


def first_sent(session: Session, *, kind: str, dedupe_prefixes: Iterable[str]) -> dict[str, datetime]:
    """For each prefix, when the first of its messages of ``kind`` went out (prefixes none of whose
    messages went out yet are left out). One query."""
    prefixes = list(dict.fromkeys(dedupe_prefixes))
    if not prefixes:
        return {}
    rows = session.execute(
        select(OutboxRow.dedupe_key, OutboxRow.sent_at).where(
            OutboxRow.kind == kind,
            OutboxRow.status == OutboxStatus.SENT,
            or_(*(OutboxRow.dedupe_key.startswith(p, autoescape=True) for p in prefixes)),
        )
    )
    found: dict[str, datetime] = {}
    for key, sent_at in rows:
        for prefix in prefixes:
            if key.startswith(prefix) and (prefix not in found or sent_at < found[prefix]):
                found[prefix] = sent_at
    return found


def retry(session: Session, message_id: int, *, now: datetime) -> bool:
    """A failed or in-doubt message becomes pending again (no attempts, no reason, due ``now``);
    False if it is neither (any more). An in-doubt message may have gone out: retry it once
    you know it did not (the mail server's log, the recipient)."""
    changed = session.execute(
        update(OutboxRow)
        .where(
            OutboxRow.id == message_id,
            OutboxRow.status.in_((OutboxStatus.FAILED, OutboxStatus.IN_DOUBT)),
        )
        .values(
            status=OutboxStatus.PENDING,
            attempts=0,
            reason=None,
            not_before=now,
            claimed_until=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(changed)


# --- delivery ---------------------------------------------------------------------------

PENDING = _o.c.status == OutboxStatus.PENDING


def _at(name: str) -> Any:
    return bindparam(name, type_=UTCDateTime())


SENDING = _o.c.status == OutboxStatus.SENDING
IN_DOUBT_REASON = (
    "its drainer stopped after handing it to the transport and before recording the outcome: "
    "it may have been delivered, so it is not sent again (retry it once you know it was not)"
)

# Per-message marks: one UPDATE by primary key each, compiled once.
_MARK_FAILED = (
    update(_o)
    .where(_o.c.id == bindparam("row_id"), SENDING)
    .values(
        status=OutboxStatus.FAILED,
        reason=bindparam("why"),
        attempts=_o.c.attempts + 1,
        claimed_until=None,
        updated_at=_at("at"),
    )
)
_NOTE_ATTEMPT = (
    update(_o)
    .where(_o.c.id == bindparam("row_id"), SENDING)
    .values(
        status=OutboxStatus.PENDING, reason=bindparam("why"), attempts=_o.c.attempts + 1, updated_at=_at("at")
    )
)  # the lease is kept until the end of the run: not retried in the same run
_RESCHEDULE = (
    update(_o)
    .where(_o.c.id == bindparam("row_id"), PENDING)
    .values(not_before=_at("later"), reason=bindparam("why"), claimed_until=None, updated_at=_at("at"))
)


_START_SENDING = (
    update(_o)
    .where(_o.c.id.in_(bindparam("ids", expanding=True)), PENDING, _o.c.claimed_until == _at("until"))
    .values(status=OutboxStatus.SENDING, updated_at=_at("at"))
    .returning(_o.c.id)
)


def start_sending(conn: Connection, ids: Sequence[int], until: datetime, *, at: datetime) -> set[int]:
    """The rows of ``ids`` still leased until ``until`` become ``sending``: from now on no drainer
    sends them again, whatever happens to this one. Returns the ids kept. The caller commits,
    before handing any of them to its transport."""
    if not ids:
        return set()
    rows = conn.execute(_START_SENDING, {"ids": list(ids), "until": until, "at": at}).all()
    return {r[0] for r in rows}


def mark_sent(
    conn: Connection,
    sent: Sequence[tuple[int, str | None]],
    *,
    sent_at: datetime,
    at: datetime,
    via: str,
) -> None:
    """The transport confirmed these ``(row id, external id)``: ``sent`` at ``sent_at`` (the run's
    moment: rules that count days from when a person got a message read it), with the transport's
    name. One UPDATE for all of them; a row already ``in_doubt`` (its lease ran out meanwhile) is
    settled too."""
    if not sent:
        return
    ids = [row_id for row_id, _ in sent]
    externals = {row_id: external for row_id, external in sent if external is not None}
    conn.execute(
        update(_o)
        .where(_o.c.id.in_(ids), _o.c.status.in_((OutboxStatus.SENDING, OutboxStatus.IN_DOUBT)))
        .values(
            status=OutboxStatus.SENT,
            sent_at=sent_at,
            updated_at=at,
            transport=via,
            external_id=case(externals, value=_o.c.id, else_=None) if externals else None,
            attempts=_o.c.attempts + 1,
            claimed_until=None,
            reason=None,
        )
    )


def mark_failed(conn: Connection, row_id: int, *, why: str, at: datetime) -> None:
    """A permanent error (or attempts used up): ``failed`` with the reason."""
    conn.execute(_MARK_FAILED, {"row_id": row_id, "why": why, "at": at})


def note_attempt(conn: Connection, row_id: int, *, why: str, at: datetime) -> None:
    """A transient error (the transport refused it): ``pending`` again, one more attempt counted,
    the reason kept."""
    conn.execute(_NOTE_ATTEMPT, {"row_id": row_id, "why": why, "at": at})


def unsend(conn: Connection, ids: Iterable[int], *, at: datetime) -> None:
    """Rows marked ``sending`` that were never handed to the transport: ``pending`` again."""
    ids = list(ids)
    if ids:
        conn.execute(
            update(_o).where(_o.c.id.in_(ids), SENDING).values(status=OutboxStatus.PENDING, updated_at=at)
        )


def reschedule(conn: Connection, row_id: int, *, later: datetime, why: str, at: datetime) -> None:
    """Due again at ``later`` (the recipient's send window opens then); the lease is let go."""
    conn.execute(_RESCHEDULE, {"row_id": row_id, "later": later, "why": why, "at": at})


def doubt(conn: Connection, conditions: Sequence[ColumnElement[bool]], *, wall: datetime) -> list[str]:
    """``sending`` rows matching ``conditions`` whose lease ran out (their drainer died between
    handing them over and recording the outcome) become ``in_doubt``; returns the channel of each."""
    rows = conn.execute(
        update(_o)
        .where(SENDING, *conditions, _o.c.claimed_until < wall)
        .values(status=OutboxStatus.IN_DOUBT, reason=IN_DOUBT_REASON, claimed_until=None, updated_at=wall)
        .returning(_o.c.channel)
    ).all()
    return [channel for (channel,) in rows]


def free(wall: datetime) -> ColumnElement[bool]:
    """Not held by a live lease."""
    return or_(_o.c.claimed_until.is_(None), _o.c.claimed_until < wall)


def skip(
    conn: Connection,
    conditions: Sequence[ColumnElement[bool]],
    *,
    cause: SkipCause,
    reason: ColumnElement[Any],
    wall: datetime,
) -> list[str]:
    """Pending rows matching ``conditions`` and no live lease become ``skipped`` with ``cause``;
    returns the channel of each."""
    rows = conn.execute(
        update(_o)
        .where(PENDING, *conditions, free(wall))
        .values(
            status=OutboxStatus.SKIPPED, skip_cause=cause, reason=reason, claimed_until=None, updated_at=wall
        )
        .returning(_o.c.channel)
    ).all()
    return [channel for (channel,) in rows]


def claim(
    conn: Connection,
    conditions: Sequence[ColumnElement[bool]],
    *,
    columns: Sequence[Any],
    wall: datetime,
    until: datetime,
    limit: int,
) -> Sequence[Row[Any]]:
    """Lease up to ``limit`` due pending rows matching ``conditions`` (oldest first) until ``until``;
    each row goes to exactly one of any number of concurrent drainers. Commits."""
    due = (
        select(_o.c.id)
        .where(PENDING, free(wall), *conditions)
        .order_by(_o.c.not_before, _o.c.id)
        .limit(limit)
    )
    leased = update(_o).values(claimed_until=until).returning(*columns)
    if conn.dialect.name == "postgresql":
        ids = conn.execute(due.with_for_update(skip_locked=True, of=_o)).scalars().all()
        rows = conn.execute(leased.where(_o.c.id.in_(ids))).all() if ids else []
    else:  # SQLite: one statement holds the write lock from the SELECT to the UPDATE
        rows = conn.execute(leased.where(_o.c.id.in_(due.scalar_subquery()), free(wall))).all()
    conn.commit()
    return rows


def renew(conn: Connection, ids: Sequence[int], until: datetime, new_until: datetime) -> set[int]:
    """Extend the leases still held (``claimed_until == until``, ``pending`` or ``sending``); returns
    the ids kept. Commits."""
    rows = conn.execute(
        update(_o)
        .where(
            _o.c.id.in_(ids),
            _o.c.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
            _o.c.claimed_until == until,
        )
        .values(claimed_until=new_until)
        .returning(_o.c.id)
    ).all()
    conn.commit()
    return {r[0] for r in rows}


def release(conn: Connection, ids: Iterable[int], until: datetime, reason: str | None) -> None:
    """Let go of the leases still held, noting ``reason`` (why they were not attempted). Commits."""
    ids = list(ids)
    if not ids:
        return
    values: dict[str, Any] = {"claimed_until": None}
    if reason is not None:
        values["reason"] = reason
    conn.execute(update(_o).where(_o.c.id.in_(ids), PENDING, _o.c.claimed_until == until).values(**values))
    conn.commit()
