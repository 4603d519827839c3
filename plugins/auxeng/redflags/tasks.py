"""Task bodies of ``auxeng_dependency_alerts``: read help requests, evaluate the rules, alert.

Every step logs and returns a summary. A dry run reads nothing from Slack and rolls back
everything else, so it only reports what it would have changed and queued.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from auxeng.messaging.planner import run_planning_step
from auxeng.redflags import alerts as flag_alerts
from auxeng.redflags import help_channels, help_csv
from auxeng.redflags import store as flag_store
from auxeng.settings import load_settings
from auxeng.store.db import open_store
from auxeng.store.uow import run_in_transaction

log = logging.getLogger(__name__)


class HelpChannelsNotRead(RuntimeError):
    """Some help channels could not be read to the end (named in the message); the retry resumes them."""


def read_help_channels(now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """Read the new messages of every host team's Slack help channel (skipped on a dry run).

    Fails, after reading every channel it can, when a channel could not be read to the end
    or Slack refused the credentials, so ops hear about it; the DAG still evaluates the flags.
    Without a Slack API connection it only warns (local runs, CSV-only set-ups).
    """
    if dry_run:
        log.info("Dry run: the help channels are not read")
        return {"dry_run": True}
    report = help_channels.read_help_channels(open_store(), settings=load_settings(), now=now)
    summary = report.summary()
    log.info("read_help_channels: %s", summary)
    problems = [f"{channel}: {error}" for channel, error in summary["errors"].items()]
    if report.stopped and report.channels:
        problems.append(report.stopped)
    if problems:
        raise HelpChannelsNotRead("help channels not read to the end: " + "; ".join(problems))
    return summary


def import_help_requests(now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """Import the CSV drop file(s) of help requests (``AUXENG_HELP_REQUESTS_CSV``)."""
    return run_in_transaction(help_csv.import_help_requests, dry_run=dry_run, now=now)


def evaluate_flags(as_of: date, now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """Run every red-flag rule for ``as_of`` and open, update or resolve the stored flags."""
    return run_in_transaction(flag_store.evaluate_flags, dry_run=dry_run, as_of=as_of, now=now)


def queue_flag_alerts(now: datetime, *, dry_run: bool = False) -> dict[str, Any]:
    """Queue the alerts about new, escalated and still-open flags to the managers."""
    return run_planning_step(flag_alerts.plan_flag_alerts, dry_run=dry_run, now=now)
