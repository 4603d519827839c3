"""Registers the AuxEng pack with Airflow: its web app under ``/auxeng`` on the api-server."""

from airflow.plugins_manager import AirflowPlugin

from auxeng.web import app


class AuxEngPlugin(AirflowPlugin):
    name = "auxeng"
    fastapi_apps = [{"app": app, "url_prefix": "/auxeng", "name": "AuxEng follow-ups"}]  # noqa: RUF012
