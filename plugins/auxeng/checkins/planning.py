"""Three-month check-ins: keep one per ended engagement, invite to the meeting, survey, close.

Every step is idempotent and driven by the run's date (``as_of``), so re-runs,
retries and backfills never send anything twice:

- **Schedule** (:func:`schedule_checkins`): every ended, non-cancelled engagement
  gets one check-in due ``checkin_offset_months`` calendar months after its end
  (month-end clamped). A moved end date moves the check-in; a cancelled or
  removed engagement cancels it. ``checkin_invite_days_before`` days before the
  due date the AuxEng lead, the host team's manager and tech lead get an email
  with a calendar invitation (``.ics``: METHOD:REQUEST, a stable UID per
  check-in, a slot on the due date in the host manager's time zone, inside
  working hours). A move after the invitation went out sends the same UID with
  a higher SEQUENCE; a cancellation (or a skip) sends METHOD:CANCEL, only if a
  request actually went out. Messages not sent yet are withdrawn instead.
- **Survey** (:func:`send_checkin_surveys`): on the due date, the host team's
  people (members and manager) get the ``checkin`` survey through the response
  page; reminders follow as for the post-engagement survey
  (:func:`auxeng.surveys.invitations.plan_reminders` with ``surveys=("checkin",)``).
- **Close** (:func:`close_checkins`): after ``checkin_window_days`` the check-in
  is ``answered`` (with its scores) or ``unanswered``.
- **Catch-up cut-off**: a check-in whose due date is more than
  ``checkin_max_age_days`` before the run when nothing went out yet is recorded
  as ``missed`` and sends nothing (a first install sends no stale invitations).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from statistics import fmean
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.orm import Session

from auxeng.checkins.calendar import CANCEL, REQUEST, Attendee, build_invitation
from auxeng.checkins.schedule import due_date, invitation_date, is_stale, meeting_slot
from auxeng.messaging import outbox
from auxeng.messaging.outbox import EMAIL, OutboundMessage, enqueue, samples
from auxeng.messaging.planner import EngagementView, MessagePlanner
from auxeng.messaging.rendering import render
from auxeng.messaging.sendwindow import person_timezone
from auxeng.registry.lifecycle import ended_and_live_clause, is_live, is_removed
from auxeng.registry.roles import auxeng_lead, host_manager_email, host_tech_lead
from auxeng.settings import Settings
from auxeng.store.db import same_update_columns
from auxeng.store.models import (
    CheckinEventRow,
    CheckinRow,
    EngagementRow,
    MemberRow,
    ProgramRow,
    SurveyInvitationRow,
    SurveyResponseRow,
    TeamRow,
)
from auxeng.surveys.invitations import (
    Invitations,
    Planned,
    closing_moment,
    invitation_messages,
    note_deliveries,
    skip_category,
)
from auxeng.surveys.questions import HELP_ORDER, worst_help_needed
from auxeng.vocabulary import InvitationStatus, MessageKind, SurveyKind

log = logging.getLogger(__name__)

CHECKIN_KINDS = (MessageKind.CHECKIN_CALENDAR, MessageKind.SURVEY_INVITE, MessageKind.SURVEY_REMINDER)
SCHEDULED, SURVEYING, ANSWERED, UNANSWERED = "scheduled", "surveying", "answered", "unanswered"
SKIPPED, CANCELLED, MISSED = "skipped", "cancelled", "missed"
OPEN_STATUSES = (SCHEDULED, SURVEYING)
CLOSED_STATUSES = (ANSWERED, UNANSWERED, MISSED)
NOT_SENT = "NOT_SENT"  # calendar_method when the meeting day passed before an invitation could go out


@dataclass
class CheckinReport:
    """What one check-in step did (or, in a dry run, would have done)."""

    created: int = 0
    moved: int = 0
    cancelled: int = 0
    missed: list[str] = field(default_factory=list)
    invitations: int = 0
    updates: int = 0
    cancellations: int = 0
    surveyed: int = 0
    people_invited: int = 0
    skipped_people: Counter[str] = field(default_factory=Counter)
    closed: Counter[str] = field(default_factory=Counter)
    follow_ups: int = 0
    follow_ups_finished: int = 0
    messages: int = 0
    withdrawn: int = 0
    warnings: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "moved": self.moved,
            "cancelled": self.cancelled,
            "missed": self.missed,
            "calendar_invitations": self.invitations,
            "calendar_updates": self.updates,
            "calendar_cancellations": self.cancellations,
            "checkins_surveyed": self.surveyed,
            "people_invited": self.people_invited,
            "people_skipped": dict(self.skipped_people),
            "closed": dict(self.closed),
            "follow_up_reminders": self.follow_ups,
            "follow_ups_finished": self.follow_ups_finished,
            "messages_queued": self.messages,
            "messages_withdrawn": self.withdrawn,
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class CheckinPeople:
    """Who a check-in involves: the meeting's organizer and attendees, and who is surveyed."""

    organizer: Attendee | None
    attendees: tuple[Attendee, ...]
    timezone: ZoneInfo
    surveyed: tuple[tuple[str, str], ...]  # (email, role), host side, no duplicates
    warnings: tuple[str, ...]


