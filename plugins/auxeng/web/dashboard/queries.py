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
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from auxeng.surveys.tally import Tally, invitation_tally
from auxeng.vocabulary import OutboxStatus, SurveyKind

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
    team_key: str
    team: str
    end_date: date
    checkin_status: str | None
    checkin_due: date | None
    live_flags: int
    host_survey: Tally  # the host-team survey: its answers count in the NPS
    retro: Tally  # the platform team's retro: not NPS


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
    """One page of a paginated list: ``page`` of ``pages`` (1-based), ``total`` rows in all.

    The page number is for display; the rows are found by **keyset** (the sort key of the row
    before or after the page, :class:`Seek`), never by ``OFFSET``, so a late page costs what the
    first does. ``prev_cursor``/``next_cursor``: the cursors of the links (None: no such page).
    """

    page: int
    total: int
    size: int = PAGE_SIZE
    prev_cursor: str | None = None
    next_cursor: str | None = None

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
    min_responses: int  # the privacy threshold the week was computed with
    why_no_score: str | None = None  # why the 13 weeks show no NPS (None: they show one)


@dataclass(frozen=True)
class Dashboard:
    engagements: list[EngagementLine]
    engagement_pages: Pages
    flags: list[FlagView]
    messages: list[MessageLine]
    message_pages: Pages
    failed: int
    in_doubt: int
    pending: int
    nps: NpsSummary | None
    nps_news: NpsNews
    nps_chart: str | None  # the 13-week trend as inline SVG (None before the first weekly NPS)
    why_none_ended: str | None = None  # why no engagement is listed (None: some are)


NEEDS_A_PERSON = (OutboxStatus.FAILED, OutboxStatus.IN_DOUBT)  # listed first, with a Retry button


class BadCursor(ValueError):
    """A page cursor the dashboard did not make (malformed, too long, out of range)."""


CURSOR_LIMIT = 200


@dataclass(frozen=True)
class Seek:
    """Where a page starts: ``after`` (the rows following) or ``before`` (the rows preceding) the
    row whose sort key the cursor holds; no cursor: the first page."""

    after: str | None = None
    before: str | None = None
    page: int = 1


def _parts(cursor: str, count: int) -> list[str]:
    if len(cursor) > CURSOR_LIMIT:
        raise BadCursor("too long")
    parts = cursor.split("|", count - 1)
    if len(parts) != count or not all(parts):
        raise BadCursor("not a cursor")
    return parts


def engagement_cursor(cursor: str) -> tuple[date, str]:
    """``<end date>|<key>`` → (end date, key); :class:`BadCursor` if it is not one."""
    day, key = _parts(cursor, 2)
    try:
        end = date.fromisoformat(day)
    except ValueError:
        raise BadCursor("not a date") from None
    if len(day) != 10 or len(key) > 64:
        raise BadCursor("not a cursor")
    return end, key


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadCursor("not a time") from None
    if moment.tzinfo is None:
        raise BadCursor("a time without its zone")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise BadCursor("a time out of range") from None


def outbox_cursor(cursor: str) -> tuple[bool, datetime | None, datetime, int]:
    """``f|<updated_at>|<not_before>|<id>`` (failed or in doubt) or ``p|<not_before>|<id>``
    (pending) → (needs a person, updated_at, not_before, id); :class:`BadCursor` if it is not one."""
    kind = cursor[:1]
    if kind == "f":
        _, updated, due, ident = _parts(cursor, 4)
        updated_at: datetime | None = _moment(updated)
    elif kind == "p":
        _, due, ident = _parts(cursor, 3)
        updated_at = None
    else:
        raise BadCursor("not a cursor")
    if not (ident.isdigit() and len(ident) < 19):
        raise BadCursor("not an id")
    return kind == "f", updated_at, _moment(due), int(ident)


def check_seek(seek: Seek, parse: Any) -> None:
    """Raise :class:`BadCursor` unless both cursors of ``seek`` parse with ``parse``."""
    for cursor in (seek.after, seek.before):
        if cursor is not None:
            parse(cursor)


