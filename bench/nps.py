"""Time the steady weekly NPS run over 1,000,000 answers against the fastest query for the week's counts (SQLite and PostgreSQL).

Target, on each database: the steady weekly run, ``compute_week`` + ``save_week`` +
commit (what the weekly task does) when the 25 weeks before are already stored and one
new week is computed, takes **≤ 3×** the fastest query computing the same week's
per-segment counts, and the process running it peaks **under 300 MB**. Its snapshot
must equal the former code's (from scratch: 26 weeks counted per engagement, rolled up
in Python), timed in the same rounds and shown with its ratio, like the former
baseline, one plain scan of the whole table (``SELECT engagement_key, count(*),
sum(nps) FROM auxeng_survey_responses GROUP BY engagement_key``).

The fastest query (two statements, one per table, as little as the week's counts
need): the week's answers by ``submitted_at`` and its invitations by ``invited_on``
(answered before the week's end), each a range scan of its covering index, grouped per
engagement, joined to the host team and org and rolled up to program, survey, team and
org: a UNION ALL of four GROUP BYs over the joined groups, and on PostgreSQL also
``GROUPING SETS``; the faster form is the baseline. The weekly run does more: the
answers that arrived in the week for invitations of the 25 weeks before, reading the
stored weeks, the snapshot and its rows.

Data, deterministic (``random.Random(2026)``), 3 years (156 weeks) ending with the
benchmarked week (Monday 2026-11-23, Europe/Berlin): 500 teams in 8 orgs (every 50th
team has none), 3,000 engagements with end dates spread over the 3 years, 1,300,000
invitations in time order (``post_engagement`` 70 % to an engagement that just
ended, ``checkin`` 30 % to one that ended ~3 months before; status ``invited``), of
which exactly 1,000,000 (10 of every 13) are answered within 6 days: one response
each, NPS 0-10 getting better over the years, ``answers`` JSON (check-in:
``maintainability`` 1-5 and ``help_needed``; sometimes a short comment), source
``bench``. It is generated once, in batches, and loaded into both stores as it goes:
SQLite with ``executemany`` in one transaction, PostgreSQL with ``COPY`` (psycopg2);
then ``ANALYZE`` (PostgreSQL: ``VACUUM ANALYZE``, which autovacuum would run soon
after such a load anyway; done here so it does not run during the measurement).
Loading is printed, not gated.

The weekly NPS triggers (migration 0010) are off during the load, as for a restore: the
first run computes all 26 weeks anyway. Their cost on ordinary writes is in bench/README.md.

Measurement, per database, in a fresh child process (spawned before any data is
generated: a spawned child's ``ru_maxrss`` starts at its parent's resident size at
spawn time, so a child spawned after the generation would report the parent's
memory): connect, the first run (the week before: 26 weeks computed and stored; timed,
not gated), one warm-up of each measured job, then ``--rounds`` rounds of all of them,
rotating which goes first; the medians are compared. Before each steady run the
benchmarked week's stored counts are dropped, and before each run that writes on
PostgreSQL the rewritten tables are vacuumed (not timed; see ``_vacuum``). Peak MB is the child's
``ru_maxrss`` at the end (VmHWM is printed beside it). The PostgreSQL server's own
memory is not counted. Then each read of a steady run and the fastest query's are run
once more on their own (same SQL and parameters) to show where the time goes;
``--explain``, or a missed target, prints their plans (``EXPLAIN QUERY PLAN``;
``EXPLAIN (ANALYZE, BUFFERS)``). The counts the run, the fastest query and the scan
return are checked against the generated data (a wrong count is a FAIL too).

PostgreSQL: ``AUXENG_BENCH_POSTGRES_URL`` or ``AUXENG_TEST_POSTGRES_URL`` when set,
else ``postgresql+psycopg2://postgres@127.0.0.1:5432/postgres`` (psycopg2: the driver
the store uses when its URL comes from the Airflow connection; a plain
``postgresql://`` URL means psycopg 3 under SQLAlchemy 2.1); a scratch database
``auxeng_bench_<pid>`` is created and dropped at the end. When the server cannot be
reached only SQLite runs, unless ``AUXENG_BENCH_REQUIRE_POSTGRES=1`` (then: exit 1).
A run that fails is shown as ``ERROR`` (a FAIL); the other database still runs.

Usage: ``.venv/bin/python bench/nps.py [--responses N] [--rounds N] [--explain]``. Exit 1 on FAIL.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import multiprocessing
import os
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "plugins") not in sys.path:
    sys.path.insert(0, str(REPO / "plugins"))

from _common import postgres_database, verdict  # noqa: E402
from sqlalchemy import Date, Engine, bindparam, create_engine, delete, event, insert, make_url, text  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from auxeng.dev.demo_history import CHECKIN_COMMENTS, COMMENTS  # noqa: E402
from auxeng.nps.queries import answer_totals, engagement_hosts, invitation_totals  # noqa: E402
from auxeng.nps.weekly import (  # noqa: E402
    QUARTER,
    WeeklySnapshot,
    compute_week,
    local_midnight,
    save_week,
    snapshot_of,
    snapshot_weeks,
)
from auxeng.nps.weekly import WEEK as WEEK_SPAN  # noqa: E402
from auxeng.store.db import get_engine, open_store, session_scope  # noqa: E402
from auxeng.store.models import (  # noqa: E402
    EngagementRow,
    NpsWeekAggregateRow,
    TeamRow,
    UTCDateTime,
    maintainability_of,
)

TARGET_RATIO = 3.0
MEMORY_LIMIT_MB = 300
DEFAULT_RESPONSES = 1_000_000
ROUNDS = 5
SEED = 2026
TEAMS, ORGS, ENGAGEMENTS = 500, 8, 3_000
HISTORY_WEEKS = 156
WEEK = date(2026, 11, 23)  # the benchmarked week (a Monday)
TIMEZONE = "Europe/Berlin"
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # the Monday 07:00 (Berlin) run that computes WEEK
MIN_RESPONSES = 3
CHECKIN_SHARE = 0.3
ANSWERED_OF_13 = 10  # 1,300,000 invitations → 1,000,000 answers
CHECKIN_LAG_DAYS = 91
ANSWER_DELAY_S = (2 * 3600, 6 * 86400)
BATCH = 13 * 2_000  # invitations per batch (≈ 20,000 responses)

POSTGRES_URL_VARS = ("AUXENG_BENCH_POSTGRES_URL", "AUXENG_TEST_POSTGRES_URL")
DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"  # the store's driver
REQUIRE_POSTGRES_VAR = "AUXENG_BENCH_REQUIRE_POSTGRES"

PLAIN_SCAN = "SELECT engagement_key, count(*), sum(nps) FROM auxeng_survey_responses GROUP BY engagement_key"
INVITATION_COLUMNS = (
    "id, survey, engagement_key, email, round, side, role, status, skip_reason, invited_on, "
    "closes_at, reminders_queued, answered_at, created_at, updated_at"
)
RESPONSE_COLUMNS = (
    "id, response_ref, invitation_id, survey, engagement_key, respondent_email, nps, answers, "
    "maintainability, source, submitted_at, updated_at"
)
REWRITTEN_TABLES = (
    "auxeng_nps_snapshots",
    "auxeng_nps_weeks",
    "auxeng_nps_week_counts",
    "auxeng_nps_late_answers",
    "auxeng_nps_week_aggregates",
)
LOADED_TABLES = ("auxeng_survey_invitations", "auxeng_survey_responses")
NULL = "\\N"  # COPY text format: NULL, and the escapes of a text value
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n"})


# --- the synthetic history -------------------------------------------------------------


@dataclass
class Expected:
    """What the generated data must give back: counted while generating it."""

    invitations: int = 0
    responses: int = 0
    nps_sum: int = 0
    engagements_answered: set[str] = field(default_factory=set)
    week_responses: int = 0
    quarter_responses: int = 0
    week_invited: int = 0
    week_answered: int = 0

    def checks(self) -> dict[str, int]:
        return {
            "scan: groups": len(self.engagements_answered),
            "scan: responses": self.responses,
            "scan: sum of nps": self.nps_sum,
            "week: responses (program)": self.week_responses,
            "week: responses (sum over teams)": self.week_responses,
            "week: responses (sum over orgs)": self.week_responses,
            "13w: responses (program)": self.quarter_responses,
            "week: invited (program)": self.week_invited,
            "week: answered (program)": self.week_answered,
            "fastest query: responses (program)": self.week_responses,
            "fastest query: invited (program)": self.week_invited,
            "fastest query: answered (program)": self.week_answered,
        }


def _answer_choices() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The ``answers`` JSON texts to draw from, per NPS category: end of engagement, check-in.

    End of engagement: half without a comment. Check-in: comfort 1-2 for detractors
    (3-5 otherwise), ``help_needed``, and a comment 40 % of the time.
    """
    post: dict[str, list[str]] = {}
    checkin: dict[str, list[str]] = {}
    for category, comments in COMMENTS.items():
        field_name = "to_change" if category == "detractor" else "went_well"
        post[category] = ["{}"] * len(comments) + [json.dumps({field_name: c}) for c in comments]
        detractor = category == "detractor"
        choices = []
        for comfort in (1, 2) if detractor else (3, 4, 5):
            for help_needed in ("regularly",) if detractor else ("never", "once_or_twice"):
                base = {"maintainability": comfort, "help_needed": help_needed}
                choices += [json.dumps(base)] * 3
                choices += [json.dumps(base | {"not_taken_over": c}) for c in CHECKIN_COMMENTS]
        checkin[category] = choices
    return post, checkin


