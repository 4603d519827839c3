"""The weekly NPS aggregation: a week's snapshot, computed in the database and stored.

A week is Monday 00:00 to the next Monday 00:00 in the program's time zone; the run
of Monday 07:00 computes the week that just ended. For each segment kind one query
counts the answers and one the invitations (see :mod:`auxeng.nps_queries`):

* ``program``: 26 weekly periods, giving the week, the week before, the 13 weeks
  ending with it, the 13 weeks before those, and the 13-week trend;
* ``org``, ``team``, ``survey``: 13 weeks in two periods (the week, the 12 before).

The response rate of a span is: of the people invited (to the end-of-engagement or
check-in survey) during the span, the share who answered before the week's end.

Writing replaces the week's snapshot in one transaction: a re-run or a backfill
never duplicates a week.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from auxeng.nps import NpsResult, nps, response_rate
from auxeng.nps_queries import SEGMENTS, InvitationCounts, SegmentCounts, answer_counts, invitation_counts
from auxeng.store.models import NpsSnapshotRow, NpsWeekRow

TREND_WEEKS = 13
WEEK, QUARTER, PREV_WEEK, PREV_QUARTER = "week", "13w", "prev_week", "prev_13w"
SPANS = (WEEK, QUARTER, PREV_WEEK, PREV_QUARTER)


def week_of(day: date) -> date:
    """The Monday of the week ``day`` falls in."""
    return day - timedelta(days=day.weekday())


def week_to_report(moment: datetime, timezone: ZoneInfo) -> date:
    """The Monday of the last complete week before ``moment`` (local time): Monday 07:00
    reports the week that ended at midnight; a run on a Wednesday, the week before too."""
    return week_of(moment.astimezone(timezone).date()) - timedelta(weeks=1)


def local_midnight(day: date, timezone: ZoneInfo) -> datetime:
    """``day`` 00:00 in ``timezone``, in UTC."""
    return datetime.combine(day, time(0), timezone).astimezone(UTC)


@dataclass(frozen=True)
class Span:
    """Counts of one segment key over one span: answers and invitations."""

    answers: SegmentCounts
    invitations: InvitationCounts

    @property
    def result(self) -> NpsResult:
        return self.answers.result

    @property
    def rate(self) -> float | None:
        return response_rate(self.invitations.answered, self.invitations.invited)


@dataclass
class WeeklySnapshot:
    """A computed week: per (span, segment, key) its counts, and the program's 13-week trend."""

    week: date
    starts_at: datetime
    ends_at: datetime
    min_responses: int
    spans: dict[tuple[str, str, str], Span] = field(default_factory=dict)
    trend: list[dict[str, Any]] = field(default_factory=list)

    def get(self, span: str, segment: str = "program", key: str = "all") -> Span:
        found = self.spans.get((span, segment, key))
        if found is None:
            return Span(SegmentCounts(segment, key), InvitationCounts(segment, key))
        return found


def _sum(items: Iterable[Any], empty: Any) -> Any:
    total = empty
    for item in items:
        total = total + item
    return total


