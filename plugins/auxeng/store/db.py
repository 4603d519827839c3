"""Engines, sessions and automatic, concurrency-safe migrations for the engagement store.

The store's location is the Airflow connection ``auxeng_db`` (any SQLAlchemy URL);
without it, a SQLite file ``auxeng.db`` in ``AIRFLOW_HOME``.

:func:`open_store` checks (and upgrades) the schema once per process and database
URL, not on every open: a process that is running when the schema changes keeps its
view until it restarts (all Airflow processes restart together after an upgrade).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, date
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Engine,
    Float,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    insert,
    inspect,
    make_url,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

from auxeng.settings import Settings, airflow_home, load_settings
from auxeng.store.models import UTCDateTime

log = logging.getLogger(__name__)

VERSION_TABLE = "auxeng_alembic_version"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x41555845  # "AUXE": one advisory lock key for the store's migrations

# Database URLs whose schema this process has brought to head (see ensure_schema).
_schemas_at_head: set[str] = set()
_schema_check_lock = threading.Lock()


class StoreConfigError(ValueError):
    """The ``auxeng_db`` connection does not describe a usable database."""


def database_url_from_connection(conn: Any) -> str:
    """Turn an Airflow connection into a SQLAlchemy URL.

    ``extra.sqlalchemy_url`` wins; otherwise SQLite and PostgreSQL connections are
    mapped from their fields, and anything else from the connection's URI.
    """
    extra = conn.extra_dejson or {}
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    conn_type = (conn.conn_type or "").lower()
    if conn_type == "sqlite":
        path = conn.schema or conn.host
        if not path:
            raise StoreConfigError(f"connection {conn.conn_id!r}: a sqlite connection needs a file path")
        return "sqlite://" if path == ":memory:" else f"sqlite:///{path}"
    if conn_type in {"postgres", "postgresql"}:
        url = make_url("postgresql+psycopg2://").set(
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or None,
            port=conn.port or None,
            database=conn.schema or None,
            query={k: str(v) for k, v in extra.items() if k in {"sslmode", "options", "application_name"}},
        )
        return url.render_as_string(hide_password=False)
    uri = conn.get_uri()
    if not uri or "://" not in uri:
        raise StoreConfigError(f"connection {conn.conn_id!r} of type {conn_type!r} has no usable URI")
    return uri


def resolve_database_url(settings: Settings | None = None) -> str:
    """The store's URL from the Airflow connection, or the default SQLite file.

    Call it inside a task or a command, never at DAG parse time.
    """
    settings = settings or load_settings()
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(settings.db_conn_id)
    except AirflowNotFoundException:
        path = airflow_home() / "auxeng.db"
        log.info("No %r connection: using the default SQLite store %s", settings.db_conn_id, path)
        return f"sqlite:///{path}"
    return database_url_from_connection(conn)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@functools.cache
def get_engine(url: str) -> Engine:
    """One engine per URL and process (engines pool connections; create them once)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        kwargs: dict[str, Any] = {}
        if not database or database == ":memory:":
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


# Alembic is imported inside the functions below: it is heavy (mako, pygments) and
# DAG files import this module's callers at parse time.


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


@contextlib.contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(f"{database}.migrate.lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate(engine: Engine) -> str:
    """Bring the store to the newest schema; safe to call from many processes at once.

    PostgreSQL serialises migrators with an advisory lock, SQLite with a file lock;
    whoever waits finds the schema at head and does nothing.
    """
    from alembic import command

    head = head_revision()
    if current_revision(engine) == head:
        return head
    is_postgres = engine.dialect.name == "postgresql"
    lock = contextlib.nullcontext() if is_postgres else _sqlite_file_lock(engine)
    with lock, engine.connect() as conn:
        if is_postgres:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_MIGRATION_LOCK})")
            conn.commit()
        else:
            # WAL lets readers work during writes; the setting is stored in the file,
            # so it is switched once, here, under the migration lock.
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            conn.commit()
        try:
            config = _alembic_config()
            config.attributes["connection"] = conn
            with conn.begin():
                command.upgrade(config, "head")
        finally:
            if is_postgres:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_MIGRATION_LOCK})")
                conn.commit()
    log.info("Engagement store migrated to %s", head)
    return head


