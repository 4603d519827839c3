"""The opt-out pages behind signed links. Two scopes, one design: ``/optout/{token}`` stops every
message, ``/digest/optout/{token}`` only the weekly NPS digest (``digest``); each takes only tokens
signed for its purpose. A GET asks to confirm and never writes; the POST (the page's button, or a
mail client's RFC 8058 one-click) records the opt-out.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from auxeng.messaging.tokens import DIGEST_OPTOUT, OPTOUT
from auxeng.web.common import (
    BodyTooLarge,
    Now,
    long_time,
    open_link,
    page,
    program_zone,
    read_body,
    too_large,
)

log = logging.getLogger(__name__)

# RFC 8058 one-click: "List-Unsubscribe=One-Click", form-urlencoded or as a multipart/form-data part.
ONE_CLICK = re.compile(
    rb'(?:^|&)List-Unsubscribe=One-Click(?:&|$)|name="List-Unsubscribe"\r\n(?:[^\r\n]+\r\n)*\r\nOne-Click\r\n'
)

router = APIRouter()


def _optout_email(token: str, now: datetime, *, digest: bool) -> str | HTMLResponse:
    opened = open_link(token, DIGEST_OPTOUT if digest else OPTOUT, now)
    if isinstance(opened, Response):
        return opened
    _key, claims = opened
    return claims.subject


def _optout_form(token: str, now: datetime, *, digest: bool = False) -> Response:
    from auxeng.messaging.optouts import opted_out_at
    from auxeng.store.db import open_store, session_scope

    email = _optout_email(token, now, digest=digest)
    if isinstance(email, Response):
        return email
    with session_scope(open_store()) as session:
        since = opted_out_at(session, email, digest=digest)
    if since is not None:
        return page(
            "optout.html",
            title="Unsubscribed",
            state="already",
            digest=digest,
            email=email,
            since_text=long_time(since, program_zone()),
        )
    return page("optout.html", title="Unsubscribe", state="confirm", digest=digest, email=email)


async def _optout_source(request: Request) -> str | HTMLResponse:
    """``one_click`` for a mail client's RFC 8058 POST, ``web`` for the page's button."""
    try:
        body = await read_body(request)
    except BodyTooLarge:
        return too_large()
    return "one_click" if ONE_CLICK.search(body.strip()) else "web"


def _optout(token: str, now: datetime, source: str, *, digest: bool = False) -> Response:
    from auxeng.messaging.optouts import record_opt_out
    from auxeng.store.db import open_store

    email = _optout_email(token, now, digest=digest)
    if isinstance(email, Response):
        return email
    outcome = record_opt_out(open_store(), email, now=now, source=source, digest=digest)
    if outcome.created:
        log.info("%s recorded (%s)", "Digest opt-out" if digest else "Opt-out", source)
    return page("optout.html", title="Unsubscribed", state="done", digest=digest, email=email)


@router.api_route("/optout/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse)
def optout_form(token: str, now: Now) -> Response:
    """Asks to confirm with a button (a POST). Never writes."""
    return _optout_form(token, now)


@router.post("/optout/{token}", response_class=HTMLResponse)
async def optout_submit(token: str, request: Request, now: Now) -> Response:
    """Records the opt-out: the page's button, or a mail client's RFC 8058 one-click POST."""
    source = await _optout_source(request)
    if isinstance(source, Response):
        return source
    return await run_in_threadpool(_optout, token, now, source)


@router.api_route("/digest/optout/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse)
def digest_optout_form(token: str, now: Now) -> Response:
    """Asks to confirm stopping the weekly NPS digest with a button (a POST). Never writes."""
    return _optout_form(token, now, digest=True)


@router.post("/digest/optout/{token}", response_class=HTMLResponse)
async def digest_optout_submit(token: str, request: Request, now: Now) -> Response:
    """Records the digest opt-out: the page's button, or a mail client's RFC 8058 one-click POST."""
    source = await _optout_source(request)
    if isinstance(source, Response):
        return source
    return await run_in_threadpool(_optout, token, now, source, digest=True)
