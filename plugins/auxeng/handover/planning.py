"""Planning the end-of-engagement handover: once per engagement, to its host manager and tech lead.

When an engagement has ended (``auxeng_detect_ended`` marked it; :func:`plan_handovers` runs in
``auxeng_checkins``, which reacts to that), the host team's manager
(:func:`auxeng.registry.roles.host_manager_email`) and the host tech lead
(:func:`auxeng.registry.roles.host_tech_lead`) each get one message by email and Slack DM:

- **the boundary**: from the day after the engagement's last day the platform team does no more
  work for the team;
- **where to get help**: the team's ``help_after_end``, each missing field from the program's
  (:mod:`auxeng.handover.help`); the message says so when none is configured;
- **the three-month check-in date**: the check-in's own due date (overrides included) once
  ``schedule_checkins`` created it, else :func:`auxeng.checkins.schedule.due_date` (the same
  rule); a skipped or cancelled check-in is said to be not planned;
- **the goals as recorded** in the registry ("not recorded" when empty).

Once only: every message's dedupe key is ``handover:<engagement>:<email>:<end date>:<ended on>:
<channel>``. A re-run or a re-detection queues nothing new. A person whose handover went out
(or may have: sending, in doubt) never gets another one for that engagement, whatever happens
to it later. One that did not go out (the engagement was reopened, cancelled or removed before
delivery: the delivery guard skipped it, ``requires_ended``) is queued again, as a new version,
when the engagement ends again; a pending one of an older version (a corrected end date) is
withdrawn when the new one is queued.

Like every person message it waits for the recipient's send window and is never queued for (nor
sent to) someone who opted out. Anonymous engagements get it too: anonymity is about survey
answers (stored without the person), and the handover asks nothing.

Catch-up: engagements that ended more than ``handover_max_age_days`` before the run
(``AUXENG_HANDOVER_MAX_AGE_DAYS``) get none (a first install does not hand over old engagements).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.checkins.planning import CANCELLED, MISSED, SKIPPED
from auxeng.checkins.schedule import due_date
from auxeng.handover.help import help_places
from auxeng.messaging import outbox
from auxeng.messaging.outbox import OutboundMessage, enqueue, samples
from auxeng.messaging.planner import MessagePlanner
from auxeng.registry.lifecycle import ended_and_live_clause
from auxeng.registry.roles import HOST_SIDE, host_manager_email, host_tech_lead
from auxeng.settings import Settings
from auxeng.store.models import CheckinRow, EngagementRow, MemberRow, ProgramRow, TeamRow
from auxeng.vocabulary import MessageKind

log = logging.getLogger(__name__)

MANAGER, TECH_LEAD = "manager", "tech lead"
NOT_PLANNED = (SKIPPED, CANCELLED, MISSED)
PERSON_IN_KEY_MAX = 160  # with a 64-character engagement key and the version, well under 300


@dataclass
class HandoverReport:
    """What one planning step did (or, in a dry run, would have done)."""

    engagements: int = 0
    people: int = 0
    messages: int = 0
    withdrawn: int = 0
    already_sent: int = 0
    skipped_people: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "engagements": self.engagements,
            "people": self.people,
            "messages_queued": self.messages,
            "messages_withdrawn": self.withdrawn,
            "already_sent": self.already_sent,
            "people_skipped": dict(self.skipped_people),
            "warnings": self.warnings,
        }


def handover_prefix(engagement_key: str, email: str) -> str:
    """The dedupe prefix of every handover of one engagement to one person (all its versions).

    The address as is, or its hash when it is so long that the key would pass the outbox's limit."""
    person = email.lower()
    if len(person) > PERSON_IN_KEY_MAX:
        person = hashlib.sha256(person.encode()).hexdigest()
    return f"{MessageKind.HANDOVER}:{engagement_key}:{person}:"


def handover_version(engagement: EngagementRow) -> str:
    """What tells apart the times an engagement ended: its end date and the day it was marked ended."""
    marked = engagement.ended_as_of.isoformat() if engagement.ended_as_of else "-"
    return f"{engagement.end_date.isoformat()}:{marked}"


