"""The plugin's "AuxEng" entry in Airflow's navigation, and a dashboard module that stays light to import
(the plugin manager imports it in every Airflow process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO


def test_the_plugin_adds_auxeng_to_the_navigation_pointing_at_the_dashboard():
    from airflow.api_fastapi.core_api.datamodels.plugins import ExternalViewResponse

    from auxeng.airflow_plugin import AuxEngPlugin

    [view] = AuxEngPlugin.external_views
    parsed = ExternalViewResponse.model_validate(view)  # Airflow's own schema of an external view
    assert (parsed.name, parsed.destination, parsed.url_route) == ("AuxEng", "nav", "auxeng")
    [fastapi_app] = AuxEngPlugin.fastapi_apps
    assert parsed.href == f"{fastapi_app['url_prefix']}/dashboard/"
    assert "/dashboard/" in {route.path for route in fastapi_app["app"].routes}


def test_importing_the_web_app_does_not_import_airflow_api_security_or_open_the_store():
    probe = (
        "import sys; import auxeng.web.application; "
        "heavy = [m for m in ('airflow.api_fastapi.core_api.security', 'auxeng.store.db', 'matplotlib') "
        "if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO / "plugins"), "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout.strip() == "[]"


def test_the_plugins_folder_registers_the_plugin_once_when_no_wheel_is_installed():
    """``make run``'s layout: the source on PYTHONPATH, plugins/ as Airflow's plugins folder."""
    from importlib.metadata import entry_points

    from auxeng.airflow_plugin import ENTRY_POINT

    assert ENTRY_POINT not in {point.value for point in entry_points(group="airflow.plugins")}, (
        "the test environment has the pack installed as a distribution"
    )
    probe = (
        "import json; from airflow import plugins_manager as pm; "
        "print(json.dumps([[p['name'] for p in pm.get_plugin_info()], pm.get_import_errors()]))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "plugins"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
    }
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO, env=env
    )
    names, import_errors = json.loads(result.stdout.splitlines()[-1])
    assert (names.count("auxeng"), import_errors) == (1, {})
