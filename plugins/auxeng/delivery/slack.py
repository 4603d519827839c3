"""Slack: the Web API transport (DMs and channel posts) and the incoming-webhook transport (channel posts).

Recipients (``auxeng_outbox.recipient`` of a Slack row):

* ``U…`` / ``W…``: a user id, sent as a DM from the app (``chat.postMessage`` to the user id);
* ``email:<address>``: the user is looked up with ``users.lookupByEmail`` at send time (cached per batch);
* ``C…`` / ``G…`` / ``D…`` or ``#name``: a conversation, posted to as it is.

File uploads: a row whose ``payload["file"]`` is ``{"filename": "nps-trend.png",
"title": "NPS, last 13 weeks", "data": "<base64>"}`` uploads that file (Web API
``files_upload_v2``) to its recipient, which must be a conversation id
(``C…``/``G…``/``D…``), with ``body_text`` (if any) as the initial comment;
``blocks`` are not used. Its external id is the Slack file id. Webhooks cannot
upload: such rows fail on a webhook.

Rate limits and errors (:mod:`auxeng.delivery.slack_api`, for both transports): a 429
waits ``Retry-After`` seconds (capped) and retries the same message. 5xx replies and
connection errors are retried with exponential backoff a few times, then the message
is left pending (transient). Slack errors that retrying cannot fix (``users_not_found``,
``channel_not_found``, ``invalid_auth``…) fail the message with the error as its reason.
"""

from __future__ import annotations

import base64
import http.client
from dataclasses import dataclass
from typing import Any, Self
from urllib.error import URLError

from auxeng.delivery.base import (
    BaseTransport,
    PermanentDeliveryError,
    QueuedMessage,
    TransientDeliveryError,
)
from auxeng.delivery.slack_api import RetryPolicy, SlackApi
from auxeng.messaging.outbox import SLACK

# Webhook replies meaning the webhook itself is gone or its token is wrong.
WEBHOOK_CREDENTIAL_ERRORS = frozenset({"invalid_token", "no_service", "no_team", "team_disabled"})
USER_PREFIXES = ("U", "W")
CONVERSATION_PREFIXES = ("C", "G", "D", "#")
EMAIL_PREFIX = "email:"
# Where files can be uploaded (files.completeUploadExternal takes a conversation id, not a name or user).
UPLOAD_PREFIXES = ("C", "G", "D")


@dataclass(frozen=True, slots=True)
class SlackFile:
    """The file a Slack outbox row uploads (``payload["file"]``), decoded."""

    filename: str
    title: str
    data: bytes


def slack_file(message: QueuedMessage) -> SlackFile | None:
    """The file of a Slack row (None for a plain post); PermanentDeliveryError if it is malformed.

    ``payload["file"] = {"filename": "nps-trend.png", "title": "…", "data": "<base64>"}``;
    ``title`` defaults to the file name (as Slack does).
    """
    spec = (message.payload or {}).get("file")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise PermanentDeliveryError(f"slack: payload file must be an object, got {type(spec).__name__}")
    filename = spec.get("filename")
    if not filename or not isinstance(filename, str):
        raise PermanentDeliveryError("slack: payload file has no filename")
    raw = spec.get("data")
    try:
        if not isinstance(raw, str | bytes):
            raise TypeError("no data" if raw is None else f"data is a {type(raw).__name__}")
        if isinstance(raw, str):
            raw = raw.encode("ascii")
        data = base64.b64decode(b"".join(raw.split()), validate=True)
    except (ValueError, TypeError) as exc:  # binascii.Error and UnicodeEncodeError are ValueErrors
        raise PermanentDeliveryError(f"slack: file {filename!r}: data is not valid base64 ({exc})") from exc
    if not data:
        raise PermanentDeliveryError(f"slack: file {filename!r}: data is empty")
    return SlackFile(filename=filename, title=str(spec.get("title") or filename), data=data)