def compute_week(session: Session, week: date, *, timezone: ZoneInfo, min_responses: int) -> WeeklySnapshot:
    """The snapshot of the week starting on Monday ``week`` (8 queries, nothing loaded row by row)."""
    if week.weekday() != 0:
        raise ValueError(f"a week starts on a Monday; {week} is a {week:%A}")
    program_days = [week - timedelta(weeks=2 * TREND_WEEKS - 1 - n) for n in range(2 * TREND_WEEKS + 1)]
    quarter_days = [week - timedelta(weeks=TREND_WEEKS - 1), week, week + timedelta(weeks=1)]
    snapshot = WeeklySnapshot(
        week=week,
        starts_at=local_midnight(week, timezone),
        ends_at=local_midnight(week + timedelta(weeks=1), timezone),
        min_responses=min_responses,
    )
    for segment in SEGMENTS:
        days = program_days if segment == "program" else quarter_days
        moments = [local_midnight(day, timezone) for day in days]
        answers = answer_counts(session, segment, moments)
        invitations = invitation_counts(session, segment, days, answered_before=snapshot.ends_at)
        periods = len(days) - 1
        last = periods - 1
        spans = {WEEK: [last], QUARTER: range(periods - TREND_WEEKS, periods)}
        if segment == "program":
            spans |= {PREV_WEEK: [last - 1], PREV_QUARTER: range(0, periods - TREND_WEEKS)}
        keys = sorted({key for key, _ in answers} | {key for key, _ in invitations})
        for key in keys:
            for span, indexes in spans.items():
                snapshot.spans[(span, segment, key)] = Span(
                    _sum(
                        (answers.get((key, i)) for i in indexes if (key, i) in answers),
                        SegmentCounts(segment, key),
                    ),
                    _sum(
                        (invitations.get((key, i)) for i in indexes if (key, i) in invitations),
                        InvitationCounts(segment, key),
                    ),
                )
        if segment == "program":
            for index in range(periods - TREND_WEEKS, periods):
                counts = answers.get(("all", index), SegmentCounts("program", "all"))
                invited = invitations.get(("all", index), InvitationCounts("program", "all"))
                snapshot.trend.append(
                    {
                        "week": days[index].isoformat(),
                        "promoters": counts.promoters,
                        "passives": counts.passives,
                        "detractors": counts.detractors,
                        "invited": invited.invited,
                        "answered": invited.answered,
                    }
                )
    return snapshot


def save_week(session: Session, snapshot: WeeklySnapshot, *, run_id: str | None, now: datetime) -> int:
    """Replace the stored snapshot of ``snapshot.week`` with this one; returns the rows written."""
    session.execute(delete(NpsSnapshotRow).where(NpsSnapshotRow.week == snapshot.week))
    session.execute(delete(NpsWeekRow).where(NpsWeekRow.week == snapshot.week))
    session.add(
        NpsWeekRow(
            week=snapshot.week,
            starts_at=snapshot.starts_at,
            ends_at=snapshot.ends_at,
            min_responses=snapshot.min_responses,
            trend=snapshot.trend,
            run_id=run_id,
            computed_at=now,
        )
    )
    session.flush()
    rows = []
    for (span, segment, key), counts in sorted(snapshot.spans.items()):
        result = counts.result
        rows.append(
            NpsSnapshotRow(
                week=snapshot.week,
                span=span,
                segment=segment,
                key=key,
                promoters=result.promoters,
                passives=result.passives,
                detractors=result.detractors,
                responses=result.responses,
                score=result.score,
                ci_low=result.low,
                ci_high=result.high,
                suppressed=result.responses < snapshot.min_responses,
                invited=counts.invitations.invited,
                answered=counts.invitations.answered,
                response_rate=counts.rate,
                maintainability_answers=counts.answers.maintainability_answers,
                maintainability_mean=counts.answers.maintainability_mean,
            )
        )
    session.add_all(rows)
    session.flush()
    return len(rows)


def result_of(row: NpsSnapshotRow) -> NpsResult:
    """The NPS result a stored snapshot row describes."""
    return nps(row.promoters, row.passives, row.detractors)


def load_week(
    session: Session, week: date
) -> tuple[NpsWeekRow, dict[tuple[str, str, str], NpsSnapshotRow]] | None:
    """A stored week and its rows by (span, segment, key), or None when it was never computed."""
    header = session.get(NpsWeekRow, week)
    if header is None:
        return None
    rows = session.scalars(select(NpsSnapshotRow).where(NpsSnapshotRow.week == week))
    return header, {(row.span, row.segment, row.key): row for row in rows}


def summary(snapshot: WeeklySnapshot) -> dict[str, Any]:
    """What the task logs and returns: the headline numbers of the week and the segment counts."""
    week, quarter = snapshot.get(WEEK), snapshot.get(QUARTER)
    per_segment: dict[str, int] = defaultdict(int)
    for span, segment, _key in snapshot.spans:
        if span == WEEK:
            per_segment[segment] += 1
    return {
        "week": snapshot.week.isoformat(),
        "responses_week": week.result.responses,
        "nps_week": week.result.shown(snapshot.min_responses),
        "responses_13w": quarter.result.responses,
        "nps_13w": quarter.result.shown(snapshot.min_responses),
        "response_rate_13w": None if quarter.rate is None else round(quarter.rate, 3),
        "segments": dict(per_segment),
    }
