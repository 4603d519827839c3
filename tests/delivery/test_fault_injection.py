"""Crashes and concurrency: a drainer SIGKILLed mid-batch, and several drainers on one outbox.

The one window where a message can go out twice: the SMTP server accepted it,
then the drainer died before committing it as sent. Its lease expires after
``outbox_lease_seconds`` and the next run sends it again, under the same
Message-ID. Every other message goes out exactly once.
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


def test_a_drainer_killed_after_a_send_and_before_its_commit(store, store_url, smtp_connection, smtp_server):
    n, k = 8, 3
    queue(store, *(email_message(i) for i in range(n)))

    drainer = run_drainer(store_url, "--kill-after", str(k), "--lease", "600")
    _, stderr = drainer.communicate(timeout=120)

    assert drainer.returncode == -signal.SIGKILL, stderr[-2000:]
    assert len(smtp_server.messages) == k
    state = rows(store)
    assert sum(r.status == "sent" for r in state.values()) == k - 1
    leased = [r for r in state.values() if r.status == "pending"]
    assert len(leased) == n - k + 1 and all(r.claimed_until is not None for r in leased)  # the batch it held

    # While the leases live, another run leaves those rows alone.
    early = deliver(store, now=NOW, settings=make_settings(), channels=["email"])
    assert sum(early.sent.values()) == 0 and early.leased == {"email": n - k + 1}
    early.raise_for_problems()

    let_leases_expire(store)
    late = deliver(store, now=NOW, settings=make_settings(), channels=["email"])
    assert late.sent == {"email": n - k + 1}

    received = smtp_server.messages
    assert len(received) == n + 1
    per_id = Counter(m.message_id for m in received)
    assert len(per_id) == n  # every message delivered
    ((duplicated, copies),) = [(mid, c) for mid, c in per_id.items() if c > 1]
    assert copies == 2  # at most one duplicate: the message in flight when the drainer died
    first, second = [m.message for m in received if m.message_id == duplicated]
    assert first["To"] == second["To"] and first.get_body(("plain",)).get_content() == (
        second.get_body(("plain",)).get_content()
    )
    assert all(r.status == "sent" for r in rows(store).values())


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