def _later(keys: list[tuple[Any, bool, Any]], forward: bool) -> Any:
    """Rows after (``forward``) or before the key values: keys are (expression, descending, value)."""
    from sqlalchemy import and_, or_

    expr, descending, value = keys[0]
    beyond = expr < value if descending == forward else expr > value
    if len(keys) == 1:
        return beyond
    return or_(beyond, and_(expr == value, _later(keys[1:], forward)))


def _page(rows: list[Any], seek: Seek, total: int, cursor_of: Any) -> tuple[list[Any], Pages]:
    """The page from the ``size + 1`` rows fetched for ``seek`` (in the list's order), with its links."""
    size = PAGE_SIZE
    pages = max(1, math.ceil(total / size))
    if seek.before is not None:
        more_before = len(rows) > size
        rows = rows[-size:] if more_before else rows
        page = max(2, min(seek.page, pages)) if more_before else 1
        more_after = True
    else:
        more_before = seek.after is not None
        more_after = len(rows) > size
        rows = rows[:size]
        page = max(2, min(seek.page, pages)) if more_before else 1
    return rows, Pages(
        page,
        total,
        prev_cursor=cursor_of(rows[0]) if more_before and rows else None,
        next_cursor=cursor_of(rows[-1]) if more_after and rows else None,
    )


def engagement_lines(session: Session, seek: Seek = Seek()) -> tuple[list[EngagementLine], Pages]:
    """Ended engagements, latest end first (then by key), with their stage and the tally of their two
    end-of-engagement surveys (:mod:`auxeng.surveys.tally`): three statements, whatever the store
    holds; the page found by keyset on (end date, key) (index ``ix_auxeng_engagements_end_key``)."""
    from sqlalchemy import func, select

    from auxeng.redflags.store import LIVE
    from auxeng.registry.lifecycle import ended_and_live_clause
    from auxeng.store.models import CheckinRow, EngagementRow, FlagRow, TeamRow

    ended = (ended_and_live_clause(),)
    total = session.scalar(select(func.count()).select_from(EngagementRow).where(*ended)) or 0
    flags = (
        select(func.count())
        .where(FlagRow.engagement_key == EngagementRow.key, FlagRow.status.in_(LIVE))
        .correlate(EngagementRow)
        .scalar_subquery()
    )
    order = (EngagementRow.end_date.desc(), EngagementRow.key)
    reverse = (EngagementRow.end_date, EngagementRow.key.desc())
    rows = session.execute(
        select(
            EngagementRow.key,
            EngagementRow.title,
            EngagementRow.host_team_key,
            func.coalesce(TeamRow.name, EngagementRow.host_team_key),
            EngagementRow.end_date,
            CheckinRow.status,
            func.coalesce(CheckinRow.due_override, CheckinRow.due_on),
            flags,
        )
        .outerjoin(TeamRow, TeamRow.key == EngagementRow.host_team_key)
        .outerjoin(CheckinRow, CheckinRow.engagement_key == EngagementRow.key)
        .where(*ended, *_engagement_seek(seek))
        .order_by(*(order if seek.before is None else reverse))
        .limit(PAGE_SIZE + 1)
    ).all()
    if seek.before is not None:
        rows.reverse()
    lines, pages = _page(rows, seek, total, lambda row: f"{row[4].isoformat()}|{row[0]}")
    tally = invitation_tally(session, [row[0] for row in lines])
    return [
        EngagementLine(
            *row,
            host_survey=tally.get((row[0], SurveyKind.POST_ENGAGEMENT), Tally()),
            retro=tally.get((row[0], SurveyKind.RETRO), Tally()),
        )
        for row in lines
    ], pages


