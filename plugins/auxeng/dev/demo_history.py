"""Synthetic survey history for the demo (``make demo``) and the NPS benchmark's shape.

The demo registry's engagements are fictional, so are their past answers: this writes
``weeks`` weeks of invitations and responses (``source = "demo"``) on the registry's
engagements that ended before the demo starts, so the weekly NPS and its digest have a
trend to show. Respondents are made-up addresses (``demo.NNNN@example.com``), never the
registry's people, and every seeded survey is closed (and reminded) before ``until``, so
the demo's real runs neither remind nor alert anyone about it. Deterministic per seed.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.nps.maths import category
from auxeng.registry.lifecycle import live_clause
from auxeng.store.models import EngagementRow, HelpRequestRow, SurveyInvitationRow, SurveyResponseRow
from auxeng.vocabulary import ResponseSource, SurveyKind

SOURCE = ResponseSource.DEMO
COMMENTS = {
    "promoter": (
        "Pairing with the AuxEng engineers got our first service to production in three weeks.",
        "The runbooks they left behind are the best docs we have.",
        "Great mix of hands-on work and teaching; we can deploy on our own now.",
    ),
    "passive": (
        "Good engagement, but the hand-over week felt rushed.",
        "Useful, though we spent the first week waiting for access.",
    ),
    "detractor": (
        "We still do not understand the deployment pipeline and have to ask for help every week.",
        "The engagement ended before our on-call rotation was ready.",
    ),
}
CHECKIN_COMMENTS = (
    "The alerting rules: nobody on the team knows how to tune them yet.",
    "Database migrations still need someone from the platform team.",
)


def _score(rng: random.Random, progress: float) -> int:
    """An NPS answer; the program gets better over the period (``progress`` 0 → 1)."""
    roll = rng.random()
    promoter_share, detractor_share = 0.35 + 0.3 * progress, 0.3 - 0.15 * progress
    if roll < promoter_share:
        return rng.choice((9, 10))
    if roll < promoter_share + detractor_share:
        return rng.randint(2, 6)
    return rng.choice((7, 8))


def seed_history(
    session: Session,
    *,
    until: date,
    weeks: int = 26,
    per_week: tuple[int, int] = (4, 11),
    answer_rate: float = 0.7,
    seed: int = 2026,
) -> int:
    """Add ``weeks`` weeks of demo invitations and answers before ``until``; returns the answers added.

    Idempotent: a second call with the same arguments adds nothing.
    """
    already = session.scalar(select(SurveyResponseRow.id).where(SurveyResponseRow.source == SOURCE).limit(1))
    if already is not None:
        return 0
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    first_day = until - timedelta(weeks=weeks)
    history_end = datetime.combine(until, time(0), UTC)  # every seeded survey is closed by then
    engagements = session.execute(
        select(EngagementRow.key, EngagementRow.end_date, EngagementRow.anonymous)
        .where(live_clause())
        .where(EngagementRow.end_date < first_day)
        .order_by(EngagementRow.key)
    ).all()
    if not engagements:
        return 0
    person = answers = 0
    for week in range(weeks):
        progress = week / max(1, weeks - 1)
        for _ in range(rng.randint(*per_week)):
            person += 1
            key, _end, anonymous = rng.choice(engagements)
            survey = SurveyKind.CHECKIN if rng.random() < 0.3 else SurveyKind.POST_ENGAGEMENT
            invited_on = first_day + timedelta(weeks=week, days=rng.randint(0, 4))
            email = f"demo.{person:04d}@example.com"
            stamp = datetime.combine(invited_on, time(9), UTC)
            invitation = SurveyInvitationRow(
                survey=survey,
                engagement_key=key,
                email=email,
                round=0,
                side="host",
                role="engineer",
                status="invited",
                invited_on=invited_on,
                closes_at=min(stamp + timedelta(days=21), history_end),
                reminders_queued=2,
                created_at=stamp,
                updated_at=stamp,
            )
            session.add(invitation)
            if rng.random() >= answer_rate:
                continue
            session.flush()
            submitted = stamp + timedelta(hours=rng.randint(2, 24 * 6))
            if submitted.date() >= until:
                continue
            score = _score(rng, progress)
            kind = category(score)
            given: dict[str, object] = {}
            if survey == SurveyKind.CHECKIN:
                given = {"maintainability": rng.randint(1, 2) if kind == "detractor" else rng.randint(3, 5)}
                given["help_needed"] = (
                    "regularly" if kind == "detractor" else rng.choice(("never", "once_or_twice"))
                )
                if rng.random() < 0.4:
                    given["not_taken_over"] = rng.choice(CHECKIN_COMMENTS)
            elif rng.random() < 0.5:
                given["went_well" if kind != "detractor" else "to_change"] = rng.choice(COMMENTS[kind])
            if anonymous:
                submitted = datetime.combine(submitted.date(), time(0), UTC)
            invitation.answered_at = submitted
            session.add(
                SurveyResponseRow(
                    response_ref=hashlib.sha256(f"demo-{seed}-{person}".encode()).hexdigest()[:40],
                    invitation_id=None if anonymous else invitation.id,
                    survey=survey,
                    engagement_key=key,
                    respondent_email=None if anonymous else email,
                    nps=score,
                    answers=given,
                    source=SOURCE,
                    submitted_at=submitted,
                    updated_at=submitted,
                )
            )
            answers += 1
    session.flush()
    return answers


STORY_TEAMS = {"improving": "checkout", "at_risk": "fulfillment"}
"""The demo's independence story: the host team that grows independent, and the one at risk."""
HELP_SOURCE = "csv"  # the story's help asks read as rows of a ticket system's CSV export


