"""Independence signals as they stood at a moment, read for every counted engagement at once.

Set-based: a fixed handful of statements whatever the number of engagements (never one per
engagement or team; ``bench/independence.py`` counts them):

1. the **counted engagements**: ended and live (:mod:`auxeng.registry.lifecycle`'s clause),
   their last day before the moment's day and at most ``window_weeks`` before it, with their
   host team's org and help channel;
2. the engagements that could be their **repeats**: the live ones of the same host teams;
3. the host teams with a **CSV help source** (any CSV-imported help request);
4. the **help asks** per engagement, counted in one join of ``auxeng_help_requests`` (its
   ``team_key, requested_at`` index) with a temporary table of each engagement's periods
   (created, filled with one statement, dropped: local midnights are computed in Python, so
   both databases count the same requests);
5. the **answers**: per engagement and survey (end of engagement, check-in), the counts and
   sums of the host side's answers submitted before the moment.

Rules (``docs/independence.md``, "Weekly snapshots"):

* maintainability: the mean of the check-in answers (1-5); help needed: the worst answer
  (:func:`auxeng.surveys.questions.worst_help_needed`, as the check-in's own outcome);
* help asks per week during the engagement (its days, start to last day) and after it (from
  the day after its last day to the moment, at most 13 weeks); each rate divides by the
  period's length in weeks, at least one week. No help source (no help channel and no
  CSV-imported request) leaves both missing;
* repeat engagement: :func:`auxeng.checkins.schedule.is_repeat` within ``AUXENG_REPEAT_MONTHS``
  (the red flag's rule); the registry keeps no history of when an engagement was added, so a
  repeat counts once it had started or the pack had first loaded it (``created_at``) by the
  moment; False once the window's last day has passed without one, else unknown;
* NPS at the end and at the check-in: the engagement's NPS over its host side's answers; none
  for an anonymous engagement (a per-engagement figure of anonymous answers would tell its
  few people's answers apart, which anonymity promises not to);
* goals: the most common answer of the end survey, ties broken towards the lower answer.

Stored data the formula cannot take (a comfort of 9, an NPS of 11, a goals answer of
``maybe``) leaves that signal out with a reason naming it (:class:`Found` ``invalid``), never
failing the week.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Column,
    ColumnElement,
    MetaData,
    String,
    Table,
    and_,
    case,
    delete,
    func,
    literal,
    select,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.schema import CreateTable, DropTable

from auxeng.checkins.schedule import add_months, is_repeat
from auxeng.independence.score import GOAL_POINTS, InvalidSignals, Signals
from auxeng.registry.lifecycle import ended_and_live_clause, live_clause
from auxeng.stats import nps_score
from auxeng.store.db import insert_rows
from auxeng.store.models import EngagementRow, HelpRequestRow, SurveyResponseRow, TeamRow, UTCDateTime
from auxeng.surveys.questions import HELP_ORDER, worst_help_needed
from auxeng.vocabulary import DETRACTOR_MAX, NO_ORG, PROMOTER_MIN, SurveyKind

AFTER_WEEKS = 13
"""Help asks after the end are counted over at most this many weeks."""
CSV_SOURCE = "csv"
MAINTAINABILITY_LOW, MAINTAINABILITY_HIGH = 1, 5
NPS_LOW, NPS_HIGH = 0, 10
GOAL_ORDER = sorted(GOAL_POINTS, key=GOAL_POINTS.__getitem__)
"""Goals answers from the most conservative (lowest points) up: the order ties are broken in."""

PERIODS = Table(
    "auxeng_tmp_independence_periods",
    MetaData(),
    Column("engagement_key", String(64)),
    Column("team_key", String(64)),
    Column("during_from", UTCDateTime()),
    Column("after_from", UTCDateTime()),
    Column("after_until", UTCDateTime()),
    prefixes=["TEMPORARY"],
)
"""Each counted engagement's help periods, for one read (never in the store's schema)."""


@dataclass(frozen=True)
class Counted:
    """A counted engagement: ended and live, its last day within the window."""

    key: str
    team_key: str
    org: str
    start: date
    end: date
    anonymous: bool


@dataclass(frozen=True)
class Found:
    """One engagement's signals as they stood; ``invalid``: signal field → why stored data was left out."""

    engagement: Counted
    signals: Signals
    invalid: dict[str, str] = field(default_factory=dict)


