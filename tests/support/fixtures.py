"""pytest fixtures: a real SMTP server, a Slack stand-in, and the Airflow connections that point at them.

Registered for the whole suite in ``tests/conftest.py`` (``pytest_plugins``).

* ``smtp_server`` — a started :class:`~tests.support.smtp_server.SmtpServer`
  (``.messages``, ``.sessions``, ``.stop()``/``.start()``, ``.refuse(addr)``…);
* ``slack_standin`` — a started :class:`~tests.support.slack_standin.SlackStandIn`
  (``.posts``, ``.calls``, ``.add_user()``, ``.fail_next()``…);
* ``smtp_connection`` — sets ``AIRFLOW_CONN_SMTP_DEFAULT`` to ``smtp_server``
  (plain SMTP, ``from_email`` auxeng@example.com); returns the connection as a dict;
* ``slack_api_connection`` — sets ``AIRFLOW_CONN_SLACK_API_DEFAULT`` (token
  ``xoxb-test``, ``base_url`` = the stand-in's ``/api/``); returns the dict;
* ``slack_webhook_connection`` — sets ``AIRFLOW_CONN_SLACK_DEFAULT`` (the stand-in's
  ``/services`` webhook); returns the dict;
* ``slack_connections`` — both Slack connections; returns ``{conn id: dict}``.

The connections are environment variables (set with ``monkeypatch``, so undone
after each test); tasks run by ``dag.test()`` in the same process see them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.slack_standin import TOKEN, SlackStandIn
from tests.support.smtp_server import SmtpServer


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port, recording every message."""
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def slack_standin() -> Iterator[SlackStandIn]:
    """A local Slack (Web API + incoming webhooks) on 127.0.0.1, recording every post."""
    standin = SlackStandIn().start()
    try:
        yield standin
    finally:
        standin.stop()


def smtp_connection_dict(server: SmtpServer, **extra: Any) -> dict[str, Any]:
    return {
        "conn_type": "smtp",
        "host": server.host,
        "port": server.port,
        "extra": server.connection_extra(**extra),
    }


def slack_api_connection_dict(standin: SlackStandIn) -> dict[str, Any]:
    return {"conn_type": "slack", "password": TOKEN, "extra": {"base_url": standin.api_url}}


def slack_webhook_connection_dict(standin: SlackStandIn) -> dict[str, Any]:
    return {"conn_type": "slackwebhook", "host": standin.webhook_host, "password": standin.webhook_token}


@pytest.fixture
def smtp_connection(monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer) -> dict[str, Any]:
    """``AIRFLOW_CONN_SMTP_DEFAULT`` → ``smtp_server`` (JSON form: real booleans)."""
    conn = smtp_connection_dict(smtp_server)
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(conn))
    return conn


@pytest.fixture
def slack_api_connection(monkeypatch: pytest.MonkeyPatch, slack_standin: SlackStandIn) -> dict[str, Any]:
    """``AIRFLOW_CONN_SLACK_API_DEFAULT`` → the stand-in's Web API."""
    conn = slack_api_connection_dict(slack_standin)
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_API_DEFAULT", json.dumps(conn))
    return conn


@pytest.fixture
def slack_webhook_connection(monkeypatch: pytest.MonkeyPatch, slack_standin: SlackStandIn) -> dict[str, Any]:
    """``AIRFLOW_CONN_SLACK_DEFAULT`` → the stand-in's incoming webhook."""
    conn = slack_webhook_connection_dict(slack_standin)
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", json.dumps(conn))
    return conn


@pytest.fixture
def slack_connections(
    slack_api_connection: dict[str, Any], slack_webhook_connection: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Both Slack connections (the API one is used; the webhook is there as in production)."""
    return {"slack_api_default": slack_api_connection, "slack_default": slack_webhook_connection}
