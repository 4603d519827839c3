"""The pack's DAGs run for real (``dag.test()``) against a migrated Airflow metadata DB and
the engagement store on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from auxeng.store.db import get_engine, session_scope
from auxeng.store.models import EngagementRow, RegistryLoadRow
from tests.conftest import REPO
from tests.support.registry_edits import edit_engagement, with_engagements

pytestmark = pytest.mark.airflow

ENDED_URI = "auxeng://engagements/ended"


@pytest.fixture(scope="module")
def dags(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"), bundle_name="dags-folder")
    assert bag.import_errors == {}
    return bag


def _run(dags, dag_id: str, day: datetime, **conf):
    run = dags.dags[dag_id].test(logical_date=day, run_conf=conf or None)
    return run, {ti.task_id: ti.state for ti in run.get_task_instances()}


def _asset_events(since_id: int = 0) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.id, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri == ENDED_URI, AssetEvent.id > since_id)
            .order_by(AssetEvent.id)
        ).all()
    return [{"id": row.id, **row.extra} for row in rows]


def _last_event_id() -> int:
    events = _asset_events()
    return events[-1]["id"] if events else 0


def _store_count(store_url, *where) -> int:
    with session_scope(get_engine(store_url)) as session:
        return session.scalar(select(func.count()).select_from(EngagementRow).where(*where))


def test_sync_registry_loads_the_demo_then_changes_nothing(dags, pack_env, store_url):
    _, states = _run(dags, "auxeng_sync_registry", datetime(2026, 11, 26, 5, tzinfo=UTC))
    assert states == {"load_registry": "success"}
    assert _store_count(store_url) == 40
    _, states = _run(dags, "auxeng_sync_registry", datetime(2026, 11, 26, 6, tzinfo=UTC))
    assert states == {"load_registry": "success"}
    with session_scope(get_engine(store_url)) as session:
        assert session.scalar(select(func.count()).select_from(RegistryLoadRow)) == 1


def test_sync_registry_fails_with_the_report_after_saving_valid_rows(dags, pack_env, store_url):
    text = pack_env.read_text()
    text = edit_engagement(text, "ENG-2026-033", "host_team: carrier-integrations", "host_team: nowhere")
    text = edit_engagement(text, "ENG-2026-039", "end: 2026-11-20", "end: 2026-09-01")
    pack_env.write_text(text)
    run, states = _run(dags, "auxeng_sync_registry", datetime(2026, 11, 26, 5, tzinfo=UTC))
    assert states == {"load_registry": "failed"}
    assert run.state == "failed"
    assert _store_count(store_url) == 38
    with session_scope(get_engine(store_url)) as session:
        load = session.scalars(select(RegistryLoadRow)).one()
    assert load.problems == [
        "ENG-2026-039 (engagements[31]) end: 2026-09-01 is before start 2026-09-14",
        "ENG-2026-033 (engagements[36]) host_team: unknown team 'nowhere'",
    ]


def test_detect_ended_marks_announces_once_and_reruns_change_nothing(dags, pack_env, store_url):
    _run(dags, "auxeng_sync_registry", datetime(2026, 11, 26, 5, tzinfo=UTC))
    before = _last_event_id()
    _, states = _run(dags, "auxeng_detect_ended", datetime(2026, 11, 26, 5, 30, tzinfo=UTC))
    assert states == {"mark_ended": "success", "announce_ended": "success"}
    events = _asset_events(before)
    assert len(events) == 1
    assert events[0]["as_of"] == "2026-11-26"
    announced = [e["key"] for e in events[0]["engagements"]]
    assert len(announced) == 32 and "ENG-2026-033" in announced
    assert "ENG-2025-007" not in announced  # cancelled
    assert _store_count(store_url, EngagementRow.ended_at.is_not(None)) == 32

    run, states = _run(dags, "auxeng_detect_ended", datetime(2026, 11, 26, 5, 31, tzinfo=UTC))
    assert states == {"mark_ended": "success", "announce_ended": "skipped"}
    assert run.state == "success"
    assert _asset_events(before)[1:] == []

    _run(dags, "auxeng_detect_ended", datetime(2026, 11, 28, 5, 30, tzinfo=UTC))
    assert [e["key"] for e in _asset_events(before)[1]["engagements"]] == ["ENG-2026-034"]


def test_sync_registry_refuses_a_mass_removal_until_the_run_confirms_it(dags, pack_env, store_url, caplog):
    _run(dags, "auxeng_sync_registry", datetime(2026, 11, 26, 5, tzinfo=UTC))
    pack_env.write_text(with_engagements(pack_env.read_text(), "engagements: []\n"))

    run, states = _run(
        dags,
        "auxeng_sync_registry",
        datetime(2026, 11, 26, 6, tzinfo=UTC),
        force=False,
        allow_mass_removal=False,
    )

    assert states == {"load_registry": "failed"} and run.state == "failed"
    [failure] = [
        r.getMessage() for r in caplog.records if r.name == "auxeng.failures" and r.levelname == "ERROR"
    ]
    assert "task_id=load_registry" in failure and "try=1 " in failure  # failed at once, not retried
    assert "error=RegistryMassRemoval: " in failure
    assert "load refused: it would remove 40 of the 40 live engagements" in failure
    assert (
        "Would remove: ENG-2025-001, ENG-2025-002, ENG-2025-003, ENG-2025-004, ENG-2025-005 and 35 more"
        in failure
    )
    assert "allow_mass_removal" in failure
    assert _store_count(store_url, EngagementRow.removed_at.is_not(None)) == 0
    with session_scope(get_engine(store_url)) as session:
        assert session.scalar(select(func.count()).select_from(RegistryLoadRow)) == 1

    _, states = _run(
        dags,
        "auxeng_sync_registry",
        datetime(2026, 11, 26, 7, tzinfo=UTC),
        force=False,
        allow_mass_removal=True,
    )

    assert states == {"load_registry": "success"}
    assert _store_count(store_url, EngagementRow.removed_at.is_not(None)) == 40

    _, states = _run(  # the confirmed file is now the last load: unchanged, no confirmation needed
        dags,
        "auxeng_sync_registry",
        datetime(2026, 11, 26, 8, tzinfo=UTC),
        force=False,
        allow_mass_removal=False,
    )

    assert states == {"load_registry": "success"}
