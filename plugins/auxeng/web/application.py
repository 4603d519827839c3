"""The pack's web app, mounted by the Airflow plugin under ``/auxeng`` (or run with
``uvicorn auxeng.web:app``): the survey page and the opt-out pages, for people
outside Airflow. They are public; the signed token in the link is the only credential.

Rules the handlers keep:

- A GET never writes (mail scanners open every link); only a POST records answers or an opt-out.
- Nothing touches the store, the settings or the secret key at import: the plugin
  manager imports this module in every Airflow process.
- "Now" is the wall clock (real people answer); tests override :func:`current_time`
  with ``app.dependency_overrides``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from auxeng import __version__
from auxeng.messaging.tokens import (
    DIGEST_OPTOUT,
    OPTOUT,
    SURVEY,
    MissingSecretKey,
    TokenError,
    secret_key,
    verify,
)
from auxeng.surveys.questions import Survey, UnknownSurvey, get_survey, validate_answers
from auxeng.vocabulary import ResponseSource
from auxeng.web.dashboard import routes as dashboard

if TYPE_CHECKING:
    from jinja2 import Environment
    from sqlalchemy import Engine

    from auxeng.surveys.responses import InvitationView

log = logging.getLogger(__name__)

BODY_LIMIT = 64 * 1024
MAX_FORM_FIELDS = 100
# RFC 8058 one-click: "List-Unsubscribe=One-Click", form-urlencoded or as a multipart/form-data part.
ONE_CLICK = re.compile(
    rb'(?:^|&)List-Unsubscribe=One-Click(?:&|$)|name="List-Unsubscribe"\r\n(?:[^\r\n]+\r\n)*\r\nOne-Click\r\n'
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

app = FastAPI(title="AuxEng follow-ups", version=__version__, docs_url=None, redoc_url=None)
app.mount("/dashboard", dashboard.app)  # for Airflow users only: see auxeng.web.dashboard.routes


def current_time() -> datetime:
    """The wall clock (a dependency, so tests can set the time)."""
    return datetime.now(tz=UTC)


Now = Annotated[datetime, Depends(current_time)]


@app.get("/health")
def health() -> dict[str, str]:
    """Liveness of the pack's web app and the store schema it expects (no database access)."""
    from auxeng.store.db import head_revision

    return {"status": "ok", "version": __version__, "store_schema": head_revision()}


# --- rendering -------------------------------------------------------------------------


@functools.cache
def template_environment(folder: str) -> Environment:
    """The autoescaping, strict Jinja environment of one template folder of the pages (cached)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(folder),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _templates() -> Environment:
    from auxeng.settings import include_dir

    return template_environment(str(include_dir() / "templates" / "web"))


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _templates().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _message(status: int, title: str, *paragraphs: str) -> HTMLResponse:
    return _page("message.html", status, title=title, paragraphs=paragraphs)


def _when(moment: datetime) -> str:
    """A moment as people read it, in the program's time zone: ``Friday 18 December 2026, 09:00 CET``."""
    from auxeng.settings import load_settings

    local = moment.astimezone(load_settings().timezone)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M %Z}"


def _token_problem(exc: TokenError) -> HTMLResponse:
    if exc.reason == "expired":
        return _message(
            410,
            "This link expired",
            f"The link you followed is no longer valid: {exc}.",
            "If you still want to tell us something, reply to the message that brought you here.",
        )
    return _message(
        400 if exc.reason == "malformed" else 403,
        "This link is not valid",
        "The link you followed is incomplete or was changed. "
        "Open it again from the message you received, or copy the whole address into your browser.",
    )


def _no_key(exc: MissingSecretKey) -> HTMLResponse:
    log.error("Cannot check signed links: %s", exc)
    return _message(
        503,
        "Not available right now",
        "This page cannot be shown at the moment. Please try again later.",
    )


# --- request bodies ---------------------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int = BODY_LIMIT) -> bytes:
    """The request body, refused (without reading it all) beyond ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> HTMLResponse:
    response = _message(
        413,
        "Too much text",
        "What you sent is larger than this form accepts. Please shorten your comments and send again.",
    )
    response.headers["Connection"] = "close"
    return response


def _parse_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; the first value of each name. ValueError if invalid."""
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    form: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS):
        form.setdefault(name, value)
    return form


