"""Post-engagement surveys: who is asked, when, and on which channels.

Planning only writes rows (invitations and outbox messages); delivery is the
outbox's job. Every step is idempotent: invitations are unique per survey,
engagement and person, and messages per dedupe key, so a re-run, a retry or
an asset-triggered run on top of the daily one never asks anyone twice.

Rules (thresholds in :class:`auxeng.settings.Settings`):

- When an engagement ends, its host-side people get the ``post_engagement``
  survey and its platform-side engineers and advisors the internal ``retro``.
  Engagements that ended more than ``survey_max_age_days`` before the run's
  date are not surveyed (no flood of stale invitations on first install).
- Fatigue: nobody gets more than one survey invitation within ``fatigue_days``;
  the later one is recorded as ``skipped`` with the reason.
- Opted-out people are recorded as ``skipped`` and never messaged.
- Reminders ``reminder_days`` after the invitation, until the person answers.
- Every message to a person goes out 09:00-17:00 on a weekday, their time.
- A detractor answer (0-6) alerts the engagement's AuxEng lead, once per response
  (:mod:`auxeng.surveys.detractors`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, exists, func, insert, not_, select, true, update
from sqlalchemy.orm import Session

from auxeng.messaging.outbox import OutboundMessage, enqueue, samples
from auxeng.messaging.planner import EngagementView, MessagePlanner, end_of_day
from auxeng.registry.lifecycle import ended_and_live_clause
from auxeng.settings import Settings
from auxeng.store.db import same_update_columns
from auxeng.store.models import (
    EngagementRow,
    MemberRow,
    OutboxRow,
    SurveyInvitationRow,
)
from auxeng.vocabulary import (
    END_OF_ENGAGEMENT_SURVEYS,
    ENGAGEMENT_GONE,
    InvitationStatus,
    MessageKind,
    OutboxStatus,
    SurveyKind,
)

SURVEY_BY_SIDE = {"host": SurveyKind.POST_ENGAGEMENT, "auxeng": SurveyKind.RETRO}
SURVEY_KINDS = (MessageKind.SURVEY_INVITE, MessageKind.SURVEY_REMINDER, MessageKind.DETRACTOR_ALERT)
REMINDER_TEMPLATES = {SurveyKind.CHECKIN: "checkin_survey"}


@dataclass
class PlanReport:
    """What a planning step queued (or, in a dry run, would have queued)."""

    invited: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    reminders: int = 0
    alerts: int = 0
    messages: int = 0
    engagements: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "invited": self.invited,
            "skipped": dict(self.skipped),
            "reminders": self.reminders,
            "alerts": self.alerts,
            "messages_queued": self.messages,
            "engagements": self.engagements,
            "too_old_to_survey": self.stale,
        }


def closing_moment(invited_on: date, settings: Settings, window_days: int | None = None) -> datetime:
    """End of the last day a survey sent on ``invited_on`` accepts answers: ``window_days``
    (default ``survey_window_days``) later, program time zone."""
    days = settings.survey_window_days if window_days is None else window_days
    return end_of_day(invited_on + timedelta(days=days), settings)


def reminder_moments(sent_at: datetime | None, settings: Settings) -> list[datetime]:
    """When each reminder falls due: ``reminder_days`` after the invitation reached the person
    (none while it has not gone out). The send window then holds each one as any message."""
    if sent_at is None:
        return []
    return [sent_at + timedelta(days=days) for days in settings.reminder_days]


def reminder_due(sent_at: datetime | None, reminders_queued: int, settings: Settings, by: datetime) -> int:
    """How many reminders are due by ``by`` for an invitation that reached its person at ``sent_at``
    and was already reminded ``reminders_queued`` times."""
    due = sum(1 for moment in reminder_moments(sent_at, settings) if moment <= by)
    return max(due, reminders_queued)


def fatigue_blocker(
    previous: Iterable[tuple[date, str, str]], invited_on: date, fatigue_days: int
) -> tuple[date, str, str] | None:
    """The latest earlier invitation (date, engagement, survey) within ``fatigue_days`` of ``invited_on``."""
    if fatigue_days <= 0:
        return None
    window_start = invited_on - timedelta(days=fatigue_days)
    hits = [entry for entry in previous if window_start < entry[0] <= invited_on]
    return max(hits) if hits else None


def _recent_invitations(
    session: Session, emails: set[str], since: date, settings: Settings
) -> dict[str, list[tuple[date, str, str]]]:
    """Each person's recent end-of-engagement invitations: (the day it reached them, or was queued
    if it has not gone out yet; engagement; survey)."""
    rows = session.execute(
        select(
            SurveyInvitationRow.email,
            SurveyInvitationRow.invited_on,
            SurveyInvitationRow.sent_at,
            SurveyInvitationRow.engagement_key,
            SurveyInvitationRow.survey,
        ).where(
            SurveyInvitationRow.status == InvitationStatus.INVITED,
            SurveyInvitationRow.invited_on >= since,
            SurveyInvitationRow.survey.in_(tuple(SURVEY_BY_SIDE.values())),
        )
    )
    recent: dict[str, list[tuple[date, str, str]]] = defaultdict(list)
    for email, invited_on, sent_at, engagement_key, survey in rows:
        if email in emails:
            day = sent_at.astimezone(settings.timezone).date() if sent_at else invited_on
            recent[email].append((day, engagement_key, survey))
    return recent


def skip_category(reason: str | None) -> str:
    """The kind of a skip reason, for counts: "opted out", "fatigue", ..."""
    return (reason or "").split(":")[0].split(" on ")[0]


def invitation_status(
    planner: MessagePlanner, email: str, blocker: Callable[[str], str | None] | None = None
) -> tuple[str, str | None]:
    """``invited``, or ``skipped`` with the reason: opted out, or what ``blocker`` says (e.g. fatigue)."""
    if email in planner.opted_out:
        return InvitationStatus.SKIPPED, f"opted out on {planner.opted_out[email]:%Y-%m-%d}"
    if blocker is not None and (why := blocker(email)) is not None:
        return InvitationStatus.SKIPPED, why
    return InvitationStatus.INVITED, None


def insert_invitations(session: Session, rows: list[dict[str, Any]]) -> list[SurveyInvitationRow]:
    """New invitations (dicts naming every column, the same columns each) inserted through Core:
    one INSERT … RETURNING per page of rows. Returns them in the order given, as detached rows
    with their ids (to read, e.g. for the links; not to change).

    The ids come back matched by the unique (survey, engagement, email, round), not by position:
    asking for them in order makes SQLAlchemy insert row by row on SQLite (no sentinel column).
    """
    if not rows:
        return []
    table = SurveyInvitationRow.__table__
    unique = (table.c.survey, table.c.engagement_key, table.c.email, table.c.round)
    returned = session.execute(insert(table).returning(table.c.id, *unique), rows)
    ids = {tuple(found[1:]): found[0] for found in returned}
    return [
        SurveyInvitationRow(id=ids[(r["survey"], r["engagement_key"], r["email"], r["round"])], **r)
        for r in rows
    ]


def invite(
    session: Session,
    planner: MessagePlanner,
    existing: SurveyInvitationRow | None,
    *,
    survey: str,
    engagement_key: str,
    email: str,
    side: str,
    role: str,
    as_of: date,
    now: datetime,
    closes_at: datetime,
    round_: int = 0,
    blocker: Callable[[str], str | None] | None = None,
) -> SurveyInvitationRow | None:
    """Invite one person to one survey of one engagement, or record why not (opted out, or the
    reason ``blocker`` gives, e.g. fatigue). Used by every survey kind (end of engagement, check-in,
    monthly follow-up: ``round_`` tells its months apart); planners go through :class:`Invitations`.

    Returns the invitation, ``invited`` or ``skipped``, or None when the person already has one
    that stands: only a new or a ``void`` invitation (withdrawn before anything went out) is
    (re)invited. A ``skipped`` one stays skipped, so nobody is asked twice by accident.
    The caller queues the messages of the ``invited`` ones (after a flush gives them ids).
    """
    if existing is not None and existing.status != InvitationStatus.VOID:
        return None
    values = _invitation_values(
        planner, survey, engagement_key, email, side, role, as_of, now, closes_at, round_, blocker
    )
    if existing is None:
        invitation = SurveyInvitationRow(**values)
        session.add(invitation)
        return invitation
    for name in ("status", "skip_reason", "invited_on", "closes_at", "reminders_queued", "updated_at"):
        setattr(existing, name, values[name])
    return existing


def _invitation_values(
    planner: MessagePlanner,
    survey: str,
    engagement_key: str,
    email: str,
    side: str,
    role: str,
    as_of: date,
    now: datetime,
    closes_at: datetime,
    round_: int,
    blocker: Callable[[str], str | None] | None,
) -> dict[str, Any]:
    """Every column of a new invitation (``invited``, or ``skipped`` with the reason)."""
    status, reason = invitation_status(planner, email, blocker)
    return {
        "survey": survey,
        "engagement_key": engagement_key,
        "email": email,
        "side": side,
        "role": role,
        "round": round_,
        "status": status,
        "skip_reason": reason,
        "invited_on": as_of,
        "closes_at": closes_at,
        "reminders_queued": 0,
        "created_at": now,
        "updated_at": now,
    }


@dataclass
class Planned:
    """One invitation a planning run made: its status and reason, and its stored row (at once for
    a void one invited again, after :meth:`Invitations.save` for a new one)."""

    status: str
    skip_reason: str | None
    row: SurveyInvitationRow | None = None

    @property
    def saved(self) -> SurveyInvitationRow:
        """The stored invitation (with its id)."""
        if self.row is None:
            raise RuntimeError("invitation not saved yet: call Invitations.save() first")
        return self.row


class Invitations:
    """The invitations of one planning run, each decided by :func:`invite`'s rule and saved
    together: the new ones with one INSERT … RETURNING (:func:`insert_invitations`), the void
    ones invited again in place (one flush)."""

    def __init__(self, session: Session, planner: MessagePlanner):
        self.session = session
        self.planner = planner
        self._new: list[tuple[dict[str, Any], Planned]] = []
        self._again: list[SurveyInvitationRow] = []

    def invite(
        self,
        existing: SurveyInvitationRow | None,
        *,
        survey: str,
        engagement_key: str,
        email: str,
        side: str,
        role: str,
        as_of: date,
        now: datetime,
        closes_at: datetime,
        round_: int = 0,
        blocker: Callable[[str], str | None] | None = None,
    ) -> Planned | None:
        """As :func:`invite` (None when the person's invitation stands); a new one is kept for :meth:`save`."""
        if existing is not None:
            row = invite(
                self.session,
                self.planner,
                existing,
                survey=survey,
                engagement_key=engagement_key,
                email=email,
                side=side,
                role=role,
                as_of=as_of,
                now=now,
                closes_at=closes_at,
                round_=round_,
                blocker=blocker,
            )
            if row is None:
                return None
            self._again.append(row)
            return Planned(row.status, row.skip_reason, row)
        values = _invitation_values(
            self.planner, survey, engagement_key, email, side, role, as_of, now, closes_at, round_, blocker
        )
        planned = Planned(values["status"], values["skip_reason"])
        self._new.append((values, planned))
        return planned

    def save(self) -> None:
        """Insert the new invitations (each :class:`Planned` gets its row, with its id) and flush."""
        rows = insert_invitations(self.session, [values for values, _ in self._new])
        for (_, planned), row in zip(self._new, rows, strict=True):
            planned.row = row
        self._new = []
        same_update_columns(self.session, self._again)
        self._again = []
        self.session.flush()


def record_outside_invitation(
    session: Session,
    *,
    survey: str,
    engagement_key: str,
    email: str,
    side: str,
    role: str,
    invited_on: date,
    closes_at: datetime,
    now: datetime,
) -> int:
    """An ``invited`` invitation for someone asked outside the pack (answers imported from CSV);
    returns its id. Nothing is queued for it."""
    invitation = SurveyInvitationRow(
        survey=survey,
        engagement_key=engagement_key,
        email=email,
        side=side,
        role=role,
        status=InvitationStatus.INVITED,
        invited_on=invited_on,
        closes_at=closes_at,
        reminders_queued=0,
        created_at=now,
        updated_at=now,
    )
    session.add(invitation)
    session.flush()
    return invitation.id


def mark_answered(
    session: Session, invitation: SurveyInvitationRow, at: datetime, touch: datetime | None = None
) -> None:
    """Set the invitation's first-answer time if unset (``touch`` also bumps its ``updated_at``)."""
    if invitation.answered_at is not None:
        return
    values: dict[str, Any] = {"answered_at": at}
    if touch is not None:
        values["updated_at"] = touch
    session.execute(
        update(SurveyInvitationRow)
        .where(SurveyInvitationRow.id == invitation.id, SurveyInvitationRow.answered_at.is_(None))
        .values(**values)
    )


def invitation_messages(
    planner: MessagePlanner,
    invitation: SurveyInvitationRow,
    view: EngagementView,
    *,
    template: str,
    as_of: date,
    closes_at: datetime,
    earliest: datetime,
    **context: Any,
) -> list[OutboundMessage]:
    """The email and Slack message inviting the person of a fresh ``invitation`` (its links signed,
    kind ``survey_invite``, withdrawn if the engagement stops being ended and live before it goes out)."""
    link, scores = planner.survey_links(invitation)
    return planner.person_messages(
        dedupe_prefix=f"{MessageKind.SURVEY_INVITE}:{invitation.id}:{as_of.isoformat()}",
        template=template,
        kind=MessageKind.SURVEY_INVITE,
        recipient=planner.recipient(invitation.email),
        context={
            "survey": invitation.survey,
            "engagement": view,
            "survey_link": link,
            "score_links": scores,
            "closes_on": f"{closes_at.astimezone(planner.settings.timezone):%A %d %B %Y}",
            **context,
        },
        earliest=earliest,
        engagement_key=view.key,
        invitation_id=invitation.id,
        requires_ended=True,
    )


def plan_invitations(
    session: Session, *, as_of: date, now: datetime, settings: Settings, key: bytes
) -> PlanReport:
    """Invite everyone of every recently ended engagement not invited yet (idempotent)."""
    report = PlanReport()
    planner = MessagePlanner(session, settings, now=now, key=key)
    oldest_end = as_of - timedelta(days=settings.survey_max_age_days)
    ended_before = (ended_and_live_clause(), EngagementRow.end_date < as_of)
    # Ended too long ago and never surveyed: keys only, filtered in SQL.
    report.stale = list(
        session.scalars(
            select(EngagementRow.key)
            .where(
                *ended_before,
                EngagementRow.end_date < oldest_end,
                ~exists().where(SurveyInvitationRow.engagement_key == EngagementRow.key),
            )
            .order_by(EngagementRow.end_date, EngagementRow.key)
        )
    )
    ended = list(
        session.scalars(
            select(EngagementRow)
            .where(*ended_before, EngagementRow.end_date >= oldest_end)
            .order_by(EngagementRow.end_date, EngagementRow.key)
        )
    )
    if not ended:
        return report
    keys = [e.key for e in ended]
    existing = {
        (i.survey, i.engagement_key, i.email): i
        for i in session.scalars(
            select(SurveyInvitationRow).where(SurveyInvitationRow.engagement_key.in_(keys))
        )
    }
    members: dict[str, list[MemberRow]] = defaultdict(list)
    for member in session.scalars(
        select(MemberRow).where(MemberRow.engagement_key.in_(keys)).order_by(MemberRow.id)
    ):
        members[member.engagement_key].append(member)
    emails = {m.email for ms in members.values() for m in ms}
    recent = _recent_invitations(
        session, emails, as_of - timedelta(days=max(settings.fatigue_days, 1) + 7), settings
    )
    closes_at = closing_moment(as_of, settings)
    earliest = max(now, datetime.combine(as_of, time(0), settings.timezone))
    batch = Invitations(session, planner)
    to_invite: list[tuple[Planned, EngagementView]] = []
    for engagement in ended:
        view = planner.engagement_view(engagement)
        touched = False
        for member in members[engagement.key]:
            survey = SURVEY_BY_SIDE[member.side]

            def fatigue(email: str) -> str | None:
                blocker = fatigue_blocker(recent[email], as_of, settings.fatigue_days)
                if blocker is None:
                    return None
                return (
                    f"fatigue: already invited on {blocker[0]} ({blocker[1]} {blocker[2]}); "
                    f"at most one survey invitation per {settings.fatigue_days} days"
                )

            planned = batch.invite(
                existing.get((survey, engagement.key, member.email)),
                survey=survey,
                engagement_key=engagement.key,
                email=member.email,
                side=member.side,
                role=member.role,
                as_of=as_of,
                now=now,
                closes_at=closes_at,
                blocker=fatigue,
            )
            if planned is None:  # one that stands
                continue
            touched = True
            if planned.status == InvitationStatus.SKIPPED:
                report.skipped[skip_category(planned.skip_reason)] += 1
                continue
            recent[member.email].append((as_of, engagement.key, survey))
            to_invite.append((planned, view))
        if touched:
            report.engagements.append(engagement.key)
    batch.save()  # ids for the links
    report.invited = len(to_invite)
    messages = [
        message
        for planned, view in to_invite
        for message in invitation_messages(
            planner,
            planned.saved,
            view,
            template=MessageKind.SURVEY_INVITE,
            as_of=as_of,
            closes_at=closes_at,
            earliest=earliest,
        )
    ]
    report.messages = enqueue(session, messages, now=now)
    report.samples = samples(messages)
    return report


def note_deliveries(session: Session, *, settings: Settings, now: datetime) -> int:
    """Record when each invitation reached its person (the first of its invitation messages to
    go out) and move its closing date by as many days as that was after the day it was queued:
    everyone gets the whole window to answer, however long the send window or an outage held
    the invitation. Idempotent: an invitation is noted once. Returns how many were noted."""
    o = OutboxRow
    first_sent = (
        select(o.invitation_id, func.min(o.sent_at))
        .where(
            o.kind == MessageKind.SURVEY_INVITE,
            o.status == OutboxStatus.SENT,
            o.invitation_id.in_(
                select(SurveyInvitationRow.id).where(
                    SurveyInvitationRow.status == InvitationStatus.INVITED,
                    SurveyInvitationRow.sent_at.is_(None),
                )
            ),
        )
        .group_by(o.invitation_id)
    )
    sent = dict(session.execute(first_sent).all())
    if not sent:
        return 0
    noted = list(session.scalars(select(SurveyInvitationRow).where(SurveyInvitationRow.id.in_(sent))))
    for invitation in noted:
        invitation.sent_at = sent[invitation.id]
        held = (invitation.sent_at.astimezone(settings.timezone).date() - invitation.invited_on).days
        if held > 0:
            closes_on = invitation.closes_at.astimezone(settings.timezone).date()
            invitation.closes_at = end_of_day(closes_on + timedelta(days=held), settings)
        invitation.updated_at = now
    same_update_columns(session, noted)
    session.flush()
    return len(sent)


def plan_reminders(
    session: Session,
    *,
    as_of: date,
    now: datetime,
    settings: Settings,
    key: bytes,
    surveys: tuple[str, ...] = END_OF_ENGAGEMENT_SURVEYS,
) -> PlanReport:
    """Queue the reminders falling due by the end of ``as_of`` to people who have not answered
    ``surveys`` (idempotent): reminder N ``reminder_days[N]`` days after the invitation reached the
    person, then held by their send window like any message."""
    report = PlanReport()
    if not settings.reminder_days:
        return report
    note_deliveries(session, settings=settings, now=now)
    by = end_of_day(as_of, settings)
    candidates = list(
        session.execute(
            select(SurveyInvitationRow, EngagementRow)
            .join(EngagementRow, EngagementRow.key == SurveyInvitationRow.engagement_key)
            .where(
                SurveyInvitationRow.survey.in_(surveys),
                SurveyInvitationRow.status == InvitationStatus.INVITED,
                SurveyInvitationRow.answered_at.is_(None),
                SurveyInvitationRow.reminders_queued < len(settings.reminder_days),
                SurveyInvitationRow.sent_at <= by - timedelta(days=min(settings.reminder_days)),
                SurveyInvitationRow.closes_at > now,
                ended_and_live_clause(),
            )
            .order_by(SurveyInvitationRow.id)
        )
    )
    if not candidates:
        return report
    planner = MessagePlanner(session, settings, now=now, key=key)
    messages: list[OutboundMessage] = []
    for invitation, engagement in candidates:
        due = reminder_due(invitation.sent_at, invitation.reminders_queued, settings, by)
        if due <= invitation.reminders_queued or invitation.email in planner.opted_out:
            continue
        invitation.reminders_queued = due
        invitation.updated_at = now
        report.reminders += 1
        due_at = reminder_moments(invitation.sent_at, settings)[due - 1]
        link, scores = planner.survey_links(invitation)
        messages += planner.person_messages(
            dedupe_prefix=f"{MessageKind.SURVEY_REMINDER}:{invitation.id}:{due}",
            template=REMINDER_TEMPLATES.get(invitation.survey, MessageKind.SURVEY_REMINDER),
            kind=MessageKind.SURVEY_REMINDER,
            recipient=planner.recipient(invitation.email),
            context={
                "survey": invitation.survey,
                "engagement": planner.engagement_view(engagement),
                "survey_link": link,
                "score_links": scores,
                "reminder_number": due,
                "closes_on": f"{invitation.closes_at.astimezone(settings.timezone):%A %d %B %Y}",
            },
            earliest=max(now, due_at),
            engagement_key=engagement.key,
            invitation_id=invitation.id,
            stop_if_answered=True,
            requires_ended=True,
        )
    report.messages = enqueue(session, messages, now=now)
    report.samples = samples(messages)
    return report


def void_withdrawn(conn: Connection, wall: datetime) -> int:
    """Invitations withdrawn before anything of theirs went out become ``void`` (the planner
    invites again if the engagement ends again); returns how many.

    That is: their invitation messages that need an ended engagement were all skipped (at least
    one because the engagement is no longer ended and live: a :data:`ENGAGEMENT_GONE` cause),
    none of their invitation messages is still pending, and none of their messages was ever sent.
    Runs in the delivery guard's transaction, right after the guards.
    """
    o, inv = OutboxRow.__table__, SurveyInvitationRow.__table__

    def invite_rows(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists().where(
            o.c.invitation_id == inv.c.id, o.c.kind == MessageKind.SURVEY_INVITE, *conditions
        )

    withdrawn = (o.c.status == OutboxStatus.SKIPPED, o.c.skip_cause.in_(sorted(ENGAGEMENT_GONE)))
    why = (
        select(o.c.reason)
        .where(o.c.invitation_id == inv.c.id, o.c.kind == MessageKind.SURVEY_INVITE, *withdrawn)
        .order_by(o.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    result = conn.execute(
        update(inv)
        .where(
            inv.c.status == InvitationStatus.INVITED,
            invite_rows(*withdrawn),
            not_(invite_rows(o.c.requires_ended == true(), o.c.status != OutboxStatus.SKIPPED)),
            not_(invite_rows(o.c.status == OutboxStatus.PENDING)),  # an invitation may still go out
            not_(exists().where(o.c.invitation_id == inv.c.id, o.c.status == OutboxStatus.SENT)),
        )
        .values(status=InvitationStatus.VOID, skip_reason=why, updated_at=wall)
    )
    return result.rowcount or 0
