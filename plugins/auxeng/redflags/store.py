"""Red flags in the store: read the facts, reconcile the rules' findings, acknowledge.

One live flag (``open`` or ``acknowledged``) per rule and subject, enforced by the unique
``open_key``. A daily :func:`reconcile` opens new flags, updates the evidence of live ones
(escalating when the severity rises: an acknowledged flag whose severity rises above
what was acknowledged is open again), and resolves the ones no rule returns any more.
Every change is a :class:`~auxeng.store.models.FlagEventRow`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from auxeng.checkins.planning import SURVEYING, checkin_answers, outcome
from auxeng.independence.trends import TREND_WEEKS, TeamIndependence
from auxeng.redflags import rules
from auxeng.redflags.rules import Answer, Checkin, Engagement, Facts, Flag, HelpRequest, Thresholds
from auxeng.registry.lifecycle import is_cancelled, removed_clause
from auxeng.settings import Settings
from auxeng.store.db import same_update_columns
from auxeng.store.models import (
    CheckinRow,
    EngagementRow,
    FlagEventRow,
    FlagRow,
    HelpRequestRow,
    IndependenceSnapshotRow,
    IndependenceWeekRow,
    MemberRow,
    PersonRow,
    SurveyResponseRow,
    TeamRow,
)
from auxeng.text import clean_text
from auxeng.vocabulary import DETRACTOR_MAX, ResponseSource

log = logging.getLogger(__name__)

OPEN = "open"
ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"
LIVE = (OPEN, ACKNOWLEDGED)
CLOSED_CHECKINS = ("answered", "unanswered")
NOTE_LIMIT = 1000


def day_start(day: date, settings: Settings) -> datetime:
    """Midnight starting ``day`` in the program's time zone, in UTC."""
    return datetime.combine(day, time(0), settings.timezone).astimezone(UTC)


def _local_day(moment: datetime, settings: Settings) -> date:
    return moment.astimezone(settings.timezone).date()


def load_facts(session: Session, *, settings: Settings, as_of: date) -> Facts:
    """What the rules need, as of the end of ``as_of`` (program time zone); later rows are left out."""
    until = day_start(as_of + timedelta(days=1), settings)
    engagements = list(session.scalars(select(EngagementRow).where(~removed_clause())))
    team_of = {e.key: e.host_team_key for e in engagements}
    platform: dict[str, list[str]] = defaultdict(list)
    for key, email in session.execute(
        select(MemberRow.engagement_key, MemberRow.email)
        .where(MemberRow.side == "auxeng")
        .order_by(MemberRow.id)
    ):
        platform[key].append(email)
    facts_engagements = tuple(
        Engagement(
            key=e.key,
            team_key=e.host_team_key,
            title=e.title,
            start=e.start_date,
            end=e.end_date,
            cancelled=is_cancelled(e),
            platform_people=tuple(platform[e.key]),
        )
        for e in sorted(engagements, key=lambda e: (e.start_date, e.key))
    )

    help_since = day_start(as_of - timedelta(days=settings.help_window_days + 1), settings)
    requests = tuple(
        HelpRequest(
            team_key=r.team_key,
            on=_local_day(r.requested_at, settings),
            source=r.source,
            summary=r.summary,
            author=r.author,
            link=r.link,
        )
        for r in session.scalars(
            select(HelpRequestRow)
            .where(HelpRequestRow.requested_at >= help_since, HelpRequestRow.requested_at < until)
            .order_by(HelpRequestRow.requested_at, HelpRequestRow.id)
        )
    )

    memory_since = as_of - timedelta(days=settings.flag_memory_days + 1)
    closed = tuple(
        Checkin(
            engagement_key=c.engagement_key,
            team_key=team_of.get(c.engagement_key, ""),
            status=c.status,
            due_on=c.due_override or c.due_on,
            closed_on=_local_day(c.closed_at, settings) if c.closed_at else None,
            invited=c.invited,
            responses=c.responses,
            maintainability_min=c.maintainability_min,
            help_needed=c.help_needed,
        )
        for c in session.scalars(
            select(CheckinRow)
            .where(
                CheckinRow.status.in_(CLOSED_CHECKINS),
                CheckinRow.closed_at >= day_start(memory_since, settings),
                CheckinRow.closed_at < until,
            )
            .order_by(CheckinRow.engagement_key)
        )
        if c.engagement_key in team_of
    )
    checkins = closed + _open_checkins(session, until=until, team_of=team_of)

    answers = _answers(session, settings=settings, since=day_start(memory_since, settings), until=until)
    people = dict(session.execute(select(PersonRow.email, PersonRow.name)).all())
    return Facts(
        as_of=as_of,
        engagements=facts_engagements,
        help_requests=requests,
        checkins=checkins,
        answers=tuple(
            Answer(
                engagement_key=r.engagement_key,
                team_key=team_of.get(r.engagement_key, ""),
                survey=r.survey,
                nps=r.nps,
                on=_local_day(r.submitted_at, settings),
                who=None if anonymous or not r.respondent_email else people.get(r.respondent_email),
                comment=_comment(r.answers),
            )
            for r, anonymous in answers
            if r.engagement_key in team_of
        ),
        independence=_team_independence(session, until=until),
        team_names=dict(session.execute(select(TeamRow.key, TeamRow.name)).all()),
        person_names={email: name for email, name in people.items() if name},
        open_flags=frozenset(
            session.execute(select(FlagRow.rule, FlagRow.subject_key).where(FlagRow.status.in_(LIVE))).all()
        ),
    )


