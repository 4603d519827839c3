"""Crashes and concurrency: a drainer SIGKILLed mid-batch, and several drainers on one outbox.

A drainer marks each group of up to ``mark_every`` messages ``sending`` (committed) before
handing them to the SMTP server, and records their outcomes in one transaction after the
group. Killed in between, it leaves that group ``sending``: once its lease expires the next
run marks those rows ``in_doubt`` (some went out, some not: nobody knows which) and never
sends them again. No message goes out twice; none is lost silently.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from auxeng.delivery import deliver
from auxeng.delivery.drain import utcnow
from auxeng.messaging.outbox import IN_DOUBT_REASON, message_id, retry
from auxeng.store.db import session_scope
from auxeng.store.models import OutboxRow
from tests.delivery.conftest import NOW, email_message, make_settings, queue, rows

REPO = Path(__file__).resolve().parents[2]
DRAINER = Path(__file__).with_name("drainer.py")


def run_drainer(url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    return subprocess.Popen(
        [sys.executable, str(DRAINER), "--url", url, "--now", NOW.isoformat(), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def let_leases_expire(store) -> None:
    """What ``outbox_lease_seconds`` of waiting does to the dead drainer's leases (without the wait)."""
    with store.begin() as conn:
        conn.execute(
            update(OutboxRow)
            .where(OutboxRow.claimed_until.is_not(None))
            .values(claimed_until=utcnow() - timedelta(seconds=1))
        )


def test_a_drainer_killed_mid_group_sends_nothing_twice_and_leaves_its_group_in_doubt(
    store, store_url, smtp_connection, smtp_server
):
    n, group, k = 12, 5, 7  # killed after the 7th message reached the server: the 2nd of group 2
    messages = [email_message(i) for i in range(n)]
    queue(store, *messages)

    drainer = run_drainer(store_url, "--kill-after", str(k), "--lease", "600", "--mark-every", str(group))
    _, stderr = drainer.communicate(timeout=120)

    assert drainer.returncode == -signal.SIGKILL, stderr[-2000:]
    assert len(smtp_server.messages) == k
    by_id = {message_id(m.dedupe_key, "example.com"): m.dedupe_key for m in messages}
    state = rows(store)
    statuses = Counter(r.status for r in state.values())
    # Group 1 settled; group 2 handed over (2 of its 5 reached the server), not settled; the rest leased.
    assert statuses == {"sent": group, "sending": group, "pending": n - 2 * group}
    assert all(r.claimed_until is not None for r in state.values() if r.status != "sent")

    # While the leases live, another run leaves every one of those rows alone.
    early = deliver(store, now=NOW, settings=make_settings(), channels=["email"])
    assert sum(early.sent.values()) == 0 and early.leased == {"email": n - 2 * group}
    assert early.in_doubt == {}

    let_leases_expire(store)
    late = deliver(store, now=NOW, settings=make_settings(), channels=["email"])
    assert late.sent == {"email": n - 2 * group} and late.in_doubt == {"email": group}
    assert any("in doubt" in p for p in late.problems)

    received = Counter(by_id[m.message_id] for m in smtp_server.messages)
    assert set(received.values()) == {1}  # no message reached the server twice
    state = rows(store)
    sent = {key for key, r in state.items() if r.status == "sent"}
    in_doubt = {key for key, r in state.items() if r.status == "in_doubt"}
    assert sent | in_doubt == set(state) and len(in_doubt) == group  # none left pending, none lost silently
    assert sent <= set(received)  # everything marked sent arrived
    assert set(received) - sent == {messages[5].dedupe_key, messages[6].dedupe_key}  # arrived, in doubt
    assert all(state[key].reason == IN_DOUBT_REASON and state[key].attempts == 0 for key in in_doubt)

    # Nothing sends an in-doubt message again, until a person retries it.
    again = deliver(store, now=NOW, settings=make_settings(), channels=["email"])
    assert again.sent == {} and again.in_doubt == {} and len(smtp_server.messages) == n - group + 2
    with session_scope(store) as session:
        assert retry(session, state[messages[9].dedupe_key].id, now=NOW)
    retried = deliver(store, now=NOW, settings=make_settings(), channels=["email"])
    assert retried.sent == {"email": 1}
    assert (
        Counter(m.message_id for m in smtp_server.messages)[message_id(messages[9].dedupe_key, "example.com")]
        == 1
    )


def test_four_threads_draining_one_outbox_send_each_message_once(store, smtp_connection, smtp_server):
    n = 80
    queue(store, *(email_message(i) for i in range(n)))
    barrier = threading.Barrier(4)
    reports, errors = [], []

    def drain() -> None:
        try:
            barrier.wait()
            reports.append(
                deliver(store, now=NOW, settings=make_settings(), channels=["email"], batch_size=5)
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sum(r.sent["email"] for r in reports) == n
    ids = [m.message_id for m in smtp_server.messages]
    assert len(ids) == n and len(set(ids)) == n
    assert all(r.status == "sent" and r.attempts == 1 for r in rows(store).values())
    assert sum(1 for r in reports if r.sent["email"]) >= 2  # the work was shared


def test_three_processes_draining_one_outbox_send_each_message_once(
    store, store_url, smtp_connection, smtp_server
):
    n = 60
    queue(store, *(email_message(i) for i in range(n)))

    drainers = [run_drainer(store_url, "--batch-size", "4") for _ in range(3)]
    summaries = []
    for drainer in drainers:
        out, err = drainer.communicate(timeout=120)
        assert drainer.returncode == 0, err[-2000:]
        summaries.append(json.loads(out.strip().splitlines()[-1]))

    assert sum(s["sent"].get("email", 0) for s in summaries) == n
    ids = [m.message_id for m in smtp_server.messages]
    assert len(ids) == n and len(set(ids)) == n
    assert all(r.status == "sent" for r in rows(store).values())
