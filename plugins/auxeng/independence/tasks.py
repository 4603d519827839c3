"""Task body of ``auxeng_weekly_nps``'s independence step (``compute_weekly_independence``)."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from auxeng.independence.snapshots import compute_week, save_week, summary
from auxeng.settings import load_settings
from auxeng.store.db import open_store

log = logging.getLogger(__name__)


def compute_weekly_independence(*, week: date, run_id: str | None, now: datetime) -> dict[str, Any]:
    """Compute and store (replacing) the independence snapshot of ``week`` (the Monday the weekly
    NPS step computed); logs every signal left out for bad stored data; returns the headline figures."""
    settings = load_settings()
    with Session(open_store()) as session:
        snapshot = compute_week(session, week, settings=settings, now=now)
        rows = save_week(session, snapshot, run_id=run_id, now=now)
        session.commit()
    for engagement, component, reason in snapshot.problems:
        log.warning("Week of %s, %s: %s left out: %s", week, engagement, component, reason)
    result = {**summary(snapshot), "rows": rows}
    log.info(
        "Week of %s: independence %s over %d scored engagements (of %d counted); independent at "
        "three months %s; goals achieved %s; %d rows written",
        week,
        result["score"],
        result["scored"],
        result["engagements"],
        result["independent"],
        result["goals_achieved"],
        rows,
    )
    return result
