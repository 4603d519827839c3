"""Acknowledging a red flag from its alert. The link carries a ``FLAG_ACK`` token signed for
(flag id, manager email): the GET shows the flag and a form and never writes; the POST records
who acknowledged it and why.
"""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from auxeng.messaging.tokens import FLAG_ACK, TokenError, flag_ack_claims
from auxeng.web.common import (
    BodyTooLarge,
    Now,
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

log = logging.getLogger(__name__)

router = APIRouter()


def _flag_claims(token: str, now: datetime) -> tuple[int, str] | HTMLResponse:
    opened = open_link(token, FLAG_ACK, now)
    if isinstance(opened, Response):
        return opened
    _key, claims = opened
    try:
        flag_id, email = flag_ack_claims(claims.subject)
    except TokenError as exc:
        return token_problem(exc)
    if row_id(str(flag_id)) is None:  # signed, but no flag can have that id
        return _no_such_flag()
    return flag_id, email


def _no_such_flag() -> HTMLResponse:
    return message(404, "No such red flag", "This red flag is no longer in the store.")


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
    zone = program_zone()
    with session_scope(open_store()) as session:
        flag = session.get(FlagRow, flag_id)
        if flag is None:
            return _no_such_flag()
        view = flag_views(session, [flag])[0]
        acknowledged_at = long_time(flag.acknowledged_at, zone) if flag.acknowledged_at else None
        resolved_at = long_time(flag.resolved_at, zone) if flag.resolved_at else None
    return page(
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


@router.api_route("/flags/ack/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse)
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
        return _no_such_flag()
    except ValueError as exc:
        return _flag_page(token, now, note=note, problem=str(exc), status=422)
    if outcome.state == "acknowledged":
        log.info("Red flag %s acknowledged by %s", flag_id, email)
    return _flag_page(token, now)


@router.post("/flags/ack/{token}", response_class=HTMLResponse)
async def flag_ack_submit(token: str, request: Request, now: Now) -> Response:
    """Records the acknowledgement: who (the manager the link was sent to) and why (the note)."""
    try:
        form = parse_form(await read_body(request))
    except BodyTooLarge:
        return too_large()
    except ValueError:
        return message(400, "This form could not be read", "Please go back and send it again.")
    return await run_in_threadpool(_acknowledge, token, now, form.get("note", ""))