class SlackApiTransport(BaseTransport):
    """Slack Web API through the Airflow connection ``conn_id`` (:class:`~auxeng.delivery.slack_api.SlackApi`).

    ``retry`` keywords (``retries``, ``backoff_seconds``, ``max_retry_after``,
    ``max_rate_limit_waits``, ``sleep``) tune the :class:`~auxeng.delivery.slack_api.RetryPolicy`.
    """

    name = "slack_api"
    channel = SLACK

    def __init__(self, conn_id: str, *, lookup_by_email: bool = True, **retry: Any) -> None:
        self.conn_id = conn_id
        self.lookup_by_email = lookup_by_email
        self.retry = RetryPolicy(**retry)
        self._api: SlackApi | None = None
        self._users: dict[str, str | PermanentDeliveryError] = {}

    def __enter__(self) -> Self:
        try:
            self._api = SlackApi.connect(self.conn_id, self.retry)
        except Exception as exc:
            raise TransientDeliveryError(
                f"slack: connection {self.conn_id!r} is not usable: {exc}", transport_down=True
            ) from exc
        self._users = {}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._api = None
        self._users = {}

    @property
    def api(self) -> SlackApi:
        if self._api is None:
            raise RuntimeError("SlackApiTransport used outside its `with` block")
        return self._api

    def _user_id(self, email: str) -> str:
        if not self.lookup_by_email:
            raise PermanentDeliveryError("no slack_id and lookup by email disabled")
        cached = self._users.get(email)
        if isinstance(cached, PermanentDeliveryError):
            raise cached
        if cached is None:
            try:
                cached = self._users[email] = self.api.user_id_by_email(email)
            except PermanentDeliveryError as exc:
                error = PermanentDeliveryError(f"{exc.reason} ({email})", credentials=exc.credentials)
                self._users[email] = error
                raise error from exc
        return cached

    def target(self, recipient: str) -> str:
        """The ``channel`` argument of ``chat.postMessage`` for a recipient."""
        if recipient.startswith(EMAIL_PREFIX):
            return self._user_id(recipient[len(EMAIL_PREFIX) :].strip().lower())
        if recipient.startswith(USER_PREFIXES + CONVERSATION_PREFIXES):
            return recipient
        raise PermanentDeliveryError(
            f"slack: cannot tell what recipient {recipient!r} is (expected U…, C…, #name or email:…)"
        )

    def send(self, message: QueuedMessage) -> str | None:
        file = slack_file(message)
        if file is not None:
            return self._upload(message, file)
        blocks = (message.payload or {}).get("blocks")
        return self.api.post_message(self.target(message.recipient), message.body_text, blocks)

    def _upload(self, message: QueuedMessage, file: SlackFile) -> str | None:
        """Upload ``file`` to the row's conversation; the Slack file id."""
        recipient = message.recipient
        if not recipient.startswith(UPLOAD_PREFIXES):
            raise PermanentDeliveryError(
                f"slack: files can only be uploaded to a channel id (C…/G…), not {recipient!r}"
            )
        return self.api.upload_file(
            recipient,
            content=file.data,
            filename=file.filename,
            title=file.title,
            initial_comment=message.body_text or None,
        )


class SlackWebhookTransport(BaseTransport):
    """An incoming webhook (the slack provider's ``SlackWebhookHook``): channel posts only.

    A webhook always posts to the channel it was created for: the row's
    recipient (``C…``/``#name``) is not sent. Webhooks cannot send DMs, so rows
    addressed to people are not given to this transport (they wait for a Slack
    API connection). Webhooks cannot upload files either: a file row fails,
    naming the Slack API connection ``api_conn_id`` to create.
    """

    name = "slack_webhook"
    channel = SLACK
    recipient_prefixes = CONVERSATION_PREFIXES

    def __init__(self, conn_id: str, *, api_conn_id: str = "slack_api_default", **retry: Any) -> None:
        self.conn_id = conn_id
        self.api_conn_id = api_conn_id
        self.retry = RetryPolicy(**retry)
        self._client: Any = None

    def __enter__(self) -> Self:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        try:
            self._client = SlackWebhookHook(slack_webhook_conn_id=self.conn_id, retry_handlers=[]).client
        except Exception as exc:
            raise TransientDeliveryError(
                f"slack: webhook connection {self.conn_id!r} is not usable: {exc}", transport_down=True
            ) from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client = None

    def send(self, message: QueuedMessage) -> str | None:
        file = slack_file(message)
        if file is not None:
            raise PermanentDeliveryError(
                f"slack webhook cannot upload files: create the Slack API connection {self.api_conn_id!r} "
                f"(type slack, a bot token with files:write as password) to upload {file.filename!r}"
            )
        if not self.handles(message.recipient):
            raise PermanentDeliveryError(f"slack webhook cannot send to {message.recipient!r}")
        body: dict[str, Any] = {"text": message.body_text}
        blocks = (message.payload or {}).get("blocks")
        if blocks:
            body["blocks"] = blocks
        waits = failures = 0
        while True:
            try:
                response = self._client.send_dict(body)
            except (URLError, ConnectionError) as exc:
                failures = self.retry.backoff(failures, f"slack webhook: cannot reach it: {exc}", down=True)
                continue
            except (TimeoutError, http.client.HTTPException, OSError) as exc:
                failures = self.retry.backoff(failures, f"slack webhook: {type(exc).__name__}: {exc}")
                continue
            status = response.status_code
            if status == 200:
                return None
            text = (response.body or "").strip()[:200]
            if status == 429:
                waits = self.retry.rate_limited(waits, response.headers)
            elif status >= 500:
                failures = self.retry.backoff(failures, f"slack webhook: HTTP {status} {text}".strip())
            else:
                raise PermanentDeliveryError(
                    f"slack webhook: HTTP {status} {text}".strip(),
                    credentials=text in WEBHOOK_CREDENTIAL_ERRORS,
                )
