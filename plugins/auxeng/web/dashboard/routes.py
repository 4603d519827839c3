"""The AuxEng dashboard: a page for Airflow users at ``/auxeng/dashboard/``, shown in the Airflow UI
through the plugin's ``external_views`` ("AuxEng" in the navigation).

What it shows: the ended engagements and their stage (survey response rate, check-in,
live red flags), the weekly NPS with its interval and trend chart, the live red flags with
an *Acknowledge* form, and the outbox's pending and failed messages with *Retry*
(the reads and the actions: :mod:`auxeng.web.dashboard.queries`). Each host team has its own
page, ``/auxeng/dashboard/teams/<key>``: its engagements on a timeline, its independence trend,
the signals behind its latest score and its live flags.

Rules the handlers keep:

- **Logged-in Airflow users only.** Every route depends on :func:`airflow_user`, Airflow's own
  ``airflow.api_fastapi.core_api.security.get_user``: the JWT from the
  ``Authorization: Bearer`` header or the ``_token`` cookie the UI's login sets.
  No credential: 401; a bad one: 403 (Airflow's answers), as a page linking to the login
  (:func:`login_page`). The rest of the pack's app (survey, opt-out and acknowledge links) stays public.
- **CSRF.** The POSTs are authenticated by a cookie, so each form carries a token
  signed with ``AUXENG_SECRET_KEY`` (:mod:`auxeng.messaging.tokens`, purpose ``dashboard_csrf``)
  for the logged-in user's id, valid :data:`CSRF_HOURS` hours; a POST without a valid
  token for the same user is refused (403) before anything is read from the store.
  The page is framed by the Airflow UI only (``frame-ancestors 'self'``).
- **POST, then redirect** (303) to the page with a flash message (a short-lived cookie).
- **Nothing heavy at import.** The plugin manager imports this module in every Airflow
  process: Airflow's API security module and the store are imported on the first request.
  "Now" is the app's one clock (:func:`auxeng.web.common.clock`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from auxeng.messaging.tokens import MissingSecretKey, TokenError, secret_key, sign, verify
from auxeng.surveys.tally import NPS_COUNTS
from auxeng.web.common import (
    DASHBOARD_HEADERS,
    BodyTooLarge,
    Now,
    is_form,
    parse_form,
    program_zone,
    read_body,
    render,
    row_id,
    short_time,
)
from auxeng.web.dashboard.queries import (
    CURSOR_LIMIT,
    BadCursor,
    Flash,
    Seek,
    UnknownTeam,
    acknowledge_flag,
    check_seek,
    engagement_cursor,
    load_dashboard,
    load_team_page,
    outbox_cursor,
    retry_message,
    trend_chart,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

PREFIX = "/dashboard"
MAX_PAGE = 1_000_000
CSRF_PURPOSE = "dashboard_csrf"
CSRF_FIELD = "csrf"
CSRF_HOURS = 12
FLASH_COOKIE = "auxeng_dashboard_flash"
FORM_LIMIT = 16 * 1024
FORM_FIELDS = 20


# --- Airflow's login ----------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False)


class NotSignedIn(Exception):
    """Airflow refused the request's credential: none or expired (401), invalid (403)."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


async def airflow_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Any:
    """The logged-in Airflow user, as Airflow's own ``get_user`` finds it (imported on first use)."""
    from airflow.api_fastapi.core_api.security import get_user

    try:
        return await get_user(request, bearer_credentials=credentials)
    except HTTPException as exc:
        if exc.status_code not in (401, 403):
            raise
        raise NotSignedIn(exc.status_code, str(exc.detail)) from exc


AirflowUser = Annotated[Any, Depends(airflow_user)]


async def login_page(request: Request, exc: NotSignedIn) -> Response:
    """The answer to :class:`NotSignedIn`: its status, as a page linking to Airflow's login."""
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


# --- the dashboard's answers to a bad request (every 4xx as a page, never FastAPI's JSON) ----------

_TITLES = {
    400: "This request could not be read",
    404: "Not found",
    405: "This page does not take that request",
    422: "This address is not valid",
}


def _is_dashboard(request: Request) -> bool:
    """Whether ``request`` is for the dashboard (``…/dashboard`` or below, wherever the app is mounted)."""
    path = request.scope.get("path", "")
    root = request.scope.get("root_path", "").rstrip("/")
    if root and path.startswith(root + "/"):
        path = path[len(root) :]
    return path == PREFIX or path.startswith(PREFIX + "/")


