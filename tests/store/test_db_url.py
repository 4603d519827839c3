"""How the ``auxeng_db`` Airflow connection becomes the store's SQLAlchemy URL."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection

from auxeng.store.db import StoreConfigError, database_url_from_connection, resolve_database_url


def _conn(**kwargs) -> Connection:
    return Connection(conn_id="auxeng_db", **kwargs)


def test_postgres_connection_maps_to_psycopg2_url():
    conn = _conn(
        conn_type="postgres", host="db", login="auxeng", password="s3cr:t", port=5432, schema="auxeng"
    )
    assert database_url_from_connection(conn) == "postgresql+psycopg2://auxeng:s3cr%3At@db:5432/auxeng"


def test_sqlite_connection_maps_to_file_url():
    assert (
        database_url_from_connection(_conn(conn_type="sqlite", host="/data/auxeng.db"))
        == "sqlite:////data/auxeng.db"
    )


def test_extra_sqlalchemy_url_wins():
    conn = _conn(conn_type="generic", extra=json.dumps({"sqlalchemy_url": "mysql+pymysql://u@h/db"}))
    assert database_url_from_connection(conn) == "mysql+pymysql://u@h/db"


def test_sqlite_without_path_is_a_clear_error():
    with pytest.raises(StoreConfigError, match="needs a file path"):
        database_url_from_connection(_conn(conn_type="sqlite"))


def test_environment_connection_is_used(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AUXENG_DB", "postgresql://postgres@127.0.0.1:5432/auxeng")
    assert resolve_database_url() == "postgresql+psycopg2://postgres@127.0.0.1:5432/auxeng"


def test_without_connection_the_store_is_sqlite_in_airflow_home(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_CONN_AUXENG_DB", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert resolve_database_url() == f"sqlite:///{tmp_path}/auxeng.db"
