"""`make e2e` runs with the compose file's settings: only host names, paths and the listed overrides differ."""

from __future__ import annotations

import pytest

from tests.e2e.compose_env import (
    OVERRIDES,
    REPO,
    Local,
    compose_common_environment,
    interpolate,
    native_environment,
)

VARIABLES = {
    "AIRFLOW_DB_PASSWORD": "pw",
    "AIRFLOW_FERNET_KEY": "fernet",
    "AIRFLOW_JWT_SECRET": "jwt",
    "AIRFLOW_API_SECRET_KEY": "api",
    "AUXENG_PUBLIC_URL": "http://127.0.0.1:9999/auxeng",
    "AUXENG_SECRET_KEY": "secret-key-of-the-run",
    "AIRFLOW_CONN_AUXENG_DB": "postgresql://postgres@127.0.0.1:5432/store",
    "AIRFLOW_CONN_SMTP_DEFAULT": "smtp://127.0.0.1:2525",
}
LOCAL = Local(
    airflow_db_url="postgresql+psycopg2://postgres@127.0.0.1:5432/meta",
    result_backend_url="db+postgresql://postgres@127.0.0.1:5432/meta",
    broker_url="redis://127.0.0.1:6379/13",
    api_port=9999,
    variables=VARIABLES,
)


def test_the_native_run_has_every_setting_of_the_compose_file_and_no_other():
    compose = compose_common_environment()
    native = native_environment(LOCAL)
    assert set(native) == set(compose)
    assert {"AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CELERY__BROKER_URL", "AUXENG_SECRET_KEY"} <= set(native)


def test_only_hosts_paths_databases_and_the_listed_overrides_differ():
    compose = {k: interpolate(v, VARIABLES) for k, v in compose_common_environment().items()}
    native = native_environment(LOCAL)
    translated = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "PYTHONPATH",
        "AUXENG_INCLUDE_DIR",
    }
    differing = {k for k in compose if compose[k] != native[k]}
    assert differing == translated | set(OVERRIDES)
    assert native["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert native["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:9999/execution/"
    assert native["PYTHONPATH"] == f"{REPO}/plugins"
    assert native["AUXENG_INCLUDE_DIR"] == f"{REPO}/include"
    assert native["AIRFLOW__CELERY__BROKER_URL"] == LOCAL.broker_url


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${A}", "a"),
        ("x${B:-fallback}y", "xfallbacky"),
        ("${A:-fallback}", "a"),
        ("${EMPTY:-}", ""),
    ],
)
def test_interpolation_follows_compose(value, expected):
    assert interpolate(value, {"A": "a", "EMPTY": ""}) == expected


def test_a_required_variable_left_unset_names_itself():
    with pytest.raises(KeyError, match="AIRFLOW_FERNET_KEY: set it"):
        interpolate("${AIRFLOW_FERNET_KEY:?set it}", {})
