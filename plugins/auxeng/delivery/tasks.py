"""Task bodies that drain the outbox: ``deliver_outbox`` (every sending DAG) and its summary."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from auxeng import vocabulary
from auxeng.settings import load_settings
from auxeng.store.db import open_store

log = logging.getLogger(__name__)

MAX_DRAINERS = vocabulary.MAX_DRAINERS
SUMMARY_KEY = vocabulary.DRAINER_SUMMARY_KEY


def drainer_slots(drainers: int) -> list[int]:
    """``[0, 1, …, n - 1]``: one mapped ``deliver_outbox`` instance each (``n`` kept within 1..16)."""
    return list(range(min(max(int(drainers), 1), MAX_DRAINERS)))


def deliver_outbox(
    now: datetime,
    *,
    dry_run: bool = False,
    kinds: Iterable[str] | None = None,
    drainer: int | None = None,
    publish: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Send every due message (of ``kinds``, or all); fail (and be retried) if any could not go out.

    ``drainer`` numbers one of several instances draining the same outbox at once
    (rows are claimed atomically: each goes to exactly one of them). In a dry run
    only drainer 0 previews; the others return at once with ``idle`` set, so the
    preview is counted once. ``publish`` gets the summary before the task returns
    *or fails* (the DAG pushes it to XCom, where ``summarize`` finds it); when due
    messages were left undelivered it carries their ``incomplete`` lines.
    """
    if dry_run and drainer:
        summary = {"now": now.isoformat(), "dry_run": True, "drainer": drainer, "idle": "drainer 0 previews"}
        log.info("Delivery (dry run): drainer %s idle: drainer 0 previews what is due", drainer)
        if publish is not None:
            publish(summary)
        return summary

    from auxeng.delivery import deliver

    report = deliver(open_store(), now=now, settings=load_settings(), dry_run=dry_run, kinds=kinds)
    summary = report.summary()
    if drainer is not None:
        summary["drainer"] = drainer
    problems = [] if dry_run else report.problem_lines()
    if problems:
        summary["incomplete"] = problems
    who = "" if drainer is None else f" by drainer {drainer}"
    log.info("Delivery%s%s: %s", " (dry run)" if dry_run else "", who, summary)
    if publish is not None:
        publish(summary)
    if not dry_run:
        report.raise_for_problems()
    return summary


def summarize_delivery(
    now: datetime,
    summaries: Iterable[dict[str, Any]],
    *,
    drainers: int,
    kinds: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Add up the drainers' summaries, count what is left pending, log one line.

    Fails (``AirflowFailException``: retrying a summary helps nothing, the drainers
    have already used their retries) when a drainer left due messages undelivered or
    reported nothing at all (it died, or never started): the DAG run must not look green.
    """
    from auxeng.delivery.drain import pending_counts
    from auxeng.delivery.report import add_up, totals_line

    totals = add_up(summaries)
    totals["drainers"] = drainers
    totals["pending"] = pending_counts(open_store(), now=now, kinds=kinds)
    line = totals_line(totals)
    log.info("Delivery%s by %d drainer(s): %s", " (dry run)" if totals["dry_run"] else "", drainers, line)
    silent = drainers - totals["reported"]
    if silent > 0 or totals.get("incomplete"):
        from airflow.sdk.exceptions import AirflowFailException

        reasons = list(totals.get("incomplete", ()))
        if silent > 0:
            reasons.append(f"{silent} of {drainers} drainer(s) reported nothing (see their logs)")
        for reason in reasons:
            log.error("  %s", reason)
        raise AirflowFailException(f"delivery incomplete: {' | '.join(reasons)} ({line})")
    return totals
