"""The mass-removal guard: a load that would remove too many engagements is refused as a whole and
changes nothing, until it is confirmed (``allow_mass_removal``, ``--allow-mass-removal``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from auxeng import cli
from auxeng.registry.guard import MassRemovalRefused, RemovalGuard
from auxeng.registry.parse import parse_registry
from auxeng.registry.sync import sync_registry, sync_registry_file
from auxeng.settings import load_settings
from auxeng.store.db import session_scope
from auxeng.store.models import (
    EngagementRevisionRow,
    EngagementRow,
    MemberRow,
    PersonRow,
    ProgramRow,
    RegistryLoadRow,
    TeamRow,
)
from tests.conftest import DEMO_REGISTRY
from tests.support.registry_edits import (
    drop_engagement,
    edit_engagement,
    first_engagements,
    with_engagements,
)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
DEMO_TEXT = DEMO_REGISTRY.read_text()
EMPTIED = with_engagements(DEMO_TEXT, "engagements: []\n")
MALFORMED = with_engagements(
    DEMO_TEXT,
    "engagements:\n  - 42\n  - just text\n  - {title: Rows without a key, host_team: payments-core}\n",
)
DEFAULT = RemovalGuard()


# --- how many is too many (pure) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("removing", "live", "refused"),
    [
        (0, 0, False),  # an empty store
        (0, 10, False),
        (1, 1, False),  # 100%, but fewer than 3
        (2, 2, False),  # every live engagement of a tiny program: still fewer than 3
        (3, 3, True),
        (1, 10, False),
        (2, 10, False),  # exactly 20%, and fewer than 3
        (3, 10, True),  # 30%
        (3, 15, False),  # exactly 20%: allowed
        (4, 15, True),  # 26.7%
        (6, 30, False),  # exactly 20%
        (7, 30, True),
        (200, 1000, False),  # exactly 20% of a large program
        (201, 1000, True),
        (40, 40, True),  # an emptied list
    ],
)
def test_the_guard_refuses_more_than_the_share_and_at_least_the_minimum(removing, live, refused):
    assert DEFAULT.refuses(removing, live) is refused


@pytest.mark.parametrize(
    ("guard", "removing", "live", "refused"),
    [
        (RemovalGuard(share=1.0, minimum=3), 40, 40, False),  # share 1: never refuses
        (RemovalGuard(share=0.0, minimum=1), 1, 40, True),  # every removal must be confirmed
        (RemovalGuard(share=0.0, minimum=1), 0, 40, False),
        (RemovalGuard(share=0.5, minimum=10), 9, 10, False),
        (RemovalGuard(share=0.5, minimum=10), 10, 10, True),
        (RemovalGuard(share=0.3, minimum=1), 3, 10, False),  # 3/10 is exactly 0.3 as a float quotient
        (RemovalGuard(share=0.1, minimum=1), 1, 10, False),
    ],
)
def test_the_guard_at_other_thresholds(guard, removing, live, refused):
    assert guard.refuses(removing, live) is refused


def test_the_report_names_counts_the_first_keys_and_how_to_confirm():
    keys = [f"ENG-{n:03}" for n in range(12, 0, -1)]
    report = MassRemovalRefused(
        source="reg.yaml", removing=keys, live=20, guard=DEFAULT, problems=["engagements[0] key: missing"]
    ).report()
    assert report.splitlines()[:2] == [
        "reg.yaml: load refused: it would remove 12 of the 20 live engagements (the guard stops more "
        "than 20% of the live engagements and at least 3). Nothing was changed.",
        "Would remove: ENG-001, ENG-002, ENG-003, ENG-004, ENG-005 and 7 more.",
    ]
    assert "allow_mass_removal" in report and "--allow-mass-removal" in report
    assert report.endswith("The registry also has 1 problem(s):\n  - engagements[0] key: missing")


def test_the_thresholds_are_settings_with_documented_defaults():
    assert RemovalGuard.from_settings(load_settings({})) == RemovalGuard(share=0.2, minimum=3)
    changed = load_settings(
        {"AUXENG_REGISTRY_REMOVAL_GUARD_SHARE": "0.5", "AUXENG_REGISTRY_REMOVAL_GUARD_MIN": "10"}
    )
    assert RemovalGuard.from_settings(changed) == RemovalGuard(share=0.5, minimum=10)


# --- loads against the store (SQLite and PostgreSQL) -----------------------------------------------


def _snapshot(engine) -> dict:
    """Everything a load can change."""
    with session_scope(engine) as session:

        def rows(*columns):
            return sorted(tuple(map(str, row)) for row in session.execute(select(*columns)))

        return {
            "engagements": rows(
                EngagementRow.key,
                EngagementRow.title,
                EngagementRow.end_date,
                EngagementRow.removed_at,
                EngagementRow.revision,
                EngagementRow.fingerprint,
            ),
            "members": session.scalar(select(func.count()).select_from(MemberRow)),
            "revisions": session.scalar(select(func.count()).select_from(EngagementRevisionRow)),
            "teams": rows(TeamRow.key, TeamRow.name, TeamRow.removed_at),
            "people": rows(PersonRow.email, PersonRow.name),
            "program": session.get(ProgramRow, 1).name,
            "loads": session.scalar(select(func.count()).select_from(RegistryLoadRow)),
        }


def _removed(engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).where(EngagementRow.removed_at.is_not(None)))


@pytest.fixture
def loaded(store):
    """The store with the demo registry (40 live engagements) loaded."""
    sync_registry(store, parse_registry(DEMO_TEXT), source="demo", now=NOW)
    return store


def test_an_emptied_engagements_list_is_refused_and_changes_nothing(loaded, caplog):
    before = _snapshot(loaded)
    with (
        caplog.at_level(logging.WARNING, "auxeng.registry.sync"),
        pytest.raises(MassRemovalRefused) as refused,
    ):
        sync_registry(loaded, parse_registry(EMPTIED), source="reg.yaml", now=LATER)
    assert (len(refused.value.removing), refused.value.live) == (40, 40)
    report = str(refused.value)
    assert report.startswith("reg.yaml: load refused: it would remove 40 of the 40 live engagements")
    assert (
        "Would remove: ENG-2025-001, ENG-2025-002, ENG-2025-003, ENG-2025-004, ENG-2025-005 and 35 more"
        in (report)
    )
    assert _snapshot(loaded) == before
    assert "Registry load refused: reg.yaml" in caplog.text
    assert "would remove 40 of 40 live engagements; nothing changed" in caplog.text


def test_an_all_malformed_engagements_list_is_refused_with_its_problems(loaded):
    before = _snapshot(loaded)
    with pytest.raises(MassRemovalRefused) as refused:
        sync_registry(loaded, parse_registry(MALFORMED), source="reg.yaml", now=LATER)
    assert len(refused.value.removing) == 40
    assert refused.value.problems == [
        "engagements[0]: expected a mapping, got a number",
        "engagements[1]: expected a mapping, got a string",
        "engagements[2] key: missing",
    ]
    assert "The registry also has 3 problem(s):\n  - engagements[0]: expected a mapping" in str(refused.value)
    assert _snapshot(loaded) == before


def test_a_refused_load_saves_none_of_its_valid_changes_either(loaded):
    """The whole load is refused: its valid creates, updates, team and program changes wait too."""
    text = first_engagements(DEMO_TEXT, 5)
    text = edit_engagement(text, "ENG-2025-001", "end: 2025-07-11", "end: 2025-07-18")
    text = text.replace("name: AuxEng", "name: AuxEng Renamed", 1)
    first = DEMO_TEXT[DEMO_TEXT.index("  - key: ENG-2025-001\n") : DEMO_TEXT.index("  - key: ENG-2025-002\n")]
    text += first.replace("ENG-2025-001", "ENG-2027-001")
    assert len(parse_registry(text).engagements) == 6 and not parse_registry(text).problems
    before = _snapshot(loaded)
    with pytest.raises(MassRemovalRefused) as refused:
        sync_registry(loaded, parse_registry(text), source="reg.yaml", now=LATER)
    assert (len(refused.value.removing), refused.value.live) == (35, 40)
    assert _snapshot(loaded) == before


def test_removing_one_of_ten_is_an_ordinary_load(store):
    sync_registry(store, parse_registry(first_engagements(DEMO_TEXT, 10)), source="demo", now=NOW)
    result = sync_registry(store, parse_registry(first_engagements(DEMO_TEXT, 9)), source="demo", now=LATER)
    assert result.removed == ["ENG-2025-010"]
    assert _removed(store) == 1


def test_removing_three_of_ten_is_refused_and_then_confirmed(store):
    sync_registry(store, parse_registry(first_engagements(DEMO_TEXT, 10)), source="demo", now=NOW)
    seven = parse_registry(first_engagements(DEMO_TEXT, 7))
    before = _snapshot(store)
    with pytest.raises(MassRemovalRefused, match="remove 3 of the 10 live engagements"):
        sync_registry(store, seven, source="demo", now=LATER)
    assert _snapshot(store) == before
    result = sync_registry(store, seven, source="demo", now=LATER, allow_mass_removal=True)
    assert result.removed == ["ENG-2025-008", "ENG-2025-009", "ENG-2025-010"]
    assert _removed(store) == 3


def test_exactly_the_share_is_allowed_and_removed_engagements_do_not_count_as_live(store):
    sync_registry(store, parse_registry(first_engagements(DEMO_TEXT, 15)), source="demo", now=NOW)
    result = sync_registry(store, parse_registry(first_engagements(DEMO_TEXT, 12)), source="demo", now=LATER)
    assert len(result.removed) == 3  # 3 of 15: exactly 20%
    with pytest.raises(MassRemovalRefused, match="remove 3 of the 12 live engagements"):
        sync_registry(store, parse_registry(first_engagements(DEMO_TEXT, 9)), source="demo", now=LATER)


def test_a_confirmed_mass_removal_marks_every_engagement_removed(loaded):
    result = sync_registry(
        loaded, parse_registry(EMPTIED), source="reg.yaml", now=LATER, allow_mass_removal=True
    )
    assert len(result.removed) == 40
    assert _removed(loaded) == 40
    with session_scope(loaded) as session:
        assert session.scalar(select(func.count()).where(EngagementRevisionRow.event == "removed")) == 40
    back = sync_registry(loaded, parse_registry(DEMO_TEXT), source="demo", now=LATER)
    assert len(back.restored) == 40  # putting them back needs no confirmation


def test_the_thresholds_come_from_the_settings(loaded, monkeypatch):
    monkeypatch.setenv("AUXENG_REGISTRY_REMOVAL_GUARD_SHARE", "0")
    monkeypatch.setenv("AUXENG_REGISTRY_REMOVAL_GUARD_MIN", "1")
    with pytest.raises(MassRemovalRefused, match="remove 1 of the 40 live engagements"):
        sync_registry(
            loaded, parse_registry(drop_engagement(DEMO_TEXT, "ENG-2025-002")), source="r", now=LATER
        )
    monkeypatch.setenv("AUXENG_REGISTRY_REMOVAL_GUARD_SHARE", "1")
    assert len(sync_registry(loaded, parse_registry(EMPTIED), source="r", now=LATER).removed) == 40


def test_a_refused_file_is_refused_again_never_skipped_until_confirmed(loaded, tmp_path):
    path = tmp_path / "engagements.yaml"
    path.write_text(DEMO_TEXT)
    assert sync_registry_file(loaded, path, now=NOW, force=True).unchanged == 40
    path.write_text(EMPTIED)
    for _ in range(2):  # the hourly run: not "unchanged since the last load"
        with pytest.raises(MassRemovalRefused):
            sync_registry_file(loaded, path, now=LATER)
    assert _removed(loaded) == 0
    confirmed = sync_registry_file(loaded, path, now=LATER, allow_mass_removal=True)
    assert len(confirmed.removed) == 40 and not confirmed.skipped
    again = sync_registry_file(loaded, path, now=LATER)
    assert again.skipped and again.load_id == confirmed.load_id


def test_the_cli_refuses_then_confirms_with_allow_mass_removal(loaded, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "open_store", lambda *args: loaded)
    path = tmp_path / "engagements.yaml"
    path.write_text(EMPTIED)
    before = _snapshot(loaded)

    assert cli.main(["sync-registry", "--path", str(path)]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"{path}: load refused: it would remove 40 of the 40 live engagements")
    assert "--allow-mass-removal" in err
    assert _snapshot(loaded) == before

    assert cli.main(["sync-registry", "--path", str(path), "--allow-mass-removal"]) == 0

    out, err = capsys.readouterr()
    assert "0 created, 0 updated, 0 unchanged, 40 removed, 0 restored" in out
    assert _removed(loaded) == 40
