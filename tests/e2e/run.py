"""`make e2e`: the pack on a real multi-process Airflow with the CeleryExecutor, a worker killed mid-run.

What it starts, as native processes from the pinned environment (the compose file's services,
see ``docker-compose.yaml``; their settings are read from it by :mod:`tests.e2e.compose_env`):

* a scratch metadata database and a scratch engagement store on the machine's PostgreSQL,
  created here and dropped at the end; Redis (a db index of its own, flushed) as the Celery
  broker, PostgreSQL as its result backend;
* ``airflow api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and two
  ``airflow celery worker`` processes with their own host names;
* in this process: the test suite's SMTP server (answering each message after a delay: a
  slow server makes the window for the fault) and Slack stand-in.

The story, through the scheduler with REST triggers at the real clock (the pack acts on the
run's moment; with the real clock the scheduled runs that unpausing creates act on the same
day and change nothing the triggered ones would not): a registry of engagements that ended
yesterday is synced, ``auxeng_detect_ended`` marks them and its asset event starts
``auxeng_send_surveys``, whose invitations queue in the outbox; ``auxeng_deliver_outbox``
drains them with four mapped drainers, spread over both workers. While they send, one
worker is killed with SIGKILL (its whole process group: the worker, its pool and the task
processes, as a lost machine); the scheduler fails the lost task instances once their
heartbeat times out and Airflow retries them on the other worker; the killed worker is then
restarted. Checked: every invitation reached the SMTP server exactly once (Message-IDs),
every outbox row is sent or, for the groups the killed drainers had in flight, in doubt and
reconciled against the server (an operator's retry, for those that did not arrive), no task
left running or queued. Then the registry watcher (an edit of the file starts a sync within
60 s) and the dashboard on the api-server (401 without a token, 200 with one from
``/auth/token``).

Everything started is stopped by process group at the end, on failure and on Ctrl-C too; the
logs stay under the folder printed first. Exit 1 on any failed check.

Usage: ``.venv/bin/python -m tests.e2e.run [--keep]``
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psutil
import redis
from cryptography.fernet import Fernet
from sqlalchemy import text

from auxeng.dev.processes import stop_process_groups
from auxeng.store.db import get_engine
from tests.e2e.compose_env import REPO, Local, native_environment
from tests.support.scratch_pg import scratch_database
from tests.support.slack_standin import SlackStandIn
from tests.support.smtp_server import SmtpServer, free_port

ADMIN_URL = os.environ.get("AUXENG_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = os.environ.get("AUXENG_E2E_REDIS_URL") or "redis://127.0.0.1:6379"
REDIS_DBS = range(15, 7, -1)  # the broker takes the first empty one of these db indexes
ENGAGEMENTS = 60  # ended yesterday, 5 people each: 300 survey invitations by email
SMTP_DELAY = 0.3  # seconds per message: one drainer alone would take 90 s for the 300
WORKERS = ("worker-1", "worker-2")
HEARTBEAT_TIMEOUT = 30  # seconds before the scheduler fails a lost task instance (default 300)
LEASE_SECONDS = 30  # outbox leases of a killed drainer expire this fast (default 600)
STORY_DAGS = ("auxeng_sync_registry", "auxeng_detect_ended", "auxeng_send_surveys", "auxeng_deliver_outbox")
LATER_DAGS = ("auxeng_weekly_nps", "auxeng_weekly_digest", "auxeng_dependency_alerts")
OPS_EMAIL = "ops@example.com"
BATCH_SIZE = 25  # messages per claim: the 300 spread over every drainer (default 200)
# A cluster policy of the run's own (Airflow imports airflow_local_settings from $AIRFLOW_HOME/config):
# a lost task is retried after 5 s instead of the pack's 2 minutes, so the fault fits the run's time.
LOCAL_SETTINGS = """from datetime import timedelta


def task_policy(task):
    task.retry_delay = timedelta(seconds=5)
    task.retry_exponential_backoff = 0
