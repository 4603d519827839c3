"""What every transport shares: the message it is handed, its protocol, and its two errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, Self, runtime_checkable

# A reason is stored in ``auxeng_outbox.reason`` (Text); keep it readable in the UI and in logs.
MAX_REASON = 1000


class DeliveryError(Exception):
    """A message could not be delivered; ``reason`` is what gets stored on its outbox row."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:MAX_REASON]


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help (unknown user, refused address, bad message): the row becomes ``failed``.

    ``credentials`` says the service rejected our credentials (e.g. Slack
    ``invalid_auth``): the row still fails, and the run reports a problem so it
    does not look green while every message fails the same way.
    """

    def __init__(self, reason: str, *, credentials: bool = False) -> None:
        super().__init__(reason)
        self.credentials = credentials


class TransientDeliveryError(DeliveryError):
    """Retrying later may help (server down, 4xx, Slack 5xx, timeout): the row stays ``pending``.

    ``transport_down`` says the transport itself is unusable for now (cannot
    connect, connection lost twice): delivery stops using it for this run and
    leaves the channel's other messages pending without counting an attempt.
    """

    def __init__(self, reason: str, *, transport_down: bool = False) -> None:
        super().__init__(reason)
        self.transport_down = transport_down


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """One claimed outbox row, as handed to :meth:`Transport.send`."""

    id: int
    dedupe_key: str
    channel: str
    kind: str
    recipient: str
    body_text: str
    subject: str | None = None
    body_html: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    recipient_email: str | None = None
    attempts: int = 0
    not_before: datetime | None = None
    engagement_key: str | None = None
    invitation_id: int | None = None
    rendered: bytes | None = None  # an email's bytes as queued (auxeng.messaging.mime.render)


@runtime_checkable
class Transport(Protocol):
    """Sends the messages of one channel.

    ``with transport:`` opens one session for one batch (one SMTP connection,
    one Slack client) and closes it; closing never raises. ``send`` returns the
    message's external id (email Message-ID, Slack ``ts``) or None, and raises
    :class:`PermanentDeliveryError` or :class:`TransientDeliveryError`; opening
    raises :class:`TransientDeliveryError` when the transport cannot be used now.

    ``name`` (at most 16 characters) is stored on each sent row. ``recipient_prefixes``
    limits the rows the transport is given to recipients starting with one of
    them (None: every row of its channel), e.g. a Slack webhook only posts to channels.
    """

    name: str
    channel: str
    recipient_prefixes: tuple[str, ...] | None

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def send(self, message: QueuedMessage) -> str | None: ...


class BaseTransport:
    """Convenience base: no session to open or close."""

    name: str = "base"
    channel: str = ""
    recipient_prefixes: tuple[str, ...] | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def send(self, message: QueuedMessage) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def handles(self, recipient: str) -> bool:
        return self.recipient_prefixes is None or recipient.startswith(self.recipient_prefixes)