def checkin_uid(engagement_key: str) -> str:
    """The calendar UID of an engagement's check-in: stable across moves and re-sends."""
    return f"checkin-{engagement_key.lower()}@auxeng-followups"


def checkin_people(
    engagement: EngagementRow,
    members: list[MemberRow],
    team: TeamRow | None,
    planner: MessagePlanner,
    program_managers: list[dict[str, Any]],
) -> CheckinPeople:
    """The people of one check-in; what is missing becomes a warning and the rest proceeds."""
    warnings: list[str] = []
    host = [m for m in members if m.side == "host"]
    lead = auxeng_lead(members)
    organizer: Attendee | None = None
    if lead is not None:
        organizer = Attendee(lead.email, planner.recipient(lead.email).name)
    elif program_managers:
        manager = program_managers[0]
        organizer = Attendee(manager["email"], manager.get("name"))
        warnings.append(f"{engagement.key} has no AuxEng lead: program manager {manager['email']} organizes")
    else:
        warnings.append(
            f"{engagement.key} has no AuxEng lead and the program no manager: no calendar invitation"
        )

    manager_email = host_manager_email(team, host)
    if manager_email is None:
        warnings.append(
            f"host team {engagement.host_team_key} has no manager: the {engagement.key} check-in "
            "goes to the AuxEng lead and the tech lead only"
        )
    tech_lead = host_tech_lead(host)
    if tech_lead is None:
        warnings.append(f"{engagement.key} has no host tech lead on the engagement")

    attendees: list[Attendee] = []
    seen: set[str] = set()
    for email in (
        organizer.email if organizer else None,
        manager_email,
        tech_lead.email if tech_lead else None,
    ):
        if email and email.lower() not in seen:
            seen.add(email.lower())
            attendees.append(Attendee(email, planner.recipient(email).name))

    zone_owner = next(
        (
            planner.people[email]
            for email in (manager_email, tech_lead.email if tech_lead else None)
            if email and email in planner.people and planner.people[email].timezone
        ),
        None,
    )
    zone = person_timezone(
        zone_owner.timezone if zone_owner else None, planner.settings.default_recipient_timezone
    )

    surveyed: list[tuple[str, str]] = []
    taken: set[str] = set()
    for email, role in [(m.email, m.role) for m in host] + (
        [(manager_email, "manager")] if manager_email else []
    ):
        if email.lower() not in taken:
            taken.add(email.lower())
            surveyed.append((email, role))
    return CheckinPeople(organizer, tuple(attendees), zone, tuple(surveyed), tuple(warnings))


