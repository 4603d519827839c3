"""Ops alerts for failed tasks: an email to ``AUXENG_OPS_EMAILS`` and a post to ``AUXENG_OPS_SLACK_CHANNEL``.

Called by :func:`auxeng.dagkit.defaults.notify_failure`, the ``on_failure_callback`` of
every DAG of the pack. Airflow calls it when a task instance ends ``failed``
(after its last retry; retries call ``on_retry_callback`` instead), normally
in the worker right after the task. The dag processor can call it again for the
same try (a task whose heartbeat timed out or that the executor reported killed),
so the alert is idempotent per task-instance try:

1. **Queue**: one outbox row per ops address and one for the Slack channel, kind
   ``ops_failure``, dedupe key ``ops_failure:<dag_id>:<task_id>:<run_id>:<map_index>:<try>:<channel>:<recipient>``.
   The unique constraint makes a second call for the same try a no-op.
2. **Deliver** those rows right away (``deliver(kinds=("ops_failure",))``): no send
   window (ops alerts go out at any hour); a row already sent is never sent again.
   A row left pending (SMTP down) is sent by the next call or by ``auxeng_deliver_outbox``.
3. **No store** (unreachable, misconfigured: it may be why the task failed): the
   alert is sent straight through the transports, once per call, without the
   once-only guarantee, and the problem is logged.

Opt-outs apply: an ops address recorded in ``auxeng_opt_outs`` (someone clicked an
opt-out link the pack sent them) gets no alert; its row is *skipped* with the reason
and a warning is logged. Use a team address that never receives surveys, or remove
the opt-out. The Slack channel is not a person: opt-outs never stop it.

Nothing here raises: every problem is logged (the callback must not mask the task's failure).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auxeng.messaging.outbox import EMAIL, SLACK, OutboundMessage
from auxeng.settings import Settings, load_settings
from auxeng.vocabulary import MessageKind

log = logging.getLogger("auxeng.failures")

MAX_ERROR = 1000
MAX_HINT = 300
MAX_KEY = 300
RUNBOOK = (
    "see the runbook in docs/operations.md (and docs/delivery.md for messages): read the log, "
    "fix the cause, then clear the task (re-runs are safe)"
)
# Sentences of a doc_md that say what to do when something fails, best first.
_HINT_PATTERNS = (
    re.compile(r"\bif (it|a task|this|the task|the run) fails\b", re.IGNORECASE),
    re.compile(r"\b(on failure|what to do|when it fails|runbook)\b", re.IGNORECASE),
    re.compile(r"\bre-?run(ning)?\b", re.IGNORECASE),
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*`_(])")
_MARKUP = re.compile(r"\*\*|__|^#+\s*|^\s*[-*]\s+|^\s*\d+\.\s+", re.MULTILINE)


@dataclass(frozen=True)
class FailedTask:
    """What an ops alert says about one failed task-instance try."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    error: str
    log_url: str
    what_to_do: str

    @property
    def label(self) -> str:
        mapped = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}.{self.task_id}{mapped}"


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _error(context: Mapping[str, Any]) -> str:
    exception = context.get("exception")
    if exception is not None:
        text = (
            f"{type(exception).__name__}: {exception}"
            if isinstance(exception, BaseException)
            else str(exception)
        )
    else:  # the dag processor's callbacks (heartbeat timeout, killed externally) carry no exception
        text = str(context.get("reason") or "unknown (no exception: the task may have been killed or lost)")
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def hint_from_doc(doc_md: str | None) -> str | None:
    """The sentence of a ``doc_md`` that says what to do when it fails (or how to re-run), as one line."""
    if not doc_md:
        return None
    text = _MARKUP.sub("", doc_md)
    sentences = [
        " ".join(s.split())
        for paragraph in re.split(r"\n\s*\n", text)
        for s in _SENTENCE_END.split(" ".join(paragraph.split()))
        if s.strip()
    ]
    for pattern in _HINT_PATTERNS:
        for sentence in sentences:
            if pattern.search(sentence):
                return sentence if len(sentence) <= MAX_HINT else sentence[: MAX_HINT - 1] + "…"
    return None


def _what_to_do(context: Mapping[str, Any], ti: Any) -> str:
    task = getattr(ti, "task", None) or context.get("task")
    dag = context.get("dag") or getattr(task, "dag", None)
    for doc in (getattr(task, "doc_md", None), getattr(dag, "doc_md", None)):
        hint = hint_from_doc(doc if isinstance(doc, str) else None)
        if hint:
            return hint
    return RUNBOOK