# --- the survey page -------------------------------------------------------------------


@dataclass(frozen=True)
class _Survey:
    """A verified survey link and what it points to."""

    token: str
    key: bytes
    engine: Engine
    view: InvitationView
    survey: Survey
    stored: dict[str, Any] | None


def _open_survey(token: str, now: datetime, *, require_open: bool = True) -> _Survey | HTMLResponse:
    """The invitation behind ``token``, or the page that explains why it cannot be answered."""
    from auxeng.store.db import open_store, session_scope
    from auxeng.surveys.responses import load_answers, load_invitation

    try:
        key = secret_key()
    except MissingSecretKey as exc:
        return _no_key(exc)
    try:
        claims = verify(token, SURVEY, key=key, now=now)
    except TokenError as exc:
        return _token_problem(exc)
    if not claims.subject.isdigit():
        return _token_problem(TokenError("malformed"))
    engine = open_store()
    with session_scope(engine) as session:
        view = load_invitation(session, int(claims.subject))
        stored = load_answers(session, view.id, key=key) if view is not None else None
    if view is None:
        return _message(404, "Survey not found", "We could not find this survey. It may have been withdrawn.")
    try:
        survey = get_survey(view.survey)
    except UnknownSurvey:
        log.error("Invitation %s is for an unknown survey %r", view.id, view.survey)
        return _message(404, "Survey not found", "We could not find this survey.")
    if require_open and not view.open:
        return _message(
            410,
            "This survey is not open",
            f"The survey about “{view.engagement_title}” is no longer collecting answers.",
        )
    if require_open and view.closed(now):
        return _closed(view)
    return _Survey(token=token, key=key, engine=engine, view=view, survey=survey, stored=stored)


def _closed(view: InvitationView) -> HTMLResponse:
    return _message(
        410,
        "This survey is closed",
        f"The survey about “{view.engagement_title}” closed on {_when(view.closes_at)}.",
        "Thank you all the same. If you still want to tell us something, reply to the message that brought you here.",
    )


def _score(raw: str | None, survey: Survey) -> str | None:
    """The ``?score=`` a link preselects, if it is a valid answer to the survey's NPS question."""
    if raw is None or survey.nps_field is None:
        return None
    text = raw.strip()
    if not text.isdigit():
        return None
    return text if int(text) in survey.field(survey.nps_field).values else None


def _form_page(
    opened: _Survey,
    values: Mapping[str, str],
    *,
    status: int = 200,
    errors: list[Any] | None = None,
) -> HTMLResponse:
    view = opened.view
    return _page(
        "survey.html",
        status,
        title=opened.survey.title,
        survey=opened.survey,
        view=view,
        values=values,
        errors=errors or [],
        error_for={error.field: error.message for error in errors or []},
        contexts={"goals_business": view.goals_business, "goals_technical": view.goals_technical},
        previously_answered=opened.stored is not None,
        closes_text=_when(view.closes_at),
    )