class CheckinContext:
    """Bulk look-ups shared by the check-in steps of one run, and the writes it saves together
    (:meth:`save`): its events, and the calendar messages it takes back."""

    def __init__(self, session: Session, settings: Settings, *, now: datetime, key: bytes, keys: set[str]):
        self.session = session
        self.settings = settings
        self.planner = MessagePlanner(session, settings, now=now, key=key)
        program = session.get(ProgramRow, 1)
        self.program_managers = list(program.managers) if program else []
        self.members: dict[str, list[MemberRow]] = defaultdict(list)
        if keys:
            for member in session.scalars(
                select(MemberRow).where(MemberRow.engagement_key.in_(keys)).order_by(MemberRow.id)
            ):
                self.members[member.engagement_key].append(member)
        self.events: list[dict[str, Any]] = []
        self.withdrawals: dict[str, tuple[str, datetime]] = {}
        self.went_out: set[str] = set()

    def record(self, checkin: CheckinRow, event: str, as_of: date, now: datetime, **detail: Any) -> None:
        self.events.append(event_values(checkin, event, as_of, now, **detail))

    def withdraw_calendar(self, checkin: CheckinRow, now: datetime, why: str) -> None:
        """Take back this check-in's calendar messages still pending (and not held by a drainer), at
        :meth:`save` (the first reason given stands, as when each withdrawal went out at once)."""
        self.withdrawals.setdefault(_calendar_prefix(checkin), (why, now))

    def look_up_calendars(self, checkins: list[CheckinRow], now: datetime) -> None:
        """Which of these check-ins' calendar messages went out (or are going out): one query."""
        self.went_out = outbox.which_went_out(
            self.session,
            kind=MessageKind.CHECKIN_CALENDAR,
            dedupe_prefixes=[_calendar_prefix(c) for c in checkins],
            now=now,
        )

    def calendar_went_out(self, checkin: CheckinRow) -> bool:
        """Whether a calendar message of this check-in was sent (looked up by :meth:`look_up_calendars`)."""
        return _calendar_prefix(checkin) in self.went_out

    def save(self) -> int:
        """Withdraw what was taken back and insert the events; returns how many messages were withdrawn.
        Before the run's new messages are queued (a withdrawal covers all of a check-in's calendar)."""
        withdrawn = outbox.withdraw_each(
            self.session, kind=MessageKind.CHECKIN_CALENDAR, prefixes=self.withdrawals
        )
        insert_events(self.session, self.events)
        self.withdrawals, self.events = {}, []
        return withdrawn

    def people(self, engagement: EngagementRow) -> CheckinPeople:
        return checkin_people(
            engagement,
            self.members[engagement.key],
            self.planner.teams.get(engagement.host_team_key),
            self.planner,
            self.program_managers,
        )


def event_values(
    checkin: CheckinRow, event: str, as_of: date, now: datetime, **detail: Any
) -> dict[str, Any]:
    """The row of one check-in event (the check-in is stored: it has its id)."""
    return {"checkin_id": checkin.id, "event": event, "as_of": as_of, "detail": detail, "recorded_at": now}


def insert_events(session: Session, events: list[dict[str, Any]]) -> None:
    """Insert check-in events, in order, through Core (one executemany)."""
    if events:
        session.execute(insert(CheckinEventRow.__table__), events)


def record_event(
    session: Session, checkin: CheckinRow, event: str, as_of: date, now: datetime, **detail: Any
) -> None:
    """One check-in event, inserted now (a step recording many goes through :meth:`CheckinContext.record`)."""
    insert_events(session, [event_values(checkin, event, as_of, now, **detail)])


def _calendar_prefix(checkin: CheckinRow) -> str:
    return f"{MessageKind.CHECKIN_CALENDAR}:{checkin.id}:"


def _slot_for(checkin: CheckinRow, people: CheckinPeople, settings: Settings) -> Any:
    start_at = settings.checkin_meeting_time
    if settings.quiet_start and start_at < settings.quiet_start:
        start_at = settings.quiet_start
    return meeting_slot(
        checkin.due_on,
        people.timezone,
        start_at=start_at,
        minutes=settings.checkin_meeting_minutes,
        day_end=settings.quiet_end or time(17),
    )


