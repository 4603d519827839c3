"""A host team's independence over four weeks: the comparison the red flag, the digest and the
dashboard share (pure: no store, no clock).

A team's snapshot of the latest week is compared with its snapshot :data:`TREND_WEEKS` weeks
before, or, when the team's history is shorter, the earliest it has within those weeks; the
components that moved are those present in both weeks, the largest change first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

TREND_WEEKS = 4
MOVED_COMPONENTS = 3


@dataclass(frozen=True)
class TeamIndependence:
    """A host team's weekly independence snapshot: the mean score of its scored engagements
    and, per component, the mean points where present (absent components are left out)."""

    team_key: str
    week: date
    score: float
    scored: int
    components: dict[str, float] = field(default_factory=dict)

    @classmethod
    def stored(
        cls, team_key: str, week: date, score: float, scored: int, components: Any
    ) -> TeamIndependence:
        """From a stored snapshot's columns (``components``: name → ``{"points", "present"}``)."""
        return cls(
            team_key=team_key,
            week=week,
            score=score,
            scored=scored,
            components={
                name: float(part["points"])
                for name, part in (components or {}).items()
                if isinstance(part, dict) and part.get("points") is not None
            },
        )


@dataclass(frozen=True)
class TeamTrend:
    """A team's independence snapshot of the latest week and the one it is compared with: the
    snapshot :data:`TREND_WEEKS` weeks before, or the earliest the team has within those weeks."""

    now: TeamIndependence
    before: TeamIndependence | None

    @property
    def drop(self) -> float | None:
        """Points lost since ``before`` (negative: gained); None without a snapshot to compare."""
        return None if self.before is None else self.before.score - self.now.score

    def moved(self) -> list[dict[str, Any]]:
        """The components whose mean points changed most since ``before`` (present in both weeks)."""
        if self.before is None:
            return []
        before = self.before.components
        changes = [
            (name, before[name], points)
            for name, points in self.now.components.items()
            if name in before and points != before[name]
        ]
        changes.sort(key=lambda c: (-abs(c[2] - c[1]), c[0]))
        return [
            {"component": name, "from": round(old, 1), "to": round(new, 1), "change": round(new - old, 1)}
            for name, old, new in changes[:MOVED_COMPONENTS]
        ]

    def weakest(self) -> list[dict[str, Any]]:
        """The components with the fewest mean points now."""
        lowest = sorted(self.now.components.items(), key=lambda c: (c[1], c[0]))[:MOVED_COMPONENTS]
        return [{"component": name, "points": round(points, 1)} for name, points in lowest]


def team_trends(snapshots: Iterable[TeamIndependence], latest: date) -> list[TeamTrend]:
    """The trend of every team with a snapshot in the week ``latest`` (by team key); snapshots
    after ``latest`` or more than :data:`TREND_WEEKS` weeks before it are ignored."""
    since = latest - timedelta(weeks=TREND_WEEKS)
    now_of: dict[str, TeamIndependence] = {}
    before_of: dict[str, TeamIndependence] = {}
    for snapshot in sorted(snapshots, key=lambda s: (s.week, s.team_key), reverse=True):
        if snapshot.week == latest:
            now_of[snapshot.team_key] = snapshot
        elif since <= snapshot.week < latest:
            before_of[snapshot.team_key] = snapshot
    return [TeamTrend(now_of[key], before_of.get(key)) for key in sorted(now_of)]
