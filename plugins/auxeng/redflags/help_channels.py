"""Read host teams' Slack help channels into help requests (``auxeng_help_requests``).

Every host team of the registry (not removed) with a ``help_channel`` has its channel read
with Slack's ``conversations.history`` through the Slack API connection
(:attr:`Settings.slack_api_conn_id`) by the client delivery uses
(:class:`~auxeng.delivery.slack_api.SlackApi`, with its retry policy: a 429 waits
``Retry-After``, 5xx and connection errors back off, then give up for this run).

What is read (see :class:`~auxeng.store.models.HelpChannelReadRow`)
    A *pass* reads the messages between ``oldest`` and ``latest`` (both included), newest
    first, page by page. ``oldest`` is the channel's ``read_until``; on a channel's first
    read, the later of the day the team's latest ended engagement ended (end date before
    today, not cancelled, not removed) and today − ``help_lookback_days``
    [AUXENG_HELP_LOOKBACK_DAYS], from midnight in ``settings.timezone``. A team with no
    ended engagement is not read yet. ``latest`` is the run's ``now``, fixed when the pass
    starts. Each page's requests and the cursor of the next page are committed together,
    so a read that stops (Slack down, task killed) resumes with the next page and the same
    ``latest``; if Slack no longer accepts the saved cursor (``invalid_cursor``) the pass
    starts over from its ``oldest`` (requests already stored are not added again).
    ``read_until`` becomes the pass's ``latest`` when its last page is in.

Which messages are help requests
    The channel belongs to the host team: every top-level message by a person counts,
    whoever posted it, except the platform team's own posts. Not stored (the report
    counts them by reason): ``bot`` (``bot_id`` or subtype ``bot_message``),
    ``thread_reply`` (``thread_ts`` other than its own ``ts``: a thread is one request,
    its first message), ``subtype`` (any other subtype: joins, topic and purpose changes,
    pins…; a ``file_share`` is a person's message and counts), ``no_user`` and
    ``platform_team`` (Slack ids of the people on the ``auxeng`` side of any engagement,
    and of the program managers).

    Stored as ``source="slack"``, ``source_ref="<channel>:<ts>"``; ``requested_at`` is the
    message's ``ts``; ``author`` the person's email when the registry knows their Slack id
    (people, team managers, program managers), else the Slack user id; ``summary`` the
    text with its whitespace collapsed (Slack markup as is), cut at 500 characters;
    ``link`` the message's ``permalink`` if it has one (``chat.getPermalink`` is not called:
    one call per message would run into Slack's rate limits). Reading a message again
    changes nothing.

Errors
    A channel Slack refuses (``channel_not_found``, ``not_in_channel``, ``missing_scope``
    for a private channel…) or that stays unreachable after the retries gets ``last_error``
    on its read row and a warning naming team and channel; the other channels are read.
    Rejected credentials (``invalid_auth``, ``token_revoked``…) or Slack being unreachable
    stop the whole read. Without the Slack API connection nothing is read: a warning names
    the connection and the report says so (the other signals are still evaluated).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from auxeng.delivery.base import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from auxeng.delivery.slack_api import RetryPolicy, SlackApi, SlackRefused
from auxeng.redflags import help_requests
from auxeng.registry.lifecycle import live_clause
from auxeng.settings import Settings
from auxeng.store.db import session_scope
from auxeng.store.models import (
    EngagementRow,
    HelpChannelReadRow,
    MemberRow,
    PersonRow,
    ProgramRow,
    TeamRow,
)
from auxeng.text import clean_text

log = logging.getLogger(__name__)

SOURCE = "slack"
SUMMARY_LIMIT = 500
LINK_LIMIT = 1000
# Subtypes of messages a person wrote (no subtype at all is the usual case).
HUMAN_SUBTYPES = frozenset({None, "file_share"})
# Credential errors that concern one channel, not the token: a private channel needs groups:history.
CHANNEL_SCOPED_ERRORS = frozenset({"missing_scope"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def slack_ts(moment: datetime) -> str:
    """A time-zone aware moment as a Slack ``ts`` (epoch seconds, six decimals), computed exactly."""
    micros = (moment - _EPOCH) // _MICROSECOND
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def ts_moment(ts: str) -> datetime:
    """The UTC moment of a Slack ``ts``."""
    seconds, _, fraction = ts.partition(".")
    return _EPOCH + timedelta(seconds=int(seconds), microseconds=int(fraction[:6].ljust(6, "0")))


def day_start_ts(day: date, timezone: ZoneInfo) -> str:
    """Midnight starting ``day`` in ``timezone``, as a Slack ``ts``."""
    return slack_ts(datetime.combine(day, clock(0), timezone))


def summarize(text: str | None) -> str:
    """The stored summary of a message: its text, whitespace collapsed, at most 500 characters."""
    flat = " ".join(clean_text(text or "").split())
    if not flat:
        return "(message without text)"
    return flat if len(flat) <= SUMMARY_LIMIT else flat[: SUMMARY_LIMIT - 1] + "…"


def skip_reason(message: Mapping[str, Any], platform: frozenset[str]) -> str | None:
    """Why ``message`` is not a help request (None: it is one); see the module's docstring."""
    subtype = message.get("subtype")
    if message.get("bot_id") or subtype == "bot_message":
        return "bot"
    thread_ts = message.get("thread_ts")
    if thread_ts and thread_ts != message.get("ts"):
        return "thread_reply"
    if subtype not in HUMAN_SUBTYPES:
        return "subtype"
    user = message.get("user")
    if not user:
        return "no_user"
    if user in platform:
        return "platform_team"
    return None


