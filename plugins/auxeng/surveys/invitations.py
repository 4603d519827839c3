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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.messaging import tokens
from auxeng.messaging.outbox import EMAIL, SLACK, OutboundMessage, enqueue, samples
from auxeng.messaging.rendering import render
from auxeng.messaging.sendwindow import SendWindow, person_timezone
from auxeng.registry.lifecycle import ended_and_live_clause
from auxeng.settings import Settings
from auxeng.store.models import (
    EngagementRow,
    MemberRow,
    OptOutRow,
    PersonRow,
    ProgramRow,
    SurveyInvitationRow,
    TeamRow,
)

POST_ENGAGEMENT, RETRO = "post_engagement", "retro"
SURVEY_BY_SIDE = {"host": POST_ENGAGEMENT, "auxeng": RETRO}
INVITE, REMINDER, DETRACTOR_ALERT = "survey_invite", "survey_reminder", "detractor_alert"
SURVEY_KINDS = (INVITE, REMINDER, DETRACTOR_ALERT)
END_OF_ENGAGEMENT_SURVEYS = (POST_ENGAGEMENT, RETRO)
REMINDER_TEMPLATES = {"checkin": "checkin_survey"}
DETRACTOR_MAX = 6


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


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    slack_id: str | None
    window: SendWindow | None


@dataclass(frozen=True)
class EngagementView:
    key: str
    title: str
    host_team_name: str
    end: date
    anonymous: bool


def end_of_day(day: date, settings: Settings) -> datetime:
    """The last second of ``day`` in the program's time zone, in UTC."""
    return datetime.combine(day, time(23, 59, 59), settings.timezone).astimezone(UTC)


def closing_moment(invited_on: date, settings: Settings, window_days: int | None = None) -> datetime:
    """End of the last day a survey sent on ``invited_on`` accepts answers: ``window_days``
    (default ``survey_window_days``) later, program time zone."""
    days = settings.survey_window_days if window_days is None else window_days
    return end_of_day(invited_on + timedelta(days=days), settings)


def reminder_due(invited_on: date, reminders_queued: int, settings: Settings, as_of: date) -> int:
    """How many reminders are due by ``as_of`` for an invitation already reminded ``reminders_queued`` times."""
    due = sum(1 for days in settings.reminder_days if invited_on + timedelta(days=days) <= as_of)
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


