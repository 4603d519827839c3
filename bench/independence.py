"""Time the weekly independence snapshot at 10,000 engagements and 1,000,000 help requests against one
aggregating query (SQLite and PostgreSQL), and count its statements at two sizes.

Target, on each database: the weekly independence step, ``compute_week`` + ``save_week`` +
commit (what ``compute_weekly_independence`` does), takes **≤ 3×** the baseline: ONE aggregating
SQL query computing the same per-engagement help counts (during and after the engagement) and
check-in aggregates (mean comfort, worst help answer, NPS counts) for the same counted
engagements. The baseline can be one query because the benchmark's program time zone is UTC
(its day boundaries are dates cast to timestamps in SQL); the snapshot computes local midnights
in Python for any time zone, scores every engagement with its components, rolls them up to
program, org and team with Wilson intervals and writes every row. The baseline's help counts
must give the snapshot's help rates (a mismatch is a FAIL).

Statements: ``compute_week`` is counted (a ``before_cursor_execute`` listener, as in
``bench/planning.py``) on a store of ``--engagements`` and on one a tenth its size (and a tenth
of the help requests): the counts must be **equal** (set-based: never one query per engagement
or team). ``save_week`` is counted too (shown; it must not grow either).

Data, deterministic (``random.Random(2026)``): ``--engagements`` / 5 host teams in 10 orgs (every
10th team without a help channel, every 25th without an org), 5 engagements per team back to
back with random gaps, ending over the 80 weeks before the benchmarked week (Monday
2026-11-23), every 10th anonymous and every 50th cancelled; per ended engagement 3 end-survey
answers (NPS, goals) and, for those ended over 3 months before, 2 check-in answers (comfort,
help needed, NPS); ``--help-requests`` help requests, each for a random team at a random moment
of the 2 years before the week's end, every 20th from a CSV drop. Loaded with
:func:`auxeng.store.db.insert_rows` (SQLite ``executemany``; PostgreSQL ``unnest`` of array
literals) in 100,000-row chunks, then ``ANALYZE``. Loading is printed, not gated.

Measurement, per database: one warm-up run, then ``--rounds`` rounds of the snapshot and the
baseline, alternating which goes first; the medians are compared.

PostgreSQL runs when ``AUXENG_TEST_POSTGRES_URL`` is set or ``--postgres URL`` is given: a scratch
database ``auxeng_bench_<pid>`` (one schema per size) is created and dropped at the end.

Usage: ``.venv/bin/python bench/independence.py [--engagements 10000] [--help-requests 1000000]
[--rounds 5] [--postgres URL]``. Exit 1 on FAIL.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "plugins", REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from _common import postgres_database, schema_urls, verdict  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from auxeng.independence.signals import AFTER_WEEKS  # noqa: E402
from auxeng.independence.snapshots import compute_week, save_week  # noqa: E402
from auxeng.settings import load_settings  # noqa: E402
from auxeng.store.db import get_engine, insert_rows, migrate  # noqa: E402
from auxeng.store.models import EngagementRow, HelpRequestRow, SurveyResponseRow, TeamRow  # noqa: E402
from tests.support.statements import counting  # noqa: E402

TARGET_RATIO = 3.0
POSTGRES_URL_VAR = "AUXENG_TEST_POSTGRES_URL"
SEED = 2026
WEEK = date(2026, 11, 23)
UNTIL = WEEK + timedelta(weeks=1)
MOMENT = datetime(2026, 11, 30, tzinfo=UTC)  # the week's end (UTC program time zone)
NOW = datetime(2026, 11, 30, 7, tzinfo=UTC)
SETTINGS = load_settings({"AUXENG_TIMEZONE": "UTC"})
CHUNK = 100_000
ENGAGEMENTS_PER_TEAM = 5
HELP_HISTORY = timedelta(weeks=104)

# The baseline: the counted engagements, their help asks in their periods and their check-in
# aggregates, in one statement. {start}, {after_from}, {after_until} are the dialect's timestamps.
BASELINE = """
WITH counted AS (
    SELECT key, host_team_key, start_date, end_date FROM auxeng_engagements
    WHERE ended_at IS NOT NULL AND removed_at IS NULL AND status <> 'cancelled'
      AND end_date < :until AND end_date >= :window_from
), asks AS (
    SELECT c.key,
           SUM(CASE WHEN h.requested_at < {after_from} THEN 1 ELSE 0 END) AS during,
           SUM(CASE WHEN h.requested_at >= {after_from} THEN 1 ELSE 0 END) AS after
    FROM counted c JOIN auxeng_help_requests h
      ON h.team_key = c.host_team_key AND h.requested_at >= {start} AND h.requested_at < {after_until}
    GROUP BY c.key
), checkins AS (
    SELECT r.engagement_key AS key, AVG(r.maintainability) AS comfort,
           MAX(CASE {help} WHEN 'never' THEN 0 WHEN 'once_or_twice' THEN 1 WHEN 'regularly' THEN 2 END) AS help,
           SUM(CASE WHEN r.nps >= 9 THEN 1 ELSE 0 END) AS promoters,
           SUM(CASE WHEN r.nps <= 6 THEN 1 ELSE 0 END) AS detractors,
           COUNT(r.nps) AS answers
    FROM auxeng_survey_responses r JOIN counted c ON c.key = r.engagement_key
    WHERE r.survey = 'checkin' AND r.submitted_at < :moment
    GROUP BY r.engagement_key
)
SELECT c.key, c.start_date, c.end_date, asks.during, asks.after, checkins.comfort, checkins.help,
       checkins.promoters, checkins.detractors, checkins.answers