def _calendar_messages(
    ctx: CheckinContext,
    checkin: CheckinRow,
    engagement: EngagementRow,
    people: CheckinPeople,
    *,
    method: str,
    sequence: int,
    updated: bool,
    now: datetime,
) -> list[OutboundMessage]:
    """One email per attendee carrying the same ``.ics`` (REQUEST or CANCEL)."""
    assert people.organizer is not None
    settings = ctx.settings
    view = ctx.planner.engagement_view(engagement)
    summary = f"AuxEng three-month check-in: {engagement.title}"
    local_start = checkin.slot_start.astimezone(people.timezone) if checkin.slot_start else None
    description = (
        f"Three months after {view.title} ({view.key}) ended on {view.end}: is {view.host_team_name} "
        "comfortable maintaining what was built, and how often does it still need the platform team? "
        f"The host team also gets a short check-in survey on {checkin.due_on}."
    )
    ics = build_invitation(
        uid=checkin.uid,
        sequence=sequence,
        method=method,
        organizer=people.organizer,
        attendees=people.attendees,
        start=checkin.slot_start,
        end=checkin.slot_end,
        summary=summary,
        description=description,
        stamp=now,
    ).decode()
    template = "checkin_cancelled" if method == CANCEL else "checkin_invitation"
    messages = []
    for attendee in people.attendees:
        recipient = ctx.planner.recipient(attendee.email)
        rendered = render(
            template,
            person_name=recipient.name,
            program_name=ctx.planner.program_name,
            engagement=view,
            summary=summary,
            description=description,
            when=f"{local_start:%A %d %B %Y, %H:%M} ({people.timezone.key})" if local_start else "",
            minutes=settings.checkin_meeting_minutes,
            organizer=people.organizer,
            attendees=people.attendees,
            updated=updated,
            reason=checkin.note or "",
        )
        not_before = recipient.window.next_opening(now) if recipient.window else now
        messages.append(
            OutboundMessage(
                dedupe_key=f"{_calendar_prefix(checkin)}{sequence}:{attendee.email.lower()}:email",
                channel=EMAIL,
                kind=MessageKind.CHECKIN_CALENDAR,
                recipient=attendee.email,
                recipient_email=attendee.email.lower(),
                subject=rendered.subject,
                body_text=rendered.text,
                body_html=rendered.html,
                payload={
                    "to_name": recipient.name,
                    "calendar": {"method": method, "ics": ics},
                    **({"send_window": recipient.window.as_payload()} if recipient.window else {}),
                },
                not_before=not_before,
                engagement_key=engagement.key,
            )
        )
    return messages


def _queue_calendar(
    ctx: CheckinContext,
    checkin: CheckinRow,
    engagement: EngagementRow,
    people: CheckinPeople,
    *,
    method: str,
    as_of: date,
    now: datetime,
    report: CheckinReport,
) -> list[OutboundMessage]:
    """Withdraw what is pending of this check-in's calendar, then queue the new REQUEST or CANCEL."""
    out_there = checkin.calendar_method in (REQUEST, CANCEL)  # attendees may hold an earlier version
    # SEQUENCE 0 is the first REQUEST ever queued; any later message takes the next number, so a
    # withdrawn one (its dedupe keys exist) is never reused.
    sequence = 0 if checkin.calendar_due is None else checkin.sequence + 1
    why = (
        f"superseded by SEQUENCE {sequence}"
        if method == REQUEST
        else f"withdrawn: {checkin.note or 'check-in off'}"
    )
    ctx.withdraw_calendar(checkin, now, why)
    if method == CANCEL and not ctx.calendar_went_out(checkin):
        checkin.calendar_method = None
        ctx.record(checkin, "calendar_withdrawn", as_of, now, reason="nothing had been sent yet")
        return []
    if people.organizer is None or not people.attendees:
        return []
    messages = _calendar_messages(
        ctx, checkin, engagement, people, method=method, sequence=sequence, updated=out_there, now=now
    )
    checkin.sequence = sequence
    checkin.calendar_method = method
    if method == REQUEST:
        checkin.calendar_due = checkin.due_on
        if out_there:
            report.updates += 1
        else:
            report.invitations += 1
    else:
        report.cancellations += 1
    ctx.record(
        checkin,
        f"calendar_{method.lower()}",
        as_of,
        now,
        sequence=sequence,
        to=[a.email for a in people.attendees],
        slot=checkin.slot_start.isoformat() if checkin.slot_start else None,
    )
    return messages