class MessagePlanner:
    """Shared look-ups of one planning step (people, program, links), loaded in bulk."""

    def __init__(self, session: Session, settings: Settings, *, now: datetime, key: bytes) -> None:
        self.session = session
        self.settings = settings
        self.now = now
        self.key = key
        program = session.get(ProgramRow, 1)
        self.program_name = program.name if program else "AuxEng"
        self.people = {p.email: p for p in session.scalars(select(PersonRow))}
        self.opted_out = dict(session.execute(select(OptOutRow.email, OptOutRow.opted_out_at)).all())
        self.teams = {t.key: t for t in session.scalars(select(TeamRow))}

    def recipient(
        self, email: str, fallback_name: str | None = None, slack_id: str | None = None
    ) -> Recipient:
        person = self.people.get(email)
        zone = person_timezone(person.timezone if person else None, self.settings.default_recipient_timezone)
        return Recipient(
            email=email,
            name=(person.name if person and person.name else fallback_name) or email.split("@")[0],
            slack_id=(person.slack_id if person and person.slack_id else slack_id),
            window=(
                SendWindow(zone, self.settings.quiet_start, self.settings.quiet_end)
                if self.settings.quiet_start and self.settings.quiet_end
                else None
            ),
        )

    def engagement_view(self, row: EngagementRow) -> EngagementView:
        team = self.teams.get(row.host_team_key)
        return EngagementView(
            key=row.key,
            title=row.title,
            host_team_name=team.name if team else row.host_team_key,
            end=row.end_date,
            anonymous=row.anonymous,
        )

    def optout_link(self, email: str) -> str:
        return tokens.optout_url(email, public_url=self.settings.public_url, key=self.key, now=self.now)

    def survey_links(self, invitation: SurveyInvitationRow) -> tuple[str, list[tuple[int, str]]]:
        expires = invitation.closes_at + timedelta(days=30)
        link = tokens.survey_url(invitation.id, expires, public_url=self.settings.public_url, key=self.key)
        scores = [
            (
                score,
                tokens.survey_url(
                    invitation.id, expires, score=score, public_url=self.settings.public_url, key=self.key
                ),
            )
            for score in range(11)
        ]
        return link, scores

    def person_messages(
        self,
        *,
        dedupe_prefix: str,
        template: str,
        recipient: Recipient,
        context: dict[str, Any],
        earliest: datetime,
        engagement_key: str | None,
        invitation_id: int | None = None,
        stop_if_answered: bool = False,
        requires_ended: bool = False,
        kind: str | None = None,
    ) -> list[OutboundMessage]:
        """The email and Slack DM of one rendered message to one person, inside their send window.

        ``kind`` (default: the template's name) is what the outbox and its guards know it as.
        """
        optout = self.optout_link(recipient.email)
        rendered = render(
            template,
            person_name=recipient.name,
            program_name=self.program_name,
            optout_link=optout,
            **context,
        )
        not_before = recipient.window.next_opening(earliest) if recipient.window else earliest
        common = {
            "kind": kind or template,
            "recipient_email": recipient.email,
            "not_before": not_before,
            "engagement_key": engagement_key,
            "invitation_id": invitation_id,
            "stop_if_answered": stop_if_answered,
            "requires_ended": requires_ended,
        }
        window = {"send_window": recipient.window.as_payload()} if recipient.window else {}
        email = OutboundMessage(
            dedupe_key=f"{dedupe_prefix}:email",
            channel=EMAIL,
            recipient=recipient.email,
            subject=rendered.subject,
            body_text=rendered.text,
            body_html=rendered.html,
            payload={
                "to_name": recipient.name,
                **window,
                "headers": {
                    "List-Unsubscribe": f"<{optout}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
            },
            **common,
        )
        slack = OutboundMessage(
            dedupe_key=f"{dedupe_prefix}:slack",
            channel=SLACK,
            recipient=recipient.slack_id or f"email:{recipient.email}",
            body_text=rendered.slack,
            payload={
                **window,
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": rendered.slack}}],
            },
            **common,
        )
        return [email, slack]


def _recent_invitations(
    session: Session, emails: set[str], since: date
) -> dict[str, list[tuple[date, str, str]]]:
    rows = session.execute(
        select(
            SurveyInvitationRow.email,
            SurveyInvitationRow.invited_on,
            SurveyInvitationRow.engagement_key,
            SurveyInvitationRow.survey,
        ).where(
            SurveyInvitationRow.status == "invited",
            SurveyInvitationRow.invited_on >= since,
            SurveyInvitationRow.survey.in_(tuple(SURVEY_BY_SIDE.values())),
        )
    )
    recent: dict[str, list[tuple[date, str, str]]] = defaultdict(list)
    for email, invited_on, engagement_key, survey in rows:
        if email in emails:
            recent[email].append((invited_on, engagement_key, survey))
    return recent


def plan_invitations(
    session: Session, *, as_of: date, now: datetime, settings: Settings, key: bytes
) -> PlanReport:
    """Invite everyone of every recently ended engagement not invited yet (idempotent)."""
    report = PlanReport()
    planner = MessagePlanner(session, settings, now=now, key=key)
    oldest_end = as_of - timedelta(days=settings.survey_max_age_days)
    ended = list(
        session.scalars(
            select(EngagementRow)
            .where(
                ended_and_live_clause(),
                EngagementRow.end_date < as_of,
            )
            .order_by(EngagementRow.end_date, EngagementRow.key)
        )
    )
    old = [e.key for e in ended if e.end_date < oldest_end]
    if old:
        surveyed = set(
            session.scalars(
                select(SurveyInvitationRow.engagement_key)
                .where(SurveyInvitationRow.engagement_key.in_(old))
                .distinct()
            )
        )
        report.stale = [key for key in old if key not in surveyed]
    ended = [e for e in ended if e.end_date >= oldest_end]
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
    recent = _recent_invitations(session, emails, as_of - timedelta(days=max(settings.fatigue_days, 1)))
    closes_at = closing_moment(as_of, settings)
    earliest = max(now, datetime.combine(as_of, time(0), settings.timezone))
    to_invite: list[tuple[SurveyInvitationRow, EngagementView]] = []
    for engagement in ended:
        view = planner.engagement_view(engagement)
        touched = False
        for member in members[engagement.key]:
            survey = SURVEY_BY_SIDE[member.side]
            invitation = existing.get((survey, engagement.key, member.email))
            if invitation is not None and invitation.status != "void":
                continue
            status, reason = "invited", None
            if member.email in planner.opted_out:
                status, reason = "skipped", f"opted out on {planner.opted_out[member.email]:%Y-%m-%d}"
            else:
                blocker = fatigue_blocker(recent[member.email], as_of, settings.fatigue_days)
                if blocker is not None:
                    status = "skipped"
                    reason = (
                        f"fatigue: already invited on {blocker[0]} ({blocker[1]} {blocker[2]}); "
                        f"at most one survey invitation per {settings.fatigue_days} days"
                    )
            if invitation is None:
                invitation = SurveyInvitationRow(
                    survey=survey,
                    engagement_key=engagement.key,
                    email=member.email,
                    side=member.side,
                    role=member.role,
                    created_at=now,
                )
                session.add(invitation)
            invitation.status = status
            invitation.skip_reason = reason
            invitation.invited_on = as_of
            invitation.closes_at = closes_at
            invitation.reminders_queued = 0
            invitation.updated_at = now
            touched = True
            if status == "skipped":
                report.skipped[reason.split(":")[0].split(" on ")[0]] += 1
                continue
            recent[member.email].append((as_of, engagement.key, survey))
            to_invite.append((invitation, view))
        if touched:
            report.engagements.append(engagement.key)
    session.flush()  # one round of INSERTs gives every new invitation its id, for its links
    report.invited = len(to_invite)
    messages: list[OutboundMessage] = []
    for invitation, view in to_invite:
        link, scores = planner.survey_links(invitation)
        messages += planner.person_messages(
            dedupe_prefix=f"{INVITE}:{invitation.id}:{as_of.isoformat()}",
            template=INVITE,
            recipient=planner.recipient(invitation.email),
            context={
                "survey": invitation.survey,
                "engagement": view,
                "survey_link": link,
                "score_links": scores,
                "closes_on": f"{closes_at.astimezone(settings.timezone):%A %d %B %Y}",
            },
            earliest=earliest,
            engagement_key=view.key,
            invitation_id=invitation.id,
            requires_ended=True,
        )
    report.messages = enqueue(session, messages, now=now)
    report.samples = samples(messages)
    return report


def plan_reminders(
    session: Session,
    *,
    as_of: date,
    now: datetime,
    settings: Settings,
    key: bytes,
    surveys: tuple[str, ...] = END_OF_ENGAGEMENT_SURVEYS,
) -> PlanReport:
    """Queue the reminders due by ``as_of`` to people who have not answered ``surveys`` (idempotent)."""
    report = PlanReport()
    if not settings.reminder_days:
        return report
    first_due = as_of - timedelta(days=settings.reminder_days[0])
    candidates = list(
        session.execute(
            select(SurveyInvitationRow, EngagementRow)
            .join(EngagementRow, EngagementRow.key == SurveyInvitationRow.engagement_key)
            .where(
                SurveyInvitationRow.survey.in_(surveys),
                SurveyInvitationRow.status == "invited",
                SurveyInvitationRow.answered_at.is_(None),
                SurveyInvitationRow.reminders_queued < len(settings.reminder_days),
                SurveyInvitationRow.invited_on <= first_due,
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
        due = reminder_due(invitation.invited_on, invitation.reminders_queued, settings, as_of)
        if due <= invitation.reminders_queued or invitation.email in planner.opted_out:
            continue
        invitation.reminders_queued = due
        invitation.updated_at = now
        report.reminders += 1
        due_day = invitation.invited_on + timedelta(days=settings.reminder_days[due - 1])
        link, scores = planner.survey_links(invitation)
        messages += planner.person_messages(
            dedupe_prefix=f"{REMINDER}:{invitation.id}:{due}",
            template=REMINDER_TEMPLATES.get(invitation.survey, REMINDER),
            kind=REMINDER,
            recipient=planner.recipient(invitation.email),
            context={
                "survey": invitation.survey,
                "engagement": planner.engagement_view(engagement),
                "survey_link": link,
                "score_links": scores,
                "reminder_number": due,
                "closes_on": f"{invitation.closes_at.astimezone(settings.timezone):%A %d %B %Y}",
            },
            earliest=max(now, datetime.combine(due_day, time(0), settings.timezone)),
            engagement_key=engagement.key,
            invitation_id=invitation.id,
            stop_if_answered=True,
            requires_ended=True,
        )
    report.messages = enqueue(session, messages, now=now)
    report.samples = samples(messages)
    return report
