"""``auxeng_dependency_alerts`` run for real (``dag.test()``) over a sequence of days, on SQLite
and PostgreSQL: a help-request flag is opened, alerted once, escalated, acknowledged and
auto-resolved; alerts reach a real SMTP server on loopback and the Slack stand-in."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.redflags.store import acknowledge
from auxeng.store.models import FlagEventRow, FlagRow, OutboxRow
from tests.support.dagruns import at, run
from tests.support.independence_rows import insert_week, segment
from tests.web.conftest import KEY_TEXT, registry_store  # noqa: F401

pytestmark = pytest.mark.airflow

DAG_ID = "auxeng_dependency_alerts"
HELP_FLAG = "help_requests:team:fulfillment"  # Fulfillment's last engagement ended 2026-08-27
LOAD_FLAG = "engineer_load:engineer:frank.ito@example.com"  # ENG-2026-038, -039, then -040 from 11-30
MANAGERS = {"dana.ruiz@example.com", "sam.okoro@example.com"}
HOST_MANAGER = "olga.dahl@example.com"
HEADER = "team,date,summary,link\n"


def write_requests(path, days: list[date]) -> None:
    rows = [
        f'fulfillment,{d.isoformat()},"Deploy broke again ({n})",https://jira.example.com/FUL-{n}\n'
        for n, d in enumerate(days)
    ]
    path.write_text(HEADER + "".join(rows))


def flag(store, open_key_or_id) -> FlagRow:
    with Session(store) as session:
        if isinstance(open_key_or_id, int):
            return session.get(FlagRow, open_key_or_id)
        return session.scalars(select(FlagRow).where(FlagRow.open_key == open_key_or_id)).one()


def alerts_for(store, flag_id: int) -> list[OutboxRow]:
    with Session(store) as session:
        return list(
            session.scalars(
                select(OutboxRow)
                .where(OutboxRow.kind == "flag_alert", OutboxRow.dedupe_key.like(f"flag_alert:{flag_id}:%"))
                .order_by(OutboxRow.id)
            )
        )


def events(store, flag_id: int) -> list[str]:
    with Session(store) as session:
        return list(
            session.scalars(
                select(FlagEventRow.event).where(FlagEventRow.flag_id == flag_id).order_by(FlagEventRow.id)
            )
        )


@pytest.fixture
def alerting(pack_env, registry_store, monkeypatch, tmp_path, smtp_connection, slack_api_connection):  # noqa: F811
    monkeypatch.setenv("AUXENG_SECRET_KEY", KEY_TEXT)
    monkeypatch.setenv("AUXENG_PUBLIC_URL", "https://airflow.example.com/auxeng")
    drop = tmp_path / "help_requests.csv"
    monkeypatch.setenv("AUXENG_HELP_REQUESTS_CSV", str(drop))
    return registry_store, drop


def test_a_flag_is_opened_alerted_once_escalated_acknowledged_and_resolved(
    dags, alerting, smtp_server, slack_standin
):
    store, drop = alerting
    day1 = date(2026, 12, 1)
    write_requests(drop, [date(2026, 11, 28), date(2026, 11, 30)])

    run(dags, DAG_ID, at(day1, 9))
    opened = flag(store, HELP_FLAG)
    assert (opened.status, opened.severity, opened.evidence["requests"]) == ("open", "warning", 2)
    first = alerts_for(store, opened.id)
    assert {(m.channel, m.recipient_email) for m in first} == {
        (channel, email) for channel in ("email", "slack") for email in (*MANAGERS, HOST_MANAGER)
    }
    assert all(m.status == "sent" for m in first)
    received = {
        rcpt for m in smtp_server.messages for rcpt in m.rcpt_tos if "Fulfillment" in m.message["Subject"]
    }
    assert received == MANAGERS | {HOST_MANAGER}
    mail = next(m.message for m in smtp_server.messages if "Fulfillment" in m.message["Subject"])
    assert mail["Subject"].startswith("[WARNING] Host team still asking for help: Fulfillment")
    body = mail.get_body(("plain",)).get_content()
    assert "Deploy broke again (1)" in body and "https://jira.example.com/FUL-1" in body
    assert "https://airflow.example.com/auxeng/flags/ack/" in body
    assert {p.conversation for p in slack_standin.posts if "Fulfillment" in (p.text or "")} == {
        "DU0DANA",
        "DU0SAMOK",
        "DU0OLGADA",
    }
    # Engineer load goes to the program managers only (never to a host manager).
    load = flag(store, LOAD_FLAG)
    assert {m.recipient_email for m in alerts_for(store, load.id)} == MANAGERS

    # Day 2: same facts. One flag, no new alert.
    run(dags, DAG_ID, at(day1 + timedelta(days=1), 9))
    assert flag(store, HELP_FLAG).id == opened.id
    assert len(alerts_for(store, opened.id)) == len(first)

    # Day 3: three more requests (5 in 30 days): escalated to critical and announced again.
    day3 = day1 + timedelta(days=2)
    write_requests(drop, [date(2026, 11, 28), date(2026, 11, 30), day3, day3, day3 - timedelta(days=1)])
    run(dags, DAG_ID, at(day3, 9))
    escalated = flag(store, HELP_FLAG)
    assert (escalated.id, escalated.severity, escalated.announcements) == (opened.id, "critical", 2)
    second = alerts_for(store, opened.id)[len(first) :]
    assert len(second) == len(first) and all(":2:" in m.dedupe_key for m in second)
    assert any("[CRITICAL] Escalated" in (m.subject or "") for m in second)

    # A manager acknowledges it (what the alert's link page records).
    with Session(store) as session:
        outcome = acknowledge(
            session, opened.id, by="dana.ruiz@example.com", note="Pairing session booked", now=at(day3, 11)
        )
        session.commit()
    assert outcome.state == "acknowledged"

    # A week later: the acknowledged flag is not re-announced; the open engineer-load flag is, once.
    announcements = load.announcements
    for offset in range(3, 10):
        run(dags, DAG_ID, at(day1 + timedelta(days=offset), 9))
    assert len(alerts_for(store, opened.id)) == 2 * len(first)
    assert flag(store, LOAD_FLAG).announcements == announcements + 1

    # 30 days after the last request, the condition has cleared: resolved, nothing sent.
    run(dags, DAG_ID, at(day3 + timedelta(days=29), 9))
    assert flag(store, opened.id).status == "acknowledged"
    run(dags, DAG_ID, at(day3 + timedelta(days=30), 9))
    resolved = flag(store, opened.id)
    assert (resolved.status, resolved.open_key) == ("resolved", None)
    assert resolved.resolved_reason == f"the condition cleared on {(day3 + timedelta(days=30)).isoformat()}"
    assert len(alerts_for(store, opened.id)) == 2 * len(first)
    # Easing back to a warning as requests leave the window is recorded, never announced.
    assert events(store, opened.id) == [
        "opened",
        "announced",
        "escalated",
        "announced",
        "acknowledged",
        "eased",
        "resolved",
    ]


def test_a_dry_run_changes_and_sends_nothing(dags, alerting, smtp_server):
    store, drop = alerting
    write_requests(drop, [date(2026, 11, 28), date(2026, 11, 30)])
    run(dags, DAG_ID, at(date(2026, 12, 1), 9, 30), dry_run=True)
    with Session(store) as session:
        assert session.scalars(select(FlagRow)).all() == []
        assert session.scalars(select(OutboxRow)).all() == []
    assert smtp_server.messages == []


def ts(moment) -> str:
    return f"{moment.timestamp():.6f}"


def test_help_channel_messages_open_a_flag_and_an_unreadable_channel_fails_only_its_task(
    dags, alerting, smtp_server, slack_standin
):
    store, _ = alerting
    day = date(2026, 12, 1)
    slack_standin.seed_history(
        "C0FULFILLM",
        [
            {
                "user": "U0PAVELEV",
                "text": "Deploys fail since the upgrade, help?",
                "ts": ts(at(day, 8) - timedelta(days=5)),
            },
            {
                "user": "U0OSCAR",
                "text": "Looking into it",
                "ts": ts(at(day, 8) - timedelta(days=5, minutes=-5)),
            },
            {
                "bot_id": "B1",
                "subtype": "bot_message",
                "text": "Build #41 failed",
                "ts": ts(at(day, 8) - timedelta(days=4)),
            },
            {
                "user": "U0PAVELEV",
                "text": "thanks!",
                "thread_ts": ts(at(day, 8) - timedelta(days=5)),
                "ts": ts(at(day, 8) - timedelta(days=3)),
            },
            {
                "user": "U0QUINNFI",
                "text": "Who owns the alert rules now?",
                "ts": ts(at(day, 8) - timedelta(days=1)),
            },
        ],
    )
    slack_standin.missing_channels.add("C0CUSTOMER")

    dag = dags.dags[DAG_ID]
    for task in dag.tasks:
        task.retries = 0
    dag_run = dag.test(logical_date=at(day, 9, 15), run_conf={"dry_run": False})
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    # The failed read is red in the grid and goes to the failure notifier; the run itself
    # ends with its leaves (the alerts went out), as Airflow decides a run's state.
    assert states == {
        "read_help_channels": "failed",
        "import_help_requests": "success",
        "evaluate_flags": "success",
        "queue_flag_alerts": "success",
        "deliver_outbox": "success",
    }
    opened = flag(store, HELP_FLAG)
    assert opened.evidence["requests"] == 2 and opened.evidence["sources"] == {"slack": 2, "csv": 0}
    quotes = [item["summary"] for item in opened.evidence["latest"]]
    assert quotes == ["Who owns the alert rules now?", "Deploys fail since the upgrade, help?"]
    assert {m.recipient_email for m in alerts_for(store, opened.id)} == MANAGERS | {HOST_MANAGER}


def test_an_independence_flag_reaches_the_managers_by_email_and_slack(
    dags, alerting, smtp_server, slack_standin
):
    store, _ = alerting
    with Session(store) as session:
        for n, (mean, help_asks) in enumerate([(72.0, 90.0), (60.0, 50.0), (41.0, 5.0)]):
            insert_week(
                session,
                date(2026, 11, 9) + timedelta(weeks=n),
                segments=[
                    segment("team", "fulfillment", mean, {"help_asks": help_asks, "maintainability": 75.0})
                ],
            )
        session.commit()
    run(dags, DAG_ID, at(date(2026, 12, 1), 9))
    opened = flag(store, "independence:team:fulfillment")
    assert (opened.status, opened.severity, opened.evidence["drop"]) == ("open", "warning", 31.0)
    assert {m.recipient_email for m in alerts_for(store, opened.id)} == MANAGERS
    mail = next(m.message for m in smtp_server.messages if "independence" in m.message["Subject"])
    assert mail["Subject"] == "[WARNING] Host team independence low or falling: Fulfillment"
    body = mail.get_body(("plain",)).get_content()
    assert "Fulfillment: independence 41/100 in the week of 2026-11-23, below 50; down 31 points" in body
    assert "help_asks: 90.0 → 5.0 points (-85)" in body
    html = mail.get_body(("html",)).get_content()
    assert "help_asks: 90.0 → 5.0 points (-85)" in html
    posts = [p for p in slack_standin.posts if "independence" in (p.text or "")]
    assert {p.conversation for p in posts} == {"DU0DANA", "DU0SAMOK"}
