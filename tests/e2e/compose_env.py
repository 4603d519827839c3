"""The Airflow and pack settings of ``docker-compose.yaml``, translated for a native run on this machine.

``make e2e`` starts the same components the compose file does, as local processes against the
machine's PostgreSQL and Redis. Their environment is read from the compose file's
``x-airflow-common`` block so the two cannot drift: ``${VAR}`` interpolation is done with the
run's own values, service host names become loopback addresses, container paths become the
working copy's, and the few settings a native run must change are listed in ``OVERRIDES`` with
the reason (``tests/deploy/test_e2e_env.py`` checks nothing else differs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")

# Settings a native run cannot take from the compose file as they are, and why.
OVERRIDES = {
    # The image brings the FAB provider (the compose file's auth manager); the lock does not,
    # so the run uses Airflow's own simple auth manager: /auth/token and the JWT checks are the same.
    "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
}


@dataclass(frozen=True)
class Local:
    """Where the native run's services are."""

    airflow_db_url: str  # postgresql+psycopg2://… of the scratch metadata database
    result_backend_url: str  # db+postgresql://… of the same database
    broker_url: str  # redis://127.0.0.1:6379/<db index of its own>
    api_port: int
    variables: Mapping[str, str]  # what .env would hold: secrets, connections, public URL


def compose_common_environment(compose_file: Path = COMPOSE_FILE) -> dict[str, str]:
    """The raw ``environment`` of ``x-airflow-common`` (values not interpolated)."""
    document = yaml.safe_load(compose_file.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in document["x-airflow-common"]["environment"].items()}


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` with ``variables``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if variables.get(name):
            return variables[name]
        if op == ":-":
            return arg or ""
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return ""

    return _INTERPOLATION.sub(one, value)


def native_environment(local: Local, compose_file: Path = COMPOSE_FILE) -> dict[str, str]:
    """The compose file's Airflow and pack settings for processes on this machine."""
    env: dict[str, str] = {}
    for key, raw in compose_common_environment(compose_file).items():
        value = interpolate(raw, local.variables)
        if key == "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
            value = local.airflow_db_url
        elif key == "AIRFLOW__CELERY__RESULT_BACKEND":
            value = local.result_backend_url
        elif key == "AIRFLOW__CELERY__BROKER_URL":
            value = local.broker_url
        value = value.replace("http://airflow-apiserver:8080", f"http://127.0.0.1:{local.api_port}")
        value = value.replace("/opt/airflow/", f"{REPO}/").replace("/opt/airflow", str(REPO))
        env[key] = OVERRIDES.get(key, value)
    return env