def local_midnight(day: date, timezone: ZoneInfo) -> datetime:
    """``day`` 00:00 in ``timezone`` (time-zone aware)."""
    return datetime.combine(day, time(0), timezone)


def counted_clause(columns: Any, *, until: date, window_weeks: int) -> ColumnElement[bool]:
    """Engagements counted on the day ``until``: ended and live, last day before ``until`` and
    not before ``window_weeks`` weeks earlier."""
    return and_(
        ended_and_live_clause(columns),
        columns.end_date < until,
        columns.end_date >= until - timedelta(weeks=window_weeks),
    )


@dataclass(frozen=True)
class _Periods:
    during_from: datetime
    after_from: datetime
    after_until: datetime

    @property
    def weeks(self) -> tuple[float, float]:
        """The lengths in weeks of the periods during and after, each at least one."""
        week = timedelta(weeks=1)
        return (
            max(1.0, (self.after_from - self.during_from) / week),
            max(1.0, (self.after_until - self.after_from) / week),
        )


def periods_of(engagement: Counted, moment: datetime, timezone: ZoneInfo) -> _Periods:
    """During: its days (start 00:00 to the day after its last, local time); after: from then to
    ``moment``, at most :data:`AFTER_WEEKS` weeks."""
    after_from = local_midnight(engagement.end + timedelta(days=1), timezone)
    cap = local_midnight(engagement.end + timedelta(days=1, weeks=AFTER_WEEKS), timezone)
    return _Periods(local_midnight(engagement.start, timezone), after_from, min(moment, cap))


def read_signals(
    session: Session, *, moment: datetime, timezone: ZoneInfo, window_weeks: int, repeat_months: int
) -> list[Found]:
    """The signals of every engagement counted at ``moment`` (a local midnight: a week's end), in key order."""
    until = moment.astimezone(timezone).date()
    engagements, help_channels = _counted(session, until=until, window_weeks=window_weeks)
    if not engagements:
        return []
    counted = select(EngagementRow.key).where(
        counted_clause(EngagementRow, until=until, window_weeks=window_weeks)
    )
    repeats = _repeats(
        session, engagements, until=until, moment=moment, window_weeks=window_weeks, months=repeat_months
    )
    with_source = help_channels | _csv_teams(session, {e.team_key for e in engagements})
    periods = {e.key: periods_of(e, moment, timezone) for e in engagements if e.team_key in with_source}
    asks = _help_asks(session, engagements, periods)
    answers = _answers(session, counted, moment)
    found = []
    for engagement in engagements:
        values: dict[str, Any] = {}
        invalid: dict[str, str] = {}
        key = engagement.key
        checkin = answers.get((key, SurveyKind.CHECKIN))
        end = answers.get((key, SurveyKind.POST_ENGAGEMENT))
        if checkin is not None:
            _maintainability(checkin, values, invalid)
            values["help_needed"] = worst_help_needed(a for a in HELP_ORDER if checkin[f"help_{a}"])
        if key in periods:
            during, after = asks.get(key, (0, 0))
            during_weeks, after_weeks = periods[key].weeks
            values["help_asks_during_per_week"] = during / during_weeks
            values["help_asks_after_per_week"] = after / after_weeks
        values["repeat_engagement"] = repeats.get(key)
        if not engagement.anonymous:
            for name, answered in (("end_nps", end), ("checkin_nps", checkin)):
                if answered is not None:
                    _nps(name, answered, values, invalid)
        if end is not None:
            for name in ("goals_business", "goals_technical"):
                _goals(name, end, values, invalid)
        found.append(Found(engagement, *_signals(values, invalid)))
    return found


def _counted(session: Session, *, until: date, window_weeks: int) -> tuple[list[Counted], set[str]]:
    """The counted engagements (by key) and the host teams among theirs with a help channel."""
    rows = session.execute(
        select(
            EngagementRow.key,
            EngagementRow.host_team_key,
            EngagementRow.start_date,
            EngagementRow.end_date,
            EngagementRow.anonymous,
            TeamRow.org,
            TeamRow.help_channel,
        )
        .outerjoin(TeamRow, TeamRow.key == EngagementRow.host_team_key)
        .where(counted_clause(EngagementRow, until=until, window_weeks=window_weeks))
        .order_by(EngagementRow.key)
    )
    engagements, channels = [], set()
    for key, team, start, end, anonymous, org, channel in rows:
        engagements.append(Counted(key, team, org or NO_ORG, start, end, bool(anonymous)))
        if channel:
            channels.add(team)
    return engagements, channels


