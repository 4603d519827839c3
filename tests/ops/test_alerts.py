"""Ops failure alerts (``auxeng.dagkit.defaults.notify_failure`` → ``auxeng.ops.alerts``): one email and one
Slack post per failed task-instance try, on SQLite and PostgreSQL, through a real SMTP server on
loopback and the Slack stand-in; a real failing DAG run by ``dag.test()``; idempotent when called
again for the same try; SMTP down, store down, opted-out address, nothing configured, bad settings."""

from __future__ import annotations

import ast
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.dagkit.defaults import DEFAULT_ARGS, notify_failure
from auxeng.ops.alerts import MAX_KEY, RUNBOOK, alert_failure, dedupe_key, failed_task, hint_from_doc
from auxeng.settings import SettingsError, load_settings
from auxeng.store.models import OptOutRow, OutboxRow
from auxeng.vocabulary import MessageKind
from tests.conftest import REPO
from tests.support.dagruns import at
from tests.support.smtp_server import free_port

OPS_EMAIL = "ops@example.com"
OPS_CHANNEL = "#auxeng-ops"
PROBE_DAG = "auxeng_ops_alert_probe"
PROBE_DOC = """### Ops alert probe

Fails on purpose.

**If it fails:** check the widget feed, then clear `explode`. Nothing else to do.
"""


@dataclass
class StandInTask:
    doc_md: str | None = None


@dataclass
class StandInTI:
    """The task-instance attributes a failure callback reads."""

    dag_id: str = "auxeng_send_surveys"
    task_id: str = "deliver_outbox"
    run_id: str = "scheduled__2026-03-02T08:00:00+00:00"
    map_index: int = -1
    try_number: int = 3
    log_url: str = "http://localhost:8080/dags/auxeng_send_surveys/runs/x/tasks/deliver_outbox?try_number=3"
    task: StandInTask = field(default_factory=StandInTask)


def context_for(ti: StandInTI, error: BaseException | None = None) -> dict[str, Any]:
    return {
        "ti": ti,
        "task_instance": ti,
        "exception": error or RuntimeError("SMTP said 451 <try later> & again"),
    }


def ops_rows(store) -> list[OutboxRow]:
    with Session(store) as session:
        return list(
            session.scalars(
                select(OutboxRow).where(OutboxRow.kind == MessageKind.OPS_FAILURE).order_by(OutboxRow.id)
            )
        )


@pytest.fixture
def ops_env(monkeypatch, pack_env, store, smtp_connection, slack_api_connection):
    """The store, SMTP and Slack API connections, and both ops settings."""
    monkeypatch.setenv("AUXENG_OPS_EMAILS", OPS_EMAIL)
    monkeypatch.setenv("AUXENG_OPS_SLACK_CHANNEL", OPS_CHANNEL)
    return store


# --- settings -----------------------------------------------------------------------------------


def test_ops_settings_default_to_nothing():
    settings = load_settings({})
    assert (settings.ops_slack_channel, settings.ops_emails) == (None, ())
    blank = load_settings({"AUXENG_OPS_SLACK_CHANNEL": " ", "AUXENG_OPS_EMAILS": " , "})
    assert (blank.ops_slack_channel, blank.ops_emails) == (None, ())


@pytest.mark.parametrize("channel", ["C0123ABCD", "G0123ABCDEF", "#auxeng-ops", "#ops_alerts.prod"])
def test_ops_channel_accepts_ids_and_names(channel):
    assert load_settings({"AUXENG_OPS_SLACK_CHANNEL": f" {channel} "}).ops_slack_channel == channel


def test_ops_emails_are_comma_separated_and_deduplicated():
    settings = load_settings({"AUXENG_OPS_EMAILS": "ops@example.com, Oncall@Example.com ,,OPS@example.com"})
    assert settings.ops_emails == ("ops@example.com", "Oncall@Example.com")


