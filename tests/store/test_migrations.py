"""The store's schema: migrations reach head, match the models, and survive concurrent migrators."""

from __future__ import annotations

import multiprocessing

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from auxeng.store.db import VERSION_TABLE, current_revision, get_engine, head_revision, migrate
from auxeng.store.models import Base


def test_migrate_creates_every_table_at_head(store_url):
    engine = get_engine(store_url)
    assert current_revision(engine) is None
    assert migrate(engine) == head_revision()
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert VERSION_TABLE in tables


def test_migrations_match_the_models(store):
    with store.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert [
        d
        for d in diff
        if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == VERSION_TABLE)
    ] == []


def test_migrate_twice_is_a_no_op(store):
    before = current_revision(store)
    assert migrate(store) == before


def _migrate_in_child(url: str, barrier, results) -> None:
    get_engine.cache_clear()
    barrier.wait()
    try:
        results.put(migrate(get_engine(url)))
    except Exception as exc:  # reported to the parent, which fails the test
        results.put(f"error: {type(exc).__name__}: {exc}")


def test_concurrent_migrations_do_not_corrupt_the_schema(store_url):
    workers = 4
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    results = context.Queue()
    processes = [
        context.Process(target=_migrate_in_child, args=(store_url, barrier, results)) for _ in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    outcomes = [results.get(timeout=5) for _ in processes]
    assert outcomes == [head_revision()] * workers
    engine = get_engine(store_url)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {VERSION_TABLE}").scalar() == 1