def new_checkin(engagement: EngagementRow, settings: Settings, as_of: date, now: datetime) -> dict[str, Any]:
    """The columns of an engagement's new check-in: ``scheduled``, or ``missed`` past the catch-up cut-off."""
    due = due_date(engagement.end_date, settings.checkin_offset_months)
    values: dict[str, Any] = {
        "engagement_key": engagement.key,
        "uid": checkin_uid(engagement.key),
        "status": SCHEDULED,
        "note": None,
        "end_date": engagement.end_date,
        "due_on": due,
        "invite_on": invitation_date(due, settings.checkin_invite_days_before),
        "sequence": 0,
        "invited": 0,
        "responses": 0,
        "scores": {},
        "warnings": [],
        "created_at": now,
        "updated_at": now,
    }
    if is_stale(due, as_of, settings.checkin_max_age_days):
        values["status"] = MISSED
        values["note"] = (
            f"due on {due}, more than {settings.checkin_max_age_days} days before {as_of} when the pack "
            "first saw it: not scheduled (catch-up cut-off AUXENG_CHECKIN_MAX_AGE_DAYS)"
        )
    return values


def add_checkin(
    session: Session, engagement: EngagementRow, settings: Settings, *, as_of: date, now: datetime, by: str
) -> CheckinRow:
    """A scheduled check-in for an ended engagement that has none, created on request (``by``)."""
    checkin = CheckinRow(
        **(new_checkin(engagement, settings, as_of, now) | {"status": SCHEDULED, "note": None})
    )
    session.add(checkin)
    session.flush()
    record_event(session, checkin, "created", as_of, now, due_on=checkin.due_on.isoformat(), by=by)
    return checkin


def override_checkin(
    session: Session,
    checkin: CheckinRow,
    event: str,
    *,
    status: str,
    note: str,
    due: date | None,
    by: str,
    why: str,
    settings: Settings,
    as_of: date,
    now: datetime,
    **detail: Any,
) -> None:
    """A manual change of one check-in: its new status (and due date), who made it and why, recorded."""
    if due is not None:
        checkin.due_override = due
        checkin.due_on = due
        checkin.invite_on = invitation_date(due, settings.checkin_invite_days_before)
    checkin.status = status
    checkin.note = note
    checkin.override_reason = why
    checkin.override_by = by
    checkin.override_at = now
    checkin.updated_at = now
    record_event(session, checkin, event, as_of, now, by=by, reason=why, **detail)


def schedule_checkins(
    session: Session, *, as_of: date, now: datetime, settings: Settings, key: bytes
) -> CheckinReport:
    """Create, move and cancel check-ins, and send, update or cancel their calendar invitations."""
    report = CheckinReport()
    rows = list(
        session.execute(
            select(EngagementRow, CheckinRow)
            .outerjoin(CheckinRow, CheckinRow.engagement_key == EngagementRow.key)
            .where(
                or_(
                    and_(CheckinRow.id.is_(None), ended_and_live_clause(), EngagementRow.end_date < as_of),
                    CheckinRow.status.in_((SCHEDULED, SKIPPED, CANCELLED)),
                )
            )
            .order_by(EngagementRow.end_date, EngagementRow.key)
        )
    )
    if not rows:
        return report
    ctx = CheckinContext(session, settings, now=now, key=key, keys={e.key for e, _ in rows})
    ctx.look_up_calendars([c for _, c in rows if c is not None and c.calendar_method == REQUEST], now)
    # New check-ins: one INSERT (Core), then read back as ORM rows in one SELECT.
    new = [new_checkin(engagement, settings, as_of, now) for engagement, checkin in rows if checkin is None]
    by_key: dict[str, CheckinRow] = {}
    if new:
        session.execute(insert(CheckinRow.__table__), new)
        by_key = {
            c.engagement_key: c
            for c in session.scalars(
                select(CheckinRow).where(CheckinRow.engagement_key.in_([v["engagement_key"] for v in new]))
            )
        }
    for values in new:
        checkin = by_key[values["engagement_key"]]
        report.created += 1
        ctx.record(checkin, "created", as_of, now, due_on=checkin.due_on.isoformat(), status=checkin.status)
        if checkin.status == MISSED:
            report.missed.append(checkin.engagement_key)
    messages: list[OutboundMessage] = []
    for engagement, existing in rows:
        checkin = existing or by_key[engagement.key]
        if checkin.status == MISSED:
            continue
        messages += _reconcile(ctx, checkin, engagement, as_of=as_of, now=now, report=report)
    same_update_columns(session, [existing or by_key[engagement.key] for engagement, existing in rows])
    report.withdrawn += ctx.save()
    report.messages = enqueue(session, messages, now=now)
    report.samples = samples(messages)
    return report