@pytest.mark.parametrize("value", ["auxeng-ops", "#Ops Alerts", "U0123ABCD", "c0123abcd", "#", "C12"])
def test_bad_ops_channel_names_the_setting(value):
    with pytest.raises(SettingsError, match="AUXENG_OPS_SLACK_CHANNEL"):
        load_settings({"AUXENG_OPS_SLACK_CHANNEL": value})


@pytest.mark.parametrize(
    "value",
    ["ops", "ops@example.com,oncall", "@example.com", "ops@", "Ops <ops@example.com>", "a b@example.com"],
)
def test_bad_ops_emails_name_the_setting(value):
    with pytest.raises(SettingsError, match="AUXENG_OPS_EMAILS"):
        load_settings({"AUXENG_OPS_EMAILS": value})


def test_bad_settings_never_escape_the_callback(monkeypatch, caplog):
    monkeypatch.setenv("AUXENG_OPS_EMAILS", "not-an-address")
    with caplog.at_level(logging.INFO, logger="auxeng.failures"):
        notify_failure(context_for(StandInTI()))  # no exception
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("AuxEng task failed: dag_id=auxeng_send_surveys") for line in lines)
    assert any("AuxEng ops alert failed" in line and "AUXENG_OPS_EMAILS" in line for line in lines)


# --- content ------------------------------------------------------------------------------------


def dag_doc(dag_id: str) -> str:
    return ast.get_docstring(ast.parse((REPO / "dags" / f"{dag_id}.py").read_text())) or ""


def test_what_to_do_comes_from_the_doc_else_the_readme_runbook():
    assert hint_from_doc(PROBE_DOC) == "If it fails: check the widget feed, then clear `explode`."
    assert hint_from_doc(dag_doc("auxeng_checkins")).startswith("If a task fails, read its log:")
    assert hint_from_doc(dag_doc("auxeng_detect_ended")).startswith("Re-running / backfilling is safe")
    assert hint_from_doc("Sends things.") is None
    ti = StandInTI(task=StandInTask(doc_md="Task doc. If this fails, page the on-call."))
    assert failed_task({"ti": ti}).what_to_do == "If this fails, page the on-call."
    assert failed_task({"ti": StandInTI()}).what_to_do == RUNBOOK


def test_error_is_truncated_and_dedupe_keys_fit_the_column():
    failed = failed_task(context_for(StandInTI(map_index=4), ValueError("x" * 5000)))
    assert (
        len(failed.error) == 1000
        and failed.error.startswith("ValueError: xxx")
        and failed.error.endswith("…")
    )
    key = dedupe_key(failed, "email", "Ops@Example.com")
    assert (
        key
        == f"{MessageKind.OPS_FAILURE}:auxeng_send_surveys:deliver_outbox:scheduled__2026-03-02T08:00:00+00:00:4:3:email:ops@example.com"
    )
    long = failed_task({"ti": StandInTI(dag_id="d" * 250, run_id="r" * 250)})
    long_key = dedupe_key(long, "email", OPS_EMAIL)
    assert len(long_key) <= MAX_KEY
    assert long_key != dedupe_key(
        failed_task({"ti": StandInTI(dag_id="d" * 250, run_id="r" * 249)}), "email", OPS_EMAIL
    )
    lost = failed_task({"ti": StandInTI(), "exception": None})
    assert lost.error.startswith(
        "unknown"
    )  # the dag processor's heartbeat-timeout callbacks carry no exception


# --- a real failing DAG --------------------------------------------------------------------------


def _probe_dag(captured: list[dict[str, Any]]):
    from airflow.sdk import dag, task

    def capture(context):
        captured.append(context)

    default_args = {
        **DEFAULT_ARGS,
        "retries": 1,  # try 1 → up_for_retry (no alert), try 2 → failed (the alert)
        "retry_delay": timedelta(0),
        "retry_exponential_backoff": False,
        "on_failure_callback": [DEFAULT_ARGS["on_failure_callback"], capture],
    }

    @dag(
        dag_id=PROBE_DAG,
        schedule=None,
        start_date=at(date(2026, 1, 1), 0),
        default_args=default_args,
        doc_md=PROBE_DOC,
    )
    def probe():
        @task
        def explode():
            raise ValueError("widget feed <b>broken</b> & " + "y" * 2000)

        explode()

    return probe()


