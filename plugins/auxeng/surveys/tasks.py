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

from auxeng.messaging import tokens
from auxeng.settings import load_settings
from auxeng.store.db import open_store
from auxeng.surveys import detractors, invitations

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


def run_planning_step(step: Callable[..., Any], *, dry_run: bool, **kwargs: Any) -> dict[str, Any]:
    """A planning step that queues messages: :func:`run_in_transaction` with the link-signing key."""
    return run_in_transaction(step, dry_run=dry_run, key=tokens.secret_key(), **kwargs)


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
    kinds: tuple[str, ...] = invitations.END_OF_ENGAGEMENT_SURVEYS,
) -> dict[str, Any]:
    """Remind the people who have not answered surveys of ``kinds`` yet."""
    return run_planning_step(invitations.plan_reminders, dry_run=dry_run, as_of=as_of, now=now, surveys=kinds)


def queue_detractor_alerts(now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """Alert the AuxEng leads about new detractor answers (see :mod:`auxeng.surveys.detractors`)."""
    return run_planning_step(detractors.plan_detractor_alerts, dry_run=dry_run, now=now)


MAX_DRAINERS = 16
SUMMARY_KEY = "summary"


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