class History:
    """3 years of invitations and answers, generated batch by batch (deterministic per seed).

    Times are whole seconds since ``base`` (a UTC midnight), rendered as SQLite stores
    them (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC); PostgreSQL reads the same text as UTC.
    """

    def __init__(self, responses: int, seed: int = SEED) -> None:
        self.responses = responses
        self.invitations = responses * 13 // ANSWERED_OF_13
        self.rng = random.Random(seed)
        timezone = ZoneInfo(TIMEZONE)
        self.end = local_midnight(WEEK + timedelta(weeks=1), timezone)
        self.start = self.end - timedelta(weeks=HISTORY_WEEKS)
        self.base = datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)
        self.first = self._seconds(self.start)
        self.span = self._seconds(self.end) - self.first
        last_day = (self.end - self.base).days + 40
        self.days = [(self.base.date() + timedelta(days=d)).isoformat() for d in range(last_day)]
        self.clock = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000000" for s in range(86_400)]
        self.week_from = self._seconds(local_midnight(WEEK, timezone))
        self.quarter_from = self._seconds(local_midnight(WEEK - timedelta(weeks=12), timezone))
        self.week_days = (WEEK.isoformat(), (WEEK + timedelta(weeks=1)).isoformat())
        self.engagement_keys = [f"ENG-{k:05d}" for k in range(ENGAGEMENTS)]
        self.expected = Expected()

    def _seconds(self, moment: datetime) -> int:
        return int((moment - self.base).total_seconds())

    def stamp(self, seconds: int) -> str:
        day, second = divmod(seconds, 86_400)
        return f"{self.days[day]} {self.clock[second]}"

    def teams(self) -> list[dict[str, Any]]:
        return [
            {
                "key": f"team-{j:03d}",
                "name": f"Team {j}",
                "org": None if j % 50 == 0 else f"Org {chr(ord('A') + j % ORGS)}",
                "manager_email": f"manager.{j:03d}@example.com",
                "manager_name": f"Manager {j}",
                "updated_at": self.start,
            }
            for j in range(1, TEAMS + 1)
        ]

    def engagements(self) -> list[dict[str, Any]]:
        """Engagement k ends at start + (k + 1) / ENGAGEMENTS of the 3 years."""
        rng = self.rng
        rows = []
        for k, key in enumerate(self.engagement_keys):
            ended = self.start + timedelta(seconds=(k + 1) * self.span // ENGAGEMENTS)
            end = ended.date()
            begin = end - timedelta(days=rng.randint(28, 120))
            created = datetime(begin.year, begin.month, begin.day, 8, tzinfo=UTC) - timedelta(days=14)
            rows.append(
                {
                    "key": key,
                    "title": f"Engagement {k}",
                    "host_team_key": f"team-{rng.randint(1, TEAMS):03d}",
                    "start_date": begin,
                    "end_date": end,
                    "status": "active",
                    "follow_up": "none",
                    "anonymous": False,
                    "fingerprint": hashlib.sha256(key.encode()).hexdigest(),
                    "revision": 1,
                    "created_at": created,
                    "updated_at": created,
                    "ended_at": ended,
                    "ended_as_of": end,
                    "ended_end_date": end,
                }
            )
        return rows

    def batches(self, size: int = BATCH) -> Iterator[tuple[list[tuple], list[tuple]]]:
        """(invitation rows, response rows) in time order, ``size`` invitations at a time."""
        rng, expected = self.rng, self.expected
        n, span, first, until = self.invitations, self.span, self.first, self.first + self.span
        days, keys = self.days, self.engagement_keys
        week_first, week_after = self.week_days
        lag = round(CHECKIN_LAG_DAYS * 86_400 * ENGAGEMENTS / span)
        post_answers, checkin_answers = _answer_choices()
        comfort_of = {  # the maintainability column of each answers JSON (what the ORM would store)
            text: maintainability_of(json.loads(text))
            for choices in (*post_answers.values(), *checkin_answers.values())
            for text in choices
        }
        invitations: list[tuple] = []
        responses: list[tuple] = []
        unanswered: list[int] = []
        response_id = 0
        for i in range(n):
            if i % 13 == 0:
                unanswered = rng.sample(range(13), 13 - ANSWERED_OF_13)
            offset = int((i + rng.random()) * span / n)
            invited = first + offset
            checkin = rng.random() < CHECKIN_SHARE
            survey = "checkin" if checkin else "post_engagement"
            k = offset * ENGAGEMENTS // span - 1 - rng.randrange(3) - (lag if checkin else 0)
            engagement = keys[max(k, 0)]
            invitation_id = i + 1
            email = f"bench.{invitation_id:07d}@example.com"
            invited_at = self.stamp(invited)
            day, second = divmod(invited, 86_400)
            invited_on = days[day]
            answered_at = None
            if i % 13 not in unanswered:
                submitted = invited + rng.randint(*ANSWER_DELAY_S)
                if submitted >= until:
                    submitted = invited + int((until - invited) * rng.random())
                answered_at = self.stamp(submitted)
                progress = offset / span
                promoters, detractors = 0.35 + 0.3 * progress, 0.3 - 0.15 * progress
                roll = rng.random()
                if roll < promoters:
                    score, category = (9 if roll < promoters / 2 else 10), "promoter"
                elif roll < promoters + detractors:
                    score, category = int((roll - promoters) / detractors * 7), "detractor"
                else:
                    score = 7 if roll < (1 + promoters + detractors) / 2 else 8
                    category = "passive"
                answers = rng.choice(checkin_answers[category] if checkin else post_answers[category])
                response_id += 1
                ref = hashlib.blake2b(b"bench-%d" % response_id, digest_size=20).hexdigest()
                responses.append(
                    (
                        response_id,
                        ref,
                        invitation_id,
                        survey,
                        engagement,
                        email,
                        score,
                        answers,
                        comfort_of[answers],
                        "bench",
                        answered_at,
                        answered_at,
                    )
                )
                expected.responses += 1
                expected.nps_sum += score
                expected.engagements_answered.add(engagement)
                if submitted >= self.quarter_from:
                    expected.quarter_responses += 1
                    if submitted >= self.week_from:
                        expected.week_responses += 1
            if week_first <= invited_on < week_after:
                expected.week_invited += 1
                expected.week_answered += answered_at is not None
            invitations.append(
                (
                    invitation_id,
                    survey,
                    engagement,
                    email,
                    0,
                    "host",
                    "engineer",
                    "invited",
                    None,
                    invited_on,
                    f"{days[day + 21]} {self.clock[second]}",
                    0 if answered_at else 1,
                    answered_at,
                    invited_at,
                    invited_at,
                )
            )
            expected.invitations += 1
            if len(invitations) == size:
                yield invitations, responses
                invitations, responses = [], []
        if invitations:
            yield invitations, responses


# --- loaders ---------------------------------------------------------------------------


def _add_reference_rows(engine: Engine, teams: list[dict], engagements: list[dict]) -> None:
    with session_scope(engine) as session:
        session.execute(insert(TeamRow), teams)
        session.execute(insert(EngagementRow), engagements)


class SqliteLoader:
    """``executemany`` in large batches, one transaction, on a plain sqlite3 connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA cache_size=-262144")  # 256 MB, for the loader only
        self.conn.execute("BEGIN")
        self.triggers = self.conn.execute(  # the weekly NPS marks (migration 0010): off for the load
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'auxeng_nps_mark_%'"
        ).fetchall()
        for name, _sql in self.triggers:
            self.conn.execute(f"DROP TRIGGER {name}")
        self.seconds = 0.0
        self._invitations = (
            f"INSERT INTO auxeng_survey_invitations ({INVITATION_COLUMNS}) VALUES ({', '.join('?' * 15)})"
        )
        self._responses = (
            f"INSERT INTO auxeng_survey_responses ({RESPONSE_COLUMNS}) VALUES ({', '.join('?' * 12)})"
        )

    def add(self, invitations: list[tuple], responses: list[tuple]) -> None:
        start = time.perf_counter()
        self.conn.executemany(self._invitations, invitations)
        self.conn.executemany(self._responses, responses)
        self.seconds += time.perf_counter() - start

    def finish(self) -> None:
        start = time.perf_counter()
        for _name, sql in self.triggers:
            self.conn.execute(sql)
        self.conn.execute("COMMIT")
        self.conn.execute("ANALYZE")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()
        self.seconds += time.perf_counter() - start


class PostgresLoader:
    """``COPY … FROM STDIN`` per batch (psycopg2 or psycopg 3), one transaction, then VACUUM ANALYZE."""

    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()
        self.cursor = self.raw.cursor()
        self.cursor.execute("SET TIME ZONE 'UTC'")  # the timestamps are UTC text without an offset
        for table in LOADED_TABLES:  # the weekly NPS marks (migration 0010): off for the load
            self.cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        self.seconds = 0.0

    def add(self, invitations: list[tuple], responses: list[tuple]) -> None:
        start = time.perf_counter()
        text_rows = "".join(
            f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3]}\t{r[4]}\t{r[5]}\t{r[6]}\t{r[7]}\t\\N\t{r[9]}\t{r[10]}\t{r[11]}\t"
            f"{NULL if r[12] is None else r[12]}\t{r[13]}\t{r[14]}\n"
            for r in invitations
        )
        self._copy(f"COPY auxeng_survey_invitations ({INVITATION_COLUMNS}) FROM STDIN", text_rows)
        text_rows = "".join(
            f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3]}\t{r[4]}\t{r[5]}\t{r[6]}\t{r[7].translate(COPY_ESCAPES)}\t"
            f"{NULL if r[8] is None else r[8]}\t{r[9]}\t{r[10]}\t{r[11]}\n"
            for r in responses
        )
        self._copy(f"COPY auxeng_survey_responses ({RESPONSE_COLUMNS}) FROM STDIN", text_rows)
        self.seconds += time.perf_counter() - start

    def _copy(self, statement: str, data: str) -> None:
        if hasattr(self.cursor, "copy_expert"):  # psycopg2
            self.cursor.copy_expert(statement, io.StringIO(data))
        else:  # psycopg 3
            with self.cursor.copy(statement) as copy:
                copy.write(data)

    def finish(self) -> None:
        start = time.perf_counter()
        for table in ("auxeng_survey_invitations", "auxeng_survey_responses"):
            self.cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        for table in LOADED_TABLES:
            self.cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        self.raw.commit()
        dbapi = self.raw.driver_connection
        dbapi.autocommit = True
        try:
            self.cursor.execute("VACUUM ANALYZE")
        finally:
            dbapi.autocommit = False
        self.cursor.close()
        self.raw.close()
        self.seconds += time.perf_counter() - start


# --- the measurement, in a child process -------------------------------------------------


def _vm_hwm_mb() -> float | None:
    """This process's resident high-water mark since its exec (Linux), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _maxrss_mb() -> float:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def _plan(dialect: str, cursor: Any, statement: str, parameters: Any) -> list[str]:
    if dialect == "sqlite":
        cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters or ())
        depth: dict[int, int] = {0: -1}
        lines = []
        for node, parent, _unused, detail in cursor.fetchall():
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + detail)
        return lines
    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters or None)
    return [row[0] for row in cursor.fetchall()]