def _team_independence(session: Session, *, until: datetime) -> tuple[TeamIndependence, ...]:
    """The team snapshots (with a score) of the latest independence week ended by ``until`` and of
    the :data:`~auxeng.independence.trends.TREND_WEEKS` weeks before it: two statements."""
    latest = session.scalar(
        select(func.max(IndependenceWeekRow.week)).where(IndependenceWeekRow.ends_at <= until)
    )
    if latest is None:
        return ()
    snapshot = IndependenceSnapshotRow
    rows = session.execute(
        select(snapshot.key, snapshot.week, snapshot.score, snapshot.scored, snapshot.components)
        .where(
            snapshot.segment == "team",
            snapshot.score.is_not(None),
            snapshot.week >= latest - timedelta(weeks=TREND_WEEKS),
            snapshot.week <= latest,
        )
        .order_by(snapshot.key, snapshot.week)
    )
    return tuple(TeamIndependence.stored(*row) for row in rows)


def _open_checkins(session: Session, *, until: datetime, team_of: dict[str, str]) -> tuple[Checkin, ...]:
    """Check-ins still collecting answers, scored on the answers given so far (before ``until``),
    the same way the close scores them."""
    rows = list(
        session.scalars(
            select(CheckinRow).where(CheckinRow.status == SURVEYING).order_by(CheckinRow.engagement_key)
        )
    )
    keys = [c.engagement_key for c in rows if c.engagement_key in team_of]
    if not keys:
        return ()
    answers = checkin_answers(session, keys, until=until)
    found = []
    for c in rows:
        if c.engagement_key not in team_of:
            continue
        result = outcome(answers[c.engagement_key])
        found.append(
            Checkin(
                engagement_key=c.engagement_key,
                team_key=team_of[c.engagement_key],
                status=c.status,
                due_on=c.due_override or c.due_on,
                closed_on=None,
                invited=c.invited,
                responses=result["responses"],
                maintainability_min=result["maintainability_min"],
                help_needed=result["help_needed"],
            )
        )
    return tuple(found)


