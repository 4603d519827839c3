"""Alerts about red flags to the program managers (email and Slack DM), and how flags read.

A live flag is announced when it is new, when its severity rose since the last
announcement, and again at most every ``AUXENG_FLAG_REANNOUNCE_DAYS`` while it stays
open (an acknowledged flag is not re-announced unless its severity rises above what was
acknowledged, which makes it open again). The host team's manager is copied on the rules
in ``AUXENG_FLAG_COPY_HOST_MANAGER`` (help requests and check-ins by default); engineer
load goes to the program managers only. Each alert carries a signed link to acknowledge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.messaging import outbox, tokens
from auxeng.messaging.outbox import OutboundMessage, enqueue, samples
from auxeng.messaging.planner import MessagePlanner, Recipient
from auxeng.redflags import rules
from auxeng.redflags.store import OPEN, insert_events, mark_announced
from auxeng.settings import Settings
from auxeng.store.models import FlagRow, PersonRow, ProgramRow, TeamRow
from auxeng.vocabulary import MessageKind

log = logging.getLogger(__name__)

NEW, ESCALATED, STILL_OPEN = "new", "escalated", "still open"


@dataclass(frozen=True)
class FlagView:
    """A flag as people read it (alerts, the acknowledge page, the digest)."""

    id: int
    rule: str
    title: str
    severity: str
    status: str
    subject: str
    summary: str
    lines: list[str]
    opened_on: date
    acknowledged_by: str | None
    acknowledged_note: str | None
    team_key: str | None = None


def _subject_label(flag: FlagRow, teams: dict[str, str], people: dict[str, str]) -> str:
    if flag.subject_kind == rules.TEAM:
        return teams.get(flag.subject_key, flag.subject_key)
    if flag.subject_kind == rules.ENGINEER:
        return people.get(flag.subject_key, flag.subject_key)
    return flag.subject_key


def evidence_lines(rule: str, evidence: dict[str, Any]) -> list[str]:
    """The evidence of a flag as short plain-text lines (quotes, dates, counts, links)."""
    lines: list[str] = []
    if rule == rules.HELP_REQUESTS:
        sources = ", ".join(f"{n} via {s}" for s, n in sorted((evidence.get("sources") or {}).items()) if n)
        lines.append(
            f"{evidence.get('requests')} requests in the last {evidence.get('window_days')} days "
            f"({sources}), since {evidence.get('engagement')} ended on {evidence.get('since')}"
        )
        for item in evidence.get("latest") or []:
            who = f" by {item['author']}" if item.get("author") else ""
            link = f" {item['link']}" if item.get("link") else ""
            lines.append(f'{item.get("on")} ({item.get("source")}{who}): "{item.get("summary")}"{link}')
    elif rule == rules.CHECKIN:
        lines += [str(reason) for reason in evidence.get("reasons") or []]
        lines.append(
            f"check-in due {evidence.get('due_on')}, closed {evidence.get('closed_on')}: "
            f"{evidence.get('responses')} of {evidence.get('invited')} answered"
        )
    elif rule == rules.REPEAT_DEPENDENCY:
        previous, following = evidence.get("previous") or {}, evidence.get("next") or {}
        lines.append(
            f"{previous.get('key')} ended {previous.get('end')}; {following.get('key')} starts "
            f"{following.get('start')} ({evidence.get('gap_days')} days later, limit "
            f"{evidence.get('months')} months)"
        )
        if len(evidence.get("chain") or []) > 2:
            lines.append("chain: " + " → ".join(evidence["chain"]))
    elif rule == rules.ENGINEER_LOAD:
        for item in evidence.get("engagements") or []:
            lines.append(f"{item.get('key')} ({item.get('team')}): {item.get('start')} to {item.get('end')}")
        gaps = ", ".join(f"{g} days" for g in evidence.get("gaps_days") or [])
        lines.append(
            f"gaps {gaps}; limit {evidence.get('limit')} engagements back to back "
            f"(gap of {evidence.get('gap_limit_days')} days or less)"
        )
    elif rule == rules.DETRACTOR_CLUSTER:
        lines.append(
            f"{evidence.get('detractors')} detractors among {evidence.get('answers')} answers, "
            f"latest {evidence.get('latest_on')}"
        )
        for quote in evidence.get("quotes") or []:
            comment = f': "{quote["comment"]}"' if quote.get("comment") else ""
            lines.append(f"{quote.get('nps')}/10 from {quote.get('who')} ({quote.get('on')}){comment}")
    elif rule == rules.INDEPENDENCE:
        line = f"independence {evidence.get('score')}/100 in the week of {evidence.get('week')}"
        if evidence.get("before_score") is not None:
            line += f", {evidence.get('before_score')} in the week of {evidence.get('before_week')}"
        lines.append(
            f"{line} (flagged below {evidence.get('below')}, critical below {evidence.get('critical')}, "
            f"or a drop of more than {evidence.get('drop_limit')} points in four weeks)"
        )
        for item in evidence.get("moved") or []:
            lines.append(
                f"{item.get('component')}: {item.get('from')} → {item.get('to')} points ({item.get('change'):+g})"
            )
        weakest = ", ".join(f"{i.get('component')} {i.get('points')}" for i in evidence.get("weakest") or [])
        if weakest:
            lines.append(f"weakest components now: {weakest}")
    return lines


def flag_views(session: Session, flags: list[FlagRow]) -> list[FlagView]:
    teams = dict(session.execute(select(TeamRow.key, TeamRow.name)).all())
    people = {e: n for e, n in session.execute(select(PersonRow.email, PersonRow.name)).all() if n}
    return [
        FlagView(
            id=f.id,
            rule=f.rule,
            title=rules.RULE_TITLES.get(f.rule, f.rule),
            severity=f.severity,
            status=f.status,
            subject=_subject_label(f, teams, people),
            summary=f.summary,
            lines=evidence_lines(f.rule, f.evidence or {}),
            opened_on=f.opened_on,
            acknowledged_by=f.acknowledged_by,
            acknowledged_note=f.acknowledged_note,
            team_key=f.team_key,
        )
        for f in flags
    ]


def announcement_prefix(flag: FlagRow, number: int) -> str:
    """The dedupe-key prefix of the messages of the flag's announcement ``number``."""
    return f"{MessageKind.FLAG_ALERT}:{flag.id}:{number}:"