def _engagement_seek(seek: Seek) -> list[Any]:
    from auxeng.store.models import EngagementRow

    cursor = seek.before if seek.before is not None else seek.after
    if cursor is None:
        return []
    end, key = engagement_cursor(cursor)
    keys = [(EngagementRow.end_date, True, end), (EngagementRow.key, False, key)]
    forward = seek.before is None
    # The first key's bound on its own as well, so that the database seeks the index to it.
    bound = EngagementRow.end_date <= end if forward else EngagementRow.end_date >= end
    return [bound, _later(keys, forward=forward)]


def outbox_lines(session: Session, seek: Seek = Seek()) -> tuple[list[MessageLine], Pages, dict[str, int]]:
    """Messages that need a person (failed or in doubt, newest first), then pending ones (next
    due first), ties by id: two statements; the page found by keyset on that order."""
    from sqlalchemy import case, func, select

    from auxeng.store.models import OutboxRow

    waiting = OutboxRow.status.in_((*NEEDS_A_PERSON, OutboxStatus.PENDING))
    counts = dict(
        session.execute(
            select(OutboxRow.status, func.count()).where(waiting).group_by(OutboxRow.status)
        ).all()
    )
    attention = OutboxRow.status.in_(NEEDS_A_PERSON)
    failed_first = case((attention, 0), else_=1)
    failed_time = case((attention, OutboxRow.updated_at), else_=None)
    order = (failed_first, failed_time.desc(), OutboxRow.not_before, OutboxRow.id)
    reverse = (failed_first.desc(), failed_time, OutboxRow.not_before.desc(), OutboxRow.id.desc())
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
        .where(waiting, *_outbox_seek(seek))
        .order_by(*(order if seek.before is None else reverse))
        .limit(PAGE_SIZE + 1)
    ).all()
    if seek.before is not None:
        rows.reverse()

    def cursor_of(row: Any) -> str:
        if row[1] in NEEDS_A_PERSON:
            return f"f|{row[9].isoformat()}|{row[8].isoformat()}|{row[0]}"
        return f"p|{row[8].isoformat()}|{row[0]}"

    lines, pages = _page(rows, seek, sum(counts.values()), cursor_of)
    return [MessageLine(*row) for row in lines], pages, counts


def _outbox_seek(seek: Seek) -> list[Any]:
    """Failed and in-doubt rows (updated_at desc, not_before, id), then pending ones (not_before, id)."""
    from sqlalchemy import and_, literal, or_

    from auxeng.store.models import OutboxRow

    cursor = seek.before if seek.before is not None else seek.after
    if cursor is None:
        return []
    forward = seek.before is None
    failed, updated_at, due, ident = outbox_cursor(cursor)
    kind = OutboxRow.not_before.type
    tail = [(OutboxRow.not_before, False, literal(due, kind)), (OutboxRow.id, False, ident)]
    is_failed, is_pending = OutboxRow.status.in_(NEEDS_A_PERSON), OutboxRow.status == OutboxStatus.PENDING
    if failed:
        within = and_(
            is_failed, _later([(OutboxRow.updated_at, True, literal(updated_at, kind)), *tail], forward)
        )
        return [or_(is_pending, within) if forward else within]
    within = and_(is_pending, _later(tail, forward))
    return [within if forward else or_(is_failed, within)]


def latest_nps_week(session: Session, now: datetime) -> Any:
    """The newest stored weekly NPS (an ``NpsWeekRow``) whose week had ended by ``now``, or None."""
    from sqlalchemy import select

    from auxeng.store.models import NpsWeekRow

    return session.scalar(
        select(NpsWeekRow).where(NpsWeekRow.ends_at <= now).order_by(NpsWeekRow.week.desc()).limit(1)
    )


def nps_summary(session: Session, now: datetime) -> NpsSummary | None:
    """The newest stored week's program NPS (the week and 13 weeks), or None before the first run;
    with why there is no score, what came in since and where its digest is."""
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
    responses = quarter.responses if quarter else 0
    return NpsSummary(
        week=header.week,
        period=f"{header.week:%d %b} – {end:%d %b %Y}",
        quarter=shown(QUARTER),
        this_week=shown(WEEK),
        response_rate=rate_text(quarter.answered, quarter.invited) if quarter else rate_text(0, 0),
        computed_at=header.computed_at,
        min_responses=header.min_responses,
        why_no_score=None
        if responses >= header.min_responses
        else _why_no_score(session, header, quarter.invited if quarter else 0, responses),
    )


