"""Counting the SQL statements a piece of code sends, and synthetic stores to plan on.

Statement counts are deterministic (unlike times): the tests assert them, and
``bench/planning.py`` prints them next to the seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from time import perf_counter
from typing import Any

from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session

from auxeng.checkins import follow_ups, planning
from auxeng.dev.synthetic import synthetic_registry_yaml
from auxeng.registry.lifecycle import mark_ended
from auxeng.registry.parse import Registry, parse_registry
from auxeng.registry.sync import sync_registry
from auxeng.settings import Settings
from auxeng.store.models import CheckinRow, EngagementRow, OutboxRow
from auxeng.surveys import invitations
from auxeng.vocabulary import EngagementStatus, MessageKind, OutboxStatus, SurveyKind

# The synthetic registry spreads its engagements over 2024-2026: this day has engagements that
# ended within the last 30 days, and many that ended before (too old to survey).
PLAN_AS_OF = date(2025, 6, 2)
PLAN_NOW = datetime.combine(PLAN_AS_OF, time(8), UTC)
KEY = b"statements-key-0123456789abcdef!"
# Statements a planning step may take on a large store beyond its count on a small one: a few
# executemany pages (SQLAlchemy's 1,000-row insertmanyvalues pages, the outbox's 500-row chunks,
# 200 withdrawals per UPDATE) and the ORM's UPDATE executemany, one per set of changed columns
# (a large store may show a few more kinds of change). Not per row: the count stays flat.
ALLOWANCE = 10


@dataclass
class Statements:
    """The statements sent through an engine while :func:`counting` was open."""

    sql: list[str] = field(default_factory=list)
    seconds: float = 0.0  # how long the counted block took (shown by the bench, never asserted)

    def __len__(self) -> int:
        return len(self.sql)

    def inserts(self, table: str) -> int:
        return sum(1 for s in self.sql if s.lstrip().upper().startswith(f"INSERT INTO {table.upper()} "))

    def by_verb(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.sql:
            verb = s.split(None, 1)[0].upper() if s.strip() else "?"
            counts[verb] = counts.get(verb, 0) + 1
        return counts


@contextmanager
def counting(engine: Engine) -> Iterator[Statements]:
    """Record every statement sent to the database (an executemany is one statement per batch
    the driver gets, as SQLAlchemy's ``insertmanyvalues`` pages it)."""
    found = Statements()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        found.sql.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", record)


def fresh_store(store_url: str, tmp_path: Any, name: str) -> Engine:
    """An empty migrated store: a new SQLite file ``name`` in ``tmp_path``, or the test's PostgreSQL
    database emptied (``store_url`` from the ``store_url`` fixture)."""
    from auxeng.store.db import open_store
    from tests.conftest import _reset_postgres

    if store_url.startswith("sqlite"):
        return open_store(f"sqlite:///{tmp_path / name}")
    _reset_postgres(store_url)
    return open_store(store_url)


@lru_cache(maxsize=4)
def _synthetic_registry(engagements: int) -> Registry:
    """The parsed synthetic registry (frozen: parsed once per size and process, for each backend)."""
    return parse_registry(synthetic_registry_yaml(engagements))


def load_synthetic(engine: Engine, engagements: int, as_of: date = PLAN_AS_OF) -> None:
    """A store holding ``engagements`` synthetic engagements, those ended by ``as_of`` marked ended."""
    now = datetime.combine(as_of, time(5), UTC)
    sync_registry(engine, _synthetic_registry(engagements), source="synthetic", now=now)
    mark_ended(engine, as_of, now=now)


def plan_surveys(
    engine: Engine, settings: Settings, *, as_of: date = PLAN_AS_OF, now: datetime = PLAN_NOW
) -> tuple[invitations.PlanReport, Statements]:
    """Plan the survey invitations (one transaction, committed) and count its statements."""
    with counting(engine) as statements, Session(engine) as session:
        report = invitations.plan_invitations(session, as_of=as_of, now=now, settings=settings, key=KEY)
        session.commit()
    return report, statements


def plan_step(
    engine: Engine, step: Callable[..., Any], settings: Settings, *, as_of: date | None, **options: Any
) -> tuple[Any, Statements]:
    """Run one planning step as its task does (one transaction, committed), counting its statements.
    ``as_of`` None: the step takes no date (e.g. detractor alerts). The run's clock is 08:00 UTC that day."""
    now = datetime.combine(as_of or PLAN_AS_OF, time(8), UTC)
    dated = {"as_of": as_of} if as_of is not None else {}
    start = perf_counter()
    with counting(engine) as statements, Session(engine) as session:
        report = step(session, now=now, settings=settings, key=KEY, **dated, **options)
        session.commit()
    statements.seconds = perf_counter() - start
    return report, statements


def _all_sent(engine: Engine, at: datetime) -> None:
    """Everything queued went out at ``at`` (as if delivered)."""
    with engine.begin() as conn:
        conn.execute(
            update(OutboxRow)
            .where(OutboxRow.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.SENT, sent_at=at, updated_at=at)
        )


def _move_and_cancel(engine: Engine, at: datetime) -> None:
    """Of the check-ins with a calendar invitation queued: every other one's invitation went out at
    ``at``; then a third of their engagements end a week later and another third are cancelled."""
    with engine.begin() as conn:
        keys = sorted(
            conn.scalars(select(CheckinRow.engagement_key).where(CheckinRow.calendar_method == "REQUEST"))
        )
        sent = [
            f"{MessageKind.CHECKIN_CALENDAR}:{c.id}:"
            for n, c in enumerate(
                conn.execute(
                    select(CheckinRow.id).where(CheckinRow.engagement_key.in_(keys)).order_by(CheckinRow.id)
                )
            )
            if n % 2 == 0
        ]
        for prefix in sent:
            conn.execute(
                update(OutboxRow)
                .where(OutboxRow.dedupe_key.startswith(prefix), OutboxRow.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.SENT, sent_at=at, updated_at=at)
            )
        moved = conn.execute(
            select(EngagementRow.key, EngagementRow.end_date).where(EngagementRow.key.in_(keys[0::3]))
        )
        for key, end in list(moved):
            conn.execute(
                update(EngagementRow).where(EngagementRow.key == key).values(end_date=end + timedelta(days=7))
            )
        conn.execute(
            update(EngagementRow)
            .where(EngagementRow.key.in_(keys[1::3]))
            .values(status=EngagementStatus.CANCELLED)
        )


def planning_story(engine: Engine, settings: Settings) -> dict[str, tuple[Any, Statements]]:
    """Every planning step of the survey and check-in DAGs, in the order a store lives them, on a
    store from :func:`load_synthetic` (all its engagements followed up monthly). Returns each
    step's report and statements, by step name. The work of each step grows with the store.

    Survey invitations on :data:`PLAN_AS_OF` (delivered 3 hours later), their reminders 4 days
    later; check-ins scheduled that day (new ones, most past the catch-up cut-off) and 20 days
    later (calendar invitations; then, half of those sent, a third of their engagements moved
    and a third cancelled: updates, withdrawals and cancellations), surveyed both days, delivered on day 21 and reminded on day 25,
    closed on day 40; monthly follow-ups on day 0 (new ones) and day 31 (the next month's).
    """
    with engine.begin() as conn:
        conn.execute(update(EngagementRow).values(follow_up="monthly"))
    day = PLAN_AS_OF
    story: dict[str, tuple[Any, Statements]] = {}

    def run(name: str, step: Callable[..., Any], days: int, **options: Any) -> None:
        story[name] = plan_step(engine, step, settings, as_of=day + timedelta(days=days), **options)

    run("survey invitations", invitations.plan_invitations, 0)
    _all_sent(engine, PLAN_NOW + timedelta(hours=3))
    run("survey reminders", invitations.plan_reminders, 4)
    run("check-ins: new", planning.schedule_checkins, 0)
    run("check-in surveys: day 0", planning.send_checkin_surveys, 0)
    run("check-ins: calendar", planning.schedule_checkins, 20)
    _move_and_cancel(engine, PLAN_NOW + timedelta(days=20, hours=2))
    run("check-ins: moved, cancelled", planning.schedule_checkins, 20)
    run("check-in surveys: day 20", planning.send_checkin_surveys, 20)
    _all_sent(engine, PLAN_NOW + timedelta(days=21))
    run("check-in reminders", invitations.plan_reminders, 25, surveys=(SurveyKind.CHECKIN,))
    run("check-ins: close", planning.close_checkins, 40)
    run("follow-ups: new", follow_ups.plan_follow_ups, 0)
    run("follow-ups: next month", follow_ups.plan_follow_ups, 31)
    return story