def _help_request(team: str, on: datetime, n: int, summary: str) -> HelpRequestRow:
    return HelpRequestRow(
        team_key=team,
        source=HELP_SOURCE,
        source_ref=f"demo:{team}:{n}",
        requested_at=on,
        author=None,
        summary=summary,
        link=None,
        imported_at=on,
        updated_at=on,
    )


def seed_independence_story(session: Session, *, until: date) -> int:
    """Help asks (as CSV-imported ones, ``source_ref`` ``demo:…``) and a check-in answer that give
    the demo's independence trend a story: Checkout asked for help often during its two summer
    engagements and stops soon after the last ended (its score rises week by week), Fulfillment asks more and more after its end and says at
    its check-in that it still needs help regularly (its score falls). Only what lies before
    ``until`` is added; idempotent (returns the help asks added)."""
    story = select(HelpRequestRow.id).where(HelpRequestRow.source_ref.startswith("demo:")).limit(1)
    if session.scalar(story) is not None:
        return 0
    ends = dict(
        session.execute(
            select(EngagementRow.key, EngagementRow.end_date).where(
                EngagementRow.key.in_(("ENG-2026-038", "ENG-2026-030", "ENG-2026-028", "ENG-2025-016"))
            )
        ).all()
    )
    if len(ends) < 4:
        return 0
    cutoff = datetime.combine(until, time(0), UTC)
    asks: list[HelpRequestRow] = []

    def ask(team: str, day: date, summary: str) -> None:
        moment = datetime.combine(day, time(10), UTC)
        if moment < cutoff:
            asks.append(_help_request(team, moment, len(asks), summary))

    checkout_end, fulfillment_end = ends["ENG-2026-038"], ends["ENG-2026-028"]
    for week in range(8):  # during: about four a week, then one, two in the first weeks after the end
        for day in (0, 1, 3, 4):
            ask(
                "checkout",
                checkout_end - timedelta(weeks=8 - week, days=-day),
                "How do we roll back a deploy?",
            )
    for days_after in (3, 9, 16):
        ask("checkout", checkout_end + timedelta(days=days_after), "Is the new alert threshold right?")
    for week in range(9):  # during: one a week; after: one more each fortnight
        ask("fulfillment", fulfillment_end - timedelta(weeks=9 - week), "Pipeline question")
    for week in range(14):
        for n in range(1 + week // 2):
            ask(
                "fulfillment",
                fulfillment_end + timedelta(weeks=week, days=n),
                "Canary stuck, can AuxEng look?",
            )
    session.add_all(asks)
    stamp = datetime.combine(ends["ENG-2025-016"] + timedelta(days=92), time(11), UTC)
    if stamp < cutoff:
        session.add(
            SurveyResponseRow(
                response_ref=hashlib.sha256(b"demo-story-fulfillment-checkin").hexdigest()[:40],
                invitation_id=None,
                survey=SurveyKind.CHECKIN,
                engagement_key="ENG-2025-016",
                respondent_email="demo.story@example.com",
                nps=4,
                answers={"maintainability": 2, "help_needed": "regularly"},
                source=SOURCE,
                submitted_at=stamp,
                updated_at=stamp,
            )
        )
    session.flush()
    return len(asks)