def _why_no_score(session: Session, header: Any, invited: int, responses: int) -> str:
    """Why the 13 weeks to ``header``'s week show no NPS, from the store: nobody invited (and
    whether any engagement ended in them), nobody answered yet, or too few answers to show."""
    from sqlalchemy import func, select

    from auxeng.registry.lifecycle import ended_and_live_clause
    from auxeng.store.models import EngagementRow

    threshold = header.min_responses
    if invited == 0:
        first = header.week - timedelta(weeks=12)
        ended = session.scalar(
            select(func.count()).where(
                ended_and_live_clause(),
                EngagementRow.end_date.between(first, header.week + timedelta(days=6)),
            )
        )
        if not ended:
            return f"No answers yet: no engagement ended in the 13 weeks since {first:%d %b %Y}, so nobody was invited."
        return (
            f"No answers yet: {ended} engagement(s) ended in these 13 weeks, but none of their host-team "
            "surveys or check-ins had gone out by the week's end."
        )
    if responses == 0:
        return f"No answers yet: {invited} invited in these 13 weeks, none answered by the week's end."
    return (
        f"{responses} answer(s) in these 13 weeks: fewer than {threshold} (AUXENG_NPS_MIN_RESPONSES), "
        "so no score is shown, to protect who answered."
    )


@dataclass(frozen=True)
class NpsNews:
    """What the weekly NPS does not show yet, from the store as it is now."""

    answers_since: int  # NPS answers recorded after the newest stored week (or ever, before the first)
    next_run: datetime  # auxeng_weekly_nps's next run, which counts them
    digest: str  # the newest week's digest: where it is, or why there is none


def nps_news(session: Session, now: datetime, summary: NpsSummary | None) -> NpsNews:
    """The answers recorded since the newest stored week ended, the next weekly run, and that week's
    digest (sent, queued, or why not: :func:`auxeng.nps.digest.too_old_to_send`): two statements."""
    from sqlalchemy import func, select

    from auxeng.nps.digest import too_old_to_send
    from auxeng.nps.weekly import next_weekly_run
    from auxeng.settings import load_settings
    from auxeng.store.models import NpsWeekRow, OutboxRow, SurveyResponseRow
    from auxeng.vocabulary import NPS_SURVEYS, MessageKind

    settings = load_settings()
    answers = select(func.count()).where(
        SurveyResponseRow.survey.in_(NPS_SURVEYS), SurveyResponseRow.nps.is_not(None)
    )
    next_run = next_weekly_run(now, settings.timezone)
    if summary is None:
        return NpsNews(
            session.scalar(answers) or 0, next_run, "No digest yet: there is no weekly NPS to send."
        )
    ends_at = session.get(NpsWeekRow, summary.week).ends_at
    since = session.scalar(answers.where(SurveyResponseRow.submitted_at >= ends_at)) or 0
    queued = dict(
        session.execute(
            select(OutboxRow.status, func.count())
            .where(
                OutboxRow.kind == MessageKind.NPS_DIGEST,
                OutboxRow.dedupe_key.startswith(
                    f"{MessageKind.NPS_DIGEST}:{summary.week.isoformat()}:", autoescape=True
                ),
            )
            .group_by(OutboxRow.status)
        ).all()
    )
    if queued:
        digest = f"Digest of the week of {summary.period}: " + ", ".join(
            f"{n} {status}" for status, n in sorted(queued.items())
        )
    elif too_old_to_send(ends_at, now, settings.digest_max_age_days):
        digest = (
            f"No digest for the week of {summary.period}: it ended more than "
            f"{settings.digest_max_age_days} days ago (AUXENG_DIGEST_MAX_AGE_DAYS), so a run for it is a "
            "backfill and sends none. The next weekly run sends the digest of the week it computes."
        )
    else:
        digest = (
            f"No digest queued for the week of {summary.period} yet: auxeng_weekly_digest queues it when "
            "auxeng_weekly_nps announces the week (to the registry's stakeholders and digest channel)."
        )
    return NpsNews(since, next_run, digest)


