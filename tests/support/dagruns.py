"""Running the pack's DAGs for real in tests: ``dag.test()`` on the dags folder."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, time

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def dags(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"), bundle_name="dags-folder")
    assert bag.import_errors == {}
    return bag


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


_PARAM_DEFAULTS: dict[int, dict] = {}


def run(dags, dag_id: str, moment: datetime, **conf) -> dict[str, str]:
    """Run ``dag_id`` for ``moment``; it must succeed. Returns each task's state.

    Every param not in ``conf`` gets its default: in one process, a run's conf would
    otherwise stay on the DAG's shared Param objects and leak into the next run.
    """
    dag = dags.dags[dag_id]
    for task in dag.tasks:
        task.retries = 0  # a failure fails the test now, instead of after dag.test() waits out retries
    defaults = _PARAM_DEFAULTS.setdefault(id(dag), copy.deepcopy(dag.params.dump()))
    dag_run = dag.test(logical_date=moment, run_conf={**defaults, **conf} or None)
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert dag_run.state == "success", states
    return states
