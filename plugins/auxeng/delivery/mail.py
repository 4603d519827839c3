"""Email: the MIME message of an outbox row, and the SMTP transport (the smtp provider's hook)."""

from __future__ import annotations

import base64
import contextlib
import email.policy
import logging
import mimetypes
import smtplib
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Self

from auxeng.delivery.base import (
    BaseTransport,
    PermanentDeliveryError,
    QueuedMessage,
    TransientDeliveryError,
)
from auxeng.messaging.outbox import EMAIL, message_id

log = logging.getLogger(__name__)

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


def build_email(message: QueuedMessage, *, email_from: str, date: datetime | None = None) -> EmailMessage:
    """The MIME message SMTP sends (and the dev outbox writes) for one outbox row.

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


def _reply_text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _reply_error(code: int, text: bytes | str) -> PermanentDeliveryError | TransientDeliveryError:
    reason = f"smtp {code} {_reply_text(text)}".strip()
    if 500 <= code < 600:
        return PermanentDeliveryError(reason)
    return TransientDeliveryError(reason)


class SmtpTransport(BaseTransport):
    """Email through the Airflow connection ``conn_id`` (the smtp provider's ``SmtpHook``).

    One SMTP session per batch: entering enters the hook as a context manager
    (connect, STARTTLS and login as the connection says); each ``send`` hands our
    own MIME message to the SMTP client the hook opened. We do not use the hook's
    ``send_email_smtp``: it only builds HTML-only messages (no text part, no
    Message-ID of ours) and re-sends the whole message on *any* error, which can
    duplicate mail.

    A connection the server drops mid-batch is re-opened once per batch (a new
    session) and the message retried (if the server had accepted it before
    dropping, the recipient gets it twice, under the same Message-ID).
    """

    name = "smtp"
    channel = EMAIL

    def __init__(self, conn_id: str, *, email_from: str) -> None:
        self.conn_id = conn_id
        self.email_from = email_from
        self.envelope_from = parseaddr(email_from)[1]
        address_domain(email_from)  # fail early on a bad From
        self._hook: Any = None
        self._session: contextlib.ExitStack | None = None
        self._reconnected = False

    def _where(self) -> str:
        conn = getattr(self._hook, "smtp_connection", None)
        if conn is None:
            return f"connection {self.conn_id!r}"
        return f"{conn.host}:{conn.port} (connection {self.conn_id!r})"

    def _open(self) -> None:
        """Open a session: a new hook, entered as a context manager (connect, STARTTLS, login)."""
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        self._hook = SmtpHook(smtp_conn_id=self.conn_id)
        session = contextlib.ExitStack()
        session.enter_context(self._hook)
        self._session = session

    def _client(self) -> smtplib.SMTP:
        # No public API: SmtpHook (smtp provider 3.2) hides its client; send_email_smtp can't send our MIME.
        return self._hook._smtp_client

    def _close(self, *, polite: bool) -> None:
        """End the session (QUIT first when ``polite``: the hook's exit only closes the socket); never raises."""
        session, self._session = self._session, None
        if session is None:
            return
        if polite:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._client().quit()
        try:
            session.close()
        except Exception:  # closing must not hide what happened in the batch
            log.debug("closing the SMTP session failed", exc_info=True)

    def __enter__(self) -> Self:
        self._reconnected = False
        try:
            self._open()
        except Exception as exc:
            raise TransientDeliveryError(
                f"smtp: cannot connect to {self._where()}: {exc}", transport_down=True
            ) from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._close(polite=True)
        self._hook = None

    def _reconnect(self, error: BaseException) -> None:
        if self._reconnected:
            raise TransientDeliveryError(
                f"smtp: connection to {self._where()} lost again: {error}", transport_down=True
            ) from error
        self._reconnected = True
        log.warning("SMTP connection to %s lost (%s): reconnecting once", self._where(), error)
        self._close(polite=False)
        try:
            self._open()
        except Exception as exc:
            raise TransientDeliveryError(
                f"smtp: connection to {self._where()} lost ({error}) and reconnecting failed: {exc}",
                transport_down=True,
            ) from exc

    def send(self, message: QueuedMessage) -> str | None:
        try:
            msg = build_email(message, email_from=self.email_from)
        except ValueError as exc:
            raise PermanentDeliveryError(f"cannot build the email: {exc}") from exc
        mid = msg["Message-ID"]
        while True:
            client = self._client()
            try:
                client.send_message(msg, from_addr=self.envelope_from, to_addrs=[message.recipient])
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                raise _reply_error(code, text) from exc
            except smtplib.SMTPResponseException as exc:  # sender refused, data refused, other replies
                if exc.smtp_code == 421:  # "service not available, closing channel"
                    self._reconnect(exc)
                    continue
                raise _reply_error(exc.smtp_code, exc.smtp_error) from exc
            except smtplib.SMTPServerDisconnected as exc:
                self._reconnect(exc)
                continue
            except smtplib.SMTPException as exc:  # e.g. SMTPUTF8 needed but not offered
                raise PermanentDeliveryError(f"smtp: {exc}") from exc
            except (UnicodeEncodeError, ValueError) as exc:
                raise PermanentDeliveryError(f"smtp: cannot encode the message: {exc}") from exc
            except OSError as exc:  # reset, broken pipe, timeout
                self._reconnect(exc)
                continue
            return mid
