"""A local stand-in for Slack: enough of the Web API and incoming webhooks to test against, recording posts.

>>> slack = SlackStandIn().start()
>>> slack.api_url        # the ``base_url`` extra of a ``slack`` connection
>>> slack.webhook_host   # the ``host`` of a ``slackwebhook`` connection (token: ``slack.webhook_token``)
>>> slack.add_user("U0ALICE", "alice@example.com")
>>> slack.fail_next(2, status=429, retry_after=1)     # the next 2 calls answer 429
>>> slack.fail_next(1, error="invalid_auth")           # then one {"ok": false, "error": "invalid_auth"}
>>> ...
>>> [p.text for p in slack.posts]
>>> slack.stop()

Web API methods (``POST /api/<method>``, parameters from the query string, a
form or a JSON body; token in ``Authorization: Bearer``): ``auth.test``,
``chat.postMessage`` (a user id posts to the DM channel ``D<user id>``; blocks
that slack_sdk's models refuse, or more than 50, answer ``invalid_blocks`` as Slack does),
``users.lookupByEmail`` (known users only, else ``users_not_found``),
``conversations.history`` (the channel's seeded and posted messages, newest
first, with cursor pagination; ``oldest``/``latest``/``inclusive`` honoured as Slack
does, and a cursor issued before :meth:`SlackStandIn.expire_cursors` answers
``invalid_cursor``), ``files.getUploadURLExternal`` + ``POST
/upload/<file id>`` + ``files.completeUploadExternal`` (faults reach ``POST /upload/…`` only when
given ``method="upload"``). Incoming webhooks:
``POST /services/T…/B…/X…`` with a JSON body. Every accepted post (message,
webhook, file share) is in ``posts``; every request is in ``calls``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "xoxb-test"
WEBHOOK_TOKEN = "T0TEST/B0TEST/XTESTTESTTEST"


def block_problems(blocks: Any) -> list[str]:
    """Why Slack would refuse ``blocks`` (none given: no problem), checked with slack_sdk's own models."""
    from slack_sdk.errors import SlackObjectFormationError
    from slack_sdk.models.blocks import Block

    if blocks is None:
        return []
    if not isinstance(blocks, list) or len(blocks) > 50:
        return ["blocks must be a list of at most 50 blocks"]
    problems = []
    for n, block in enumerate(blocks):
        try:
            parsed = Block.parse(block) if isinstance(block, dict) else None
            if parsed is None:
                raise SlackObjectFormationError(f"unknown block {block!r:.60}")
            parsed.validate_json()
            if any(len(f.get("text", "")) > 2000 for f in block.get("fields") or []):
                raise SlackObjectFormationError("fields text cannot exceed 2000 characters")
        except (SlackObjectFormationError, KeyError, TypeError, ValueError) as exc:
            problems.append(f"[{n}] {exc}")
    return problems


@dataclass
class Post:
    """One accepted post: ``method`` is ``chat.postMessage``, ``webhook`` or ``files.completeUploadExternal``."""

    method: str
    channel: str | None  # as the client gave it (None for webhooks: the webhook picks the channel)
    conversation: str | None  # where it landed (``D<user>`` for a DM)
    text: str | None
    blocks: list[dict[str, Any]] | None
    ts: str
    params: dict[str, Any]
    files: list[dict[str, Any]] = field(default_factory=list)
    received_at: float = field(default_factory=time.monotonic)


