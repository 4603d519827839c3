"""What the dashboard reads from the store, and its two actions (acknowledge a red flag,
retry a failed message).

**Bounded queries.** A page costs the same few SQL statements whatever the store holds:
aggregates in the database, one page of rows (:data:`PAGE_SIZE`). SQLAlchemy and the store are
imported on first use (the plugin manager imports the web app in every Airflow process).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from auxeng.vocabulary import InvitationStatus, OutboxStatus, SurveyKind

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from auxeng.redflags.alerts import FlagView

log = logging.getLogger(__name__)

PAGE_SIZE = 50
REASON_LIMIT = 500
CHART_CACHE_SIZE = 8


# --- what the page shows ------------------------------------------------------------------


@dataclass(frozen=True)
class EngagementLine:
    key: str
    title: str
    team: str
    end_date: date
    invited: int
    answered: int
    checkin_status: str | None
    checkin_due: date | None
    live_flags: int

    @property
    def response_rate(self) -> str:
        return f"{100 * self.answered / self.invited:.0f}%" if self.invited else "–"


@dataclass(frozen=True)
class MessageLine:
    id: int
    status: str
    kind: str
    channel: str
    recipient: str
    subject: str | None
    reason: str | None
    attempts: int
    not_before: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Pages:
    """One page of a paginated list: ``page`` of ``pages`` (1-based), ``total`` rows in all."""

    page: int
    total: int
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def first(self) -> int:
        return min(self.total, self.offset + 1)

    @property
    def last(self) -> int:
        return min(self.total, self.offset + self.size)


@dataclass(frozen=True)
class NpsSummary:
    week: date
    period: str
    quarter: str
    this_week: str
    response_rate: str
    computed_at: datetime


@dataclass(frozen=True)
class Dashboard:
    engagements: list[EngagementLine]
    engagement_pages: Pages
    flags: list[FlagView]
    messages: list[MessageLine]
    message_pages: Pages
    failed: int
    pending: int
    nps: NpsSummary | None


def _page_number(requested: int, total: int) -> int:
    return max(1, min(requested, Pages(1, total).pages))


def engagement_lines(session: Session, page: int) -> tuple[list[EngagementLine], Pages]:
    """Ended engagements, latest end first, with their stage: two statements, whatever the store holds."""
    from sqlalchemy import func, select

    from auxeng.redflags.store import LIVE
    from auxeng.registry.lifecycle import ended_and_live_clause
    from auxeng.store.models import CheckinRow, EngagementRow, FlagRow, SurveyInvitationRow, TeamRow

    ended = (ended_and_live_clause(),)
    total = session.scalar(select(func.count()).select_from(EngagementRow).where(*ended)) or 0
    pages = Pages(_page_number(page, total), total)
    invitation = SurveyInvitationRow
    asked = (
        invitation.engagement_key == EngagementRow.key,
        invitation.survey == SurveyKind.POST_ENGAGEMENT,
        invitation.status == InvitationStatus.INVITED,
    )
    invited = select(func.count()).where(*asked).correlate(EngagementRow).scalar_subquery()
    answered = (
        select(func.count())
        .where(*asked, invitation.answered_at.is_not(None))
        .correlate(EngagementRow)
        .scalar_subquery()
    )
    flags = (
        select(func.count())
        .where(FlagRow.engagement_key == EngagementRow.key, FlagRow.status.in_(LIVE))
        .correlate(EngagementRow)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            EngagementRow.key,
            EngagementRow.title,
            func.coalesce(TeamRow.name, EngagementRow.host_team_key),
            EngagementRow.end_date,
            invited,
            answered,
            CheckinRow.status,
            func.coalesce(CheckinRow.due_override, CheckinRow.due_on),
            flags,
        )
        .outerjoin(TeamRow, TeamRow.key == EngagementRow.host_team_key)
        .outerjoin(CheckinRow, CheckinRow.engagement_key == EngagementRow.key)
        .where(*ended)
        .order_by(EngagementRow.end_date.desc(), EngagementRow.key)
        .limit(pages.size)
        .offset(pages.offset)
    ).all()
    return [EngagementLine(*row) for row in rows], pages


def outbox_lines(session: Session, page: int) -> tuple[list[MessageLine], Pages, dict[str, int]]:
    """Failed messages (newest first), then pending ones (next due first): two statements."""
    from sqlalchemy import case, func, select

    from auxeng.store.models import OutboxRow

    waiting = OutboxRow.status.in_((OutboxStatus.FAILED, OutboxStatus.PENDING))
    counts = dict(
        session.execute(
            select(OutboxRow.status, func.count()).where(waiting).group_by(OutboxRow.status)
        ).all()
    )
    pages = Pages(_page_number(page, sum(counts.values())), sum(counts.values()))
    failed_first = case((OutboxRow.status == OutboxStatus.FAILED, 0), else_=1)
    rows = session.execute(
        select(
            OutboxRow.id,
            OutboxRow.status,
            OutboxRow.kind,
            OutboxRow.channel,
            OutboxRow.recipient,
            OutboxRow.subject,
            func.substr(OutboxRow.reason, 1, REASON_LIMIT),
            OutboxRow.attempts,
            OutboxRow.not_before,
            OutboxRow.updated_at,
        )
        .where(waiting)
        .order_by(
            failed_first,
            case((OutboxRow.status == OutboxStatus.FAILED, OutboxRow.updated_at), else_=None).desc(),
            OutboxRow.not_before,
            OutboxRow.id,
        )
        .limit(pages.size)
        .offset(pages.offset)
    ).all()
    return [MessageLine(*row) for row in rows], pages, counts


def latest_nps_week(session: Session, now: datetime) -> Any:
    """The newest stored weekly NPS (an ``NpsWeekRow``) whose week had ended by ``now``, or None."""
    from sqlalchemy import select

    from auxeng.store.models import NpsWeekRow

    return session.scalar(
        select(NpsWeekRow).where(NpsWeekRow.ends_at <= now).order_by(NpsWeekRow.week.desc()).limit(1)
    )


def nps_summary(session: Session, now: datetime) -> NpsSummary | None:
    from sqlalchemy import select

    from auxeng.nps.digest import rate_text
    from auxeng.nps.weekly import QUARTER, WEEK, result_of
    from auxeng.store.models import NpsSnapshotRow

    header = latest_nps_week(session, now)
    if header is None:
        return None
    rows = {
        row.span: row
        for row in session.scalars(
            select(NpsSnapshotRow).where(
                NpsSnapshotRow.week == header.week,
                NpsSnapshotRow.segment == "program",
                NpsSnapshotRow.key == "all",
                NpsSnapshotRow.span.in_((WEEK, QUARTER)),
            )
        )
    }

    def shown(span: str) -> str:
        row = rows.get(span)
        return result_of(row).shown(header.min_responses) if row is not None else "too few responses"

    quarter = rows.get(QUARTER)
    end = header.week + timedelta(days=6)
    return NpsSummary(
        week=header.week,
        period=f"{header.week:%d %b} – {end:%d %b %Y}",
        quarter=shown(QUARTER),
        this_week=shown(WEEK),
        response_rate=rate_text(quarter.answered, quarter.invited) if quarter else rate_text(0, 0),
        computed_at=header.computed_at,
    )


def load_dashboard(session: Session, *, now: datetime, page: int = 1, outbox_page: int = 1) -> Dashboard:
    """Everything the page shows; a fixed number of statements (no query per row)."""
    from auxeng.redflags.alerts import flag_views
    from auxeng.redflags.store import live_flags

    engagements, engagement_pages = engagement_lines(session, page)
    messages, message_pages, counts = outbox_lines(session, outbox_page)
    return Dashboard(
        engagements=engagements,
        engagement_pages=engagement_pages,
        flags=flag_views(session, live_flags(session)),
        messages=messages,
        message_pages=message_pages,
        failed=counts.get(OutboxStatus.FAILED, 0),
        pending=counts.get(OutboxStatus.PENDING, 0),
        nps=nps_summary(session, now),
    )


# --- actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flash:
    """What an action tells the user on the page it returns to."""

    kind: str  # ok | info | error
    text: str


def acknowledge_flag(session: Session, flag_id: int, *, by: str, note: str, now: datetime) -> Flash:
    from auxeng.redflags.store import FlagNotFound, acknowledge

    try:
        outcome = acknowledge(session, flag_id, by=by, note=note, now=now)
    except FlagNotFound:
        return Flash("error", f"Red flag #{flag_id} is no longer in the store.")
    except ValueError as exc:
        return Flash("error", f"Red flag #{flag_id} was not acknowledged: {exc}.")
    flag = outcome.flag
    if outcome.state == "acknowledged":
        log.info("Red flag %s acknowledged by %s on the dashboard", flag_id, by)
        return Flash("ok", f"Red flag #{flag_id} acknowledged by {by}.")
    if outcome.state == "already":
        return Flash("info", f"Red flag #{flag_id} was already acknowledged by {flag.acknowledged_by}.")
    return Flash("info", f"Red flag #{flag_id} was resolved (its condition cleared): nothing to acknowledge.")


def retry_message(session: Session, message_id: int, *, by: str, now: datetime) -> Flash:
    """Queue a failed message again (pending, no attempts, no reason, due now). Only a failed one."""
    from auxeng.messaging import outbox

    changed = outbox.retry(session, message_id, now=now)
    if changed:
        log.info("Outbox message %s queued again by %s on the dashboard", message_id, by)
        return Flash("ok", f"Message #{message_id} is pending again: the next delivery run sends it.")
    return Flash("info", f"Message #{message_id} is not failed (any more): nothing to retry.")


# --- the NPS trend chart ------------------------------------------------------------------

_chart_cache: dict[tuple[date, datetime], bytes] = {}  # (week, computed_at) → PNG; a recomputed week is new
_chart_lock = threading.Lock()


def trend_chart(session: Session, now: datetime, week: date | None) -> bytes | None:
    """The PNG of the 13-week trend of ``week`` (default: the newest stored week), as in the digest;
    None when no such week is stored. Rendered once per stored week (a small in-process cache)."""
    from auxeng.nps.digest import trend_png, trend_points
    from auxeng.store.models import NpsWeekRow, ProgramRow

    header = session.get(NpsWeekRow, week) if week else latest_nps_week(session, now)
    if header is None:
        return None
    cache_key = (header.week, header.computed_at)
    with _chart_lock:
        if cache_key in _chart_cache:
            return _chart_cache[cache_key]
    program = session.get(ProgramRow, 1)
    png = trend_png(
        program.name if program else "AuxEng", header.week, trend_points(header), header.min_responses
    )
    with _chart_lock:
        while len(_chart_cache) >= CHART_CACHE_SIZE:
            _chart_cache.pop(next(iter(_chart_cache)))
        _chart_cache[cache_key] = png
    return png
