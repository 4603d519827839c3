"""Independence as people read it: the weekly digest's section and the reads of a host team's
dashboard page, from the stored snapshots.

Read-only: the numbers are computed by ``auxeng_weekly_nps`` into ``auxeng_independence_weeks``,
``_scores`` and ``_snapshots`` (:mod:`auxeng.store.models`). Every read here is a fixed number of
statements whatever the store holds. The privacy threshold is the week's ``min_responses``
(``AUXENG_NPS_MIN_RESPONSES``): a suppressed segment's mean is never shown, and a proportion is
hidden when its denominator is under the threshold, exactly as NPS figures are. Teams are compared
over four weeks with :func:`auxeng.redflags.rules.team_trends`, the red flag's own comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.independence.trends import TREND_WEEKS as COMPARED_WEEKS
from auxeng.independence.trends import TeamIndependence, TeamTrend, team_trends
from auxeng.settings import Settings
from auxeng.store.models import IndependenceScoreRow, IndependenceSnapshotRow, IndependenceWeekRow, TeamRow

COMPONENT_LABELS = {
    "maintainability": "comfort maintaining it",
    "help_needed": "help needed",
    "help_asks": "help asks after the end",
    "repeat_engagement": "repeat engagement within six months",
    "nps_change": "NPS change",
    "goals_business": "business goals",
    "goals_technical": "technical goals",
}
"""How each component of :mod:`auxeng.independence.score` reads in the digest and on the dashboard."""
TREND_WEEKS = 13
TOP_TEAMS = 3
TOO_FEW = "too few engagements"


def component_label(name: str) -> str:
    return COMPONENT_LABELS.get(name, name.replace("_", " "))


def score_text(score: float | None, scored: int, *, suppressed: bool) -> str:
    """A segment's mean score as shown to stakeholders ("too few engagements" when suppressed)."""
    if suppressed:
        return f"{TOO_FEW} (n={scored})"
    if score is None:
        return "no score yet"
    return f"{score:.0f} / 100 (n={scored})"


def proportion_text(
    hits: int, total: int, low: float | None, high: float | None, *, min_responses: int, of: str
) -> str:
    """``hits`` of ``total`` as a percentage with its 95% interval, or why it is not shown."""
    if total < min_responses or low is None or high is None:
        return f"too few {of} (n={total})"
    return f"{100 * hits / total:.0f}% ({hits} of {total} {of}; 95% CI {100 * low:.0f}% to {100 * high:.0f}%)"


@dataclass(frozen=True)
class TeamLine:
    """One host team in the digest: its score now and four weeks before, and what moved it."""

    key: str
    name: str
    score: float
    before_score: float | None
    before_week: date | None
    drop: float | None
    moved: list[str]
    weakest: list[str]

    @property
    def change_text(self) -> str:
        if self.drop is None or self.before_week is None:
            return "no earlier week to compare"
        return f"{-self.drop:+.0f} since {self.before_week:%d %b}, was {self.before_score:.0f}"

    @property
    def why(self) -> str:
        """The components that moved it (else the weakest ones), as one line."""
        return "; ".join(self.moved) if self.moved else "weakest: " + ", ".join(self.weakest)


@dataclass(frozen=True)
class TrendPoint:
    week: date
    score: float | None
    """None when the week was not computed, had no score, or was under the privacy threshold."""


@dataclass(frozen=True)
class IndependenceSection:
    """The digest's "Independence" section for one week; ``missing`` says why it has no numbers."""

    week: date
    missing: str | None = None
    score: str = ""
    independent: str = ""
    goals: str = ""
    trend: list[TrendPoint] = field(default_factory=list)
    dropped: list[TeamLine] = field(default_factory=list)
    at_risk: list[TeamLine] = field(default_factory=list)
    hidden_at_risk: int = 0
    """Teams below the threshold with too few engagements to show (the red flag still names them)."""
    threshold: int = 50
    min_responses: int = 3

    @property
    def trend_text(self) -> str:
        """The program's score, oldest week first ("–": nothing to show that week)."""
        return " · ".join("–" if p.score is None else f"{p.score:.0f}" for p in self.trend)


def _line(trend: TeamTrend, names: dict[str, str]) -> TeamLine:
    key = trend.now.team_key
    return TeamLine(
        key=key,
        name=names.get(key) or key,
        score=trend.now.score,
        before_score=trend.before.score if trend.before else None,
        before_week=trend.before.week if trend.before else None,
        drop=trend.drop,
        moved=[f"{component_label(m['component'])} {m['from']:.0f} → {m['to']:.0f}" for m in trend.moved()],
        weakest=[f"{component_label(w['component'])} {w['points']:.0f}" for w in trend.weakest()],
    )


