"""`make run`: a local Airflow (SQLite, LocalExecutor) with this pack, started in order, told briefly.

1. Prepare (each step logs to ``$AIRFLOW_HOME/logs/<step>.log``): migrate the metadata DB, write
   the simple auth manager's password file, load the demo registry, seed the demo survey history
   (once: :func:`auxeng.dev.demo_history.seed_history` is idempotent) so the dashboard has a trend.
2. Start ``airflow api-server`` and wait for ``/api/v2/monitor/health``; only then the scheduler,
   dag-processor and triggerer, so no task runs before the execution API answers. Each component
   logs to ``$AIRFLOW_HOME/logs/<component>.log`` (``make logs`` follows them).
3. Trigger ``auxeng_detect_ended`` once it is parsed; its asset event starts ``auxeng_send_surveys``,
   which sends the invitations; ``auxeng_deliver_outbox`` is triggered once that run has finished.
   A step of this that fails (or never comes) is said loudly: START-UP FAILED, and where to look.
4. Follow: every finished run of the pack's DAGs (failures and retries with their log file), new
   files in the dev outbox, and why no digest went out when the weekly one is too old to send.

Ctrl-C (or SIGTERM) stops every component by process group: SIGTERM, then SIGKILL. A preparation
step or a component that fails stops the whole run, with the end of its log. The Makefile exports ``AIRFLOW_HOME`` and the
``AIRFLOW__*`` settings; ``AUXENG_PORT`` picks the port (8080).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from auxeng.dev.processes import stop_process_groups

AIRFLOW = str(Path(sys.executable).parent / "airflow")  # the pinned environment's command
COMPONENTS = ("scheduler", "dag-processor", "triggerer")  # started once the api-server is healthy
LOGIN = ("admin", "admin")
FINISHED = ("success", "failed")


class Stop(Exception):
    """The run must end: a preparation step failed, or a component died or never became healthy."""


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def show(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter lines)."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


# --- environment and preparation -----------------------------------------------------------


def local_environment(home: Path, port: int) -> dict[str, str]:
    """The settings every component and step shares (on top of the Makefile's exports)."""
    key_file = home / "auxeng-dev-secret-key"
    if not key_file.exists() or not key_file.read_text().strip():
        key_file.write_text(secrets.token_urlsafe(32) + "\n")
    base_url = f"http://localhost:{port}"
    return {
        **os.environ,
        # This machine only: the simple auth manager (plain-text passwords) is for local use.
        "AIRFLOW__API__HOST": os.environ.get("AIRFLOW__API__HOST") or "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # Dev set-up: messages become files (no SMTP or Slack needed), links point at this Airflow
        # and are signed with a key kept in the local home.
        "AUXENG_DEV_OUTBOX": os.environ.get("AUXENG_DEV_OUTBOX") or str(home / "dev-outbox"),
        "AUXENG_PUBLIC_URL": os.environ.get("AUXENG_PUBLIC_URL") or f"{base_url}/auxeng",
        "AUXENG_QUIET_HOURS": os.environ.get("AUXENG_QUIET_HOURS") or "off",
        "AUXENG_SECRET_KEY": os.environ.get("AUXENG_SECRET_KEY") or key_file.read_text().strip(),
    }


def step(logs: Path, name: str, args: list[str], env: dict[str, str]) -> str:
    """Run one preparation command, its output in ``logs/<name>.log``; its last line."""
    log = logs / f"{name}.log"
    with log.open("w") as out:
        done = subprocess.run(args, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)  # noqa: S603
    lines = log.read_text(errors="replace").strip().splitlines()
    if done.returncode:
        tail = "\n".join(lines[-15:])
        raise Stop(f"{' '.join(args[:3])} failed (exit {done.returncode}); {show(log)} ends with:\n{tail}")
    return lines[-1] if lines else ""


SEED = """
from datetime import date
from auxeng.dev.demo_history import seed_history
from auxeng.store.db import open_store, session_scope
with session_scope(open_store()) as session:
    print(seed_history(session, until=date.today()))
"""


LOCAL_SETTINGS_MARK = "# Written by `make run` (scripts/run_local.py)"
LOCAL_SETTINGS = f"""{LOCAL_SETTINGS_MARK}: Airflow imports this in every component and task process.
import warnings

# A task process reads plugins/.airflowignore with the glob syntax whatever
# AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX says, through a class pathspec deprecates: one warning per task.
warnings.filterwarnings(
    "ignore", message=r"GitWildMatchPattern \\('gitwildmatch'\\) is deprecated", category=DeprecationWarning
)
"""


def prepare_home(home: Path, logs: Path, env: dict[str, str]) -> None:
    """The password file, the local settings and the migrated metadata DB."""
    say(f"Preparing the metadata DB in {show(home)} (SQLite) and the pack's demo data")
    Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).write_text(
        json.dumps(dict([LOGIN])) + "\n"
    )
    local_settings = home / "config" / "airflow_local_settings.py"
    local_settings.parent.mkdir(exist_ok=True)
    if not local_settings.exists() or local_settings.read_text().startswith(LOCAL_SETTINGS_MARK):
        local_settings.write_text(LOCAL_SETTINGS)
    step(logs, "db-migrate", [AIRFLOW, "db", "migrate"], env)


