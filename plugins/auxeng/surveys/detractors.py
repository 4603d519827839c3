"""Detractor alerts: a post-engagement answer of 0-6 alerts the engagement's AuxEng lead(s), once.

The leads are :func:`auxeng.registry.roles.auxeng_leads`; an engagement without one
alerts the program managers instead. Each alert (email and Slack DM to each recipient)
carries the response's id in the outbox (``response_id``): the answers still to alert
about are found with an anti-join on that indexed column, so a daily run reads only
new detractor answers, however many were alerted before. The synthetic history
``make demo`` seeds is not news and never alerts.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace
from datetime import datetime

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from auxeng.messaging.outbox import OutboundMessage, enqueue
from auxeng.messaging.planner import MessagePlanner
from auxeng.registry.roles import PLATFORM_SIDE, auxeng_leads
from auxeng.settings import Settings
from auxeng.store.models import EngagementRow, MemberRow, OutboxRow, ProgramRow, SurveyResponseRow
from auxeng.surveys.invitations import PlanReport
from auxeng.vocabulary import DETRACTOR_MAX, MessageKind, ResponseSource, SurveyKind

log = logging.getLogger(__name__)


def alerted_clause() -> ColumnElement[bool]:
    """Whether an alert about the response was queued (looked up by the outbox's ``response_id`` index)."""
    return exists().where(
        OutboxRow.response_id == SurveyResponseRow.id, OutboxRow.kind == MessageKind.DETRACTOR_ALERT
    )


def unalerted_detractor_answers(session: Session) -> list[tuple[SurveyResponseRow, EngagementRow]]:
    """Detractor answers to the post-engagement survey that no alert was queued for yet, oldest first."""
    query = (
        select(SurveyResponseRow, EngagementRow)
        .join(EngagementRow, EngagementRow.key == SurveyResponseRow.engagement_key)
        .where(
            SurveyResponseRow.survey == SurveyKind.POST_ENGAGEMENT,
            SurveyResponseRow.nps <= DETRACTOR_MAX,
            SurveyResponseRow.source != ResponseSource.DEMO,
            ~alerted_clause(),
        )
        .order_by(SurveyResponseRow.id)
    )
    return [(response, engagement) for response, engagement in session.execute(query)]


def plan_detractor_alerts(session: Session, *, now: datetime, settings: Settings, key: bytes) -> PlanReport:
    """Alert each engagement's AuxEng lead(s) about every detractor answer not alerted yet."""
    report = PlanReport()
    rows = unalerted_detractor_answers(session)
    if not rows:
        return report
    platform_side: dict[str, list[MemberRow]] = defaultdict(list)
    for member in session.scalars(
        select(MemberRow)
        .where(MemberRow.engagement_key.in_({e.key for _, e in rows}), MemberRow.side == PLATFORM_SIDE)
        .order_by(MemberRow.id)
    ):
        platform_side[member.engagement_key].append(member)
    planner = MessagePlanner(session, settings, now=now, key=key)
    program = session.get(ProgramRow, 1)
    managers = [(m["email"], m.get("name"), m.get("slack_id")) for m in (program.managers if program else [])]
    messages: list[OutboundMessage] = []
    for response, engagement in rows:
        targets = [planner.recipient(m.email) for m in auxeng_leads(platform_side[engagement.key])] or [
            planner.recipient(email, name, slack_id) for email, name, slack_id in managers
        ]
        if not targets:
            log.warning("Detractor on %s: no AuxEng lead and no program manager to alert", engagement.key)
            continue
        respondent = "A respondent (anonymous engagement)"
        if not engagement.anonymous and response.respondent_email:
            respondent = planner.recipient(response.respondent_email).name
        answers = response.answers or {}
        for target in targets:
            batch = planner.person_messages(
                dedupe_prefix=f"{MessageKind.DETRACTOR_ALERT}:{response.response_ref[:24]}:{target.email}",
                template=MessageKind.DETRACTOR_ALERT,
                recipient=target,
                context={
                    "engagement": planner.engagement_view(engagement),
                    "lead_name": target.name,
                    "respondent": respondent,
                    "score": response.nps,
                    "went_well": answers.get("went_well"),
                    "to_change": answers.get("to_change"),
                    "business_goals": answers.get("business_goals"),
                    "technical_goals": answers.get("technical_goals"),
                },
                earliest=now,
                engagement_key=engagement.key,
            )
            messages += [replace(message, response_id=response.id) for message in batch]
            report.alerts += 1
    report.messages = enqueue(session, messages, now=now)
    return report
