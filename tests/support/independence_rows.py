"""Independence weeks written straight into the store, for tests of what reads them.

The snapshot computation fills ``auxeng_independence_weeks``, ``_scores`` and ``_snapshots``
from raw signals; the red flag, the digest and the dashboard only read them. Their tests write
the rows here from compact arguments: :func:`insert_week` with :func:`score` and :func:`segment`
values, following the tables' docstrings (:mod:`auxeng.store.models`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from auxeng.independence.score import Signals, Weights, independent_at_three_months
from auxeng.independence.score import score as score_of
from auxeng.stats import wilson_interval
from auxeng.store.models import IndependenceScoreRow, IndependenceSnapshotRow, IndependenceWeekRow

COMPONENTS = tuple(c.name for c in score_of(Signals()).components)


def wilson(successes: int, trials: int) -> tuple[float | None, float | None]:
    """The 95% Wilson interval of ``successes`` out of ``trials`` (None, None without trials)."""
    return wilson_interval(successes, trials) or (None, None)


def score(
    engagement_key: str,
    team_key: str,
    signals: Signals | None = None,
    *,
    end_date: date = date(2026, 8, 28),
    org: str | None = "Commerce",
) -> dict[str, Any]:
    """One engagement's score row values, computed by the real formula from ``signals``."""
    signals = signals or Signals()
    result = score_of(signals, Weights())
    return {
        "engagement_key": engagement_key,
        "team_key": team_key,
        "org": org,
        "end_date": end_date,
        "total": result.total,
        "components": [c.as_stored() for c in result.components],
        "independent": independent_at_three_months(signals, result) if signals.has_checkin else None,
        "goals_achieved": (signals.goals_business == signals.goals_technical == "yes")
        if signals.goals_business and signals.goals_technical
        else None,
    }


def segment(
    kind: str,
    key: str,
    mean: float | None,
    points: dict[str, float] | None = None,
    *,
    scored: int = 3,
    checkins: int = 0,
    independent: int = 0,
    goals_answered: int = 0,
    goals_achieved: int = 0,
    min_responses: int = 3,
) -> dict[str, Any]:
    """One snapshot row's values: ``points`` is component → mean points (present in every scored one)."""
    independent_low, independent_high = wilson(independent, checkins)
    goals_low, goals_high = wilson(goals_achieved, goals_answered)
    return {
        "segment": kind,
        "key": key,
        "engagements": scored,
        "scored": scored,
        "score": mean,
        "components": {name: {"points": p, "present": scored} for name, p in (points or {}).items()},
        "checkins": checkins,
        "independent": independent,
        "independent_low": independent_low,
        "independent_high": independent_high,
        "goals_answered": goals_answered,
        "goals_achieved": goals_achieved,
        "goals_low": goals_low,
        "goals_high": goals_high,
        "suppressed": scored < min_responses,
    }


def insert_week(
    session: Session,
    week: date,
    *,
    segments: Sequence[dict[str, Any]] = (),
    scores: Sequence[dict[str, Any]] = (),
    min_responses: int = 3,
) -> None:
    """Replace the computed week starting Monday ``week`` (UTC bounds) with these rows. Caller commits."""
    session.execute(delete(IndependenceWeekRow).where(IndependenceWeekRow.week == week))
    session.execute(delete(IndependenceScoreRow).where(IndependenceScoreRow.week == week))
    session.execute(delete(IndependenceSnapshotRow).where(IndependenceSnapshotRow.week == week))
    starts = datetime.combine(week, time(0), UTC)
    session.execute(
        insert(IndependenceWeekRow.__table__),
        [
            {
                "week": week,
                "starts_at": starts,
                "ends_at": starts + timedelta(days=7),
                "min_responses": min_responses,
                "threshold": 70.0,
                "window_weeks": 52,
                "weights": {name: getattr(Weights(), name) for name in COMPONENTS},
                "run_id": "test",
                "computed_at": starts + timedelta(days=7, hours=6),
            }
        ],
    )
    if scores:
        session.execute(insert(IndependenceScoreRow.__table__), [{"week": week, **row} for row in scores])
    if segments:
        session.execute(
            insert(IndependenceSnapshotRow.__table__), [{"week": week, **row} for row in segments]
        )
    session.flush()
