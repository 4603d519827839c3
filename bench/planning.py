"""Count the statements (and time) planning survey invitations takes as the store grows.

Goal: a constant number of statements per run, whatever the number of engagements:
the ended engagements are filtered by date in SQL, the new invitations go in with one
INSERT … RETURNING, and their email and Slack messages through Core in uniform chunks
of 500 rows (:data:`auxeng.messaging.outbox.ENQUEUE_CHUNK`).

For 100, 1,000 and 10,000 synthetic engagements (``synthetic_registry_yaml``, synced
and marked ended as of 2025-06-02) it runs ``plan_invitations`` once, in one committed
transaction, counting statements with a ``before_cursor_execute`` listener. Counts are
deterministic, unlike the seconds: a count that differs between sizes is a FAIL.
An executemany is one statement per page SQLAlchemy sends (``insertmanyvalues``:
1,000 rows per page, and the outbox's own 500-row chunks), so past 500 messages or
1,000 invitations a run takes one INSERT more per chunk: the check compares the
counts with those extra pages taken out, and the table shows them.

PostgreSQL runs when ``AUXENG_TEST_POSTGRES_URL`` is set (e.g.
``postgresql://postgres@127.0.0.1:5432/postgres``): a scratch database
``auxeng_bench_<pid>`` is created and dropped at the end.

Usage: ``.venv/bin/python bench/planning.py [--engagements 100,1000,10000]``. Exit 1 on FAIL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "plugins", REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from _common import postgres_database, verdict  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from auxeng.messaging.outbox import ENQUEUE_CHUNK  # noqa: E402
from auxeng.settings import load_settings  # noqa: E402
from auxeng.store.db import get_engine, migrate  # noqa: E402
from tests.support.statements import load_synthetic, plan_surveys  # noqa: E402

POSTGRES_URL_VAR = "AUXENG_TEST_POSTGRES_URL"
INSERT_PAGE = 1000  # SQLAlchemy's insertmanyvalues page size (the invitations' INSERT)
SETTINGS = load_settings({"AUXENG_PUBLIC_URL": "https://airflow.example.com/auxeng"})


@dataclass
class Row:
    backend: str
    engagements: int
    statements: int
    pages: int  # INSERT statements beyond the first of each table (chunks of a large run)
    by_verb: dict[str, int]
    seconds: float
    invited: int
    messages: int
    stale: int

    @property
    def fixed(self) -> int:
        return self.statements - self.pages


def _pages(rows: int, size: int) -> int:
    return max(0, -(-rows // size) - 1)


def run_backend(backend: str, url_for: dict[int, str], sizes: list[int]) -> list[Row]:
    rows = []
    for n in sizes:
        engine = get_engine(url_for[n])
        try:
            migrate(engine)
            load_synthetic(engine, n)
            start = time.perf_counter()
            report, statements = plan_surveys(engine, SETTINGS)
            seconds = time.perf_counter() - start
        finally:
            engine.dispose()
        pages = _pages(report.invited + sum(report.skipped.values()), INSERT_PAGE) + _pages(
            report.messages, ENQUEUE_CHUNK
        )
        rows.append(
            Row(
                backend,
                n,
                len(statements),
                pages,
                statements.by_verb(),
                seconds,
                report.invited,
                report.messages,
                len(report.stale),
            )
        )
        print(f"  {backend} {n}: {len(statements)} statements, {seconds:.2f} s", flush=True)
    return rows


def _postgres_urls(base: str, sizes: list[int]) -> dict[int, str]:
    """One scratch database per size, inside the bench's own (created here, dropped with it)."""
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    urls = {}
    with admin.connect() as conn:
        for n in sizes:
            schema = f"planning_{n}"
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            urls[n] = admin.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
                hide_password=False
            )
    admin.dispose()
    return urls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engagements",
        default="100,1000,10000",
        help="store sizes, comma-separated (default 100,1000,10000)",
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.engagements.split(",")]
    if len(sizes) < 2 or min(sizes) < 1:
        parser.error("--engagements needs at least two sizes, each at least 1")

    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="auxeng-bench-planning-"))
    try:
        rows += run_backend("sqlite", {n: f"sqlite:///{workdir / f'auxeng-{n}.db'}" for n in sizes}, sizes)
        admin_url = os.environ.get(POSTGRES_URL_VAR)
        if admin_url:
            with postgres_database(admin_url) as url:
                rows += run_backend("postgresql", _postgres_urls(url, sizes), sizes)
        else:
            print(f"({POSTGRES_URL_VAR} is not set: PostgreSQL skipped)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report(rows)


def report(rows: list[Row]) -> int:
    print()
    header = (
        f"{'backend':<12}{'engagements':>12}{'statements':>12}{'extra pages':>13}{'seconds':>9}"
        f"{'invited':>9}{'messages':>10}{'stale':>7}  statements by verb"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        verbs = ", ".join(f"{verb} {count}" for verb, count in sorted(r.by_verb.items()))
        print(
            f"{r.backend:<12}{r.engagements:>12}{r.statements:>12}{r.pages:>13}{r.seconds:>9.3f}"
            f"{r.invited:>9}{r.messages:>10}{r.stale:>7}  {verbs}"
        )
    failures = []
    for backend in dict.fromkeys(r.backend for r in rows):
        fixed = {r.engagements: r.fixed for r in rows if r.backend == backend}
        if len(set(fixed.values())) != 1:
            failures.append(f"{backend}: statements (less extra INSERT pages) not constant: {fixed}")
        if any(r.invited == 0 for r in rows if r.backend == backend):
            failures.append(f"{backend}: a run invited nobody (nothing measured)")
    return verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
