"""The registry file watcher fires on content changes only."""

from __future__ import annotations

import asyncio
import hashlib
import os

from auxeng.dagkit.triggers import FileContentChangedTrigger


async def _next_event(trigger: FileContentChangedTrigger, edits) -> dict:
    events = trigger.run()
    waiting = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.05)  # let the trigger read its baseline
    for edit in edits:
        edit()
        await asyncio.sleep(0.1)
    try:
        return (await asyncio.wait_for(waiting, timeout=30)).payload
    finally:
        await events.aclose()


def test_fires_with_the_new_hash_when_the_content_changes(tmp_path):
    path = tmp_path / "engagements.yaml"
    path.write_text("teams: []\n")
    trigger = FileContentChangedTrigger(path=str(path), poll_interval=0.02)

    def touch_only():
        os.utime(path, ns=(1, 1))

    def change():
        path.write_text("teams: [x]\n")

    payload = asyncio.run(_next_event(trigger, [touch_only, change]))
    assert payload == {"path": str(path), "sha256": hashlib.sha256(b"teams: [x]\n").hexdigest()}


def test_a_missing_file_is_waited_for(tmp_path):
    path = tmp_path / "later.yaml"
    trigger = FileContentChangedTrigger(path=str(path), poll_interval=0.02)
    payload = asyncio.run(_next_event(trigger, [lambda: path.write_text("a: 1\n")]))
    assert payload["sha256"] == hashlib.sha256(b"a: 1\n").hexdigest()


def test_serializes_to_its_import_path():
    assert FileContentChangedTrigger(path="/r.yaml", poll_interval=5).serialize() == (
        "auxeng.triggers.FileContentChangedTrigger",
        {"path": "/r.yaml", "poll_interval": 5},
    )
