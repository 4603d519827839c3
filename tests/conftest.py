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


_postgres_at_head: set[str] = (
    set()
)  # databases _reset_postgres left at head since their schema was last dropped


def _reset_postgres(url: str) -> None:
    """Empty the test's PostgreSQL database and leave it at the newest schema.

    Migrating from nothing costs ~0.7 s per test; once this process has migrated the database,
    emptying every table (``TRUNCATE … RESTART IDENTITY``) is enough, as no test changes the
    schema of this database but those of ``empty_store_url``, which drops it after them.
    """
    from auxeng.store.db import VERSION_TABLE, get_engine, head_revision, open_store
    from auxeng.store.models import Base

    get_engine(url).dispose()
    if url in _postgres_at_head:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                at = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
                if at == [head_revision()]:
                    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
                    conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                    return
        finally:
            engine.dispose()
    _drop_postgres_schema(url)
    open_store(url)
    get_engine(url).dispose()
    _postgres_at_head.add(url)


def _drop_postgres_schema(url: str) -> None:
    """Drop everything in the test's PostgreSQL database: the next open_store migrates from nothing."""
    from auxeng.store.db import forget_schema_checks, get_engine

    _postgres_at_head.discard(url)
    get_engine(url).dispose()
    forget_schema_checks()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_store_template(tmp_path_factory) -> Path:
    """A SQLite store file migrated once per session; each test gets a copy (migrating costs ~0.25 s)."""
    from auxeng.store.db import get_engine, open_store

    path = tmp_path_factory.mktemp("store-template") / "auxeng.db"
    url = f"sqlite:///{path}"
    engine = open_store(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    get_engine(url).dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """An engagement store database at the newest schema with no rows: a SQLite file, then a
    PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "auxeng.db"
        shutil.copyfile(request.getfixturevalue("sqlite_store_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_database_url")
    _reset_postgres(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store_url(request, tmp_path):
    """An empty database with no schema at all, for the tests of the migrations themselves."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'auxeng.db'}"
        return
    url = request.getfixturevalue("postgres_database_url")
    _drop_postgres_schema(url)
    yield url
    _drop_postgres_schema(url)  # the test may leave any revision: the next test migrates afresh


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