@dataclass
class ChannelRead:
    """What one read of one channel did."""

    channel: str
    team_key: str
    pages: int = 0
    messages: int = 0
    stored: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    resumed: bool = False  # continued a pass a previous read left unfinished
    restarted: bool = False  # the saved cursor was refused: the pass started over
    complete: bool = False  # the pass's last page is in (read_until moved)
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "team": self.team_key,
            "pages": self.pages,
            "messages": self.messages,
            "stored": self.stored,
            "skipped": dict(sorted(self.skipped.items())),
            "resumed": self.resumed,
            "restarted": self.restarted,
            "complete": self.complete,
            "error": self.error,
        }


@dataclass
class HelpChannelReport:
    """What :func:`read_help_channels` did: each channel read, and the teams not read and why."""

    conn_id: str
    channels: list[ChannelRead] = field(default_factory=list)
    not_read: dict[str, str] = field(default_factory=dict)  # team key → why its channel was not read
    stopped: str | None = None  # why the read stopped before every channel (no connection, credentials)

    def summary(self) -> dict[str, Any]:
        """Totals, errors and per-channel counts, for the task log and its return value."""
        skipped: Counter[str] = Counter()
        for read in self.channels:
            skipped.update(read.skipped)
        return {
            "channels": len(self.channels),
            "complete": sum(read.complete for read in self.channels),
            "pages": sum(read.pages for read in self.channels),
            "messages": sum(read.messages for read in self.channels),
            "stored": sum(read.stored for read in self.channels),
            "skipped": dict(sorted(skipped.items())),
            "errors": {read.channel: read.error for read in self.channels if read.error},
            "not_read": dict(self.not_read),
            "stopped": self.stopped,
            "by_channel": {read.channel: read.summary() for read in self.channels},
        }


@dataclass(frozen=True)
class _Pass:
    team_key: str
    channel: str
    oldest: str
    latest: str
    cursor: str | None = None


@dataclass(frozen=True)
class _Authors:
    platform: frozenset[str]  # Slack ids whose posts are not requests
    emails: Mapping[str, str]  # Slack id → email


def read_help_channels(
    engine: Engine,
    *,
    settings: Settings,
    now: datetime,
    conn_id: str | None = None,
    page_size: int = 200,
    sleep: Callable[[float], None] = time.sleep,
) -> HelpChannelReport:
    """Read every host team's help channel up to ``now`` and store the new help requests.

    ``engine`` is the store (each page is committed on its own, so a session cannot be
    passed); ``now`` is the run's moment (time-zone aware), whose date in
    ``settings.timezone`` is "today"; ``conn_id`` defaults to ``settings.slack_api_conn_id``;
    ``page_size`` is the ``limit`` of each ``conversations.history`` call; ``sleep`` is
    what rate-limit and back-off waits call (tests pass a recorder).
    """
    if now.tzinfo is None:
        raise ValueError(f"naive now {now!r}: pass a time-zone aware moment")
    conn_id = conn_id or settings.slack_api_conn_id
    report = HelpChannelReport(conn_id=conn_id)
    with Session(engine) as session:
        passes = _passes(session, settings, now, report)
        authors = _authors(session)
    if not passes:
        return report
    api = _connect(conn_id, RetryPolicy(sleep=sleep))
    if api is None:
        report.stopped = f"no Slack API connection {conn_id!r}: help channels not read"
        report.not_read.update({p.team_key: "no Slack API connection" for p in passes})
        return report
    for index, plan in enumerate(passes):
        read = ChannelRead(plan.channel, plan.team_key, resumed=plan.cursor is not None)
        report.channels.append(read)
        try:
            _read_channel(engine, api, plan, read, authors, now=now, page_size=page_size)
        except DeliveryError as exc:
            read.error = exc.reason
            _record_error(engine, plan, exc.reason, now)
            log.warning(
                "Help channel %s of team %s not read to the end (%d pages in): %s",
                plan.channel,
                plan.team_key,
                read.pages,
                exc.reason,
            )
            if _stops_everything(exc):
                report.stopped = f"{exc.reason}: the read stopped at channel {plan.channel}"
                report.not_read.update({p.team_key: "read stopped" for p in passes[index + 1 :]})
                log.warning(
                    "Help channels: %s; %d channels not read", report.stopped, len(passes) - index - 1
                )
                break
    return report


