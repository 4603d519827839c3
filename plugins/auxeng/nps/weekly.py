"""The weekly NPS aggregation: a week's snapshot, computed from stored weekly counts and stored.

A week is Monday 00:00 to the next Monday 00:00 in the program's time zone; the run
of Monday 07:00 computes the week that just ended. Its snapshot adds up the counts of
the 26 weeks ending with it, each computed once and stored (see
:mod:`auxeng.nps.week_counts`: a steady run computes only the new week), per segment kind:

* ``program``: the week, the week before, the 13 weeks ending with it, the 13 weeks
  before those, and the 13-week trend;
* ``org``, ``team``, ``survey``: the week and the 13 weeks ending with it (a key
  appears when it has answers or invitations in those 13 weeks).

The response rate of a span is: of the people invited (to the end-of-engagement or
check-in survey) during the span, the share who answered before the week's end.

Writing replaces the week's snapshot in one transaction: a re-run or a backfill
never duplicates a week.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from operator import add
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from auxeng.nps.maths import NpsResult, nps, response_rate
from auxeng.nps.queries import SEGMENTS, InvitationCounts, SegmentCounts
from auxeng.nps.week_counts import WeekCounts, counts_of, local_midnight
from auxeng.store.db import insert_rows
from auxeng.store.models import NpsSnapshotRow, NpsWeekRow
from auxeng.vocabulary import WEEKLY_NPS_HOUR

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


def next_weekly_run(moment: datetime, timezone: ZoneInfo) -> datetime:
    """When ``auxeng_weekly_nps`` next runs after ``moment``: the next Monday 07:00, local time."""
    local = moment.astimezone(timezone)
    monday = datetime.combine(week_of(local.date()), datetime.min.time(), timezone).replace(
        hour=WEEKLY_NPS_HOUR
    )
    return monday if monday > local else monday + timedelta(weeks=1)


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


def _spans_by_period(segment: str, periods: int) -> list[tuple[str, ...]]:
    """The spans each of the ``periods`` weekly periods (oldest first) counts towards."""
    last, quarter = periods - 1, periods - TREND_WEEKS
    program = segment == "program"
    spans: list[tuple[str, ...]] = []
    for index in range(periods):
        if index == last:
            spans.append((WEEK, QUARTER))
        elif index == last - 1 and program:
            spans.append((PREV_WEEK, QUARTER))
        elif index >= quarter:
            spans.append((QUARTER,))
        else:
            spans.append((PREV_QUARTER,) if program else ())
    return spans


def compute_week(
    session: Session, week: date, *, timezone: ZoneInfo, min_responses: int, now: datetime | None = None
) -> WeeklySnapshot:
    """The snapshot of the week starting on Monday ``week``, from the stored counts of its 26
    weeks (:func:`auxeng.nps.week_counts.counts_of`: only the weeks not stored yet, or
    changed since, are computed; those that had ended by ``now`` are stored)."""
    weeks = snapshot_weeks(week)
    quarter_from = weeks[-TREND_WEEKS]
    weekly = counts_of(
        session, weeks, timezone=timezone, now=now or datetime.now(UTC), quarter_from=quarter_from
    )
    answers, invitations = _totals(weekly, weeks)
    return snapshot_of(
        week, timezone=timezone, min_responses=min_responses, answers=answers, invitations=invitations
    )


def snapshot_weeks(week: date) -> list[date]:
    """The 26 Mondays a snapshot of ``week`` counts, oldest first (``week`` must be a Monday)."""
    if week.weekday() != 0:
        raise ValueError(f"a week starts on a Monday; {week} is a {week:%A}")
    return [week - timedelta(weeks=2 * TREND_WEEKS - 1 - n) for n in range(2 * TREND_WEEKS)]


Totals = dict[str, dict[tuple[str, int], list[int]]]  # segment → (key, week index) → counts


def snapshot_of(
    week: date, *, timezone: ZoneInfo, min_responses: int, answers: Totals, invitations: Totals
) -> WeeklySnapshot:
    """The snapshot of ``week`` from its 26 weeks' totals per segment and (key, week index):
    the answer counts (:class:`SegmentCounts`' order) and the invitations (invited, answered
    before ``week``'s end); a (key, week) is present when it has answers, or invitations."""
    days = [*snapshot_weeks(week), week + timedelta(weeks=1)]
    snapshot = WeeklySnapshot(
        week=week,
        starts_at=local_midnight(week, timezone),
        ends_at=local_midnight(week + timedelta(weeks=1), timezone),
        min_responses=min_responses,
    )
    periods = len(days) - 1
    empty = (0,) * 7
    for segment in SEGMENTS:
        spans = SPANS if segment == "program" else (WEEK, QUARTER)
        by_period = _spans_by_period(segment, periods)
        # (span, key) → promoters, passives, detractors, comfort total, comfort answers, invited, answered
        sums: dict[tuple[str, str], list[int]] = {}
        for totals, offset in ((answers[segment], 0), (invitations[segment], 5)):
            for (key, index), counts in totals.items():
                end = offset + len(counts)
                for span in by_period[index]:
                    total = sums.get((span, key))
                    if total is None:
                        total = sums[(span, key)] = [0] * 7
                    total[offset:end] = map(add, total[offset:end], counts)
        for key in sorted({key for _span, key in sums}):
            for span in spans:
                p, pa, d, mt, ma, invited, answered = sums.get((span, key), empty)
                snapshot.spans[(span, segment, key)] = Span(
                    SegmentCounts(segment, key, p, pa, d, mt, ma),
                    InvitationCounts(segment, key, invited, answered),
                )
    program_answers, program_invitations = answers["program"], invitations["program"]
    for index in range(periods - TREND_WEEKS, periods):
        promoters, passives, detractors, *_comfort = program_answers.get(("all", index), [0] * 5)
        invited, answered = program_invitations.get(("all", index), [0, 0])
        snapshot.trend.append(
            {
                "week": days[index].isoformat(),
                "promoters": promoters,
                "passives": passives,
                "detractors": detractors,
                "invited": invited,
                "answered": answered,
            }
        )
    return snapshot


def _totals(weekly: list[WeekCounts], weeks: list[date]) -> tuple[Totals, Totals]:
    """Per segment and (key, week index): the answer counts, and the invitations with those
    answered before the last week's end (answered by their week's end, plus the late answers
    the later weeks stored). A key has answers or invitations in each week it appears in.

    Segments other than the program count only the last week and the 13 weeks: their weeks
    before the last are added up at the first of the 13 (as the stored ones come, see
    :func:`auxeng.nps.week_counts.counts_of`), and the weeks before are left out."""
    last, quarter = len(weeks) - 1, len(weeks) - TREND_WEEKS
    index = {week: n for n, week in enumerate(weeks)}

    def slot(segment: str, week: date) -> int | None:
        n = index.get(week)
        if n is None or segment == "program" or n == last:
            return n
        return quarter if n >= quarter else None

    answers: Totals = {segment: {} for segment in SEGMENTS}
    invitations: Totals = {segment: {} for segment in SEGMENTS}
    for found in weekly:
        slots = {segment: slot(segment, found.week) for segment in SEGMENTS}
        for (segment, key), counts in found.counts.items():
            n = slots[segment]
            if n is None:
                continue
            if counts[0] or counts[1] or counts[2]:
                _add(answers[segment], (key, n), counts[:5])
            if counts[5]:
                _add(invitations[segment], (key, n), counts[5:])
    for found in weekly:
        for (invite_week, segment, key), answered in found.late.items():
            counts = invitations[segment].get((key, slot(segment, invite_week)))
            if counts is not None:
                counts[1] += answered
    return answers, invitations


def _add(totals: dict[tuple[str, int], list[int]], key: tuple[str, int], counts: list[int]) -> None:
    found = totals.get(key)
    if found is None:
        totals[key] = list(counts)
    else:
        found[:] = [a + b for a, b in zip(found, counts, strict=True)]


def save_week(session: Session, snapshot: WeeklySnapshot, *, run_id: str | None, now: datetime) -> int:
    """Replace the stored snapshot of ``snapshot.week`` with this one; returns the rows written."""
    session.execute(delete(NpsWeekRow).where(NpsWeekRow.week == snapshot.week))  # its rows: ON DELETE CASCADE
    session.execute(
        insert(NpsWeekRow.__table__).values(
            week=snapshot.week,
            starts_at=snapshot.starts_at,
            ends_at=snapshot.ends_at,
            min_responses=snapshot.min_responses,
            trend=snapshot.trend,
            run_id=run_id,
            computed_at=now,
        )
    )
    rows = []
    week, min_responses = snapshot.week, snapshot.min_responses
    results: dict[tuple[int, int, int], NpsResult] = {}  # many rows share their counts (e.g. none)
    for (span, segment, key), counts in sorted(snapshot.spans.items()):
        answers, invitations = counts.answers, counts.invitations
        answer_counts = (answers.promoters, answers.passives, answers.detractors)
        result = results.get(answer_counts)
        if result is None:
            result = results[answer_counts] = nps(*answer_counts)
        responses = result.responses
        rows.append(
            {
                "week": week,
                "span": span,
                "segment": segment,
                "key": key,
                "promoters": result.promoters,
                "passives": result.passives,
                "detractors": result.detractors,
                "responses": responses,
                "score": result.score,
                "ci_low": result.low,
                "ci_high": result.high,
                "suppressed": responses < min_responses,
                "invited": invitations.invited,
                "answered": invitations.answered,
                "response_rate": response_rate(invitations.answered, invitations.invited),
                "maintainability_answers": answers.maintainability_answers,
                "maintainability_mean": answers.maintainability_mean,
            }
        )
    insert_rows(session, NpsSnapshotRow.__table__, rows)
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