def load_dashboard(
    session: Session, *, now: datetime, seek: Seek = Seek(), outbox_seek: Seek = Seek()
) -> Dashboard:
    """Everything the page shows; a fixed number of statements (no query per row). A bad cursor in
    ``seek``/``outbox_seek``: :class:`BadCursor`, before any statement."""
    from auxeng.redflags.alerts import flag_views
    from auxeng.redflags.store import live_flags

    check_seek(seek, engagement_cursor)
    check_seek(outbox_seek, outbox_cursor)
    engagements, engagement_pages = engagement_lines(session, seek)
    messages, message_pages, counts = outbox_lines(session, outbox_seek)
    summary = nps_summary(session, now)
    return Dashboard(
        engagements=engagements,
        engagement_pages=engagement_pages,
        flags=flag_views(session, live_flags(session)),
        messages=messages,
        message_pages=message_pages,
        failed=counts.get(OutboxStatus.FAILED, 0),
        in_doubt=counts.get(OutboxStatus.IN_DOUBT, 0),
        pending=counts.get(OutboxStatus.PENDING, 0),
        nps=summary,
        nps_news=nps_news(session, now, summary),
        nps_chart=trend_svg_of(session, summary.week) if summary else None,
        why_none_ended=why_none_ended(session, now) if engagement_pages.total == 0 else None,
    )


def why_none_ended(session: Session, now: datetime) -> str:
    """Why no engagement has ended, from the store: some are past their last day but not marked
    ended yet, or the first end is still to come, or the registry holds none."""
    from sqlalchemy import func, not_, select

    from auxeng.registry.lifecycle import due_to_end_clause, ended_clause, live_clause
    from auxeng.settings import load_settings
    from auxeng.store.models import EngagementRow

    today = now.astimezone(load_settings().timezone).date()
    due = session.scalar(select(func.count()).where(due_to_end_clause(today))) or 0
    if due:
        return (
            f"No engagement has been marked ended yet: {due} are past their last day, and "
            "auxeng_detect_ended marks them on its next daily run (their surveys follow)."
        )
    first = session.scalar(
        select(func.min(EngagementRow.end_date)).where(live_clause(), not_(ended_clause()))
    )
    if first is None:
        return "No engagement has ended yet: the store holds none (auxeng_sync_registry loads the registry)."
    return f"No engagement has ended yet: the first ends on {first:%d %b %Y}."


# --- a host team's page --------------------------------------------------------------------


class UnknownTeam(LookupError):
    """No host team with that key in the store."""


@dataclass(frozen=True)
class TimelineItem:
    """One engagement of the team on its timeline; ``left``/``width``/``due_at`` are percentages of
    the timeline's span (from the first start to the last end or check-in)."""

    key: str
    title: str
    start: date
    end: date
    state: str  # planned | running | ended | cancelled
    checkin_status: str | None
    checkin_due: date | None
    checkin_closed: date | None
    left: float
    width: float
    due_at: float | None


@dataclass(frozen=True)
class ComponentLine:
    label: str
    value: str
    points: float
    share: float
    contribution: float
    missing: str | None  # the reason when the component is missing (then it counts for nothing)


@dataclass(frozen=True)
class SignalLine:
    """One engagement's independence score in the team's latest computed week, with its components."""

    engagement_key: str
    end_date: date
    total: float | None
    independent: bool | None
    components: list[ComponentLine]