def _fastest_sql(form: str, source: str) -> str:
    """One statement computing the week's per-segment counts of ``source`` (``answers`` or
    ``invitations``): one range scan of the covering index, grouped per engagement, joined to the
    host team and org, rolled up to the segments by a UNION ALL of GROUP BYs or by GROUPING SETS."""
    per_engagement, sums = FASTEST_SOURCES[source]
    hosted = f"""
        SELECT p.survey, e.host_team_key AS team, t.key AS known, t.org, {sums}
        FROM per_engagement p LEFT JOIN auxeng_engagements e ON e.key = p.engagement_key
        LEFT JOIN auxeng_teams t ON t.key = e.host_team_key"""
    outer = sums.replace("sum(p.", "sum(")
    if form == "GROUPING SETS":
        return f"""WITH per_engagement AS ({per_engagement}) {hosted.replace("t.key AS known", "t.key IS NOT NULL AS known")}
            GROUP BY GROUPING SETS ((), (p.survey), (e.host_team_key), (t.key IS NOT NULL, t.org))"""
    return f"""WITH per_engagement AS ({per_engagement}), hosted AS ({hosted}
            GROUP BY p.survey, e.host_team_key, t.key, t.org)
        SELECT 'program', 'all', {outer} FROM hosted
        UNION ALL SELECT 'survey', survey, {outer} FROM hosted GROUP BY survey
        UNION ALL SELECT 'team', team, {outer} FROM hosted WHERE team IS NOT NULL GROUP BY team
        UNION ALL SELECT 'org', coalesce(org, '(no org)'), {outer} FROM hosted WHERE known IS NOT NULL GROUP BY org"""


