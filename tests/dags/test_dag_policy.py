"""Policy over every DAG of the pack: parses cleanly, is documented, retried and owned, and
never looks up connections, Variables or databases while being parsed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DAG_FILES = sorted((REPO / "dags").glob("*.py"))
EXPECTED_DAG_IDS = {
    "auxeng_sync_registry",
    "auxeng_detect_ended",
    "auxeng_send_surveys",
    "auxeng_deliver_outbox",
    "auxeng_checkins",
    "auxeng_checkin_override",
    "auxeng_weekly_nps",
    "auxeng_weekly_digest",
    "auxeng_dependency_alerts",
}


PARSE_GUARD = """
import json, sys
import sqlalchemy
from airflow.dag_processing.dagbag import DagBag
from airflow.models.connection import Connection as CoreConnection
from airflow.models.variable import Variable as CoreVariable
from airflow.sdk import BaseHook, Connection, Variable

calls = []

def forbid(name):
    def record(*args, **kwargs):
        calls.append(name)
        raise RuntimeError(name + " called while parsing")
    return record

for owner, attribute in [(BaseHook, "get_connection"), (Connection, "get"), (Variable, "get"),
                         (CoreConnection, "get_connection_from_secrets"), (CoreVariable, "get")]:
    setattr(owner, attribute, forbid(owner.__name__ + "." + attribute))
sqlalchemy.create_engine = forbid("sqlalchemy.create_engine")
assert not [m for m in sys.modules if m.startswith("auxeng")], "auxeng imported before parsing"
bag = DagBag(dag_folder=sys.argv[1], bundle_name="dags-folder")
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "calls": calls}))
"""


def test_parsing_looks_up_no_connection_variable_or_database():
    """A fresh process parses every DAG file with those lookups rigged to fail."""
    result = subprocess.run(
        [sys.executable, "-c", PARSE_GUARD, str(REPO / "dags")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=os.environ.copy(),
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"dags": sorted(EXPECTED_DAG_IDS), "errors": {}, "calls": []}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"), bundle_name="dags-folder")


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_every_dag_file_defines_its_dag(dagbag):
    assert set(dagbag.dag_ids) == EXPECTED_DAG_IDS
    assert {path.stem for path in DAG_FILES} == EXPECTED_DAG_IDS
    for dag_id in dagbag.dag_ids:
        assert Path(dagbag.dags[dag_id].fileloc).stem == dag_id


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_dag_follows_the_pack_conventions(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.doc_md and len(dag.doc_md) > 200, "doc_md must tell ops what the DAG does and how to re-run it"
    undocumented = [task.task_id for task in dag.tasks if not (task.doc_md or "").strip()]
    assert not undocumented, (
        f"tasks without doc_md (a docstring saying what to do when it fails): {undocumented}"
    )
    assert "auxeng" in dag.tags
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert dag.start_date is not None and dag.start_date.tzinfo is not None
    for task in dag.tasks:
        assert task.owner == "auxeng-platform", task.task_id
        assert task.retries >= 2, task.task_id
        assert task.on_failure_callback, task.task_id


# Values a trigger form may send, good and bad for one param or another.
PARAM_PROBES = [
    None,
    "",
    "x",
    "reschedule",
    "2026-02-30",
    "2026-03-02",
    "ENG-2026-025",
    0,
    4,
    17,
    True,
    False,
]


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_params_name_the_cheap_dialect_and_mean_what_the_default_one_would(dagbag, dag_id):
    """Params come from ``auxeng.dagkit.params.param`` (draft-07, cheaper to validate on every parse), and
    accept and reject exactly what Airflow's default dialect (2020-12) would."""
    from jsonschema import Draft202012Validator, FormatChecker, validators

    from auxeng.dagkit.params import SCHEMA_DIALECT

    params = dagbag.dags[dag_id].params
    for name in params:
        default_value, schema = params.get_param(name).value, params.get_param(name).schema
        assert schema.get("$schema") == SCHEMA_DIALECT, f"{dag_id}.{name}: use auxeng.dagkit.params.param"
        assert validators.validator_for(schema).__name__ == "Draft7Validator"
        plain = {key: value for key, value in schema.items() if key != "$schema"}
        cheap = validators.validator_for(schema)(schema, format_checker=FormatChecker())
        default = Draft202012Validator(plain, format_checker=FormatChecker())
        for probe in [default_value, *PARAM_PROBES]:
            assert cheap.is_valid(probe) == default.is_valid(probe), f"{dag_id}.{name}: {probe!r}"
