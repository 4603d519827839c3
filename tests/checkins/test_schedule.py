"""Check-in scheduling (pure): due dates across month ends, invitation day, meeting slot, cut-off."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from auxeng.checkins.schedule import add_months, due_date, invitation_date, is_stale, meeting_slot

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (date(2026, 11, 20), date(2027, 2, 20)),
        (date(2026, 11, 28), date(2027, 2, 28)),
        (date(2026, 11, 29), date(2027, 2, 28)),  # no 29 February in 2027
        (date(2026, 11, 30), date(2027, 2, 28)),
        (date(2027, 11, 30), date(2028, 2, 29)),  # leap year
        (date(2026, 5, 31), date(2026, 8, 31)),
        (date(2026, 3, 31), date(2026, 6, 30)),
        (date(2026, 10, 31), date(2027, 1, 31)),  # across the year
    ],
)
def test_due_date_is_three_calendar_months_later_clamped_to_the_month(end, expected):
    assert due_date(end) == expected


def test_offsets_and_invitation_day():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 1, 31), 12) == date(2027, 1, 31)
    assert due_date(date(2026, 11, 20), 6) == date(2027, 5, 20)
    assert invitation_date(date(2027, 2, 24)) == date(2027, 2, 17)  # Wednesday: a week before
    assert invitation_date(date(2027, 2, 20), 10) == date(2027, 2, 10)


@pytest.mark.parametrize(
    ("due", "queued"),
    [
        (date(2027, 2, 20), date(2027, 2, 12)),  # a week before is a Saturday: the Friday before
        (date(2027, 2, 21), date(2027, 2, 12)),  # a Sunday: the Friday too
        (date(2027, 2, 22), date(2027, 2, 15)),  # a Monday: as is
    ],
)
def test_the_calendar_invitation_reaches_people_at_least_a_week_ahead(due, queued):
    """People get messages on working days: an invitation queued on a weekend would arrive on the
    Monday, five or six days ahead; it is queued on the Friday before instead."""
    assert invitation_date(due) == queued
    assert queued.weekday() < 5
    assert (due - queued).days >= 7


def test_stale_check_ins_are_not_scheduled_on_catch_up():
    assert not is_stale(date(2026, 11, 1), date(2026, 11, 24), 30)
    assert is_stale(date(2026, 10, 1), date(2026, 11, 24), 30)


def test_meeting_slot_is_half_an_hour_in_the_managers_working_hours():
    slot = meeting_slot(date(2027, 2, 22), BERLIN)  # a Monday
    assert slot.start == datetime(2027, 2, 22, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    assert (slot.end - slot.start).total_seconds() == 1800
    assert slot.local_day == date(2027, 2, 22)


def test_meeting_slot_on_a_weekend_moves_to_monday_and_never_ends_after_hours():
    saturday = meeting_slot(date(2027, 2, 20), BERLIN)
    assert saturday.local_day == date(2027, 2, 22)
    late = meeting_slot(date(2027, 2, 22), BERLIN, start_at=time(16, 50))
    assert late.end.astimezone(BERLIN).time() == time(17)
    with pytest.raises(ValueError, match="one minute"):
        meeting_slot(date(2027, 2, 22), BERLIN, minutes=0)


def test_the_checkin_survey_asks_maintainability_help_and_nps():
    from auxeng.surveys.questions import validate_answers

    good = {"maintainability": "2", "help_needed": "regularly", "not_taken_over": "the alerts", "nps": "6"}
    answers, errors = validate_answers("checkin", good)
    assert errors == []
    assert answers["maintainability"] == 2 and answers["help_needed"] == "regularly" and answers["nps"] == 6
    _, errors = validate_answers("checkin", {**good, "maintainability": "6", "help_needed": "daily"})
    assert sorted(e.field for e in errors) == ["help_needed", "maintainability"]
