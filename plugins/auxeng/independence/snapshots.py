"""The weekly independence snapshot: every counted engagement's score, and per program, org and
host team the mean score and the headline proportions; computed, stored (replacing the week) and read.

A week is Monday 00:00 to the next Monday 00:00 in the program's time zone, as for the weekly
NPS (:func:`auxeng.nps.weekly.week_to_report` picks it); every signal is read as it stood at
the week's end (:mod:`auxeng.independence.signals`), so a backfill computes a past week as it was.

Per segment (``program``/``all``, ``org``/its name or ``(no org)``, ``team``/its key):

* ``engagements`` counted, ``scored`` (with a total) and ``score``, their mean total;
* per component, the mean points where it is present and how many;
* **independent at three months**: of the engagements whose check-in was answered
  (``checkins``), those at or above the threshold (``independent``); **goals achieved**: of
  those with both goal questions answered (``goals_answered``), those answering yes to both
  (``goals_achieved``); each with its 95% Wilson interval (:func:`auxeng.stats.wilson_interval`,
  shares 0-1), left out (NULL) when its denominator is under the privacy threshold
  (``AUXENG_NPS_MIN_RESPONSES``);
* ``suppressed`` when fewer engagements than that threshold were scored.

Writing replaces the week's rows in one transaction (the header's delete cascades to its
rows): a re-run or a backfill never duplicates a week.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from auxeng.independence.score import Score, Status, Weights, independent_at_three_months, score
from auxeng.independence.signals import Counted, Found, component_problems, local_midnight, read_signals
from auxeng.settings import Settings
from auxeng.stats import wilson_interval
from auxeng.store.db import insert_rows
from auxeng.store.models import IndependenceScoreRow, IndependenceSnapshotRow, IndependenceWeekRow
from auxeng.vocabulary import IndependenceComponent

PROGRAM, ORG, TEAM = "program", "org", "team"
SEGMENTS = (PROGRAM, ORG, TEAM)
ALL = "all"
TREND_WEEKS = 13
COMPONENTS = tuple(component.value for component in IndependenceComponent)
PRESENT, MISSING = Status.PRESENT, Status.MISSING  # module constants: an enum member lookup is slow in loops


def weights_of(settings: Settings) -> Weights:
    """The formula's weights with ``AUXENG_INDEPENDENCE_WEIGHTS``' overrides."""
    return Weights(**dict(settings.independence_weights))


@dataclass(frozen=True)
class EngagementScore:
    """One counted engagement's score; ``problems``: component → why stored data was left out."""

    engagement: Counted
    found: Found
    result: Score
    independent: bool | None
    goals_achieved: bool | None
    problems: dict[str, str] = field(default_factory=dict)

    def components(self) -> list[dict[str, Any]]:
        """The components as stored (JSON-ready: a value that is not a finite number is stored as null;
        a component missing because of bad stored data has that as its reason)."""
        return [
            c.as_stored(self.problems.get(c.name) if c.status is MISSING else None)
            for c in self.result.components
        ]


@dataclass(frozen=True)
class Figures:
    """One segment's figures in a week (see the module docs)."""

    segment: str
    key: str
    engagements: int
    scored: int
    score: float | None
    components: dict[str, dict[str, Any]]
    checkins: int
    independent: int
    independent_interval: tuple[float, float] | None
    goals_answered: int
    goals_achieved: int
    goals_interval: tuple[float, float] | None
    suppressed: bool


@dataclass
class IndependenceSnapshot:
    """A computed week: every counted engagement's score and the figures of every segment."""

    week: date
    starts_at: datetime
    ends_at: datetime
    min_responses: int
    threshold: float
    window_weeks: int
    weights: Weights
    scores: list[EngagementScore] = field(default_factory=list)
    segments: dict[tuple[str, str], Figures] = field(default_factory=dict)

    def get(self, segment: str = PROGRAM, key: str = ALL) -> Figures | None:
        return self.segments.get((segment, key))

    @property
    def problems(self) -> list[tuple[str, str, str]]:
        """(engagement, component, reason) of every component left out for bad stored data."""
        return [
            (s.engagement.key, component, reason)
            for s in self.scores
            for component, reason in sorted(s.problems.items())
        ]


