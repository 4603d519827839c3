"""NPS counts computed in the database: one aggregating query per segment kind.

The same SQL runs on SQLite and PostgreSQL; the maths on the counts is :mod:`auxeng.nps`.
Segments: the whole ``program``, ``org``, host ``team`` and ``survey`` kind (end of
engagement vs three-month check-in). Only host-side answers count (``post_engagement``
and ``checkin``; the platform team's internal retro is not NPS).

A query covers consecutive periods at once (``boundaries``: period *i* is
[boundaries[i], boundaries[i + 1])): each row is put in its period by a ``CASE`` over
the boundaries and counted by ``GROUP BY key, period``, so 26 weekly points cost one
range scan of the ``submitted_at`` index, never a load of the answers into Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise

from sqlalchemy import Integer, case, func, literal, select
from sqlalchemy.orm import Session

from auxeng.nps import DETRACTOR_MAX, PROMOTER_MIN, NpsResult, nps
from auxeng.store.models import EngagementRow, SurveyInvitationRow, SurveyResponseRow, TeamRow

NPS_SURVEYS = ("post_engagement", "checkin")
SEGMENTS = ("program", "org", "team", "survey")
NO_ORG = "(no org)"


@dataclass(frozen=True)
class SegmentCounts:
    """The answers of one segment in a period: NPS counts and the check-in comfort (1-5) sum."""

    segment: str
    key: str
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    maintainability_total: int = 0
    maintainability_answers: int = 0

    @property
    def result(self) -> NpsResult:
        return nps(self.promoters, self.passives, self.detractors)

    @property
    def maintainability_mean(self) -> float | None:
        if not self.maintainability_answers:
            return None
        return self.maintainability_total / self.maintainability_answers

    def __add__(self, other: SegmentCounts) -> SegmentCounts:
        return SegmentCounts(
            self.segment,
            self.key,
            self.promoters + other.promoters,
            self.passives + other.passives,
            self.detractors + other.detractors,
            self.maintainability_total + other.maintainability_total,
            self.maintainability_answers + other.maintainability_answers,
        )


@dataclass(frozen=True)
class InvitationCounts:
    """People invited in a period (to the NPS surveys) and how many of them answered by its end."""

    segment: str
    key: str
    invited: int = 0
    answered: int = 0

    def __add__(self, other: InvitationCounts) -> InvitationCounts:
        return InvitationCounts(
            self.segment, self.key, self.invited + other.invited, self.answered + other.answered
        )


def _check(segment: str, boundaries: Sequence[object]) -> None:
    if segment not in SEGMENTS:
        raise ValueError(f"segment {segment!r} is not one of {', '.join(SEGMENTS)}")
    if len(boundaries) < 2 or any(a >= b for a, b in pairwise(boundaries)):
        raise ValueError("boundaries must be at least two increasing moments")


def _period(column, boundaries: Sequence[object]):
    """The index of the period ``column`` falls in (rows outside every period are filtered out)."""
    inner = boundaries[1:-1]
    if not inner:
        return literal(0, Integer)
    return case(*((column < moment, index) for index, moment in enumerate(inner)), else_=len(inner))


def _key(segment: str, survey_column):
    return {
        "program": literal("all"),
        "org": func.coalesce(TeamRow.org, NO_ORG),
        "team": EngagementRow.host_team_key,
        "survey": survey_column,
    }[segment].label("key")


def _joined(query, segment: str, engagement_column):
    if segment in ("org", "team"):
        query = query.join(EngagementRow, EngagementRow.key == engagement_column)
    if segment == "org":
        query = query.join(TeamRow, TeamRow.key == EngagementRow.host_team_key)
    return query


def _count(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0).cast(Integer)


def answer_counts(
    session: Session, segment: str, boundaries: Sequence[datetime]
) -> dict[tuple[str, int], SegmentCounts]:
    """NPS counts per (segment key, period) of the answers submitted in the periods: one query."""
    _check(segment, boundaries)
    r = SurveyResponseRow
    key_column = _key(segment, r.survey)
    period = _period(r.submitted_at, boundaries).label("period")
    comfort = r.answers["maintainability"].as_integer()
    query = (
        select(
            key_column,
            period,
            _count(r.nps >= PROMOTER_MIN),
            _count(r.nps.between(DETRACTOR_MAX + 1, PROMOTER_MIN - 1)),
            _count(r.nps <= DETRACTOR_MAX),
            func.coalesce(func.sum(comfort), 0).cast(Integer),
            func.count(comfort),
        )
        .select_from(r)
        .where(
            r.submitted_at >= boundaries[0],
            r.submitted_at < boundaries[-1],
            r.survey.in_(NPS_SURVEYS),
            r.nps.is_not(None),
        )
        .group_by(key_column, period)
    )
    query = _joined(query, segment, r.engagement_key)
    return {
        (str(key), int(index)): SegmentCounts(segment, str(key), *counts)
        for key, index, *counts in session.execute(query)
    }


def invitation_counts(
    session: Session, segment: str, days: Sequence[date], *, answered_before: datetime
) -> dict[tuple[str, int], InvitationCounts]:
    """Invitations per (segment key, period) sent on the days [days[i], days[i + 1]), and how
    many of them were answered before ``answered_before``: one query.

    The cut-off makes a re-run of a past week give the same rates as its first run.
    """
    _check(segment, days)
    i = SurveyInvitationRow
    key_column = _key(segment, i.survey)
    period = _period(i.invited_on, days).label("period")
    query = (
        select(key_column, period, func.count(), _count(i.answered_at < answered_before))
        .select_from(i)
        .where(
            i.invited_on >= days[0],
            i.invited_on < days[-1],
            i.survey.in_(NPS_SURVEYS),
            i.status == "invited",
        )
        .group_by(key_column, period)
    )
    query = _joined(query, segment, i.engagement_key)
    return {
        (str(key), int(index)): InvitationCounts(segment, str(key), invited, answered)
        for key, index, invited, answered in session.execute(query)
    }


def segment_counts(session: Session, segment: str, *, start: datetime, end: datetime) -> list[SegmentCounts]:
    """NPS counts per ``segment`` key for answers submitted in [start, end): one GROUP BY query."""
    counts = answer_counts(session, segment, [start, end])
    return [counts[key] for key in sorted(counts)]
