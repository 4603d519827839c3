"""Detecting ended engagements: as of the run's date, exactly once, cancellations excluded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from auxeng.registry.lifecycle import ended_engagements, has_ended, mark_ended
from auxeng.registry.parse import parse_registry
from auxeng.registry.sync import sync_registry
from auxeng.store.db import session_scope
from auxeng.store.models import EngagementRevisionRow
from tests.conftest import DEMO_REGISTRY
from tests.support.registry_edits import drop_engagement, edit_engagement

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
DEMO_TEXT = DEMO_REGISTRY.read_text()


@pytest.mark.parametrize(
    ("end", "status", "as_of", "expected"),
    [
        (date(2026, 9, 25), "active", date(2026, 9, 25), False),  # its last day
        (date(2026, 9, 25), "active", date(2026, 9, 26), True),  # the day after
        (date(2026, 9, 25), "active", date(2025, 1, 1), False),
        (date(2026, 9, 25), "cancelled", date(2026, 12, 1), False),
    ],
)
def test_has_ended(end, status, as_of, expected):
    assert has_ended(end, status, as_of) is expected


@pytest.fixture
def loaded(store):
    sync_registry(store, parse_registry(DEMO_TEXT), source="demo", now=NOW)
    return store


def _this_week(result):
    return [e.key for e in result.ended if e.end >= date(2026, 11, 20)]


def test_marks_each_engagement_once_and_never_cancelled_ones(loaded):
    first = mark_ended(loaded, date(2026, 11, 26), NOW)
    assert len(first.ended) == 32
    assert _this_week(first) == ["ENG-2026-031", "ENG-2026-039", "ENG-2026-032", "ENG-2026-033"]
    assert not {"ENG-2025-007", "ENG-2026-020", "ENG-2026-029"} & {e.key for e in first.ended}
    assert mark_ended(loaded, date(2026, 11, 26), NOW).ended == []
    assert [e.key for e in mark_ended(loaded, date(2026, 11, 28), NOW).ended] == ["ENG-2026-034"]
    with session_scope(loaded) as session:
        events = session.scalars(
            select(EngagementRevisionRow.event)
            .where(EngagementRevisionRow.engagement_key == "ENG-2026-033")
            .order_by(EngagementRevisionRow.revision)
        )
        assert list(events) == ["created", "ended"]


def test_backfill_in_any_order_marks_each_once(loaded):
    days = [date(2026, 11, d) for d in (28, 21, 24, 26, 22)]
    marked = [key for day in days for key in (e.key for e in mark_ended(loaded, day, NOW).ended)]
    assert len(marked) == len(set(marked)) == 33


def test_concurrent_runs_mark_each_once(loaded):
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: mark_ended(loaded, date(2026, 11, 26), NOW), range(4)))
    marked = [e.key for r in results for e in r.ended]
    assert len(marked) == len(set(marked)) == 32


def test_end_date_moved_later_reopens_the_engagement(loaded):
    mark_ended(loaded, date(2026, 11, 26), NOW)
    moved = edit_engagement(DEMO_TEXT, "ENG-2026-033", "end: 2026-11-25", "end: 2026-12-04")
    sync_registry(loaded, parse_registry(moved), source="demo", now=NOW)
    result = mark_ended(loaded, date(2026, 11, 27), NOW)
    assert (result.ended, result.reopened) == ([], ["ENG-2026-033"])
    assert "ENG-2026-033" not in {e.key for e in ended_engagements(loaded)}
    assert [e.key for e in mark_ended(loaded, date(2026, 12, 5), NOW).ended][-1] == "ENG-2026-033"


def test_backfill_of_an_earlier_day_does_not_reopen(loaded):
    mark_ended(loaded, date(2026, 11, 26), NOW)
    result = mark_ended(loaded, date(2026, 11, 21), NOW)
    assert (result.ended, result.reopened) == ([], [])


def test_removed_engagements_never_end(loaded):
    sync_registry(loaded, parse_registry(drop_engagement(DEMO_TEXT, "ENG-2026-033")), source="demo", now=NOW)
    assert "ENG-2026-033" not in {e.key for e in mark_ended(loaded, date(2026, 11, 26), NOW).ended}