def score_engagement(found: Found, weights: Weights, threshold: float) -> EngagementScore:
    """The score of one engagement's signals, whether it is independent and achieved its goals."""
    signals = found.signals
    result = score(signals, weights)
    independent = independent_at_three_months(signals, result, threshold) if signals.has_checkin else None
    goals = (signals.goals_business, signals.goals_technical)
    achieved = None if None in goals else goals == ("yes", "yes")
    return EngagementScore(
        found.engagement, found, result, independent, achieved, component_problems(found.invalid)
    )


def compute_week(session: Session, week: date, *, settings: Settings, now: datetime) -> IndependenceSnapshot:
    """The independence snapshot of the week starting on Monday ``week``, as it stood at its end.
    ``now`` is when it is computed (the signals never look past the week's end)."""
    if week.weekday() != 0:
        raise ValueError(f"a week starts on a Monday; {week} is a {week:%A}")
    timezone: ZoneInfo = settings.timezone
    ends_at = local_midnight(week + timedelta(weeks=1), timezone)
    found = read_signals(
        session,
        moment=ends_at,
        timezone=timezone,
        window_weeks=settings.independence_window_weeks,
        repeat_months=settings.repeat_months,
    )
    weights = weights_of(settings)
    threshold = settings.independence_threshold
    return snapshot_of(
        week,
        [score_engagement(one, weights, threshold) for one in found],
        starts_at=local_midnight(week, timezone),
        ends_at=ends_at,
        min_responses=settings.nps_min_responses,
        threshold=threshold,
        window_weeks=settings.independence_window_weeks,
        weights=weights,
    )


def snapshot_of(
    week: date,
    scores: list[EngagementScore],
    *,
    starts_at: datetime,
    ends_at: datetime,
    min_responses: int,
    threshold: float,
    window_weeks: int,
    weights: Weights,
) -> IndependenceSnapshot:
    """The snapshot of ``scores``: each engagement counts for the program, its org and its host team."""
    snapshot = IndependenceSnapshot(
        week, starts_at, ends_at, min_responses, threshold, window_weeks, weights, scores=scores
    )
    groups: dict[tuple[str, str], list[EngagementScore]] = defaultdict(list)
    for one in scores:
        for segment, key in ((PROGRAM, ALL), (ORG, one.engagement.org), (TEAM, one.engagement.team_key)):
            groups[(segment, key)].append(one)
    for (segment, key), members in sorted(groups.items()):
        snapshot.segments[(segment, key)] = figures_of(segment, key, members, min_responses)
    return snapshot


def _interval(successes: int, n: int, min_responses: int) -> tuple[float, float] | None:
    return wilson_interval(successes, n) if n >= min_responses else None


def figures_of(segment: str, key: str, members: list[EngagementScore], min_responses: int) -> Figures:
    """The figures of one segment from its engagements' scores."""
    totals = [m.result.total for m in members if m.result.total is not None]
    points: dict[str, list[float]] = {name: [] for name in COMPONENTS}
    for m in members:
        for c in m.result.components:
            if c.status is PRESENT:
                points[c.name].append(c.points)
    components = {
        name: {"points": sum(found) / len(found) if found else None, "present": len(found)}
        for name, found in points.items()
    }
    checked = [m.independent for m in members if m.independent is not None]
    goals = [m.goals_achieved for m in members if m.goals_achieved is not None]
    return Figures(
        segment=segment,
        key=key,
        engagements=len(members),
        scored=len(totals),
        score=sum(totals) / len(totals) if totals else None,
        components=components,
        checkins=len(checked),
        independent=sum(checked),
        independent_interval=_interval(sum(checked), len(checked), min_responses),
        goals_answered=len(goals),
        goals_achieved=sum(goals),
        goals_interval=_interval(sum(goals), len(goals), min_responses),
        suppressed=len(totals) < min_responses,
    )


