"""Hostile registries loaded into the store, on SQLite and PostgreSQL: every valid row is saved.

PostgreSQL refuses a NUL character in text (and text longer than a column), so one such row
used to fail the whole load; now validation refuses the row and the rest is saved.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from auxeng.registry.parse import parse_registry
from auxeng.registry.sync import sync_registry, sync_registry_file
from auxeng.store.db import session_scope
from auxeng.store.models import EngagementRow, PersonRow, ProgramRow, RegistryLoadRow, TeamRow

HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile" / "registry"
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _stored(engine) -> dict[str, set[str]]:
    with session_scope(engine) as session:
        return {
            "engagements": set(session.scalars(select(EngagementRow.key))),
            "teams": set(session.scalars(select(TeamRow.key))),
            "people": set(session.scalars(select(PersonRow.email))),
            "program": set(session.scalars(select(ProgramRow.name))),
        }


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("name", "stored"),
    [
        (
            "nul_in_title.yaml",
            {
                "engagements": {"ENG-2026-201", "ENG-2026-203"},
                "teams": {"payments"},
                "people": set(),
                "program": {"AuxEng"},
            },
        ),
        (
            "line_breaks_in_names.yaml",
            {
                "engagements": {"ENG-2026-211", "ENG-2026-214"},
                "teams": {"search"},
                "people": {"bob@example.com"},
                "program": set(),
            },
        ),
        (
            "control_in_every_field.yaml",
            {
                "engagements": {"ENG-227"},
                "teams": {"valid"},
                "people": {"carol@example.com"},
                "program": set(),
            },
        ),
    ],
)
def test_a_hostile_row_is_refused_and_every_valid_row_is_saved(store, name, stored):
    result = sync_registry_file(store, HOSTILE / name, now=NOW)
    assert result.problems == [str(p) for p in parse_registry((HOSTILE / name).read_bytes()).problems]
    assert result.problems and all("\n" not in p and "\x00" not in p for p in result.problems)
    assert set(result.created) == stored["engagements"]
    assert _stored(store) == stored
    with session_scope(store) as session:
        load = session.scalars(select(RegistryLoadRow)).one()
        assert load.problems == result.problems
        titles = set(session.scalars(select(EngagementRow.title)))
    assert not any("\x00" in title or "\n" in title for title in titles)


@pytest.mark.timeout(60)
def test_a_20mb_title_is_refused_and_the_rest_is_saved(store):
    document = {
        "program": {"name": "AuxEng"},
        "teams": [{"key": "payments", "name": "Payments"}],
        "engagements": [
            {"key": key, "title": title, "host_team": "payments", "start": "2026-03-02", "end": "2026-04-24"}
            for key, title in (("ENG-1", "Valid"), ("ENG-2", "x" * 20_000_000), ("ENG-3", "Valid too"))
        ],
    }
    result = sync_registry(store, parse_registry(json.dumps(document)), source="test", now=NOW)
    assert result.problems == ["ENG-2 (engagements[1]) title: too long: 20000000 characters (at most 200)"]
    assert sorted(result.created) == ["ENG-1", "ENG-3"]
    assert _stored(store)["engagements"] == {"ENG-1", "ENG-3"}


def test_a_row_that_turns_hostile_keeps_its_last_valid_version(store):
    """A NUL slipped into a stored engagement's title: the stored row is kept, not removed."""
    text = (HOSTILE / "nul_in_title.yaml").read_text()
    clean = text.replace('"Move\\0checkout"', "Move checkout")
    assert clean != text
    sync_registry(store, parse_registry(clean), source="test", now=NOW)
    result = sync_registry(store, parse_registry(text), source="test", now=NOW.replace(hour=10))
    assert result.removed == [] and result.problems
    with session_scope(store) as session:
        row = session.get(EngagementRow, "ENG-2026-202")
        assert (row.title, row.removed_at) == ("Move checkout", None)
