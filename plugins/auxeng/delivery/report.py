"""What one delivery run did, and the exception that makes Airflow retry an incomplete run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_PROBLEMS = 20
MAX_SAMPLES = 5


class DeliveryIncomplete(Exception):
    """Due messages were left pending (transient errors, or a channel without a transport).

    A plain ``Exception``, so Airflow retries the task (it is not an
    ``AirflowFailException``); kept free of Airflow imports so importing
    :mod:`auxeng.delivery` stays cheap. ``report`` is the run's :class:`DeliveryReport`.
    """

    def __init__(self, message: str, report: DeliveryReport) -> None:
        super().__init__(message)
        self.report = report


def _plain(counter: Counter[str]) -> dict[str, int]:
    return {key: value for key, value in sorted(counter.items()) if value}


@dataclass
class DeliveryReport:
    """Counts per channel (``"email"``, ``"slack"``) of what a :func:`~auxeng.delivery.deliver` run did.

    * ``sent``: delivered and marked sent by this run;
    * ``failed``: failed for good by this run (permanent error, or attempts used up);
    * ``skipped``: no longer wanted (opted out, answered, engagement cancelled/reopened/removed);
      ``skipped_by`` counts them by cause;
    * ``deferred``: due but left pending by this run after a transient error (or not
      tried because the channel's transport was down): Airflow should retry;
    * ``rescheduled``: outside the recipient's send window at ``now``: moved to its next opening;
    * ``waiting``: due, but no transport can send them (see ``missing``);
    * ``not_due``: pending with ``not_before`` after ``now``;
    * ``leased``: due, but held by another drainer right now.

    In a dry run nothing is written: ``would_send`` (channel → kind → count) and
    ``samples`` say what would go out, and ``skipped``/``rescheduled``/``waiting``
    what a real run would do with the rest.
    """

    now: datetime
    dry_run: bool = False
    transports: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_by: Counter[str] = field(default_factory=Counter)
    deferred: Counter[str] = field(default_factory=Counter)
    rescheduled: Counter[str] = field(default_factory=Counter)
    waiting: Counter[str] = field(default_factory=Counter)
    not_due: Counter[str] = field(default_factory=Counter)
    leased: Counter[str] = field(default_factory=Counter)
    would_send: dict[str, Counter[str]] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    credential_errors: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    voided_invitations: int = 0

    def note_problem(self, line: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(line)

    def summary(self) -> dict[str, Any]:
        """A small JSON-able dict (for XCom and the task log)."""
        out: dict[str, Any] = {"now": self.now.isoformat(), "dry_run": self.dry_run}
        for name in ("sent", "failed", "skipped", "deferred", "rescheduled", "waiting", "not_due", "leased"):
            out[name] = _plain(getattr(self, name))
        if self.skipped_by:
            out["skipped_by"] = _plain(self.skipped_by)
        if self.dry_run:
            out["would_send"] = {
                channel: _plain(kinds) for channel, kinds in sorted(self.would_send.items()) if kinds
            }
            out["samples"] = self.samples[:MAX_SAMPLES]
        out["transports"] = dict(sorted(self.transports.items()))
        if self.missing:
            out["missing"] = dict(sorted(self.missing.items()))
        if self.errors:
            out["errors"] = dict(sorted(self.errors.items()))
        if self.voided_invitations:
            out["voided_invitations"] = self.voided_invitations
        if self.problems:
            out["problems"] = self.problems[:10]
        return out

    def problem_lines(self) -> list[str]:
        """One line per channel that left due messages undelivered (empty when the run is complete)."""
        lines = []
        for channel in sorted(set(self.deferred) | set(self.waiting) | set(self.credential_errors)):
            parts = []
            if self.deferred[channel]:
                last = self.errors.get(channel, "transient errors")
                parts.append(f"{self.deferred[channel]} due message(s) left pending ({last})")
            if self.waiting[channel]:
                why = self.missing.get(channel, "no transport")
                parts.append(f"{self.waiting[channel]} due message(s) cannot be sent: {why}")
            if channel in self.credential_errors:
                parts.append(f"failed on credentials: {self.credential_errors[channel]}")
            if parts:
                lines.append(f"{channel}: " + "; ".join(parts))
        return lines

    def raise_for_problems(self) -> None:
        """Raise :class:`DeliveryIncomplete` when due messages were left undelivered.

        That is: transient errors left messages pending, a channel without a
        transport has due messages, or messages failed because the credentials
        were rejected (``invalid_auth``…: retrying does not help, but the run
        must not look green). Permanent per-message failures alone do not raise.
        """
        lines = self.problem_lines()
        if lines:
            raise DeliveryIncomplete("delivery incomplete: " + " | ".join(lines), self)
