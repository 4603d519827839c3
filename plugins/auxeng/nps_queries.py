"""NPS counts computed in the database: one aggregating query per segment kind.

The same SQL runs on SQLite and PostgreSQL; the maths on the counts is :mod:`auxeng.nps`.
Segments: the whole ``program``, ``org``, host ``team`` and ``survey`` kind (end of
engagement vs three-month check-in). Only host-side answers count (``post_engagement``
and ``checkin``; the platform team's internal retro is not NPS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, case, func, literal, select
from sqlalchemy.orm import Session

from auxeng.nps import DETRACTOR_MAX, PROMOTER_MIN, NpsResult, nps
from auxeng.store.models import EngagementRow, SurveyResponseRow, TeamRow

NPS_SURVEYS = ("post_engagement", "checkin")
SEGMENTS = ("program", "org", "team", "survey")


@dataclass(frozen=True)
class SegmentCounts:
    """The answers of one segment in a period: NPS counts and the check-in comfort (1-5) sum."""

    segment: str
    key: str
    promoters: int
    passives: int
    detractors: int
    maintainability_total: int
    maintainability_answers: int

    @property
    def result(self) -> NpsResult:
        return nps(self.promoters, self.passives, self.detractors)

    @property
    def maintainability_mean(self) -> float | None:
        if not self.maintainability_answers:
            return None
        return self.maintainability_total / self.maintainability_answers


def segment_counts(session: Session, segment: str, *, start: datetime, end: datetime) -> list[SegmentCounts]:
    """NPS counts per ``segment`` key for answers submitted in [start, end): one GROUP BY query."""
    if segment not in SEGMENTS:
        raise ValueError(f"segment {segment!r} is not one of {', '.join(SEGMENTS)}")
    r = SurveyResponseRow
    key_column = {
        "program": literal("all"),
        "org": func.coalesce(TeamRow.org, "(no org)"),
        "team": EngagementRow.host_team_key,
        "survey": r.survey,
    }[segment].label("key")
    comfort = r.answers["maintainability"].as_integer()

    def count(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0).cast(Integer)

    query = (
        select(
            key_column,
            count(r.nps >= PROMOTER_MIN),
            count(r.nps.between(DETRACTOR_MAX + 1, PROMOTER_MIN - 1)),
            count(r.nps <= DETRACTOR_MAX),
            func.coalesce(func.sum(comfort), 0).cast(Integer),
            func.count(comfort),
        )
        .select_from(r)
        .where(r.survey.in_(NPS_SURVEYS), r.nps.is_not(None), r.submitted_at >= start, r.submitted_at < end)
        .group_by(key_column)
        .order_by(key_column)
    )
    if segment in ("org", "team"):
        query = query.join(EngagementRow, EngagementRow.key == r.engagement_key)
    if segment == "org":
        query = query.join(TeamRow, TeamRow.key == EngagementRow.host_team_key)
    return [
        SegmentCounts(segment, str(key), promoters, passives, detractors, comfort_total, comfort_n)
        for key, promoters, passives, detractors, comfort_total, comfort_n in session.execute(query)
    ]
