"""Task bodies of ``auxeng_weekly_nps`` and ``auxeng_weekly_digest``."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from auxeng.dagkit.assets import NPS_WEEKLY
from auxeng.messaging.planner import run_planning_step
from auxeng.nps.digest import plan_weekly_digest
from auxeng.nps.weekly import compute_week, save_week, summary, week_to_report
from auxeng.settings import Settings, load_settings
from auxeng.store.db import open_store

log = logging.getLogger(__name__)


def parse_week(raw: str | None) -> date | None:
    """A ``week`` param: a Monday as YYYY-MM-DD, or empty."""
    if raw is None or not str(raw).strip():
        return None
    try:
        week = date.fromisoformat(str(raw).strip())
    except ValueError as exc:
        raise ValueError(f"week={raw!r} is not a date (YYYY-MM-DD of a Monday)") from exc
    if week.weekday() != 0:
        raise ValueError(f"week={raw!r} is a {week:%A}; give the Monday the week starts on")
    return week


def week_param(raw: str | None) -> date | None:
    """:func:`parse_week` for a DAG's ``week`` param: a bad value fails the run at once
    (no retries: retrying cannot fix it), naming the param."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return parse_week(raw)
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from exc


def compute_weekly_nps(
    interval_end: datetime, *, run_id: str | None, week: date | None, now: datetime
) -> dict[str, Any]:
    """Compute and store (replacing) the snapshot of the week that ended before ``interval_end``
    (or of ``week``); returns the headline numbers."""
    settings = load_settings()
    week = week or week_to_report(interval_end, settings.timezone)
    with Session(open_store()) as session:
        snapshot = compute_week(
            session, week, timezone=settings.timezone, min_responses=settings.nps_min_responses, now=now
        )
        rows = save_week(session, snapshot, run_id=run_id, now=now)
        session.commit()
    result = {**summary(snapshot), "rows": rows}
    log.info(
        "Week of %s: NPS %s this week, %s over 13 weeks; %d snapshot rows written",
        week,
        result["nps_week"],
        result["nps_13w"],
        rows,
    )
    return result


def slack_can_upload(settings: Settings) -> bool:
    """Whether the Slack side of delivery can upload files: a Slack API connection or the dev outbox."""
    from auxeng.delivery.resolve import resolve_transports

    transports, _missing = resolve_transports(settings, channels=("slack",))
    transport = transports.get("slack")
    return transport is not None and transport.name in {"slack_api", "dev"}


def announced_week(context: Any) -> str | None:
    """The week the newest ``auxeng://nps/weekly`` event that triggered this run announced."""
    events = context.get("triggering_asset_events") or {}
    for event in reversed(list(events.get(NPS_WEEKLY, []))):
        week = (event.extra or {}).get("week")
        if week:
            return week
    return None


def queue_digest(moment: datetime, *, week: date | None, dry_run: bool = False) -> dict[str, Any]:
    """Queue the digest of ``week`` (else the newest computed week); see :func:`auxeng.nps.digest.plan_weekly_digest`."""
    return run_planning_step(
        plan_weekly_digest,
        dry_run=dry_run,
        now=moment,
        week=week,
        slack_chart=slack_can_upload(load_settings()),
    )
