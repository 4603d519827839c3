"""Loading the registry into the store: idempotent, history-keeping, never destructive."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from auxeng.registry.parse import load_registry_file, parse_registry
from auxeng.registry.sync import sync_registry, sync_registry_file
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
from tests.support.registry_edits import drop_engagement, edit_engagement

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
DEMO_TEXT = DEMO_REGISTRY.read_text()


def _count(engine, model) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def _engagement(engine, key) -> EngagementRow:
    with session_scope(engine) as session:
        return session.get(EngagementRow, key)


def _revisions(engine, key) -> list[tuple[int, str, dict]]:
    with session_scope(engine) as session:
        rows = session.scalars(
            select(EngagementRevisionRow)
            .where(EngagementRevisionRow.engagement_key == key)
            .order_by(EngagementRevisionRow.revision)
        )
        return [(r.revision, r.event, r.changes) for r in rows]


def test_demo_registry_loads_everything(store):
    result = sync_registry(store, load_registry_file(DEMO_REGISTRY), source="demo", now=NOW)
    assert (len(result.created), len(result.updated), result.problems) == (40, 0, [])
    assert _count(store, EngagementRow) == 40
    assert _count(store, TeamRow) == 12
    assert _count(store, PersonRow) == 59
    assert _count(store, MemberRow) == sum(
        len(e.members) for e in load_registry_file(DEMO_REGISTRY).engagements.values()
    )
    with session_scope(store) as session:
        program = session.get(ProgramRow, 1)
        assert program.stakeholders == [
            "vp-eng@example.com",
            "dana.ruiz@example.com",
            "sam.okoro@example.com",
        ]
        assert program.managers[0] == {
            "email": "dana.ruiz@example.com",
            "name": "Dana Ruiz",
            "slack_id": "U0DANA",
        }


def test_reloading_the_same_file_changes_nothing(store):
    registry = parse_registry(DEMO_TEXT)
    sync_registry(store, registry, source="demo", now=NOW)
    again = sync_registry(store, registry, source="demo", now=LATER)
    assert again.skipped and again.created == [] and again.updated == []
    forced = sync_registry(store, registry, source="demo", now=LATER, force=True)
    assert (forced.created, forced.updated, forced.removed, forced.unchanged) == ([], [], [], 40)
    assert _count(store, EngagementRevisionRow) == 40
    assert _engagement(store, "ENG-2025-001").updated_at == NOW


def test_editing_an_engagement_keeps_its_history(store):
    sync_registry(store, parse_registry(DEMO_TEXT), source="demo", now=NOW)
    edited = edit_engagement(DEMO_TEXT, "ENG-2026-033", "end: 2026-11-25", "end: 2026-12-04")
    edited = edit_engagement(
        edited,
        "ENG-2026-033",
        "lead: true}\n",
        "lead: true}\n      - {email: bob.martin@example.com, role: advisor}\n",
    )
    result = sync_registry(store, parse_registry(edited), source="demo", now=LATER)
    assert result.updated == ["ENG-2026-033"]
    row = _engagement(store, "ENG-2026-033")
    assert (row.end_date.isoformat(), row.revision) == ("2026-12-04", 2)
    revisions = _revisions(store, "ENG-2026-033")
    assert [r[:2] for r in revisions] == [(1, "created"), (2, "updated")]
    assert revisions[1][2]["end"] == ["2026-11-25", "2026-12-04"]
    assert "auxeng:bob.martin@example.com:advisor" in revisions[1][2]["members"][1]


def test_changing_a_member_role_updates_in_place(store):
    sync_registry(store, parse_registry(DEMO_TEXT), source="demo", now=NOW)
    edited = edit_engagement(
        DEMO_TEXT,
        "ENG-2025-001",
        "alice.chen@example.com, role: engineer",
        "alice.chen@example.com, role: advisor",
    )
    result = sync_registry(store, parse_registry(edited), source="demo", now=LATER)
    assert result.updated == ["ENG-2025-001"]
    with session_scope(store) as session:
        roles = dict(
            session.execute(
                select(MemberRow.email, MemberRow.role).where(MemberRow.engagement_key == "ENG-2025-001")
            ).all()
        )
    assert roles["alice.chen@example.com"] == "advisor"


def test_removed_engagement_is_marked_not_deleted_and_can_come_back(store):
    sync_registry(store, parse_registry(DEMO_TEXT), source="demo", now=NOW)
    without = drop_engagement(DEMO_TEXT, "ENG-2025-002")
    result = sync_registry(store, parse_registry(without), source="demo", now=LATER)
    assert result.removed == ["ENG-2025-002"]
    row = _engagement(store, "ENG-2025-002")
    assert row.removed_at == LATER
    assert _count(store, EngagementRow) == 40
    back = sync_registry(store, parse_registry(DEMO_TEXT), source="demo", now=LATER)
    assert back.restored == ["ENG-2025-002"]
    assert _engagement(store, "ENG-2025-002").removed_at is None
    assert [r[1] for r in _revisions(store, "ENG-2025-002")] == ["created", "removed", "restored"]


def test_invalid_rows_are_reported_and_valid_rows_saved(store):
    sync_registry(store, parse_registry(DEMO_TEXT), source="demo", now=NOW)
    broken = edit_engagement(DEMO_TEXT, "ENG-2026-033", "end: 2026-11-25", "end: 2026-02-30")
    broken = edit_engagement(broken, "ENG-2025-001", "end: 2025-07-11", "end: 2025-07-18")
    result = sync_registry(store, parse_registry(broken), source="demo", now=LATER)
    assert result.problems == [
        "ENG-2026-033 (engagements[36]) end: bad date '2026-02-30' (day is out of range for month)"
    ]
    assert result.updated == ["ENG-2025-001"]
    assert result.removed == []
    assert _engagement(store, "ENG-2026-033").end_date.isoformat() == "2026-11-25"
    with session_scope(store) as session:
        load = session.scalars(select(RegistryLoadRow).order_by(RegistryLoadRow.id.desc())).first()
        assert load.problems == result.problems


def test_a_broken_file_changes_nothing(store):
    sync_registry(store, parse_registry(DEMO_TEXT), source="demo", now=NOW)
    for text in ("", "engagements: [unclosed", "program: {name: X}\nteams: []\nengagements: {}\n"):
        result = sync_registry(store, parse_registry(text), source="broken", now=LATER)
        assert result.problems and result.removed == []
    assert _count(store, EngagementRow) == 40
    with session_scope(store) as session:
        assert session.scalar(select(func.count()).where(EngagementRow.removed_at.is_not(None))) == 0
        assert session.scalar(select(func.count()).where(TeamRow.removed_at.is_not(None))) == 0


def test_an_unchanged_file_is_skipped_without_parsing(store, tmp_path, monkeypatch):
    import auxeng.registry.sync

    path = tmp_path / "engagements.yaml"
    path.write_text(DEMO_TEXT)
    first = sync_registry_file(store, path, now=NOW)
    assert len(first.created) == 40

    def no_parse(_data):
        raise AssertionError("an unchanged file must not be parsed")

    monkeypatch.setattr(auxeng.registry.sync, "parse_registry", no_parse)
    again = sync_registry_file(store, path, now=LATER)
    assert again.skipped
    assert again.load_id == first.load_id


def test_a_missing_file_is_a_problem_and_changes_nothing(store, tmp_path):
    path = tmp_path / "engagements.yaml"
    path.write_text(DEMO_TEXT)
    sync_registry_file(store, path, now=NOW)
    path.unlink()
    result = sync_registry_file(store, path, now=LATER)
    assert result.problems == [f"file: cannot read {path}: No such file or directory"]
    assert result.removed == []
    with session_scope(store) as session:
        assert session.scalar(select(func.count()).where(EngagementRow.removed_at.is_not(None))) == 0
