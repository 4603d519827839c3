"""When a three-month check-in is due, when its invitation goes out, and its meeting slot.

Pure functions, no Airflow and no database: the ``auxeng_checkins`` DAG builds on them.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SATURDAY = 5


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months, clamped to the last day of a shorter month.

    2026-11-30 + 3 months is 2027-02-28; 2027-11-29 + 3 months is 2028-02-29.
    """
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def is_repeat(previous_start: date, previous_end: date, next_start: date, months: int) -> bool:
    """THE repeat-engagement rule: the next engagement of the same host team starts after the
    previous one started (overlaps count) and at most ``months`` calendar months after its last day."""
    return previous_start < next_start <= add_months(previous_end, months)


def due_date(end: date, offset_months: int = 3) -> date:
    """The check-in's due date: ``offset_months`` calendar months after the engagement's last day."""
    return add_months(end, offset_months)


def invitation_date(due: date, lead_days: int = 7) -> date:
    """The day the calendar invitation is queued: ``lead_days`` before the due date, moved back to
    the Friday when that is a weekend. People get messages on working days only, so an invitation
    queued on a Saturday would reach them on the Monday, two days' notice short."""
    day = due - timedelta(days=lead_days)
    while day.weekday() >= SATURDAY:
        day -= timedelta(days=1)
    return day


def is_stale(due: date, as_of: date, cutoff_days: int) -> bool:
    """A check-in whose due date passed more than ``cutoff_days`` ago is not scheduled on catch-up."""
    return due < as_of - timedelta(days=cutoff_days)


@dataclass(frozen=True)
class MeetingSlot:
    start: datetime
    end: datetime
    timezone: ZoneInfo

    @property
    def local_day(self) -> date:
        return self.start.astimezone(self.timezone).date()


def meeting_slot(
    due: date,
    timezone: ZoneInfo,
    *,
    start_at: time = time(10),
    minutes: int = 30,
    day_end: time = time(17),
) -> MeetingSlot:
    """A ``minutes``-long slot on the due date at ``start_at`` local time, inside working hours.

    A due date on a weekend moves to the following Monday; a start that would
    end after ``day_end`` is pulled back so the meeting ends by then.
    """
    if minutes <= 0:
        raise ValueError("a meeting lasts at least one minute")
    day = due
    while day.weekday() >= 5:
        day += timedelta(days=1)
    start = datetime.combine(day, start_at, timezone)
    latest = datetime.combine(day, day_end, timezone) - timedelta(minutes=minutes)
    start = min(start, latest)
    return MeetingSlot(
        start=start.astimezone(UTC),
        end=(start + timedelta(minutes=minutes)).astimezone(UTC),
        timezone=timezone,
    )
