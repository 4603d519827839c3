"""Task bodies of ``auxeng_weekly_nps`` and ``auxeng_weekly_digest``."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from auxeng import tokens
from auxeng.digest import DigestReport, latest_week, plan_digest
from auxeng.settings import Settings, load_settings
from auxeng.store.db import open_store
from auxeng.store.models import NpsWeekRow
from auxeng.weekly_nps import compute_week, save_week, summary, week_to_report

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


def compute_weekly_nps(
    interval_end: datetime, *, run_id: str | None, week: date | None, now: datetime
) -> dict[str, Any]:
    """Compute and store (replacing) the snapshot of the week that ended before ``interval_end``
    (or of ``week``); returns the headline numbers."""
    settings = load_settings()
    week = week or week_to_report(interval_end, settings.timezone)
    with Session(open_store()) as session:
        snapshot = compute_week(
            session, week, timezone=settings.timezone, min_responses=settings.nps_min_responses
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


def queue_digest(moment: datetime, *, week: date | None, dry_run: bool = False) -> dict[str, Any]:
    """Queue the digest of ``week`` (else the newest computed week) unless that week is stale.

    A backfill announces old weeks too: a week that ended more than
    ``AUXENG_DIGEST_MAX_AGE_DAYS`` before the run is recomputed but not sent.
    """
    settings = load_settings()
    with Session(open_store()) as session:
        week = week or latest_week(session, moment)
        if week is None:
            log.warning("No weekly NPS snapshot yet: run auxeng_weekly_nps first; nothing to send")
            return DigestReport(week="", status="no snapshot").summary()
        header = session.get(NpsWeekRow, week)
        if header is not None and header.ends_at + timedelta(days=settings.digest_max_age_days) < moment:
            log.info(
                "The week of %s ended on %s, more than %d days before this run: a backfill; no digest sent",
                week,
                header.ends_at.date(),
                settings.digest_max_age_days,
            )
            return DigestReport(week=week.isoformat(), status="stale week, not sent").summary()
        report = plan_digest(
            session,
            settings=settings,
            key=tokens.secret_key(),
            week=week,
            now=moment,
            slack_chart=slack_can_upload(settings),
        )
        if dry_run:
            session.rollback()
        else:
            session.commit()
    verb = "would queue" if dry_run else "queued"
    log.info("Digest of the week of %s: %s %s", week, verb, report.summary())
    for sample in report.samples:
        log.info("  %s", sample)
    return {"dry_run": dry_run, **report.summary()}