def failed_task(context: Mapping[str, Any]) -> FailedTask:
    """The failed try described by an Airflow callback context."""
    ti = context.get("ti") or context.get("task_instance")
    try:
        log_url = str(getattr(ti, "log_url", "") or "")
    except Exception:  # the property reads the config; never let it stop the alert
        log_url = ""
    return FailedTask(
        dag_id=str(getattr(ti, "dag_id", None) or "?"),
        task_id=str(getattr(ti, "task_id", None) or "?"),
        run_id=str(getattr(ti, "run_id", None) or "?"),
        map_index=_int(getattr(ti, "map_index", -1), -1),
        try_number=_int(getattr(ti, "try_number", 0), 0),
        error=_error(context),
        log_url=log_url,
        what_to_do=_what_to_do(context, ti),
    )


def dedupe_key(failed: FailedTask, channel: str, recipient: str) -> str:
    """One key per task-instance try, channel and recipient (hashed when too long for the column)."""
    key = (
        f"{MessageKind.OPS_FAILURE}:{failed.dag_id}:{failed.task_id}:{failed.run_id}:{failed.map_index}:"
        f"{failed.try_number}:{channel}:{recipient.lower()}"
    )
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{MessageKind.OPS_FAILURE}:{failed.dag_id[:100]}:{failed.task_id[:100]}:{digest}"


def subject(failed: FailedTask) -> str:
    return f"[AuxEng] task failed: {failed.dag_id}.{failed.task_id}"[:500]


def email_text(failed: FailedTask) -> str:
    mapped = str(failed.map_index) if failed.map_index >= 0 else "- (not mapped)"
    return (
        f"An AuxEng task failed after its last retry.\n\n"
        f"DAG:        {failed.dag_id}\n"
        f"Task:       {failed.task_id}\n"
        f"Run:        {failed.run_id}\n"
        f"Map index:  {mapped}\n"
        f"Try:        {failed.try_number}\n"
        f"Error:      {failed.error}\n"
        f"Log:        {failed.log_url or '(no log URL)'}\n\n"
        f"What to do: {failed.what_to_do}\n"
    )


def slack_text(failed: FailedTask) -> str:
    from auxeng.messaging.rendering import slack_escape as esc

    mapped = f" map_index {failed.map_index}," if failed.map_index >= 0 else ""
    log_link = f"<{esc(failed.log_url)}|Open the log>" if failed.log_url else "(no log URL)"
    return (
        f":rotating_light: *AuxEng task failed:* `{esc(failed.dag_id)}.{esc(failed.task_id)}`\n"
        f"Run `{esc(failed.run_id)}`,{mapped} try {failed.try_number}\n"
        f"```{esc(failed.error).replace('```', '` ` `')}```\n"
        f"{log_link}\n"
        f"*What to do:* {esc(failed.what_to_do)}"
    )


def alert_messages(failed: FailedTask, settings: Settings, *, now: datetime) -> list[OutboundMessage]:
    """The outbox rows of one alert: an email per ops address, a post to the ops channel.

    No ``send_window`` in the payload: delivery sends them at any hour.
    """
    payload = {
        "dag_id": failed.dag_id,
        "task_id": failed.task_id,
        "run_id": failed.run_id,
        "map_index": failed.map_index,
        "try_number": failed.try_number,
    }
    messages = [
        OutboundMessage(
            dedupe_key=dedupe_key(failed, EMAIL, address),
            channel=EMAIL,
            kind=MessageKind.OPS_FAILURE,
            recipient=address,
            recipient_email=address,  # opt-outs of that address apply
            not_before=now,
            subject=subject(failed),
            body_text=email_text(failed),
            payload=payload,
        )
        for address in settings.ops_emails
    ]
    if settings.ops_slack_channel:
        messages.append(
            OutboundMessage(
                dedupe_key=dedupe_key(failed, SLACK, settings.ops_slack_channel),
                channel=SLACK,
                kind=MessageKind.OPS_FAILURE,
                recipient=settings.ops_slack_channel,
                not_before=now,
                body_text=slack_text(failed),
                payload=payload,
            )
        )
    return messages


def _queue(messages: list[OutboundMessage], settings: Settings, now: datetime) -> tuple[Any, int]:
    """Queue the rows in the store: (engine, newly queued). Raises when the store cannot be used."""
    from auxeng.messaging.outbox import enqueue
    from auxeng.store.db import open_store, resolve_database_url, session_scope

    engine = open_store(resolve_database_url(settings))
    with session_scope(engine) as session:
        queued = enqueue(session, messages, now=now)
    return engine, queued


