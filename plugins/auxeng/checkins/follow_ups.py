"""Monthly follow-ups for engagements with ``follow_up: monthly``.

Once a month after the end (``follow_up_months`` times, default 6) the
engagement's AuxEng lead gets a reminder to hold a sync with the host team's
tech lead, an engineer and the manager, with a short "how is it going" link
(the ``follow_up`` survey, one invitation per month: ``round`` = the month).
Answering "follow-up finished" stops the reminders; so does an override.
On catch-up only the latest month due is sent, and nothing older than the
check-in cut-off (``checkin_max_age_days``).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from auxeng.checkins.planning import CheckinContext, CheckinReport
from auxeng.checkins.schedule import add_months
from auxeng.messaging import outbox
from auxeng.messaging.outbox import OutboundMessage, enqueue, samples
from auxeng.messaging.planner import end_of_day
from auxeng.registry.lifecycle import ended_and_live_clause, is_ended, is_live
from auxeng.registry.roles import auxeng_lead, host_manager_email, host_tech_lead
from auxeng.settings import Settings
from auxeng.store.db import same_update_columns
from auxeng.store.models import (
    EngagementRow,
    FollowUpRow,
    SurveyInvitationRow,
    SurveyResponseRow,
)
from auxeng.surveys.invitations import Invitations, Planned
from auxeng.vocabulary import InvitationStatus, MessageKind, SurveyKind

ACTIVE, FINISHED, COMPLETED, CANCELLED = "active", "finished", "completed", "cancelled"


def latest_round_due(end: date, months: int, as_of: date) -> int:
    """The last month (1..``months``) whose follow-up day (end + k months) is on or before ``as_of``; 0 if none."""
    due = 0
    for round_ in range(1, months + 1):
        if add_months(end, round_) <= as_of:
            due = round_
    return due


def stop_follow_up(
    session: Session, follow_up: FollowUpRow, status: str, *, now: datetime, by: str | None, why: str
) -> None:
    """Stop one follow-up and withdraw its reminders still pending."""
    withdrawals = _stop(follow_up, status, now=now, by=by, why=why)
    outbox.withdraw_each(session, kind=MessageKind.FOLLOW_UP_REMINDER, engagements=withdrawals)


def _stop(
    follow_up: FollowUpRow, status: str, *, now: datetime, by: str | None, why: str
) -> dict[str, tuple[str, datetime]]:
    """Mark the follow-up stopped; returns the withdrawal of its pending reminders (engagement → reason, moment)."""
    follow_up.status = status
    follow_up.finished_at = now
    follow_up.finished_by = by
    follow_up.finish_reason = why
    follow_up.updated_at = now
    return {follow_up.engagement_key: (f"follow-up {status}: {why}", now)}


def plan_follow_ups(
    session: Session, *, as_of: date, now: datetime, settings: Settings, key: bytes
) -> CheckinReport:
    """Queue this month's follow-up reminders; stop the ones finished, cancelled or done (idempotent)."""
    report = CheckinReport()
    rows = list(
        session.execute(
            select(EngagementRow, FollowUpRow)
            .outerjoin(FollowUpRow, FollowUpRow.engagement_key == EngagementRow.key)
            .where(
                (FollowUpRow.status == ACTIVE)
                | (
                    FollowUpRow.id.is_(None)
                    & (EngagementRow.follow_up == "monthly")
                    & ended_and_live_clause()
                )
            )
            .order_by(EngagementRow.end_date, EngagementRow.key)
        )
    )
    if not rows:
        return report
    keys = [e.key for e, _ in rows]
    finished: dict[str, tuple[datetime, str | None, int]] = {}
    for engagement_key, submitted_at, email, answers, round_ in session.execute(
        select(
            SurveyResponseRow.engagement_key,
            SurveyResponseRow.submitted_at,
            SurveyResponseRow.respondent_email,
            SurveyResponseRow.answers,
            SurveyInvitationRow.round,
        )
        .outerjoin(SurveyInvitationRow, SurveyInvitationRow.id == SurveyResponseRow.invitation_id)
        .where(SurveyResponseRow.survey == SurveyKind.FOLLOW_UP, SurveyResponseRow.engagement_key.in_(keys))
        .order_by(SurveyResponseRow.submitted_at)
    ):
        if (answers or {}).get("next") == "finished" and engagement_key not in finished:
            finished[engagement_key] = (submitted_at, email, round_ or 0)
    ctx = CheckinContext(session, settings, now=now, key=key, keys=set(keys))
    existing = {
        (i.engagement_key, i.round): i
        for i in session.scalars(
            select(SurveyInvitationRow).where(
                SurveyInvitationRow.survey == SurveyKind.FOLLOW_UP,
                SurveyInvitationRow.engagement_key.in_(keys),
            )
        )
    }
    created = _create_follow_ups(session, [e.key for e, f in rows if f is None], settings=settings, now=now)
    batch = Invitations(session, ctx.planner)
    withdrawals: dict[str, tuple[str, datetime]] = {}
    to_send: list[tuple[Planned, EngagementRow, int]] = []
    for engagement, follow_up in rows:
        follow_up = follow_up or created[engagement.key]
        if engagement.key in finished:
            at, by, round_ = finished[engagement.key]
            withdrawals |= _stop(
                follow_up,
                FINISHED,
                now=at,
                by=by,
                why="marked finished by the lead" + (f" (month {round_})" if round_ else ""),
            )
            report.follow_ups_finished += 1
            continue
        if not is_live(engagement) or engagement.follow_up != "monthly":
            withdrawals |= _stop(
                follow_up,
                CANCELLED,
                now=now,
                by=None,
                why="engagement cancelled, removed or no longer followed up",
            )
            continue
        if not is_ended(engagement):
            continue
        due_round = latest_round_due(engagement.end_date, follow_up.months, as_of)
        if due_round > follow_up.last_round:
            day = add_months(engagement.end_date, due_round)
            follow_up.last_round = due_round
            follow_up.updated_at = now
            if day >= as_of - timedelta(days=settings.checkin_max_age_days):
                lead = auxeng_lead(ctx.members[engagement.key])
                if lead is None:
                    report.warnings.append(
                        f"{engagement.key}: no AuxEng lead to send the follow-up reminder to"
                    )
                else:
                    stands = existing.get((engagement.key, due_round))
                    invitation = batch.invite(
                        stands,
                        survey=SurveyKind.FOLLOW_UP,
                        engagement_key=engagement.key,
                        email=lead.email,
                        side="auxeng",
                        role=lead.role,
                        round_=due_round,
                        as_of=as_of,
                        now=now,
                        closes_at=end_of_day(
                            max(add_months(day, 1), as_of + timedelta(days=settings.checkin_window_days)),
                            settings,
                        ),
                    ) or Planned(stands.status, stands.skip_reason, stands)
                    if invitation.status != InvitationStatus.INVITED:
                        continue
                    to_send.append((invitation, engagement, due_round))
        if follow_up.last_round >= follow_up.months:
            follow_up.status = COMPLETED
            follow_up.finish_reason = f"all {follow_up.months} monthly reminders went out"
    same_update_columns(session, [follow_up or created[engagement.key] for engagement, follow_up in rows])
    batch.save()
    outbox.withdraw_each(session, kind=MessageKind.FOLLOW_UP_REMINDER, engagements=withdrawals)
    messages: list[OutboundMessage] = []
    for planned, engagement, round_ in to_send:
        invitation = planned.saved
        people = _sync_people(ctx, engagement)
        link, _scores = ctx.planner.survey_links(invitation)
        recipient = ctx.planner.recipient(invitation.email)
        messages += ctx.planner.person_messages(
            dedupe_prefix=f"{MessageKind.FOLLOW_UP_REMINDER}:{invitation.id}",
            template=MessageKind.FOLLOW_UP_REMINDER,
            recipient=recipient,
            context={
                "engagement": ctx.planner.engagement_view(engagement),
                "round": round_,
                "months": settings.follow_up_months,
                "sync_with": people,
                "survey_link": link,
            },
            earliest=max(now, datetime.combine(as_of, time(0), settings.timezone)),
            engagement_key=engagement.key,
            invitation_id=invitation.id,
            stop_if_answered=True,
            requires_ended=True,
        )
        report.follow_ups += 1
    report.messages = enqueue(session, messages, now=now)
    report.samples = samples(messages)
    return report


