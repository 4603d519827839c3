"""The pack as a distribution: the wheel, installed beside Airflow in a fresh virtualenv, is the pack.

``uv build --wheel`` builds it, ``uv pip sync requirements.txt`` puts the locked Airflow in a new
virtualenv (from uv's cache, in seconds), and the wheel goes in with ``--no-deps`` (the lock
meets its dependency ranges: ``uv pip check``). Then, with
no ``PYTHONPATH`` and the working directory outside the checkout: ``python -m auxeng`` runs,
``airflow plugins`` lists the auxeng plugin once, with an empty plugins folder and with the
checkout's ``plugins/`` as the folder (the compose mount over an image with the wheel), the DAG
files in ``dags/`` parse into their 9 DAGs, and the templates and demo registry are read from
the installed package.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.install

UV = Path(sys.executable).with_name("uv")
DAG_IDS = [
    "auxeng_checkin_override",
    "auxeng_checkins",
    "auxeng_deliver_outbox",
    "auxeng_dependency_alerts",
    "auxeng_detect_ended",
    "auxeng_send_surveys",
    "auxeng_sync_registry",
    "auxeng_weekly_digest",
    "auxeng_weekly_nps",
]
# Run in the fresh virtualenv: what its Airflow made of the plugins, the DAG files and the assets.
PROBE = """
import json, sys
from airflow import plugins_manager
from airflow.dag_processing.dagbag import DagBag
import auxeng
from auxeng.messaging.rendering import environment
from auxeng.registry.schema import main as check_schema
from auxeng.settings import include_dir, load_settings

bag = DagBag(sys.argv[1], bundle_name="dags-folder")
print(json.dumps({
    "package": auxeng.__file__,
    "plugins": [plugin["name"] for plugin in plugins_manager.get_plugin_info()],
    "plugin_import_errors": plugins_manager.get_import_errors(),
    "dag_ids": sorted(bag.dag_ids),
    "dag_import_errors": bag.import_errors,
    "include_dir": str(include_dir()),
    "template": environment().get_template("messages/survey_invite.html").filename,
    "registry_is_a_file": load_settings().registry_path.is_file(),
    "schema_is_current": check_schema(["--check"]) == 0,
}))
"""


def run(command: list[str | Path], **kwargs) -> str:
    kwargs.setdefault("stderr", subprocess.PIPE)
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not UV.exists():
        pytest.skip(f"no uv beside {sys.executable} (make install puts it there)")
    dist = tmp_path_factory.mktemp("dist")
    run([UV, "build", "--wheel", "--out-dir", dist], cwd=REPO)
    [built] = dist.glob("auxeng_followups-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv with the locked Airflow and the wheel, nothing else."""
    venv = tmp_path_factory.mktemp("venv")
    run([UV, "venv", "--quiet", "--python", sys.executable, venv])
    python = venv / "bin" / "python"
    run([UV, "pip", "sync", "--quiet", "--python", python, REPO / "requirements.txt"])
    run([UV, "pip", "install", "--quiet", "--no-deps", "--python", python, wheel])
    return venv


@pytest.fixture
def outside(tmp_path) -> dict[str, str | Path]:
    """A working directory outside the checkout and an environment without PYTHONPATH."""
    home = tmp_path / "airflow-home"
    empty_plugins = tmp_path / "plugins"
    empty_plugins.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(empty_plugins),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
    }
    return {"cwd": tmp_path, "env": env}


def listed_plugins(venv: Path, outside, plugins_folder: Path | None = None) -> list[str]:
    env = dict(outside["env"])
    if plugins_folder:
        env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(plugins_folder)
    output = run([venv / "bin" / "airflow", "plugins", "--output", "json"], cwd=outside["cwd"], env=env)
    [table] = [line for line in output.splitlines() if line.startswith("[")]
    return [plugin["name"] for plugin in json.loads(table)]


def test_the_wheel_holds_the_package_its_assets_and_the_plugin_entry_point(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points_text = archive.read(entry_points).decode()
    assert {
        "auxeng/__main__.py",
        "auxeng/airflow_plugin.py",
        "auxeng/store/migrations/script.py.mako",
    } <= names
    assert "auxeng/include/templates/messages/survey_invite.html" in names
    assert "auxeng/include/registry/engagements.yaml" in names
    assert not any(
        n.startswith(("dags/", "tests/", "plugins/", "include/")) or "__pycache__" in n for n in names
    )
    assert "[airflow.plugins]\nauxeng = auxeng.airflow_plugin:AuxEngPlugin" in entry_points_text


def test_the_lock_meets_the_wheels_dependency_ranges(venv):
    assert "All installed packages are compatible" in run(
        [UV, "pip", "check", "--python", venv / "bin" / "python"], stderr=subprocess.STDOUT
    )


def test_python_m_auxeng_runs_from_the_installed_wheel(venv, outside):
    assert "usage: python -m auxeng" in run([venv / "bin" / "python", "-m", "auxeng", "--help"], **outside)


def test_airflow_lists_the_plugin_once_with_or_without_the_plugins_folder(venv, outside):
    assert listed_plugins(venv, outside).count("auxeng") == 1
    assert listed_plugins(venv, outside, plugins_folder=REPO / "plugins").count("auxeng") == 1


def test_the_dag_files_parse_and_the_assets_come_from_the_package(venv, outside):
    env = {**outside["env"], "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins")}
    output = run([venv / "bin" / "python", "-c", PROBE, REPO / "dags"], cwd=outside["cwd"], env=env)
    found = json.loads(output.splitlines()[-1])
    package = Path(found["package"]).parent
    assert package.parent.name == "site-packages", found["package"]
    assert found["plugins"].count("auxeng") == 1
    assert found["plugin_import_errors"] == {}  # a second registration would be one
    assert (found["dag_ids"], found["dag_import_errors"]) == (DAG_IDS, {})
    assert found["include_dir"] == str(package / "include")
    assert found["template"] == str(package / "include" / "templates" / "messages" / "survey_invite.html")
    assert found["registry_is_a_file"] and found["schema_is_current"]