FASTEST_SOURCES = {
    "answers": (
        """SELECT engagement_key, survey, count(CASE WHEN nps >= 9 THEN 1 END) AS promoters,
            count(CASE WHEN nps BETWEEN 7 AND 8 THEN 1 END) AS passives,
            count(CASE WHEN nps <= 6 THEN 1 END) AS detractors,
            coalesce(sum(maintainability), 0) AS comfort_total, count(maintainability) AS comfort_answers
        FROM auxeng_survey_responses
        WHERE submitted_at >= :starts_at AND submitted_at < :ends_at
          AND survey IN ('post_engagement', 'checkin') AND nps IS NOT NULL
        GROUP BY engagement_key, survey""",
        "sum(p.promoters) AS promoters, sum(p.passives) AS passives, sum(p.detractors) AS detractors, "
        "sum(p.comfort_total) AS comfort_total, sum(p.comfort_answers) AS comfort_answers",
    ),
    "invitations": (
        """SELECT engagement_key, survey, count(*) AS invited,
            count(CASE WHEN answered_at < :ends_at THEN 1 END) AS answered
        FROM auxeng_survey_invitations
        WHERE invited_on >= :first_day AND invited_on < :next_monday
          AND survey IN ('post_engagement', 'checkin') AND status = 'invited'
        GROUP BY engagement_key, survey""",
        "sum(p.invited) AS invited, sum(p.answered) AS answered",
    ),
}


