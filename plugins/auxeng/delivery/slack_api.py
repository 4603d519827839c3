"""One retrying Slack client: the Web API for delivery and help-channel reading, and the retry policy.

:class:`SlackApi` calls the Web API through an Airflow connection with the slack
provider's ``SlackHook``: its public ``client`` is a ``slack_sdk.WebClient`` that
honours the connection's ``base_url`` extra, built with slack_sdk's own retry
handlers switched off because the retries are ours (:class:`RetryPolicy`, which the
incoming-webhook transport shares):

* a 429 waits ``Retry-After`` seconds (at most ``max_retry_after``; 1 s without the
  header) and tries the same call again, at most ``max_rate_limit_waits`` times;
* 5xx replies, Slack's transient error codes, timeouts and connection errors back off
  exponentially (``backoff_seconds``, doubling) and are tried again up to ``retries``
  times in all, then raise :class:`TransientDeliveryError` (``transport_down`` when
  Slack cannot be reached at all);
* any other Slack error raises :class:`SlackRefused`, a permanent error carrying
  Slack's ``error`` code (``credentials`` when the token itself is refused).

``sleep`` is what every wait calls; tests pass a recorder, so nothing really waits.
"""

from __future__ import annotations

import http.client
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.error import HTTPError, URLError

from auxeng.delivery.base import PermanentDeliveryError, TransientDeliveryError

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.web import SlackResponse

log = logging.getLogger(__name__)

# Slack ``error`` codes worth retrying later; any other error fails the call.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Errors that mean the token itself is not usable: every call would fail the same way.
CREDENTIAL_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "missing_scope"}
)


class SlackRefused(PermanentDeliveryError):
    """Slack answered a Web API call with an error retrying cannot fix; ``error`` is Slack's code."""

    def __init__(self, error: str | None, status: int) -> None:
        super().__init__(f"slack: {error or f'HTTP {status}'}", credentials=error in CREDENTIAL_ERRORS)
        self.error = error


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else str(value)
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How Slack calls wait and retry (see the module's docstring)."""

    retries: int = 3
    backoff_seconds: float = 0.5
    max_retry_after: float = 60.0
    max_rate_limit_waits: int = 5
    sleep: Callable[[float], None] = time.sleep

    def rate_limited(self, waits: int, headers: Mapping[str, Any] | None) -> int:
        """Wait out a 429 (``waits`` so far); the new count, or TransientDeliveryError when out of waits."""
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
        self.sleep(seconds)
        return waits

    def backoff(self, failures: int, reason: str, *, down: bool = False) -> int:
        """Back off after a transient failure; the new count, or TransientDeliveryError when out of retries."""
        failures += 1
        if failures > self.retries:
            raise TransientDeliveryError(
                f"{reason} (tried {failures} times)" if failures > 1 else reason, transport_down=down
            )
        delay = self.backoff_seconds * 2 ** (failures - 1)
        log.info("Slack: %s; retrying in %.2f s", reason, delay)
        self.sleep(delay)
        return failures


class SlackApi:
    """The Slack Web API calls the pack makes, each retried by ``retry``."""

    def __init__(self, client: WebClient, retry: RetryPolicy) -> None:
        self.client = client
        self.retry = retry

    @classmethod
    def connect(cls, conn_id: str, retry: RetryPolicy | None = None) -> SlackApi:
        """The client of the Airflow connection ``conn_id`` (type ``slack``, the bot token as password).

        Raises what the hook raises for a missing or unusable connection
        (``AirflowNotFoundException`` when there is none or it has no token).
        """
        from airflow.providers.slack.hooks.slack import SlackHook

        client = SlackHook(slack_conn_id=conn_id, retry_handlers=[]).client
        return cls(client, retry or RetryPolicy())

    def post_message(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None) -> str | None:
        """``chat.postMessage`` to a conversation or a user id (a DM); the message's ``ts``."""
        kwargs: dict[str, Any] = {"channel": channel, "text": text}
        if blocks:
            kwargs["blocks"] = blocks
        return self._retrying(lambda: self.client.chat_postMessage(**kwargs)).get("ts")

    def user_id_by_email(self, email: str) -> str:
        """The Slack user id of ``email`` (``users.lookupByEmail``)."""
        return self._retrying(lambda: self.client.users_lookupByEmail(email=email))["user"]["id"]

    def upload_file(
        self, channel: str, *, content: bytes, filename: str, title: str, initial_comment: str | None
    ) -> str | None:
        """Upload a file to a conversation id with ``files_upload_v2``; the Slack file id.

        ``files_upload_v2`` is three steps (get an upload URL, post the bytes, complete
        the upload into the channel); a retry repeats all three, so a failed attempt at
        most leaves an unshared upload behind.
        """
        from slack_sdk.errors import SlackRequestError

        try:
            response = self._retrying(
                lambda: self.client.files_upload_v2(
                    channel=channel,
                    content=content,
                    filename=filename,
                    title=title,
                    initial_comment=initial_comment,
                )
            )
        except SlackRequestError as exc:  # refused by slack_sdk itself (too large, odd upload reply)
            raise PermanentDeliveryError(f"slack: cannot upload {filename!r}: {exc}") from exc
        uploaded = response.get("file") or next(iter(response.get("files") or []), None) or {}
        return uploaded.get("id")

    def conversation_history(
        self, channel: str, *, oldest: str, latest: str, limit: int, cursor: str | None = None
    ) -> SlackResponse:
        """One page of ``conversations.history`` (both ends included), newest first."""
        kwargs: dict[str, Any] = {
            "channel": channel,
            "oldest": oldest,
            "latest": latest,
            "inclusive": True,
            "limit": limit,
        }
        if cursor:
            kwargs["cursor"] = cursor
        return self._retrying(lambda: self.client.conversations_history(**kwargs))

    def _retrying(self, request: Callable[[], SlackResponse]) -> SlackResponse:
        from slack_sdk.errors import SlackApiError

        retry = self.retry
        waits = failures = 0
        while True:
            try:
                return request()
            except SlackApiError as exc:
                response = exc.response
                status = response.status_code
                data = response.data if isinstance(response.data, dict) else {}
                error = data.get("error")
                if status == 429 or error == "ratelimited":
                    waits = retry.rate_limited(waits, response.headers)
                elif status >= 500 or error in TRANSIENT_ERRORS:
                    # A 5xx body is often an HTML page: keep only Slack's own error code, if any.
                    detail = error if error in TRANSIENT_ERRORS else ""
                    failures = retry.backoff(failures, f"slack: HTTP {status} {detail}".strip())
                else:
                    raise SlackRefused(error, status) from exc
            # Only the upload URL of files_upload_v2 raises HTTPError (API calls raise SlackApiError).
            except HTTPError as exc:
                if exc.code == 429:
                    waits = retry.rate_limited(waits, exc.headers)
                elif exc.code >= 500:
                    failures = retry.backoff(failures, f"slack: file upload HTTP {exc.code}")
                else:
                    raise PermanentDeliveryError(f"slack: file upload HTTP {exc.code} {exc.reason}") from exc
            except (URLError, ConnectionError) as exc:
                failures = retry.backoff(failures, f"slack: cannot reach Slack: {exc}", down=True)
            except (TimeoutError, http.client.HTTPException, OSError) as exc:
                failures = retry.backoff(failures, f"slack: {type(exc).__name__}: {exc}")