def _passes(session: Session, settings: Settings, now: datetime, report: HelpChannelReport) -> list[_Pass]:
    """The pass each channel reads now (resumed or new); teams not read go to ``report.not_read``."""
    today = now.astimezone(settings.timezone).date()
    latest = slack_ts(now)
    teams = session.execute(
        select(TeamRow.key, TeamRow.help_channel)
        .where(TeamRow.removed_at.is_(None), TeamRow.help_channel.is_not(None), TeamRow.help_channel != "")
        .order_by(TeamRow.key)
    ).all()
    ended = dict(
        session.execute(
            select(EngagementRow.host_team_key, func.max(EngagementRow.end_date))
            .where(EngagementRow.end_date < today, live_clause())
            .group_by(EngagementRow.host_team_key)
        ).all()
    )
    reads = {row.channel: row for row in session.scalars(select(HelpChannelReadRow))}
    first_day = today - timedelta(days=settings.help_lookback_days)
    owners: dict[str, str] = {}
    passes: list[_Pass] = []
    for team_key, channel in teams:
        if channel in owners:
            log.warning(
                "Help channel %s is also team %s's: read once, for %s", channel, team_key, owners[channel]
            )
            report.not_read[team_key] = f"channel {channel} is read for team {owners[channel]}"
            continue
        owners[channel] = team_key
        # A channel that moved to another team is read afresh for it (past requests keep their team).
        read = reads.get(channel)
        read = read if read is not None and read.team_key == team_key else None
        if read is not None and read.pass_latest and read.pass_oldest:
            passes.append(_Pass(team_key, channel, read.pass_oldest, read.pass_latest, read.pass_cursor))
            continue
        if read is not None and read.read_until:
            oldest = read.read_until
        elif team_key in ended:
            oldest = day_start_ts(max(ended[team_key], first_day), settings.timezone)
        else:
            report.not_read[team_key] = "no ended engagement yet"
            continue
        if float(oldest) >= float(latest):  # a replay of an earlier day: already read past it
            report.not_read[team_key] = f"already read up to {oldest}"
            continue
        passes.append(_Pass(team_key, channel, oldest, latest))
    return passes


def _authors(session: Session) -> _Authors:
    """Who is on the platform side, and the emails of the Slack ids the registry knows."""
    emails: dict[str, str] = {}
    for email, slack_id in session.execute(
        select(PersonRow.email, PersonRow.slack_id).where(PersonRow.slack_id.is_not(None))
    ):
        emails[slack_id] = email
    for email, slack_id in session.execute(
        select(TeamRow.manager_email, TeamRow.manager_slack_id).where(
            TeamRow.manager_slack_id.is_not(None), TeamRow.manager_email.is_not(None)
        )
    ):
        emails.setdefault(slack_id, email)
    platform = set(
        session.scalars(
            select(PersonRow.slack_id)
            .join(MemberRow, MemberRow.email == PersonRow.email)
            .where(MemberRow.side == "auxeng", PersonRow.slack_id.is_not(None))
            .distinct()
        )
    )
    program = session.scalars(select(ProgramRow).order_by(ProgramRow.id)).first()
    for manager in program.managers if program is not None else []:
        slack_id = manager.get("slack_id")
        if slack_id:
            platform.add(slack_id)
            if manager.get("email"):
                emails.setdefault(slack_id, manager["email"])
    return _Authors(platform=frozenset(platform), emails=emails)