def save_week(session: Session, snapshot: IndependenceSnapshot, *, run_id: str | None, now: datetime) -> int:
    """Replace the stored snapshot of ``snapshot.week`` with this one; returns the rows written."""
    week = snapshot.week
    session.execute(delete(IndependenceWeekRow).where(IndependenceWeekRow.week == week))  # ON DELETE CASCADE
    session.execute(
        insert(IndependenceWeekRow.__table__).values(
            week=week,
            starts_at=snapshot.starts_at,
            ends_at=snapshot.ends_at,
            min_responses=snapshot.min_responses,
            threshold=snapshot.threshold,
            window_weeks=snapshot.window_weeks,
            weights=asdict(snapshot.weights),
            run_id=run_id,
            computed_at=now,
        )
    )
    scores = [
        {
            "week": week,
            "engagement_key": one.engagement.key,
            "team_key": one.engagement.team_key,
            "org": one.engagement.org,
            "end_date": one.engagement.end,
            "total": one.result.total,
            "components": one.components(),
            "independent": one.independent,
            "goals_achieved": one.goals_achieved,
        }
        for one in snapshot.scores
    ]
    insert_rows(session, IndependenceScoreRow.__table__, scores)
    figures = [
        {
            "week": week,
            "segment": f.segment,
            "key": f.key,
            "engagements": f.engagements,
            "scored": f.scored,
            "score": f.score,
            "components": f.components,
            "checkins": f.checkins,
            "independent": f.independent,
            "independent_low": f.independent_interval[0] if f.independent_interval else None,
            "independent_high": f.independent_interval[1] if f.independent_interval else None,
            "goals_answered": f.goals_answered,
            "goals_achieved": f.goals_achieved,
            "goals_low": f.goals_interval[0] if f.goals_interval else None,
            "goals_high": f.goals_interval[1] if f.goals_interval else None,
            "suppressed": f.suppressed,
        }
        for f in snapshot.segments.values()
    ]
    insert_rows(session, IndependenceSnapshotRow.__table__, figures)
    return 1 + len(scores) + len(figures)


@dataclass(frozen=True)
class StoredWeek:
    """A stored week: its header, its segment rows by (segment, key), its engagements' scores by key."""

    header: IndependenceWeekRow
    segments: dict[tuple[str, str], IndependenceSnapshotRow]
    scores: dict[str, IndependenceScoreRow]


def load_week(session: Session, week: date) -> StoredWeek | None:
    """A stored week, or None when it was never computed."""
    header = session.get(IndependenceWeekRow, week)
    if header is None:
        return None
    segments = session.scalars(select(IndependenceSnapshotRow).where(IndependenceSnapshotRow.week == week))
    scores = session.scalars(select(IndependenceScoreRow).where(IndependenceScoreRow.week == week))
    return StoredWeek(
        header, {(row.segment, row.key): row for row in segments}, {row.engagement_key: row for row in scores}
    )


def latest_week(session: Session) -> date | None:
    """The newest computed week, or None."""
    return session.scalar(select(IndependenceWeekRow.week).order_by(IndependenceWeekRow.week.desc()).limit(1))


def segment_trend(
    session: Session, segment: str, key: str, until_week: date, weeks: int = TREND_WEEKS
) -> list[tuple[date, IndependenceSnapshotRow | None]]:
    """The ``weeks`` weeks ending with ``until_week``, oldest first, each with the segment's stored
    row (None when the week was not computed or the segment had no engagement counted in it)."""
    mondays = [until_week - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    rows = session.scalars(
        select(IndependenceSnapshotRow).where(
            IndependenceSnapshotRow.segment == segment,
            IndependenceSnapshotRow.key == key,
            IndependenceSnapshotRow.week.between(mondays[0], until_week),
        )
    )
    by_week = {row.week: row for row in rows}
    return [(monday, by_week.get(monday)) for monday in mondays]


def team_trend(
    session: Session, team_key: str, weeks: int = TREND_WEEKS, *, until_week: date | None = None
) -> list[tuple[date, IndependenceSnapshotRow | None]]:
    """:func:`segment_trend` of a host team up to ``until_week`` (default: the newest computed week);
    empty when no week was computed."""
    until_week = until_week or latest_week(session)
    return [] if until_week is None else segment_trend(session, TEAM, team_key, until_week, weeks)


def summary(snapshot: IndependenceSnapshot) -> dict[str, Any]:
    """What the task logs and returns: the program's headline figures and the segment counts."""
    program = snapshot.get()
    counts: dict[str, int] = defaultdict(int)
    for segment, _key in snapshot.segments:
        counts[segment] += 1
    return {
        "week": snapshot.week.isoformat(),
        "engagements": program.engagements if program else 0,
        "scored": program.scored if program else 0,
        "score": None if program is None or program.score is None else round(program.score, 1),
        "independent": f"{program.independent}/{program.checkins}" if program else "0/0",
        "goals_achieved": f"{program.goals_achieved}/{program.goals_answered}" if program else "0/0",
        "segments": dict(counts),
        "problems": len(snapshot.problems),
    }