def _error_page(
    request: Request, status: int, text: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    response = _refuse(
        status, _TITLES.get(status, "This request could not be answered"), text, _base(request)
    )
    for name, value in (headers or {}).items():
        response.headers.setdefault(name, value)
    return response


async def http_error_page(request: Request, exc: StarletteHTTPException) -> Response:
    """The dashboard's page for an HTTP error (unknown page: 404, wrong method: 405, …); FastAPI's
    own answer elsewhere in the app."""
    if not _is_dashboard(request):
        return await http_exception_handler(request, exc)
    text = {
        404: "There is no such page or item on the AuxEng dashboard.",
        405: "Open the dashboard and use its buttons.",
    }.get(exc.status_code, "Go back to the dashboard and try again.")
    return _error_page(request, exc.status_code, text, dict(exc.headers or {}))


async def validation_error_page(request: Request, exc: RequestValidationError) -> Response:
    """The dashboard's page for a bad query parameter (``?page=-1``, ``?week=2026-02-30``): 422 with
    what was wrong, in words; FastAPI's own answer elsewhere in the app."""
    if not _is_dashboard(request):
        return await request_validation_exception_handler(request, exc)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    text = "The address has a value the dashboard cannot use (" + "; ".join(problems)[:500] + ")."
    return _error_page(request, 422, text)


router = APIRouter(prefix=PREFIX, dependencies=[Depends(airflow_user)], include_in_schema=False)


# --- CSRF and flash messages --------------------------------------------------------------


def csrf_token(user_id: str, *, key: bytes, now: datetime) -> str:
    """A form token for ``user_id``, signed with the pack's key, valid :data:`CSRF_HOURS` hours."""
    return sign(CSRF_PURPOSE, user_id, now + timedelta(hours=CSRF_HOURS), key=key)


def csrf_valid(token: str | None, user_id: str, *, key: bytes, now: datetime) -> bool:
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


# --- responses ----------------------------------------------------------------------------


def _html(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return render("dashboard", template, DASHBOARD_HEADERS, status, **context)


def _base(request: Request) -> str:
    """The dashboard's own path (``/auxeng/dashboard``), wherever the app is mounted."""
    return request.scope.get("root_path", "").rstrip("/") + PREFIX


SEEK_FIELDS = ("page", "after", "before", "outbox_page", "outbox_after", "outbox_before")


def _seek_params(seek: Seek, outbox_seek: Seek) -> dict[str, str]:
    """The query parameters that show these two pages (page 1 without a cursor: none)."""
    values = (
        ("page", seek.page if seek.page > 1 and (seek.after or seek.before) else None),
        ("after", seek.after),
        ("before", seek.before),
        (
            "outbox_page",
            outbox_seek.page if outbox_seek.page > 1 and (outbox_seek.after or outbox_seek.before) else None,
        ),
        ("outbox_after", outbox_seek.after),
        ("outbox_before", outbox_seek.before),
    )
    return {name: str(value) for name, value in values if value is not None}


def _page_query(seek: Seek, outbox_seek: Seek) -> str:
    params = _seek_params(seek, outbox_seek)
    return f"?{urlencode(params)}" if params else ""


def _link(pages: Any, direction: str) -> Seek:
    """The :class:`Seek` of the previous (``prev``), next (``next``) or first page of ``pages``."""
    if direction == "prev":  # to page 1: its plain address
        return Seek(before=pages.prev_cursor, page=pages.page - 1) if pages.page > 2 else Seek()
    if direction == "next":
        return Seek(after=pages.next_cursor, page=pages.page + 1)
    return Seek()


def _seek_from(page: str | None, after: str | None, before: str | None, parse: Any) -> Seek:
    """The :class:`Seek` a form carried back (anything the dashboard did not make: the first page)."""
    if after and before:
        return Seek()
    try:
        seek = Seek(after=after or None, before=before or None, page=_number(page))
        check_seek(seek, parse)
    except BadCursor:
        return Seek()
    return seek


async def _read_form(request: Request) -> dict[str, str] | None:
    """A url-encoded form of at most :data:`FORM_LIMIT` bytes (first value per name), or None."""
    if not is_form(request):
        return None
    try:
        return parse_form(await read_body(request, FORM_LIMIT), max_fields=FORM_FIELDS)
    except (BodyTooLarge, ValueError):
        return None


def _number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and len(text) < 8 else 1


def _back(request: Request, form: dict[str, str], flash: Flash) -> RedirectResponse:
    """303 to the page the form was on, carrying ``flash`` in a short-lived cookie."""
    base = _base(request)
    query = _page_query(
        _seek_from(form.get("page"), form.get("after"), form.get("before"), engagement_cursor),
        _seek_from(
            form.get("outbox_page"), form.get("outbox_after"), form.get("outbox_before"), outbox_cursor
        ),
    )
    response = RedirectResponse(f"{base}/{query}", status_code=303, headers=DASHBOARD_HEADERS)
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


# --- the routes ---------------------------------------------------------------------------


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
def dashboard_page(
    request: Request,
    user: AirflowUser,
    now: Now,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    outbox_page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    after: Annotated[str | None, Query(max_length=CURSOR_LIMIT)] = None,
    before: Annotated[str | None, Query(max_length=CURSOR_LIMIT)] = None,
    outbox_after: Annotated[str | None, Query(max_length=CURSOR_LIMIT)] = None,
    outbox_before: Annotated[str | None, Query(max_length=CURSOR_LIMIT)] = None,
) -> Response:
    """The dashboard: one page of engagements and one of the outbox, the NPS, the live flags.

    A page is found by its cursor (``after``/``before``: the sort key of the row next to it, as the
    page's links carry it; ``outbox_after``/``outbox_before`` for the outbox), never by skipping rows;
    ``page``/``outbox_page`` only number it. Without a cursor: the first page. A cursor the
    dashboard did not make: 422, as any bad parameter."""
    from auxeng.store.db import open_store, session_scope

    seek = _checked(Seek(after=after, before=before, page=page), engagement_cursor, "after", "before")
    outbox_seek = _checked(
        Seek(after=outbox_after, before=outbox_before, page=outbox_page),
        outbox_cursor,
        "outbox_after",
        "outbox_before",
    )
    zone = program_zone()
    with session_scope(open_store()) as session:
        data = load_dashboard(session, now=now, seek=seek, outbox_seek=outbox_seek)
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
        when=functools.partial(short_time, zone=zone),
        csrf=csrf,
        csrf_field=CSRF_FIELD,
        flash=_decode_flash(request.cookies.get(FLASH_COOKIE)),
        seek=seek,
        outbox_seek=outbox_seek,
        kept=_seek_params(seek, outbox_seek),
        query=_page_query,
        link=_link,
        first=Seek(),
        nps_counts=NPS_COUNTS,
        base=base,
    )
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path=f"{base}/")
    return response


