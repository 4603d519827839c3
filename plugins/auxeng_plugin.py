"""Registers the AuxEng pack with Airflow: its web app under ``/auxeng`` on the api-server (the
public pages and the dashboard: :func:`auxeng.web.application.airflow_app`), and the
"AuxEng" entry in the UI's navigation, which opens the dashboard (``/auxeng/dashboard/``, for
logged-in Airflow users; see :mod:`auxeng.web.dashboard.routes`) inside the UI."""

from airflow.plugins_manager import AirflowPlugin

from auxeng.web.application import airflow_app

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
