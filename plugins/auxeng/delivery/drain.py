"""Draining the outbox: guard, claim, then send in groups, each behind a committed "sending" mark.

``deliver`` runs in four steps:

1. **Guard** (bulk UPDATEs, one transaction): pending rows no longer wanted become
   ``skipped`` with a reason: recipient opted out; reminder whose invitation was
   answered; message that needs an ended engagement whose engagement was removed,
   cancelled or reopened (or is unknown). Invitations whose invitation messages
   were all withdrawn that way, with nothing of theirs ever sent, become ``void``
   (the survey planner invites again when the engagement ends again). Rows a dead
   drainer left ``sending`` whose lease ran out become ``in_doubt`` (see below).
2. **Claim** due rows (``not_before <= now``, the business clock) of one channel in
   batches (``batch_size``), with a lease on the wall clock (``claimed_until``):
   PostgreSQL ``SELECT … FOR UPDATE SKIP LOCKED`` then an UPDATE; SQLite one atomic
   ``UPDATE … WHERE id IN (SELECT … LIMIT n)``. Rows matching a guard are never
   claimed, so an opt-out that arrives mid-run is honoured. Any number of
   drainers can run at once: each row is claimed by one of them.
3. **Send** each batch through its channel's transport (one session per batch) in groups
   of ``mark_every`` rows: first the group's rows become ``sending`` (one UPDATE,
   committed), then each is handed to the transport. A row outside its recipient's send
   window (``payload["send_window"]``) at ``now`` is moved to the window's next opening
   instead. An email is sent as the bytes rendered when it was queued (see
   :mod:`auxeng.messaging.mime`): no message is built here.
4. **Mark** the group's outcomes in one transaction after it: the sent rows in one
   UPDATE (``sent`` with the transport and external id), ``failed`` on a permanent
   error, ``pending`` again with ``attempts + 1`` and the reason on a transient error
   (``failed`` once ``outbox_max_attempts`` is reached; not retried in the same run),
   ``pending`` again for rows never handed over (the transport went down). Leases of
   rows not done are released on every exit (exceptions included); only a hard kill
   leaves them to expire.

Exactly once, and what a crash costs: no row is ever handed to a transport twice. A
process killed after a group's ``sending`` commit and before its outcomes' commit leaves
the whole group ``sending``: the server may have accepted some of it, nobody knows which.
Once the lease (``outbox_lease_seconds``) expires, the next run's guard marks those rows
``in_doubt`` (reported in ``in_doubt`` and as a problem) and never sends them: a person
checks (the mail server's log, the recipient) and retries those that did not go out
(:func:`auxeng.messaging.outbox.retry`). So a hard kill leaves at most one group
(``mark_every`` messages) per drainer in doubt and never duplicates a message; what it
buys is two commits per group instead of one per message. (The one duplicate left is
inside the SMTP transport: a connection dropped mid-message is re-opened and the
message retried, see :class:`~auxeng.delivery.mail.SmtpTransport`.) A transport that
cannot connect counts no attempt: an SMTP outage cannot use up the messages' attempts.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    String,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
)

from auxeng.delivery.base import (
    MAX_REASON,
    PermanentDeliveryError,
    QueuedMessage,
    TransientDeliveryError,
    Transport,
)
from auxeng.delivery.report import MAX_SAMPLES, DeliveryReport
from auxeng.messaging import outbox
from auxeng.messaging.outbox import CHANNELS
from auxeng.registry import lifecycle
from auxeng.settings import Settings, load_settings
from auxeng.store.models import EngagementRow, OptOutRow, OutboxRow, SurveyInvitationRow
from auxeng.surveys.invitations import void_withdrawn
from auxeng.vocabulary import OutboxStatus, SkipCause

log = logging.getLogger(__name__)

ANSWERED = "answered before this reminder went out"
# Outcomes are written once per this many messages: at most this many are in doubt when a drainer
# dies. Each group costs one commit (an fsync: ~5 ms on the loaded 2-core dev machine, where 20 gave
# 0.41-0.48x the raw loop's throughput and 50 gave 0.61-0.63x; see bench/README.md).
MARK_EVERY = 50
# Stop using a transport for the rest of the run after this many transient errors in a row.
STOP_AFTER_TRANSIENT = 3
_PG_GUARD_LOCK = 0x41555847  # "AUXG": serialises guard passes of concurrent drainers

o = OutboxRow.__table__
_opt = OptOutRow.__table__
_inv = SurveyInvitationRow.__table__
_eng = EngagementRow.__table__

_MESSAGE_COLUMNS = (
    o.c.id,
    o.c.dedupe_key,
    o.c.channel,
    o.c.kind,
    o.c.recipient,
    o.c.body_text,
    o.c.subject,
    o.c.body_html,
    o.c.payload,
    o.c.recipient_email,
    o.c.attempts,
    o.c.not_before,
    o.c.engagement_key,
    o.c.invitation_id,
    o.c.rendered,
)


def utcnow() -> datetime:
    """The wall clock (leases, bookkeeping timestamps)."""
    return datetime.now(tz=UTC)


@dataclass(frozen=True)
class _Scope:
    channels: tuple[str, ...]
    kinds: tuple[str, ...] | None

    def where(
        self, channel: str | None = None, status: OutboxStatus = OutboxStatus.PENDING
    ) -> list[ColumnElement[bool]]:
        conditions = [
            o.c.status == status,
            o.c.channel == channel if channel else o.c.channel.in_(self.channels),
        ]
        if self.kinds is not None:
            conditions.append(o.c.kind.in_(self.kinds))
        return conditions


def _prefix_match(prefixes: Sequence[str]) -> ColumnElement[bool]:
    return or_(*(func.substr(o.c.recipient, 1, len(p)) == p for p in prefixes))


@dataclass(frozen=True)
class _Guard:
    cause: SkipCause
    predicate: ColumnElement[bool]
    reason: ColumnElement[Any]


def _day(column: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)  # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)


@cache
def _guards(dialect: str) -> tuple[_Guard, ...]:
    """Why a pending row is no longer wanted, most specific first (EXISTS forms: never NULL). Built
    once per dialect (~5 ms each time, and every claim uses them)."""
    needs_end = o.c.requires_ended == true()
    opted = func.lower(_opt.c.email) == o.c.recipient_email
    opted_on = select(_day(_opt.c.opted_out_at, dialect)).where(opted).limit(1).scalar_subquery()

    def engagement(condition: ColumnElement[bool]) -> ColumnElement[bool]:
        return and_(needs_end, exists().where(_eng.c.key == o.c.engagement_key, condition))

    def was(what: str) -> ColumnElement[Any]:
        return (
            literal("engagement ", String)
            + o.c.engagement_key
            + literal(f" was {what} before this went out", String)
        )

    return (
        _Guard(SkipCause.OPTED_OUT, exists().where(opted), literal("opted out on ", String) + opted_on),
        _Guard(
            SkipCause.ANSWERED,
            and_(
                o.c.stop_if_answered == true(),
                exists().where(_inv.c.id == o.c.invitation_id, _inv.c.answered_at.is_not(None)),
            ),
            literal(ANSWERED, String),
        ),
        # removed, cancelled, not (or no longer) ended: together, not lifecycle.is_ended_and_live
        _Guard(SkipCause.ENGAGEMENT_REMOVED, engagement(lifecycle.removed_clause(_eng.c)), was("removed")),
        _Guard(
            SkipCause.ENGAGEMENT_CANCELLED, engagement(lifecycle.cancelled_clause(_eng.c)), was("cancelled")
        ),
        _Guard(SkipCause.ENGAGEMENT_REOPENED, engagement(~lifecycle.ended_clause(_eng.c)), was("reopened")),
        _Guard(
            SkipCause.ENGAGEMENT_UNKNOWN,
            and_(needs_end, not_(exists().where(_eng.c.key == o.c.engagement_key))),
            literal("engagement ", String)
            + func.coalesce(o.c.engagement_key, "(none)")
            + literal(" is not in the store", String),
        ),
    )


@cache
def _unwanted(dialect: str) -> ColumnElement[bool]:
    return or_(*(g.predicate for g in _guards(dialect)))


def _guard_pass(engine: Engine, scope: _Scope, report: DeliveryReport) -> None:
    dialect = engine.dialect.name
    wall = utcnow()
    with engine.begin() as conn:
        if dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_GUARD_LOCK})
        for guard in _guards(dialect):
            channels = outbox.skip(
                conn, [*scope.where(), guard.predicate], cause=guard.cause, reason=guard.reason, wall=wall
            )
            for channel in channels:
                report.skipped[channel] += 1
                report.skipped_by[guard.cause] += 1
        report.voided_invitations += void_withdrawn(conn, wall)
        for channel in outbox.doubt(conn, scope.where(status=OutboxStatus.SENDING), wall=wall):
            report.in_doubt[channel] += 1
    for channel, number in sorted(report.in_doubt.items()):
        report.note_problem(f"{channel}: {number} message(s) in doubt: {outbox.IN_DOUBT_REASON}")
        log.error("%s: %d message(s) in doubt: %s", channel, number, outbox.IN_DOUBT_REASON)
    if report.skipped:
        log.info("Guard: skipped %s (%s)", dict(report.skipped), dict(report.skipped_by))


def _message(row: Any) -> QueuedMessage:
    values = dict(row._mapping)
    values["payload"] = values.get("payload") or {}
    return QueuedMessage(**values)


def _claim(
    conn: Connection,
    *,
    channel: str,
    transport: Transport,
    scope: _Scope,
    now: datetime,
    wall: datetime,
    until: datetime,
    limit: int,
) -> list[QueuedMessage]:
    conditions = [*scope.where(channel), o.c.not_before <= now, not_(_unwanted(conn.dialect.name))]
    prefixes = getattr(transport, "recipient_prefixes", None)
    if prefixes:
        conditions.append(_prefix_match(prefixes))
    rows = outbox.claim(conn, conditions, columns=_MESSAGE_COLUMNS, wall=wall, until=until, limit=limit)
    return sorted((_message(r) for r in rows), key=lambda m: (m.not_before or now, m.id))


def _window_delay(message: QueuedMessage, now: datetime) -> datetime | None:
    """The next opening of the recipient's send window when ``now`` is outside it."""
    window_spec = (message.payload or {}).get("send_window")
    if not window_spec:
        return None
    from auxeng.messaging.sendwindow import window_from_payload

    try:
        window = window_from_payload(message.payload)
    except (KeyError, TypeError, ValueError):
        log.warning("Outbox row %s: unreadable send window %r: ignored", message.id, window_spec)
        return None
    if window is None or window.contains(now):
        return None
    return window.next_opening(now)