def _fastest_forms(dialect: str) -> list[str]:
    """The roll-ups tried for the fastest query: SQLite has no GROUPING SETS."""
    return ["UNION ALL", "GROUPING SETS"] if dialect == "postgresql" else ["UNION ALL"]


def _fastest_statements(form: str, timezone: ZoneInfo) -> list[Any]:
    parameters = [
        bindparam("starts_at", local_midnight(WEEK, timezone), type_=UTCDateTime()),
        bindparam("ends_at", local_midnight(WEEK + timedelta(weeks=1), timezone), type_=UTCDateTime()),
        bindparam("first_day", WEEK, type_=Date()),
        bindparam("next_monday", WEEK + timedelta(weeks=1), type_=Date()),
    ]
    statements = []
    for source in FASTEST_SOURCES:
        statement = text(_fastest_sql(form, source))
        statements.append(statement.bindparams(*(p for p in parameters if f":{p.key}" in statement.text)))
    return statements


def _program_week(rows_by_source: list[list[Any]], form: str) -> dict[str, int]:
    """The program's counts of the week in the fastest query's rows (to check them)."""
    answers, invitations = rows_by_source
    if form == "GROUPING SETS":  # the grand total: every grouped column NULL
        program = (
            [r for r in answers if r[:4] == (None, None, None, None)],
            [r for r in invitations if r[:4] == (None, None, None, None)],
        )
        (answer,), (invited,) = program
        return {"responses": sum(answer[4:7]), "invited": invited[4], "answered": invited[5]}
    (answer,) = [r for r in answers if r[0] == "program"]
    (invited,) = [r for r in invitations if r[0] == "program"]
    return {"responses": sum(answer[2:5]), "invited": invited[2], "answered": invited[3]}


def _breakdown(engine: Engine, timezone: ZoneInfo, plans: bool) -> list[dict[str, Any]]:
    """Each read of a steady weekly run (captured with its parameters) and the fastest query, run alone."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append((statement, parameters))

    _drop_week(engine)
    form = _fastest_forms(engine.dialect.name)[0]
    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            compute_week(session, WEEK, timezone=timezone, min_responses=MIN_RESPONSES, now=NOW)
            session.rollback()
        steady = len(captured)
        with engine.connect() as conn:
            for statement in _fastest_statements(form, timezone):
                conn.execute(statement).all()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    labels = [
        "changed days",
        "stored weeks",
        "the week's counts (3 scans)",
        "stored counts + late (summed)",
    ]
    if steady != len(labels):
        labels = [f"query {n + 1}" for n in range(steady)]
    labels += [f"fastest: answers ({form})", f"fastest: invitations ({form})"]
    queries = list(zip(labels, captured, strict=True))
    result = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for label, (statement, parameters) in queries:
            start = time.perf_counter()
            cursor.execute(statement, parameters or ())
            rows = len(cursor.fetchall())
            seconds = time.perf_counter() - start
            plan = _plan(engine.dialect.name, cursor, statement, parameters) if plans else []
            result.append({"label": label, "seconds": seconds, "rows": rows, "plan": plan})
        cursor.close()
        raw.rollback()
    finally:
        raw.close()
    return result


def _drop_week(engine: Engine) -> None:
    """Forget the stored counts of WEEK (not timed): each measured run computes it again."""
    with session_scope(engine) as session:
        session.execute(delete(NpsWeekAggregateRow).where(NpsWeekAggregateRow.week == WEEK))
    _vacuum(engine)


def _vacuum(engine: Engine) -> None:
    """PostgreSQL: vacuum the tables the runs rewrite (not timed), as autovacuum would between two
    weekly runs: rewriting one week's rows every few seconds leaves dead index entries with the
    same keys, which every insert of the next run steps over (the snapshot rows: 2-3× slower)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM {', '.join(REWRITTEN_TABLES)}")


