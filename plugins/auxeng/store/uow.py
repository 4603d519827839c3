"""Units of work: one task step, one transaction (rolled back on a dry run)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from auxeng.settings import load_settings
from auxeng.store.db import open_store

log = logging.getLogger(__name__)


def run_in_transaction(step: Callable[..., Any], *, dry_run: bool, **kwargs: Any) -> dict[str, Any]:
    """Run ``step(session, settings=…, **kwargs)`` in one transaction: committed, or rolled back
    on a dry run. Logs its summary and sample lines; returns the summary with ``dry_run``."""
    with Session(open_store()) as session:
        report = step(session, settings=load_settings(), **kwargs)
        if dry_run:
            session.rollback()
        else:
            session.commit()
    summary = report.summary()
    log.info("%s%s: %s", step.__name__, " (dry run, rolled back)" if dry_run else "", summary)
    for sample in getattr(report, "samples", []):
        log.info("  e.g. %s", sample)
    return {"dry_run": dry_run, **summary}
