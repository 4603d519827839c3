"""Event triggers (run by Airflow's triggerer) for event-driven scheduling of the pack's DAGs."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

CLASSPATH = "auxeng.triggers.FileContentChangedTrigger"
"""Stored in serialized DAGs and the trigger table: ``auxeng.triggers`` re-exports the class."""


def _content_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


class FileContentChangedTrigger(BaseEventTrigger):
    """Fires each time a file's content changes (not merely its modification time).

    The baseline is the content when the trigger starts; a change made while the
    triggerer was down is caught by the DAG's time schedule instead.
    """

    def __init__(self, path: str, poll_interval: float = 30.0):
        super().__init__()
        self.path = path
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {"path": self.path, "poll_interval": self.poll_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        baseline = await asyncio.to_thread(_content_sha256, self.path)
        last_stat = _stat(self.path)
        while True:
            await asyncio.sleep(self.poll_interval)
            stat = _stat(self.path)
            if stat == last_stat:
                continue
            last_stat = stat
            current = await asyncio.to_thread(_content_sha256, self.path)
            if current is not None and current != baseline:
                self.log.info("%s changed (sha256 %s)", self.path, current)
                baseline = current
                yield TriggerEvent({"path": self.path, "sha256": current})


def _stat(path: str) -> tuple[int, int] | None:
    try:
        result = os.stat(path)
    except OSError:
        return None
    return result.st_mtime_ns, result.st_size
