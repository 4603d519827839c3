"""The lifecycle rules (Python and SQL agree), and detecting ended engagements: as of the run's
date, exactly once, cancellations excluded."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import or_, select
from sqlalchemy.orm import aliased

from auxeng.registry import lifecycle
from auxeng.registry.lifecycle import ended_engagements, is_due_to_end, mark_ended
from auxeng.registry.parse import parse_registry
from auxeng.registry.sync import sync_registry
from auxeng.store.db import session_scope
from auxeng.store.models import EngagementRevisionRow, EngagementRow, TeamRow
from tests.conftest import DEMO_REGISTRY
from tests.support.registry_edits import drop_engagement, edit_engagement

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
DEMO_TEXT = DEMO_REGISTRY.read_text()


@dataclass(frozen=True)
class State:
    status: str = "active"
    end_date: date = date(2026, 9, 25)
    ended_at: datetime | None = None
    removed_at: datetime | None = None


@pytest.mark.parametrize(
    ("state", "as_of", "expected"),
    [
        (State(), date(2026, 9, 25), False),  # its last day
        (State(), date(2026, 9, 26), True),  # the day after
        (State(), date(2025, 1, 1), False),
        (State(status="cancelled"), date(2026, 12, 1), False),
        (State(removed_at=NOW), date(2026, 12, 1), False),
        (State(ended_at=NOW), date(2026, 12, 1), False),  # already marked
    ],
)
def test_is_due_to_end(state, as_of, expected):
    assert is_due_to_end(state, as_of) is expected


@pytest.mark.parametrize(
    ("state", "live", "ended_and_live"),
    [
        (State(ended_at=NOW), True, True),
        (State(), True, False),  # running, planned, or reopened
        (State(ended_at=NOW, status="cancelled"), False, False),  # ended, then cancelled
        (State(ended_at=NOW, removed_at=NOW), False, False),  # ended, then removed
        (State(status="cancelled", removed_at=NOW), False, False),
    ],
)
def test_ended_and_live_is_ended_and_neither_removed_nor_cancelled(state, live, ended_and_live):
    assert lifecycle.is_live(state) is live
    assert lifecycle.is_ended_and_live(state) is ended_and_live


def _every_state(engine) -> dict[str, EngagementRow]:
    """One engagement per combination of status, ended, removed and end date (before or on 2026-11-26)."""
    combos = itertools.product(("active", "cancelled"), (None, NOW), (None, NOW), (25, 26))
    with session_scope(engine) as session:
        session.add(TeamRow(key="t", name="T", updated_at=NOW))
        session.flush()
        for n, (status, ended_at, removed_at, day) in enumerate(combos):
            session.add(
                EngagementRow(
                    key=f"E{n}",
                    title=f"E{n}",
                    host_team_key="t",
                    start_date=date(2026, 1, 1),
                    end_date=date(2026, 11, day),
                    status=status,
                    fingerprint="-",
                    created_at=NOW,
                    updated_at=NOW,
                    ended_at=ended_at,
                    removed_at=removed_at,
                )
            )
    with session_scope(engine) as session:
        rows = {row.key: row for row in session.scalars(select(EngagementRow))}
        session.expunge_all()
    return rows


def test_the_sql_clauses_select_what_the_python_predicates_accept(store):
    rows = _every_state(store)
    as_of = date(2026, 11, 26)
    rules = [
        (lifecycle.removed_clause, lifecycle.is_removed),
        (lifecycle.cancelled_clause, lifecycle.is_cancelled),
        (lifecycle.live_clause, lifecycle.is_live),
        (lifecycle.ended_clause, lifecycle.is_ended),
        (lifecycle.ended_and_live_clause, lifecycle.is_ended_and_live),
        (lambda c: lifecycle.due_to_end_clause(as_of, c), lambda e: is_due_to_end(e, as_of)),
    ]
    table, alias = EngagementRow.__table__, aliased(EngagementRow)
    with session_scope(store) as session:
        for clause, predicate in rules:
            expected = {key for key, row in rows.items() if predicate(row)}
            assert 0 < len(expected) < len(rows), predicate
            for columns, key_column in (
                (EngagementRow, EngagementRow.key),
                (table.c, table.c.key),
                (alias, alias.key),
            ):
                assert set(session.scalars(select(key_column).where(clause(columns)))) == expected, predicate
        # the delivery guards' causes (removed, cancelled, not ended) cover exactly what is not ended and live
        causes = or_(
            lifecycle.removed_clause(table.c),
            lifecycle.cancelled_clause(table.c),
            ~lifecycle.ended_clause(table.c),
        )
        unwanted = set(session.scalars(select(table.c.key).where(causes)))
        assert unwanted == {key for key, row in rows.items() if not lifecycle.is_ended_and_live(row)}


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