def _checked(seek: Seek, parse: Any, after: str, before: str) -> Seek:
    """``seek`` if its cursors are the dashboard's own, else the 422 of a bad parameter."""
    problem = None
    if seek.after is not None and seek.before is not None:
        problem = (after, "give one of after and before")
    else:
        for name, cursor in ((after, seek.after), (before, seek.before)):
            try:
                if cursor is not None:
                    parse(cursor)
            except BadCursor as exc:
                problem = (name, f"not a page cursor of the dashboard ({exc})")
    if problem is None:
        return seek
    raise RequestValidationError(
        [{"loc": ("query", problem[0]), "msg": problem[1], "type": "value_error", "input": None}]
    )


@router.api_route("/teams/{team_key}", methods=["GET", "HEAD"], response_class=HTMLResponse)
def team_page(request: Request, team_key: str, user: AirflowUser, now: Now) -> Response:
    """A host team's page (its key as in the registry). A key no team can have (the registry's
    pattern: lower-case letters, digits, '-' and '_') is refused before the store is asked; a
    key the store does not know: 404, saying so."""
    import re

    from auxeng.registry.schema import KEY_MAX, TEAM_KEY_PATTERN
    from auxeng.store.db import open_store, session_scope

    if len(team_key) > KEY_MAX or not re.fullmatch(TEAM_KEY_PATTERN, team_key):
        return _error_page(
            request,
            404,
            "That is not a host team's key (lower-case letters, digits, '-' and '_', as in the registry).",
        )
    with session_scope(open_store()) as session:
        try:
            page = load_team_page(session, team_key, now=now)
        except UnknownTeam:
            return _error_page(
                request, 404, f"There is no host team '{team_key}' in the store: check the registry."
            )
    zone = program_zone()
    return _html(
        "team.html",
        title=f"{page.name}: host team",
        page=page,
        user=user.get_name(),
        now=now,
        when=functools.partial(short_time, zone=zone),
    )


@router.get("/nps.png")
def nps_chart(now: Now, week: date | None = None) -> Response:
    """The 13-week trend chart of the newest stored week (or of ``week``), as in the digest."""
    from auxeng.store.db import open_store, session_scope

    with session_scope(open_store()) as session:
        png = trend_chart(session, now, week)
    if png is None:
        return Response("no weekly NPS stored for that week", status_code=404, media_type="text/plain")
    headers = {**DASHBOARD_HEADERS, "Cache-Control": "private, max-age=300"}
    return Response(png, media_type="image/png", headers=headers)


async def _act(
    request: Request, user: Any, now: datetime, action: Callable[[Session, dict[str, str]], Flash]
) -> Response:
    """Read the form, check its CSRF token for ``user``, run ``action`` in one transaction, redirect."""
    from auxeng.store.db import open_store, session_scope

    base = _base(request)
    form = await _read_form(request)
    if form is None:
        return _refuse(400, "This form could not be read", "Go back to the dashboard and try again.", base)
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
            return action(session, form)

    return _back(request, form, await run_in_threadpool(run))


def _no_such(request: Request, what: str) -> HTMLResponse:
    return _error_page(request, 404, f"There is no {what} with that number.")


@router.post("/flags/{flag_id}/ack")
async def ack_flag(request: Request, flag_id: str, user: AirflowUser, now: Now) -> Response:
    """Acknowledge a live red flag: who (the Airflow user) and why (the note)."""
    number = row_id(flag_id)
    if number is None:
        return _no_such(request, "red flag")
    return await _act(
        request,
        user,
        now,
        lambda session, form: acknowledge_flag(
            session, number, by=user.get_name(), note=form.get("note", ""), now=now
        ),
    )


@router.post("/outbox/{message_id}/retry")
async def retry_outbox_message(request: Request, message_id: str, user: AirflowUser, now: Now) -> Response:
    """Queue a failed outbox message again."""
    number = row_id(message_id)
    if number is None:
        return _no_such(request, "message")
    return await _act(
        request,
        user,
        now,
        lambda session, _form: retry_message(session, number, by=user.get_name(), now=now),
    )
