"""An email's MIME message: built from an outbox row, rendered to bytes once when it is queued.

:func:`build_email` is the message; :func:`render` its bytes as queued (stored in
``auxeng_outbox.rendered``), :func:`wire_bytes` what SMTP sends from them: the same bytes
``smtplib.send_message`` would send for :func:`build_email`'s message, built at send time.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import io
import mimetypes
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Protocol


class Renderable(Protocol):
    """What an email is built from (an :class:`~auxeng.messaging.outbox.OutboundMessage` or a queued row)."""

    @property
    def dedupe_key(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def body_text(self) -> str: ...
    @property
    def body_html(self) -> str | None: ...
    @property
    def payload(self) -> dict[str, Any]: ...


def message_id(dedupe_key: str, domain: str) -> str:
    """The stable ``Message-ID`` of an email: the same row always gets the same id."""
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
    return f"<auxeng.{digest}@{domain}>"


# Headers delivery sets itself; a payload may not override them.
RESERVED_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version", "content-type"}
)

# Serialise headers folded only past RFC 5322's 998 characters: at the default 78, a long word with
# no space to fold at (the List-Unsubscribe URL) is RFC 2047-encoded, and mail clients then offer no
# one-click unsubscribe. Set once the parts are built, so body encodings keep their 76-column lines.
HEADER_POLICY = email.policy.default.clone(max_line_length=998)


def address_domain(address: str) -> str:
    """The domain of an address (``"AuxEng <auxeng@example.com>"`` → ``example.com``)."""
    _, addr_spec = parseaddr(address)
    local, at, domain = addr_spec.rpartition("@")
    if not (local and at and domain):
        raise ValueError(f"not an email address: {address!r}")
    return domain.lower()


def build_email(message: Renderable, *, email_from: str, date: datetime | None = None) -> EmailMessage:
    """The MIME message of one outbox row (what SMTP sends, what the dev outbox writes).

    ``multipart/alternative`` with the text and HTML bodies (text only when there
    is no HTML), a stable ``Message-ID`` derived from the dedupe key, extra
    headers from ``payload["headers"]``, images from ``payload["inline_images"]``
    embedded in a ``multipart/related`` part next to the HTML (which references
    each as ``cid:<cid>``; images are only added when there is an HTML body), and
    a calendar invitation from ``payload["calendar"]`` (``{"method": "REQUEST",
    "ics": "BEGIN:VCALENDAR…"}``) as a ``text/calendar`` alternative plus an
    ``invite.ics`` attachment, the way mail clients show an accept/decline invitation.

    An inline image is either a file read when the message is built, or bytes
    carried in the row itself (for rows drained on another machine than the one
    that rendered the image)::

        {"cid": "chart", "path": "/…/chart.png"}
        {"cid": "chart", "filename": "nps-trend.png", "data": "<base64>"}

    The MIME type is guessed from the file name (``path`` form: else
    ``application/octet-stream``; ``data`` form: else ``image/png``, and the
    file name defaults to ``<cid>.png``).

    Raises ValueError for a message that cannot be built (bad address, bad header,
    an image without ``cid``, with neither ``path`` nor ``data``, unreadable or not base64).
    """
    payload = message.payload or {}
    msg = EmailMessage()
    msg["From"] = email_from
    to_name = payload.get("to_name") or ""
    try:
        msg["To"] = Address(display_name=to_name, addr_spec=message.recipient)
    except (ValueError, IndexError) as exc:  # the header parser raises either on garbage
        raise ValueError(f"bad recipient address {message.recipient!r}: {exc}") from exc
    msg["Subject"] = message.subject or ""
    msg["Date"] = format_datetime(date or datetime.now(tz=UTC))
    msg["Message-ID"] = message_id(message.dedupe_key, address_domain(email_from))
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    for name, value in (payload.get("headers") or {}).items():
        if name.lower() in RESERVED_HEADERS or name.lower() == "auto-submitted":
            raise ValueError(f"payload header {name!r} is set by delivery itself")
        msg[name] = str(value)
    msg.set_content(message.body_text or "")
    if message.body_html:
        msg.add_alternative(message.body_html, subtype="html")
        images = payload.get("inline_images") or []
        if images:
            html_part = msg.get_payload()[1]
            for image in images:
                _add_inline_image(html_part, image)
    calendar = payload.get("calendar")
    if calendar:
        _add_calendar(msg, calendar)
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]  # the email package repeats it on parts it creates
    msg.policy = HEADER_POLICY
    return msg


def _add_calendar(msg: EmailMessage, calendar: dict[str, Any]) -> None:
    method = str(calendar.get("method", "")).upper()
    ics = calendar.get("ics") or ""
    if method not in {"REQUEST", "CANCEL"} or not ics.startswith("BEGIN:VCALENDAR"):
        raise ValueError(
            f"payload calendar needs method REQUEST or CANCEL and an iCalendar text, got {method!r}"
        )
    msg.add_alternative(ics, subtype="calendar", params={"method": method})
    msg.add_attachment(  # charset: RFC 5545 text is UTF-8, and without it clients read it as ASCII
        ics.encode(),
        maintype="text",
        subtype="calendar",
        filename="invite.ics",
        params={"method": method, "charset": "utf-8"},
    )


def _inline_image_bytes(image: dict[str, Any], cid: str) -> tuple[bytes, str, str]:
    """(data, file name, MIME type) of an ``inline_images`` entry."""
    if image.get("data") is not None:
        raw = image["data"]
        try:
            if not isinstance(raw, str | bytes):
                raise TypeError(type(raw).__name__)
            data = base64.b64decode(b"".join(_ascii(raw).split()), validate=True)
        except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
            raise ValueError(f"inline image {cid!r}: data is not valid base64 ({exc})") from exc
        if not data:
            raise ValueError(f"inline image {cid!r}: data is empty")
        filename = str(image.get("filename") or f"{cid}.png")
        return data, filename, mimetypes.guess_type(filename)[0] or "image/png"
    if image.get("path"):
        path = Path(image["path"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"inline image {cid!r} ({path}) cannot be read: {exc.strerror or exc}") from exc
        filename = str(image.get("filename") or path.name)
        return data, filename, mimetypes.guess_type(filename)[0] or "application/octet-stream"
    raise ValueError(f"inline image {cid!r} has neither path nor data")


def _ascii(raw: str | bytes) -> bytes:
    return raw.encode("ascii") if isinstance(raw, str) else raw  # non-ASCII: UnicodeEncodeError (ValueError)


def _add_inline_image(html_part: EmailMessage, image: dict[str, Any]) -> None:
    cid = image.get("cid") if isinstance(image, dict) else None
    if not cid or not isinstance(cid, str):
        keys = sorted(image) if isinstance(image, dict) else type(image).__name__
        raise ValueError(f"inline image without a cid ({keys})")
    data, filename, mime_type = _inline_image_bytes(image, cid)
    maintype, subtype = mime_type.split("/", 1)
    # inline, not attachment: some clients also list an image marked attachment below the message
    html_part.add_related(
        data, maintype=maintype, subtype=subtype, cid=f"<{cid}>", filename=filename, disposition="inline"
    )


# A sender to build with when queueing: its From and Message-ID lines are not kept.
_STAND_IN_FROM = "auxeng@render.invalid"
# The header that follows Date and Message-ID in build_email's order (a payload cannot set it).
_AFTER_DATE = b"\r\nAuto-Submitted: "


def flatten(msg: EmailMessage) -> bytes:
    """The bytes ``smtplib.send_message`` sends for ``msg`` (ASCII addresses: no SMTPUTF8)."""
    buffer = io.BytesIO()
    BytesGenerator(buffer).flatten(
        msg, linesep="\r\n"
    )  # as send_message: no policy, so "From " lines are quoted
    return buffer.getvalue()


def render(message: Renderable) -> bytes | None:
    """The bytes of ``message``'s email without its From, Date and Message-ID lines (added when sent).

    None when the email is built when sent instead: it reads an image file (read when sent),
    its recipient address needs SMTPUTF8, or it cannot be built (the send then fails as it
    always did).
    """
    payload = message.payload or {}
    images = payload.get("inline_images") or []
    if not message.recipient.isascii() or any(isinstance(i, dict) and i.get("path") for i in images):
        return None
    try:
        msg = build_email(message, email_from=_STAND_IN_FROM, date=datetime(2000, 1, 1, tzinfo=UTC))
        for name in ("From", "Date", "Message-ID"):
            del msg[name]
        return flatten(msg)
    except Exception:  # any error is met again when the message is built at send time, and reported then
        return None


def from_line(email_from: str) -> bytes:
    """The ``From`` header line :func:`flatten` writes for ``email_from``."""
    msg = EmailMessage()
    msg["From"] = email_from
    msg.policy = HEADER_POLICY
    return flatten(msg).split(b"\r\n\r\n", 1)[0] + b"\r\n"


def wire_bytes(rendered: bytes, *, sender: bytes, dedupe_key: str, domain: str, date: datetime) -> bytes:
    """What :func:`flatten` gives for ``build_email(…, date=date)``, from :func:`render`'s bytes and
    the :func:`from_line` ``sender``. Raises ValueError for bytes :func:`render` did not make."""
    at = rendered.find(_AFTER_DATE) + 2
    if at < 2:
        raise ValueError("not a rendered email")
    added = f"Date: {format_datetime(date)}\r\nMessage-ID: {message_id(dedupe_key, domain)}\r\n"
    return b"".join((sender, rendered[:at], added.encode("ascii"), rendered[at:]))