def measure(url: str, rounds: int, plans: str) -> dict[str, Any]:
    """Run in the spawned child: the first run, warm-ups, ``rounds`` interleaved rounds, the breakdown.

    ``plans``: ``always``, or ``if-slow`` (only when the ratio misses the target).
    A failing run is reported, not raised: the other database still runs.
    """
    try:
        return _measure(url, rounds, plans)
    except SQLAlchemyError as exc:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return {"error": " / ".join(line.strip() for line in lines[:2]), "peak_mb": _maxrss_mb()}


def _from_scratch(session: Session, timezone: ZoneInfo) -> WeeklySnapshot:
    """The snapshot of WEEK as computed before the weekly counts were stored (the former code)."""
    days = [*snapshot_weeks(WEEK), WEEK + timedelta(weeks=1)]
    hosts = engagement_hosts(session)
    answers = answer_totals(session, [local_midnight(day, timezone) for day in days], hosts=hosts)
    invitations = invitation_totals(
        session, days, answered_before=local_midnight(days[-1], timezone), hosts=hosts
    )
    return snapshot_of(
        WEEK, timezone=timezone, min_responses=MIN_RESPONSES, answers=answers, invitations=invitations
    )


def _measure(url: str, rounds: int, plans: str) -> dict[str, Any]:
    engine = get_engine(url)
    timezone = ZoneInfo(TIMEZONE)
    dialect = engine.dialect.name
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    memory: dict[str, float | None] = {"connected": _vm_hwm_mb()}

    start = time.perf_counter()  # the first run: 26 weeks computed and stored, the load's marks read
    with session_scope(engine) as session:
        first = compute_week(
            session, WEEK - timedelta(weeks=1), timezone=timezone, min_responses=MIN_RESPONSES, now=NOW
        )
        save_week(session, first, run_id="bench-first", now=NOW)
    first_s = time.perf_counter() - start

    def weekly() -> tuple[float, Any]:
        _drop_week(engine)
        start = time.perf_counter()
        with session_scope(engine) as session:
            snapshot = compute_week(session, WEEK, timezone=timezone, min_responses=MIN_RESPONSES, now=NOW)
            written = save_week(session, snapshot, run_id="bench", now=NOW)
        return time.perf_counter() - start, (snapshot, written)

    def former() -> tuple[float, Any]:
        _vacuum(engine)
        start = time.perf_counter()
        with session_scope(engine) as session:
            snapshot = _from_scratch(session, timezone)
            save_week(session, snapshot, run_id="bench-former", now=NOW)
        return time.perf_counter() - start, snapshot

    def fastest(form: str) -> Any:
        statements = _fastest_statements(form, timezone)

        def run() -> tuple[float, Any]:
            start = time.perf_counter()
            with engine.connect() as conn:
                rows = [conn.execute(statement).all() for statement in statements]
            return time.perf_counter() - start, rows

        return run

    def whole_table() -> tuple[float, Any]:
        start = time.perf_counter()
        with engine.connect() as conn:
            rows = conn.execute(text(PLAIN_SCAN)).all()
        return time.perf_counter() - start, rows

    forms = _fastest_forms(dialect)
    timed = {"weekly run": weekly, "former code": former, "whole-table scan": whole_table}
    timed |= {f"fastest ({form})": fastest(form) for form in forms}
    warm = {name: job() for name, job in timed.items()}
    memory["after the warm-ups"] = _vm_hwm_mb()
    seconds: dict[str, list[float]] = {name: [] for name in timed}
    names = list(timed)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            seconds[name].append(timed[name]()[0])
    memory["after the rounds"] = _vm_hwm_mb()
    peak = _maxrss_mb()
    fastest_name = min((f"fastest ({form})" for form in forms), key=lambda n: statistics.median(seconds[n]))

    snapshot, written = warm["weekly run"][1]
    week = snapshot.get(WEEK_SPAN)
    fastest_week = _program_week(warm[fastest_name][1], fastest_name[len("fastest (") : -1])
    rows = warm["whole-table scan"][1]

    def responses(span: str, segment: str) -> int:
        return sum(
            counts.result.responses
            for (span_name, seg, _key), counts in snapshot.spans.items()
            if (span_name, seg) == (span, segment)
        )

    checks = {
        "scan: groups": len(rows),
        "scan: responses": sum(row[1] for row in rows),
        "scan: sum of nps": sum(row[2] for row in rows),
        "week: responses (program)": week.result.responses,
        "week: responses (sum over teams)": responses(WEEK_SPAN, "team"),
        "week: responses (sum over orgs)": responses(WEEK_SPAN, "org"),
        "13w: responses (program)": snapshot.get(QUARTER).result.responses,
        "week: invited (program)": week.invitations.invited,
        "week: answered (program)": week.invitations.answered,
        "fastest query: responses (program)": fastest_week["responses"],
        "fastest query: invited (program)": fastest_week["invited"],
        "fastest query: answered (program)": fastest_week["answered"],
    }
    ratio = statistics.median(seconds["weekly run"]) / statistics.median(seconds[fastest_name])
    want_plans = plans == "always" or (plans == "if-slow" and ratio > TARGET_RATIO)
    breakdown = _breakdown(engine, timezone, want_plans)
    engine.dispose()
    return {
        "seconds": seconds,
        "warm_up_s": {name: found[0] for name, found in warm.items()},
        "fastest": fastest_name,
        "first_s": first_s,
        "peak_mb": peak,
        "memory": memory,
        "checks": checks,
        "same_as_former": snapshot == warm["former code"][1],
        "snapshot_rows": written,
        "breakdown": breakdown,
        "week_nps": week.result.score,
        "digest": hashlib.sha256(repr((sorted(snapshot.spans.items()), snapshot.trend)).encode()).hexdigest(),
    }


