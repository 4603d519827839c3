"""Task bodies of ``auxeng_send_surveys``: invitations, reminders and detractor alerts.

Each step runs in one transaction: committed normally, rolled back on a dry run
(which then only reports what it would have queued).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from auxeng.messaging.planner import run_planning_step
from auxeng.surveys import detractors, invitations
from auxeng.vocabulary import END_OF_ENGAGEMENT_SURVEYS

log = logging.getLogger(__name__)


def queue_invitations(as_of: date, now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """Invite the people of every engagement that ended recently (see :mod:`auxeng.surveys.invitations`)."""
    result = run_planning_step(invitations.plan_invitations, dry_run=dry_run, as_of=as_of, now=now)
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
    kinds: tuple[str, ...] = END_OF_ENGAGEMENT_SURVEYS,
) -> dict[str, Any]:
    """Remind the people who have not answered surveys of ``kinds`` yet."""
    return run_planning_step(invitations.plan_reminders, dry_run=dry_run, as_of=as_of, now=now, surveys=kinds)


def queue_detractor_alerts(now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """Alert the AuxEng leads about new detractor answers (see :mod:`auxeng.surveys.detractors`)."""
    return run_planning_step(detractors.plan_detractor_alerts, dry_run=dry_run, now=now)
