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

Rate limits: a 429 waits ``Retry-After`` seconds (capped) and retries the same
message. 5xx replies and connection errors are retried with exponential backoff
a few times, then the message is left pending (transient). Slack errors that
retrying cannot fix (``users_not_found``, ``channel_not_found``, ``invalid_auth``…)
fail the message with the error as its reason.
"""

from __future__ import annotations

import base64
import http.client
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.error import HTTPError, URLError

from auxeng.delivery.base import (
    BaseTransport,
    PermanentDeliveryError,
    QueuedMessage,
    TransientDeliveryError,
)
from auxeng.messaging.outbox import SLACK

log = logging.getLogger(__name__)

# Slack ``error`` codes worth retrying later; any other error fails the message.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Errors that mean the token itself is not usable: every message would fail the same way.
CREDENTIAL_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope"}
)
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


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else str(value)
    return None


class _Retrying(BaseTransport):
    """Retry policy shared by the Slack transports."""

    channel = SLACK

    def __init__(
        self,
        conn_id: str,
        *,
        retries: int = 3,
        backoff_seconds: float = 0.5,
        max_retry_after: float = 60.0,
        max_rate_limit_waits: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.conn_id = conn_id
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.max_retry_after = max_retry_after
        self.max_rate_limit_waits = max_rate_limit_waits
        self._sleep = sleep

    def _rate_limited(self, waits: int, headers: Mapping[str, Any] | None) -> int:
        waits += 1
        if waits > self.max_rate_limit_waits:
            raise TransientDeliveryError(f"slack: still rate limited (429) after {waits - 1} waits")
        raw = _header(headers, "Retry-After")
        try:
            seconds = float(raw) if raw is not None else 1.0
        except ValueError:
            seconds = 1.0
        seconds = max(0.0, min(seconds, self.max_retry_after))
        log.info("Slack rate limit (429): waiting %.1f s (Retry-After %s)", seconds, raw)
        self._sleep(seconds)
        return waits

    def _backoff(self, failures: int, reason: str, *, down: bool = False) -> int:
        failures += 1
        if failures > self.retries:
            raise TransientDeliveryError(
                f"{reason} (tried {failures} times)" if failures > 1 else reason, transport_down=down
            )
        delay = self.backoff_seconds * 2 ** (failures - 1)
        log.info("Slack: %s; retrying in %.2f s", reason, delay)
        self._sleep(delay)
        return failures


class SlackApiTransport(_Retrying):
    """Slack Web API through the Airflow connection ``conn_id`` (the slack provider's ``SlackHook``).

    The hook's ``client`` is a ``slack_sdk.WebClient`` honouring the connection's
    ``base_url`` extra; its own retry handlers are switched off (retries are ours).
    """

    name = "slack_api"

    def __init__(self, conn_id: str, *, lookup_by_email: bool = True, **retry: Any) -> None:
        super().__init__(conn_id, **retry)
        self.lookup_by_email = lookup_by_email
        self._client: Any = None
        self._users: dict[str, str | PermanentDeliveryError] = {}

    def __enter__(self) -> Self:
        from airflow.providers.slack.hooks.slack import SlackHook

        try:
            self._client = SlackHook(slack_conn_id=self.conn_id, retry_handlers=[]).client
        except Exception as exc:
            raise TransientDeliveryError(
                f"slack: connection {self.conn_id!r} is not usable: {exc}", transport_down=True
            ) from exc
        self._users = {}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client = None
        self._users = {}

    def _call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        from slack_sdk.errors import SlackApiError

        waits = failures = 0
        while True:
            try:
                return method(**kwargs)
            except SlackApiError as exc:
                response = exc.response
                status = response.status_code
                data = response.data if isinstance(response.data, dict) else {}
                error = data.get("error")
                if status == 429 or error == "ratelimited":
                    waits = self._rate_limited(waits, response.headers)
                elif status >= 500 or error in TRANSIENT_ERRORS:
                    # A 5xx body is often an HTML page: keep only Slack's own error code, if any.
                    detail = error if error in TRANSIENT_ERRORS else ""
                    failures = self._backoff(failures, f"slack: HTTP {status} {detail}".strip())
                else:
                    raise PermanentDeliveryError(
                        f"slack: {error or f'HTTP {status}'}", credentials=error in CREDENTIAL_ERRORS
                    ) from exc
            # Only the upload URL of files_upload_v2 raises HTTPError (API calls raise SlackApiError).
            except HTTPError as exc:
                if exc.code == 429:
                    waits = self._rate_limited(waits, exc.headers)
                elif exc.code >= 500:
                    failures = self._backoff(failures, f"slack: file upload HTTP {exc.code}")
                else:
                    raise PermanentDeliveryError(f"slack: file upload HTTP {exc.code} {exc.reason}") from exc
            except (URLError, ConnectionError) as exc:
                failures = self._backoff(failures, f"slack: cannot reach Slack: {exc}", down=True)
            except (TimeoutError, http.client.HTTPException, OSError) as exc:
                failures = self._backoff(failures, f"slack: {type(exc).__name__}: {exc}")

    def _user_id(self, email: str) -> str:
        if not self.lookup_by_email:
            raise PermanentDeliveryError("no slack_id and lookup by email disabled")
        cached = self._users.get(email)
        if isinstance(cached, PermanentDeliveryError):
            raise cached
        if cached is None:
            try:
                response = self._call(self._client.users_lookupByEmail, email=email)
            except PermanentDeliveryError as exc:
                error = PermanentDeliveryError(f"{exc.reason} ({email})", credentials=exc.credentials)
                self._users[email] = error
                raise error from exc
            cached = self._users[email] = response["user"]["id"]
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
        kwargs: dict[str, Any] = {"channel": self.target(message.recipient), "text": message.body_text}
        blocks = (message.payload or {}).get("blocks")
        if blocks:
            kwargs["blocks"] = blocks
        response = self._call(self._client.chat_postMessage, **kwargs)
        return response.get("ts")

    def _upload(self, message: QueuedMessage, file: SlackFile) -> str | None:
        """Upload ``file`` to the row's conversation; the Slack file id.

        ``files_upload_v2`` is three steps (get an upload URL, post the bytes,
        complete the upload into the channel); a retry repeats all three, so a
        failed attempt at most leaves an unshared upload behind.
        """
        from slack_sdk.errors import SlackRequestError

        recipient = message.recipient
        if not recipient.startswith(UPLOAD_PREFIXES):
            raise PermanentDeliveryError(
                f"slack: files can only be uploaded to a channel id (C…/G…), not {recipient!r}"
            )
        try:
            response = self._call(
                self._client.files_upload_v2,
                channel=recipient,
                content=file.data,
                filename=file.filename,
                title=file.title,
                initial_comment=message.body_text or None,
            )
        except SlackRequestError as exc:  # refused by slack_sdk itself (too large, odd upload reply)
            raise PermanentDeliveryError(f"slack: cannot upload {file.filename!r}: {exc}") from exc
        uploaded = response.get("file") or next(iter(response.get("files") or []), None) or {}
        return uploaded.get("id")


class SlackWebhookTransport(_Retrying):
    """An incoming webhook (the slack provider's ``SlackWebhookHook``): channel posts only.

    A webhook always posts to the channel it was created for: the row's
    recipient (``C…``/``#name``) is not sent. Webhooks cannot send DMs, so rows
    addressed to people are not given to this transport (they wait for a Slack
    API connection). Webhooks cannot upload files either: a file row fails,
    naming the Slack API connection ``api_conn_id`` to create.
    """

    name = "slack_webhook"
    recipient_prefixes = CONVERSATION_PREFIXES

    def __init__(self, conn_id: str, *, api_conn_id: str = "slack_api_default", **retry: Any) -> None:
        super().__init__(conn_id, **retry)
        self.api_conn_id = api_conn_id
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
                failures = self._backoff(failures, f"slack webhook: cannot reach it: {exc}", down=True)
                continue
            except (TimeoutError, http.client.HTTPException, OSError) as exc:
                failures = self._backoff(failures, f"slack webhook: {type(exc).__name__}: {exc}")
                continue
            status = response.status_code
            if status == 200:
                return None
            text = (response.body or "").strip()[:200]
            if status == 429:
                waits = self._rate_limited(waits, response.headers)
            elif status >= 500:
                failures = self._backoff(failures, f"slack webhook: HTTP {status} {text}".strip())
            else:
                raise PermanentDeliveryError(
                    f"slack webhook: HTTP {status} {text}".strip(),
                    credentials=text in WEBHOOK_CREDENTIAL_ERRORS,
                )
