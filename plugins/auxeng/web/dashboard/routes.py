"""The AuxEng dashboard: a page for Airflow users, mounted at ``/auxeng/dashboard/`` in the pack's app
and shown in the Airflow UI through the plugin's ``external_views`` ("AuxEng" in the navigation).

What it shows: the ended engagements and their stage (survey response rate, check-in,
live red flags), the weekly NPS with its interval and trend chart, the live red flags with
an *Acknowledge* form, and the outbox's pending and failed messages with *Retry*.

Rules the handlers keep:

- **Logged-in Airflow users only.** Every route depends on Airflow's own
  ``airflow.api_fastapi.core_api.security.get_user``: the JWT from the
  ``Authorization: Bearer`` header or the ``_token`` cookie the UI's login sets.
  No credential: 401; a bad one: 403 (Airflow's answers), as a page linking to the login.
  The rest of the pack's app (survey, opt-out and acknowledge links) stays public.
- **CSRF.** The POSTs are authenticated by a cookie, so each form carries a token
  signed with ``AUXENG_SECRET_KEY`` (:mod:`auxeng.messaging.tokens`, purpose ``dashboard_csrf``)
  for the logged-in user's id, valid :data:`CSRF_HOURS` hours; a POST without a valid
  token for the same user is refused (403) before anything is read from the store.
  The page is framed by the Airflow UI only (``frame-ancestors 'self'``).
- **POST, then redirect** (303) to the page with a flash message (a short-lived cookie).
- **Bounded queries.** A page costs the same few SQL statements whatever the store
  holds: aggregates in the database, one page of rows (:data:`PAGE_SIZE`).
- **Nothing heavy at import.** The plugin manager imports this module in every Airflow
  process: Airflow's API security module and the store are imported on the first request.
  "Now" is :func:`current_time` (tests override it on :func:`application`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import math
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from jinja2 import Environment
    from sqlalchemy.orm import Session
    from starlette.types import Receive, Scope, Send

    from auxeng.redflags.alerts import FlagView
    from auxeng.settings import Settings

log = logging.getLogger(__name__)

PAGE_SIZE = 50
MAX_PAGE = 1_000_000
CSRF_PURPOSE = "dashboard_csrf"
CSRF_FIELD = "csrf"
CSRF_HOURS = 12
FLASH_COOKIE = "auxeng_dashboard_flash"
FORM_LIMIT = 16 * 1024
REASON_LIMIT = 500
CHART_CACHE_SIZE = 8
END_SURVEY = "post_engagement"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'self'"
    ),
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def current_time() -> datetime:
    """The wall clock (a dependency, so tests can set the time)."""
    return datetime.now(tz=UTC)


Now = Annotated[datetime, Depends(current_time)]


class _LazyDashboard:
    """The ASGI app mounted by :mod:`auxeng.web.application`; builds :func:`application` on its first request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await application()(scope, receive, send)


app = _LazyDashboard()


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
        invitation.survey == END_SURVEY,
        invitation.status == "invited",
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

    waiting = OutboxRow.status.in_(("failed", "pending"))
    counts = dict(
        session.execute(
            select(OutboxRow.status, func.count()).where(waiting).group_by(OutboxRow.status)
        ).all()
    )
    pages = Pages(_page_number(page, sum(counts.values())), sum(counts.values()))
    failed_first = case((OutboxRow.status == "failed", 0), else_=1)
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
            case((OutboxRow.status == "failed", OutboxRow.updated_at), else_=None).desc(),
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
        failed=counts.get("failed", 0),
        pending=counts.get("pending", 0),
        nps=nps_summary(session, now),
    )


