"""What one delivery run did, the exception that makes Airflow retry an incomplete run, and
the totals of several drainers that ran side by side (:func:`add_up`, :func:`totals_line`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
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
    * ``leased``: due, but held by another drainer right now;
    * ``in_doubt``: found ``sending`` with its lease run out (a drainer died after handing
      them to the transport, before recording the outcome): now ``in_doubt``, never re-sent.

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
    in_doubt: Counter[str] = field(default_factory=Counter)
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
        if self.in_doubt:
            out["in_doubt"] = _plain(self.in_doubt)
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


# What each drainer did adds up across drainers (each row is handled by exactly one of them);
# ``waiting``/``not_due``/``leased`` are snapshots taken at one drainer's end and do not add up.
ADDITIVE = ("sent", "failed", "skipped", "skipped_by", "deferred", "rescheduled", "in_doubt")


def _total(counts: dict[str, int]) -> int:
    return sum(counts.values())


def _detail(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items())


def _count_phrase(label: str, counts: dict[str, int]) -> str:
    return f"{label} {_total(counts)}" + (f" ({_detail(counts)})" if counts else "")


def add_up(summaries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The :meth:`DeliveryReport.summary` dicts of drainers that ran side by side, added up.

    ``sent``, ``failed``, ``skipped`` (and ``skipped_by``), ``deferred`` and
    ``rescheduled`` are summed per channel (or cause); ``by_drainer`` is how many
    each drainer sent; ``incomplete`` gathers the problem lines of drainers that
    left due messages undelivered (``"drainer N: …"``); ``errors`` and ``missing``
    keep the first explanation per channel. In a dry run ``would_send`` and
    ``samples`` come from the drainers that previewed.
    """
    totals: dict[str, Counter[str]] = {name: Counter() for name in ADDITIVE}
    would_send: dict[str, Counter[str]] = {}
    by_drainer: dict[str, int] = {}
    incomplete: list[str] = []
    errors: dict[str, str] = {}
    missing: dict[str, str] = {}
    samples: list[str] = []
    dry_run = False
    for position, summary in enumerate(summaries):
        name = str(summary.get("drainer", position))
        dry_run = dry_run or bool(summary.get("dry_run"))
        for key in ADDITIVE:
            totals[key].update(summary.get(key) or {})
        by_drainer[name] = by_drainer.get(name, 0) + _total(summary.get("sent") or {})
        incomplete.extend(f"drainer {name}: {line}" for line in summary.get("incomplete") or ())
        for channel, why in (summary.get("errors") or {}).items():
            errors.setdefault(channel, why)
        for channel, why in (summary.get("missing") or {}).items():
            missing.setdefault(channel, why)
        for channel, kinds in (summary.get("would_send") or {}).items():
            would_send.setdefault(channel, Counter()).update(kinds)
        samples.extend(summary.get("samples") or ())
    out: dict[str, Any] = {"dry_run": dry_run, "reported": len(by_drainer)}
    out.update({key: _plain(counter) for key, counter in totals.items()})
    out["by_drainer"] = dict(sorted(by_drainer.items(), key=lambda item: (len(item[0]), item[0])))
    if dry_run:
        out["would_send"] = {channel: _plain(kinds) for channel, kinds in sorted(would_send.items())}
        out["samples"] = samples[:MAX_SAMPLES]
    if errors:
        out["errors"] = dict(sorted(errors.items()))
    if missing:
        out["missing"] = dict(sorted(missing.items()))
    if incomplete:
        out["incomplete"] = incomplete[:MAX_PROBLEMS]
    return out


def totals_line(totals: Mapping[str, Any]) -> str:
    """One log line for :func:`add_up`'s result (with ``pending`` added by the caller)."""
    pending = totals.get("pending") or {}
    due, later = pending.get("due") or {}, pending.get("later") or {}
    parts = []
    if totals.get("dry_run"):
        would = Counter()
        for kinds in (totals.get("would_send") or {}).values():
            would.update(kinds)
        parts.append(_count_phrase("would send", _plain(would)))
        parts.append(_count_phrase("would skip", totals.get("skipped_by") or {}))
    else:
        parts.append(_count_phrase("sent", totals.get("sent") or {}))
        parts.append(_count_phrase("failed", totals.get("failed") or {}))
        parts.append(_count_phrase("skipped", totals.get("skipped_by") or {}))
    if totals.get("rescheduled"):
        parts.append(_count_phrase("rescheduled", totals["rescheduled"]))
    if totals.get("in_doubt"):
        parts.append(_count_phrase("in doubt", totals["in_doubt"]))
    parts.append(
        f"pending {_total(due) + _total(later)} (due now {_total(due)}"
        + (f": {_detail(due)}" if due else "")
        + f"; later {_total(later)}"
        + (f": {_detail(later)}" if later else "")
        + ")"
    )
    return " / ".join(parts)