def digest_section(session: Session, week: date, *, settings: Settings) -> IndependenceSection:
    """The section for the computed week ``week`` (three statements; one when it was not computed)."""
    header = session.get(IndependenceWeekRow, week)
    threshold = settings.flag_independence_below
    if header is None:
        return IndependenceSection(
            week=week,
            missing=f"Not computed for the week of {week:%d %b} yet (auxeng_weekly_nps computes it).",
            threshold=threshold,
        )
    minimum = header.min_responses
    snapshot = IndependenceSnapshotRow
    first = week - timedelta(weeks=TREND_WEEKS - 1)
    program = {
        row.week: row
        for row in session.scalars(
            select(snapshot).where(
                snapshot.segment == "program", snapshot.week >= first, snapshot.week <= week
            )
        )
    }
    names: dict[str, str] = {}
    shown: list[TeamIndependence] = []
    hidden_at_risk = 0
    teams = session.execute(
        select(snapshot, TeamRow.name)
        .outerjoin(TeamRow, TeamRow.key == snapshot.key)
        .where(
            snapshot.segment == "team",
            snapshot.score.is_not(None),
            snapshot.week >= week - timedelta(weeks=COMPARED_WEEKS),
            snapshot.week <= week,
        )
    )
    for row, name in teams:
        names[row.key] = name
        if row.suppressed:
            hidden_at_risk += row.week == week and row.score < threshold
            continue
        shown.append(TeamIndependence.stored(row.key, row.week, row.score, row.scored, row.components))
    lines = [(trend, _line(trend, names)) for trend in team_trends(shown, week)]
    dropped = sorted(
        (line for trend, line in lines if (trend.drop or 0) > 0),
        key=lambda line: (-(line.drop or 0), line.name),
    )
    at_risk = sorted(
        (line for _, line in lines if line.score < threshold), key=lambda line: (line.score, line.name)
    )
    now = program.get(week)
    return IndependenceSection(
        week=week,
        score=score_text(now.score, now.scored, suppressed=now.suppressed) if now else "no score yet",
        independent=_proportion(
            (now.independent, now.checkins, now.independent_low, now.independent_high) if now else None,
            "answered check-ins",
            minimum,
        ),
        goals=_proportion(
            (now.goals_achieved, now.goals_answered, now.goals_low, now.goals_high) if now else None,
            "goal answers",
            minimum,
        ),
        trend=[
            TrendPoint(w, _shown_score(program.get(w)))
            for w in (first + timedelta(weeks=n) for n in range(TREND_WEEKS))
        ],
        dropped=dropped[:TOP_TEAMS],
        at_risk=at_risk,
        hidden_at_risk=hidden_at_risk,
        threshold=threshold,
        min_responses=minimum,
    )


def _shown_score(row: IndependenceSnapshotRow | None) -> float | None:
    return None if row is None or row.suppressed else row.score


def _proportion(counts: tuple[int, int, float | None, float | None] | None, of: str, minimum: int) -> str:
    hits, total, low, high = counts or (0, 0, None, None)
    return proportion_text(hits, total, low, high, min_responses=minimum, of=of)


# --- a host team's page on the dashboard ------------------------------------------------------


def latest_computed_week(session: Session, moment: datetime) -> IndependenceWeekRow | None:
    """The newest computed independence week that had ended by ``moment`` (its header row)."""
    return session.scalar(
        select(IndependenceWeekRow)
        .where(IndependenceWeekRow.ends_at <= moment)
        .order_by(IndependenceWeekRow.week.desc())
        .limit(1)
    )


def team_weeks(session: Session, team_key: str, last: date) -> list[IndependenceSnapshotRow]:
    """The team's snapshots of the :data:`TREND_WEEKS` weeks to ``last``, oldest first (one statement)."""
    snapshot = IndependenceSnapshotRow
    return list(
        session.scalars(
            select(snapshot)
            .where(
                snapshot.segment == "team",
                snapshot.key == team_key,
                snapshot.week > last - timedelta(weeks=TREND_WEEKS),
                snapshot.week <= last,
            )
            .order_by(snapshot.week)
        )
    )


def team_scores(session: Session, team_key: str, week: date, *, limit: int) -> list[IndependenceScoreRow]:
    """The scores of the team's engagements in the computed ``week``, latest end first, at most
    ``limit`` (one statement)."""
    score = IndependenceScoreRow
    return list(
        session.scalars(
            select(score)
            .where(score.week == week, score.team_key == team_key)
            .order_by(score.end_date.desc(), score.engagement_key)
            .limit(limit)
        )
    )


def value_text(value: object) -> str:
    """A component's signal as read on the page (numbers to two decimals, yes/no, words)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return "∞" if math.isinf(value) else f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value).replace("_", " ")
