"""Shared helpers of the check-in planning tests: load the registry, run a step, read rows back."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from icalendar import Calendar
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from auxeng.registry.lifecycle import mark_ended
from auxeng.registry.parse import parse_registry
from auxeng.registry.sync import sync_registry
from auxeng.settings import load_settings
from auxeng.store.models import CheckinRow, OutboxRow
from auxeng.vocabulary import MessageKind
from tests.conftest import DEMO_REGISTRY

KEY = b"test-secret-key-0123456789abcdef"
SETTINGS = load_settings({"AUXENG_PUBLIC_URL": "https://airflow.example.com/auxeng"})
DEMO_TEXT = DEMO_REGISTRY.read_text()
FIRST_RUN = date(2026, 11, 26)
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def moment(day: date, hour: int = 8) -> datetime:
    return datetime.combine(day, time(hour), UTC)


def load(store, text: str, as_of: date) -> None:
    sync_registry(store, parse_registry(text), source="test", now=moment(as_of, 5))
    mark_ended(store, as_of, now=moment(as_of, 5))


def run(store, step, as_of: date, *, now: datetime | None = None, settings=SETTINGS, **kwargs):
    """Run one planning step in its own committed transaction; its report."""
    with Session(store) as session:
        report = step(session, as_of=as_of, now=now or moment(as_of), settings=settings, key=KEY, **kwargs)
        session.commit()
    return report


def checkin(store, engagement: str) -> CheckinRow:
    with Session(store) as session:
        return session.scalars(select(CheckinRow).where(CheckinRow.engagement_key == engagement)).one()


def outbox(store, **where) -> list[OutboxRow]:
    with Session(store) as session:
        query = select(OutboxRow).order_by(OutboxRow.id)
        for name, value in where.items():
            query = query.where(getattr(OutboxRow, name) == value)
        return list(session.scalars(query))


def outbox_count(store) -> int:
    with Session(store) as session:
        return session.scalar(select(func.count()).select_from(OutboxRow))


def calendar(store, engagement: str, status: str | None = None) -> list[OutboxRow]:
    where = {"kind": MessageKind.CHECKIN_CALENDAR, "engagement_key": engagement}
    if status:
        where["status"] = status
    return outbox(store, **where)


def mark_sent(store, at: datetime | None = None) -> None:
    """What a drainer does: every pending message was delivered (at ``at``, default the first run's noon)."""
    with Session(store) as session:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.status == "pending")
            .values(status="sent", sent_at=at or moment(FIRST_RUN, 12))
        )
        session.commit()


def vevent(row: OutboxRow) -> tuple[Calendar, Calendar]:
    """The calendar of one message and its single VEVENT, parsed back with icalendar."""
    cal = Calendar.from_ical(row.payload["calendar"]["ics"])
    (event,) = cal.walk("VEVENT")
    return cal, event
