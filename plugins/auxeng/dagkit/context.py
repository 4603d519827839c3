"""Helpers for code running inside a task: the run's date, the store, the clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from auxeng.settings import load_settings


def run_date(context: dict[str, Any]) -> date:
    """The day a run acts for, in the program's time zone.

    Scheduled and backfilled runs use their logical date; asset-triggered and
    manual runs (which have none) use ``run_after``. Never wall-clock now.
    """
    moment = context.get("logical_date") or context["dag_run"].run_after
    return moment.astimezone(load_settings().timezone).date()


def utcnow() -> datetime:
    """Timestamp for bookkeeping columns (when something was recorded)."""
    return datetime.now(tz=UTC)


def run_moment(context: dict[str, Any]) -> datetime:
    """The moment a run acts for (UTC): its logical date, or ``run_after`` when it has none.

    Send windows and due messages are judged against this, so a replay of a past
    run sends what that run would have sent, and nothing at night.
    """
    moment = context.get("logical_date") or context["dag_run"].run_after
    # a plain datetime: Airflow hands out pendulum objects, whose arithmetic can drop the zone
    return datetime.fromtimestamp(moment.timestamp(), tz=UTC)