"""


class Failed(Exception):
    """A check failed."""


def say(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


def check(ok: bool, message: str) -> None:
    if not ok:
        raise Failed(message)
    say(f"ok: {message}")


def wait_until(what: str, probe: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except Exception as exc:  # not up yet
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise Failed(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


# --- the registry --------------------------------------------------------------------------


def registry_yaml(ended_on: date, engagements: int = ENGAGEMENTS) -> str:
    """Engagements that ended on ``ended_on``, each with its own five people (nobody is surveyed twice)."""
    lines = [
        "program:",
        "  name: AuxEng",
        "  managers:",
        "    - {name: Dana Ruiz, email: dana@example.com}",
        "  stakeholders: [vp-eng@example.com]",
        "teams:",
    ]
    for e in range(engagements):
        lines += [
            f"  - key: team-{e:02d}",
            f"    name: Team {e}",
            f"    org: Org {e % 3}",
            f"    manager: {{name: Manager {e}, email: manager{e}@example.com}}",
        ]
    lines.append("engagements:")
    for e in range(engagements):
        lines += [
            f"  - key: E2E-{e:03d}",
            f"    title: End-to-end engagement {e}",
            f"    host_team: team-{e:02d}",
            f"    start: {(ended_on - timedelta(days=42)).isoformat()}",
            f"    end: {ended_on.isoformat()}",
            "    auxeng:",
            f"      - {{email: eng{e}@example.com, role: engineer, lead: true}}",
            f"      - {{email: adv{e}@example.com, role: advisor}}",
            "    host:",
            f"      - {{email: lead{e}@example.com, role: tech_lead}}",
            f"      - {{email: dev{e}@example.com, role: engineer}}",
            f"      - {{email: manager{e}@example.com, role: manager}}",
        ]
    return "\n".join(lines) + "\n"


# --- processes -------------------------------------------------------------------------------


@dataclass
class Stack:
    """The processes of the run, each in its own process group, logging into ``logs``."""

    logs: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    airflow: str = "airflow"  # the airflow command of the pinned environment
    concurrency: int = 4  # task slots per worker

    def start(self, name: str, *args: str, extra: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            args,
            cwd=REPO,
            env={**self.env, **(extra or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        say(f"started {name} (pid {self.processes[name].pid})")

    def run(self, name: str, *args: str, timeout: float = 300) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            done = subprocess.run(
                args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
            )
        if done.returncode:
            raise Failed(f"{' '.join(args)} exited {done.returncode}: see {self.logs / f'{name}.log'}")

    def tree(self, name: str) -> set[int]:
        """The pids of ``name``'s process and all its descendants."""
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(self.processes[name].pid)
            return {root.pid, *(p.pid for p in root.children(recursive=True))}
        return set()

    def kill(self, name: str) -> None:
        """SIGKILL the process, its process group and every descendant: a machine lost."""
        pids = self.tree(name)
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()

    def dead(self) -> list[str]:
        return [f"{n} (exit {p.returncode})" for n, p in self.processes.items() if p.poll() is not None]

    def stop_all(self) -> None:
        stop_process_groups(self.processes.values())
        self.processes.clear()


# --- the REST API ----------------------------------------------------------------------------


