"""Time delivering the outbox through the real transports against local servers (SQLite, and PostgreSQL if set).

Targets:

* **email**: ``deliver()`` sends 3,000 invitation-sized emails (multipart text +
  HTML, ~3 KB) queued in the store through ``SmtpTransport`` (the smtp
  provider's hook) to a local aiosmtpd server at >= 0.9x the throughput of a
  raw ``smtplib`` loop sending the same 3,000 messages' bytes over one
  connection, in the same run. The raw loop's bytes are rendered beforehand,
  untimed (``build_email``, flattened as ``smtplib.send_message`` does) and it
  has no database: the ratio is what the outbox costs (the guard pass, claims
  with leases, a committed "sending" mark and one "sent" UPDATE per group of
  ``mark_every`` messages, one SMTP session per batch of 200, adding the From,
  Date and Message-ID lines to the bytes rendered when queueing). Queueing, where
  the bytes are now rendered, is timed on its own line, not in the ratio.
* **slack**: 1,000 DMs through ``SlackApiTransport`` to the Slack stand-in
  answering 5% of calls with 429 (``Retry-After`` 0.05 s): none lost, none
  duplicated (every text posted exactly once), every row ``sent``. The time is
  printed, not gated.

Every count is checked (a wrong one is a FAIL too). PostgreSQL runs when
``AUXENG_BENCH_POSTGRES_URL`` or ``AUXENG_TEST_POSTGRES_URL`` is set: a scratch
database ``auxeng_bench_delivery_<pid>`` is created and dropped at the end.

It prints each backend's ratio, the limit and PASS/FAIL.

Usage: ``.venv/bin/python bench/delivery.py [--emails N] [--slack N] [--mark-every N] [--profile]``.
Exit 1 on FAIL.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import os
import shutil
import smtplib
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.generator import BytesGenerator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "plugins", REPO):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# Airflow reads its configuration when first imported: a throw-away home, no examples.
_HOME = Path(tempfile.mkdtemp(prefix="auxeng-bench-delivery-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"

from _common import postgres_database, print_profile, profiled, verdict  # noqa: E402
from sqlalchemy import Engine, func, select  # noqa: E402

from auxeng.delivery import QueuedMessage, build_email, deliver, resolve_transports  # noqa: E402
from auxeng.messaging.outbox import OutboundMessage, enqueue  # noqa: E402
from auxeng.settings import load_settings  # noqa: E402
from auxeng.store.db import get_engine, migrate, session_scope  # noqa: E402
from auxeng.store.models import OutboxRow  # noqa: E402
from tests.support.slack_standin import SlackStandIn  # noqa: E402
from tests.support.smtp_server import SmtpServer, free_port  # noqa: E402

TARGET_RATIO = 0.9
ROUNDS = 5  # raw and deliver() alternate, 1/ROUNDS of the messages at a time
WARM_UP = 50  # messages each side sends before the timings
RATE_LIMITED = 0.05
RETRY_AFTER = 0.05
POSTGRES_URL_VARS = ("AUXENG_BENCH_POSTGRES_URL", "AUXENG_TEST_POSTGRES_URL")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
EMAIL_FROM = "AuxEng <auxeng@example.com>"


@dataclass
class Row:
    backend: str
    step: str
    messages: int
    seconds: float | None
    result: str

    @property
    def rate(self) -> str:
        if not self.seconds or not self.messages:
            return ""
        return f"{self.messages / self.seconds:8.0f}"


@dataclass
class Bench:
    emails: int
    slack: int
    profile: bool
    mark_every: int | None = None
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    profiles: list[tuple[str, cProfile.Profile]] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.failures.append(message)


def invitation(n: int) -> OutboundMessage:
    """An invitation-sized email: ~1 KB of text, ~2 KB of HTML, List-Unsubscribe headers."""
    link = f"https://airflow.example.com/auxeng/survey/{n:06d}.c2lnbmVkLXRva2VuLWZvci1ib2JieS10YWJsZXM"
    scores = " ".join(f"{s}: {link}?score={s}" for s in range(0, 11, 5))
    text_body = (
        f"Hi Person {n},\n\n"
        f"The engagement ENG-{n % 500:03d} (Team {n % 97} with the platform team) ended on Friday.\n"
        "Would you tell us how it went? It takes two minutes, and the answers shape the next ones.\n\n"
        f"Answer here: {link}\n\nOr pick a score right away:\n{scores}\n\n"
        "The survey closes on Tuesday 15 December 2026.\n\n"
        "Thank you,\nThe AuxEng program\n\n"
        "You get this because you took part in the engagement. Stop these emails: "
        f"https://airflow.example.com/auxeng/optout/{n:06d}\n"
    )
    buttons = " ".join(f'<a href="{link}?score={s}">{s}</a>' for s in range(0, 11, 2))
    html_body = (
        '<!doctype html><html><body style="font-family:sans-serif;font-size:15px;color:#222">'
        f"<p>Hi Person {n},</p><p>The engagement <strong>ENG-{n % 500:03d}</strong> "
        f"(Team {n % 97} with the platform team) ended on Friday.</p>"
        "<p>Would you tell us how it went? It takes two minutes.</p>"
        f'<p><a href="{link}">Answer the survey</a></p><p>How likely are you to recommend us?</p>'
        f"<p>{buttons}</p><p>The survey closes on Tuesday 15 December 2026.</p>"
        '<p style="color:#777;font-size:12px">You get this because you took part in the engagement. '
        f'<a href="https://airflow.example.com/auxeng/optout/{n:06d}">Stop these emails</a>.</p>'
        "</body></html>"
    )
    return OutboundMessage(
        dedupe_key=f"bench:survey_invite:{n}:email",
        channel="email",
        kind="survey_invite",
        recipient=f"person{n}@example.com",
        recipient_email=f"person{n}@example.com",
        not_before=NOW - timedelta(minutes=5),
        subject=f"How did ENG-{n % 500:03d} go? Two minutes of your time",
        body_text=text_body,
        body_html=html_body,
        payload={
            "to_name": f"Person {n}",
            "headers": {
                "List-Unsubscribe": f"<https://airflow.example.com/auxeng/optout/{n:06d}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        },
    )


def slack_dm(n: int) -> OutboundMessage:
    return OutboundMessage(
        dedupe_key=f"bench:survey_invite:{n}:slack",
        channel="slack",
        kind="survey_invite",
        recipient=f"U{n:08d}",
        recipient_email=f"person{n}@example.com",
        not_before=NOW - timedelta(minutes=5),
        body_text=f"[bench {n}] How did the engagement go? <https://airflow.example.com/auxeng/survey/{n}|Answer>",
        payload={"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"*Survey* {n}"}}]},
    )


def as_queued(message: OutboundMessage, row_id: int) -> QueuedMessage:
    return QueuedMessage(
        id=row_id,
        dedupe_key=message.dedupe_key,
        channel=message.channel,
        kind=message.kind,
        recipient=message.recipient,
        body_text=message.body_text,
        subject=message.subject,
        body_html=message.body_html,
        payload=message.payload,
    )


class SmtpServerProcess:
    """The aiosmtpd server of ``tests.support`` in a child process, as a real mail server would be.

    In-process, the server thread and the client share one GIL and the timings
    mostly measure their contention. Commands over a pipe: ``clear``, ``stats``.
    """

    def __init__(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._pipe, child = context.Pipe()
        self.port = free_port()
        self.host = "127.0.0.1"
        self._process = context.Process(target=self._serve, args=(child, self.port), daemon=True)
        self._process.start()
        assert self._pipe.recv() == "ready"

    @staticmethod
    def _serve(pipe, port: int) -> None:
        server = SmtpServer(port=port).start()
        pipe.send("ready")
        while True:
            command = pipe.recv()
            if command == "clear":
                server.clear()
                pipe.send("ok")
            elif command == "stats":
                pipe.send({"received": len(server.messages), "sessions": server.sessions})
            elif command == "ids":  # parsing every message is slow: only once, at the end
                pipe.send({"unique_ids": len({m.message_id for m in server.messages})})
            else:
                server.stop()
                pipe.send("stopped")
                return

    def clear(self) -> None:
        self._pipe.send("clear")
        self._pipe.recv()

    def stats(self, ids: bool = False) -> dict[str, int]:
        self._pipe.send("stats")
        counts = self._pipe.recv()
        if ids:
            self._pipe.send("ids")
            counts.update(self._pipe.recv())
        return counts

    def connection_extra(self) -> dict[str, object]:
        return {"disable_tls": True, "disable_ssl": True, "from_email": "auxeng@example.com", "timeout": 30}

    def stop(self) -> None:
        self._pipe.send("stop")
        self._pipe.recv()
        self._process.join(timeout=10)


def _maybe_profile(bench: Bench, label: str) -> Any:
    return profiled(bench.profile, label, bench.profiles)


def prerendered(messages: list[QueuedMessage]) -> list[tuple[str, bytes]]:
    """(recipient, bytes) of each message, as ``smtplib.send_message`` would put them on the wire."""
    out = []
    for message in messages:
        buffer = io.BytesIO()
        msg = build_email(message, email_from=EMAIL_FROM)
        BytesGenerator(buffer, policy=msg.policy.clone(linesep="\r\n")).flatten(msg, linesep="\r\n")
        out.append((message.recipient, buffer.getvalue()))
    return out


def raw_smtplib(server: SmtpServerProcess, messages: list[tuple[str, bytes]]) -> float:
    """The baseline: the same messages' bytes, rendered beforehand (untimed), sent over one plain
    smtplib connection; no database, no message building."""
    start = time.perf_counter()
    client = smtplib.SMTP(server.host, server.port, timeout=30)
    try:
        for recipient, data in messages:
            client.sendmail("auxeng@example.com", [recipient], data)
    finally:
        client.quit()
    return time.perf_counter() - start


def outbox_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all())


def run_email(bench: Bench, backend: str, engine: Engine, server: SmtpServerProcess) -> None:
    """Raw loop and deliver() in interleaved rounds, so a busy machine slows both alike."""
    n, rounds = bench.emails, max(1, min(ROUNDS, bench.emails))
    # Round r's rows become due at NOW + r minutes: deliver(now=NOW + r min) sends exactly them.
    messages = [
        dataclasses.replace(invitation(i), not_before=NOW + timedelta(minutes=i * rounds // n, seconds=-1))
        for i in range(n)
    ]
    start = time.perf_counter()
    with session_scope(engine) as session:
        queued = enqueue(session, messages, now=NOW - timedelta(hours=1))
    bench.rows.append(
        Row(backend, "queue the emails (enqueue)", n, time.perf_counter() - start, f"{queued} rows")
    )
    bench.check(queued == n, f"{backend}: queued {queued} of {n}")
    size = len(build_email(as_queued(messages[0], 1), email_from=EMAIL_FROM).as_bytes())
    settings = dataclasses.replace(load_settings({}), email_from=EMAIL_FROM)

    # Warm up both paths (connections, imports, the smtp provider) outside the timings.
    warm = [
        dataclasses.replace(invitation(n + i), not_before=NOW - timedelta(minutes=10)) for i in range(WARM_UP)
    ]
    raw_smtplib(server, prerendered([as_queued(m, n + i) for i, m in enumerate(warm)]))
    with session_scope(engine) as session:
        enqueue(session, warm, now=NOW - timedelta(hours=1))
    deliver(engine, now=NOW - timedelta(minutes=5), settings=settings, channels=["email"])
    server.clear()
    raw_s = deliver_s = 0.0
    raw_received = delivered = sent = sessions = 0
    for r in range(rounds):
        chunk = prerendered([as_queued(m, i + 1) for i, m in enumerate(messages) if i * rounds // n == r])

        def raw(chunk: list[tuple[str, bytes]] = chunk) -> float:
            before = server.stats()["received"]
            seconds = raw_smtplib(server, chunk)
            nonlocal raw_received
            raw_received += server.stats()["received"] - before
            return seconds

        def outbox(r: int = r) -> float:
            before = server.stats()
            with _maybe_profile(bench, f"{backend}: deliver round {r + 1}"):
                start = time.perf_counter()
                report = deliver(
                    engine,
                    now=NOW + timedelta(minutes=r),
                    settings=settings,
                    channels=["email"],
                    **({"mark_every": bench.mark_every} if bench.mark_every else {}),
                )
                seconds = time.perf_counter() - start
            after = server.stats()
            nonlocal delivered, sent, sessions
            delivered += after["received"] - before["received"]
            sessions += after["sessions"] - before["sessions"]
            sent += report.sent.get("email", 0)
            return seconds

        if r % 2 == 0:
            raw_s += raw()
            deliver_s += outbox()
        else:
            deliver_s += outbox()
            raw_s += raw()
    stats = server.stats(ids=True)
    counts = outbox_counts(engine)
    bench.check(raw_received == n, f"{backend}: raw loop: {raw_received} of {n} received")
    bench.check(sent == n and delivered == n, f"{backend}: deliver() sent {sent} of {n}, {delivered} arrived")
    bench.check(
        stats["unique_ids"] == n, f"{backend}: {stats['unique_ids']} unique Message-IDs for {n} messages"
    )
    bench.check(counts == {"sent": n + WARM_UP}, f"{backend}: outbox after delivery: {counts}")
    bench.rows.append(
        Row(backend, "raw smtplib, pre-rendered bytes", n, raw_s, f"{raw_received} received, ~{size} B each")
    )
    bench.rows.append(
        Row(
            backend,
            "deliver() via SmtpTransport",
            n,
            deliver_s,
            f"{delivered} received ({stats['unique_ids']} distinct Message-IDs), {sessions} SMTP sessions, "
            f"outbox {counts}",
        )
    )
    ratio = raw_s / deliver_s
    bench.ratios[backend] = ratio
    bench.rows.append(
        Row(
            backend,
            "  throughput deliver() / raw",
            0,
            None,
            f"{ratio:.2f} (target >= {TARGET_RATIO}), {rounds} rounds",
        )
    )
    if not bench.profile:
        bench.check(
            ratio >= TARGET_RATIO, f"{backend}: deliver()/raw throughput {ratio:.2f} < {TARGET_RATIO}"
        )


def run_slack(bench: Bench, backend: str, engine: Engine, standin: SlackStandIn) -> None:
    n = bench.slack
    messages = [slack_dm(i) for i in range(n)]
    with session_scope(engine) as session:
        enqueue(session, messages, now=NOW - timedelta(hours=1))
    standin.posts.clear()
    standin.calls.clear()
    standin.clear_faults()
    standin.fail_randomly(
        RATE_LIMITED, status=429, retry_after=RETRY_AFTER, method="chat.postMessage", seed=42
    )
    start = time.perf_counter()
    report = deliver(engine, now=NOW, settings=load_settings({}), channels=["slack"])
    seconds = time.perf_counter() - start
    standin.clear_faults()

    texts = Counter(p.text for p in standin.posts)
    expected = {m.body_text for m in messages}
    lost = expected - set(texts)
    duplicated = [t for t, c in texts.items() if c > 1]
    limited = sum(1 for c in standin.calls_of("chat.postMessage") if c.status == 429)
    with engine.connect() as conn:
        sent = conn.scalar(
            select(func.count()).where(OutboxRow.channel == "slack", OutboxRow.status == "sent")
        )
    bench.check(not lost, f"{backend}: slack: {len(lost)} message(s) lost")
    bench.check(not duplicated, f"{backend}: slack: {len(duplicated)} message(s) posted twice")
    bench.check(sent == n and report.sent.get("slack") == n, f"{backend}: slack: {sent} of {n} rows sent")
    bench.check(limited > 0, f"{backend}: slack: no 429 was injected")
    bench.rows.append(
        Row(
            backend,
            f"deliver() {n} Slack DMs, {RATE_LIMITED:.0%} 429s",
            n,
            seconds,
            f"{len(texts)} posted once each, {len(lost)} lost, {len(duplicated)} duplicated, {limited} × 429 waited out",
        )
    )


def run_backend(
    bench: Bench, backend: str, engine: Engine, server: SmtpServerProcess, standin: SlackStandIn
) -> None:
    start = time.perf_counter()
    migrate(engine)
    bench.rows.append(Row(backend, "migrate (fresh store)", 0, time.perf_counter() - start, "schema at head"))
    run_email(bench, backend, engine, server)
    if bench.slack:
        run_slack(bench, backend, engine, standin)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=3_000, help="emails to deliver (default 3000)")
    parser.add_argument(
        "--slack", type=int, default=1_000, help="Slack DMs to deliver (default 1000; 0 skips)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the email deliver() runs (the target is not checked)"
    )
    parser.add_argument(
        "--mark-every", type=int, default=None, help="deliver()'s mark_every (default: deliver()'s own)"
    )
    args = parser.parse_args()
    if args.emails < 1:
        parser.error("--emails must be at least 1")
    bench = Bench(args.emails, args.slack, args.profile, args.mark_every)

    workdir = Path(tempfile.mkdtemp(prefix="auxeng-bench-delivery-db-"))
    server: SmtpServerProcess | None = None
    try:
        server = SmtpServerProcess()
        with SlackStandIn() as standin:
            os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = json.dumps(
                {
                    "conn_type": "smtp",
                    "host": server.host,
                    "port": server.port,
                    "extra": server.connection_extra(),
                }
            )
            os.environ["AIRFLOW_CONN_SLACK_API_DEFAULT"] = json.dumps(
                {"conn_type": "slack", "password": "xoxb-test", "extra": {"base_url": standin.api_url}}
            )
            transports, missing = resolve_transports(load_settings({}))
            bench.check(not missing, f"transports missing: {missing}")
            bench.rows.append(
                Row(
                    "-",
                    "transports",
                    0,
                    None,
                    ", ".join(f"{c}: {t.name}" for c, t in sorted(transports.items())),
                )
            )

            sqlite_engine = get_engine(f"sqlite:///{workdir / 'auxeng.db'}")
            try:
                run_backend(bench, "sqlite", sqlite_engine, server, standin)
            finally:
                sqlite_engine.dispose()

            admin_url = next((os.environ[v] for v in POSTGRES_URL_VARS if os.environ.get(v)), None)
            if admin_url:
                with postgres_database(admin_url) as url:
                    pg_engine = get_engine(url)
                    try:
                        run_backend(bench, "postgresql", pg_engine, server, standin)
                    finally:
                        pg_engine.dispose()
            else:
                print(f"({' / '.join(POSTGRES_URL_VARS)} not set: PostgreSQL skipped)")
        return report(bench)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(_HOME, ignore_errors=True)


def report(bench: Bench) -> int:
    backend_w = max(len(r.backend) for r in bench.rows) + 2
    step_w = max(len(r.step) for r in bench.rows) + 2
    header = f"{'backend':<{backend_w}}{'step':<{step_w}}{'msgs':>6}{'seconds':>9}{'msg/s':>9}  result"
    print(header)
    print("-" * max(len(header), 100))
    for row in bench.rows:
        seconds = "" if row.seconds is None else f"{row.seconds:9.2f}"
        messages = str(row.messages) if row.messages else ""
        print(
            f"{row.backend:<{backend_w}}{row.step:<{step_w}}{messages:>6}{seconds:>9}{row.rate:>9}  {row.result}"
        )
    print()
    for backend, ratio in bench.ratios.items():
        print(
            f"{backend}: deliver() / raw smtplib (pre-rendered bytes) throughput: {ratio:.2f}x, "
            f"limit >= {TARGET_RATIO}x: {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}"
        )
    if bench.profile:
        print("(--profile inflates the deliver() times: the ratio target is not checked)")
        for label, profiler in bench.profiles:
            print_profile(label, profiler, limit=25)
    return verdict(bench.failures)


if __name__ == "__main__":
    sys.exit(main())
