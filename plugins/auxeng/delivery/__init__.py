"""The delivery layer: drains the outbox (:mod:`auxeng.messaging.outbox`) through email and Slack transports.

Importing it is cheap and has no side effects: provider hooks and ``slack_sdk``
are imported when a transport opens, Airflow when connections are resolved.

* :func:`deliver` — guard, claim, send, mark; returns a :class:`DeliveryReport`;
* :func:`resolve_transports` — the transport of each channel from the Airflow connections;
* transports: :class:`SmtpTransport`, :class:`SlackApiTransport`,
  :class:`SlackWebhookTransport`, :class:`DevFileTransport`, or your own
  (:class:`Transport` protocol; :class:`BaseTransport` helps);
* errors a transport raises: :class:`PermanentDeliveryError`, :class:`TransientDeliveryError`;
  :class:`DeliveryIncomplete` is what ``DeliveryReport.raise_for_problems`` raises.
"""

from auxeng.delivery.base import (
    BaseTransport,
    DeliveryError,
    PermanentDeliveryError,
    QueuedMessage,
    TransientDeliveryError,
    Transport,
)
from auxeng.delivery.dev import DevFileTransport
from auxeng.delivery.drain import deliver
from auxeng.delivery.mail import SmtpTransport
from auxeng.delivery.report import DeliveryIncomplete, DeliveryReport
from auxeng.delivery.resolve import resolve_transports
from auxeng.delivery.slack import SlackApiTransport, SlackWebhookTransport
from auxeng.messaging.mime import build_email

__all__ = [
    "BaseTransport",
    "DeliveryError",
    "DeliveryIncomplete",
    "DeliveryReport",
    "DevFileTransport",
    "PermanentDeliveryError",
    "QueuedMessage",
    "SlackApiTransport",
    "SlackWebhookTransport",
    "SmtpTransport",
    "TransientDeliveryError",
    "Transport",
    "build_email",
    "deliver",
    "resolve_transports",
]