def announcement_reason(
    flag: FlagRow, *, now: datetime, reannounce_days: int, last_went_out: datetime | None
) -> str | None:
    """Why ``flag`` should be announced now (new, escalated, still open), or None.

    "Still open" counts ``reannounce_days`` from when the last announcement reached the managers
    (``last_went_out``), not from when it was queued: one held by working hours or an outage is
    not followed by the next a few days after it arrived.
    """
    if flag.status != OPEN:
        return None
    if flag.announced_at is None:
        return NEW
    if rules.severity_rose(flag.announced_severity, flag.severity):
        return ESCALATED
    if last_went_out is not None and now - last_went_out >= timedelta(days=reannounce_days):
        return STILL_OPEN
    return None


@dataclass
class AlertReport:
    announced: dict[str, list[str]] = field(default_factory=dict)
    without_recipients: list[str] = field(default_factory=list)
    messages: int = 0
    samples: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "announced": self.announced,
            "without_recipients": self.without_recipients,
            "messages_queued": self.messages,
        }


def _recipients(
    flag: FlagRow, planner: MessagePlanner, managers: list[Recipient], settings: Settings
) -> list[tuple[Recipient, bool]]:
    """(recipient, copied) pairs: the program managers, plus the host manager where configured."""
    chosen = [(m, False) for m in managers]
    team = planner.teams.get(flag.team_key or "")
    copy = flag.rule in settings.flag_copy_host_manager and team is not None and team.manager_email
    if copy and team.manager_email not in {m.email for m in managers}:
        chosen.append((planner.recipient(team.manager_email, team.manager_name, team.manager_slack_id), True))
    return chosen


def plan_flag_alerts(session: Session, *, settings: Settings, key: bytes, now: datetime) -> AlertReport:
    """Queue the alerts due now (see the module docstring); record each announcement on its flag."""
    report = AlertReport()
    flags = list(session.scalars(select(FlagRow).where(FlagRow.status == OPEN).order_by(FlagRow.id)))
    went_out = outbox.first_sent(
        session,
        kind=MessageKind.FLAG_ALERT,
        dedupe_prefixes=[announcement_prefix(f, f.announcements) for f in flags if f.announcements],
    )
    due = [
        (flag, reason)
        for flag in flags
        if (
            reason := announcement_reason(
                flag,
                now=now,
                reannounce_days=settings.flag_reannounce_days,
                last_went_out=went_out.get(announcement_prefix(flag, flag.announcements)),
            )
        )
    ]
    if not due:
        return report
    planner = MessagePlanner(session, settings, now=now, key=key)
    program = session.get(ProgramRow, 1)
    managers = [
        planner.recipient(m["email"], m.get("name"), m.get("slack_id"))
        for m in (program.managers if program else [])
    ]
    views = {view.id: view for view in flag_views(session, [flag for flag, _ in due])}
    messages: list[OutboundMessage] = []
    events: list[dict[str, Any]] = []
    for flag, reason in due:
        targets = _recipients(flag, planner, managers, settings)
        if not targets:
            log.warning(
                "Red flag %s (%s): no program manager in the registry to alert", flag.id, flag.open_key
            )
            report.without_recipients.append(flag.open_key or str(flag.id))
            continue
        number = flag.announcements + 1
        for target, copied in targets:
            messages += planner.person_messages(
                dedupe_prefix=f"{announcement_prefix(flag, number)}{target.email}",
                template=MessageKind.FLAG_ALERT,
                recipient=target,
                context={
                    "flag": views[flag.id],
                    "reason": reason,
                    "copied": copied,
                    "ack_link": tokens.flag_ack_url(
                        flag.id, target.email, public_url=settings.public_url, key=key, now=now
                    ),
                },
                earliest=now,
                engagement_key=flag.engagement_key,
                kind=MessageKind.FLAG_ALERT,
            )
        events.append(mark_announced(flag, now, reason=reason, to=[t.email for t, _ in targets]))
        report.announced.setdefault(reason, []).append(flag.open_key or str(flag.id))
    insert_events(session, events)
    report.messages = enqueue(session, messages, now=now)
    report.samples = samples(messages)
    return report