def _reconcile(
    ctx: CheckinContext,
    checkin: CheckinRow,
    engagement: EngagementRow,
    *,
    as_of: date,
    now: datetime,
    report: CheckinReport,
) -> list[OutboundMessage]:
    settings = ctx.settings
    gone = not is_live(engagement)
    if gone and checkin.status != CANCELLED:
        what = "removed from the registry" if is_removed(engagement) else "cancelled"
        checkin.note = f"engagement {engagement.key} was {what}"
        if checkin.status != SKIPPED:
            checkin.status = CANCELLED
            report.cancelled += 1
            ctx.record(checkin, "cancelled", as_of, now, reason=checkin.note)
    elif not gone and checkin.status == CANCELLED:
        checkin.status = SCHEDULED
        checkin.note = None
        ctx.record(checkin, "restored", as_of, now)
    checkin.updated_at = now

    people = ctx.people(engagement)
    if list(people.warnings) != list(checkin.warnings or []):
        checkin.warnings = list(people.warnings)
        for warning in people.warnings:
            log.warning("Check-in: %s", warning)
    report.warnings += list(people.warnings)

    if checkin.status in (SKIPPED, CANCELLED):
        if checkin.calendar_method == REQUEST:
            return _queue_calendar(
                ctx, checkin, engagement, people, method=CANCEL, as_of=as_of, now=now, report=report
            )
        return []

    due = checkin.due_override or due_date(engagement.end_date, settings.checkin_offset_months)
    if due != checkin.due_on or engagement.end_date != checkin.end_date:
        ctx.record(
            checkin,
            "moved",
            as_of,
            now,
            end_date={"from": checkin.end_date.isoformat(), "to": engagement.end_date.isoformat()},
            due_on={"from": checkin.due_on.isoformat(), "to": due.isoformat()},
        )
        report.moved += checkin.due_on != due
        checkin.end_date = engagement.end_date
        checkin.due_on = due
        checkin.invite_on = invitation_date(due, settings.checkin_invite_days_before)

    if checkin.survey_sent_on is None and is_stale(checkin.due_on, as_of, settings.checkin_max_age_days):
        checkin.status = MISSED
        checkin.note = (
            f"due on {checkin.due_on}; nothing went out within {settings.checkin_max_age_days} days "
            f"(catch-up cut-off AUXENG_CHECKIN_MAX_AGE_DAYS), recorded as missed on {as_of}"
        )
        report.missed.append(engagement.key)
        ctx.record(checkin, "missed", as_of, now, reason=checkin.note)
        return []

    if (
        checkin.calendar_method == REQUEST
        and checkin.calendar_due != checkin.due_on
        and not ctx.calendar_went_out(checkin)
    ):
        # moved before anything reached anyone: withdraw, and invite afresh on the new invitation day
        ctx.withdraw_calendar(checkin, now, f"check-in moved to {checkin.due_on}")
        checkin.calendar_method = None
    slot = _slot_for(checkin, people, settings)
    if checkin.calendar_method == REQUEST:
        if checkin.calendar_due == checkin.due_on:
            return []
    elif as_of < checkin.invite_on or checkin.calendar_method == NOT_SENT:
        return []
    elif as_of >= slot.local_day:
        checkin.calendar_method = NOT_SENT
        ctx.record(
            checkin,
            "calendar_not_sent",
            as_of,
            now,
            reason=f"the meeting day {slot.local_day} passed",
        )
        return []
    checkin.slot_start, checkin.slot_end, checkin.slot_timezone = slot.start, slot.end, slot.timezone.key
    return _queue_calendar(
        ctx, checkin, engagement, people, method=REQUEST, as_of=as_of, now=now, report=report
    )


