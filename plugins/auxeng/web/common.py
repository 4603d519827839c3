"""What every page of the pack's web app shares: the one clock, security headers, the bounded
form reader, the Jinja templates, how moments are written, and the public pages' answers to a
bad signed link.

Nothing here touches the store, the settings or the secret key at import: the plugin manager
imports the web app in every Airflow process.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from auxeng.messaging.tokens import Claims, MissingSecretKey, TokenError, secret_key, verify

if TYPE_CHECKING:
    from jinja2 import Environment

log = logging.getLogger(__name__)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
BODY_LIMIT = 64 * 1024  # what a public page accepts in a POST
MAX_FORM_FIELDS = 100

PUBLIC_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
"""The public pages (a signed token in the URL): never framed, no referrer."""

DASHBOARD_HEADERS = {
    **PUBLIC_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'self'"
    ),
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
}
"""The dashboard: framed by the Airflow UI only, shows its own chart."""


# --- the clock ------------------------------------------------------------------------------


def clock() -> datetime:
    """Now, for every page (public and dashboard): the wall clock. Tests set the time with
    ``dependency_overrides[clock]`` on the app they serve (``public_app()`` / ``airflow_app()``)."""
    return datetime.now(tz=UTC)


Now = Annotated[datetime, Depends(clock)]


# --- ids from the outside -------------------------------------------------------------------

MAX_ROW_ID = 2**31 - 1
"""The largest id a row of the store can have: ids are SQL INTEGERs (32 bits on PostgreSQL)."""


def row_id(text: str) -> int | None:
    """The row id ``text`` spells (ASCII digits, 1 to :data:`MAX_ROW_ID`), or None when no row can
    have it: checked before the store is asked (a larger number is an error in the database)."""
    if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_ROW_ID)):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ROW_ID else None


# --- request bodies -------------------------------------------------------------------------


class BodyTooLarge(Exception):
    """The request body is larger than the form accepts."""


async def read_body(request: Request, limit: int = BODY_LIMIT) -> bytes:
    """The request body, refused (without reading it all) beyond ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def is_form(request: Request) -> bool:
    """Whether the request says it carries an ``application/x-www-form-urlencoded`` body."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == FORM_CONTENT_TYPE


def parse_form(body: bytes, *, max_fields: int = MAX_FORM_FIELDS) -> dict[str, str]:
    """A url-encoded form body; the first value of each name. ValueError if invalid."""
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    form: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, max_num_fields=max_fields):
        form.setdefault(name, value)
    return form


# --- rendering ------------------------------------------------------------------------------


@functools.cache
def _environment(folder: str) -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(folder),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(
    folder: str, template: str, headers: dict[str, str], status: int = 200, **context: Any
) -> HTMLResponse:
    """``template`` of ``include/templates/<folder>`` as an HTML response with ``headers``
    (an autoescaping, strict Jinja environment per folder, cached)."""
    from auxeng.settings import include_dir

    html = _environment(str(include_dir() / "templates" / folder)).get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=headers)


def program_zone() -> tzinfo:
    """The program's time zone (``AUXENG_TIMEZONE``), in which pages write every moment."""
    from auxeng.settings import load_settings

    return load_settings().timezone


def long_time(moment: datetime, zone: tzinfo) -> str:
    """A moment as the public pages write it: ``Friday 18 December 2026, 09:00 CET``."""
    local = moment.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M %Z}"


def short_time(moment: datetime | None, zone: tzinfo) -> str:
    """A moment as the dashboard's tables write it: ``18 Dec 2026 09:00 CET`` (``–`` for none)."""
    if moment is None:
        return "–"
    local = moment.astimezone(zone)
    return f"{local.day} {local:%b %Y %H:%M %Z}"


# --- the public pages' answers --------------------------------------------------------------


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A public page (``include/templates/web``)."""
    return render("web", template, PUBLIC_HEADERS, status, **context)


def message(status: int, title: str, *paragraphs: str) -> HTMLResponse:
    """A public page that only says something: an error, or why a link cannot be used."""
    return page("message.html", status, title=title, paragraphs=paragraphs)


def too_large() -> HTMLResponse:
    response = message(
        413,
        "Too much text",
        "What you sent is larger than this form accepts. Please shorten your comments and send again.",
    )
    response.headers["Connection"] = "close"
    return response


def token_problem(exc: TokenError) -> HTMLResponse:
    """The page for a signed link that expired (410), is malformed (400) or was changed (403)."""
    if exc.reason == "expired":
        return message(
            410,
            "This link expired",
            f"The link you followed is no longer valid: {exc}.",
            "If you still want to tell us something, reply to the message that brought you here.",
        )
    return message(
        400 if exc.reason == "malformed" else 403,
        "This link is not valid",
        "The link you followed is incomplete or was changed. "
        "Open it again from the message you received, or copy the whole address into your browser.",
    )


def open_link(token: str, purpose: str, now: datetime) -> tuple[bytes, Claims] | HTMLResponse:
    """The secret key and the claims of a link signed for ``purpose``, or the page saying why
    it cannot be used (no key configured: 503; a bad link: :func:`token_problem`)."""
    try:
        key = secret_key()
    except MissingSecretKey as exc:
        log.error("Cannot check signed links: %s", exc)
        return message(
            503,
            "Not available right now",
            "This page cannot be shown at the moment. Please try again later.",
        )
    try:
        return key, verify(token, purpose, key=key, now=now)
    except TokenError as exc:
        return token_problem(exc)
