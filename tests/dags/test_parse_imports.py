"""Parsing a DAG file imports only the light part of the pack: ``auxeng.dagkit``, ``settings`` and
``vocabulary``. The task modules (store models, templates, calendars, charts, Slack) are imported inside
the tasks, so a dag processor never pays for them (issue 16)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

DAG_FILES = sorted((REPO / "dags").glob("*.py"))

ALLOWED_AUXENG = {"auxeng", "auxeng.settings", "auxeng.vocabulary"}
ALLOWED_AUXENG_PREFIXES = ("auxeng.dagkit",)
FORBIDDEN_PACKAGES = {"jinja2", "matplotlib", "icalendar", "slack_sdk", "yaml", "sqlalchemy", "email"}

# One fresh process parses the files one after the other, as a dag processor does, after importing
# Airflow and the Airflow modules each file names; it reports what each parse newly imported.
PARSE_EACH = """
import importlib, json, sys
import airflow, airflow.sdk
from airflow.dag_processing.dagbag import DagBag
from airflow.utils.file import iter_airflow_imports

assert not [m for m in sys.modules if m.startswith("auxeng")], "auxeng imported before parsing"
for path in sys.argv[1:]:
    for module in iter_airflow_imports(path):
        importlib.import_module(module)
reports = {}
for path in sys.argv[1:]:
    before = set(sys.modules)
    bag = DagBag(dag_folder=path, bundle_name="dags-folder", collect_dags=False, load_op_links=False)
    found = bag.process_file(path, only_if_updated=False, safe_mode=True)
    new = sorted(m for m in set(sys.modules) - before if not m.startswith("unusual_prefix_"))
    reports[path] = {"dags": [d.dag_id for d in found], "new": new,
                     "errors": {k: str(v) for k, v in bag.import_errors.items()}}
print(json.dumps(reports))
"""


@pytest.fixture(scope="module")
def parse_reports() -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PARSE_EACH, *map(str, DAG_FILES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=os.environ.copy(),
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.stem for p in DAG_FILES])
def test_parsing_imports_only_the_light_part_of_the_pack(parse_reports, path):
    """Each file's own first parse; a heavy module imported by an earlier file would still show there."""
    report = parse_reports[str(path)]
    assert report["errors"] == {}
    assert report["dags"] == [path.stem]
    auxeng = {m for m in report["new"] if m.split(".")[0] == "auxeng"}
    heavy_auxeng = sorted(
        m for m in auxeng if m not in ALLOWED_AUXENG and not m.startswith(ALLOWED_AUXENG_PREFIXES)
    )
    assert heavy_auxeng == [], "import these inside the task bodies, not at module level"
    # Newly imported by the parse, i.e. not already loaded by Airflow itself.
    heavy = sorted(m for m in report["new"] if m.split(".")[0] in FORBIDDEN_PACKAGES)
    assert heavy == []


# Parses every file twice in one process, counting how often the settings are built from the environment.
PARSE_TWICE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag  # puts plugins/ on sys.path
import auxeng.settings as settings

builds = []
build = settings._build_settings
settings._build_settings = lambda env: builds.append(1) or build(env)
for _ in range(2):
    for path in sys.argv[1:]:
        bag = DagBag(dag_folder=path, bundle_name="dags-folder", collect_dags=False, load_op_links=False)
        assert bag.process_file(path, only_if_updated=False, safe_mode=True), bag.import_errors
print(json.dumps({"builds": len(builds)}))
"""


def test_parsing_builds_the_settings_once_per_process():
    """DAG files read settings (time zone, registry path) on every parse: the process builds them once."""
    result = subprocess.run(
        [sys.executable, "-c", PARSE_TWICE, *map(str, DAG_FILES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=os.environ.copy(),
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"builds": 1}
