"""The survey page behind a signed link: the form (``GET``), the answers (``POST``), the thanks.

A GET never writes (mail scanners open every link); only the POST records answers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from auxeng.messaging.tokens import SURVEY, TokenError
from auxeng.surveys.questions import Survey, UnknownSurvey, get_survey, validate_answers
from auxeng.vocabulary import ResponseSource
from auxeng.web.common import (
    PUBLIC_HEADERS,
    BodyTooLarge,
    Now,
    is_form,
    long_time,
    message,
    open_link,
    page,
    parse_form,
    program_zone,
    read_body,
    row_id,
    token_problem,
    too_large,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from auxeng.surveys.responses import InvitationView

log = logging.getLogger(__name__)

router = APIRouter()


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

    opened = open_link(token, SURVEY, now)
    if isinstance(opened, Response):
        return opened
    key, claims = opened
    if not claims.subject.isdigit():
        return token_problem(TokenError("malformed"))
    invitation_id = row_id(claims.subject)
    if invitation_id is None:  # signed, but no invitation can have that id
        return message(404, "Survey not found", "We could not find this survey. It may have been withdrawn.")
    engine = open_store()
    with session_scope(engine) as session:
        view = load_invitation(session, invitation_id)
        stored = load_answers(session, view.id, key=key) if view is not None else None
    if view is None:
        return message(404, "Survey not found", "We could not find this survey. It may have been withdrawn.")
    try:
        survey = get_survey(view.survey)
    except UnknownSurvey:
        log.error("Invitation %s is for an unknown survey %r", view.id, view.survey)
        return message(404, "Survey not found", "We could not find this survey.")
    if require_open and not view.open:
        return message(
            410,
            "This survey is not open",
            f"The survey about “{view.engagement_title}” is no longer collecting answers.",
        )
    if require_open and view.closed(now):
        return _closed(view)
    return _Survey(token=token, key=key, engine=engine, view=view, survey=survey, stored=stored)


def _closed(view: InvitationView) -> HTMLResponse:
    return message(
        410,
        "This survey is closed",
        f"The survey about “{view.engagement_title}” closed on {long_time(view.closes_at, program_zone())}.",
        "Thank you all the same. If you still want to tell us something, reply to the message that brought you here.",
    )


def _score(raw: str | None, survey: Survey) -> str | None:
    """The ``?score=`` a link preselects, if it is a valid answer to the survey's NPS question."""
    if raw is None or survey.nps_field is None:
        return None
    text = raw.strip()
    if not text.isdigit() or len(text) > 6:  # int() refuses over 4,300 digits (a 500)
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
    return page(
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
        closes_text=long_time(view.closes_at, program_zone()),
    )


@router.api_route("/survey/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse)
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


@router.post("/survey/{token}", response_class=HTMLResponse)
async def survey_submit(token: str, request: Request, now: Now) -> Response:
    """Validate and record the answers (again: updates them), then redirect to the thank-you page."""
    try:
        body = await read_body(request)
    except BodyTooLarge:
        return too_large()
    if not is_form(request):
        return message(415, "Unexpected form", "Please send your answers with the form on the survey page.")
    try:
        form = parse_form(body)
    except ValueError:
        return message(400, "Unexpected form", "Please send your answers with the form on the survey page.")
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
        return message(410, "This survey is not open", "This survey is no longer collecting answers.")
    log.info(
        "Survey answer for invitation %s: %s",
        opened.view.id,
        "created" if outcome.created else "updated" if outcome.changed else "unchanged",
    )
    return RedirectResponse(f"{token}/thanks", status_code=303, headers=PUBLIC_HEADERS)


@router.get("/survey/{token}/thanks", response_class=HTMLResponse)
def survey_thanks(token: str, now: Now) -> Response:
    """After the POST: confirms the answers only if the store holds some for this invitation;
    otherwise says plainly that nothing was saved and links to the form (while it is open)."""
    opened = _open_survey(token, now, require_open=False)
    if isinstance(opened, Response):
        return opened
    view = opened.view
    saved = opened.stored is not None
    return page(
        "thanks.html",
        title="Thank you" if saved else "No answers saved",
        view=view,
        token=token,
        saved=saved,
        answerable=view.open and not view.closed(now),
        closes_text=long_time(view.closes_at, program_zone()),
    )
