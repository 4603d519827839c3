"""Which transport sends each channel, from the Airflow connections that exist.

* email: the SMTP connection (``AUXENG_SMTP_CONN_ID``, default ``smtp_default``);
* slack: the Slack API connection (``slack_api_default``), else the incoming
  webhook (``slack_default``, channel posts only);
* neither: the dev outbox (``AUXENG_DEV_OUTBOX``) if set, else the channel is
  *missing*: its messages stay pending and the explanation says what to create.

Call it inside a task, never at DAG parse time (it reads Airflow connections).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from auxeng.delivery.base import Transport
from auxeng.delivery.dev import DevFileTransport
from auxeng.delivery.mail import SmtpTransport
from auxeng.delivery.slack import SlackApiTransport, SlackWebhookTransport
from auxeng.messaging.mime import address_domain
from auxeng.messaging.outbox import CHANNELS, EMAIL, SLACK
from auxeng.settings import Settings

DEV_HINT = "or, for local runs, set AUXENG_DEV_OUTBOX=1 to write the messages as files"


def _connection(conn_id: str) -> Any | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _smtp_example(conn_id: str) -> str:
    example = {
        "conn_type": "smtp",
        "host": "smtp.example.com",
        "port": 587,
        "login": "…",
        "password": "…",
        "extra": {"from_email": "auxeng@example.com"},
    }
    return f"AIRFLOW_CONN_{conn_id.upper()}='{json.dumps(example)}'"


def _email(settings: Settings) -> tuple[Transport | None, str | None]:
    conn = _connection(settings.smtp_conn_id)
    if conn is not None:
        email_from = settings.email_from or (conn.extra_dejson or {}).get("from_email")
        if not email_from:
            return None, (
                f"no sender address: set AUXENG_EMAIL_FROM or the from_email extra of the "
                f"Airflow connection {settings.smtp_conn_id!r}"
            )
        try:
            address_domain(email_from)
        except ValueError:
            return None, (
                f"sender address {email_from!r} (AUXENG_EMAIL_FROM or the from_email extra of "
                f"{settings.smtp_conn_id!r}) is not an email address"
            )
        return SmtpTransport(settings.smtp_conn_id, email_from=email_from), None
    if settings.dev_outbox is not None:
        return DevFileTransport(settings.dev_outbox, EMAIL, email_from=settings.email_from), None
    return None, (
        f"no Airflow connection {settings.smtp_conn_id!r}: create it (type smtp; the JSON form keeps "
        f"real booleans), e.g. {_smtp_example(settings.smtp_conn_id)}, {DEV_HINT}"
    )


def _slack(settings: Settings) -> tuple[Transport | None, str | None]:
    api, hook = settings.slack_api_conn_id, settings.slack_webhook_conn_id
    if _connection(api) is not None:
        return SlackApiTransport(api, lookup_by_email=settings.slack_lookup_by_email), None
    if _connection(hook) is not None:
        return SlackWebhookTransport(hook, api_conn_id=api), (
            f"direct messages cannot be sent: only the incoming webhook {hook!r} is configured and "
            f"webhooks cannot DM; create the Airflow connection {api!r} (type slack, a bot token with "
            f"chat:write and users:read.email as password) to send them"
        )
    if settings.dev_outbox is not None:
        return DevFileTransport(settings.dev_outbox, SLACK), None
    return None, (
        f"no Airflow connection {api!r} (type slack, a bot token as password) or {hook!r} "
        f"(type slackwebhook, channel posts only): create {api!r}, {DEV_HINT}"
    )


def resolve_transports(
    settings: Settings, *, channels: Iterable[str] = CHANNELS
) -> tuple[dict[str, Transport], dict[str, str]]:
    """The transport of each channel, and an explanation for each channel (partly) without one.

    A channel can have both: the Slack webhook sends channel posts while DMs are missing.
    """
    transports: dict[str, Transport] = {}
    missing: dict[str, str] = {}
    for channel in channels:
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r} (expected one of {', '.join(CHANNELS)})")
        transport, explanation = _email(settings) if channel == EMAIL else _slack(settings)
        if transport is not None:
            transports[channel] = transport
        if explanation is not None:
            missing[channel] = explanation
    return transports, missing
