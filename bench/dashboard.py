"""Time the AuxEng dashboard's data on a store of 10,000 ended engagements (SQLite, and PostgreSQL if set).

Targets: building one page of the dashboard (``auxeng.web.dashboard.queries.load_dashboard``: the
engagements page with survey, check-in and flag counts, the outbox page and its counts,
the live red flags, the latest NPS week) takes < 250 ms, on the first page and on a
late one, with the same fixed number of SQL statements as on a small store; and each paginated
list (``engagement_lines``, ``outbox_lines``) takes at most 1.5x as long on page 200 as on page 1
(keyset pagination: page 200 is sought with the cursor its link carries, computed here).

The store gets the demo registry, 10,000 more ended engagements, one invitation per
7 of them (half answered), 10,500 outbox rows (failed and pending) and 50 live flags.
The extra engagements are all the Fulfillment team's: its page (``load_team_page``, with 13
weeks of independence snapshots and 1,000 scored engagements in the latest) has the same
limits, with at most :data:`MAX_TEAM_STATEMENTS` statements.

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
MAX_RATIO = 1.5
DEEP_PAGE = 200
MAX_STATEMENTS = (
    15  # the page's survey tally, the NPS's news (2) and the chart's program name: 4 more than 11
)
MAX_TEAM_STATEMENTS = 8
TEAM = "fulfillment"
NOW = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
POSTGRES_URL_VARS = ("AUXENG_BENCH_POSTGRES_URL", "AUXENG_TEST_POSTGRES_URL")


def seed(url: str, engagements: int, outbox: int) -> object:
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
                for n in range(outbox)
            ],
        )
        seed_independence(session, min(engagements, 1000))
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


def seed_independence(session: Session, scored: int) -> None:
    """13 computed independence weeks to 16 Nov 2026 with Fulfillment's snapshot, and ``scored`` of
    its engagements scored in the latest (every component present)."""
    from auxeng.independence.score import Signals, score
    from auxeng.store.models import IndependenceScoreRow, IndependenceSnapshotRow, IndependenceWeekRow

    result = score(Signals(maintainability=3.0, help_needed="never", goals_business="yes"))
    components = [c.as_stored() for c in result.components]
    latest = date(2026, 11, 16)
    weeks = [latest - timedelta(weeks=n) for n in range(13)]
    session.execute(
        insert(IndependenceWeekRow),
        [
            {
                "week": week,
                "starts_at": datetime.combine(week, datetime.min.time(), UTC),
                "ends_at": datetime.combine(week + timedelta(weeks=1), datetime.min.time(), UTC),
                "min_responses": 3,
                "threshold": 70.0,
                "window_weeks": 52,
                "weights": {},
                "computed_at": NOW,
            }
            for week in weeks
        ],
    )
    session.execute(
        insert(IndependenceSnapshotRow),
        [
            {
                "week": week,
                "segment": "team",
                "key": TEAM,
                "engagements": scored,
                "scored": scored,
                "score": result.total,
                "components": {c["name"]: {"points": c["points"], "present": scored} for c in components},
                "checkins": 0,
                "independent": 0,
                "goals_answered": 0,
                "goals_achieved": 0,
                "suppressed": False,
            }
            for week in weeks
        ],
    )
    session.execute(
        insert(IndependenceScoreRow),
        [
            {
                "week": latest,
                "engagement_key": f"BULK-{n:05d}",
                "team_key": TEAM,
                "end_date": date(2025, 6, 1) + timedelta(days=n % 300),
                "total": result.total,
                "components": components,
            }
            for n in range(scored)
        ],
    )


def measure_team(engine: object, rounds: int) -> tuple[float, int, int]:
    """(median seconds, SQL statements, engagements shown) of building Fulfillment's page."""
    from auxeng.web.dashboard.queries import load_team_page

    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    times = []
    for round_ in range(rounds + 1):
        with Session(engine) as session:
            if round_ == rounds:
                event.listen(engine, "before_cursor_execute", count)
            start = time.perf_counter()
            page = load_team_page(session, TEAM, now=NOW)
            elapsed = time.perf_counter() - start
            if round_ == rounds:
                event.remove(engine, "before_cursor_execute", count)
            elif round_:
                times.append(elapsed)
    return statistics.median(times), len(statements), len(page.timeline)


def deep_seeks(engine: object, page: int) -> tuple[object, object]:
    """The :class:`Seek` of page ``page`` of each list, as the link from page ``page - 1`` carries it:
    the sort key of the last row of the previous page (found here with OFFSET, outside the timing)."""
    from sqlalchemy import case, select

    from auxeng.registry.lifecycle import ended_and_live_clause
    from auxeng.store.models import EngagementRow, OutboxRow
    from auxeng.web.dashboard.queries import PAGE_SIZE, Seek

    position = (page - 1) * PAGE_SIZE - 1
    with Session(engine) as session:
        end, key = session.execute(
            select(EngagementRow.end_date, EngagementRow.key)
            .where(ended_and_live_clause())
            .order_by(EngagementRow.end_date.desc(), EngagementRow.key)
            .offset(position)
            .limit(1)
        ).one()
        failed = OutboxRow.status == "failed"
        ident, status, updated_at, not_before = session.execute(
            select(OutboxRow.id, OutboxRow.status, OutboxRow.updated_at, OutboxRow.not_before)
            .where(OutboxRow.status.in_(("failed", "pending")))
            .order_by(
                case((failed, 0), else_=1),
                case((failed, OutboxRow.updated_at), else_=None).desc(),
                OutboxRow.not_before,
                OutboxRow.id,
            )
            .offset(position)
            .limit(1)
        ).one()
    outbox = (
        f"f|{updated_at.isoformat()}|{not_before.isoformat()}|{ident}"
        if status == "failed"
        else f"p|{not_before.isoformat()}|{ident}"
    )
    return Seek(after=f"{end.isoformat()}|{key}", page=page), Seek(after=outbox, page=page)