def load_demo_data(logs: Path, env: dict[str, str]) -> None:
    """The demo registry and 26 weeks of demo survey history (the dashboard's trend, the digest's)."""
    quiet = {**env, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
    loaded = step(logs, "sync-registry", [sys.executable, "-m", "auxeng", "sync-registry", "--force"], quiet)
    say(f"Demo registry: {loaded.split(': ', 1)[-1]}")
    seeded = step(logs, "seed-history", [sys.executable, "-c", SEED], quiet)
    say(
        f"Demo survey history: {seeded} answers over 26 weeks seeded"
        if seeded.strip() not in ("", "0")
        else "Demo survey history: already seeded"
    )


# --- the processes -------------------------------------------------------------------------


class Components:
    """Airflow's components, each in its own process group, logging to ``logs/<name>.log``."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs, self.env = logs, env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(  # noqa: S603 - Airflow of this environment
                [AIRFLOW, name],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                log = self.logs / f"{name}.log"
                tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:])
                raise Stop(
                    f"airflow {name} exited with code {process.returncode}; {show(log)} ends with:\n{tail}"
                )

    def stop_all(self) -> None:
        stop_process_groups(self.processes.values())
        self.processes.clear()


# --- the REST API ----------------------------------------------------------------------------


class Api:
    """Airflow's REST API as admin; a request that meets a busy SQLite ("database is locked": a 500)
    or a slow answer is tried again a few times."""

    tries = 5

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)

    def healthy(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            response = self.client.get("/api/v2/monitor/health")
            return response.status_code == 200 and response.json()["metadatabase"]["status"] == "healthy"
        return False

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(1, self.tries + 1):
            try:
                response = self.client.request(method, path, **kwargs)
                if response.status_code == 401 and path != "/auth/token":  # the token expired (a day)
                    self.log_in()
                    continue
                if response.status_code < 500 or attempt == self.tries:
                    response.raise_for_status()
                    return response.json()
            except httpx.TransportError:
                if attempt == self.tries:
                    raise
            time.sleep(2 * attempt)
        raise AssertionError("unreachable")

    def log_in(self) -> None:
        body = dict(zip(("username", "password"), LOGIN, strict=True))
        self.client.headers["Authorization"] = (
            f"Bearer {self.request('POST', '/auth/token', json=body)['access_token']}"
        )

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def trigger(self, dag_id: str) -> str:
        body = {"logical_date": datetime.now(UTC).isoformat()}
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.get("/api/v2/dags", limit=100, dag_id_pattern="auxeng_")["dags"]}


def task_log(logs: Path, ti: dict[str, Any]) -> Path:
    """Where Airflow's default log template puts ``ti``'s last try."""
    mapped = f"/map_index={ti['map_index']}" if ti["map_index"] >= 0 else ""
    return (
        logs
        / f"dag_id={ti['dag_id']}/run_id={ti['dag_run_id']}/task_id={ti['task_id']}{mapped}/attempt={max(1, ti['try_number'])}.log"
    )


# --- following what the pack does --------------------------------------------------------


class Follower:
    """Says what finished, what failed or is retried (with the log), and what landed in the dev outbox."""

    def __init__(self, api: Api, logs: Path, outbox: Path, since: datetime) -> None:
        self.api, self.logs, self.outbox, self.since = api, logs, outbox, since
        self.seen_runs: set[tuple[str, str]] = set()
        self.seen_tries: set[tuple[str, str, str, int, int]] = set()
        self.seen_files = self.outbox_files()

    def outbox_files(self) -> set[Path]:
        return {p for p in self.outbox.glob("*/*") if p.suffix in (".eml", ".json")}

    def poll(self) -> list[dict[str, Any]]:
        """Report what is new; the runs that finished since the last poll."""
        runs = self.api.get(
            "/api/v2/dags/~/dagRuns", end_date_gte=self.since.isoformat(), limit=100, order_by="-end_date"
        )["dag_runs"]
        finished = []
        for run in reversed(runs):
            key = (run["dag_id"], run["dag_run_id"])
            if (
                run["state"] not in FINISHED
                or key in self.seen_runs
                or not run["dag_id"].startswith("auxeng_")
            ):
                continue
            self.seen_runs.add(key)
            finished.append(run)
            took = ""
            if run.get("start_date") and run.get("end_date"):
                seconds = (
                    datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
                ).total_seconds()
                took = f" in {seconds:.0f} s"
            say(f"{run['dag_id']} ({run['run_type']}) {run['state']}{took}")
            if run["state"] == "failed":
                for ti in self.task_instances(run, "failed"):
                    say(f"  FAILED {ti['task_id']}: see {show(task_log(self.logs, ti))}")
        for ti in self.api.get("/api/v2/dags/~/dagRuns/~/taskInstances", state="up_for_retry", limit=100)[
            "task_instances"
        ]:
            key = (ti["dag_id"], ti["dag_run_id"], ti["task_id"], ti["map_index"], ti["try_number"])
            if key not in self.seen_tries:
                self.seen_tries.add(key)
                say(
                    f"RETRYING {ti['dag_id']}.{ti['task_id']} after a failed try: see {show(task_log(self.logs, ti))}"
                )
        self.new_messages()
        return finished

    def task_instances(self, run: dict[str, Any], *states: str) -> list[dict[str, Any]]:
        tis = self.api.get(
            f"/api/v2/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}/taskInstances", limit=100
        )
        return [ti for ti in tis["task_instances"] if ti["state"] in states]

    def new_messages(self) -> int:
        files = self.outbox_files()
        new = files - self.seen_files
        self.seen_files = files
        if new:
            kinds = Counter((p.name.split("-")[1], p.parent.name) for p in new)
            what = ", ".join(f"{n} {kind} {channel}" for (kind, channel), n in sorted(kinds.items()))
            say(f"+{len(new)} messages: {what} in {show(self.outbox)}")
        return len(new)


def stale_digest_line(api: Api, run: dict[str, Any]) -> str | None:
    """Why a finished digest run sent nothing, in the digest's own words (None when it sent)."""
    from auxeng.nps.digest import STALE_WEEK
    from auxeng.settings import load_settings

    path = f"/api/v2/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}/taskInstances/queue_digest/xcomEntries/return_value"
    try:
        report = api.get(path, deserialize=True)["value"]
    except httpx.HTTPError:
        return None
    if isinstance(report, str):
        report = ast.literal_eval(report)
    if report.get("status") != STALE_WEEK:
        return None
    nps_dag = api.get("/api/v2/dags/auxeng_weekly_nps")
    following = nps_dag.get("next_dagrun_run_after") or "its next Monday"
    return (
        f"No digest sent: the week of {report['week']} ended more than "
        f"{load_settings().digest_max_age_days} days ago (AUXENG_DIGEST_MAX_AGE_DAYS); the next one follows "
        f"auxeng_weekly_nps at {following}"
    )


# --- the run ---------------------------------------------------------------------------------


def dag_titles(dags_folder: Path) -> list[tuple[str, str]]:
    """(dag_id, the first line of its doc) of every DAG file: one DAG per file, named as its file."""
    titles = []
    for path in sorted(dags_folder.glob("auxeng_*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        first = next((line.strip("# ").strip() for line in doc.splitlines() if line.strip()), "")
        titles.append((path.stem, first))
    return titles


def banner(port: int, dags: list[tuple[str, str]], home: Path, outbox: Path) -> str:
    width = max(len(d) for d, _ in dags)
    lines = [
        "",
        f"  AuxEng follow-ups on a local Airflow: {len(dags)} DAGs, all unpaused",
        *(f"    {dag_id:<{width}}  {title}" for dag_id, title in dags),
        "  At start: the scheduler runs each scheduled DAG's latest interval once (no catch-up beyond it);",
        "    auxeng_detect_ended is triggered now; auxeng_send_surveys and auxeng_checkins follow on its",
        "    event and send their invitations; auxeng_deliver_outbox is triggered after them.",
        f"  Dev outbox: {show(outbox)} (every message the pack sends, as .eml / .json;",
        "    open a survey link from one in your browser to answer it)",
        f"  Dashboard: http://localhost:{port}/auxeng/dashboard/   What happened: make report",
        f"  Airflow's logs: make logs ({show(home / 'logs')}/<component>.log)   Stop: Ctrl-C",
        "",
    ]
    return "\n".join(lines)


def wait(
    what: str, probe: Callable[[], Any], components: Components, timeout: float, every: float = 2
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        components.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if result := probe():
                return result
        time.sleep(every)
    raise Stop(f"gave up after {timeout:.0f} s waiting for {what}")


def serve(home: Path, port: int) -> None:
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = local_environment(home, port)
    prepare_home(home, logs, env)
    components = Components(logs, env)
    try:
        say(f"Starting the api-server on port {port} (then the scheduler, dag-processor and triggerer)")
        components.start("api-server")
        load_demo_data(logs, env)  # while the api-server starts; before the scheduler runs anything
        api = Api(f"http://127.0.0.1:{port}")
        wait("the api-server's health check", api.healthy, components, timeout=900)
        for name in COMPONENTS:
            components.start(name)
        print(f"UI ready at http://localhost:{port} (login {LOGIN[0]} / {LOGIN[1]})", flush=True)
        api.log_in()
        outbox = Path(env["AUXENG_DEV_OUTBOX"])
        print(banner(port, dag_titles(Path(env["AIRFLOW__CORE__DAGS_FOLDER"])), home, outbox), flush=True)
        follow(api, components, logs, outbox)
    finally:
        components.stop_all()


def trigger(api: Api, dag_id: str, why: str) -> str:
    """Trigger ``dag_id`` and say so; on failure say that loudly (the run id, or "")."""
    try:
        run_id = api.trigger(dag_id)
    except httpx.HTTPError as exc:
        say(f"START-UP FAILED: could not trigger {dag_id} ({exc}); trigger it in the UI (see make logs)")
        return ""
    say(f"Triggered {dag_id} ({run_id}): {why}")
    return run_id


def follow(api: Api, components: Components, logs: Path, outbox: Path) -> None:
    """The start-up story (detect → surveys → delivery), then follow until stopped."""
    follower = Follower(api, logs, outbox, since=datetime.now(UTC))
    detect, surveyed, late, started = "", False, False, time.monotonic()
    while True:
        components.check_alive()
        try:
            if not detect and not late and "auxeng_detect_ended" in api.dag_ids():  # parsed
                detect = trigger(api, "auxeng_detect_ended", "surveys and check-ins follow on its event")
                late = not detect
            for run in follower.poll():
                dag_id, state = run["dag_id"], run["state"]
                if detect and run["dag_run_id"] == detect and state != "success":
                    say(
                        "START-UP FAILED: the triggered auxeng_detect_ended run failed (its task log is named above)"
                    )
                if dag_id == "auxeng_send_surveys" and run["run_type"] == "asset_triggered" and not surveyed:
                    surveyed = True
                    trigger(api, "auxeng_deliver_outbox", "delivers anything else due now, not in 15 minutes")
                if (
                    dag_id == "auxeng_weekly_digest"
                    and state == "success"
                    and (line := stale_digest_line(api, run))
                ):
                    say(line)
        except httpx.HTTPError as exc:
            say(f"(the api-server did not answer: {exc}; trying again)")
        if not surveyed and not late and time.monotonic() - started > 900:
            late = True
            say(
                "START-UP FAILED: no auxeng_send_surveys run followed the start within 15 minutes"
                + ("" if detect else " (auxeng_detect_ended was never parsed)")
                + f": see {show(logs)}/scheduler.log and dag-processor.log (make logs)"
            )
        time.sleep(3)


def main() -> int:
    home = Path(os.environ["AIRFLOW_HOME"]).resolve()
    port = int(os.environ.get("AUXENG_PORT") or 8080)

    def stop(signum: int, _frame: Any) -> None:
        # Once: make passes a SIGTERM (Ctrl-C: SIGINT) on to this process after the terminal's own,
        # and a second interrupt must not cut the components' shutdown short.
        for each in (signal.SIGINT, signal.SIGTERM):
            signal.signal(each, signal.SIG_IGN)
        raise KeyboardInterrupt

    for each in (signal.SIGINT, signal.SIGTERM):
        signal.signal(each, stop)
    try:
        serve(home, port)
    except KeyboardInterrupt:
        print()
        say("Stopped: every Airflow component is down.")
        return 0
    except Stop as failure:
        say(f"FAILED: {failure}")
        say("Stopped every Airflow component.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