def send_checkin_surveys(
    session: Session, *, as_of: date, now: datetime, settings: Settings, key: bytes
) -> CheckinReport:
    """On (or, catching up, after) the due date, invite the host team's people to the check-in survey."""
    report = CheckinReport()
    rows = list(
        session.execute(
            select(CheckinRow, EngagementRow)
            .join(EngagementRow, EngagementRow.key == CheckinRow.engagement_key)
            .where(
                CheckinRow.status == SCHEDULED,
                CheckinRow.due_on <= as_of,
                ended_and_live_clause(),
            )
            .order_by(CheckinRow.due_on, CheckinRow.id)
        )
    )
    rows = [(c, e) for c, e in rows if not is_stale(c.due_on, as_of, settings.checkin_max_age_days)]
    if not rows:
        return report
    ctx = CheckinContext(session, settings, now=now, key=key, keys={e.key for _, e in rows})
    existing = {
        (i.engagement_key, i.email): i
        for i in session.scalars(
            select(SurveyInvitationRow).where(
                SurveyInvitationRow.survey == SurveyKind.CHECKIN,
                SurveyInvitationRow.engagement_key.in_([e.key for _, e in rows]),
            )
        )
    }
    closes_at = closing_moment(as_of, settings, settings.checkin_window_days)
    earliest = max(now, datetime.combine(as_of, time(0), settings.timezone))
    batch = Invitations(session, ctx.planner)
    to_invite: list[tuple[Planned, EngagementView]] = []
    for checkin, engagement in rows:
        people = ctx.people(engagement)
        view = ctx.planner.engagement_view(engagement)
        invited = 0
        for email, role in people.surveyed:
            invitation = batch.invite(
                existing.get((engagement.key, email)),
                survey=SurveyKind.CHECKIN,
                engagement_key=engagement.key,
                email=email,
                side="host",
                role=role,
                as_of=as_of,
                now=now,
                closes_at=closes_at,
            )
            if invitation is None:
                continue
            if invitation.status == InvitationStatus.SKIPPED:
                report.skipped_people[skip_category(invitation.skip_reason)] += 1
                continue
            invited += 1
            to_invite.append((invitation, view))
        if not people.surveyed:
            report.warnings.append(f"{engagement.key}: nobody on the host side to survey")
        checkin.status = SURVEYING
        checkin.survey_sent_on = as_of
        checkin.closes_at = closes_at
        checkin.invited = invited
        checkin.updated_at = now
        report.surveyed += 1
        ctx.record(checkin, "surveyed", as_of, now, invited=invited, closes_at=closes_at.isoformat())
    same_update_columns(session, [checkin for checkin, _ in rows])
    batch.save()
    ctx.save()
    report.people_invited = len(to_invite)
    messages = [
        message
        for invitation, view in to_invite
        for message in invitation_messages(
            ctx.planner,
            invitation.saved,
            view,
            template="checkin_survey",
            as_of=as_of,
            closes_at=closes_at,
            earliest=earliest,
            reminder_number=0,
        )
    ]
    report.messages = enqueue(session, messages, now=now)
    report.samples = samples(messages)
    return report