@dataclass(frozen=True)
class TeamPage:
    key: str
    name: str
    org: str | None
    manager: str | None
    removed: bool
    timeline: list[TimelineItem]  # the latest PAGE_SIZE engagements by start, oldest first
    engagements: int  # all of the team's engagements in the registry
    week: date | None  # the latest computed independence week (None: none yet)
    score: str  # the team's score that week, in words
    chart: str | None  # the trend as inline SVG (None: no week with a score)
    signals: list[SignalLine]  # the latest PAGE_SIZE by end date
    counted: int  # the team's engagements counted in the latest week's snapshot
    flags: list[FlagView]
    min_responses: int | None


@dataclass(frozen=True)
class _Span:
    key: str
    title: str
    start_date: date
    end_date: date
    cancelled: bool
    status: str | None
    due: date | None
    closed_at: datetime | None


def _timeline(rows: list[_Span], today: date) -> list[TimelineItem]:
    if not rows:
        return []
    first = min(row.start_date for row in rows)
    last = max(max(row.end_date, row.due or row.end_date) for row in rows)
    span = max((last - first).days, 1)

    def at(day: date) -> float:
        return round(100 * (day - first).days / span, 2)

    items = []
    for row in rows:
        state = (
            "cancelled"
            if row.cancelled
            else "planned"
            if row.start_date > today
            else "running"
            if row.end_date >= today
            else "ended"
        )
        items.append(
            TimelineItem(
                key=row.key,
                title=row.title,
                start=row.start_date,
                end=row.end_date,
                state=state,
                checkin_status=row.status,
                checkin_due=row.due,
                checkin_closed=row.closed_at.date() if row.closed_at else None,
                left=at(row.start_date),
                width=max(at(row.end_date) - at(row.start_date), 0.5),
                due_at=at(row.due) if row.due else None,
            )
        )
    return items


def _signals(scores: list[Any]) -> list[SignalLine]:
    from auxeng.independence.views import component_label, value_text

    return [
        SignalLine(
            engagement_key=score.engagement_key,
            end_date=score.end_date,
            total=score.total,
            independent=score.independent,
            components=[
                ComponentLine(
                    label=component_label(str(part.get("name"))),
                    value=value_text(part.get("value")),
                    points=float(part.get("points") or 0),
                    share=float(part.get("share") or 0),
                    contribution=float(part.get("contribution") or 0),
                    missing=(part.get("reason") or "missing") if part.get("status") == "missing" else None,
                )
                for part in score.components or []
            ],
        )
        for score in scores
    ]


def team_chart(name: str, weeks: list[Any], last: date) -> str | None:
    """The team's score over the 13 weeks to ``last`` as inline SVG (gaps where a week has no
    score); None when no week has one."""
    from auxeng.independence.views import TREND_WEEKS
    from auxeng.nps.chart import SCORE_TICKS, SeriesPoint, series_svg

    by_week = {row.week: row for row in weeks}
    if not any(row.score is not None for row in weeks):
        return None
    points = []
    for n in range(TREND_WEEKS):
        week = last - timedelta(weeks=TREND_WEEKS - 1 - n)
        row = by_week.get(week)
        score = row.score if row is not None else None
        points.append(
            SeriesPoint(
                week=week,
                value=score,
                count=row.scored if row is not None else 0,
                text=f"{score:.0f} / 100 over {row.scored} engagement(s)"
                if row and score is not None
                else "",
            )
        )
    shown = sum(p.value is not None for p in points)
    return series_svg(
        points,
        title=f"{name}: independence, 13 weeks to {last + timedelta(days=6):%d %b %Y}",
        desc=f"{TREND_WEEKS} weeks; a score (0 to 100) in {shown} of them; bars: engagements scored.",
        label_id="independence-chart",
        ticks=SCORE_TICKS,
        value_name="Score",
        count_name="engagements",
        count_minimum=1,
        gap_label=None,
    )