def _create_follow_ups(
    session: Session, keys: list[str], *, settings: Settings, now: datetime
) -> dict[str, FollowUpRow]:
    """Active follow-ups for these engagements: one INSERT (Core), read back in one SELECT."""
    if not keys:
        return {}
    session.execute(
        insert(FollowUpRow.__table__),
        [
            {
                "engagement_key": engagement_key,
                "status": ACTIVE,
                "months": settings.follow_up_months,
                "last_round": 0,
                "created_at": now,
                "updated_at": now,
            }
            for engagement_key in keys
        ],
    )
    return {
        f.engagement_key: f
        for f in session.scalars(select(FollowUpRow).where(FollowUpRow.engagement_key.in_(keys)))
    }


def _sync_people(ctx: CheckinContext, engagement: EngagementRow) -> list[dict[str, Any]]:
    """Who the lead should sync with: the host tech lead, one engineer and the manager."""
    host = [m for m in ctx.members[engagement.key] if m.side == "host"]
    team = ctx.planner.teams.get(engagement.host_team_key)
    picks: list[tuple[str, str]] = []
    tech_lead = host_tech_lead(host)
    if tech_lead:
        picks.append(("tech lead", tech_lead.email))
    engineer = next((m for m in host if m.role == "engineer"), None)
    if engineer:
        picks.append(("engineer", engineer.email))
    manager = host_manager_email(team, host)
    if manager:
        picks.append(("manager", manager))
    seen: dict[str, dict[str, Any]] = {}
    for role, email in picks:
        if email in seen:
            seen[email]["roles"].append(role)
        else:
            seen[email] = {"name": ctx.planner.recipient(email).name, "email": email, "roles": [role]}
    return list(seen.values())


__all__ = ["latest_round_due", "plan_follow_ups"]