def outcome(answers: list[tuple[int | None, dict[str, Any]]]) -> dict[str, Any]:
    """The scores of a check-in from its responses' (nps, answers): counts, lowest and mean comfort,
    the most worrying help answer, mean NPS. Pure; empty input gives ``responses: 0``."""
    comfort = [a["maintainability"] for _, a in answers if isinstance(a.get("maintainability"), int)]
    helps = [a["help_needed"] for _, a in answers if a.get("help_needed") in HELP_ORDER]
    scores = [nps for nps, _ in answers if nps is not None]
    return {
        "responses": len(answers),
        "maintainability_min": min(comfort) if comfort else None,
        "maintainability_mean": round(fmean(comfort), 2) if comfort else None,
        "help_needed": worst_help_needed(helps),
        "help_counts": dict(Counter(helps)),
        "nps_mean": round(fmean(scores), 2) if scores else None,
        "nps": scores,
        "not_taken_over": [a["not_taken_over"] for _, a in answers if a.get("not_taken_over")],
    }


def checkin_answers(
    session: Session, keys: list[str], *, until: datetime | None = None
) -> dict[str, list[tuple[int | None, dict[str, Any]]]]:
    """The check-in answers (nps, answers) of each engagement in ``keys``, submitted before ``until``
    if given: what :func:`outcome` scores, at the close and for the red flags while it is open."""
    query = select(SurveyResponseRow.engagement_key, SurveyResponseRow.nps, SurveyResponseRow.answers).where(
        SurveyResponseRow.survey == SurveyKind.CHECKIN, SurveyResponseRow.engagement_key.in_(keys)
    )
    if until is not None:
        query = query.where(SurveyResponseRow.submitted_at < until)
    answers: dict[str, list[tuple[int | None, dict[str, Any]]]] = defaultdict(list)
    for engagement_key, nps, given in session.execute(query):
        answers[engagement_key].append((nps, given or {}))
    return answers


def close_checkins(
    session: Session, *, as_of: date, now: datetime, settings: Settings, key: bytes
) -> CheckinReport:
    """Close every check-in whose response window ended: ``answered`` with its scores, or ``unanswered``.

    The window is its invitations': one that reached its person late (held by a send window or an
    outage) moves its closing date, and the check-in closes when the last of them does.
    """
    report = CheckinReport()
    note_deliveries(session, settings=settings, now=now)
    due = list(
        session.scalars(
            select(CheckinRow)
            .where(CheckinRow.status == SURVEYING, CheckinRow.closes_at <= now)
            .order_by(CheckinRow.id)
        )
    )
    if not due:
        return report
    latest = dict(
        session.execute(
            select(SurveyInvitationRow.engagement_key, func.max(SurveyInvitationRow.closes_at))
            .where(
                SurveyInvitationRow.survey == SurveyKind.CHECKIN,
                SurveyInvitationRow.status == InvitationStatus.INVITED,
                SurveyInvitationRow.engagement_key.in_([c.engagement_key for c in due]),
            )
            .group_by(SurveyInvitationRow.engagement_key)
        ).all()
    )
    for checkin in due:
        closes_at = latest.get(checkin.engagement_key)
        if closes_at is not None and closes_at > checkin.closes_at:
            checkin.closes_at = closes_at
            checkin.updated_at = now
    due = [c for c in due if c.closes_at <= now]
    if not due:
        return report
    answers = checkin_answers(session, [c.engagement_key for c in due])
    events = []
    for checkin in due:
        result = outcome(answers[checkin.engagement_key])
        checkin.responses = result["responses"]
        checkin.maintainability_min = result["maintainability_min"]
        checkin.maintainability_mean = result["maintainability_mean"]
        checkin.help_needed = result["help_needed"]
        checkin.nps_mean = result["nps_mean"]
        checkin.scores = result
        checkin.status = ANSWERED if result["responses"] else UNANSWERED
        checkin.closed_at = now
        checkin.updated_at = now
        report.closed[checkin.status] += 1
        events.append(
            event_values(checkin, "closed", as_of, now, status=checkin.status, responses=result["responses"])
        )
    same_update_columns(session, due)
    insert_events(session, events)
    return report