# --- driver ------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    url: str
    engine: Engine | None
    worker: ProcessPoolExecutor
    loader: SqliteLoader | PostgresLoader | None = None
    load_s: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def driver(self) -> str:
        return make_url(self.url).drivername


def _spawn_worker() -> ProcessPoolExecutor:
    """A fresh process for the measurement, started now, while this process is still small."""
    worker = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    worker.submit(os.getpid).result()
    return worker


def _postgres_admin_url() -> tuple[str, str | None]:
    """The admin URL and, when the server cannot be reached, why."""
    url = next((os.environ[v] for v in POSTGRES_URL_VARS if os.environ.get(v)), DEFAULT_POSTGRES_URL)
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return url, None
    except SQLAlchemyError as exc:
        return url, str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0]
    finally:
        engine.dispose()


def load(history: History, backends: list[Backend]) -> float:
    """Generate the history once and load each batch into every backend; returns the generation seconds."""
    teams, engagements = history.teams(), history.engagements()  # drawn once: the same rows everywhere
    for backend in backends:
        start = time.perf_counter()
        _add_reference_rows(backend.engine, teams, engagements)
        if backend.name == "sqlite":
            backend.loader = SqliteLoader(Path(backend.engine.url.database))
        else:
            backend.loader = PostgresLoader(backend.engine)
        backend.load_s += time.perf_counter() - start
    start = time.perf_counter()
    for invitations, responses in history.batches():
        for backend in backends:
            backend.loader.add(invitations, responses)
    for backend in backends:
        backend.loader.finish()
        backend.load_s += backend.loader.seconds
    return time.perf_counter() - start - sum(b.loader.seconds for b in backends)


def _ratio(result: dict[str, Any], name: str) -> float:
    """``name``'s median over the fastest query's."""
    seconds = result["seconds"]
    return statistics.median(seconds[name]) / statistics.median(seconds[result["fastest"]])


def _verdict(result: dict[str, Any]) -> tuple[float | None, list[str]]:
    """The weekly run's ratio to the fastest query and the missed limits of one database's result."""
    if "error" in result:
        return None, ["ERROR"]
    ratio = _ratio(result, "weekly run")
    problems = []
    if ratio > TARGET_RATIO:
        problems.append("TOO SLOW")
    if result["peak_mb"] >= MEMORY_LIMIT_MB:
        problems.append("TOO MUCH MEMORY")
    if not result["same_as_former"]:
        problems.append("SNAPSHOT DIFFERS")
    return ratio, problems


def _table(backends: list[Backend], responses: int) -> None:
    columns = (
        ("database", 12, "<"),
        ("responses", 11, ">"),
        ("load s", 8, ">"),
        ("fastest week query s", 22, ">"),
        ("weekly run s", 14, ">"),
        ("ratio", 8, ">"),
        ("limit", 7, ">"),
        ("former code s", 15, ">"),
        ("former ratio", 14, ">"),
        ("peak MB", 9, ">"),
    )
    header = "".join(f"{name:{align}{width}}" for name, width, align in columns) + "  verdict"
    print(header)
    print("-" * (len(header) + 16))
    for backend in backends:
        result = backend.result
        ratio, problems = _verdict(result)
        cells: tuple[str, ...] = (backend.name, f"{responses:,}", f"{backend.load_s:.1f}")
        if ratio is None:
            cells += ("-", "-", "-", f"{TARGET_RATIO:g}×", "-", "-")
        else:
            seconds = result["seconds"]
            cells += (
                f"{statistics.median(seconds[result['fastest']]):.4f}",
                f"{statistics.median(seconds['weekly run']):.4f}",
                f"{ratio:.2f}×",
                f"{TARGET_RATIO:g}×",
                f"{statistics.median(seconds['former code']):.3f}",
                f"{_ratio(result, 'former code'):.0f}×",
            )
        cells += (f"{result['peak_mb']:.0f}",)
        line = "".join(
            f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, columns, strict=True)
        )
        print(f"{line}  {', '.join(problems) or 'ok'}")


def _details(backend: Backend, expected: dict[str, int]) -> None:
    result = backend.result
    print(f"\n== {backend.name} ({backend.driver})")
    if "error" in result:
        print(f"  the weekly run failed: {result['error']}")
        return
    for label, values in result["seconds"].items():
        marker = " (the baseline)" if label == result["fastest"] else ""
        print(
            f"  {label + marker:<40} median {statistics.median(values):.4f} s, min {min(values):.4f}, "
            f"max {max(values):.4f}; {_ratio(result, label):.2f}× the fastest query"
        )
    print(
        f"  first run (26 weeks computed and stored, the load's marks read): {result['first_s']:.3f} s; "
        f"{result['snapshot_rows']} snapshot rows written per run; NPS of the week {result['week_nps']:.1f}"
    )
    same = "identical" if result["same_as_former"] else "DIFFERENT"
    print(f"  snapshot of the weekly run vs the former code's: {same}")
    memory = ", ".join(f"{k} {v:.0f}" for k, v in result["memory"].items() if v is not None)
    print(f"  measuring process: ru_maxrss {result['peak_mb']:.0f} MB; VmHWM (MB): {memory}")
    bad = [name for name, got in result["checks"].items() if got != expected[name]]
    print(
        f"  counts checked against the generated data: {'MISMATCH: ' + ', '.join(bad) if bad else 'all match'}"
    )
    print(
        "  each read of a steady weekly run alone, then the fastest query's (one run, same SQL and parameters):"
    )
    for query in result["breakdown"]:
        print(f"    {query['label']:<34}{query['seconds']:>8.4f} s {query['rows']:>6} rows")
    for query in result["breakdown"]:
        if query["plan"]:
            print(f"  plan: {query['label']}")
            for line in query["plan"]:
                print(f"    {line}")