# --- actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flash:
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
    from sqlalchemy import update

    from auxeng.store.models import OutboxRow

    changed = session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == message_id, OutboxRow.status == "failed")
        .values(status="pending", attempts=0, reason=None, not_before=now, claimed_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed:
        log.info("Outbox message %s queued again by %s on the dashboard", message_id, by)
        return Flash("ok", f"Message #{message_id} is pending again: the next delivery run sends it.")
    return Flash("info", f"Message #{message_id} is not failed (any more): nothing to retry.")


# --- CSRF and flash messages --------------------------------------------------------------


def csrf_token(user_id: str, *, key: bytes, now: datetime) -> str:
    """A form token for ``user_id``, signed with the pack's key, valid :data:`CSRF_HOURS` hours."""
    from auxeng.messaging.tokens import sign

    return sign(CSRF_PURPOSE, user_id, now + timedelta(hours=CSRF_HOURS), key=key)


def csrf_valid(token: str | None, user_id: str, *, key: bytes, now: datetime) -> bool:
    from auxeng.messaging.tokens import TokenError, verify

    if not token:
        return False
    try:
        return verify(token, CSRF_PURPOSE, key=key, now=now).subject == user_id
    except TokenError:
        return False


def _encode_flash(flash: Flash) -> str:
    raw = json.dumps([flash.kind, flash.text[:600]], ensure_ascii=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_flash(value: str | None) -> Flash | None:
    if not value or len(value) > 2000:
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError, TypeError):
        return None
    if kind not in ("ok", "info", "error") or not isinstance(text, str):
        return None
    return Flash(kind, text)


# --- web ----------------------------------------------------------------------------------


def _templates() -> Environment:
    from auxeng.settings import include_dir
    from auxeng.web.application import template_environment

    return template_environment(str(include_dir() / "templates" / "dashboard"))


def _html(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _templates().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _base(request: Request) -> str:
    """The dashboard's own path (``/auxeng/dashboard``), wherever the app is mounted."""
    return request.scope.get("root_path", "").rstrip("/")


def _page_query(page: int, outbox_page: int) -> str:
    params = {name: value for name, value in (("page", page), ("outbox_page", outbox_page)) if value > 1}
    return f"?{urlencode(params)}" if params else ""


def _when(settings: Settings) -> Any:
    def when(moment: datetime | None) -> str:
        if moment is None:
            return "–"
        local = moment.astimezone(settings.timezone)
        return f"{local.day} {local:%b %Y %H:%M %Z}"

    return when


async def _read_form(request: Request) -> dict[str, str] | None:
    """A url-encoded form of at most :data:`FORM_LIMIT` bytes (first value per name), or None."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != (
        "application/x-www-form-urlencoded"
    ):
        return None
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > FORM_LIMIT:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            return None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except ValueError:
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def _number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and len(text) < 8 else 1


def _back(request: Request, form: dict[str, str], flash: Flash) -> RedirectResponse:
    """303 to the page the form was on, carrying ``flash`` in a short-lived cookie."""
    base = _base(request)
    query = _page_query(_number(form.get("page")), _number(form.get("outbox_page")))
    response = RedirectResponse(f"{base}/{query}", status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        FLASH_COOKIE,
        _encode_flash(flash),
        max_age=60,
        path=f"{base}/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def _refuse(status: int, title: str, text: str, base: str) -> HTMLResponse:
    return _html("message.html", status, title=title, text=text, back=f"{base}/", login_url=None)


@functools.cache
def application() -> FastAPI:
    """The dashboard's FastAPI app (built once, on the first request; imports Airflow's auth)."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException

    from auxeng.messaging.tokens import MissingSecretKey, secret_key
    from auxeng.settings import load_settings
    from auxeng.store.db import open_store, session_scope

    dashboard = FastAPI(
        title="AuxEng dashboard",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(get_user)],
    )

    @dashboard.exception_handler(HTTPException)
    async def not_logged_in(request: Request, exc: HTTPException) -> Response:
        if exc.status_code not in (401, 403):
            return await http_exception_handler(request, exc)
        login_url = None
        try:
            from airflow.api_fastapi.app import get_auth_manager

            login_url = get_auth_manager().get_url_login(next_url=str(request.url))
        except Exception:  # no auth manager in this process: no link, the status says enough
            log.debug("No Airflow auth manager to link the login page from", exc_info=True)
        return _html(
            "message.html",
            exc.status_code,
            title="Log in to Airflow" if exc.status_code == 401 else "Your Airflow login is not valid",
            text=f"The AuxEng dashboard is for Airflow users ({exc.detail}). "
            "Log in to Airflow, then open AuxEng from its menu.",
            back=None,
            login_url=login_url,
        )

    # The annotations are strings (``from __future__``) resolved in the module's globals, so the
    # Airflow user is asked for through a default value, ``Depends(get_user)`` (imported above).
    @dashboard.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def show(
        request: Request,
        now: Now,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        outbox_page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        user: Any = Depends(get_user),  # noqa: B008
    ) -> Response:
        settings = load_settings()
        with session_scope(open_store()) as session:
            data = load_dashboard(session, now=now, page=page, outbox_page=outbox_page)
        try:
            csrf = csrf_token(user.get_id(), key=secret_key(), now=now)
        except MissingSecretKey as exc:
            log.error("Dashboard actions disabled: %s", exc)
            csrf = None
        base = _base(request)
        response = _html(
            "dashboard.html",
            title="AuxEng dashboard",
            data=data,
            user=user.get_name(),
            now=now,
            when=_when(settings),
            csrf=csrf,
            csrf_field=CSRF_FIELD,
            flash=_decode_flash(request.cookies.get(FLASH_COOKIE)),
            page=data.engagement_pages.page,
            outbox_page=data.message_pages.page,
            query=_page_query,
            base=base,
        )
        if FLASH_COOKIE in request.cookies:
            response.delete_cookie(FLASH_COOKIE, path=f"{base}/")
        return response

    @dashboard.get("/nps.png")
    def nps_chart(now: Now, week: date | None = None) -> Response:
        """The 13-week trend chart of the newest stored week (or of ``week``), as in the digest."""
        png = _chart(now, week)
        if png is None:
            return Response("no weekly NPS stored for that week", status_code=404, media_type="text/plain")
        headers = {**SECURITY_HEADERS, "Cache-Control": "private, max-age=300"}
        return Response(png, media_type="image/png", headers=headers)

    async def _action(request: Request, user: Any, now: datetime, act: Any) -> Response:
        base = _base(request)
        form = await _read_form(request)
        if form is None:
            return _refuse(
                400, "This form could not be read", "Go back to the dashboard and try again.", base
            )
        try:
            key = secret_key()
        except MissingSecretKey as exc:
            log.error("Dashboard action refused: %s", exc)
            return _refuse(503, "Not available", "Actions need AUXENG_SECRET_KEY to be set.", base)
        if not csrf_valid(form.get(CSRF_FIELD), user.get_id(), key=key, now=now):
            return _refuse(
                403,
                "This form expired",
                "The form was not sent from your dashboard page or is too old. Reload the dashboard and try again.",
                base,
            )

        def run() -> Flash:
            with session_scope(open_store()) as session:
                return act(session, form)

        return _back(request, form, await run_in_threadpool(run))

    @dashboard.post("/flags/{flag_id}/ack")
    async def ack(
        request: Request,
        flag_id: int,
        now: Now,
        user: Any = Depends(get_user),  # noqa: B008
    ) -> Response:
        """Acknowledge a live red flag: who (the Airflow user) and why (the note)."""
        return await _action(
            request,
            user,
            now,
            lambda session, form: acknowledge_flag(
                session, flag_id, by=user.get_name(), note=form.get("note", ""), now=now
            ),
        )

    @dashboard.post("/outbox/{message_id}/retry")
    async def retry(
        request: Request,
        message_id: int,
        now: Now,
        user: Any = Depends(get_user),  # noqa: B008
    ) -> Response:
        """Queue a failed outbox message again."""
        return await _action(
            request,
            user,
            now,
            lambda session, _form: retry_message(session, message_id, by=user.get_name(), now=now),
        )

    return dashboard


_chart_cache: dict[tuple[date, datetime], bytes] = {}  # (week, computed_at) → PNG; a recomputed week is new
_chart_lock = threading.Lock()


def _chart(now: datetime, week: date | None) -> bytes | None:
    from auxeng.nps.digest import trend_png, trend_points
    from auxeng.store.db import open_store, session_scope
    from auxeng.store.models import NpsWeekRow, ProgramRow

    with session_scope(open_store()) as session:
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
