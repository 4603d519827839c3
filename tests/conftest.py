"""Test set-up: a throw-away Airflow home, and the engagement store on SQLite and PostgreSQL.

Airflow reads its configuration when first imported, so the environment is set
here, before any test module imports it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_TEST_HOME = Path(tempfile.mkdtemp(prefix="auxeng-airflow-home-"))

for _name in [
    n for n in os.environ if n.startswith(("AUXENG_", "AIRFLOW_CONN_", "AIRFLOW__", "AIRFLOW_VAR_"))
]:
    if _name != "AUXENG_TEST_POSTGRES_URL":
        del os.environ[_name]
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_TEST_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_TEST_HOME}/airflow.db",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)

import pytest  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

DEMO_REGISTRY = REPO / "include" / "registry" / "engagements.yaml"
POSTGRES_URL_VAR = "AUXENG_TEST_POSTGRES_URL"
pytest_plugins = ["tests.support.fixtures", "tests.support.dagruns"]


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(AIRFLOW_TEST_HOME, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    """The skipped tests grouped by reason, largest group first: a line per reason, not per test."""
    reasons = Counter(_skip_reason(report) for report in terminalreporter.stats.get("skipped", []))
    if reasons:
        terminalreporter.section("skipped, by reason")
        for reason, count in reasons.most_common():
            terminalreporter.write_line(f"{count} skipped: {reason}")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


@pytest.fixture(scope="session")
def postgres_database_url():
    """A scratch PostgreSQL database for this test session, dropped at the end.

    Skips when ``AUXENG_TEST_POSTGRES_URL`` is unset (CI sets it and fails if the
    server is unreachable).
    """
    admin_url = os.environ.get(POSTGRES_URL_VAR)
    if not admin_url:
        pytest.skip(f"{POSTGRES_URL_VAR} is not set: PostgreSQL tests skipped")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"auxeng_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    from auxeng.store.db import get_engine

    get_engine(url).dispose()
    get_engine.cache_clear()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    from auxeng.store.db import forget_schema_checks, get_engine

    get_engine(url).dispose()
    forget_schema_checks()  # the schema is dropped below: the next open_store migrates again
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """An empty engagement store database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'auxeng.db'}"
    url = request.getfixturevalue("postgres_database_url")
    _reset_postgres(url)
    return url


@pytest.fixture
def store(store_url):
    """The migrated store engine."""
    from auxeng.store.db import open_store

    return open_store(store_url)


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata DB, migrated once per session in the throw-away home."""
    from airflow.utils import db

    db.resetdb()
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


@pytest.fixture
def pack_env(monkeypatch, store_url, tmp_path):
    """Environment a DAG run of the pack sees: the store connection and a registry copy."""
    registry = tmp_path / "engagements.yaml"
    shutil.copy(DEMO_REGISTRY, registry)
    monkeypatch.setenv("AIRFLOW_CONN_AUXENG_DB", _airflow_conn_uri(store_url))
    monkeypatch.setenv("AUXENG_REGISTRY_PATH", str(registry))
    return registry


def _airflow_conn_uri(url: str) -> str:
    import json

    return json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": url}})


@pytest.fixture(scope="session")
def make_demo(tmp_path_factory):
    """One real ``make demo`` (1-2 minutes) per session, in a throw-away ``.airflow-demo`` home:
    the front door, the docs' quoted outputs and ``make demo-serve`` all read this one run."""
    from tests.support.doc_outputs import run_make_demo

    return run_make_demo(tmp_path_factory.mktemp("make-demo") / ".airflow-demo")
