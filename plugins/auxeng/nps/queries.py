"""NPS counts computed in the database: one aggregating query per table, rolled up to segments.

The same SQL runs on SQLite and PostgreSQL; the maths on the counts is :mod:`auxeng.nps.maths`.
Segments: the whole ``program``, ``org``, host ``team`` and ``survey`` kind (end of
engagement vs three-month check-in). Only host-side answers count (``post_engagement``
and ``checkin``; the platform team's internal retro is not NPS).

A query covers consecutive periods at once (``boundaries``: period *i* is
[boundaries[i], boundaries[i + 1])): each row is put in its period by a ``CASE`` over
the boundaries (a binary search: 5 comparisons for 26 periods) and counted by ``GROUP
BY engagement_key, survey, period``, so 26 weekly points cost one range scan of a
covering index (``submitted_at``, ``invited_on``), never a load of the answers into
Python and never a join. The few thousand groups are then rolled up in Python to every
segment through one engagement → host team → org lookup (:func:`engagement_hosts`).
Nothing constant is ever grouped by (PostgreSQL rejects ``GROUP BY 'all'`` once a
driver inlines the parameter, as psycopg2 does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise
from operator import add

from sqlalchemy import Integer, case, func, literal_column, select
from sqlalchemy.orm import Session

from auxeng.nps.maths import NpsResult, nps
from auxeng.store.models import EngagementRow, SurveyInvitationRow, SurveyResponseRow, TeamRow
from auxeng.vocabulary import DETRACTOR_MAX, NO_ORG, NPS_SURVEYS, PROMOTER_MIN

SEGMENTS = ("program", "org", "team", "survey")


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


@dataclass(frozen=True)
class InvitationCounts:
    """People invited in a period (to the NPS surveys) and how many of them answered by its end."""

    segment: str
    key: str
    invited: int = 0
    answered: int = 0


def _check(segments: Iterable[str], boundaries: Sequence[object]) -> None:
    for segment in segments:
        if segment not in SEGMENTS:
            raise ValueError(f"segment {segment!r} is not one of {', '.join(SEGMENTS)}")
    if len(boundaries) < 2 or any(a >= b for a, b in pairwise(boundaries)):
        raise ValueError("boundaries must be at least two increasing moments")


def _period(column, boundaries: Sequence[object]):
    """The index of the period ``column`` falls in, as a binary search over the inner
    boundaries (rows outside every period are filtered out); None for a single period."""
    return None if len(boundaries) == 2 else period_index(column, boundaries)


def period_index(column, boundaries: Sequence[object]):
    """The index of the period [boundaries[i], boundaries[i + 1]) ``column`` falls in (see :func:`bucket`)."""
    return bucket(column, boundaries, [literal_column(str(n), Integer) for n in range(len(boundaries) - 1)])


def bucket(column, boundaries: Sequence[object], values: Sequence[object]):
    """``values[i]`` for ``column`` in [boundaries[i], boundaries[i + 1]), as a ``CASE``
    binary search over the inner boundaries (rows outside every bucket are for the caller to
    filter out)."""

    def search(first: int, last: int):  # ``column`` is in one of the buckets first..last
        if first == last:
            return values[first]
        middle = (first + last + 1) // 2  # bucket ``middle`` starts at boundaries[middle]
        return case((column < boundaries[middle], search(first, middle - 1)), else_=search(middle, last))

    return search(0, len(values) - 1)


def count_where(condition):
    return func.count(case((condition, 1)))  # NULL (not counted) when the condition fails


Host = tuple[str, str | None]  # (host team, its org or NO_ORG; None when the team is unknown)


def engagement_hosts(session: Session) -> dict[str, Host]:
    """Every engagement's host team and that team's org (``NO_ORG`` when it has none): one query.

    An engagement whose host team is not in the store has no org (it counts for its
    team, not for any org), as an inner join would have it.
    """
    query = select(EngagementRow.key, EngagementRow.host_team_key, TeamRow.key, TeamRow.org).outerjoin(
        TeamRow, TeamRow.key == EngagementRow.host_team_key
    )
    return {
        str(engagement): (str(team), None if known is None else str(org if org is not None else NO_ORG))
        for engagement, team, known, org in session.execute(query)
    }


Totals = dict[str, dict[tuple[str, int], list[int]]]  # segment → (key, period) → counts


def _rollup(rows: Iterable[Sequence], segments: Sequence[str], hosts: Mapping[str, Host]) -> Totals:
    """Sum rows ``(engagement, survey, period, *counts)`` per segment and (key, period).

    Answers of an engagement the store does not know count for the program and the
    survey kind only; of one whose host team is unknown, not for any org either.
    """
    totals: Totals = {segment: {} for segment in segments}
    targets: dict[tuple[str, str], list[tuple[dict[tuple[str, int], list[int]], str]]] = {}
    for engagement, survey, period, *counts in rows:
        found = targets.get((engagement, survey))
        if found is None:
            host = hosts.get(engagement)
            keys = {"program": "all", "survey": str(survey)}
            if host is not None:
                keys["team"] = host[0]
                if host[1] is not None:
                    keys["org"] = host[1]
            found = [(totals[segment], keys[segment]) for segment in segments if segment in keys]
            targets[(engagement, survey)] = found
        for table, key in found:
            sums = table.get((key, period))
            if sums is None:
                table[(key, period)] = counts.copy()
            else:
                sums[:] = map(add, sums, counts)
    return totals


def _hosts_for(
    session: Session, segments: Sequence[str], hosts: Mapping[str, Host] | None
) -> Mapping[str, Host]:
    if hosts is not None:
        return hosts
    return engagement_hosts(session) if {"org", "team"} & set(segments) else {}


def answer_totals(
    session: Session,
    boundaries: Sequence[datetime],
    *,
    segments: Sequence[str] = SEGMENTS,
    hosts: Mapping[str, Host] | None = None,
) -> Totals:
    """Per segment, the counts per (segment key, period) of the answers submitted in the
    periods, in the order of :class:`SegmentCounts`' fields (promoters, passives,
    detractors, comfort total, comfort answers): one query, plus the host lookup unless
    ``hosts`` is given."""
    _check(segments, boundaries)
    r = SurveyResponseRow
    period = _period(r.submitted_at, boundaries)
    grouped = [r.engagement_key, r.survey] + ([] if period is None else [period])
    query = (
        select(
            *grouped,
            count_where(r.nps >= PROMOTER_MIN),
            count_where(r.nps.between(DETRACTOR_MAX + 1, PROMOTER_MIN - 1)),
            count_where(r.nps <= DETRACTOR_MAX),
            func.coalesce(func.sum(r.maintainability), 0).cast(Integer),
            func.count(r.maintainability),
        )
        .where(
            r.submitted_at >= boundaries[0],
            r.submitted_at < boundaries[-1],
            r.survey.in_(NPS_SURVEYS),
            r.nps.is_not(None),
        )
        .group_by(*grouped)
    )
    return _rolled_up(session, query, period, segments, hosts)


def _rolled_up(
    session: Session, query, period, segments: Sequence[str], hosts: Mapping[str, Host] | None
) -> Totals:
    """Run a per (engagement, survey[, period]) count query and add its rows up to ``segments``."""
    rows = session.execute(query)
    if period is None:
        rows = ((engagement, survey, 0, *counts) for engagement, survey, *counts in rows)
    return _rollup(rows, segments, _hosts_for(session, segments, hosts))


def invitation_totals(
    session: Session,
    days: Sequence[date],
    *,
    answered_before: datetime,
    segments: Sequence[str] = SEGMENTS,
    hosts: Mapping[str, Host] | None = None,
) -> Totals:
    """Per segment, the invitations per (segment key, period) sent on the days [days[i],
    days[i + 1]) and how many of them were answered before ``answered_before`` (the
    fields of :class:`InvitationCounts`): one query, plus the host lookup unless ``hosts``
    is given.

    The cut-off makes a re-run of a past week give the same rates as its first run.
    """
    _check(segments, days)
    i = SurveyInvitationRow
    period = _period(i.invited_on, days)
    grouped = [i.engagement_key, i.survey] + ([] if period is None else [period])
    query = (
        select(*grouped, func.count(), count_where(i.answered_at < answered_before))
        .where(
            i.invited_on >= days[0],
            i.invited_on < days[-1],
            i.survey.in_(NPS_SURVEYS),
            i.status == "invited",
        )
        .group_by(*grouped)
    )
    return _rolled_up(session, query, period, segments, hosts)


def segment_counts(session: Session, segment: str, *, start: datetime, end: datetime) -> list[SegmentCounts]:
    """NPS counts per ``segment`` key for answers submitted in [start, end)."""
    totals = answer_totals(session, [start, end], segments=[segment])[segment]
    return [SegmentCounts(segment, key, *totals[(key, index)]) for key, index in sorted(totals)]
