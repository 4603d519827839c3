"""When the weekly NPS runs next, and when a week is too old for its digest: the rules the dashboard
states in its empty states, shared with the DAG and the digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from auxeng.nps.digest import too_old_to_send
from auxeng.nps.weekly import next_weekly_run

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 27, 10, 30, tzinfo=UTC), datetime(2026, 11, 30, 7, tzinfo=BERLIN)),  # a Friday
        (datetime(2026, 11, 30, 5, 59, tzinfo=UTC), datetime(2026, 11, 30, 7, tzinfo=BERLIN)),  # Monday 06:59
        (datetime(2026, 11, 30, 6, 0, tzinfo=UTC), datetime(2026, 12, 7, 7, tzinfo=BERLIN)),  # Monday 07:00
        (
            datetime(2026, 10, 24, 12, tzinfo=UTC),
            datetime(2026, 10, 26, 7, tzinfo=BERLIN),
        ),  # over the DST change
    ],
)
def test_the_next_weekly_run_is_the_next_monday_7_00_local_time(now, expected):
    assert next_weekly_run(now, BERLIN) == expected


def test_a_week_is_too_old_for_its_digest_after_the_max_age():
    ended = datetime(2026, 11, 23, tzinfo=UTC)
    assert not too_old_to_send(ended, ended + timedelta(days=6), 6)
    assert too_old_to_send(ended, ended + timedelta(days=6, seconds=1), 6)
