"""Task bodies of ``auxeng_checkins`` and ``auxeng_checkin_override``.

Each step runs in one transaction (rolled back on a dry run); see
:mod:`auxeng.checkins.planning` and :mod:`auxeng.checkins.follow_ups` for the rules.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from auxeng.checkins import follow_ups, overrides, planning
from auxeng.messaging.planner import run_planning_step
from auxeng.settings import load_settings
from auxeng.store.db import open_store
from auxeng.surveys.tasks import queue_reminders
from auxeng.vocabulary import SurveyKind

log = logging.getLogger(__name__)


def schedule_checkins(as_of: date, now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """Keep one check-in per ended engagement; send, update or cancel calendar invitations."""
    result = run_planning_step(planning.schedule_checkins, dry_run=dry_run, as_of=as_of, now=now)
    if result["missed"]:
        log.info("Check-ins past the catch-up cut-off, recorded as missed: %s", ", ".join(result["missed"]))
    return result


def send_checkin_surveys(as_of: date, now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    return run_planning_step(planning.send_checkin_surveys, dry_run=dry_run, as_of=as_of, now=now)


def queue_checkin_reminders(as_of: date, now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    return queue_reminders(as_of, now, dry_run=dry_run, kinds=(SurveyKind.CHECKIN,))


def close_checkins(as_of: date, now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    return run_planning_step(planning.close_checkins, dry_run=dry_run, as_of=as_of, now=now)


def queue_follow_ups(as_of: date, now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    return run_planning_step(follow_ups.plan_follow_ups, dry_run=dry_run, as_of=as_of, now=now)


def apply_override(
    *,
    engagement_key: str,
    action: str,
    reason: str,
    requested_by: str,
    new_due: str | None,
    as_of: date,
    now: datetime,
) -> dict[str, Any]:
    """Apply one manual override (committed) and log it; raises :class:`auxeng.checkins.overrides.OverrideError`."""
    with Session(open_store()) as session:
        result = overrides.apply_override(
            session,
            engagement_key=engagement_key,
            action=action,
            reason=reason,
            requested_by=requested_by,
            new_due=new_due,
            as_of=as_of,
            now=now,
            settings=load_settings(),
        )
        session.commit()
    log.info("Override applied: %s", result.summary())
    return result.summary()