FROM counted c LEFT JOIN asks ON asks.key = c.key LEFT JOIN checkins ON checkins.key = c.key
"""
DIALECT = {
    "sqlite": {
        "start": "c.start_date",
        "after_from": "date(c.end_date, '+1 day')",
        "after_until": f"MIN(:moment_text, date(c.end_date, '+{1 + 7 * AFTER_WEEKS} days'))",
        "help": "json_extract(r.answers, '$.help_needed')",
    },
    "postgresql": {
        "start": "(c.start_date::timestamp AT TIME ZONE 'UTC')",
        "after_from": "((c.end_date + 1)::timestamp AT TIME ZONE 'UTC')",
        "after_until": f"LEAST(:moment, (c.end_date + {1 + 7 * AFTER_WEEKS})::timestamp AT TIME ZONE 'UTC')",
        "help": "(r.answers ->> 'help_needed')",
    },
}


@dataclass
class Result:
    backend: str
    engagements: int
    counted: int
    snapshot_s: float
    baseline_s: float
    statements_small: int
    statements_large: int
    save_small: int
    save_large: int
    checked: int
    mismatches: list[str]

    @property
    def ratio(self) -> float:
        return self.snapshot_s / self.baseline_s


# --- data ------------------------------------------------------------------------------------


def load(engine: Engine, engagements: int, help_requests: int) -> None:
    """The synthetic store (see the module docs), in 100,000-row chunks."""
    rng = random.Random(SEED)
    teams = max(1, engagements // ENGAGEMENTS_PER_TEAM)
    team_rows, engagement_rows, answer_rows = [], [], []
    for t in range(teams):
        key = f"team-{t:05d}"
        team_rows.append(
            {
                "key": key,
                "name": f"Team {t}",
                "org": None if t % 25 == 0 else f"Org {t % 10}",
                "help_channel": None if t % 10 == 0 else f"C{t:08d}",
                "updated_at": NOW,
            }
        )
        end = UNTIL - timedelta(weeks=80) + timedelta(days=rng.randrange(0, 60))
        for n in range(ENGAGEMENTS_PER_TEAM):
            start = end + timedelta(days=rng.randrange(7, 90))
            end = start + timedelta(days=rng.randrange(28, 100))
            number = t * ENGAGEMENTS_PER_TEAM + n
            ekey = f"ENG-{number:06d}"
            ended = end < UNTIL
            engagement_rows.append(
                {
                    "key": ekey,
                    "title": f"Engagement {number}",
                    "host_team_key": key,
                    "start_date": start,
                    "end_date": end,
                    "status": "cancelled" if number % 50 == 0 else "active",
                    "follow_up": "none",
                    "anonymous": number % 10 == 0,
                    "fingerprint": f"{number:064d}",
                    "revision": 1,
                    "created_at": NOW,
                    "updated_at": NOW,
                    "ended_at": datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC)
                    if ended
                    else None,
                }
            )
            if not ended:
                continue
            for a in range(3):
                at = datetime.combine(end + timedelta(days=2 + a), datetime.min.time(), UTC)
                answer_rows.append(
                    _answer(f"{ekey}-e{a}", ekey, "post_engagement", at, rng.randrange(0, 11), rng)
                )
            checkin_day = end + timedelta(days=91)
            if checkin_day < UNTIL:
                for a in range(2):
                    at = datetime.combine(checkin_day + timedelta(days=a), datetime.min.time(), UTC)
                    answer_rows.append(
                        _answer(f"{ekey}-c{a}", ekey, "checkin", at, rng.randrange(0, 11), rng)
                    )
    with Session(engine) as session:
        for table, rows in (
            (TeamRow.__table__, team_rows),
            (EngagementRow.__table__, engagement_rows),
            (SurveyResponseRow.__table__, answer_rows),
        ):
            for start in range(0, len(rows), CHUNK):
                insert_rows(session, table, rows[start : start + CHUNK])
        first = MOMENT - HELP_HISTORY
        span = int(HELP_HISTORY.total_seconds())
        for start in range(0, help_requests, CHUNK):
            rows = []
            for n in range(start, min(help_requests, start + CHUNK)):
                at = first + timedelta(seconds=rng.randrange(span))
                source = "csv" if n % 20 == 0 else "slack"
                rows.append(
                    {
                        "team_key": f"team-{rng.randrange(teams):05d}",
                        "source": source,
                        "source_ref": f"{source}:{n}",
                        "requested_at": at,
                        "summary": "Can someone look at the deploy?",
                        "imported_at": at,
                        "updated_at": at,
                    }
                )
            insert_rows(session, HelpRequestRow.__table__, rows)
        session.commit()
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


def _answer(ref: str, key: str, survey: str, at: datetime, nps: int, rng: random.Random) -> dict[str, Any]:
    if survey == "checkin":
        comfort = rng.randrange(1, 6)
        answers = {
            "maintainability": comfort,
            "help_needed": rng.choice(["never", "once_or_twice", "regularly"]),
        }
    else:
        comfort = None
        answers = {
            "business_goals": rng.choice(["yes", "partly", "no"]),
            "technical_goals": rng.choice(["yes", "partly", "no"]),
        }
    return {
        "response_ref": ref,
        "survey": survey,
        "engagement_key": key,
        "nps": nps,
        "answers": answers,
        "maintainability": comfort,
        "source": "bench",
        "submitted_at": at,
        "updated_at": at,
    }


# --- measurement -----------------------------------------------------------------------------


def snapshot_run(engine: Engine) -> tuple[Any, int, int]:
    """The weekly step as its task runs it: compute, save, commit. Returns the snapshot and the
    statements of compute_week and of save_week."""
    with Session(engine) as session:
        with counting(engine) as computed:
            snapshot = compute_week(session, WEEK, settings=SETTINGS, now=NOW)
        with counting(engine) as saved:
            save_week(session, snapshot, run_id="bench", now=NOW)
            session.commit()
    return snapshot, len(computed), len(saved)


def baseline_run(engine: Engine) -> list[Any]:
    sql = BASELINE.format(**DIALECT[engine.dialect.name])
    params = {
        "until": UNTIL,
        "window_from": UNTIL - timedelta(weeks=SETTINGS.independence_window_weeks),
        "moment": MOMENT,
        "moment_text": MOMENT.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def check(snapshot: Any, baseline: list[Any]) -> tuple[int, list[str]]:
    """The baseline's help counts, as rates, against the snapshot's signals."""
    rates = {}
    for key, start, end, during, after, *_ in baseline:
        start, end = _day(start), _day(end)
        after_from = end + timedelta(days=1)
        after_until = min(UNTIL, after_from + timedelta(weeks=AFTER_WEEKS))
        rates[key] = (
            (during or 0) / max(1.0, (after_from - start).days / 7),
            (after or 0) / max(1.0, (after_until - after_from).days / 7),
        )
    mismatches, checked = [], 0
    if set(rates) != {s.engagement.key for s in snapshot.scores}:
        mismatches.append(f"counted: baseline {len(rates)}, snapshot {len(snapshot.scores)}")
    for one in snapshot.scores:
        signals = one.found.signals
        if signals.help_asks_during_per_week is None or one.engagement.key not in rates:
            continue
        checked += 1
        got = (signals.help_asks_during_per_week, signals.help_asks_after_per_week)
        want = rates[one.engagement.key]
        if any(abs(g - w) > 1e-9 for g, w in zip(got, want, strict=True)):
            mismatches.append(f"{one.engagement.key}: snapshot {got}, baseline {want}")
    return checked, mismatches[:5]


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def run_backend(
    backend: str, urls: dict[int, str], sizes: tuple[int, int], requests: int, rounds: int
) -> Result:
    small, large = sizes
    statements = {}
    for n in sizes:
        engine = get_engine(urls[n])
        migrate(engine)
        started = time.perf_counter()
        load(engine, n, requests * n // large)
        print(f"  {backend} {n:,} engagements: loaded in {time.perf_counter() - started:.1f} s", flush=True)
        snapshot, computed, saved = snapshot_run(engine)  # the warm-up at the large size
        statements[n] = (computed, saved)
        if n == small:
            engine.dispose()
    times: dict[str, list[float]] = {"snapshot": [], "baseline": []}
    baseline = baseline_run(engine)
    for index in range(rounds):
        order = ("snapshot", "baseline") if index % 2 == 0 else ("baseline", "snapshot")
        for job in order:
            started = time.perf_counter()
            if job == "snapshot":
                snapshot, *_ = snapshot_run(engine)
            else:
                baseline = baseline_run(engine)
            times[job].append(time.perf_counter() - started)
    engine.dispose()
    checked, mismatches = check(snapshot, baseline)
    return Result(
        backend,
        large,
        len(snapshot.scores),
        statistics.median(times["snapshot"]),
        statistics.median(times["baseline"]),
        statements[small][0],
        statements[large][0],
        statements[small][1],
        statements[large][1],
        checked,
        mismatches,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engagements", type=int, default=10_000, help="engagements (default 10,000)")
    parser.add_argument(
        "--help-requests", type=int, default=1_000_000, help="help requests (default 1,000,000)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument(
        "--postgres", metavar="URL", default=os.environ.get(POSTGRES_URL_VAR), help="PostgreSQL"
    )
    args = parser.parse_args()
    if args.engagements < 100 or args.rounds < 1:
        parser.error("--engagements must be at least 100 and --rounds at least 1")
    sizes = (args.engagements // 10, args.engagements)
    results = []
    workdir = Path(tempfile.mkdtemp(prefix="auxeng-bench-independence-"))
    try:
        sqlite_urls = {n: f"sqlite:///{workdir / f'auxeng-{n}.db'}" for n in sizes}
        results.append(run_backend("sqlite", sqlite_urls, sizes, args.help_requests, args.rounds))
        if args.postgres:
            with postgres_database(args.postgres) as url:
                urls = schema_urls(url, "independence", sizes)
                results.append(run_backend("postgresql", urls, sizes, args.help_requests, args.rounds))
        else:
            print(f"({POSTGRES_URL_VAR} is not set and no --postgres: PostgreSQL skipped)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report(results, sizes, args.help_requests)


def report(results: list[Result], sizes: tuple[int, int], requests: int) -> int:
    small, large = sizes
    print()
    print(
        f"Weekly independence snapshot of {WEEK} at {large:,} engagements and {requests:,} help requests; "
        f"target: snapshot <= {TARGET_RATIO:g}x the one-query baseline, and compute_week's statements "
        f"equal at {small:,} and {large:,} engagements."
    )
    header = (
        f"{'backend':<12}{'counted':>9}{'snapshot s':>12}{'baseline s':>12}{'ratio':>8}"
        f"{f'stmts@{small:,}':>13}{f'stmts@{large:,}':>14}{'save stmts':>12}{'checked':>9}  verdict"
    )
    print(header)
    print("-" * len(header))
    failures = []
    for r in results:
        ok_ratio = r.ratio <= TARGET_RATIO
        ok_statements = r.statements_small == r.statements_large and r.save_small == r.save_large
        ok = ok_ratio and ok_statements and not r.mismatches and r.checked > 0
        print(
            f"{r.backend:<12}{r.counted:>9,}{r.snapshot_s:>12.3f}{r.baseline_s:>12.3f}{r.ratio:>7.2f}x"
            f"{r.statements_small:>13}{r.statements_large:>14}{f'{r.save_small}/{r.save_large}':>12}"
            f"{r.checked:>9,}  {'PASS' if ok else 'FAIL'}"
        )
        if not ok_ratio:
            failures.append(f"{r.backend}: ratio {r.ratio:.2f}x > {TARGET_RATIO:g}x")
        if not ok_statements:
            failures.append(
                f"{r.backend}: statements grow with the engagements (compute {r.statements_small} -> "
                f"{r.statements_large}, save {r.save_small} -> {r.save_large})"
            )
        if r.mismatches or not r.checked:
            failures.append(
                f"{r.backend}: help counts differ from the baseline's: {r.mismatches or 'none checked'}"
            )
    return verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