def _register(dag, tmp_path) -> None:
    """Write a DAG defined in a test module to the metadata DB (``dag.test()`` only syncs the dags folder)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(tmp_path / "no-dags"), bundle_name="dags-folder")
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


@pytest.mark.airflow
def test_a_failed_task_alerts_ops_once_after_its_last_retry(
    airflow_db, ops_env, tmp_path, smtp_server, slack_standin
):
    captured: list[dict[str, Any]] = []
    dag = _probe_dag(captured)
    _register(dag, tmp_path)

    dag_run = dag.test(logical_date=at(date(2026, 3, 2), 9))

    assert dag_run.state == "failed"
    assert len(captured) == 1  # on_failure_callback: once, for the last try only
    ti = captured[0]["ti"]
    assert ti.try_number == 2
    [mail] = smtp_server.messages
    message = mail.message
    assert mail.rcpt_tos == (OPS_EMAIL,)
    assert message["Subject"] == f"[AuxEng] task failed: {PROBE_DAG}.explode"
    body = message.get_content()
    assert f"Run:        {dag_run.run_id}\n" in body
    assert "Try:        2\n" in body
    assert "Error:      ValueError: widget feed <b>broken</b> & yyy" in body
    assert "…" in body and "y" * 2000 not in body  # truncated
    assert f"Log:        {ti.log_url}\n" in body and "try_number=2" in ti.log_url
    assert "What to do: If it fails: check the widget feed, then clear `explode`." in body
    [post] = slack_standin.posts
    assert post.channel == OPS_CHANNEL
    assert f"`{PROBE_DAG}.explode`" in post.text and "try 2" in post.text
    assert "widget feed &lt;b&gt;broken&lt;/b&gt; &amp; yyy" in post.text and "<b>" not in post.text
    assert "*What to do:* If it fails" in post.text
    rows = ops_rows(ops_env)
    assert [(r.channel, r.status, r.dedupe_key.rsplit(":", 3)[1:]) for r in rows] == [
        ("email", "sent", ["2", "email", OPS_EMAIL]),
        ("slack", "sent", ["2", "slack", OPS_CHANNEL]),
    ]
    assert all(
        r.dedupe_key.startswith(f"{MessageKind.OPS_FAILURE}:{PROBE_DAG}:explode:{dag_run.run_id}:-1:")
        for r in rows
    )

    notify_failure(captured[0])  # called again for the same try (e.g. the dag processor's callback)

    assert len(smtp_server.messages) == 1 and len(slack_standin.posts) == 1
    assert len(ops_rows(ops_env)) == 2


# --- idempotency and failure modes (stand-in context) ----------------------------------------------


def test_twice_for_the_same_try_sends_once_and_a_new_try_sends_again(ops_env, smtp_server, slack_standin):
    notify_failure(context_for(StandInTI(try_number=1)))
    notify_failure(context_for(StandInTI(try_number=1)))

    assert len(smtp_server.messages) == 1 and len(slack_standin.posts) == 1

    notify_failure(context_for(StandInTI(try_number=2)))  # cleared and failed again: a new try

    assert len(smtp_server.messages) == 2 and len(slack_standin.posts) == 2
    assert [m.message["Subject"] for m in smtp_server.messages] == [
        "[AuxEng] task failed: auxeng_send_surveys.deliver_outbox"
    ] * 2
    assert ["try 1" in p.text for p in slack_standin.posts] == [True, False]
    assert [(r.channel, r.status) for r in ops_rows(ops_env)] == [("email", "sent"), ("slack", "sent")] * 2


def test_mapped_instances_alert_separately(ops_env, smtp_server, slack_standin):
    for index in (0, 1, 1):
        notify_failure(context_for(StandInTI(map_index=index)))

    assert len(smtp_server.messages) == 2 and len(slack_standin.posts) == 2
    assert "Map index:  1\n" in smtp_server.messages[1].message.get_content()


def test_smtp_down_still_posts_to_slack_and_keeps_the_email_pending(ops_env, smtp_server, slack_standin):
    smtp_server.stop()

    notify_failure(context_for(StandInTI()))  # no exception

    assert len(slack_standin.posts) == 1
    email_row, slack_row = ops_rows(ops_env)
    assert (email_row.status, slack_row.status) == ("pending", "sent")
    assert email_row.attempts == 0 and "cannot connect" in email_row.reason

    smtp_server.start()
    notify_failure(context_for(StandInTI()))  # the same try again: only the pending email goes

    assert len(smtp_server.messages) == 1 and len(slack_standin.posts) == 1
    assert [r.status for r in ops_rows(ops_env)] == ["sent", "sent"]


def test_ops_alerts_ignore_quiet_hours(ops_env, smtp_server, slack_standin):
    sunday_night = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)  # outside 09:00-17:00 on a weekday
    assert load_settings().quiet_start is not None

    alert_failure(context_for(StandInTI()), now=sunday_night)

    assert len(smtp_server.messages) == 1 and len(slack_standin.posts) == 1


def test_an_opted_out_ops_address_gets_nothing_and_slack_still_goes(
    ops_env, monkeypatch, smtp_server, slack_standin, caplog
):
    monkeypatch.setenv("AUXENG_OPS_EMAILS", f"{OPS_EMAIL},oncall@example.com")
    with Session(ops_env) as session:
        session.add(OptOutRow(email=OPS_EMAIL, opted_out_at=datetime(2026, 1, 5, tzinfo=UTC), source="link"))
        session.commit()

    with caplog.at_level(logging.WARNING, logger="auxeng.failures"):
        notify_failure(context_for(StandInTI()))

    assert [m.rcpt_tos for m in smtp_server.messages] == [("oncall@example.com",)]
    assert len(slack_standin.posts) == 1
    assert {r.recipient: r.status for r in ops_rows(ops_env)} == {
        OPS_EMAIL: "skipped",
        "oncall@example.com": "sent",
        OPS_CHANNEL: "sent",
    }
    assert any("opted out" in r.getMessage() for r in caplog.records)


def test_nothing_configured_only_logs_the_line(
    pack_env, store, smtp_connection, slack_api_connection, smtp_server, slack_standin, caplog
):
    with caplog.at_level(logging.INFO, logger="auxeng.failures"):
        notify_failure(context_for(StandInTI()))

    assert smtp_server.messages == [] and slack_standin.posts == []
    assert ops_rows(store) == []
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert line.startswith(
        "AuxEng task failed: dag_id=auxeng_send_surveys task_id=deliver_outbox "
        "run_id=scheduled__2026-03-02T08:00:00+00:00 try=3 error=RuntimeError: SMTP said 451"
    )


def test_store_down_sends_directly_and_never_raises(
    monkeypatch, smtp_connection, slack_api_connection, smtp_server, slack_standin, caplog
):
    unreachable = f"postgresql+psycopg2://auxeng@127.0.0.1:{free_port()}/auxeng?connect_timeout=3"
    monkeypatch.setenv(
        "AIRFLOW_CONN_AUXENG_DB",
        json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": unreachable}}),
    )
    monkeypatch.setenv("AUXENG_OPS_EMAILS", OPS_EMAIL)
    monkeypatch.setenv("AUXENG_OPS_SLACK_CHANNEL", OPS_CHANNEL)

    with caplog.at_level(logging.INFO, logger="auxeng.failures"):
        notify_failure(context_for(StandInTI()))

    assert [m.rcpt_tos for m in smtp_server.messages] == [(OPS_EMAIL,)]
    assert [p.channel for p in slack_standin.posts] == [OPS_CHANNEL]
    assert any("engagement store cannot be used" in r.getMessage() for r in caplog.records)
