"""Scale-out: outbox throughput with one Celery worker, then two, on the native multi-process Airflow.

The stack of ``make e2e`` (:mod:`tests.e2e.run`: CeleryExecutor, the machine's PostgreSQL and
Redis, scratch databases dropped at the end) with workers of ``--concurrency`` task slots
each (default 2). The SMTP server answers each message after ``--delay`` seconds (default
0.1 s: a remote server's latency, which is what more drainers hide). Each phase queues
``--emails`` emails (default 240) straight into the store and triggers
``auxeng_deliver_outbox`` with ``drainers=4``:

1. one worker: at most ``concurrency`` drainers run at once;
2. the second worker started: up to four.

Throughput is measured at the server, first to last message of the phase (what the drainers
do once running); the phase's wall time from the trigger (scheduling included) is shown too.
Prints a table and the ratio two workers / one; the target is a ratio of at least 1.5 (the
second worker's slots are used). Exit 1 when a message is lost or duplicated or the ratio
misses the target.

Usage: ``.venv/bin/python bench/scaleout.py [--emails N] [--delay S] [--concurrency C]``
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "plugins", REPO):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from auxeng.messaging.outbox import OutboundMessage, enqueue  # noqa: E402
from auxeng.store.db import get_engine, session_scope  # noqa: E402
from tests.e2e.run import (  # noqa: E402
    WORKERS,
    Failed,
    bring_up,
    outbox_rows,
    rig,
    say,
    start_worker,
    wait_until,
)
from tests.support.smtp_server import SmtpServer  # noqa: E402

TARGET = 1.5
DRAINERS = 4


def emails(phase: int, n: int) -> list[OutboundMessage]:
    now = datetime.now(UTC)
    return [
        OutboundMessage(
            dedupe_key=f"scaleout:{phase}:{i}:email",
            channel="email",
            kind="survey_invite",
            recipient=f"person{phase}-{i}@example.com",
            recipient_email=f"person{phase}-{i}@example.com",
            not_before=now - timedelta(minutes=1),
            subject=f"Scale-out {phase}: message {i}",
            body_text=f"Message {i} of phase {phase}.\n" + "A line of text to give it some size.\n" * 20,
        )
        for i in range(n)
    ]


def phase(api, smtp: SmtpServer, store: str, number: int, n: int) -> tuple[float, float]:
    """Queue ``n`` emails, drain them with four drainers; (server-side seconds, wall seconds)."""
    with session_scope(get_engine(store)) as session:
        enqueue(session, emails(number, n), now=datetime.now(UTC))
    before = len(smtp.messages)
    started = time.monotonic()
    run_id = api.trigger("auxeng_deliver_outbox", {"drainers": DRAINERS})
    if api.wait_run("auxeng_deliver_outbox", run_id, 600) != "success":
        raise Failed(f"phase {number}: the drain run failed")
    wall = time.monotonic() - started
    arrived = smtp.messages[before:]
    if len(arrived) != n:
        raise Failed(f"phase {number}: {len(arrived)} of {n} messages arrived")
    return arrived[-1].received_at - arrived[0].received_at, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=240)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    try:
        with rig("scaleout") as r:
            api = bring_up(r, workers=WORKERS[:1], concurrency=args.concurrency)
            api.send("PATCH", "/api/v2/dags/auxeng_deliver_outbox", {"is_paused": False})
            wait_until(  # the run unpausing schedules, on an empty outbox
                "the scheduled drain run to finish",
                lambda: (
                    (runs := api.runs("auxeng_deliver_outbox"))
                    and all(x["state"] in ("success", "failed") for x in runs)
                ),
                180,
                every=2,
            )
            r.smtp.data_delay = args.delay
            one = phase(api, r.smtp, r.store_db, 1, args.emails)
            start_worker(r.stack, WORKERS[1])
            time.sleep(10)  # the second worker joins the broker
            two = phase(api, r.smtp, r.store_db, 2, args.emails)
            rows = outbox_rows(r.store_db)
            arrived = Counter(m.message_id for m in r.smtp.messages)
    except Exception as exc:
        say(f"FAILED: {type(exc).__name__}: {exc}")
        return 1

    failures = []
    if max(arrived.values()) > 1:
        failures.append("a message arrived twice")
    if Counter(r["status"] for r in rows) != {"sent": 2 * args.emails}:
        failures.append(f"outbox: {Counter(r['status'] for r in rows)}")
    ratio = (args.emails / two[0]) / (args.emails / one[0])
    print(f"\n{'workers':>8} {'slots':>6} {'emails':>7} {'server s':>9} {'msg/s':>7} {'wall s':>7}")
    for workers, (server, wall) in ((1, one), (2, two)):
        slots = min(DRAINERS, workers * args.concurrency)
        print(
            f"{workers:>8} {slots:>6} {args.emails:>7} {server:>9.1f} {args.emails / server:>7.1f} {wall:>7.1f}"
        )
    print(
        f"\nthroughput 2 workers / 1 worker: {ratio:.2f}x (SMTP delay {args.delay} s, concurrency "
        f"{args.concurrency} per worker, {DRAINERS} drainers), target >= {TARGET}x: "
        f"{'PASS' if ratio >= TARGET else 'FAIL'}"
    )
    if ratio < TARGET:
        failures.append(f"ratio {ratio:.2f} < {TARGET}")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