def _send_directly(messages: list[OutboundMessage], settings: Settings) -> dict[str, str]:
    """Send each message once through its channel's transport (no store): channel → outcome."""
    from auxeng.delivery import DeliveryError, QueuedMessage, resolve_transports

    outcome: dict[str, str] = {}
    channels = list(dict.fromkeys(m.channel for m in messages))
    try:
        transports, missing = resolve_transports(settings, channels=channels)
    except Exception as exc:
        return dict.fromkeys(channels, f"no transport: {type(exc).__name__}: {exc}")
    for channel in channels:
        transport = transports.get(channel)
        if transport is None:
            outcome[channel] = f"not sent: {missing.get(channel, 'no transport')}"
            continue
        sent = failed = 0
        reasons: list[str] = []
        try:
            with transport:
                for m in (m for m in messages if m.channel == channel):
                    queued = QueuedMessage(
                        id=0,
                        dedupe_key=m.dedupe_key,
                        channel=m.channel,
                        kind=m.kind,
                        recipient=m.recipient,
                        body_text=m.body_text,
                        subject=m.subject,
                        payload=dict(m.payload),
                        recipient_email=m.recipient_email,
                        not_before=m.not_before,
                    )
                    try:
                        transport.send(queued)
                        sent += 1
                    except DeliveryError as exc:
                        failed += 1
                        reasons.append(exc.reason)
        except Exception as exc:  # opening the transport (TransientDeliveryError) or a library error
            reasons.append(f"{type(exc).__name__}: {exc}")
        outcome[channel] = f"sent {sent}, failed {failed}" + (f": {'; '.join(reasons)}" if reasons else "")
    return outcome


def alert_failure(
    context: Mapping[str, Any], *, settings: Settings | None = None, now: datetime | None = None
) -> str:
    """Alert ops about a failed task-instance try, at most once per try; returns what happened, for the log.

    ``now`` is the wall clock (an alert about a backfilled run goes out now). Delivery problems
    (SMTP down, missing connection) are logged, not raised. What can raise: a
    :class:`~auxeng.settings.SettingsError` (invalid ``AUXENG_*`` environment) and a store that
    fails after the rows were queued (they stay queued for ``auxeng_deliver_outbox``);
    :func:`~auxeng.dagkit.defaults.notify_failure` logs both.
    """
    settings = settings or load_settings()
    if not settings.ops_emails and not settings.ops_slack_channel:
        return "no ops alert configured (AUXENG_OPS_EMAILS, AUXENG_OPS_SLACK_CHANNEL)"
    now = now or datetime.now(tz=UTC)
    failed = failed_task(context)
    messages = alert_messages(failed, settings, now=now)
    try:
        engine, queued = _queue(messages, settings, now)
    except Exception as exc:
        log.error(
            "AuxEng ops alert: the engagement store cannot be used (%s: %s); sending %s directly, "
            "without the once-only guarantee",
            type(exc).__name__,
            exc,
            failed.label,
        )
        return f"store unavailable, sent directly: {_send_directly(messages, settings)}"
    # Queued (or already queued by an earlier call): from here on the rows are durable, so a
    # delivery problem never falls back to a direct send (that could duplicate an alert).
    from auxeng.delivery import deliver

    channels = tuple(dict.fromkeys(m.channel for m in messages))
    report = deliver(engine, now=now, settings=settings, channels=channels, kinds=(MessageKind.OPS_FAILURE,))
    if report.skipped_by.get("opted_out"):
        log.warning(
            "AuxEng ops alert: %d ops address(es) in AUXENG_OPS_EMAILS opted out and got nothing: "
            "remove them from auxeng_opt_outs or use another address",
            report.skipped_by["opted_out"],
        )
    for channel, why in report.missing.items():
        log.warning("AuxEng ops alert: %s: %s", channel, why)
    for channel, why in report.errors.items():
        log.warning("AuxEng ops alert: %s left pending (auxeng_deliver_outbox retries): %s", channel, why)
    already = "" if queued else " (already queued by an earlier call for this try)"
    pending = report.deferred + report.waiting
    return (
        f"queued {queued} row(s){already}; sent {dict(report.sent)}, skipped {dict(report.skipped)}, "
        f"failed {dict(report.failed)}, left pending {dict(pending)}"
    )