@dataclass
class _Outcomes:
    """What the transport said about a group's messages, written in one transaction after it."""

    sent: list[tuple[int, str | None]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    retried: list[tuple[int, str]] = field(default_factory=list)
    handed: set[int] = field(default_factory=set)  # given to the transport (whatever it said)


@dataclass
class _Group:
    """Up to ``mark_every`` messages of a batch: those to send, and the ids marked ``sending``."""

    ready: list[QueuedMessage]
    sending: set[int]


class _ChannelRun:
    """Drains one channel with one transport; counts into the report."""

    def __init__(
        self,
        engine: Engine,
        channel: str,
        transport: Transport,
        *,
        scope: _Scope,
        now: datetime,
        settings: Settings,
        batch_size: int,
        mark_every: int,
        report: DeliveryReport,
    ) -> None:
        self.engine = engine
        self.channel = channel
        self.transport = transport
        self.scope = scope
        self.now = now
        self.lease = timedelta(seconds=max(1, settings.outbox_lease_seconds))
        self.max_attempts = max(1, settings.outbox_max_attempts)
        self.batch_size = batch_size
        self.mark_every = mark_every
        self.report = report
        self.down: str | None = None
        self.transient_in_a_row = 0
        self.until = now  # the lease of the batch being sent
        # Rows that hit a transient error keep their lease until the run ends (lease → ids).
        self.retry_later: dict[datetime, list[int]] = {}
        self.open_ids: set[int] = set()  # of the batch being sent
        self.renew_at = now

    def run(self) -> None:
        # Claims, renewals, releases and each group's two transactions (its "sending" mark, then
        # its outcomes) run on one connection, each committed at once.
        with self.engine.connect() as conn:
            try:
                self._drain(conn)
            finally:
                for until, ids in self.retry_later.items():
                    try:
                        outbox.release(conn, ids, until, None)
                    except Exception:
                        log.exception("Could not release the leases of outbox rows %s", ids)

    def _drain(self, conn: Connection) -> None:
        while self.down is None:
            wall = utcnow()
            until = wall + self.lease
            batch = _claim(
                conn,
                channel=self.channel,
                transport=self.transport,
                scope=self.scope,
                now=self.now,
                wall=wall,
                until=until,
                limit=self.batch_size,
            )
            if not batch:
                return
            self._batch(conn, batch, wall, until)

    def _batch(
        self, conn: Connection, batch: list[QueuedMessage], claimed_at: datetime, until: datetime
    ) -> None:
        self.open_ids = {m.id for m in batch}  # leased and not handed over (or settled) yet
        self.renew_at = claimed_at + self.lease / 2
        self.until = until
        groups = [batch[i : i + self.mark_every] for i in range(0, len(batch), self.mark_every)]
        try:
            try:
                with self.transport as transport:
                    group = self._start(conn, groups[0])
                    conn.commit()
                    for position in range(len(groups)):
                        outcomes = self._send(conn, transport, group)
                        self._settle(conn, outcomes, group.sending - outcomes.handed)
                        # One commit: this group's outcomes and the next group's "sending" mark.
                        if position + 1 < len(groups) and self.down is None:
                            self._renew_if_due(conn, set())
                            group = self._start(conn, groups[position + 1])
                        conn.commit()
                        if self.down is not None:
                            break
            except TransientDeliveryError as exc:  # opening the transport failed: nothing attempted
                self._stop(exc.reason)
        finally:
            reason = f"not attempted: {self.down}" if self.down else None
            left = self.open_ids
            if left and self.down:
                self.report.deferred[self.channel] += len(left)
            try:
                outbox.release(conn, left, self.until, reason and reason[:MAX_REASON])
            except Exception:  # never hide the error that got us here; the lease expires anyway
                log.exception("Could not release the leases of outbox rows %s", sorted(left))

    def _renew_if_due(self, conn: Connection, sending: set[int]) -> set[int]:
        """Past half the lease, a new lease for the rows still held (``sending`` ones too); returns
        the ``sending`` rows still held. Commits."""
        if utcnow() < self.renew_at:
            return sending
        held = self.open_ids | sending
        new_until = utcnow() + self.lease
        kept = outbox.renew(conn, sorted(held), self.until, new_until)
        if kept != held:
            log.warning("Leases lost for outbox rows %s: skipped", sorted(held - kept))
        self.open_ids &= kept
        self.until, self.renew_at = new_until, utcnow() + self.lease / 2
        return sending & kept

    def _start(self, conn: Connection, messages: list[QueuedMessage]) -> _Group:
        """Reschedule the messages outside their send window; mark the others ``sending`` (the
        caller commits before handing any of them over)."""
        wall = utcnow()
        ready = []
        for message in messages:
            if message.id not in self.open_ids:
                continue  # lost its lease
            later = _window_delay(message, self.now)
            if later is None:
                ready.append(message)
                continue
            outbox.reschedule(
                conn,
                message.id,
                later=later,
                why=f"outside the recipient's send window at {self.now:%Y-%m-%d %H:%M} UTC: "
                f"moved to {later:%Y-%m-%d %H:%M} UTC",
                at=wall,
            )
            self.open_ids.discard(message.id)
            self.report.rescheduled[self.channel] += 1
        sending = outbox.start_sending(conn, [m.id for m in ready], self.until, at=wall)
        if len(sending) < len(ready):
            lost = sorted(m.id for m in ready if m.id not in sending)
            log.warning("Leases lost for outbox rows %s: skipped", lost)
            self.open_ids.difference_update(lost)
        return _Group(ready, sending)

    def _send(self, conn: Connection, transport: Transport, group: _Group) -> _Outcomes:
        """Hand the group's ``sending`` messages to the transport. If anything escapes, what is
        known is written (the message in flight stays ``sending``: in doubt) before it goes on."""
        outcomes = _Outcomes()
        try:
            for message in group.ready:
                group.sending = self._renew_if_due(conn, group.sending)
                if message.id not in group.sending or self.down is not None:
                    continue
                outcomes.handed.add(message.id)
                self.open_ids.discard(message.id)
                self._one(transport, message, outcomes)
        except BaseException:
            self._settle(conn, outcomes, group.sending - outcomes.handed)
            conn.commit()
            raise
        return outcomes

    def _settle(self, conn: Connection, outcomes: _Outcomes, not_handed: set[int]) -> None:
        """Write a group's outcomes (the caller commits)."""
        at = utcnow()
        outbox.mark_sent(conn, outcomes.sent, sent_at=self.now, at=at, via=self.transport.name[:16])
        for row_id, why in outcomes.failed:
            outbox.mark_failed(conn, row_id, why=why, at=at)
        for row_id, why in outcomes.retried:
            outbox.note_attempt(conn, row_id, why=why, at=at)
        outbox.unsend(conn, not_handed, at=at)

    def _stop(self, reason: str) -> None:
        self.down = reason
        self.report.errors[self.channel] = reason
        log.error("%s: stopping for this run: %s", self.channel, reason)

    def _one(self, transport: Transport, message: QueuedMessage, outcomes: _Outcomes) -> None:
        try:
            external_id = transport.send(message)
        except PermanentDeliveryError as exc:
            self._failed(message, exc.reason, outcomes)
            if exc.credentials:
                self.report.credential_errors[self.channel] = exc.reason
            self.transient_in_a_row = 0
        except TransientDeliveryError as exc:
            self._transient(message, exc.reason, outcomes)
            if exc.transport_down:
                self._stop(exc.reason)
        except Exception as exc:  # a bug or an unexpected library error: retry later, never loop on it
            log.exception("Outbox row %s (%s): unexpected error", message.id, message.dedupe_key)
            self._transient(message, f"unexpected {type(exc).__name__}: {exc}", outcomes)
        else:
            outcomes.sent.append((message.id, None if external_id is None else str(external_id)[:200]))
            self.report.sent[self.channel] += 1
            self.transient_in_a_row = 0
            log.debug("Sent outbox row %s (%s) via %s", message.id, message.dedupe_key, transport.name)

    def _failed(self, message: QueuedMessage, reason: str, outcomes: _Outcomes) -> None:
        outcomes.failed.append((message.id, reason[:MAX_REASON]))
        self.report.failed[self.channel] += 1
        self.report.note_problem(f"{self.channel} #{message.id} {message.recipient}: {reason}")
        log.warning("Outbox row %s (%s) failed: %s", message.id, message.dedupe_key, reason)

    def _transient(self, message: QueuedMessage, reason: str, outcomes: _Outcomes) -> None:
        attempts = message.attempts + 1
        self.report.errors[self.channel] = reason
        if attempts >= self.max_attempts:
            self._failed(message, f"gave up after {attempts} attempts: {reason}", outcomes)
        else:
            outcomes.retried.append((message.id, reason[:MAX_REASON]))
            self.retry_later.setdefault(self.until, []).append(message.id)
            self.report.deferred[self.channel] += 1
            log.warning(
                "Outbox row %s (%s): attempt %d failed, will retry: %s",
                message.id,
                message.dedupe_key,
                attempts,
                reason,
            )
        self.transient_in_a_row += 1
        if self.down is None and self.transient_in_a_row >= STOP_AFTER_TRANSIENT:
            self._stop(f"{STOP_AFTER_TRANSIENT} transient errors in a row, the last: {reason}")


def _add(counter: Counter[str], key: str, number: int) -> None:
    """Counters in the report hold no zero entries (they compare equal to plain dicts in tests)."""
    if number > 0:
        counter[key] += number


def _tally(
    engine: Engine,
    scope: _Scope,
    now: datetime,
    transports: dict[str, Transport],
    stopped: set[str],
    report: DeliveryReport,
    *,
    dry_run: bool = False,
) -> None:
    """Count what is left pending: not due, leased elsewhere, due but unsendable, due on a stopped channel.

    A dry run leaves out the rows the guard pass would have skipped.
    """
    wall = utcnow()
    where = scope.where()
    if dry_run:
        where.append(not_(_unwanted(engine.dialect.name)))
    due = o.c.not_before <= now
    leased = and_(o.c.claimed_until.is_not(None), o.c.claimed_until >= wall)
    limited = {
        c: t.recipient_prefixes for c, t in transports.items() if getattr(t, "recipient_prefixes", None)
    }

    def count(condition: ColumnElement[bool]) -> Any:
        return func.sum(case((condition, 1), else_=0))

    columns = [
        o.c.channel,
        count(not_(due)),
        count(and_(due, leased)),
        count(and_(due, not_(leased))),
    ]
    for prefixes in limited.values():
        columns.append(count(and_(due, not_(leased), not_(_prefix_match(prefixes)))))
    with engine.connect() as conn:
        rows = conn.execute(select(*columns).where(*where).group_by(o.c.channel)).all()
    for row in rows:
        channel, not_due, held, free = row[0], int(row[1] or 0), int(row[2] or 0), int(row[3] or 0)
        unsendable = 0
        if channel not in transports:
            unsendable = free
        elif channel in limited:
            unsendable = int(row[4 + list(limited).index(channel)] or 0)
        _add(report.not_due, channel, not_due)
        _add(report.leased, channel, held)
        _add(report.waiting, channel, unsendable)
        if channel in stopped:
            _add(report.deferred, channel, free - unsendable - report.deferred[channel])


def _preview(
    engine: Engine,
    scope: _Scope,
    now: datetime,
    transports: dict[str, Transport],
    report: DeliveryReport,
) -> None:
    """A dry run: what a real run would skip, send, reschedule; nothing written."""
    dialect = engine.dialect.name
    wall = utcnow()
    earlier: list[ColumnElement[bool]] = []
    with engine.connect() as conn:
        for guard in _guards(dialect):
            condition = and_(guard.predicate, *(not_(p) for p in earlier)) if earlier else guard.predicate
            for channel, number in conn.execute(
                select(o.c.channel, func.count())
                .where(*scope.where(), outbox.free(wall), condition)
                .group_by(o.c.channel)
            ):
                _add(report.skipped, channel, number)
                _add(report.skipped_by, guard.cause, number)
            earlier.append(guard.predicate)
        candidates = conn.execute(
            select(*_MESSAGE_COLUMNS)
            .where(*scope.where(), o.c.not_before <= now, outbox.free(wall), not_(or_(false(), *earlier)))
            .order_by(o.c.not_before, o.c.id)
        ).all()
    for row in candidates:
        message = _message(row)
        transport = transports.get(message.channel)
        prefixes = getattr(transport, "recipient_prefixes", None)
        if transport is None or (prefixes and not message.recipient.startswith(tuple(prefixes))):
            continue  # counted as waiting by the tally
        if _window_delay(message, now) is not None:
            report.rescheduled[message.channel] += 1
            continue
        report.would_send.setdefault(message.channel, Counter())[message.kind] += 1
        if len(report.samples) < MAX_SAMPLES:
            what = message.subject or message.body_text[:80].replace("\n", " ")
            report.samples.append(f"{message.channel} {message.kind} → {message.recipient}: {what}")


def deliver(
    engine: Engine,
    *,
    now: datetime,
    settings: Settings | None = None,
    dry_run: bool = False,
    channels: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
    batch_size: int | None = None,
    mark_every: int = MARK_EVERY,
    transports: dict[str, Transport] | None = None,
) -> DeliveryReport:
    """Send every due outbox message (``not_before <= now``) of ``channels`` and ``kinds``.

    ``now`` is the business clock (the run's moment): it decides what is due and
    whether a recipient's send window is open, and ``sent_at`` records it (reminders and
    closing dates count from it, so a replay of a past day behaves as that day did). Leases
    and the ``updated_at`` bookkeeping use the wall clock.

    ``transports`` (channel → transport) replaces the configured transport of
    those channels; the others come from :func:`~auxeng.delivery.resolve_transports`.
    ``dry_run`` writes nothing (no guard pass, no claims) and reports what would go out.
    ``batch_size`` rows (default: the ``outbox_batch_size`` setting) are claimed at a time (one
    transport session each); their outcomes are
    written every ``mark_every`` messages (at most that many are in doubt if the process dies).
    Returns the :class:`DeliveryReport`; call its ``raise_for_problems()`` to fail
    (and have Airflow retry) when due messages were left undelivered.
    """
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    settings = settings or load_settings()
    batch_size = settings.outbox_batch_size if batch_size is None else batch_size
    if batch_size < 1 or mark_every < 1:
        raise ValueError("batch_size and mark_every must be at least 1")
    chosen = tuple(dict.fromkeys(channels)) if channels is not None else CHANNELS
    unknown = [c for c in chosen if c not in CHANNELS]
    if unknown:
        raise ValueError(f"unknown channel(s) {unknown} (expected {', '.join(CHANNELS)})")
    scope = _Scope(chosen, tuple(dict.fromkeys(kinds)) if kinds is not None else None)

    given = {c: t for c, t in (transports or {}).items() if c in chosen}
    to_resolve = [c for c in chosen if c not in given]
    resolved: dict[str, Transport] = {}
    missing: dict[str, str] = {}
    if to_resolve:
        from auxeng.delivery.resolve import resolve_transports

        resolved, missing = resolve_transports(settings, channels=to_resolve)
    active = {**resolved, **given}
    report = DeliveryReport(
        now=now,
        dry_run=dry_run,
        transports={c: t.name for c, t in active.items()},
        missing=missing,
    )
    if dry_run:
        _preview(engine, scope, now, active, report)
        _tally(engine, scope, now, active, set(), report, dry_run=True)
        log.info("Delivery dry run: %s", report.summary())
        return report

    _guard_pass(engine, scope, report)
    stopped: set[str] = set()
    for channel in chosen:
        transport = active.get(channel)
        if transport is None:
            continue
        run = _ChannelRun(
            engine,
            channel,
            transport,
            scope=scope,
            now=now,
            settings=settings,
            batch_size=batch_size,
            mark_every=mark_every,
            report=report,
        )
        run.run()
        if run.down is not None:
            stopped.add(channel)
    _tally(engine, scope, now, active, stopped, report)
    log.info("Delivery: %s", report.summary())
    return report


def pending_counts(
    engine: Engine, *, now: datetime, kinds: Iterable[str] | None = None
) -> dict[str, dict[str, int]]:
    """Pending rows per channel: ``due`` (``not_before <= now``, leased or not) and ``later``.

    What is left once every drainer of a run has finished (read-only, one query).
    """
    scope = _Scope(CHANNELS, tuple(dict.fromkeys(kinds)) if kinds is not None else None)
    due = o.c.not_before <= now
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                o.c.channel,
                func.sum(case((due, 1), else_=0)),
                func.sum(case((due, 0), else_=1)),
            )
            .where(*scope.where())
            .group_by(o.c.channel)
        ).all()
    out: dict[str, dict[str, int]] = {"due": {}, "later": {}}
    for channel, due_now, later in sorted(rows):
        for name, number in (("due", int(due_now or 0)), ("later", int(later or 0))):
            if number:
                out[name][channel] = number
    return out
