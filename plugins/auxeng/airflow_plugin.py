"""Registers the AuxEng pack with Airflow: its web app under ``/auxeng`` on the api-server (the
public pages and the dashboard: :func:`auxeng.web.application.airflow_app`), and the
"AuxEng" entry in the UI's navigation, which opens the dashboard (``/auxeng/dashboard/``, for
logged-in Airflow users; see :mod:`auxeng.web.dashboard.routes`) inside the UI.

The installed distribution registers :class:`AuxEngPlugin` through its ``airflow.plugins``
entry point (pyproject.toml). A plugins folder holding the source instead (``make run``, the
docker-compose mount) registers it through ``plugins/auxeng_plugin.py``, which asks
:func:`plugin_for_the_plugins_folder` so that the plugin is registered once when both are there.
"""

from importlib.metadata import entry_points

from airflow.plugins_manager import AirflowPlugin

from auxeng.web.application import airflow_app

ENTRY_POINT = "auxeng.airflow_plugin:AuxEngPlugin"
DASHBOARD_VIEW = {
    "name": "AuxEng",
    "href": "/auxeng/dashboard/",
    "destination": "nav",
    "url_route": "auxeng",
}


class AuxEngPlugin(AirflowPlugin):
    name = "auxeng"
    fastapi_apps = [{"app": airflow_app(), "url_prefix": "/auxeng", "name": "AuxEng follow-ups"}]  # noqa: RUF012
    external_views = [DASHBOARD_VIEW]  # noqa: RUF012


def plugin_for_the_plugins_folder() -> type[AuxEngPlugin] | None:
    """:class:`AuxEngPlugin`, or None when an installed distribution's entry point registers it.

    Airflow loads the plugins folder first and then the entry points, and keeps the first of
    two plugins with one name, listing the second as a plugin import error.
    """
    installed = any(point.value == ENTRY_POINT for point in entry_points(group="airflow.plugins"))
    return None if installed else AuxEngPlugin
