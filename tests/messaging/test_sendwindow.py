"""Working-hours send windows: weekdays 09:00-17:00 in the recipient's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from auxeng.messaging.sendwindow import SendWindow, person_timezone, window_from_payload

BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "earliest", "expected"),
    [
        # Thursday 2026-11-26, 06:00 UTC = 07:00 Berlin: wait for 09:00 Berlin (08:00 UTC)
        (BERLIN, utc(2026, 11, 26, 6, 0), utc(2026, 11, 26, 8, 0)),
        # inside the window, rounded up to the next quarter hour
        (BERLIN, utc(2026, 11, 26, 10, 7), utc(2026, 11, 26, 10, 15)),
        (BERLIN, utc(2026, 11, 26, 10, 15), utc(2026, 11, 26, 10, 15)),
        # 16:50 Berlin rounds to 17:00, the window's end (exclusive): next morning
        (BERLIN, utc(2026, 11, 26, 15, 50), utc(2026, 11, 27, 8, 0)),
        # Friday evening: Monday 09:00
        (BERLIN, utc(2026, 11, 27, 18, 0), utc(2026, 11, 30, 8, 0)),
        # Saturday: Monday
        (BERLIN, utc(2026, 11, 28, 10, 0), utc(2026, 11, 30, 8, 0)),
        # half-hour offset: 09:00 in Kolkata is 03:30 UTC
        (KOLKATA, utc(2026, 11, 26, 0, 0), utc(2026, 11, 26, 3, 30)),
        # DST: on Monday 2026-03-30 Berlin is UTC+2, so 09:00 is 07:00 UTC
        (BERLIN, utc(2026, 3, 28, 12, 0), utc(2026, 3, 30, 7, 0)),
    ],
)
def test_next_opening(zone, earliest, expected):
    window = SendWindow(zone)
    opening = window.next_opening(earliest)
    assert opening == expected
    assert window.contains(opening)


def test_contains_is_weekdays_nine_to_five_local():
    window = SendWindow(BERLIN)
    assert window.contains(utc(2026, 11, 26, 8, 0))  # 09:00 Thursday
    assert not window.contains(utc(2026, 11, 26, 16, 0))  # 17:00
    assert not window.contains(utc(2026, 11, 26, 7, 59))
    assert not window.contains(utc(2026, 11, 28, 10, 0))  # Saturday


def test_custom_hours_and_payload_round_trip():
    window = SendWindow(KOLKATA, time(10), time(12, 30))
    restored = window_from_payload({"send_window": window.as_payload()})
    assert restored == window
    assert window_from_payload({}) is None


def test_person_timezone_falls_back_to_the_default():
    default = ZoneInfo("UTC")
    assert person_timezone("Europe/Berlin", default) == BERLIN
    assert person_timezone(None, default) is default
    assert person_timezone("Mars/Base", default) is default
