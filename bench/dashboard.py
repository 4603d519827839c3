"""Time the AuxEng dashboard's data on a store of 10,000 ended engagements (SQLite, and PostgreSQL if set).

Target: building one page of the dashboard (``auxeng.web.dashboard.queries.load_dashboard``: the
engagements page with survey, check-in and flag counts, the outbox page and its counts,
the live red flags, the latest NPS week) takes < 250 ms, on the first page and on a
late one, with the same fixed number of SQL statements as on a small store.

The store gets the demo registry, 10,000 more ended engagements, one invitation per
7 of them (half answered), 2,000 outbox rows (failed and pending) and 50 live flags.

PostgreSQL: ``AUXENG_BENCH_POSTGRES_URL`` or ``AUXENG_TEST_POSTGRES_URL`` when set (a
scratch database is created and dropped).

Usage: ``.venv/bin/python bench/dashboard.py [--engagements N] [--rounds 7]``. Exit 1 on FAIL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(Path(__file__).resolve().parent)]

from _common import postgres_database, verdict  # noqa: E402
from sqlalchemy import event, insert  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

TARGET_SECONDS = 0.25
MAX_STATEMENTS = 12
NOW = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
POSTGRES_URL_VARS = ("AUXENG_BENCH_POSTGRES_URL", "AUXENG_TEST_POSTGRES_URL")


def seed(url: str, engagements: int) -> object:
    from auxeng.redflags.rules import Flag
    from auxeng.redflags.store import reconcile
    from auxeng.registry.sync import sync_registry_file
    from auxeng.store.db import open_store
    from auxeng.store.models import EngagementRow, OutboxRow, SurveyInvitationRow

    engine = open_store(url)
    sync_registry_file(
        engine, ROOT / "include" / "registry" / "engagements.yaml", now=NOW - timedelta(days=30)
    )
    with Session(engine) as session:
        session.execute(
            insert(EngagementRow),
            [
                {
                    "key": f"BULK-{n:05d}",
                    "title": f"Bulk engagement {n}",
                    "host_team_key": "fulfillment",
                    "start_date": date(2025, 1, 1),
                    "end_date": date(2025, 6, 1) + timedelta(days=n % 300),
                    "status": "active",
                    "fingerprint": "x",
                    "created_at": NOW,
                    "updated_at": NOW,
                    "ended_at": NOW,
                }
                for n in range(engagements)
            ],
        )
        session.execute(
            insert(SurveyInvitationRow),
            [
                {
                    "survey": "post_engagement",
                    "engagement_key": f"BULK-{n:05d}",
                    "email": f"p{n}@example.com",
                    "side": "host",
                    "role": "engineer",
                    "status": "invited",
                    "invited_on": date(2025, 6, 1),
                    "closes_at": NOW,
                    "answered_at": NOW if n % 2 else None,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for n in range(0, engagements, 7)
            ],
        )
        session.execute(
            insert(OutboxRow),
            [
                {
                    "dedupe_key": f"bench:{n}",
                    "channel": "email",
                    "kind": "survey_invite",
                    "recipient": f"p{n}@example.com",
                    "body_text": "hello",
                    "payload": {},
                    "status": "failed" if n % 4 == 0 else "pending",
                    "reason": "550 user unknown" if n % 4 == 0 else None,
                    "attempts": 1,
                    "not_before": NOW,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for n in range(2000)
            ],
        )
        reconcile(
            session,
            [
                Flag(
                    rule="detractor_cluster",
                    subject_kind="engagement",
                    subject_key=f"BULK-{n:05d}",
                    severity="warning",
                    summary=f"2 detractors on BULK-{n:05d}",
                    evidence={"detractors": 2, "answers": 3, "latest_on": "2026-11-20", "quotes": []},
                    engagement_key=f"BULK-{n:05d}",
                )
                for n in range(50)
            ],
            as_of=NOW.date(),
            now=NOW,
        )
        session.commit()
    return engine


def measure(engine: object, page: int, rounds: int) -> tuple[float, int, int]:
    """(median seconds, SQL statements, engagement rows shown) of building one dashboard page."""
    from auxeng.web.dashboard.queries import load_dashboard

    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    times = []
    for round_ in range(rounds + 1):
        with Session(engine) as session:
            if round_ == rounds:
                event.listen(engine, "before_cursor_execute", count)
            start = time.perf_counter()
            dashboard = load_dashboard(session, now=NOW, page=page)
            elapsed = time.perf_counter() - start
            if round_ == rounds:
                event.remove(engine, "before_cursor_execute", count)
            elif round_:  # the first round warms caches and is not counted
                times.append(elapsed)
    return statistics.median(times), len(statements), len(dashboard.engagements)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engagements", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("AUXENG_TIMEZONE", "UTC")
    admin_url = next((os.environ[v] for v in POSTGRES_URL_VARS if os.environ.get(v)), None)
    failures: list[str] = []
    print(f"dashboard data, {args.engagements:,} extra ended engagements, median of {args.rounds} rounds")
    print(f"{'database':<12} {'page':>5} {'ms':>8} {'statements':>11} {'rows':>5}")
    with tempfile.TemporaryDirectory() as tmp:
        postgres = postgres_database(admin_url) if admin_url else contextlib.nullcontext()
        with postgres as pg_url:
            urls = [("sqlite", f"sqlite:///{tmp}/bench.db")] + ([("postgresql", pg_url)] if pg_url else [])
            for name, url in urls:
                engine = seed(url, args.engagements)
                last = args.engagements // 50
                for page in (1, last // 2, last):
                    seconds, statements, rows = measure(engine, page, args.rounds)
                    print(f"{name:<12} {page:>5} {seconds * 1000:>8.1f} {statements:>11} {rows:>5}")
                    if seconds > TARGET_SECONDS:
                        failures.append(
                            f"{name} page {page}: {seconds * 1000:.0f} ms > {TARGET_SECONDS * 1000:.0f} ms"
                        )
                    if statements > MAX_STATEMENTS:
                        failures.append(f"{name} page {page}: {statements} statements > {MAX_STATEMENTS}")
                engine.dispose()
    if not admin_url:
        print("(PostgreSQL skipped: set AUXENG_TEST_POSTGRES_URL)")
    return verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
