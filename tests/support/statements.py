"""Counting the SQL statements a piece of code sends, and synthetic stores to plan on.

Statement counts are deterministic (unlike times): the tests assert them, and
``bench/planning.py`` prints them next to the seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from auxeng.dev.synthetic import synthetic_registry_yaml
from auxeng.registry.lifecycle import mark_ended
from auxeng.registry.parse import parse_registry
from auxeng.registry.sync import sync_registry
from auxeng.settings import Settings
from auxeng.surveys import invitations

# The synthetic registry spreads its engagements over 2024-2026: this day has engagements that
# ended within the last 30 days, and many that ended before (too old to survey).
PLAN_AS_OF = date(2025, 6, 2)
PLAN_NOW = datetime.combine(PLAN_AS_OF, time(8), UTC)
KEY = b"statements-key-0123456789abcdef!"


@dataclass
class Statements:
    """The statements sent through an engine while :func:`counting` was open."""

    sql: list[str] = field(default_factory=list)

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


def load_synthetic(engine: Engine, engagements: int, as_of: date = PLAN_AS_OF) -> None:
    """A store holding ``engagements`` synthetic engagements, those ended by ``as_of`` marked ended."""
    now = datetime.combine(as_of, time(5), UTC)
    sync_registry(engine, parse_registry(synthetic_registry_yaml(engagements)), source="synthetic", now=now)
    mark_ended(engine, as_of, now=now)


def plan_surveys(
    engine: Engine, settings: Settings, *, as_of: date = PLAN_AS_OF, now: datetime = PLAN_NOW
) -> tuple[invitations.PlanReport, Statements]:
    """Plan the survey invitations (one transaction, committed) and count its statements."""
    with counting(engine) as statements, Session(engine) as session:
        report = invitations.plan_invitations(session, as_of=as_of, now=now, settings=settings, key=KEY)
        session.commit()
    return report, statements