def _repeats(
    session: Session,
    engagements: list[Counted],
    *,
    until: date,
    moment: datetime,
    window_weeks: int,
    months: int,
) -> dict[str, bool | None]:
    """Per counted engagement: True when a repeat was known by ``moment``, False once its window
    ended without one (before ``until``), else None (absent)."""
    counted = aliased(EngagementRow)
    teams = select(counted.host_team_key).where(
        counted_clause(counted, until=until, window_weeks=window_weeks)
    )
    rows = session.execute(
        select(
            EngagementRow.host_team_key, EngagementRow.key, EngagementRow.start_date, EngagementRow.created_at
        ).where(live_clause(EngagementRow), EngagementRow.host_team_key.in_(teams))
    )
    known: dict[str, list[tuple[str, date]]] = defaultdict(list)
    for team, key, start, created_at in rows:
        if start < until or created_at < moment:
            known[team].append((key, start))
    found: dict[str, bool | None] = {}
    for engagement in engagements:
        if any(
            key != engagement.key and is_repeat(engagement.start, engagement.end, start, months)
            for key, start in known[engagement.team_key]
        ):
            found[engagement.key] = True
        elif add_months(engagement.end, months) < until:
            found[engagement.key] = False
    return found


def _csv_teams(session: Session, teams: set[str]) -> set[str]:
    """The host teams with at least one CSV-imported help request."""
    query = select(TeamRow.key).where(
        select(HelpRequestRow.id)
        .where(HelpRequestRow.team_key == TeamRow.key, HelpRequestRow.source == CSV_SOURCE)
        .exists()
    )
    return {key for key in session.scalars(query) if key in teams}


def _help_asks(
    session: Session, engagements: list[Counted], periods: Mapping[str, _Periods]
) -> dict[str, tuple[int, int]]:
    """Per engagement with a help source: its host team's help asks during and after it."""
    if not periods:
        return {}
    # IF NOT EXISTS and a DELETE: on SQLite the CREATE commits at once but a rolled-back
    # transaction (a dry read, a failure) keeps the table on its pooled connection.
    session.execute(CreateTable(PERIODS, if_not_exists=True))
    session.execute(delete(PERIODS))
    insert_rows(
        session,
        PERIODS,
        [
            {
                "engagement_key": e.key,
                "team_key": e.team_key,
                "during_from": periods[e.key].during_from,
                "after_from": periods[e.key].after_from,
                "after_until": periods[e.key].after_until,
            }
            for e in engagements
            if e.key in periods
        ],
    )
    p, h = PERIODS.c, HelpRequestRow
    rows = session.execute(
        select(
            p.engagement_key,
            func.sum(case((h.requested_at < p.after_from, 1), else_=0)),
            func.sum(case((h.requested_at >= p.after_from, 1), else_=0)),
        )
        .select_from(PERIODS)
        .join(
            h,
            and_(
                h.team_key == p.team_key,
                h.requested_at >= p.during_from,
                h.requested_at < p.after_until,
            ),
        )
        .group_by(p.engagement_key)
    ).all()
    session.execute(DropTable(PERIODS, if_exists=True))
    return {key: (int(during), int(after)) for key, during, after in rows}


def _answers(session: Session, counted: Any, moment: datetime) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (engagement, survey): the counts of its host side's answers submitted before ``moment``."""
    r = SurveyResponseRow
    comfort = r.maintainability
    valid_comfort = comfort.between(MAINTAINABILITY_LOW, MAINTAINABILITY_HIGH)
    columns: dict[str, ColumnElement[Any]] = {
        "comfort_answers": _count(valid_comfort),
        "comfort_sum": func.sum(case((valid_comfort, comfort), else_=0)),
        "comfort_bad": _count(and_(comfort.is_not(None), ~valid_comfort)),
        "comfort_min": func.min(comfort),
        "comfort_max": func.max(comfort),
        "promoters": _count(r.nps.between(PROMOTER_MIN, NPS_HIGH)),
        "passives": _count(r.nps.between(DETRACTOR_MAX + 1, PROMOTER_MIN - 1)),
        "detractors": _count(r.nps.between(NPS_LOW, DETRACTOR_MAX)),
        "nps_bad": _count(and_(r.nps.is_not(None), ~r.nps.between(NPS_LOW, NPS_HIGH))),
        "nps_min": func.min(r.nps),
        "nps_max": func.max(r.nps),
    }
    help_needed = r.answers["help_needed"].as_string()
    for answer in HELP_ORDER:
        columns[f"help_{answer}"] = _count(help_needed == answer)
    for name, question in (("goals_business", "business_goals"), ("goals_technical", "technical_goals")):
        value = r.answers[question].as_string()
        for answer in GOAL_ORDER:
            columns[f"{name}_{answer}"] = _count(value == answer)
        columns[f"{name}_bad"] = _count(and_(value.is_not(None), value.not_in(GOAL_ORDER)))
        columns[f"{name}_example"] = func.max(case((value.not_in(GOAL_ORDER), value)))
    query = (
        select(r.engagement_key, r.survey, *(column.label(name) for name, column in columns.items()))
        .where(
            r.engagement_key.in_(counted),
            r.survey.in_((SurveyKind.POST_ENGAGEMENT.value, SurveyKind.CHECKIN.value)),
            r.submitted_at < moment,
        )
        .group_by(r.engagement_key, r.survey)
    )
    return {(row["engagement_key"], row["survey"]): dict(row) for row in session.execute(query).mappings()}


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), literal(0))


