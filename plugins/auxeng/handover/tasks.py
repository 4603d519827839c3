"""Task body of the handover step of ``auxeng_checkins``: one transaction, rolled back on a dry run
(see :mod:`auxeng.handover.planning` for the rules)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from auxeng.handover import planning
from auxeng.messaging.planner import run_planning_step


def queue_handovers(as_of: date, now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """Queue the end-of-engagement handover of every recently ended engagement, once per person."""
    return run_planning_step(planning.plan_handovers, dry_run=dry_run, as_of=as_of, now=now)
