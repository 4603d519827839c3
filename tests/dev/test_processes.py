"""Stopping process groups (``make run``'s and ``make e2e``'s Airflow components)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from auxeng.dev.processes import stop_process_groups

# A parent that starts a child in its group, says so, and ignores SIGTERM when asked to.
PARENT = """
import signal, subprocess, sys, time
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def _group(mode: str) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    child = int(process.stdout.readline())
    return process, child


def _gone(pid: int) -> bool:
    """Whether ``pid`` has ended (an orphan may stay a zombie: nothing here reaps it)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_every_group_stops_on_sigterm_with_its_children():
    groups = [_group("polite"), _group("polite")]
    started = time.monotonic()
    stop_process_groups([process for process, _ in groups], grace=20)
    assert time.monotonic() - started < 10
    for process, child in groups:
        assert process.returncode is not None
        assert _gone(child)


def test_a_group_that_ignores_sigterm_is_killed_after_the_grace():
    process, child = _group("stubborn")
    started = time.monotonic()
    stop_process_groups([process], grace=1)
    assert time.monotonic() - started >= 1
    assert process.returncode == -9
    assert _gone(child)