def _maintainability(checkin: Mapping[str, Any], values: dict[str, Any], invalid: dict[str, str]) -> None:
    if checkin["comfort_bad"]:
        low, high = checkin["comfort_min"], checkin["comfort_max"]
        culprit = low if low < MAINTAINABILITY_LOW else high
        invalid["maintainability"] = (
            f"maintainability: {checkin['comfort_bad']} stored check-in answer(s) outside "
            f"{MAINTAINABILITY_LOW}-{MAINTAINABILITY_HIGH} (e.g. {culprit})"
        )
    elif checkin["comfort_answers"]:
        values["maintainability"] = checkin["comfort_sum"] / checkin["comfort_answers"]


def _nps(name: str, answered: Mapping[str, Any], values: dict[str, Any], invalid: dict[str, str]) -> None:
    if answered["nps_bad"]:
        low, high = answered["nps_min"], answered["nps_max"]
        culprit = low if low < NPS_LOW else high
        invalid[name] = (
            f"{name}: {answered['nps_bad']} stored NPS answer(s) outside {NPS_LOW}-{NPS_HIGH} (e.g. {culprit})"
        )
        return
    values[name] = nps_score(answered["promoters"], answered["passives"], answered["detractors"])


def most_common_goal(counts: Mapping[str, int]) -> str | None:
    """The most common goals answer, ties broken towards the lower one; None without answers."""
    best = max(GOAL_ORDER, key=lambda answer: (counts.get(answer, 0), -GOAL_ORDER.index(answer)))
    return best if counts.get(best, 0) else None


def _goals(name: str, end: Mapping[str, Any], values: dict[str, Any], invalid: dict[str, str]) -> None:
    if end[f"{name}_bad"]:
        invalid[name] = (
            f"{name}: {end[f'{name}_bad']} stored answer(s) not among {', '.join(GOAL_ORDER)} "
            f"(e.g. {end[f'{name}_example']!r})"
        )
        return
    values[name] = most_common_goal({answer: end[f"{name}_{answer}"] for answer in GOAL_ORDER})


def _signals(values: dict[str, Any], invalid: dict[str, str]) -> tuple[Signals, dict[str, str]]:
    """The :class:`Signals` of ``values``; a value the formula refuses is left out, its reason in ``invalid``."""
    try:
        return Signals(**values), invalid
    except InvalidSignals:
        kept = {}
        for name, value in values.items():
            try:
                Signals(**{name: value})
            except InvalidSignals as exc:
                invalid[name] = str(exc)
            else:
                kept[name] = value
        return Signals(**kept), invalid


SIGNAL_COMPONENTS = {
    "maintainability": "maintainability",
    "help_needed": "help_needed",
    "help_asks_during_per_week": "help_asks",
    "help_asks_after_per_week": "help_asks",
    "repeat_engagement": "repeat_engagement",
    "end_nps": "nps_change",
    "checkin_nps": "nps_change",
    "goals_business": "goals_business",
    "goals_technical": "goals_technical",
}
"""The score component each signal feeds."""


def component_problems(invalid: Mapping[str, str]) -> dict[str, str]:
    """Per component: why stored data was left out of it (the reasons of its signals)."""
    reasons: dict[str, list[str]] = defaultdict(list)
    for name, reason in invalid.items():
        reasons[SIGNAL_COMPONENTS[name]].append(reason)
    return {component: "; ".join(found) for component, found in reasons.items()}
