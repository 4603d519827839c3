"""The weekly NPS counts of each week, per segment key, computed in SQL once and stored.

A week's counts (:class:`WeekCounts`), per segment key (``program``/``all``, ``org``,
``team``, ``survey``, with the host mapping of :mod:`auxeng.nps.queries`):

* the answers submitted in the week: promoters, passives, detractors, comfort total and answers;
* the people invited in the week and how many of them answered before the week's end;
* ``late``: per invitation week of the 25 before, how many of its people answered during the week.

So the people of invitation week *i* who answered before the end of a later week *W* are
those answered by the end of *i* plus the late answers stored with the weeks *i*+1 … *W*:
exactly ``answered_at < end(W)``, whatever the order of the moments.

:func:`counts_of` returns the counts of consecutive weeks: stored ones are reused, the others
computed (one run of consecutive missing weeks = 3 range scans of covering indexes, rolled up
to the segments in SQL: 1 query for one week, 3 for several) and stored when the week had ended. A
stored week is dropped when a trigger (migration 0010) marked one of its days in
``auxeng_nps_dirty_days``: a late import, an updated answer, a voided invitation, an
engagement given another host team, a team another org. The marks read are deleted with
the count they had, so a mark made meanwhile survives for the next run.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session

from auxeng.nps.queries import NO_ORG, bucket, count_where, period_index
from auxeng.store.db import insert_rows
from auxeng.store.models import (
    EngagementRow,
    NpsDirtyDayRow,
    NpsLateAnswerRow,
    NpsWeekAggregateRow,
    NpsWeekCountRow,
    SurveyInvitationRow,
    SurveyResponseRow,
    TeamRow,
    UTCDateTime,
)
from auxeng.vocabulary import DETRACTOR_MAX, NPS_SURVEYS, PROMOTER_MIN

LATE_WEEKS = 25  # a snapshot counts the invitations of its week and the 25 before
COUNTS = (
    "promoters",
    "passives",
    "detractors",
    "maintainability_total",
    "maintainability_answers",
    "invited",
    "answered",
)
ANSWER_COUNTS, INVITATION_COUNTS = COUNTS[:5], COUNTS[5:]

Key = tuple[str, str]  # (segment, key)


@dataclass
class WeekCounts:
    """One week's counts: per (segment, key) the :data:`COUNTS`; per (invitation week,
    segment, key) the people of that week who answered during this one."""

    week: date
    counts: dict[Key, list[int]] = field(default_factory=dict)
    late: dict[tuple[date, str, str], int] = field(default_factory=dict)


def local_midnight(day: date, timezone: ZoneInfo) -> datetime:
    """``day`` 00:00 in ``timezone``, in UTC."""
    return datetime.combine(day, time(0), timezone).astimezone(UTC)


def _rolled_up(per_engagement, engagement, periods: Sequence[str], counts: Sequence[str]):
    """The rows ``(segment, key, *periods, *counts)`` summing a per (engagement, survey,
    *periods) subquery to every segment: one statement, portable (a CTE grouped by host
    team and org, then a UNION ALL of one GROUP BY per segment)."""
    hosted = (
        select(
            *(per_engagement.c[name] for name in periods),
            per_engagement.c.survey,
            EngagementRow.host_team_key.label("team"),
            TeamRow.key.label("known"),
            TeamRow.org,
            *(func.sum(per_engagement.c[name]).label(name) for name in counts),
        )
        .select_from(per_engagement)
        .outerjoin(EngagementRow, EngagementRow.key == engagement)
        .outerjoin(TeamRow, TeamRow.key == EngagementRow.host_team_key)
        .group_by(
            *(per_engagement.c[name] for name in periods),
            per_engagement.c.survey,
            EngagementRow.host_team_key,
            TeamRow.key,
            TeamRow.org,
        )
        .cte("hosted")
    )
    grouped = [hosted.c[name] for name in periods]
    sums = [func.sum(hosted.c[name]).cast(BigInteger) for name in counts]

    def segment(name: str, key, *, by=None, where=None):
        query = select(literal_column(f"'{name}'"), key, *grouped, *sums)
        if where is not None:
            query = query.where(where)
        return query.group_by(*grouped, *([] if by is None else [by]))

    return segment("program", literal_column("'all'")).union_all(
        segment("survey", hosted.c.survey, by=hosted.c.survey),
        segment("team", hosted.c.team, by=hosted.c.team, where=hosted.c.team.is_not(None)),
        segment(
            "org", func.coalesce(hosted.c.org, NO_ORG), by=hosted.c.org, where=hosted.c.known.is_not(None)
        ),
    )


SOURCES = ("answers", "invitations", "late answers")  # the row kinds of the counting statement
PADDED = tuple(f"c{n}" for n in range(len(ANSWER_COUNTS)))  # its count columns (zero-padded)


@functools.cache
def _week_statements(periods: int) -> tuple[Any, ...]:
    """The statements counting ``periods`` consecutive weeks, built once per count: the answers,
    the invitations and the late answers per engagement (each a range scan of a covering index),
    joined to the hosts and rolled up. One week (the steady run): one UNION ALL of the three,
    joined to the hosts once. Several: one statement each, as their plans' estimated cost,
    summed, would pass PostgreSQL's JIT optimisation threshold (seconds spent compiling a
    statement that runs in a few hundred milliseconds). Rows: ``(segment, key, source, period,
    invite_week, *PADDED)``, ``source`` an index in :data:`SOURCES`. Their bounds are the
    parameters ``m0…`` (the weeks' first moments and the end), ``d0…`` (their first days and
    the next Monday) and ``i0…`` (the first days of the 25 weeks before)."""
    moments = [bindparam(f"m{n}", type_=UTCDateTime()) for n in range(periods + 1)]
    days = [bindparam(f"d{n}", type_=Date()) for n in range(periods + 1)]
    invite_days = [bindparam(f"i{n}", type_=Date()) for n in range(LATE_WEEKS)] + days
    several = periods > 1
    zero = literal_column("0", Integer)

    def index(column, boundaries):
        return period_index(column, boundaries) if several else zero

    def padded(source: int, period, invite_week, engagement, survey, *counts):
        return (
            literal_column(str(source), Integer).label("source"),
            period.label("period"),
            invite_week.label("invite_week"),
            engagement.label("engagement_key"),
            survey.label("survey"),
            *(count.label(name) for count, name in zip(counts, PADDED, strict=False)),
            *(zero.label(name) for name in PADDED[len(counts) :]),
        )

    r = SurveyResponseRow
    period = index(r.submitted_at, moments)
    answers = (
        select(
            *padded(
                0,
                period,
                zero,
                r.engagement_key,
                r.survey,
                count_where(r.nps >= PROMOTER_MIN),
                count_where(r.nps.between(DETRACTOR_MAX + 1, PROMOTER_MIN - 1)),
                count_where(r.nps <= DETRACTOR_MAX),
                func.coalesce(func.sum(r.maintainability), 0),
                func.count(r.maintainability),
            )
        )
        .where(
            r.submitted_at >= moments[0],
            r.submitted_at < moments[-1],
            r.survey.in_(NPS_SURVEYS),
            r.nps.is_not(None),
        )
        .group_by(*([period] if several else []), r.engagement_key, r.survey)
    )

    i = SurveyInvitationRow
    period = index(i.invited_on, days)
    week_end = bucket(i.invited_on, days, moments[1:])
    invited = (
        select(
            *padded(
                1,
                period,
                zero,
                i.engagement_key,
                i.survey,
                func.count(),
                count_where(i.answered_at < week_end),
            )
        )
        .where(
            i.invited_on >= days[0], i.invited_on < days[-1], i.survey.in_(NPS_SURVEYS), i.status == "invited"
        )
        .group_by(*([period] if several else []), i.engagement_key, i.survey)
    )

    answered_in = index(i.answered_at, moments)
    invite_week = period_index(
        i.invited_on, invite_days
    )  # week n of the periods is invitation week n + LATE_WEEKS
    late = (
        select(*padded(2, answered_in, invite_week, i.engagement_key, i.survey, func.count()))
        .where(
            i.answered_at >= moments[0],
            i.answered_at < moments[-1],
            i.invited_on >= invite_days[0],
            i.invited_on < days[-2],
            i.survey.in_(NPS_SURVEYS),
            i.status == "invited",
            *([invite_week < answered_in + LATE_WEEKS, invite_week >= answered_in] if several else []),
        )
        .group_by(*([answered_in] if several else []), invite_week, i.engagement_key, i.survey)
    )
    groups = ["source", "period", "invite_week"]
    parts = (
        [union_all(answers, invited, late).subquery()]
        if not several
        else [query.subquery() for query in (answers, invited, late)]
    )
    return tuple(_rolled_up(part, part.c.engagement_key, groups, PADDED) for part in parts)


def compute_weeks(session: Session, weeks: Sequence[date], timezone: ZoneInfo) -> dict[date, WeekCounts]:
    """The counts of consecutive ``weeks`` (Mondays), from the answers and invitations: 1 query
    for one week, 3 for several."""
    days = [*weeks, weeks[-1] + timedelta(weeks=1)]
    invite_days = [weeks[0] - timedelta(weeks=LATE_WEEKS - n) for n in range(LATE_WEEKS)] + days
    parameters = {f"d{n}": day for n, day in enumerate(days)}
    parameters |= {f"m{n}": local_midnight(day, timezone) for n, day in enumerate(days)}
    parameters |= {f"i{n}": day for n, day in enumerate(invite_days[:LATE_WEEKS])}
    result = {week: WeekCounts(week) for week in weeks}
    connection = session.connection()  # Core rows, fetched at once
    rows = [
        row
        for statement in _week_statements(len(weeks))
        for row in connection.execute(statement, parameters).all()
    ]
    for segment, key, source, index, invite_index, *counts in rows:
        found = result[weeks[index]]
        if source == 0:
            _add(found.counts, (segment, key), 0, counts)
        elif source == 1:
            _add(found.counts, (segment, key), 5, counts[:2])
        else:
            late = (invite_days[invite_index], segment, key)
            found.late[late] = found.late.get(late, 0) + counts[0]
    return result


def _add(counts: dict[Key, list[int]], key: Key, offset: int, values: Sequence[int]) -> None:
    """Add ``values`` to the counts of ``key`` from position ``offset`` (a key seen twice, e.g. an
    org named like ``NO_ORG``, is summed)."""
    found = counts.setdefault(key, [0] * len(COUNTS))
    for n, value in enumerate(values, offset):
        found[n] += value


def _weeks_of_days(days: Sequence[date], timezone: ZoneInfo) -> set[date]:
    """The local weeks a UTC day can touch (its own date too: an ``invited_on`` is a local date)."""
    weeks = set()
    for day in days:
        first = datetime.combine(day, time(0), UTC)
        for moment in (first, first + timedelta(days=1, microseconds=-1)):
            local = moment.astimezone(timezone).date()
            weeks.add(local - timedelta(days=local.weekday()))
        weeks.add(day - timedelta(days=day.weekday()))
    return weeks


def forget_changed_weeks(session: Session, timezone: ZoneInfo) -> set[date]:
    """Drop the stored weeks the marked days can touch and delete the marks read (by their
    count: a mark bumped meanwhile stays); returns those weeks. 1 query, +2 when marked."""
    marks = session.execute(select(NpsDirtyDayRow.day, NpsDirtyDayRow.marks)).all()
    if not marks:
        return set()
    weeks = _weeks_of_days([day for day, _marks in marks], timezone)
    session.execute(delete(NpsWeekAggregateRow).where(NpsWeekAggregateRow.week.in_(sorted(weeks))))
    session.execute(
        delete(NpsDirtyDayRow).where(
            tuple_(NpsDirtyDayRow.day, NpsDirtyDayRow.marks).in_([tuple(mark) for mark in marks])
        )
    )
    return weeks


def _store(session: Session, computed: Mapping[date, WeekCounts], bounds, now: datetime) -> None:
    session.execute(
        insert(NpsWeekAggregateRow.__table__),
        [
            {
                "week": week,
                "starts_at": bounds[week][0],
                "ends_at": bounds[week][1],
                "computed_at": now,
            }
            for week in computed
        ],
    )
    counts = [
        {"week": week, "segment": segment, "key": key, **dict(zip(COUNTS, values, strict=True))}
        for week, found in computed.items()
        for (segment, key), values in found.counts.items()
    ]
    insert_rows(session, NpsWeekCountRow.__table__, counts)
    late = [
        {"week": week, "invite_week": invite_week, "segment": segment, "key": key, "answered": answered}
        for week, found in computed.items()
        for (invite_week, segment, key), answered in found.late.items()
    ]
    insert_rows(session, NpsLateAnswerRow.__table__, late)


@functools.cache
def _load_statement() -> Any:
    """The statement of :func:`_load`, built once: the stored counts (``late`` 0) and late answers
    (``late`` 1, the count first, zero-padded), summed; parameters ``weeks`` (expanding),
    ``last``, ``quarter_from`` and ``since``."""
    weeks = bindparam("weeks", expanding=True, type_=Date())
    last, quarter_from = bindparam("last", type_=Date()), bindparam("quarter_from", type_=Date())
    c = NpsWeekCountRow.__table__.c
    bucket = case((or_(c.segment == "program", c.week == last), c.week), else_=quarter_from)
    counts = (
        select(
            literal_column("0", Integer), bucket, c.segment, c.key, *(func.sum(c[name]) for name in COUNTS)
        )
        .where(c.week.in_(weeks), or_(c.segment == "program", c.week >= quarter_from))
        .group_by(bucket, c.segment, c.key)
    )
    a = NpsLateAnswerRow.__table__.c
    bucket = case((or_(a.segment == "program", a.invite_week == last), a.invite_week), else_=quarter_from)
    zero = literal_column("0", Integer)
    late = (
        select(literal_column("1", Integer), bucket, a.segment, a.key, func.sum(a.answered), *[zero] * 6)
        .where(
            a.week.in_(weeks),
            a.invite_week >= bindparam("since", type_=Date()),
            or_(a.segment == "program", a.invite_week >= quarter_from),
        )
        .group_by(bucket, a.segment, a.key)
    )
    return union_all(counts, late)


def _load(session: Session, weeks: Sequence[date], *, since: date, quarter_from: date) -> list[WeekCounts]:
    """The stored counts of ``weeks`` (the last of them is the snapshot's week), with the late
    answers of invitation weeks from ``since`` on: the program's per week; the other segments'
    summed over ``quarter_from`` … the week before the last (dated ``quarter_from``), the last
    week's apart, the weeks before left out (1 query, a few hundred rows)."""
    if not weeks:
        return []
    last = max(weeks)
    parameters = {"weeks": list(weeks), "last": last, "quarter_from": quarter_from, "since": since}
    rows = session.connection().execute(_load_statement(), parameters).all()  # Core rows, fetched at once
    result: dict[date, WeekCounts] = {}
    late = WeekCounts(last)
    for is_late, week, segment, key, *values in rows:
        if is_late:
            late.late[(week, segment, key)] = values[0]
            continue
        found = result.get(week)
        if found is None:
            found = result[week] = WeekCounts(week)
        found.counts[(segment, key)] = values
    return [*result.values(), late]


def counts_of(
    session: Session, weeks: Sequence[date], *, timezone: ZoneInfo, now: datetime, quarter_from: date
) -> list[WeekCounts]:
    """The counts of consecutive ``weeks``: stored ones reused (summed as :func:`_load` does),
    the others computed (and stored when the week has ended by ``now``); a (week, segment,
    key) may come in several parts, to be added up. Steady state (the last week new, its days
    marked): 9 statements."""
    forget_changed_weeks(session, timezone)
    bounds = {
        week: (local_midnight(week, timezone), local_midnight(week + timedelta(weeks=1), timezone))
        for week in weeks
    }
    stale, reused = [], []
    a = NpsWeekAggregateRow.__table__.c  # Core rows: no ORM objects to build
    headers = select(a.week, a.starts_at, a.ends_at, a.computed_at).where(a.week.in_(weeks))
    for week, *stored, computed_at in session.connection().execute(headers).all():
        starts_at, ends_at = bounds[week]
        usable = tuple(stored) == (starts_at, ends_at) and computed_at >= ends_at
        (reused if usable else stale).append(week)
    if stale:
        session.execute(delete(NpsWeekAggregateRow).where(NpsWeekAggregateRow.week.in_(stale)))
    computed: dict[date, WeekCounts] = {}
    missing = [week for week in weeks if week not in reused]
    for run in _consecutive(missing):
        computed.update(compute_weeks(session, run, timezone))
    ended = {week: counts for week, counts in computed.items() if bounds[week][1] <= now}
    if ended:
        _store(session, ended, bounds, now)
    return [*_load(session, reused, since=weeks[0], quarter_from=quarter_from), *computed.values()]


def _consecutive(weeks: Sequence[date]) -> list[list[date]]:
    runs: list[list[date]] = []
    for week in weeks:
        if runs and week - runs[-1][-1] == timedelta(weeks=1):
            runs[-1].append(week)
        else:
            runs.append([week])
    return runs