def _answers(
    session: Session, *, settings: Settings, since: datetime, until: datetime
) -> list[tuple[SurveyResponseRow, bool]]:
    """Every scored answer of the engagements with a detractor answer in [since, until)."""
    real = (SurveyResponseRow.source != ResponseSource.DEMO, SurveyResponseRow.nps.is_not(None))
    recent = (
        select(SurveyResponseRow.engagement_key)
        .where(
            *real,
            SurveyResponseRow.nps <= DETRACTOR_MAX,
            SurveyResponseRow.submitted_at >= since,
            SurveyResponseRow.submitted_at < until,
        )
        .distinct()
    )
    return [
        (row, anonymous)
        for row, anonymous in session.execute(
            select(SurveyResponseRow, EngagementRow.anonymous)
            .join(EngagementRow, EngagementRow.key == SurveyResponseRow.engagement_key)
            .where(
                *real, SurveyResponseRow.engagement_key.in_(recent), SurveyResponseRow.submitted_at < until
            )
            .order_by(SurveyResponseRow.submitted_at, SurveyResponseRow.id)
        )
    ]


def _comment(answers: Any) -> str | None:
    if not isinstance(answers, dict):
        return None
    for name in ("to_change", "cannot_take_over", "went_well"):
        value = answers.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


@dataclass
class ReconcileReport:
    """What one evaluation changed (keys are ``open_key``s)."""

    opened: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    resolved: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "opened": self.opened,
            "escalated": self.escalated,
            "updated": len(self.updated),
            "unchanged": self.unchanged,
            "resolved": self.resolved,
        }


def event_values(flag: FlagRow, event: str, now: datetime, **detail: Any) -> dict[str, Any]:
    """One event of the flag's history (every change to a flag is one), at its severity now."""
    return {"flag_id": flag.id, "event": event, "severity": flag.severity, "detail": detail, "at": now}


def insert_events(session: Session, events: list[dict[str, Any]]) -> None:
    """Insert flag events, in order, through Core (one executemany)."""
    if events:
        session.execute(insert(FlagEventRow.__table__), events)


def record_event(session: Session, flag: FlagRow, event: str, now: datetime, **detail: Any) -> None:
    """Append one event to the flag's history now (a step recording many collects :func:`event_values`)."""
    insert_events(session, [event_values(flag, event, now, **detail)])


def reconcile(session: Session, flags: list[Flag], *, as_of: date, now: datetime) -> ReconcileReport:
    """Make the live flags match ``flags`` (the rules' findings of ``as_of``). Caller commits."""
    report = ReconcileReport()
    live = {row.open_key: row for row in session.scalars(select(FlagRow).where(FlagRow.status.in_(LIVE)))}
    touched = list(live.values())
    opened = _open(session, [flag for flag in flags if flag.open_key not in live], as_of=as_of, now=now)
    events: list[dict[str, Any]] = []
    for flag in flags:
        row = live.pop(flag.open_key, None)
        if row is None:
            row = opened[flag.open_key]
            events.append(event_values(row, "opened", now, summary=flag.summary))
            report.opened.append(flag.open_key)
            report.samples.append(f"opened {flag.severity} {flag.open_key}: {flag.summary}")
            continue
        row.evaluated_on = as_of
        if rules.severity_rose(row.severity, flag.severity):
            previous = row.severity
            row.severity = flag.severity
            reopened = row.status == ACKNOWLEDGED and rules.severity_rose(
                row.acknowledged_severity, flag.severity
            )
            if reopened:
                row.status = OPEN
            events.append(
                event_values(
                    row, "escalated", now, previous=previous, reopened=reopened, summary=flag.summary
                )
            )
            report.escalated.append(flag.open_key)
            report.samples.append(f"escalated {previous} → {flag.severity} {flag.open_key}: {flag.summary}")
        elif row.severity != flag.severity:
            events.append(event_values(row, "eased", now, previous=row.severity, summary=flag.summary))
            row.severity = flag.severity
        elif row.evidence == flag.evidence and row.summary == flag.summary:
            report.unchanged += 1
            continue
        else:
            events.append(event_values(row, "updated", now, summary=flag.summary))
        row.summary = flag.summary
        row.evidence = flag.evidence
        row.team_key = flag.team_key
        row.engagement_key = flag.engagement_key
        row.updated_at = now
        report.updated.append(flag.open_key)
    for key, row in sorted(live.items()):
        row.status = RESOLVED
        row.open_key = None
        row.resolved_at = now
        row.resolved_reason = f"the condition cleared on {as_of.isoformat()}"
        row.updated_at = now
        events.append(event_values(row, "resolved", now, reason=row.resolved_reason))
        report.resolved.append(key)
        report.samples.append(f"resolved {key}")
    same_update_columns(session, touched)
    insert_events(session, events)
    session.flush()
    return report


