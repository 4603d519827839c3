"""A calm first start: the real ``make run``, as a newcomer runs it, on a fresh Airflow home.

Starts ``make run`` (``scripts/run_local.py``) in a throw-away ``AIRFLOW_HOME`` on a free port
and reads what it prints. Checked: exactly one ``UI ready at http://localhost:PORT (login admin /
admin)`` line; a survey invitation lands in the dev outbox and the start-up story ends with the
triggered ``auxeng_deliver_outbox`` run; no run, task instance or try failed (the metadata DB:
no task instance failed, up for retry or on a second try); no line says FAILED or RETRYING. Then
it stops ``make run`` the way Ctrl-C does and checks that no process of the run is left.

Printed: seconds to the ready line and to the first invitation, and the lines ``make run``
printed. Exit 1 on a failed check. The home (logs, dev outbox) is removed unless ``--keep``.

Usage: ``.venv/bin/python -m tests.e2e.first_start [--keep]``
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from tests.support.doc_outputs import Block, marked_blocks, mismatch
from tests.support.smtp_server import free_port

REPO = Path(__file__).resolve().parents[2]
_CLOCK = re.compile(r"^\[\d\d:\d\d:\d\d\]")
_DURATION = re.compile(r" in \d+ s\b")
READY_WITHIN = 420  # seconds from the start to the ready line (a loaded 2-core machine)
INVITED_WITHIN = 240  # seconds from the ready line to the first invitation
STORY_WITHIN = 300  # seconds from the ready line to the end of the triggered delivery run
STORY_DONE = "auxeng_deliver_outbox (manual) "


class Failed(Exception):
    """A check failed."""


def say(message: str) -> None:
    print(f"[first-start {time.strftime('%H:%M:%S')}] {message}", flush=True)


def check(ok: bool, message: str) -> None:
    if not ok:
        raise Failed(message)
    say(f"ok: {message}")


class MakeRun:
    """``make run`` in its own process group, its output collected line by line with the time."""

    def __init__(self, home: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AUXENG_"))}
        env.update(AIRFLOW_HOME=str(home), AUXENG_PORT=str(port))
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.lines: list[tuple[float, str]] = []
        self._new: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))
            self._new.put(line)

    def wait_line(self, starts: str, timeout: float) -> float:
        """Seconds since the start at which a line starting with ``starts`` was printed."""
        deadline = time.monotonic() + timeout
        while True:
            for at, line in list(self.lines):
                if line.partition("] ")[2].startswith(starts) or line.startswith(starts):
                    return at
            if time.monotonic() >= deadline:
                break
            if self.process.poll() is not None:
                raise Failed(f"make run exited with {self.process.returncode}:\n{self.text()}")
            time.sleep(1)
        raise Failed(f"no line starting {starts!r} within {timeout:.0f} s:\n{self.text()}")

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def stop(self) -> int:
        """Ctrl-C's way: SIGINT to the process group; its exit code."""
        with_timeout = 90
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(with_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise Failed(f"make run did not stop within {with_timeout} s of SIGINT") from None


def first_invitation(outbox: Path, timeout: float, started: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if next(outbox.glob("email/*-survey_invite-*.eml"), None):
            return time.monotonic() - started
        time.sleep(1)
    raise Failed(f"no survey invitation in {outbox} within {timeout:.0f} s")


def unhappy_task_instances(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT dag_id, run_id, task_id, map_index, state, try_number FROM task_instance"
            " WHERE state IN ('failed', 'up_for_retry', 'upstream_failed') OR try_number > 1"
        ).fetchall()


def leftovers(home: Path) -> list[str]:
    """Processes still running with this run's Airflow home."""
    left = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if process.environ().get("AIRFLOW_HOME") == str(home):
                left.append(f"{process.pid} {' '.join(process.info['cmdline'] or [])[:80]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return left


def quoted_samples() -> list[Block]:
    """The docs' samples of what ``make run`` prints (``<!-- output: make-run -->``)."""
    samples = [block for block in marked_blocks() if block.source == "make-run"]
    check(bool(samples), "the docs quote make run's output")
    return samples


def timeless(line: str) -> str:
    """``line`` without its clock time and a run's seconds, which differ from run to run."""
    return _DURATION.sub(" in N s", _CLOCK.sub("[hh:mm:ss]", line))


def as_documented(text: str, port: int, home: Path) -> list[str]:
    """``make run``'s lines as the docs show them: port 8080, the home as ``.airflow``, timeless."""
    text = text.replace(f"localhost:{port}", "localhost:8080").replace(str(home), ".airflow")
    return [timeless(line) for line in text.splitlines()]


def first_start(home: Path) -> None:
    port = free_port()
    say(f"make run in {home} on port {port}")
    run = MakeRun(home, port)
    try:
        ready = run.wait_line("UI ready at", READY_WITHIN)
        invited = first_invitation(home / "dev-outbox", INVITED_WITHIN, run.started)
        done = run.wait_line(STORY_DONE, STORY_WITHIN)
        printed = len(run.lines)
        say(
            f"UI ready after {ready:.0f} s, first invitation after {invited:.0f} s "
            f"({invited - ready:.0f} s after ready), start-up story done after {done:.0f} s; "
            f"{printed} lines printed by then"
        )
    finally:
        code = run.stop()
    text = run.text()
    say(f"make run printed {len(run.lines)} lines in all:\n{text}")
    ready_lines = [line for _, line in run.lines if line.startswith("UI ready at")]
    check(
        ready_lines == [f"UI ready at http://localhost:{port} (login admin / admin)"],
        f"one ready line: {ready_lines}",
    )
    check(run.wait_line(STORY_DONE + "success", 0) > 0, "the triggered auxeng_deliver_outbox run succeeded")
    check("FAILED" not in text and "RETRYING" not in text, "no run failed and no task was retried (output)")
    unhappy = unhappy_task_instances(home / "airflow.db")
    check(not unhappy, f"no task instance failed or was retried (metadata DB): {unhappy}")
    # GNU make ends itself by the SIGINT it got once its recipe is done, as after any Ctrl-C.
    check(code in (0, -signal.SIGINT), f"make run stopped cleanly on SIGINT (exit {code})")
    left = leftovers(home)
    check(not left, f"no process of the run is left: {left}")
    for block in quoted_samples():
        why = mismatch([timeless(line) for line in block.lines], as_documented(text, port, home))
        check(why is None, f"{block.name} quotes what make run prints: {why}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the Airflow home (logs, dev outbox)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="auxeng-first-start-"))
    started = time.monotonic()
    try:
        first_start(home)
    except Failed as failure:
        say(f"FAIL: {failure} (logs: {home / 'logs'})")
        return 1
    else:
        say(f"PASS in {time.monotonic() - started:.0f} s")
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