def load_team_page(session: Session, team_key: str, *, now: datetime) -> TeamPage:
    """A host team's page: its engagements on a timeline, its independence trend and the signals
    behind its latest score, its live flags. Eight statements whatever the store holds (six
    before any independence week). :class:`UnknownTeam` when the store has no such team."""
    from sqlalchemy import func, select

    from auxeng.independence import views
    from auxeng.redflags.alerts import flag_views
    from auxeng.redflags.store import LIVE
    from auxeng.registry.lifecycle import is_cancelled, removed_clause
    from auxeng.settings import load_settings
    from auxeng.store.models import CheckinRow, EngagementRow, FlagRow, TeamRow

    team = session.get(TeamRow, team_key)
    if team is None:
        raise UnknownTeam(team_key)
    today = now.astimezone(load_settings().timezone).date()
    engagements = session.execute(
        select(
            EngagementRow,
            CheckinRow.status,
            func.coalesce(CheckinRow.due_override, CheckinRow.due_on).label("due"),
            CheckinRow.closed_at,
            func.count().over().label("total"),
        )
        .outerjoin(CheckinRow, CheckinRow.engagement_key == EngagementRow.key)
        .where(EngagementRow.host_team_key == team_key, ~removed_clause())
        .order_by(EngagementRow.start_date.desc(), EngagementRow.key.desc())
        .limit(PAGE_SIZE)
    ).all()
    rows = [
        _Span(e.key, e.title, e.start_date, e.end_date, is_cancelled(e), status, due, closed)
        for e, status, due, closed, _total in reversed(engagements)
    ]
    header = views.latest_computed_week(session, now)
    week = header.week if header else None
    weeks = views.team_weeks(session, team_key, week) if week else []
    latest = next((row for row in weeks if row.week == week), None)
    if week is None:
        score = "No independence week computed yet (auxeng_weekly_nps computes one each Monday)."
    elif latest is None or latest.score is None:
        score = f"No score in the week of {week:%d %b %Y}: no ended engagement of the team is scored yet."
    else:
        score = f"{latest.score:.0f} / 100 in the week of {week:%d %b %Y}, over {latest.scored} engagement(s)"
    flags = list(
        session.scalars(
            select(FlagRow).where(FlagRow.team_key == team_key, FlagRow.status.in_(LIVE)).order_by(FlagRow.id)
        )
    )
    return TeamPage(
        key=team.key,
        name=team.name,
        org=team.org,
        manager=team.manager_name or team.manager_email,
        removed=team.removed_at is not None,
        timeline=_timeline(rows, today),
        engagements=engagements[0].total if engagements else 0,
        week=week,
        score=score,
        chart=team_chart(team.name, weeks, week) if week else None,
        signals=_signals(views.team_scores(session, team_key, week, limit=PAGE_SIZE)) if week else [],
        counted=latest.engagements if latest else 0,
        flags=flag_views(session, flags),
        min_responses=header.min_responses if header else None,
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
    """Queue a failed or in-doubt message again (pending, no attempts, no reason, due now)."""
    from auxeng.messaging import outbox

    changed = outbox.retry(session, message_id, now=now)
    if changed:
        log.info("Outbox message %s queued again by %s on the dashboard", message_id, by)
        return Flash("ok", f"Message #{message_id} is pending again: the next delivery run sends it.")
    return Flash("info", f"Message #{message_id} is not failed or in doubt (any more): nothing to retry.")


# --- the NPS trend chart ------------------------------------------------------------------

_chart_cache: dict[tuple[date, datetime], bytes] = {}  # (week, computed_at) → PNG; a recomputed week is new
_chart_lock = threading.Lock()


def trend_svg_of(session: Session, week: date) -> str:
    """The 13-week trend of stored ``week`` as inline SVG: the digest's chart, drawn without
    matplotlib, so the page shows it as it loads (one statement: the program's name)."""
    from auxeng.nps.chart import trend_svg
    from auxeng.nps.digest import chart_title, trend_points
    from auxeng.store.models import NpsWeekRow, ProgramRow

    header = session.get(NpsWeekRow, week)
    program = session.get(ProgramRow, 1)
    return trend_svg(
        trend_points(header),
        title=chart_title(program.name if program else "AuxEng", week),
        min_responses=header.min_responses,
    )


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