@dataclass
class Api:
    base: str
    token: str = ""

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)

    def get(self, path: str, **params: Any) -> Any:
        with self.client() as client:
            response = client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        with self.client() as client:
            response = client.request(method, path, json=body)
        if response.status_code >= 400:
            raise Failed(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, at: datetime | None = None) -> str:
        run = self.send(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            {"logical_date": (at or datetime.now(UTC)).isoformat(), "conf": conf or {}},
        )
        say(f"triggered {dag_id}: {run['dag_run_id']}")
        return run["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns", limit=100)["dag_runs"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        def finished() -> str | None:
            state = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None

        state = wait_until(f"{dag_id} {run_id}", finished, timeout, every=2)
        say(f"{dag_id} {run_id}: {state}")
        return state

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
        return self.get(path)["task_instances"]


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Run:
    home: Path
    timings: list[tuple[str, float]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def lap(self, what: str) -> None:
        self.timings.append((what, time.monotonic() - self.started))


def outbox_rows(store_url: str) -> list[dict[str, Any]]:
    with get_engine(store_url).connect() as conn:
        rows = conn.execute(
            text("SELECT id, dedupe_key, channel, kind, status, recipient FROM auxeng_outbox")
        )
        return [dict(r._mapping) for r in rows]


@dataclass
class Rig:
    """What a run works with: its home, the local mail and Slack servers, two scratch databases
    and the stack of processes."""

    run: Run
    stack: Stack
    smtp: SmtpServer
    slack: SlackStandIn
    airflow_db: str
    store_db: str
    broker: str


@contextlib.contextmanager
def empty_redis_db() -> Iterator[str]:
    """A Redis database nobody uses (another run's broker is never touched), emptied after."""
    for index in REDIS_DBS:
        url = f"{REDIS_URL}/{index}"
        client = redis.Redis.from_url(url)
        if client.dbsize() == 0 and client.set("auxeng-e2e", os.getpid(), nx=True):
            try:
                yield url
            finally:
                client.flushdb()
            return
    raise Failed(f"no empty Redis database among {list(REDIS_DBS)} at {REDIS_URL}")


@contextlib.contextmanager
def rig(name: str) -> Iterator[Rig]:
    """Set a run up; on exit (an error or SIGTERM too) stop every process and drop the databases."""
    home = Path(os.environ.get("AUXENG_E2E_HOME") or tempfile.mkdtemp(prefix=f"auxeng-{name}-"))
    (home / "logs").mkdir(parents=True, exist_ok=True)
    say(f"logs and Airflow home: {home}")

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    smtp = SmtpServer().start()
    slack = SlackStandIn().start()
    stack = Stack(home / "logs", {})
    try:
        pid = os.getpid()
        with (
            empty_redis_db() as broker,
            scratch_database(ADMIN_URL, f"auxeng_{name}_airflow_{pid}") as meta,
            scratch_database(ADMIN_URL, f"auxeng_{name}_store_{pid}") as store,
        ):
            try:
                yield Rig(Run(home), stack, smtp, slack, meta, store, broker)
            finally:
                stack.stop_all()
    finally:
        smtp.stop()
        slack.stop()
        say(f"everything this run started is stopped; logs: {home / 'logs'}")


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    try:
        with rig("e2e") as r:
            story(r)
    except (Exception, KeyboardInterrupt) as exc:
        say(f"FAILED: {type(exc).__name__}: {exc}")
        return 1
    say("timings (seconds since start): " + ", ".join(f"{w} {s:.0f}" for w, s in r.run.timings))
    say(f"PASS in {time.monotonic() - r.run.started:.0f} s")
    return 0


def story(r: Rig) -> None:
    run, stack, smtp, slack = r.run, r.stack, r.smtp, r.slack
    api = bring_up(r)
    registry = Path(stack.env["AUXENG_REGISTRY_PATH"])
    dashboard(api)

    # The story: registry → ended → surveys queued (and partly sent) → the mapped drainers.
    smtp.data_delay = SMTP_DELAY
    for dag_id in STORY_DAGS:
        api.send("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    sync = api.trigger("auxeng_sync_registry")
    check(api.wait_run("auxeng_sync_registry", sync, 240) == "success", "the registry sync succeeded")
    detect = api.trigger("auxeng_detect_ended")
    check(api.wait_run("auxeng_detect_ended", detect, 240) == "success", "ended detection succeeded")
    surveys = wait_until(
        "auxeng_send_surveys started by the ended-engagements asset",
        lambda: [r for r in api.runs("auxeng_send_surveys") if r["run_type"] == "asset_triggered"],
        120,
        every=2,
    )
    say(f"asset-triggered survey run: {surveys[0]['dag_run_id']}")
    wait_until(
        "the invitations to be queued",
        lambda: (
            len([r for r in outbox_rows(stack.env["AIRFLOW_CONN_AUXENG_DB"]) if r["channel"] == "email"])
            >= ENGAGEMENTS * 5
        ),
        240,
        every=2,
    )
    run.lap("invitations queued")
    drain = api.trigger("auxeng_deliver_outbox", {"drainers": 4})

    # The fault: once drainers run on both workers and mail flows, kill one worker's process group.
    def both_busy() -> dict[str, str] | None:
        running = {
            ti["hostname"]: ti["map_index"]
            for ti in api.task_instances("auxeng_deliver_outbox", drain)
            if ti["task_id"] == "deliver_outbox" and ti["state"] == "running"
        }
        return running if set(WORKERS) <= set(running) and len(smtp.messages) >= 5 else None

    running = wait_until("drainers running on both workers while mail flows", both_busy, 180, every=0.5)
    victim = WORKERS[0]
    # Mid-send: a process of the victim's group holds an SMTP session, and mail keeps arriving.
    wait_until(
        f"a drainer on {victim} to be connected to the SMTP server",
        lambda: smtp_clients(stack, victim, smtp.port),
        60,
        every=0.1,
    )
    flowing = len(smtp.messages) + 5
    wait_until("a few more messages to arrive", lambda: len(smtp.messages) >= flowing, 30, every=0.1)
    total = ENGAGEMENTS * 5
    say(f"drainers running: {running}; {len(smtp.messages)} of {total} messages arrived so far")
    check(len(smtp.messages) <= total - 60, "the fault comes while the drainers still have mail to send")
    stack.kill(victim)
    killed_at = len(smtp.messages)
    say(f"SIGKILLed {victim} (its process group) after {killed_at} messages")
    run.lap("worker killed")
    # Lost with the worker, the drainers it ran are failed once their heartbeat times out, then
    # retried on the worker left; the killed one comes back afterwards.
    state = api.wait_run("auxeng_deliver_outbox", drain, 420)
    start_worker(stack, victim)
    run.lap("drain run finished")
    survey_state = api.wait_run("auxeng_send_surveys", surveys[0]["dag_run_id"], 240)
    check(survey_state == "success", "the survey run succeeded")

    # Reconcile, as an operator would: in-doubt rows whose Message-ID reached the server went out.
    reconcile_and_check(api, stack, smtp, slack, drain, state)
    run.lap("exactly once checked")
    answer_a_survey(api, smtp, stack.env["AIRFLOW_CONN_AUXENG_DB"])
    # The weekly jobs as of the last Monday 08:00 UTC: the digest goes out for a week that just
    # ended (a later run is a backfill and sends nothing), whatever the day the run is on.
    monday = datetime.combine(date.today() - timedelta(days=date.today().weekday()), dt_time(8), UTC)
    monday -= timedelta(weeks=1) if monday > datetime.now(UTC) else timedelta(0)
    for dag_id in LATER_DAGS:
        api.send("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        later = api.trigger(dag_id, at=monday if dag_id != "auxeng_dependency_alerts" else None)
        check(api.wait_run(dag_id, later, 240) == "success", f"{dag_id} succeeded")
    digests = [m for m in smtp.messages if "vp-eng@example.com" in m.rcpt_tos]
    check(bool(digests), f"the weekly digest reached the stakeholders ({len(digests)} email(s))")
    check(not ops_alerts(smtp), "the drainers lost with the worker were retried, not alerted about")
    run.lap("answer, NPS, digest and alerts")
    registry_watcher(api, registry)
    run.lap("registry watcher checked")
    a_final_failure_alerts_ops_once(api, smtp, registry)
    run.lap("ops alert checked")
    everything = api.get("/api/v2/dags/~/dagRuns/~/taskInstances", limit=1000)["task_instances"]
    unfinished = [
        (ti["dag_id"], ti["task_id"], ti["state"])
        for ti in everything
        if ti["state"] in ("running", "queued", "scheduled", "restarting")
    ]
    check(not unfinished, f"no task instance of any DAG left running or queued ({unfinished})")
    per_worker = Counter(ti["hostname"] or "(not run)" for ti in everything)
    say(f"task instances per worker, all DAGs (latest tries): {dict(sorted(per_worker.items()))}")
    check(not stack.dead(), f"no process died on its own (dead: {stack.dead()})")


def bring_up(r: Rig, *, workers: tuple[str, ...] = WORKERS, concurrency: int = 4) -> Api:
    """Migrate, start the Airflow components and ``workers``; the REST API once all are healthy."""
    run, stack, smtp, slack, airflow_db, store_db = r.run, r.stack, r.smtp, r.slack, r.airflow_db, r.store_db
    home = run.home
    api_port = free_port()
    today = datetime.now(UTC).date()
    registry = home / "engagements.yaml"
    registry.write_text(registry_yaml(today - timedelta(days=1)), encoding="utf-8")
    for e in range(ENGAGEMENTS):  # everyone has a Slack account: invitations go by DM too
        for who in ("eng", "adv", "lead", "dev", "manager"):
            slack.add_user(f"U{who.upper()}{e:03d}", f"{who}{e}@example.com")
    broker = r.broker

    secret = secrets.token_urlsafe(32)
    smtp_conn = json.dumps(
        {
            "conn_type": "smtp",
            "host": smtp.host,
            "port": smtp.port,
            "extra": smtp.connection_extra(timeout=30),
        }
    )
    slack_conn = json.dumps(
        {"conn_type": "slack", "password": "xoxb-test", "extra": {"base_url": slack.api_url}}
    )
    local = Local(
        airflow_db_url=airflow_db.replace("postgresql://", "postgresql+psycopg2://"),
        result_backend_url=airflow_db.replace("postgresql://", "db+postgresql://"),
        broker_url=broker,
        api_port=api_port,
        variables={
            "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW_API_SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW_BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW_DB_PASSWORD": "unused",
            "AUXENG_PUBLIC_URL": f"http://127.0.0.1:{api_port}/auxeng",
            "AUXENG_SECRET_KEY": secret,
            "AIRFLOW_CONN_AUXENG_DB": store_db,
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_conn,
            "AIRFLOW_CONN_SLACK_API_DEFAULT": slack_conn,
            "AIRFLOW_WORKER_CONCURRENCY": "4",
        },
    )
    compose = native_environment(local)
    (home / "config").mkdir(exist_ok=True)
    (home / "config" / "airflow_local_settings.py").write_text(LOCAL_SETTINGS, encoding="utf-8")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": "admin"}), encoding="utf-8")
    stack.env.update(
        {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AUXENG"))},
            **compose,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs" / "tasks"),
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.e2e.hostname.worker_hostname",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "PYTHONPATH": os.pathsep.join([compose["PYTHONPATH"], str(REPO)]),
            "AUXENG_REGISTRY_PATH": str(registry),
            "AUXENG_QUIET_HOURS": "off",
            "AUXENG_OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
            "AUXENG_OUTBOX_BATCH_SIZE": str(BATCH_SIZE),
            "AUXENG_OPS_EMAILS": OPS_EMAIL,
        }
    )
    bin_dir = Path(sys.executable).parent
    airflow = str(bin_dir / "airflow")

    say("migrating the metadata DB and the engagement store (PostgreSQL)")
    stack.run("db-migrate", airflow, "db", "migrate")
    stack.run("store-migrate", sys.executable, "-m", "auxeng", "migrate")
    run.lap("migrated")

    stack.start("api-server", airflow, "api-server", "--port", str(api_port))
    stack.start("scheduler", airflow, "scheduler")
    stack.start("dag-processor", airflow, "dag-processor")
    stack.start("triggerer", airflow, "triggerer")
    stack.airflow, stack.concurrency = airflow, concurrency
    for name in workers:
        start_worker(stack, name)

    api = Api(f"http://127.0.0.1:{api_port}")

    def healthy() -> bool:
        health = api.get("/api/v2/monitor/health")
        return all(
            health.get(part, {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    wait_until("the api-server, scheduler, triggerer and dag-processor to be healthy", healthy, 180, every=2)
    with httpx.Client(base_url=api.base, timeout=30) as client:
        response = client.post("/auth/token", json={"username": "admin", "password": "admin"})
    check(response.status_code in (200, 201), f"/auth/token answers {response.status_code}")
    api.token = response.json()["access_token"]
    dags = wait_until(
        "the pack's DAGs to be parsed",
        lambda: (lambda ids: ids if set(STORY_DAGS) <= ids else None)(
            {d["dag_id"] for d in api.get("/api/v2/dags", limit=100)["dags"]}
        ),
        180,
        every=2,
    )
    check(
        len([d for d in dags if d.startswith("auxeng_")]) == 9,
        f"the 9 auxeng DAGs are parsed: {sorted(dags)}",
    )
    check(not stack.dead(), f"every process is up (dead: {stack.dead()})")
    run.lap("stack up")
    return api


def smtp_clients(stack: Stack, name: str, port: int) -> list[int]:
    """The pids among ``name``'s processes with a connection to the SMTP server's ``port``."""
    mine = stack.tree(name)
    return [
        c.pid
        for c in psutil.net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.pid in mine
    ]


def start_worker(stack: Stack, name: str) -> None:
    stack.start(
        name,
        stack.airflow,
        "celery",
        "worker",
        "--celery-hostname",
        f"{name}@%h",
        "--concurrency",
        str(stack.concurrency),
        "--skip-serve-logs",
        extra={"AUXENG_E2E_HOSTNAME": name},
    )


def dashboard(api: Api) -> None:
    with httpx.Client(base_url=api.base, timeout=30) as client:
        anonymous = client.get("/auxeng/dashboard/")
        signed_in = client.get("/auxeng/dashboard/", headers={"Authorization": f"Bearer {api.token}"})
    check(anonymous.status_code == 401, f"the dashboard without a token answers {anonymous.status_code}")
    check(signed_in.status_code == 200, f"the dashboard with a token answers {signed_in.status_code}")


def reconcile_and_check(
    api: Api, stack: Stack, smtp: SmtpServer, slack: SlackStandIn, drain: str, state: str
) -> None:
    from auxeng.messaging.mime import message_id

    store = stack.env["AIRFLOW_CONN_AUXENG_DB"]
    tis = api.task_instances("auxeng_deliver_outbox", drain)
    drainers = [ti for ti in tis if ti["task_id"] == "deliver_outbox"]
    hosts = Counter()
    for ti in drainers:
        for attempt in api.tries("auxeng_deliver_outbox", drain, "deliver_outbox", ti["map_index"]):
            hosts[attempt.get("hostname") or "?"] += 1
    say(f"drainer tries per worker: {dict(hosts)}; run {state}")
    check(set(WORKERS) <= set(hosts), "the drainers ran on both workers")
    retried = [ti for ti in drainers if ti["try_number"] > 1]
    check(
        bool(retried) and all(ti["hostname"] == WORKERS[1] for ti in retried),
        f"the drainers lost with {WORKERS[0]} were retried on {WORKERS[1]} "
        f"({[(ti['map_index'], ti['try_number'], ti['hostname']) for ti in retried]})",
    )
    check(
        not [ti for ti in tis if ti["state"] in ("running", "queued", "scheduled")],
        "no task left running or queued",
    )

    rows = outbox_rows(store)
    emails = [r for r in rows if r["channel"] == "email"]
    arrived = Counter(m.message_id for m in smtp.messages)
    by_id = {message_id(r["dedupe_key"], "example.com"): r for r in emails}
    duplicates = [mid for mid, n in arrived.items() if n > 1]
    check(not duplicates, f"no message reached the SMTP server twice ({len(arrived)} distinct arrived)")
    statuses = Counter(r["status"] for r in emails)
    say(f"outbox email rows by status: {dict(statuses)}")
    in_doubt = [r for r in emails if r["status"] == "in_doubt"]
    not_arrived = [r for r in in_doubt if message_id(r["dedupe_key"], "example.com") not in arrived]
    check(
        set(statuses) <= {"sent", "in_doubt", "pending"},
        f"every email row is sent, in doubt or pending ({dict(statuses)})",
    )
    sent = [r for r in emails if r["status"] == "sent"]
    check(
        all(message_id(r["dedupe_key"], "example.com") in arrived for r in sent),
        "every row marked sent arrived at the server",
    )
    check(set(arrived) <= set(by_id), "everything that arrived is an outbox row")
    if not_arrived or statuses.get("pending"):
        from auxeng.messaging.outbox import retry
        from auxeng.store.db import session_scope

        engine = get_engine(store)
        with session_scope(engine) as session:
            for row in not_arrived:
                retry(session, row["id"], now=datetime.now(UTC))
        say(f"retried {len(not_arrived)} in-doubt rows that never arrived; draining again")
        again = api.trigger("auxeng_deliver_outbox", {"drainers": 2})
        check(api.wait_run("auxeng_deliver_outbox", again, 300) == "success", "the second drain succeeded")
    rows = outbox_rows(store)
    emails = [r for r in rows if r["channel"] == "email"]
    arrived = Counter(m.message_id for m in smtp.messages)
    lost = [r["dedupe_key"] for r in emails if message_id(r["dedupe_key"], "example.com") not in arrived]
    check(not lost, f"0 lost: every email row reached the server ({len(emails)} rows)")
    check(max(arrived.values()) == 1, "0 duplicated: every Message-ID arrived once")
    dms = [r for r in rows if r["channel"] == "slack"]
    posted = Counter((p.conversation, p.text) for p in slack.posts if (p.conversation or "").startswith("D"))
    check(
        all(r["status"] == "sent" for r in dms) and len(posted) == len(dms) and max(posted.values()) == 1,
        f"every Slack DM was posted exactly once ({len(dms)} rows, {sum(posted.values())} posts)",
    )


def answers_for(page: str) -> dict[str, str]:
    """A complete answer to the survey the page shows: 9 out of 10, the first choice, a sentence."""
    from auxeng.surveys.questions import SCALE, SURVEYS, TEXT

    survey = next(s for s in SURVEYS.values() if html.escape(s.title) in page)
    answers = {}
    for question in survey.fields:
        if question.kind == SCALE:
            answers[question.name] = "9" if question.name == survey.nps_field else str(question.maximum)
        elif question.kind == TEXT:
            answers[question.name] = "It shipped, and the team runs it."
        else:
            answers[question.name] = question.choices[0][0]
    return answers


def answer_a_survey(api: Api, smtp: SmtpServer, store: str) -> None:
    """One invitee opens the link of their email on the api-server and answers."""
    link = re.compile(re.escape(api.base) + r"/auxeng/survey/[A-Za-z0-9._~-]+")
    for received in smtp.messages:
        body = received.message.get_body(preferencelist=("plain",))
        found = link.search(body.get_content()) if body is not None else None
        if found:
            break
    else:
        raise Failed("no survey link in the emails that arrived")
    url = found.group(0)
    with httpx.Client(timeout=30) as client:
        form = client.get(url)
        check(form.status_code == 200 and "<form" in form.text, f"the survey page answers {form.status_code}")
        answered = client.post(
            url,
            content=urlencode(answers_for(form.text)),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    check(answered.status_code == 303, f"the answer is accepted ({answered.status_code})")
    with get_engine(store).connect() as conn:
        scores = conn.execute(text("SELECT nps FROM auxeng_survey_responses")).scalars().all()
    check(scores == [9], f"the answer is in the store ({scores})")


def ops_alerts(smtp: SmtpServer) -> list[EmailMessage]:
    return [m.message for m in smtp.messages if OPS_EMAIL in m.rcpt_tos]


def a_final_failure_alerts_ops_once(api: Api, smtp: SmtpServer, registry: Path) -> None:
    """A broken registry file: its sync fails for good (a broken file is not retried); ops get one
    alert, for that try, by email."""
    valid = registry.read_text(encoding="utf-8")
    failed = rewrite_and_wait_for_sync(api, registry, "program: [never closed\n", "a broken registry")
    check(api.wait_run("auxeng_sync_registry", failed, 180) == "failed", "the broken registry's sync failed")
    tries = api.tries("auxeng_sync_registry", failed, "load_registry", -1)
    wait_until("the ops alert", lambda: ops_alerts(smtp), 60, every=0.5)
    time.sleep(5)  # a second alert, if any, has time to arrive
    alerts = [m for m in ops_alerts(smtp) if f"Run:        {failed}" in m.get_body(("plain",)).get_content()]
    last = max(t["try_number"] for t in tries)
    check(
        len(alerts) == 1 and f"Try:        {last}\n" in alerts[0].get_body(("plain",)).get_content(),
        f"{len(tries)} failed tr(ies), {len(alerts)} ops alert(s): one, for the last try ({last})",
    )
    fixed = rewrite_and_wait_for_sync(api, registry, valid, "the registry repaired")
    check(
        api.wait_run("auxeng_sync_registry", fixed, 120) == "success",
        "the repaired registry's sync succeeded",
    )


def rewrite_and_wait_for_sync(api: Api, registry: Path, content: str, what: str) -> str:
    """Write ``content`` to the registry file; the id of the sync the watcher starts (within 60 s)."""
    before = {r["dag_run_id"] for r in api.runs("auxeng_sync_registry")}
    registry.write_text(content, encoding="utf-8")
    written = time.monotonic()
    fresh = wait_until(
        f"an asset-triggered registry sync after writing {what}",
        lambda: [
            r["dag_run_id"]
            for r in api.runs("auxeng_sync_registry")
            if r["dag_run_id"] not in before and r["run_type"] == "asset_triggered"
        ],
        60,
        every=1,
    )
    say(f"writing {what} started {fresh[0]} in {time.monotonic() - written:.0f} s")
    return fresh[0]


def registry_watcher(api: Api, registry: Path) -> None:
    edited = registry.read_text(encoding="utf-8") + "# edited by the e2e run\n"
    run_id = rewrite_and_wait_for_sync(api, registry, edited, "an edit")
    check(
        api.wait_run("auxeng_sync_registry", run_id, 120) == "success", "the sync the edit started succeeded"
    )


if __name__ == "__main__":
    sys.exit(main())
