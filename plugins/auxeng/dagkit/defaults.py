"""Defaults shared by every DAG of the pack: owner, tags, retries, schedules, failure notifier."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from airflow.sdk import CronDataIntervalTimetable, CronTriggerTimetable

from auxeng.settings import load_settings

log = logging.getLogger("auxeng.failures")

OWNER = "auxeng-platform"
TAGS = ["auxeng"]
START_DATE = datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))


def notify_failure(context: dict[str, Any]) -> None:
    """Task failure callback (Airflow calls it once a try fails with no retry left).

    Logs one structured error line ops can grep and alert on, then alerts ops by
    email (``AUXENG_OPS_EMAILS``) and Slack (``AUXENG_OPS_SLACK_CHANNEL``) at most once
    per task-instance try (see :mod:`auxeng.ops.alerts`). Never raises.
    """
    ti = context.get("ti") or context.get("task_instance")
    exception = context.get("exception")
    ident = (
        getattr(ti, "dag_id", "?"),
        getattr(ti, "task_id", "?"),
        getattr(ti, "run_id", "?"),
        getattr(ti, "try_number", "?"),
    )
    log.error(
        "AuxEng task failed: dag_id=%s task_id=%s run_id=%s try=%s error=%s log=%s",
        *ident,
        f"{type(exception).__name__}: {exception}"[:1000] if exception else "unknown",
        getattr(ti, "log_url", ""),
    )
    try:
        from auxeng.ops.alerts import alert_failure  # not at parse time: DAG files import this module

        outcome = alert_failure(context)
    except Exception as exc:  # a callback that raises only adds noise to the task's failure
        log.error(
            "AuxEng ops alert failed: dag_id=%s task_id=%s run_id=%s try=%s error=%s",
            *ident,
            f"{type(exc).__name__}: {exc}",
            exc_info=True,
        )
    else:
        log.info("AuxEng ops alert: dag_id=%s task_id=%s run_id=%s try=%s: %s", *ident, outcome)


DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "on_failure_callback": notify_failure,
}


def daily_at(hour: int, minute: int = 0) -> CronTriggerTimetable:
    """A daily schedule at a wall-clock time in the program's time zone (``AUXENG_TIMEZONE``,
    an environment setting: safe to read at parse time, unlike Variables)."""
    return CronTriggerTimetable(f"{minute} {hour} * * *", timezone=str(load_settings().timezone))


def weekly_interval(weekday: int, hour: int, minute: int = 0) -> CronDataIntervalTimetable:
    """Weekly data intervals ending on ``weekday`` (cron numbering, 1 = Monday) at a wall-clock
    time in the program's time zone: a run covers the week before, and a backfill recomputes weeks."""
    return CronDataIntervalTimetable(f"{minute} {hour} * * {weekday}", timezone=str(load_settings().timezone))
