"""The store's schema: migrations reach head, match the models, and survive concurrent migrators."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, Engine, column, create_engine, event, inspect, select, table, text

from auxeng.registry.sync import sync_registry_file
from auxeng.settings import load_settings
from auxeng.store.db import (
    VERSION_TABLE,
    _alembic_config,
    current_revision,
    ensure_schema,
    forget_schema_checks,
    get_engine,
    head_revision,
    migrate,
    open_store,
    session_scope,
)
from auxeng.store.models import Base, SurveyResponseRow, UTCDateTime, maintainability_of
from auxeng.surveys.detractors import plan_detractor_alerts
from tests.conftest import DEMO_REGISTRY


@pytest.fixture
def store_url(empty_store_url):
    """These tests migrate themselves: their database starts with no schema at all."""
    return empty_store_url


def test_migrate_creates_every_table_at_head(store_url):
    engine = get_engine(store_url)
    assert current_revision(engine) is None
    assert migrate(engine) == head_revision()
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert VERSION_TABLE in tables


def _schema_diff(engine: Engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    return [
        d
        for d in diff
        if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == VERSION_TABLE)
    ]


def test_migrations_match_the_models(store):
    assert _schema_diff(store) == []


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    with engine.connect() as conn:
        config = _alembic_config()
        config.attributes["connection"] = conn
        with conn.begin():
            (command.downgrade if down else command.upgrade)(config, revision)


# answers as stored before 0004 → the maintainability column its backfill gives
BACKFILLED = [
    ({"maintainability": 4, "help_needed": "never"}, 4),
    ({"maintainability": 1}, 1),
    ({"maintainability": "4"}, None),
    ({"maintainability": 2.5}, None),
    ({"maintainability": True}, None),
    ({"maintainability": None}, None),
    ({"maintainability": 10**12}, None),
    ({"went_well": "pairing"}, None),
    ({}, None),
]
OLD_RESPONSES = table(  # auxeng_survey_responses as revision 0003 left it
    "auxeng_survey_responses",
    column("response_ref"),
    column("survey"),
    column("engagement_key"),
    column("nps"),
    column("answers", JSON),
    column("source"),
    column("submitted_at", UTCDateTime),
    column("updated_at", UTCDateTime),
)


def test_0004_backfills_maintainability_and_downgrades_and_upgrades_again(store_url):
    engine = open_store(store_url)
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert not sync_registry_file(engine, DEMO_REGISTRY, now=now - timedelta(days=30)).problems
    _migrate(engine, "0003", down=True)
    assert "maintainability" not in {
        c["name"] for c in inspect(engine).get_columns("auxeng_survey_responses")
    }
    with engine.begin() as conn:
        conn.execute(
            OLD_RESPONSES.insert(),
            [
                {
                    "response_ref": f"ref-{n}",
                    "survey": "checkin",
                    "engagement_key": "ENG-2026-031",
                    "nps": 7,
                    "answers": answers,
                    "source": "web",
                    "submitted_at": now,
                    "updated_at": now,
                }
                for n, (answers, _expected) in enumerate(BACKFILLED)
            ],
        )

    for _round in range(2):  # upgrade, and again after a downgrade
        _migrate(engine, "head")
        assert current_revision(engine) == head_revision()
        assert _schema_diff(engine) == []
        maintainability = table("auxeng_survey_responses", column("response_ref"), column("maintainability"))
        with engine.connect() as conn:
            got = dict(
                conn.execute(select(maintainability.c.response_ref, maintainability.c.maintainability)).all()
            )
        assert got == {f"ref-{n}": expected for n, (_answers, expected) in enumerate(BACKFILLED)}
        assert [maintainability_of(answers) for answers, _expected in BACKFILLED] == [
            expected for _answers, expected in BACKFILLED
        ]  # the ORM's rule and the backfill agree
        _migrate(engine, "0003", down=True)
        assert current_revision(engine) == "0003"
        names = set(inspect(engine).get_table_names())
        assert not {"auxeng_nps_weeks", "auxeng_nps_snapshots", "auxeng_digests"} & names
        assert "maintainability" not in {
            c["name"] for c in inspect(engine).get_columns("auxeng_survey_responses")
        }
    _migrate(engine, "head")
    assert _schema_diff(engine) == []


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


# reasons the pack wrote before 0006 → the skip cause its backfill gives
SKIPPED_BEFORE_0006 = [
    ("opted out on 2026-11-20", "opted_out"),
    ("answered before this reminder went out", "answered"),
    ("engagement ENG-1 was removed before this went out", "engagement_removed"),
    ("engagement ENG-1 was cancelled before this went out", "engagement_cancelled"),
    ("engagement ENG-1 was reopened before this went out", "engagement_reopened"),
    ("engagement (none) is not in the store", "engagement_unknown"),
    ("follow-up finished: by ops", "withdrawn"),
    ("check-in moved to 2027-02-01", "withdrawn"),
]
OLD_OUTBOX = table(  # auxeng_outbox as revision 0005 left it (the columns without defaults)
    "auxeng_outbox",
    column("dedupe_key"),
    column("channel"),
    column("kind"),
    column("recipient"),
    column("body_text"),
    column("payload", JSON),
    column("stop_if_answered"),
    column("requires_ended"),
    column("status"),
    column("reason"),
    column("attempts"),
    column("not_before", UTCDateTime),
    column("created_at", UTCDateTime),
    column("updated_at", UTCDateTime),
)


def test_0006_backfills_skip_causes_from_the_old_reasons_and_downgrades(store_url):
    engine = open_store(store_url)
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    _migrate(engine, "0005", down=True)
    rows = [(f"k-{n}", "skipped", reason) for n, (reason, _cause) in enumerate(SKIPPED_BEFORE_0006)]
    rows += [("k-sent", "sent", None), ("k-pending", "pending", "smtp down")]
    with engine.begin() as conn:
        conn.execute(
            OLD_OUTBOX.insert(),
            [
                {
                    "dedupe_key": key,
                    "channel": "email",
                    "kind": "survey_invite",
                    "recipient": "a@example.com",
                    "body_text": "hi",
                    "payload": {},
                    "stop_if_answered": False,
                    "requires_ended": True,
                    "status": status,
                    "reason": reason,
                    "attempts": 0,
                    "not_before": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for key, status, reason in rows
            ],
        )
    _migrate(engine, "head")
    assert _schema_diff(engine) == []
    outbox = table("auxeng_outbox", column("dedupe_key"), column("skip_cause"))
    with engine.connect() as conn:
        got = dict(conn.execute(select(outbox.c.dedupe_key, outbox.c.skip_cause)).all())
    expected = {f"k-{n}": cause for n, (_reason, cause) in enumerate(SKIPPED_BEFORE_0006)}
    assert got == {**expected, "k-sent": None, "k-pending": None}
    _migrate(engine, "0005", down=True)
    assert "skip_cause" not in {c["name"] for c in inspect(engine).get_columns("auxeng_outbox")}
    _migrate(engine, "head")
    assert _schema_diff(engine) == []


@pytest.fixture
def version_table_statements():
    """Every SQL statement any engine runs that names the version table (in its text or parameters)."""
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if VERSION_TABLE in statement or VERSION_TABLE in str(parameters):
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    yield statements
    event.remove(Engine, "before_cursor_execute", record)


def test_the_schema_is_checked_once_per_process_and_database_url(
    store_url, tmp_path, version_table_statements
):
    open_store(store_url)
    assert version_table_statements  # the first open migrates
    version_table_statements.clear()

    for _ in range(5):  # what every web request and task step does
        with session_scope(open_store(store_url)) as session:
            session.execute(select(1))
    fresh = create_engine(store_url)  # a new engine for the same database
    try:
        ensure_schema(fresh)
    finally:
        fresh.dispose()
    assert version_table_statements == []

    open_store(f"sqlite:///{tmp_path / 'another.db'}")
    assert version_table_statements  # another database is checked


def test_concurrent_first_opens_check_the_schema_once(store, store_url, version_table_statements):
    forget_schema_checks()
    open_store(store_url)
    one_check = len(version_table_statements)
    assert one_check > 0
    forget_schema_checks()
    version_table_statements.clear()
    workers = 8
    barrier = threading.Barrier(workers)

    def open_together(_: int) -> Engine:
        barrier.wait()
        return open_store(store_url)

    with ThreadPoolExecutor(workers) as pool:
        engines = set(pool.map(open_together, range(workers)))

    assert engines == {store}
    assert len(version_table_statements) == one_check


def test_a_schema_changed_behind_the_process_is_checked_again_once_forgotten(store_url):
    engine = open_store(store_url)
    _migrate(engine, "0003", down=True)
    assert current_revision(open_store(store_url)) == "0003"  # checked once per process: not again

    forget_schema_checks()
    assert current_revision(open_store(store_url)) == head_revision()


def test_0007_ties_queued_detractor_alerts_to_their_response_so_they_are_not_sent_again(store_url):
    engine = open_store(store_url)
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert not sync_registry_file(engine, DEMO_REGISTRY, now=now - timedelta(days=30)).problems
    refs = {"alerted": "a1" * 32, "new": "b2" * 32}
    with session_scope(engine) as session:
        session.add_all(
            SurveyResponseRow(
                response_ref=ref,
                survey="post_engagement",
                engagement_key="ENG-2026-031",
                nps=2,
                answers={},
                source="web",
                submitted_at=now,
                updated_at=now,
            )
            for ref in refs.values()
        )
    _migrate(engine, "0006", down=True)
    queued_before = (
        {  # as the code before 0007 queued them: the response only in the dedupe key
            f"detractor_alert:{refs['alerted'][:24]}:heidi.sauer@example.com:{channel}": "detractor_alert"
            for channel in ("email", "slack")
        }
        | {f"survey_invite:1:2026-11-20:{channel}": "survey_invite" for channel in ("email", "slack")}
    )
    with engine.begin() as conn:
        conn.execute(
            OLD_OUTBOX.insert(),
            [
                {
                    "dedupe_key": key,
                    "channel": key.rsplit(":", 1)[1],
                    "kind": kind,
                    "recipient": "heidi.sauer@example.com",
                    "body_text": "…",
                    "payload": {},
                    "stop_if_answered": False,
                    "requires_ended": False,
                    "status": "sent",
                    "reason": None,
                    "attempts": 1,
                    "not_before": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for key, kind in queued_before.items()
            ],
        )
    outbox = table("auxeng_outbox", column("dedupe_key"), column("response_id"))
    responses = table("auxeng_survey_responses", column("id"), column("response_ref"))
    for _round in range(2):  # upgrade, and again after a downgrade
        _migrate(engine, "head")
        assert _schema_diff(engine) == []
        with engine.connect() as conn:
            ids = dict(conn.execute(select(responses.c.response_ref, responses.c.id)).all())
            got = dict(conn.execute(select(outbox.c.dedupe_key, outbox.c.response_id)).all())
        assert got == {
            key: ids[refs["alerted"]] if kind == "detractor_alert" else None
            for key, kind in queued_before.items()
        }
        _migrate(engine, "0006", down=True)
        assert "response_id" not in {c["name"] for c in inspect(engine).get_columns("auxeng_outbox")}
    _migrate(engine, "head")
    with session_scope(engine) as session:
        settings = load_settings({"AUXENG_PUBLIC_URL": "https://airflow.example.com/auxeng"})
        report = plan_detractor_alerts(session, now=now, settings=settings, key=b"k" * 32)
    assert report.alerts == 1  # the new answer only: the one alerted before the upgrade stays alerted
    with engine.connect() as conn:
        alerted = conn.execute(
            select(outbox.c.dedupe_key).where(outbox.c.dedupe_key.startswith("detractor_alert:"))
        ).scalars()
        assert {key.split(":")[1] for key in alerted} == {refs["alerted"][:24], refs["new"][:24]}


def test_0008_records_when_invitations_already_sent_reached_their_person(store_url):
    engine = open_store(store_url)
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert not sync_registry_file(engine, DEMO_REGISTRY, now=now - timedelta(days=30)).problems
    _migrate(engine, "0007", down=True)
    invitations = table(
        "auxeng_survey_invitations",
        column("id"),
        column("survey"),
        column("engagement_key"),
        column("email"),
        column("round"),
        column("side"),
        column("role"),
        column("status"),
        column("invited_on"),
        column("closes_at", UTCDateTime),
        column("reminders_queued"),
        column("created_at", UTCDateTime),
        column("updated_at", UTCDateTime),
    )
    with engine.begin() as conn:
        for n, email in enumerate(("sent@example.com", "queued@example.com"), start=1):
            conn.execute(
                invitations.insert(),
                {
                    "id": n,
                    "survey": "post_engagement",
                    "engagement_key": "ENG-2026-031",
                    "email": email,
                    "round": 0,
                    "side": "host",
                    "role": "engineer",
                    "status": "invited",
                    "invited_on": now.date(),
                    "closes_at": now + timedelta(days=21),
                    "reminders_queued": 0,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        rows = [  # invitation 1: Slack went out first, then email; invitation 2: still pending
            (1, "slack", "sent", now + timedelta(hours=2)),
            (1, "email", "sent", now + timedelta(hours=5)),
            (2, "email", "pending", None),
        ]
        conn.execute(
            OLD_OUTBOX.insert(),
            [
                {
                    "dedupe_key": f"survey_invite:{invitation}:{channel}",
                    "channel": channel,
                    "kind": "survey_invite",
                    "recipient": "x@example.com",
                    "body_text": "hi",
                    "payload": {},
                    "stop_if_answered": False,
                    "requires_ended": True,
                    "status": status,
                    "reason": None,
                    "attempts": 0,
                    "not_before": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for invitation, channel, status, _sent in rows
            ],
        )
        sent_at = table(
            "auxeng_outbox", column("dedupe_key"), column("sent_at", UTCDateTime), column("invitation_id")
        )
        for invitation, channel, _status, sent in rows:
            conn.execute(
                sent_at.update()
                .where(sent_at.c.dedupe_key == f"survey_invite:{invitation}:{channel}")
                .values(sent_at=sent, invitation_id=invitation)
            )
    _migrate(engine, "head")
    assert _schema_diff(engine) == []
    check = table("auxeng_survey_invitations", column("id"), column("sent_at", UTCDateTime))
    with engine.connect() as conn:
        got = dict(conn.execute(select(check.c.id, check.c.sent_at)).all())
    assert got == {1: now + timedelta(hours=2), 2: None}  # the earliest channel; nothing for a pending one
    _migrate(engine, "0007", down=True)
    assert "sent_at" not in {c["name"] for c in inspect(engine).get_columns("auxeng_survey_invitations")}
    _migrate(engine, "head")


def _nps_triggers(engine: Engine) -> set[str]:
    if engine.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE :pattern"
    else:
        query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE :pattern"
    with engine.connect() as conn:
        return set(conn.execute(text(query), {"pattern": "auxeng_nps_mark_%"}).scalars())


def test_0010_removes_its_tables_and_triggers_and_adds_them_again(store_url):
    engine = open_store(store_url)
    tables = {
        "auxeng_nps_week_aggregates",
        "auxeng_nps_week_counts",
        "auxeng_nps_late_answers",
        "auxeng_nps_dirty_days",
    }
    triggers = _nps_triggers(engine)
    assert len(triggers) == 12  # answers, invitations, engagements, teams: insert, update, delete
    _migrate(engine, "0009", down=True)
    assert not tables & set(inspect(engine).get_table_names())
    assert _nps_triggers(engine) == set()
    _migrate(engine, "head")
    assert tables <= set(inspect(engine).get_table_names())
    assert _nps_triggers(engine) == triggers
    assert _schema_diff(engine) == []