def handover_people(
    engagement: EngagementRow, members: list[MemberRow], team: TeamRow | None
) -> tuple[list[tuple[str, str]], list[str]]:
    """(email, role) of who gets the handover (the host manager, then the host tech lead; a person
    once, with both roles), and a warning for each of them missing."""
    host = [m for m in members if m.side == HOST_SIDE]
    manager = host_manager_email(team, host)
    tech_lead = host_tech_lead(host)
    warnings = []
    if manager is None:
        warnings.append(
            f"{engagement.key}: no host manager (neither team {engagement.host_team_key} nor a host member "
            "with role manager names one): nobody gets the manager's handover"
        )
    if tech_lead is None:
        warnings.append(
            f"{engagement.key}: no host member with role tech_lead: nobody gets the tech lead's handover"
        )
    people: dict[str, list[str]] = {}
    for email, role in ((manager, MANAGER), (tech_lead.email if tech_lead else None, TECH_LEAD)):
        if email:
            people.setdefault(email.lower(), []).append(role)
    return [(email, " and ".join(roles)) for email, roles in people.items()], warnings


def checkin_day(engagement: EngagementRow, checkin: CheckinRow | None, settings: Settings) -> date | None:
    """The three-month check-in's date as planned: the check-in's (overrides included) once it exists,
    else the schedule's rule; None when it is skipped, cancelled or missed."""
    if checkin is None:
        return due_date(engagement.end_date, settings.checkin_offset_months)
    return None if checkin.status in NOT_PLANNED else checkin.due_on


def plan_handovers(
    session: Session, *, as_of: date, now: datetime, settings: Settings, key: bytes
) -> HandoverReport:
    """Queue the handover of every recently ended, live engagement to whoever has not had it."""
    report = HandoverReport()
    oldest_end = as_of - timedelta(days=settings.handover_max_age_days)
    engagements = list(
        session.scalars(
            select(EngagementRow)
            .where(ended_and_live_clause(), EngagementRow.end_date >= oldest_end)
            .order_by(EngagementRow.end_date, EngagementRow.key)
        )
    )
    if not engagements:
        return report
    keys = [e.key for e in engagements]
    members: dict[str, list[MemberRow]] = defaultdict(list)
    for member in session.scalars(
        select(MemberRow).where(MemberRow.engagement_key.in_(keys)).order_by(MemberRow.id)
    ):
        members[member.engagement_key].append(member)
    checkins = {
        c.engagement_key: c
        for c in session.scalars(select(CheckinRow).where(CheckinRow.engagement_key.in_(keys)))
    }
    planner = MessagePlanner(session, settings, now=now, key=key)
    program = session.get(ProgramRow, 1)
    program_help = program.help_after_end if program else None

    wanted: list[tuple[EngagementRow, str, str]] = []
    for engagement in engagements:
        people, warnings = handover_people(
            engagement, members[engagement.key], planner.teams.get(engagement.host_team_key)
        )
        report.warnings += warnings
        for email, role in people:
            if email in planner.opted_out:
                report.skipped_people["opted_out"] += 1
                continue
            wanted.append((engagement, email, role))
    went_out = outbox.which_went_out(
        session,
        kind=MessageKind.HANDOVER,
        dedupe_prefixes=[handover_prefix(e.key, email) for e, email, _ in wanted],
        now=now,
    )
    earliest = max(now, datetime.combine(as_of, time(0), settings.timezone))
    current: dict[str, str] = {}
    messages: list[OutboundMessage] = []
    handed_over: set[str] = set()
    for engagement, email, role in wanted:
        prefix = handover_prefix(engagement.key, email)
        if prefix in went_out:
            report.already_sent += 1
            continue
        current[prefix] = f"{prefix}{handover_version(engagement)}:"
        team = planner.teams.get(engagement.host_team_key)
        recipient = planner.recipient(email)
        messages += planner.person_messages(
            dedupe_prefix=current[prefix].rstrip(":"),
            template=MessageKind.HANDOVER,
            recipient=recipient,
            context={
                "engagement": planner.engagement_view(engagement),
                "role": role,
                "no_more_work_from": engagement.end_date + timedelta(days=1),
                "help": help_places(program_help, team.help_after_end if team else None),
                "checkin_on": checkin_day(engagement, checkins.get(engagement.key), settings),
                "goals_business": engagement.goals_business,
                "goals_technical": engagement.goals_technical,
            },
            earliest=earliest,
            engagement_key=engagement.key,
            requires_ended=True,
        )
        report.people += 1
        handed_over.add(engagement.key)
    report.engagements = len(handed_over)
    report.withdrawn = outbox.withdraw_superseded(
        session,
        kind=MessageKind.HANDOVER,
        current=current,
        why="the engagement's end changed: replaced by a handover with the new dates",
        now=now,
    )
    report.messages = enqueue(session, messages, now=now)
    report.samples = samples(messages)
    for warning in report.warnings:
        log.warning("Handover: %s", warning)
    return report
