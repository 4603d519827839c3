"""Stopping the Airflow components that ``make run`` and ``make e2e`` start, each in its own
process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable


def stop_process_groups(processes: Iterable[subprocess.Popen], grace: float = 20) -> None:
    """SIGTERM to each process's group, up to ``grace`` seconds for all of them to exit, then
    SIGKILL to the groups, so that what did not stop, and its children, go too."""
    processes = list(processes)
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.1, deadline - time.monotonic()))
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
