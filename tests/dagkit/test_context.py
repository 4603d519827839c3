""" "Today" for a run: its logical date, or run_after, in the program's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from auxeng.dagkit.context import run_date

RUN_AFTER = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("timezone", "logical_date", "expected"),
    [
        ("UTC", datetime(2026, 11, 26, 5, 30, tzinfo=UTC), date(2026, 11, 26)),
        ("Asia/Tokyo", datetime(2026, 11, 25, 20, 30, tzinfo=UTC), date(2026, 11, 26)),  # 05:30 in Tokyo
        ("America/Los_Angeles", datetime(2026, 11, 26, 13, 30, tzinfo=UTC), date(2026, 11, 26)),
        ("UTC", None, date(2026, 11, 27)),  # asset-triggered or manual: run_after
        ("Asia/Tokyo", None, date(2026, 11, 28)),
    ],
)
def test_run_date(monkeypatch, timezone, logical_date, expected):
    monkeypatch.setenv("AUXENG_TIMEZONE", timezone)
    context = {"logical_date": logical_date, "dag_run": SimpleNamespace(run_after=RUN_AFTER)}
    assert run_date(context) == expected


def test_run_moment_is_a_plain_utc_datetime_even_from_pendulum():
    import pendulum

    from auxeng.dagkit.context import run_moment

    logical = pendulum.datetime(2026, 11, 26, 9, 30, tz="Europe/Berlin")
    moment = run_moment({"logical_date": logical, "dag_run": None})
    assert type(moment) is datetime and moment == datetime(2026, 11, 26, 8, 30, tzinfo=UTC)
    assert run_moment({"logical_date": None, "dag_run": SimpleNamespace(run_after=RUN_AFTER)}) == RUN_AFTER