def _schema_key(engine: Engine) -> str | None:
    """What identifies the engine's database across engines; None for in-memory SQLite (one per engine)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database in {None, "", ":memory:"}:
        return None
    return url.render_as_string(hide_password=False)


def ensure_schema(engine: Engine) -> None:
    """:func:`migrate` the engine's database once per process and database URL (thread-safe).

    Later calls for the same URL, from any engine, return at once; concurrent first
    calls wait for the one that checks. An in-memory SQLite database is checked every time.
    """
    key = _schema_key(engine)
    if key in _schemas_at_head:
        return
    with _schema_check_lock:
        if key not in _schemas_at_head:
            migrate(engine)
            if key is not None:
                _schemas_at_head.add(key)


def forget_schema_checks() -> None:
    """Make the next :func:`open_store` of every database check its schema again.

    For tests and tools that drop, downgrade or recreate a database inside a running process.
    """
    with _schema_check_lock:
        _schemas_at_head.clear()


def open_store(url: str | None = None) -> Engine:
    """The migrated store engine (resolving the URL from Airflow when not given); see :func:`ensure_schema`."""
    engine = get_engine(url or resolve_database_url())
    ensure_schema(engine)
    return engine


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = sessionmaker(engine, expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def insert_skipping_duplicates(session: Session, model: Any, unique: list[str]) -> Insert:
    """An ``INSERT`` into ``model`` that skips rows already stored under the unique columns
    ``unique`` (``ON CONFLICT … DO NOTHING`` on PostgreSQL and SQLite, the store's databases)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing(index_elements=unique)
    if dialect == "sqlite":
        return sqlite.insert(model).on_conflict_do_nothing(index_elements=unique)
    return insert(model)  # pragma: no cover - the store supports SQLite and PostgreSQL only


def same_update_columns(session: Session, rows: Iterable[Any]) -> None:
    """Make the next flush update the changed rows among ``rows`` with one statement form: each
    with every column any of them changed. The ORM sends one executemany per run of consecutive
    rows (by id) with the same changed columns, so rows changed in different ways, interleaved,
    would take one UPDATE each: this keeps it to one (per mapper and executemany page)."""
    dirty = [row for row in rows if row is not None and session.is_modified(row)]
    changed = {
        column.key
        for row in dirty
        for column in inspect(row).mapper.column_attrs
        if inspect(row).attrs[column.key].history.has_changes()
    }
    for row in dirty:
        for key in changed:
            flag_modified(row, key)


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """One INSERT of all the ``rows`` (each with the same columns), not the ORM's unit of work.

    On PostgreSQL each column travels as one array literal (text) unpacked by ``unnest``:
    psycopg2 formats every bound value on the client (~1 µs each), which costs more than
    the insert itself, and a JSON document (``json_to_recordset``) costs ~3 µs a row to
    encode and parse. On SQLite: the driver's ``executemany`` of plain tuples, the values
    as SQLAlchemy stores them (a date as ``YYYY-MM-DD``, a boolean as 0/1), which saves
    SQLAlchemy's per-row parameter processing (~10 µs a row). The columns must be of the
    types :data:`_PG_ELEMENTS` lists (timestamps: :class:`UTCDateTime`, time-zone aware).
    """
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":
        statement, names = _sqlite_insert_statement(dialect, table, tuple(rows[0]))
        columns = []
        for name in names:
            values = [row[name] for row in rows]
            to = _SQLITE_VALUES.get(type(table.c[name].type))
            columns.append(values if to is None else [None if v is None else to(v) for v in values])
        session.connection().exec_driver_sql(statement, list(zip(*columns, strict=True)))
        return
    if dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    names = tuple(rows[0])
    literals = {}
    for name in names:
        element = _PG_ELEMENTS[type(table.c[name].type)]
        values = [row[name] for row in rows]
        if None in values:
            literals[name] = "{" + ",".join("NULL" if v is None else element(v) for v in values) + "}"
        elif element is _array_text and _nothing_to_escape("".join(values)):
            literals[name] = '{"' + '","'.join(values) + '"}'  # quoted at once
        else:
            literals[name] = "{" + ",".join(map(element, values)) + "}"
    session.execute(_pg_insert_statement(table, names), literals)


def _nothing_to_escape(text: str) -> bool:
    return "\\" not in text and '"' not in text


def _array_text(value: str) -> str:
    """A text element of an array literal: double-quoted, its backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_PG_ELEMENTS = {  # column type → an element of a PostgreSQL array literal
    Integer: str,
    BigInteger: str,
    Float: repr,  # the shortest text that reads back as the same double
    Boolean: lambda value: "t" if value else "f",
    Date: date.isoformat,
    String: _array_text,
    Text: _array_text,
    UTCDateTime: lambda value: '"' + value.astimezone(UTC).isoformat() + '"',
    JSON: lambda value: _array_text(json.dumps(value)),
}


@functools.cache
def _sqlite_insert_statement(dialect, table: Table, names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The ``INSERT … VALUES (?, …)`` of ``names`` and the order of its parameters (compiled once)."""
    compiled = insert(table).values({name: bindparam(name) for name in names}).compile(dialect=dialect)
    return str(compiled), tuple(compiled.positiontup)


@functools.cache
def _pg_insert_statement(table: Table, names: tuple[str, ...]) -> Insert:
    """``INSERT … SELECT … FROM unnest(CAST(:name AS type[]), …)``: one array literal (text) per column."""
    arrays = (cast(bindparam(name, type_=Text), postgresql.ARRAY(table.c[name].type)) for name in names)
    rows = func.unnest(*arrays).table_valued(*names).render_derived(name="r")
    return insert(table).from_select(names, select(*(rows.c[name] for name in names)))


_SQLITE_VALUES = {  # as SQLAlchemy stores them on SQLite
    Date: date.isoformat,
    Boolean: int,
    UTCDateTime: lambda value: value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    JSON: json.dumps,
}
