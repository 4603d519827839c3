"""Email: the SMTP transport (the smtp provider's hook); the MIME message is :mod:`auxeng.messaging.mime`'s."""

from __future__ import annotations

import contextlib
import logging
import smtplib
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any, Self

from auxeng.delivery.base import (
    BaseTransport,
    PermanentDeliveryError,
    QueuedMessage,
    TransientDeliveryError,
)
from auxeng.messaging.mime import address_domain, build_email, from_line, message_id, wire_bytes
from auxeng.messaging.outbox import EMAIL

log = logging.getLogger(__name__)


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
    own MIME message to the SMTP client the hook opened: the row's bytes rendered when
    it was queued (``rendered``) with this sender's From and the Date and Message-ID
    lines added, the same bytes the built message would give; or, for a row without
    them (or a sender address that needs SMTPUTF8), the message built now. We do not use the hook's
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
        self.domain = address_domain(email_from)  # fails early on a bad From
        self.from_line = from_line(email_from) if self.envelope_from.isascii() else None
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

    def _prerendered(self, message: QueuedMessage) -> bytes | None:
        if message.rendered is None or self.from_line is None:
            return None
        try:
            return wire_bytes(
                message.rendered,
                sender=self.from_line,
                dedupe_key=message.dedupe_key,
                domain=self.domain,
                date=datetime.now(tz=UTC),
            )
        except ValueError:
            log.warning("Outbox row %s: unreadable rendered email: building it", message.id)
            return None

    def send(self, message: QueuedMessage) -> str | None:
        data = self._prerendered(message)
        if data is None:
            try:
                msg = build_email(message, email_from=self.email_from)
            except ValueError as exc:
                raise PermanentDeliveryError(f"cannot build the email: {exc}") from exc
            mid = msg["Message-ID"]
        else:
            mid = message_id(message.dedupe_key, self.domain)
        while True:
            client = self._client()
            try:
                if data is None:
                    client.send_message(msg, from_addr=self.envelope_from, to_addrs=[message.recipient])
                else:
                    client.sendmail(self.envelope_from, [message.recipient], data)
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