def measure_list(engine: object, which: str, seek: object, rounds: int) -> tuple[float, int, int]:
    """(median seconds, rows shown, page number) of one page of one list (engagements or outbox)."""
    from auxeng.web.dashboard.queries import engagement_lines, outbox_lines

    lines = engagement_lines if which == "engagements" else outbox_lines
    times = []
    for round_ in range(rounds + 1):
        with Session(engine) as session:
            start = time.perf_counter()
            rows, pages = lines(session, seek)[:2]
            elapsed = time.perf_counter() - start
        if round_:
            times.append(elapsed)
    return statistics.median(times), len(rows), pages.page


def measure(engine: object, seeks: tuple[object, object], rounds: int) -> tuple[float, int, int]:
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
            dashboard = load_dashboard(session, now=NOW, seek=seeks[0], outbox_seek=seeks[1])
            elapsed = time.perf_counter() - start
            if round_ == rounds:
                event.remove(engine, "before_cursor_execute", count)
            elif round_:  # the first round warms caches and is not counted
                times.append(elapsed)
    return statistics.median(times), len(statements), len(dashboard.engagements)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engagements", type=int, default=10_000)
    parser.add_argument("--outbox", type=int, default=10_500)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("AUXENG_TIMEZONE", "UTC")
    admin_url = next((os.environ[v] for v in POSTGRES_URL_VARS if os.environ.get(v)), None)
    failures: list[str] = []
    print(f"dashboard data, {args.engagements:,} extra ended engagements, median of {args.rounds} rounds")
    print(
        f"limits: a dashboard page < {TARGET_SECONDS * 1000:.0f} ms and <= {MAX_STATEMENTS} statements; "
        f"each list on page {DEEP_PAGE} <= {MAX_RATIO}x its page 1"
    )
    print(f"{'database':<12} {'what':<12} {'page':>5} {'ms':>8} {'statements':>11} {'rows':>5}   verdict")
    with tempfile.TemporaryDirectory() as tmp:
        postgres = postgres_database(admin_url) if admin_url else contextlib.nullcontext()
        with postgres as pg_url:
            urls = [("sqlite", f"sqlite:///{tmp}/bench.db")] + ([("postgresql", pg_url)] if pg_url else [])
            for name, url in urls:
                from auxeng.web.dashboard.queries import Seek

                engine = seed(url, args.engagements, args.outbox)
                deep = deep_seeks(engine, DEEP_PAGE)
                for label, seeks in (("dashboard", (Seek(), Seek())), ("dashboard", deep)):
                    page = seeks[0].page
                    seconds, statements, rows = measure(engine, seeks, args.rounds)
                    ok = seconds <= TARGET_SECONDS and statements <= MAX_STATEMENTS
                    print(
                        f"{name:<12} {label:<12} {page:>5} {seconds * 1000:>8.1f} {statements:>11} {rows:>5}"
                        f"   {'PASS' if ok else 'FAIL'} (limits {TARGET_SECONDS * 1000:.0f} ms, {MAX_STATEMENTS} statements)"
                    )
                    if seconds > TARGET_SECONDS:
                        failures.append(
                            f"{name} page {page}: {seconds * 1000:.0f} ms > {TARGET_SECONDS * 1000:.0f} ms"
                        )
                    if statements > MAX_STATEMENTS:
                        failures.append(f"{name} page {page}: {statements} statements > {MAX_STATEMENTS}")
                seconds, statements, rows = measure_team(engine, args.rounds)
                ok = seconds <= TARGET_SECONDS and statements <= MAX_TEAM_STATEMENTS
                print(
                    f"{name:<12} {'team page':<12} {'':>5} {seconds * 1000:>8.1f} {statements:>11} {rows:>5}"
                    f"   {'PASS' if ok else 'FAIL'} (limits {TARGET_SECONDS * 1000:.0f} ms, "
                    f"{MAX_TEAM_STATEMENTS} statements)"
                )
                if not ok:
                    failures.append(f"{name} team page: {seconds * 1000:.0f} ms, {statements} statements")
                for index, which in enumerate(("engagements", "outbox")):
                    first, _, _ = measure_list(engine, which, Seek(), args.rounds)
                    late, rows, shown = measure_list(engine, which, deep[index], args.rounds)
                    ratio = late / first
                    print(f"{name:<12} {which:<12} {1:>5} {first * 1000:>8.1f}")
                    print(
                        f"{name:<12} {which:<12} {shown:>5} {late * 1000:>8.1f} {'':>11} {rows:>5}"
                        f"   {'PASS' if ratio <= MAX_RATIO and shown == DEEP_PAGE and rows else 'FAIL'}"
                        f" page {shown}/page 1 = {ratio:.2f}x (limit {MAX_RATIO}x)"
                    )
                    if shown != DEEP_PAGE or rows == 0:
                        failures.append(
                            f"{name} {which}: page {DEEP_PAGE} not reached ({shown}, {rows} rows)"
                        )
                    if ratio > MAX_RATIO:
                        failures.append(
                            f"{name} {which}: page {DEEP_PAGE} {ratio:.2f}x page 1 > {MAX_RATIO}x"
                        )
                engine.dispose()
    if not admin_url:
        print("(PostgreSQL skipped: set AUXENG_TEST_POSTGRES_URL)")
    return verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