def _open(session: Session, flags: list[Flag], *, as_of: date, now: datetime) -> dict[str, FlagRow]:
    """New open flags: one INSERT (Core), read back in one SELECT; by open key."""
    if not flags:
        return {}
    session.execute(
        insert(FlagRow.__table__),
        [
            {
                "rule": flag.rule,
                "subject_kind": flag.subject_kind,
                "subject_key": flag.subject_key,
                "open_key": flag.open_key,
                "status": OPEN,
                "severity": flag.severity,
                "summary": flag.summary,
                "evidence": flag.evidence,
                "team_key": flag.team_key,
                "engagement_key": flag.engagement_key,
                "opened_at": now,
                "opened_on": as_of,
                "evaluated_on": as_of,
                "updated_at": now,
                "announcements": 0,
            }
            for flag in flags
        ],
    )
    keys = [flag.open_key for flag in flags]
    return {row.open_key: row for row in session.scalars(select(FlagRow).where(FlagRow.open_key.in_(keys)))}


def evaluate_flags(session: Session, *, settings: Settings, as_of: date, now: datetime) -> ReconcileReport:
    """Read the facts of ``as_of``, run every rule and reconcile the stored flags."""
    facts = load_facts(session, settings=settings, as_of=as_of)
    return reconcile(session, rules.evaluate(facts, Thresholds.from_settings(settings)), as_of=as_of, now=now)


class FlagNotFound(LookupError):
    pass


@dataclass(frozen=True)
class AckOutcome:
    """``state``: ``acknowledged`` (now), ``already`` (earlier, by ``by``) or ``resolved``."""

    state: str
    flag: FlagRow


def acknowledge(session: Session, flag_id: int, *, by: str, note: str, now: datetime) -> AckOutcome:
    """Record that ``by`` acknowledged flag ``flag_id`` and why. Caller commits.

    A resolved flag cannot be acknowledged; acknowledging twice keeps the first record.
    ValueError for an empty or over-long note; :class:`FlagNotFound` for an unknown id.
    """
    note = clean_text(note)
    if not note:
        raise ValueError("say why (what you will do about it) before acknowledging")
    if len(note) > NOTE_LIMIT:
        raise ValueError(f"the note is {len(note)} characters; at most {NOTE_LIMIT}")
    flag = session.get(FlagRow, flag_id, with_for_update=True)
    if flag is None:
        raise FlagNotFound(f"no red flag {flag_id}")
    if flag.status == RESOLVED:
        return AckOutcome("resolved", flag)
    if flag.status == ACKNOWLEDGED:
        return AckOutcome("already", flag)
    flag.status = ACKNOWLEDGED
    flag.acknowledged_at = now
    flag.acknowledged_by = by
    flag.acknowledged_note = note
    flag.acknowledged_severity = flag.severity
    flag.updated_at = now
    record_event(session, flag, "acknowledged", now, by=by, note=note)
    session.flush()
    return AckOutcome("acknowledged", flag)


def mark_announced(flag: FlagRow, now: datetime, *, reason: str, to: list[str]) -> dict[str, Any]:
    """Record that the flag's alert number N went out (queued) to ``to``; returns the event to insert
    (:func:`insert_events`, with the run's others)."""
    number = flag.announcements + 1
    flag.announcements = number
    flag.announced_at = now
    flag.announced_severity = flag.severity
    return event_values(flag, "announced", now, reason=reason, to=to, number=number)


def live_flags(session: Session) -> list[FlagRow]:
    """Open and acknowledged flags, most severe and oldest first."""
    rows = session.scalars(select(FlagRow).where(FlagRow.status.in_(LIVE)))
    return sorted(
        rows, key=lambda f: (-rules.SEVERITY_ORDER[f.severity], f.status != OPEN, f.opened_at, f.id)
    )