@dataclass
class Call:
    """One request, whatever the answer."""

    method: str
    status: int
    error: str | None
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass
class Fault:
    """An injected answer: for the next ``remaining`` calls, or a ``fraction`` of calls (seeded)."""

    status: int = 200
    error: str | None = None
    retry_after: float | None = None  # seconds; Slack sends whole seconds, a fraction keeps benches fast
    method: str | None = None  # only calls of this method ("chat.postMessage", "webhook", …)
    remaining: int | None = None
    fraction: float | None = None
    rng: random.Random | None = None
    after: int = 0  # let this many matching calls through first

    def applies(self, method: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.after > 0:
            self.after -= 1
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True
        assert self.fraction is not None and self.rng is not None
        return self.rng.random() < self.fraction


class SlackStandIn:
    """A threaded HTTP server on 127.0.0.1 (a free port) speaking enough Slack."""

    def __init__(self, host: str = "127.0.0.1", token: str = TOKEN) -> None:
        self.host = host
        self.tokens = {token}
        self.webhook_token = WEBHOOK_TOKEN
        self.users: dict[str, str] = {}  # email → user id
        self.missing_channels: set[str] = set()  # posting there answers channel_not_found
        self.archived_channels: set[str] = set()  # … is_archived
        self.posts: list[Post] = []
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.cursor_generation = 0  # cursors of older generations are invalid_cursor
        self._lock = threading.Lock()
        self._seq = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle
    def start(self) -> SlackStandIn:
        if self._server is not None:
            return self
        standin = self

        class Handler(_Handler):
            owner = standin

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="slack-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The ``base_url`` extra of a Slack API connection (ends with ``/api/``)."""
        return f"{self.base_url}/api/"

    @property
    def webhook_host(self) -> str:
        """The ``host`` of a Slack webhook connection (scheme and port included)."""
        return f"{self.base_url}/services"

    # -- set-up
    def add_user(self, user_id: str, email: str) -> None:
        self.users[email.lower()] = user_id

    def seed_history(self, channel: str, messages: list[dict[str, Any]]) -> None:
        """Messages ``conversations.history`` returns for ``channel`` (oldest first; ``ts`` added if absent)."""
        with self._lock:
            for message in messages:
                self._seq += 1
                self.history.setdefault(channel, []).append(
                    {"type": "message", "ts": f"{1_700_000_000 + self._seq}.000000", **message}
                )

    def fail_next(
        self,
        count: int,
        *,
        status: int | None = None,
        error: str | None = None,
        retry_after: float | None = None,
        method: str | None = None,
        after: int = 0,
    ) -> None:
        """The next ``count`` calls (of ``method``, or any) answer with this fault.

        ``status=429`` (with ``retry_after`` seconds), ``status=500``, or
        ``error="invalid_auth"`` (HTTP 200 ``{"ok": false}``; for webhooks, HTTP 400 and the error as body).
        ``after`` lets that many calls (of ``method``, or any) through first, e.g. ``after=2``
        fails the third page of a paginated read.
        """
        self.faults.append(
            Fault(
                status=status or (429 if retry_after is not None else 200),
                error=error,
                retry_after=retry_after,
                method=method,
                remaining=count,
                after=after,
            )
        )

    def fail_randomly(
        self,
        fraction: float,
        *,
        status: int = 429,
        error: str | None = None,
        retry_after: float | None = 0,
        method: str | None = None,
        seed: int = 0,
    ) -> None:
        """A seeded random ``fraction`` of calls (of ``method``, or any) answer with this fault."""
        self.faults.append(
            Fault(
                status=status,
                error=error,
                retry_after=retry_after,
                method=method,
                fraction=fraction,
                rng=random.Random(seed),
            )
        )

    def expire_cursors(self) -> None:
        """Every ``conversations.history`` cursor handed out so far now answers ``invalid_cursor``."""
        with self._lock:
            self.cursor_generation += 1

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    # -- what arrived
    def posts_to(self, conversation: str) -> list[Post]:
        with self._lock:
            return [p for p in self.posts if conversation in (p.channel, p.conversation)]

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    # -- internals used by the handler
    def _next_ts(self) -> str:
        self._seq += 1
        return f"{int(time.time())}.{self._seq:06d}"

    def _fault(self, method: str, *, explicit_only: bool = False) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if explicit_only and fault.method != method:
                    continue
                if fault.applies(method):
                    return fault
        return None


class _Handler(BaseHTTPRequestHandler):
    owner: SlackStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    # -- plumbing
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _params(self, body: bytes) -> dict[str, Any]:
        url = urlsplit(self.path)
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(url.query).items()}
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if kind == "application/json" and body:
            params.update(json.loads(body))
        elif kind == "application/x-www-form-urlencoded" and body:
            params.update({k: v[-1] for k, v in parse_qs(body.decode()).items()})
        for name in ("blocks", "files"):
            if isinstance(params.get(name), str):
                with contextlib.suppress(ValueError):  # not JSON: keep the text
                    params[name] = json.loads(params[name])
        return params

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8", headers)

    def _record(self, method: str, status: int, error: str | None, params: dict[str, Any]) -> None:
        with self.owner._lock:
            self.owner.calls.append(Call(method, status, error, params))

    def _answer_fault(self, method: str, fault: Fault, params: dict[str, Any], *, webhook: bool) -> None:
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        status = fault.status
        if status == 429:
            error = fault.error or "ratelimited"
            self._record(method, 429, error, params)
            if webhook:
                self._send(429, b"rate_limited", "text/plain", headers)
            else:
                self._json(429, {"ok": False, "error": error}, headers)
        elif status >= 500:
            self._record(method, status, fault.error, params)
            self._send(status, b"<html><body>Internal Server Error</body></html>", "text/html", headers)
        elif webhook:
            status = status if status != 200 else 400
            error = fault.error or "invalid_payload"
            self._record(method, status, error, params)
            self._send(status, error.encode(), "text/plain", headers)
        else:
            error = fault.error or "fatal_error"
            self._record(method, 200, error, params)
            self._json(200, {"ok": False, "error": error}, headers)

    # -- routes
    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        body = self._body()
        path = urlsplit(self.path).path
        if path.startswith("/services/"):
            self._webhook(path, body)
        elif path.startswith("/upload/"):
            self._upload(path.removeprefix("/upload/"), body)
        elif path.startswith("/api/"):
            self._api(path.removeprefix("/api/"), body)
        else:
            self._send(404, b"not found", "text/plain")

    def _api(self, method: str, body: bytes) -> None:
        owner = self.owner
        params = self._params(body)
        fault = owner._fault(method)
        if fault is not None:
            self._answer_fault(method, fault, params, webhook=False)
            return
        auth = self.headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ").strip() or params.get("token")
        if not token:
            return self._fail(method, "not_authed", params)
        if token not in owner.tokens:
            return self._fail(method, "invalid_auth", params)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._fail(method, "unknown_method", params)
        result = handler(params)
        if result.get("ok"):
            self._record(method, 200, None, params)
            self._json(200, result)
        else:
            self._fail(method, result["error"], params)

    def _fail(self, method: str, error: str, params: dict[str, Any]) -> None:
        self._record(method, 200, error, params)
        self._json(200, {"ok": False, "error": error})

    def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://auxeng-test.slack.com/", "team": "AuxEng Test", "user": "auxeng",
                "team_id": "T0TEST", "user_id": "U0AUXENG", "bot_id": "B0AUXENG"}  # fmt: skip

    def _conversation(self, channel: str | None) -> tuple[str | None, str | None]:
        """(where it lands, error)."""
        owner = self.owner
        if not channel:
            return None, "channel_not_found"
        if channel in owner.missing_channels:
            return None, "channel_not_found"
        if channel in owner.archived_channels:
            return None, "is_archived"
        if channel.startswith(("U", "W")):
            return f"D{channel}", None
        return channel, None

    def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        owner = self.owner
        conversation, error = self._conversation(params.get("channel"))
        if error:
            return {"ok": False, "error": error}
        if not params.get("text") and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        problems = block_problems(params.get("blocks"))
        if problems:
            return {"ok": False, "error": "invalid_blocks", "errors": problems}
        with owner._lock:
            ts = owner._next_ts()
            message = {
                "type": "message",
                "ts": ts,
                "text": params.get("text"),
                "blocks": params.get("blocks"),
            }
            owner.posts.append(
                Post(
                    method="chat.postMessage",
                    channel=params.get("channel"),
                    conversation=conversation,
                    text=params.get("text"),
                    blocks=params.get("blocks"),
                    ts=ts,
                    params=params,
                )
            )
            owner.history.setdefault(conversation, []).append(message)
        return {"ok": True, "channel": conversation, "ts": ts, "message": message}

    def _m_users_lookupByEmail(self, params: dict[str, Any]) -> dict[str, Any]:
        email = str(params.get("email") or "").lower()
        user_id = self.owner.users.get(email)
        if user_id is None:
            return {"ok": False, "error": "users_not_found"}
        return {"ok": True, "user": {"id": user_id, "profile": {"email": email}}}

    def _m_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        owner = self.owner
        channel = params.get("channel")
        if not channel or channel in owner.missing_channels:
            return {"ok": False, "error": "channel_not_found"}
        with owner._lock:
            newest_first = list(reversed(owner.history.get(channel, [])))
            generation = owner.cursor_generation
        # Slack: only messages between oldest and latest, both excluded unless inclusive.
        inclusive = str(params.get("inclusive") or "").lower() in {"1", "true"}
        oldest = float(params.get("oldest") or 0)
        latest = float(params["latest"]) if params.get("latest") else None
        newest_first = [
            m
            for m in newest_first
            if (float(m["ts"]) >= oldest if inclusive else float(m["ts"]) > oldest)
            and (latest is None or (float(m["ts"]) <= latest if inclusive else float(m["ts"]) < latest))
        ]
        limit = max(1, min(int(params.get("limit") or 100), 1000))
        cursor = params.get("cursor")
        start = 0
        if cursor:
            try:
                issued, _, offset = base64.b64decode(cursor).decode().partition(":offset:")
                if int(issued) != generation:
                    raise ValueError("expired")
                start = int(offset)
            except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
                return {"ok": False, "error": "invalid_cursor"}
        page = newest_first[start : start + limit]
        more = start + limit < len(newest_first)
        next_cursor = (
            base64.b64encode(f"{generation}:offset:{start + limit}".encode()).decode() if more else ""
        )
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _m_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        owner = self.owner
        if not params.get("filename") or not params.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        with owner._lock:
            owner._seq += 1
            file_id = f"F{owner._seq:08d}"
            owner.uploads[file_id] = {"id": file_id, "filename": params["filename"], "data": None}
        return {"ok": True, "file_id": file_id, "upload_url": f"{owner.base_url}/upload/{file_id}"}

    def _upload(self, file_id: str, body: bytes) -> None:
        owner = self.owner
        fault = owner._fault("upload", explicit_only=True)
        if fault is not None:  # answered in plain text, as Slack's upload host does
            self._answer_fault("upload", fault, {"file_id": file_id}, webhook=True)
            return
        with owner._lock:
            upload = owner.uploads.get(file_id)
            if upload is not None:
                upload["data"] = body
        self._record("upload", 200 if upload else 404, None, {"file_id": file_id})
        if upload is None:
            self._send(404, b"no such upload", "text/plain")
        else:
            self._send(200, f"OK - {len(body)}".encode(), "text/plain")

    def _m_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        owner = self.owner
        files = params.get("files") or []
        channel = params.get("channel_id") or params.get("channels")
        conversation, error = self._conversation(channel) if channel else (None, None)
        if error:
            return {"ok": False, "error": error}
        done = []
        with owner._lock:
            for item in files:
                upload = owner.uploads.get(item.get("id"))
                if upload is None or upload["data"] is None:
                    return {"ok": False, "error": "file_not_found"}
                done.append({**upload, "title": item.get("title")})
            ts = owner._next_ts()
            if conversation:
                owner.posts.append(
                    Post(
                        method="files.completeUploadExternal",
                        channel=channel,
                        conversation=conversation,
                        text=params.get("initial_comment"),
                        blocks=None,
                        ts=ts,
                        params=params,
                        files=done,
                    )
                )
        return {
            "ok": True,
            "files": [{"id": f["id"], "title": f["title"], "name": f["filename"]} for f in done],
        }

    def _webhook(self, path: str, body: bytes) -> None:
        owner = self.owner
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = None
        fault = owner._fault("webhook")
        if fault is not None:
            self._answer_fault("webhook", fault, params or {}, webhook=True)
            return
        if path.removeprefix("/services/") != owner.webhook_token:
            self._record("webhook", 404, "no_service", params or {})
            self._send(404, b"no_service", "text/plain")
            return
        if not isinstance(params, dict) or not (params.get("text") or params.get("blocks")):
            self._record("webhook", 400, "invalid_payload", params or {})
            self._send(400, b"invalid_payload", "text/plain")
            return
        if block_problems(params.get("blocks")):
            self._record("webhook", 400, "invalid_blocks", params)
            self._send(400, b"invalid_blocks", "text/plain")
            return
        with owner._lock:
            ts = owner._next_ts()
            owner.posts.append(
                Post(
                    method="webhook",
                    channel=None,
                    conversation="webhook",
                    text=params.get("text"),
                    blocks=params.get("blocks"),
                    ts=ts,
                    params=params,
                )
            )
        self._record("webhook", 200, None, params)
        self._send(200, b"ok", "text/html")
