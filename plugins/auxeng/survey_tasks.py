"""Task bodies of ``auxeng_send_surveys`` and ``auxeng_deliver_outbox``.

Each planning step runs in one transaction: committed normally, rolled back
on a dry run (which then only reports what it would have queued).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from auxeng import surveys, tokens
from auxeng.settings import load_settings
from auxeng.store.db import open_store

log = logging.getLogger(__name__)


def run_planning_step(step: Callable[..., Any], *, dry_run: bool, **kwargs: Any) -> dict[str, Any]:
    settings = load_settings()
    key = tokens.secret_key()
    with Session(open_store()) as session:
        report = step(session, settings=settings, key=key, **kwargs)
        if dry_run:
            session.rollback()
        else:
            session.commit()
    verb = "would queue" if dry_run else "queued"
    log.info("%s: %s %s", step.__name__, verb, report.summary())
    for sample in report.samples:
        log.info("  e.g. %s", sample)
    return {"dry_run": dry_run, **report.summary()}


def queue_invitations(as_of: date, now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """Invite the people of every engagement that ended recently (see :mod:`auxeng.surveys`)."""
    result = run_planning_step(surveys.plan_invitations, dry_run=dry_run, as_of=as_of, now=now)
    if result["too_old_to_survey"]:
        log.info(
            "Not surveyed, ended more than 30 days before %s: %s",
            as_of,
            ", ".join(result["too_old_to_survey"]),
        )
    return result


def queue_reminders(
    as_of: date,
    now: datetime,
    *,
    dry_run: bool = False,
    kinds: tuple[str, ...] = surveys.END_OF_ENGAGEMENT_SURVEYS,
) -> dict[str, Any]:
    """Remind the people who have not answered surveys of ``kinds`` yet."""
    return run_planning_step(surveys.plan_reminders, dry_run=dry_run, as_of=as_of, now=now, surveys=kinds)


def queue_detractor_alerts(now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    return run_planning_step(surveys.plan_detractor_alerts, dry_run=dry_run, now=now)


def deliver_outbox(
    now: datetime, *, dry_run: bool = False, kinds: Iterable[str] | None = None
) -> dict[str, Any]:
    """Send every due message (of ``kinds``, or all); fail (and be retried) if any could not go out."""
    from auxeng.delivery import deliver

    report = deliver(open_store(), now=now, settings=load_settings(), dry_run=dry_run, kinds=kinds)
    log.info("Delivery%s: %s", " (dry run)" if dry_run else "", report.summary())
    if not dry_run:
        report.raise_for_problems()
    return report.summary()