def report(backends: list[Backend], history: History, generate_s: float, gated: bool) -> list[str]:
    """Print the table and the details; returns the missed targets and wrong counts."""
    failures: list[str] = []
    e = history.expected
    expected = e.checks()
    print()
    _table(backends, e.responses)
    for backend in backends:
        result = backend.result
        ratio, problems = _verdict(result)
        if ratio is None:
            failures.append(f"{backend.name}: the weekly run failed: {result['error']}")
            continue
        if gated and "TOO SLOW" in problems:
            failures.append(
                f"{backend.name}: weekly run = {ratio:.2f}× the fastest week query > {TARGET_RATIO:g}×"
            )
        if gated and "TOO MUCH MEMORY" in problems:
            failures.append(f"{backend.name}: the measuring process peaked at {result['peak_mb']:.0f} MB")
        if "SNAPSHOT DIFFERS" in problems:
            failures.append(f"{backend.name}: the weekly run's snapshot differs from the former code's")
        for name, got in result["checks"].items():
            if got != expected[name]:
                failures.append(f"{backend.name}: {name} = {got}, expected {expected[name]}")
    digests = {b.name: b.result["digest"] for b in backends if "digest" in b.result}
    print(
        f"\ndata: {e.invitations:,} invitations, {e.responses:,} responses over {HISTORY_WEEKS} weeks "
        f"({history.start:%Y-%m-%d %H:%M} to {history.end:%Y-%m-%d %H:%M} UTC), {TEAMS} teams, "
        f"{ENGAGEMENTS:,} engagements; week of {WEEK}: {e.week_responses:,} responses, "
        f"{e.quarter_responses:,} in 13 weeks, {e.week_invited:,} invited"
    )
    print(f"generating the data (once, for both loads; not in 'load s'): {generate_s:.1f} s")
    if len(digests) > 1:
        same = len(set(digests.values())) == 1
        print(f"snapshot of the week identical on {' and '.join(digests)}: {'yes' if same else 'NO'}")
        if not same:
            failures.append(f"the snapshots differ between the databases: {digests}")
    for backend in backends:
        _details(backend, expected)
    return failures


def main() -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--responses",
        type=int,
        default=DEFAULT_RESPONSES,
        help=f"answers to generate, a multiple of {ANSWERED_OF_13} (default {DEFAULT_RESPONSES:,})",
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"measured rounds (default {ROUNDS})")
    parser.add_argument("--explain", action="store_true", help="print the query plans (always)")
    args = parser.parse_args()
    if args.responses < ANSWERED_OF_13 or args.responses % ANSWERED_OF_13:
        parser.error(f"--responses must be a positive multiple of {ANSWERED_OF_13}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    gated = args.responses == DEFAULT_RESPONSES

    admin_url, unreachable = _postgres_admin_url()
    if unreachable:
        shown = make_url(admin_url).render_as_string(hide_password=True)
        print(f"PostgreSQL at {shown} is unreachable: {unreachable}")
        if os.environ.get(REQUIRE_POSTGRES_VAR) == "1":
            print(f"{REQUIRE_POSTGRES_VAR}=1: PostgreSQL is required.\n\nFAIL: PostgreSQL unreachable")
            return 1
        print("PostgreSQL skipped: benching SQLite only.")
    workers = {"sqlite": _spawn_worker()}
    if not unreachable:
        workers["postgresql"] = _spawn_worker()

    workdir = Path(tempfile.mkdtemp(prefix="auxeng-bench-nps-"))
    try:
        with _maybe_postgres(None if unreachable else admin_url) as pg_url:
            backends = [Backend("sqlite", f"sqlite:///{workdir / 'auxeng.db'}", None, workers["sqlite"])]
            if pg_url:
                backends.append(Backend("postgresql", pg_url, None, workers["postgresql"]))
            for backend in backends:
                start = time.perf_counter()
                backend.engine = open_store(backend.url)
                backend.load_s += time.perf_counter() - start
            history = History(args.responses)
            print(
                f"generating {history.invitations:,} invitations / {args.responses:,} responses and loading "
                f"them into {', '.join(b.name for b in backends)}…",
                flush=True,
            )
            generate_s = load(history, backends)
            for backend in backends:
                backend.engine.dispose()
                print(f"measuring {backend.name}…", flush=True)
                plans = "always" if args.explain else "if-slow"
                backend.result = backend.worker.submit(measure, backend.url, args.rounds, plans).result()
                backend.worker.shutdown()
            failures = report(backends, history, generate_s, gated)
    finally:
        for worker in workers.values():
            worker.shutdown(cancel_futures=True)
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(
        f"target: steady weekly run ≤ {TARGET_RATIO:g}× the fastest query for the week's segment counts "
        f"(medians of {args.rounds}), measuring process < {MEMORY_LIMIT_MB} MB"
    )
    if not gated:
        print(f"(the targets are defined for {DEFAULT_RESPONSES:,} responses: not checked)")
    print(f"total runtime: {time.perf_counter() - started:.0f} s")
    return verdict(failures)


def _maybe_postgres(admin_url: str | None) -> Any:
    return postgres_database(admin_url) if admin_url else contextlib.nullcontext()


if __name__ == "__main__":
    sys.exit(main())
