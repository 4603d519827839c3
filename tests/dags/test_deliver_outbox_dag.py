"""``auxeng_deliver_outbox`` run for real (``dag.test()``) on SQLite and PostgreSQL: the outbox
drained by N mapped ``deliver_outbox`` instances, what arrived at a real SMTP server, and the
``summarize`` task's totals; a dry run; and a run whose drainers fail (the run must be red).

``dag.test()`` runs the mapped instances one after the other in this process: the
first drains what is due, the others find nothing left. Drainers really running at
once (separate processes) are tested in ``tests/delivery/test_parallel_drainers.py``.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from auxeng.messaging.outbox import message_id
from tests.delivery.conftest import NOW, email_message, opt_out, queue, rows
from tests.support.dagruns import run
from tests.web.conftest import registry_store  # noqa: F401

pytestmark = pytest.mark.airflow

DAG_ID = "auxeng_deliver_outbox"


def task_instances(moment) -> tuple[str, dict[tuple[str, int], str], dict[tuple[str, int, str], object]]:
    """The run at ``moment``: its state, each task instance's state and its XComs.

    (:func:`tests.support.dagruns.run` keys states by task_id: mapped instances need the map index.)
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        dag_run = session.scalars(
            select(DagRun).where(DagRun.dag_id == DAG_ID, DagRun.logical_date == moment)
        ).one()
        where = (TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == dag_run.run_id)
        tis = session.scalars(select(TaskInstance).where(*where)).all()
        states = {(ti.task_id, ti.map_index): ti.state for ti in tis}
        labels = {ti.rendered_map_index for ti in tis if ti.task_id == "deliver_outbox"}
        assert labels <= {f"drainer {ti.map_index}" for ti in tis}, labels
        xcoms = {
            (x.task_id, x.map_index, x.key): XComModel.deserialize_value(x)
            for x in session.scalars(
                select(XComModel).where(XComModel.dag_id == DAG_ID, XComModel.run_id == dag_run.run_id)
            )
        }
        return dag_run.state, states, xcoms


def drainer_states(n: int, state: str) -> dict:
    return {
        ("plan_drainers", -1): "success",
        **{("deliver_outbox", i): state for i in range(n)},
        ("summarize", -1): "success" if state == "success" else "failed",
    }


def expected_ids(keys) -> set[str]:
    return {message_id(key, "example.com") for key in keys}


@pytest.fixture
def outbox(pack_env, registry_store, smtp_connection):  # noqa: F811
    """The pack's store (the demo registry loaded) with 30 due emails, 2 for later, 1 opted out."""
    due = [email_message(i) for i in range(30)]
    later = [email_message(100 + i, not_before=NOW + timedelta(days=2)) for i in range(2)]
    opted = email_message(200)
    queue(registry_store, *due, *later, opted)
    opt_out(registry_store, opted.recipient_email, NOW - timedelta(hours=3))
    return registry_store, [m.dedupe_key for m in due]


def test_four_mapped_drainers_send_every_due_message_once(dags, outbox, smtp_server):
    store, due_keys = outbox
    moment = NOW

    states = run(dags, DAG_ID, moment)
    assert states == {"plan_drainers": "success", "deliver_outbox": "success", "summarize": "success"}
    dag_state, tis, xcoms = task_instances(moment)
    assert dag_state == "success"
    assert tis == drainer_states(4, "success")

    received = smtp_server.messages
    assert Counter(m.message_id for m in received) == Counter(expected_ids(due_keys))  # each exactly once
    state = rows(store)
    assert {k: (r.status, r.attempts) for k, r in state.items() if k in due_keys} == {
        k: ("sent", 1) for k in due_keys
    }
    assert Counter(r.status for r in state.values()) == {"sent": 30, "pending": 2, "skipped": 1}

    returned = [xcoms[("deliver_outbox", i, "return_value")] for i in range(4)]
    assert [s["drainer"] for s in returned] == [0, 1, 2, 3]
    assert [xcoms[("deliver_outbox", i, "summary")] for i in range(4)] == returned
    assert sum(s["sent"].get("email", 0) for s in returned) == 30
    totals = xcoms[("summarize", -1, "return_value")]
    assert totals["sent"] == {"email": 30}
    assert totals["by_drainer"] == {str(i): s["sent"].get("email", 0) for i, s in enumerate(returned)}
    assert sum(totals["by_drainer"].values()) == 30
    assert totals["skipped"] == {"email": 1} and totals["skipped_by"] == {"opted_out": 1}
    assert totals["failed"] == {} and totals["deferred"] == {}
    assert (totals["drainers"], totals["reported"]) == (4, 4)
    assert totals["pending"] == {"due": {}, "later": {"email": 2}}
    assert "incomplete" not in totals

    # A re-run (the next quarter hour) finds nothing due and sends nothing again.
    later = moment + timedelta(minutes=15)
    run(dags, DAG_ID, later, drainers=2)
    _, tis, xcoms = task_instances(later)
    assert tis == drainer_states(2, "success")
    assert xcoms[("summarize", -1, "return_value")]["sent"] == {}
    assert len(smtp_server.messages) == 30


def test_a_dry_run_previews_once_and_sends_nothing(dags, outbox, smtp_server):
    store, _ = outbox
    moment = NOW + timedelta(minutes=30)

    run(dags, DAG_ID, moment, dry_run=True, drainers=3)
    _, tis, xcoms = task_instances(moment)
    assert tis == drainer_states(3, "success")
    assert smtp_server.messages == []
    assert Counter(r.status for r in rows(store).values()) == {"pending": 33}
    assert [("idle" in xcoms[("deliver_outbox", i, "return_value")]) for i in range(3)] == [False, True, True]
    totals = xcoms[("summarize", -1, "return_value")]
    assert totals["dry_run"] is True and totals["sent"] == {}
    assert totals["would_send"] == {"email": {"survey_invite": 30}}
    assert totals["skipped_by"] == {"opted_out": 1}
    assert totals["pending"] == {"due": {"email": 31}, "later": {"email": 2}}


def test_drainers_that_cannot_send_fail_the_run_and_the_next_run_sends_everything(dags, outbox, smtp_server):
    store, due_keys = outbox
    dag = dags.dags[DAG_ID]
    for task in dag.tasks:
        task.retries = 0
    smtp_server.stop()  # SMTP down: connections refused
    moment = NOW + timedelta(minutes=45)

    dag.test(logical_date=moment, run_conf={"dry_run": False, "drainers": 2})
    dag_state, tis, xcoms = task_instances(moment)
    assert dag_state == "failed"  # summarize (the only leaf) fails: the run is red
    assert tis == drainer_states(2, "failed")
    published = [xcoms[("deliver_outbox", i, "summary")] for i in range(2)]
    assert published[0]["incomplete"] and "left pending" in published[0]["incomplete"][0]
    assert all(("deliver_outbox", i, "return_value") not in xcoms for i in range(2))
    assert ("summarize", -1, "return_value") not in xcoms
    state = rows(store)
    assert {(r.status, r.attempts) for k, r in state.items() if k in due_keys} == {("pending", 0)}
    assert all(r.claimed_until is None for r in state.values())  # leases released on the way out

    smtp_server.start()
    run(dags, DAG_ID, moment + timedelta(minutes=15))
    assert Counter(m.message_id for m in smtp_server.messages) == Counter(expected_ids(due_keys))
