"""Several drainer processes on one outbox, started at the same instant, as the mapped
``deliver_outbox`` instances of ``auxeng_deliver_outbox`` run on several Celery workers.

Each drainer is ``tests/delivery/drainer.py`` (``auxeng.delivery.deliver`` through the
Airflow connection ``smtp_default``) in its own process, behind a start line: every
process imports what it needs, says "ready", and waits for "go" on stdin, so none has
drained the outbox before the last one is up. Threads would not prove it: here each
drainer has its own interpreter, database connections and SMTP connections.

PostgreSQL claims with ``SELECT … FOR UPDATE SKIP LOCKED``; SQLite with one atomic
``UPDATE … WHERE id IN (SELECT … LIMIT n)`` under its single writer lock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from auxeng.messaging.outbox import message_id
from tests.delivery.conftest import NOW, email_message, queue, rows

REPO = Path(__file__).resolve().parents[2]
DRAINERS = 4
BATCH = 25  # small: each drainer claims 20 batches or so, so their claims interleave

START_LINE = """
import sys
from tests.delivery import drainer  # auxeng.delivery, the SMTP transport, the store
import airflow.sdk  # noqa: F401  (what resolving the connection imports)
from airflow.providers.smtp.hooks.smtp import SmtpHook  # noqa: F401  (what opening the transport imports)
print("ready", flush=True)
sys.stdin.readline()
sys.argv = ["drainer.py", *sys.argv[1:]]
drainer.main()
"""


def drain_at_once(url: str, count: int, logs: Path, *args: str) -> tuple[list[dict], float]:
    """Start ``count`` drainer processes, release them together; their summaries and the seconds from go."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    command = [sys.executable, "-c", START_LINE, "--url", url, "--now", NOW.isoformat(), *args]
    errs = [(logs / f"drainer-{i}.err").open("w+") for i in range(count)]
    procs = [
        subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True
        )
        for err in errs
    ]
    try:
        for proc, err in zip(procs, errs, strict=True):
            line = proc.stdout.readline()  # "" if it died on the way
            err.seek(0)
            assert line.strip() == "ready", err.read()[-2000:]
        started = time.monotonic()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        summaries = []
        for proc, err in zip(procs, errs, strict=True):
            out, _ = proc.communicate(timeout=120)
            err.seek(0)
            assert proc.returncode == 0, err.read()[-2000:]
            summaries.append(json.loads(out.strip().splitlines()[-1]))
        return summaries, time.monotonic() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for err in errs:
            err.close()


def most_sessions_open_at_once(received) -> int:
    """How many SMTP connections (one per claimed batch) were between their first and last message at once."""
    spans: dict[int, list[float]] = {}
    for m in received:
        span = spans.setdefault(m.session, [m.received_at, m.received_at])
        span[0], span[1] = min(span[0], m.received_at), max(span[1], m.received_at)
    events = sorted([(first, 1) for first, _ in spans.values()] + [(last, -1) for _, last in spans.values()])
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def assert_each_sent_exactly_once(store, smtp_server, messages) -> None:
    expected = {message_id(m.dedupe_key, "example.com"): m.recipient for m in messages}
    received = smtp_server.messages
    assert Counter(m.message_id for m in received) == Counter(list(expected))  # every one, once, nothing else
    assert {m.message_id: m.rcpt_tos for m in received} == {mid: (to,) for mid, to in expected.items()}
    state = rows(store)
    assert len(state) == len(messages)
    assert {(r.status, r.attempts, r.transport, r.claimed_until) for r in state.values()} == {
        ("sent", 1, "smtp", None)
    }


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_four_drainer_processes_send_2000_messages_each_exactly_once_on_postgresql(
    store, store_url, smtp_connection, smtp_server, tmp_path
):
    messages = [email_message(i) for i in range(2000)]
    assert queue(store, *messages) == 2000

    summaries, seconds = drain_at_once(store_url, DRAINERS, tmp_path, "--batch-size", str(BATCH))

    sent = [s["sent"].get("email", 0) for s in summaries]
    overlap = most_sessions_open_at_once(smtp_server.messages)
    print(
        f"\n{DRAINERS} drainers x 2000 messages on PostgreSQL: {seconds:.1f} s from go; sent {sent}; "
        f"up to {overlap} SMTP sessions open at once"
    )
    assert sum(sent) == 2000
    assert all(s["failed"] == {} and s["deferred"] == {} for s in summaries)
    # Each drainer did a real share of the work (a fair share is 500): none waited for another to finish.
    assert min(sent) >= 2000 // DRAINERS // 5, sent
    assert overlap >= 2  # the SMTP server saw batches of different drainers interleave
    assert_each_sent_exactly_once(store, smtp_server, messages)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_four_drainer_processes_on_sqlite_take_turns_and_send_each_message_once(
    store, store_url, smtp_connection, smtp_server, tmp_path
):
    messages = [email_message(i) for i in range(400)]
    queue(store, *messages)

    summaries, seconds = drain_at_once(store_url, DRAINERS, tmp_path, "--batch-size", "10")

    sent = [s["sent"].get("email", 0) for s in summaries]
    print(f"\n{DRAINERS} drainers x 400 messages on SQLite: {seconds:.1f} s from go; sent {sent}")
    assert sum(sent) == 400
    assert sum(1 for n in sent if n) >= 2  # the single writer lock is taken in turns, not held for a run
    assert_each_sent_exactly_once(store, smtp_server, messages)
