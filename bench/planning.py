"""Count the statements (and time) each planning step takes as the store grows.

Goal: a constant number of statements per run, whatever the number of engagements. Every
planning step of ``auxeng_send_surveys`` and ``auxeng_checkins`` reads what it needs in a few
queries (dates filtered in SQL) and writes in batches: invitations with one INSERT … RETURNING,
outbox messages through Core in chunks of 500 (:data:`auxeng.messaging.outbox.ENQUEUE_CHUNK`),
check-ins, follow-ups and their events through Core, updates as ORM executemany (one statement
per set of changed columns), withdrawals per 200 prefixes.

For each store size (default 100, 1,000 and 10,000 synthetic engagements,
``synthetic_registry_yaml``, synced and marked ended as of 2025-06-02, all followed up monthly)
it runs :func:`tests.support.statements.planning_story`: survey invitations and reminders,
check-ins scheduled (new, then calendar invitations), surveyed, reminded and closed, and monthly
follow-ups (new, then the next month), each step in one committed transaction, counting its
statements with a ``before_cursor_execute`` listener (the helper the statement-count tests use).
Counts are deterministic, unlike the seconds (shown only).

**Limit**: for every step, statements at each size <= statements at the smallest size + 10.
The allowance is for chunking alone: an executemany goes out one page at a time (SQLAlchemy's
1,000-row ``insertmanyvalues`` pages, the outbox's 500-row chunks), so a run writing thousands
of rows takes a few statements more (at 10,000 engagements: at most 7, the follow-ups' 3,088 messages). A step whose
work is zero at the largest size measured nothing: a FAIL too.

PostgreSQL runs when ``AUXENG_TEST_POSTGRES_URL`` is set (e.g.
``postgresql://postgres@127.0.0.1:5432/postgres``): a scratch database ``auxeng_bench_<pid>``
(one schema per size) is created and dropped at the end.

Usage: ``.venv/bin/python bench/planning.py [--engagements 100,1000,10000]``. Exit 1 on FAIL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "plugins", REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from _common import postgres_database, schema_urls, verdict  # noqa: E402

from auxeng.settings import load_settings  # noqa: E402
from auxeng.store.db import get_engine, migrate  # noqa: E402
from tests.support.statements import load_synthetic, planning_story  # noqa: E402

POSTGRES_URL_VAR = "AUXENG_TEST_POSTGRES_URL"
ALLOWANCE = 10  # statements a step may take beyond its count at the smallest size (chunking)
SETTINGS = load_settings({"AUXENG_PUBLIC_URL": "https://airflow.example.com/auxeng"})


def work(report: Any) -> tuple[str, int]:
    """What a step's report says it did, as (what, how many): the figure that grows with the store."""
    for attribute, label in (
        ("invited", "invited"),
        ("reminders", "reminded"),
        ("people_invited", "invited"),
        ("follow_ups", "reminded"),
    ):
        if getattr(report, attribute, 0):
            return label, getattr(report, attribute)
    if getattr(report, "created", 0):
        return "created", report.created
    if getattr(report, "moved", 0) or getattr(report, "cancelled", 0):
        return "moved/off", report.moved + report.cancelled
    if getattr(report, "invitations", 0):
        return "calendars", report.invitations
    closed = sum(getattr(report, "closed", {}).values())
    return "closed", closed


@dataclass
class Row:
    backend: str
    engagements: int
    step: str
    statements: int
    by_verb: dict[str, int]
    seconds: float
    what: str
    done: int
    messages: int


def run_backend(backend: str, url_for: dict[int, str], sizes: list[int]) -> list[Row]:
    rows = []
    for n in sizes:
        engine = get_engine(url_for[n])
        try:
            migrate(engine)
            load_synthetic(engine, n)
            story = planning_story(engine, SETTINGS)
        finally:
            engine.dispose()
        for step, (report, statements) in story.items():
            what, done = work(report)
            rows.append(
                Row(
                    backend,
                    n,
                    step,
                    len(statements),
                    statements.by_verb(),
                    statements.seconds,
                    what,
                    done,
                    report.messages,
                )
            )
        total = sum(len(statements) for _, statements in story.values())
        print(f"  {backend} {n}: {total} statements in {len(story)} steps", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engagements",
        default="100,1000,10000",
        help="store sizes, comma-separated (default 100,1000,10000)",
    )
    args = parser.parse_args()
    sizes = sorted({int(n) for n in args.engagements.split(",")})
    if len(sizes) < 2 or min(sizes) < 1:
        parser.error("--engagements needs at least two sizes, each at least 1")

    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="auxeng-bench-planning-"))
    try:
        rows += run_backend("sqlite", {n: f"sqlite:///{workdir / f'auxeng-{n}.db'}" for n in sizes}, sizes)
        admin_url = os.environ.get(POSTGRES_URL_VAR)
        if admin_url:
            with postgres_database(admin_url) as url:
                rows += run_backend("postgresql", schema_urls(url, "planning", sizes), sizes)
        else:
            print(f"({POSTGRES_URL_VAR} is not set: PostgreSQL skipped)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report(rows, sizes)


def report(rows: list[Row], sizes: list[int]) -> int:
    print()
    print(
        f"Limit per step: statements at every size <= statements at {sizes[0]:,} engagements + {ALLOWANCE}"
        " (chunking allowance), and some work done at the largest size."
    )
    failures = []
    for backend in dict.fromkeys(r.backend for r in rows):
        print()
        sized = "".join(f"{f'stmts@{n:,}':>14}" for n in sizes)
        worked = "".join(f"{f'work@{n:,}':>15}" for n in sizes)
        header = (
            f"{backend:<29}{sized}{'limit':>7}{worked}{'s@max':>8}  verdict  statements by verb (largest)"
        )
        print(header)
        print("-" * len(header))
        for step in dict.fromkeys(r.step for r in rows if r.backend == backend):
            by_size = {r.engagements: r for r in rows if r.backend == backend and r.step == step}
            largest = by_size[sizes[-1]]
            limit = by_size[sizes[0]].statements + ALLOWANCE
            ok = all(r.statements <= limit for r in by_size.values()) and largest.done > 0
            counts = "".join(f"{by_size[n].statements:>14}" for n in sizes)
            done = "".join(f"{f'{by_size[n].done} {by_size[n].what}':>15}" for n in sizes)
            verbs = ", ".join(f"{verb} {count}" for verb, count in sorted(largest.by_verb.items()))
            print(
                f"{step:<29}{counts}{limit:>7}{done}{largest.seconds:>8.2f}  {'PASS' if ok else 'FAIL':<7}  {verbs}"
            )
            if not ok:
                failures.append(
                    f"{backend} {step}: statements {[by_size[n].statements for n in sizes]} (limit {limit}), "
                    f"work at {sizes[-1]:,}: {largest.done}"
                )
    return verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
