"""A real SMTP server for tests and benchmarks: aiosmtpd on 127.0.0.1, recording what it receives.

>>> server = SmtpServer().start()
>>> ...send mail to 127.0.0.1:server.port...
>>> [m.message["Subject"] for m in server.messages]
>>> server.stop()  # "down": connections are refused
>>> server.start()  # up again, same port

Fault injection: ``refuse(address)`` answers RCPT for that address with 550;
``defer(address)`` with 451; ``drop_after(n)`` closes the connection after the
next n accepted messages (the client sees the server disconnect).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

# aiosmtpd logs every command at INFO: keep test and bench output readable.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    session: int  # which SMTP connection it arrived on (1, 2, …)
    received_at: float = field(default_factory=time.monotonic)

    @property
    def message(self) -> EmailMessage:
        """The parsed message (``email.policy.default``; line ends as ``\\n``, as Python writes them)."""
        data = self.data.replace(b"\r\n", b"\n")
        return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]

    @property
    def message_id(self) -> str | None:
        return self.message["Message-ID"]


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(
        self, smtp: SMTP, session: Any, envelope: Any, address: str, mail_options: list
    ) -> str:
        if getattr(session, "auxeng_number", None) is None:  # first message of this connection
            with self.server._lock:
                self.server._session_count += 1
                session.auxeng_number = self.server._session_count
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, smtp: SMTP, session: Any, envelope: Any, address: str, rcpt_options: list
    ) -> str:
        lowered = address.lower()
        if lowered in self.server.refused:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if lowered in self.server.deferred:
            return f"451 4.7.1 <{address}>: Recipient address temporarily rejected: try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Any, envelope: Any) -> str:
        server = self.server
        if server.data_delay:
            await asyncio.sleep(server.data_delay)
        with server._lock:
            server._received.append(
                ReceivedMessage(
                    mail_from=envelope.mail_from,
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or envelope.content),
                    session=session.auxeng_number,
                )
            )
            drop = False
            if server._drop_countdown is not None:
                server._drop_countdown -= 1
                drop = server._drop_countdown <= 0
                if drop:
                    server._drop_countdown = None
        if drop:
            # Reply 250 first, then hang up: the client's next command finds the connection gone.
            asyncio.get_running_loop().call_soon(smtp.transport.close)
        return "250 OK: queued"

    async def handle_QUIT(self, smtp: SMTP, session: Any, envelope: Any) -> str:
        with self.server._lock:
            self.server._quits += 1
        return "221 Bye"


class SmtpServer:
    """aiosmtpd ``Controller`` on ``host`` and a free port (kept across stop/start)."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.refused: set[str] = set()
        self.deferred: set[str] = set()
        self._received: list[ReceivedMessage] = []
        self._session_count = 0
        self._quits = 0
        self._drop_countdown: int | None = None
        self.data_delay = 0.0  # seconds before answering each message's data (a slow server)
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    # -- lifecycle
    def start(self) -> SmtpServer:
        if self._controller is not None:
            return self
        deadline = time.monotonic() + 5
        while True:
            controller = Controller(_Handler(self), hostname=self.host, port=self.port, ready_timeout=5)
            try:
                controller.start()
            except OSError:  # the port is still being released after a stop
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            break
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening (clients then get "connection refused"); open sessions are cut."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- fault injection
    def refuse(self, address: str) -> None:
        """Answer RCPT TO for ``address`` with 550 (a permanent error)."""
        self.refused.add(address.lower())

    def defer(self, address: str) -> None:
        """Answer RCPT TO for ``address`` with 451 (a temporary error)."""
        self.deferred.add(address.lower())

    def drop_after(self, messages: int) -> None:
        """Close the connection right after accepting the next ``messages`` messages."""
        with self._lock:
            self._drop_countdown = messages

    # -- what arrived
    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._received)

    @property
    def sessions(self) -> int:
        """How many SMTP connections delivered at least one message."""
        with self._lock:
            return len({m.session for m in self._received})

    @property
    def quits(self) -> int:
        """How many sessions the client ended politely (``QUIT``, answered before the client goes on)."""
        with self._lock:
            return self._quits

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self._session_count = 0
            self._quits = 0

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """The messages once at least ``count`` arrived (raises TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        while len(self._received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self._received)} of {count} messages arrived in {timeout} s")
            time.sleep(0.01)
        return self.messages

    def connection_extra(self, **overrides: Any) -> dict[str, Any]:
        """The ``extra`` of an Airflow SMTP connection to this server (plain SMTP, no TLS)."""
        return {
            "disable_tls": True,
            "disable_ssl": True,
            "from_email": "auxeng@example.com",
            "timeout": 5,
            "retry_limit": 0,
            **overrides,
        }