def _connect(conn_id: str, retry: RetryPolicy) -> SlackApi | None:
    """The Slack client of ``conn_id``, or None when there is no such connection (or it has no token)."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return SlackApi.connect(conn_id, retry)
    except AirflowNotFoundException as exc:
        log.warning(
            "No usable Slack API connection %r (%s): help channels not read. Create it (type slack, "
            "a bot token with channels:history, groups:history for private channels) to read them.",
            conn_id,
            exc,
        )
        return None


def _slack_error(exc: DeliveryError) -> str | None:
    """Slack's ``error`` code behind a failed call, if Slack gave one."""
    return exc.error if isinstance(exc, SlackRefused) else None


def _stops_everything(exc: DeliveryError) -> bool:
    if isinstance(exc, PermanentDeliveryError):
        return exc.credentials and _slack_error(exc) not in CHANNEL_SCOPED_ERRORS
    return isinstance(exc, TransientDeliveryError) and exc.transport_down


def _read_channel(
    engine: Engine,
    api: SlackApi,
    plan: _Pass,
    read: ChannelRead,
    authors: _Authors,
    *,
    now: datetime,
    page_size: int,
) -> None:
    """Read ``plan`` page by page, committing each page with the cursor of the next."""
    cursor = plan.cursor
    while True:
        try:
            response = api.conversation_history(
                plan.channel, oldest=plan.oldest, latest=plan.latest, limit=page_size, cursor=cursor
            )
        except PermanentDeliveryError as exc:
            if cursor and not read.restarted and _slack_error(exc) == "invalid_cursor":
                log.warning(
                    "Help channel %s of team %s: saved cursor refused; reading the pass again from %s",
                    plan.channel,
                    plan.team_key,
                    plan.oldest,
                )
                read.restarted = True
                cursor = None
                continue
            raise
        messages = response.get("messages") or []
        next_cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        rows = []
        for message in messages:
            reason = skip_reason(message, authors.platform)
            if reason is not None:
                read.skipped[reason] += 1
                continue
            rows.append(_request(plan, message, authors, now))
        with session_scope(engine) as session:
            stored = help_requests.add_new(session, rows)
            _advance(session, plan, next_cursor, stored, now)
        read.pages += 1
        read.messages += len(messages)
        read.stored += stored
        log.info(
            "Help channel %s of team %s: page %d, %d messages, %d new requests",
            plan.channel,
            plan.team_key,
            read.pages,
            len(messages),
            stored,
        )
        if next_cursor is None:
            read.complete = True
            return
        cursor = next_cursor


def _request(plan: _Pass, message: Mapping[str, Any], authors: _Authors, now: datetime) -> dict[str, Any]:
    ts = str(message["ts"])
    link = message.get("permalink")
    return {
        "team_key": plan.team_key,
        "source": SOURCE,
        "source_ref": f"{plan.channel}:{ts}",
        "requested_at": ts_moment(ts),
        "author": authors.emails.get(message["user"], message["user"]),
        "summary": summarize(message.get("text")),
        "link": link if isinstance(link, str) and len(link) <= LINK_LIMIT else None,
        "imported_at": now,
        "updated_at": now,
    }


def _read_row(session: Session, plan: _Pass, now: datetime) -> HelpChannelReadRow:
    row = session.get(HelpChannelReadRow, plan.channel)
    if row is None:
        row = HelpChannelReadRow(channel=plan.channel, team_key=plan.team_key, pages=0, requests_found=0)
        session.add(row)
    row.updated_at = now
    return row


def _advance(session: Session, plan: _Pass, next_cursor: str | None, stored: int, now: datetime) -> None:
    """Record a page: the cursor of the next one, or the pass's end (``read_until`` moves)."""
    row = _read_row(session, plan, now)
    row.team_key = plan.team_key
    row.pages = (row.pages or 0) + 1
    row.requests_found = (row.requests_found or 0) + stored
    if next_cursor is not None:
        row.pass_oldest, row.pass_latest, row.pass_cursor = plan.oldest, plan.latest, next_cursor
        return
    row.read_until = plan.latest
    row.pass_oldest = row.pass_latest = row.pass_cursor = None
    row.last_read_at = now
    row.last_error = None


def _record_error(engine: Engine, plan: _Pass, error: str, now: datetime) -> None:
    """Keep why the channel was not read to the end; a pass in progress stays resumable."""
    with session_scope(engine) as session:
        _read_row(session, plan, now).last_error = error