@app.api_route("/survey/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse)
def survey_form(token: str, now: Now, score: str | None = None) -> Response:
    """The survey, prefilled with earlier answers or the ``?score=`` from the email. Never writes."""
    opened = _open_survey(token, now)
    if isinstance(opened, Response):
        return opened
    values = {name: str(value) for name, value in (opened.stored or {}).items() if value is not None}
    preselected = _score(score, opened.survey)
    if preselected is not None and opened.survey.nps_field is not None:
        values[opened.survey.nps_field] = preselected
    return _form_page(opened, values)


@app.post("/survey/{token}", response_class=HTMLResponse)
async def survey_submit(token: str, request: Request, now: Now) -> Response:
    """Validate and record the answers (again: updates them), then redirect to the thank-you page."""
    try:
        body = await _read_body(request)
    except _BodyTooLarge:
        return _too_large()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return _message(415, "Unexpected form", "Please send your answers with the form on the survey page.")
    try:
        form = _parse_form(body)
    except ValueError:
        return _message(400, "Unexpected form", "Please send your answers with the form on the survey page.")
    return await run_in_threadpool(_submit, token, form, now)


def _submit(token: str, form: dict[str, str], now: datetime) -> Response:
    from auxeng.surveys.responses import SurveyClosed, SurveyNotOpen, record_response

    opened = _open_survey(token, now)
    if isinstance(opened, Response):
        return opened
    answers, errors = validate_answers(opened.view.survey, form)
    if errors:
        return _form_page(opened, form, status=422, errors=errors)
    try:
        outcome = record_response(
            opened.engine, opened.view.id, answers, now=now, key=opened.key, source=ResponseSource.WEB
        )
    except SurveyClosed:
        return _closed(opened.view)
    except SurveyNotOpen:
        return _message(410, "This survey is not open", "This survey is no longer collecting answers.")
    log.info(
        "Survey answer for invitation %s: %s",
        opened.view.id,
        "created" if outcome.created else "updated" if outcome.changed else "unchanged",
    )
    return RedirectResponse(f"{token}/thanks", status_code=303, headers=SECURITY_HEADERS)


@app.get("/survey/{token}/thanks", response_class=HTMLResponse)
def survey_thanks(token: str, now: Now) -> Response:
    opened = _open_survey(token, now, require_open=False)
    if isinstance(opened, Response):
        return opened
    return _page(
        "thanks.html",
        title="Thank you",
        view=opened.view,
        token=token,
        closes_text=_when(opened.view.closes_at),
    )


# --- opt-out ---------------------------------------------------------------------------
# Two scopes, one design: /optout/{token} stops every message, /digest/optout/{token}
# only the weekly NPS digest (``digest``). Each takes only tokens signed for its purpose.


def _optout_email(token: str, now: datetime, *, digest: bool = False) -> str | HTMLResponse:
    try:
        key = secret_key()
    except MissingSecretKey as exc:
        return _no_key(exc)
    try:
        return verify(token, DIGEST_OPTOUT if digest else OPTOUT, key=key, now=now).subject
    except TokenError as exc:
        return _token_problem(exc)


def _optout_form(token: str, now: datetime, *, digest: bool = False) -> Response:
    from auxeng.store.db import open_store, session_scope
    from auxeng.surveys.responses import opted_out_at

    email = _optout_email(token, now, digest=digest)
    if isinstance(email, Response):
        return email
    with session_scope(open_store()) as session:
        since = opted_out_at(session, email, digest=digest)
    if since is not None:
        return _page(
            "optout.html",
            title="Unsubscribed",
            state="already",
            digest=digest,
            email=email,
            since_text=_when(since),
        )
    return _page("optout.html", title="Unsubscribe", state="confirm", digest=digest, email=email)


async def _optout_source(request: Request) -> str | HTMLResponse:
    """``one_click`` for a mail client's RFC 8058 POST, ``web`` for the page's button."""
    try:
        body = await _read_body(request)
    except _BodyTooLarge:
        return _too_large()
    return "one_click" if ONE_CLICK.search(body.strip()) else "web"


def _optout(token: str, now: datetime, source: str, *, digest: bool = False) -> Response:
    from auxeng.store.db import open_store
    from auxeng.surveys.responses import record_opt_out

    email = _optout_email(token, now, digest=digest)
    if isinstance(email, Response):
        return email
    outcome = record_opt_out(open_store(), email, now=now, source=source, digest=digest)
    if outcome.created:
        log.info("%s recorded (%s)", "Digest opt-out" if digest else "Opt-out", source)
    return _page("optout.html", title="Unsubscribed", state="done", digest=digest, email=email)


@app.api_route("/optout/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse)
def optout_form(token: str, now: Now) -> Response:
    """Asks to confirm with a button (a POST). Never writes."""
    return _optout_form(token, now)


@app.post("/optout/{token}", response_class=HTMLResponse)
async def optout_submit(token: str, request: Request, now: Now) -> Response:
    """Records the opt-out: the page's button, or a mail client's RFC 8058 one-click POST."""
    source = await _optout_source(request)
    if isinstance(source, Response):
        return source
    return await run_in_threadpool(_optout, token, now, source)


@app.api_route("/digest/optout/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse)
def digest_optout_form(token: str, now: Now) -> Response:
    """Asks to confirm stopping the weekly NPS digest with a button (a POST). Never writes."""
    return _optout_form(token, now, digest=True)


@app.post("/digest/optout/{token}", response_class=HTMLResponse)
async def digest_optout_submit(token: str, request: Request, now: Now) -> Response:
    """Records the digest opt-out: the page's button, or a mail client's RFC 8058 one-click POST."""
    source = await _optout_source(request)
    if isinstance(source, Response):
        return source
    return await run_in_threadpool(_optout, token, now, source, digest=True)


# --- acknowledging a red flag ----------------------------------------------------------
# The alert's link carries a FLAG_ACK token signed for (flag id, manager email): the GET
# shows the flag and a form, the POST records who acknowledged it and why.


def _flag_claims(token: str, now: datetime) -> tuple[int, str] | HTMLResponse:
    from auxeng.messaging.tokens import FLAG_ACK, flag_ack_claims

    try:
        key = secret_key()
    except MissingSecretKey as exc:
        return _no_key(exc)
    try:
        return flag_ack_claims(verify(token, FLAG_ACK, key=key, now=now).subject)
    except TokenError as exc:
        return _token_problem(exc)


def _flag_page(
    token: str, now: datetime, *, note: str | None = None, problem: str | None = None, status: int = 200
) -> Response:
    from auxeng.redflags.alerts import flag_views
    from auxeng.store.db import open_store, session_scope
    from auxeng.store.models import FlagRow

    claims = _flag_claims(token, now)
    if isinstance(claims, Response):
        return claims
    flag_id, email = claims
    with session_scope(open_store()) as session:
        flag = session.get(FlagRow, flag_id)
        if flag is None:
            return _message(404, "No such red flag", "This red flag is no longer in the store.")
        view = flag_views(session, [flag])[0]
        acknowledged_at = _when(flag.acknowledged_at) if flag.acknowledged_at else None
        resolved_at = _when(flag.resolved_at) if flag.resolved_at else None
    return _page(
        "flag_ack.html",
        status,
        title=f"Red flag: {view.title}",
        flag=view,
        email=email,
        note=note or "",
        problem=problem,
        acknowledged_at=acknowledged_at,
        resolved_at=resolved_at,
    )


@app.api_route("/flags/ack/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse)
def flag_ack_form(token: str, now: Now) -> Response:
    """Shows the flag, its evidence and a form to acknowledge it (a POST). Never writes."""
    return _flag_page(token, now)


def _acknowledge(token: str, now: datetime, note: str) -> Response:
    from auxeng.redflags.store import FlagNotFound, acknowledge
    from auxeng.store.db import open_store, session_scope

    claims = _flag_claims(token, now)
    if isinstance(claims, Response):
        return claims
    flag_id, email = claims
    try:
        with session_scope(open_store()) as session:
            outcome = acknowledge(session, flag_id, by=email, note=note, now=now)
    except FlagNotFound:
        return _message(404, "No such red flag", "This red flag is no longer in the store.")
    except ValueError as exc:
        return _flag_page(token, now, note=note, problem=str(exc), status=422)
    if outcome.state == "acknowledged":
        log.info("Red flag %s acknowledged by %s", flag_id, email)
    return _flag_page(token, now)


@app.post("/flags/ack/{token}", response_class=HTMLResponse)
async def flag_ack_submit(token: str, request: Request, now: Now) -> Response:
    """Records the acknowledgement: who (the manager the link was sent to) and why (the note)."""
    try:
        form = _parse_form(await _read_body(request))
    except _BodyTooLarge:
        return _too_large()
    except ValueError:
        return _message(400, "This form could not be read", "Please go back and send it again.")
    return await run_in_threadpool(_acknowledge, token, now, form.get("note", ""))
