"""deliver(): missing connections, the dev outbox, dry runs, attempts, send windows, leases."""

from __future__ import annotations

import email
import email.policy
import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from auxeng.delivery import (
    DeliveryIncomplete,
    DevFileTransport,
    PermanentDeliveryError,
    SlackApiTransport,
    SmtpTransport,
    TransientDeliveryError,
    deliver,
    resolve_transports,
)
from auxeng.delivery.drain import utcnow
from auxeng.messaging.outbox import message_id
from auxeng.settings import SettingsError, load_settings
from auxeng.store.models import OutboxRow
from tests.delivery.conftest import (
    NOW,
    Recorder,
    add_engagement,
    email_message,
    make_settings,
    opt_out,
    queue,
    rows,
    slack_message,
)
from tests.support.statements import counting


def snapshot(store):
    return {
        key: (r.status, r.reason, r.attempts, r.claimed_until, r.not_before, r.sent_at)
        for key, r in rows(store).items()
    }


def test_missing_connections_leave_messages_pending_and_say_what_to_create(store):
    queue(store, email_message(1), slack_message(2, "U0TWO"), slack_message(3, "#general"))

    report = deliver(store, now=NOW, settings=make_settings())

    assert report.transports == {}
    assert "'smtp_default'" in report.missing["email"] and "AUXENG_DEV_OUTBOX" in report.missing["email"]
    assert "'slack_api_default'" in report.missing["slack"]
    assert report.waiting == {"email": 1, "slack": 2}
    assert all(
        r.status == "pending" and r.attempts == 0 and r.claimed_until is None for r in rows(store).values()
    )
    with pytest.raises(DeliveryIncomplete) as raised:
        report.raise_for_problems()
    message = str(raised.value)
    assert "email: 1 due message(s) cannot be sent: no Airflow connection 'smtp_default'" in message
    assert "slack: 2 due message(s) cannot be sent" in message
    assert raised.value.report is report


def test_a_channel_without_due_messages_is_not_a_problem(store):
    queue(store, email_message(1, not_before=NOW + timedelta(days=1)))
    report = deliver(store, now=NOW, settings=make_settings())
    assert report.missing and report.not_due == {"email": 1}
    report.raise_for_problems()  # nothing due: nothing is being held back


def test_resolution_prefers_connections_then_the_dev_outbox(tmp_path, monkeypatch, smtp_connection):
    settings = make_settings(dev_outbox=tmp_path / "outbox")
    transports, missing = resolve_transports(settings)
    assert isinstance(transports["email"], SmtpTransport)
    assert transports["email"].email_from == "auxeng@example.com"  # the connection's from_email
    assert isinstance(transports["slack"], DevFileTransport)  # no Slack connection: the dev outbox
    assert missing == {}

    transports, _ = resolve_transports(make_settings(email_from="AuxEng <team@auxeng.example.org>"))
    assert transports["email"].email_from == "AuxEng <team@auxeng.example.org>"

    monkeypatch.setenv("AIRFLOW_CONN_SLACK_API_DEFAULT", json.dumps({"conn_type": "slack", "password": "x"}))
    transports, _ = resolve_transports(settings)
    assert isinstance(transports["slack"], SlackApiTransport)


def test_an_smtp_connection_without_a_sender_is_missing(store, monkeypatch, smtp_server):
    conn = {"conn_type": "smtp", "host": smtp_server.host, "port": smtp_server.port, "extra": {}}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(conn))
    queue(store, email_message(1))

    report = deliver(store, now=NOW, settings=make_settings(), channels=["email"])

    assert "AUXENG_EMAIL_FROM" in report.missing["email"] and "from_email" in report.missing["email"]
    assert report.waiting == {"email": 1}
    assert smtp_server.messages == []


def test_the_dev_outbox_writes_readable_files(store, tmp_path):
    outbox = tmp_path / "dev-outbox"
    queue(
        store,
        email_message(1, recipient="o'brien/ops+x@example.com"),  # a "/" in a file name
        slack_message(2, "email:person2@example.com"),
    )

    report = deliver(store, now=NOW, settings=make_settings(dev_outbox=outbox))

    assert report.sent == {"email": 1, "slack": 1} and report.transports == {"email": "dev", "slack": "dev"}
    state = rows(store)
    row_1, row_2 = state["test:1:email"], state["test:2:slack"]
    eml = outbox / "email" / f"{row_1.id:06d}-survey_invite-o_brien_ops+x@example.com.eml"
    parsed = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "Person 1 <o'brien/ops+x@example.com>"
    assert parsed["Message-ID"] == message_id("test:1:email", "localhost") == row_1.external_id
    assert [p.get_content_type() for p in parsed.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    post = json.loads(
        (outbox / "slack" / f"{row_2.id:06d}-survey_invite-email_person2@example.com.json").read_text()
    )
    assert post["recipient"] == "email:person2@example.com"
    assert post["text"].startswith("Hello person 2")
    assert post["blocks"][0]["type"] == "section"
    assert (row_1.transport, row_2.transport) == ("dev", "dev")
    assert sorted(p.name for p in outbox.rglob("*") if p.is_file() and p.name.startswith(".")) == []


def test_a_dry_run_changes_nothing_and_says_what_would_happen(store, tmp_path):
    add_engagement(store, "ENG-1", status="cancelled")
    queue(
        store,
        email_message(1),
        email_message(2, kind="survey_reminder"),
        email_message(3),  # opted out
        email_message(4, engagement_key="ENG-1", requires_ended=True),  # cancelled
        email_message(5, not_before=NOW + timedelta(hours=1)),
        slack_message(6, "U0SIX"),
    )
    opt_out(store, "person3@example.com", NOW - timedelta(days=1))
    before = snapshot(store)
    email_transport, slack_transport = Recorder("email"), Recorder("slack")

    report = deliver(
        store,
        now=NOW,
        settings=make_settings(),
        dry_run=True,
        transports={"email": email_transport, "slack": slack_transport},
    )

    assert snapshot(store) == before
    assert email_transport.opened == slack_transport.opened == 0
    assert report.dry_run and sum(report.sent.values()) == 0
    assert report.would_send == {
        "email": {"survey_invite": 1, "survey_reminder": 1},
        "slack": {"survey_invite": 1},
    }
    assert report.skipped == {"email": 2}
    assert report.skipped_by == {"opted_out": 1, "engagement_cancelled": 1}
    assert report.not_due == {"email": 1}
    assert report.samples[0] == "email survey_invite → person1@example.com: How did engagement 1 go?"
    summary = report.summary()
    assert summary["would_send"]["email"] == {"survey_invite": 1, "survey_reminder": 1}
    json.dumps(summary)


def test_transient_errors_use_up_attempts_then_fail(store):
    queue(store, email_message(1))
    flaky = Recorder("email", errors={"person1@example.com": TransientDeliveryError("smtp 451 try later")})
    settings = make_settings(outbox_max_attempts=3)

    for attempt in (1, 2):
        report = deliver(store, now=NOW, settings=settings, transports={"email": flaky}, channels=["email"])
        row = rows(store)["test:1:email"]
        assert (row.status, row.attempts, row.reason) == ("pending", attempt, "smtp 451 try later")
        assert report.deferred == {"email": 1} and report.errors["email"] == "smtp 451 try later"
        with pytest.raises(DeliveryIncomplete, match="email: 1 due message"):
            report.raise_for_problems()

    report = deliver(store, now=NOW, settings=settings, transports={"email": flaky}, channels=["email"])
    row = rows(store)["test:1:email"]
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.reason == "gave up after 3 attempts: smtp 451 try later"
    assert report.failed == {"email": 1} and report.deferred == {}
    report.raise_for_problems()  # failed for good: nothing to retry


def test_a_permanent_error_fails_only_that_message(store):
    queue(store, email_message(1), email_message(2), email_message(3))
    transport = Recorder(
        "email", errors={"person2@example.com": PermanentDeliveryError("smtp 550 no such user")}
    )

    report = deliver(
        store, now=NOW, settings=make_settings(), transports={"email": transport}, channels=["email"]
    )

    assert transport.recipients == ["person1@example.com", "person3@example.com"]
    failed = rows(store)["test:2:email"]
    assert (failed.status, failed.reason, failed.attempts) == ("failed", "smtp 550 no such user", 1)
    assert report.failed == {"email": 1} and report.sent == {"email": 2}
    assert report.problems == [f"email #{failed.id} person2@example.com: smtp 550 no such user"]
    report.raise_for_problems()


def test_a_transport_that_keeps_failing_is_stopped_for_the_run(store):
    queue(store, *(email_message(n) for n in range(6)))
    error = TransientDeliveryError("smtp 421 overloaded")
    transport = Recorder("email", errors={f"person{n}@example.com": error for n in range(6)})

    report = deliver(
        store, now=NOW, settings=make_settings(), transports={"email": transport}, channels=["email"]
    )

    attempts = sorted(r.attempts for r in rows(store).values())
    assert attempts == [0, 0, 0, 1, 1, 1]  # three tries, then the rest left alone
    assert all(r.status == "pending" and r.claimed_until is None for r in rows(store).values())
    assert report.deferred == {"email": 6}
    assert "3 transient errors in a row" in report.errors["email"]


def test_a_transport_that_cannot_open_counts_no_attempt(store):
    class Down(Recorder):
        def __enter__(self):
            raise TransientDeliveryError("smtp: cannot connect to mail:25: refused", transport_down=True)

    queue(store, email_message(1), email_message(2))
    report = deliver(
        store, now=NOW, settings=make_settings(), transports={"email": Down()}, channels=["email"]
    )

    for row in rows(store).values():
        assert (row.status, row.attempts, row.claimed_until) == ("pending", 0, None)
        assert row.reason == "not attempted: smtp: cannot connect to mail:25: refused"
    assert report.deferred == {"email": 2}
    with pytest.raises(DeliveryIncomplete, match="cannot connect"):
        report.raise_for_problems()


def test_an_unexpected_error_is_retried_later_not_fatal(store):
    queue(store, email_message(1), email_message(2))
    transport = Recorder("email", errors={"person1@example.com": KeyError("to_name")})

    report = deliver(
        store, now=NOW, settings=make_settings(), transports={"email": transport}, channels=["email"]
    )

    state = rows(store)
    assert (state["test:1:email"].status, state["test:1:email"].reason) == (
        "pending",
        "unexpected KeyError: 'to_name'",
    )
    assert state["test:2:email"].status == "sent"
    assert report.deferred == {"email": 1}


def test_leases_are_released_when_the_run_dies(store):
    class Interrupted(Exception):
        pass

    queue(store, *(email_message(n) for n in range(4)))

    class Dying(Recorder):
        def send(self, message):
            if len(self.sent) == 2:
                raise SystemExit("worker shutting down")  # not an Exception: it ends the run
            return super().send(message)

    with pytest.raises(SystemExit):
        deliver(store, now=NOW, settings=make_settings(), transports={"email": Dying()}, channels=["email"])

    state = sorted(rows(store).values(), key=lambda r: r.id)
    # The third was being handed over when the run ended: it may have gone out, so it stays
    # "sending" under its lease (then in doubt, never re-sent); the fourth was never handed over.
    assert [r.status for r in state] == ["sent", "sent", "sending", "pending"]
    assert [r.claimed_until is None for r in state] == [True, True, False, True]
    assert [r.attempts for r in state] == [1, 1, 0, 0]


def test_a_live_lease_keeps_other_drainers_away(store):
    queue(store, email_message(1), email_message(2))
    with store.begin() as conn:  # another drainer holds row 1
        conn.execute(
            update(OutboxRow)
            .where(OutboxRow.dedupe_key == "test:1:email")
            .values(claimed_until=NOW + timedelta(days=3650))
        )
    transport = Recorder("email")
    report = deliver(
        store, now=NOW, settings=make_settings(), transports={"email": transport}, channels=["email"]
    )
    assert transport.recipients == ["person2@example.com"]
    assert report.leased == {"email": 1}
    report.raise_for_problems()  # someone else is on it


def test_messages_outside_the_send_window_move_to_its_next_opening(store):
    window = {"send_window": {"tz": "America/New_York", "start": "09:00", "end": "17:00"}}
    queue(
        store,
        email_message(1, payload=window),  # 10:00 UTC is 05:00 in New York
        email_message(2, payload={"send_window": {"tz": "Europe/Berlin", "start": "09:00", "end": "17:00"}}),
    )
    transport = Recorder("email")

    report = deliver(
        store, now=NOW, settings=make_settings(), transports={"email": transport}, channels=["email"]
    )

    assert transport.recipients == ["person2@example.com"]
    moved = rows(store)["test:1:email"]
    assert moved.status == "pending" and moved.attempts == 0
    assert moved.not_before == NOW.replace(hour=14)  # 09:00 in New York
    assert "outside the recipient's send window" in moved.reason
    assert report.rescheduled == {"email": 1} and report.not_due == {"email": 1}
    report.raise_for_problems()


def test_a_long_batch_renews_its_leases(store):
    """Past half the lease, the rows still to send get a new lease before the next send."""
    queue(store, email_message(1), email_message(2))
    seen: list = []

    class Slow(Recorder):
        def send(self, message):
            if not self.sent:
                time.sleep(0.6)  # more than half of the 1 s lease: a renewal is due before row 2
            else:
                seen.append(rows(store)["test:2:email"].claimed_until)
            return super().send(message)

    started = utcnow()
    report = deliver(
        store,
        now=NOW,
        settings=make_settings(outbox_lease_seconds=1),
        transports={"email": Slow()},
        channels=["email"],
    )

    assert report.sent == {"email": 2}
    (renewed,) = seen
    assert renewed >= started + timedelta(seconds=1.5)  # claimed at ~started with 1 s; renewed after 0.6 s


def test_sent_rows_are_marked_once_per_group_not_once_per_message(store):
    """45 messages, batches of 30, groups of 10: 5 groups, each one "sending" UPDATE before and
    one "sent" UPDATE after (counted statements: deterministic)."""
    queue(store, *(email_message(n) for n in range(45)))
    transport = Recorder("email")
    with counting(store) as statements:
        report = deliver(
            store,
            now=NOW,
            settings=make_settings(),
            transports={"email": transport},
            channels=["email"],
            batch_size=30,
            mark_every=10,
        )
    assert report.sent == {"email": 45} and len(transport.sent) == 45
    updates = [" ".join(s.split()) for s in statements.sql if s.lstrip().upper().startswith("UPDATE")]
    marked_sent = [s for s in updates if "external_id" in s]
    marked_sending = [
        s
        for s in updates
        if s.startswith("UPDATE auxeng_outbox SET status=")
        and s.endswith(("RETURNING id", "RETURNING auxeng_outbox.id"))
    ]
    assert len(marked_sent) == 5, updates
    assert len(marked_sending) == 5, updates
    assert len(statements) < 45, statements.by_verb()  # nothing per message
    state = rows(store)
    assert {(r.status, r.attempts, r.transport, r.claimed_until) for r in state.values()} == {
        ("sent", 1, "recorder", None)
    }
    assert {r.external_id for r in state.values()} == {f"rec-{r.id}" for r in state.values()}


def test_a_drainer_claims_the_configured_batch_size_at_a_time(store, monkeypatch):
    """``AUXENG_OUTBOX_BATCH_SIZE`` rows per claim, one transport session each: a small backlog
    spreads over several drainers instead of going to the first one that claims."""
    queue(store, *(email_message(n) for n in range(23)))
    monkeypatch.setenv("AUXENG_OUTBOX_BATCH_SIZE", "5")
    transport = Recorder("email")
    report = deliver(store, now=NOW, transports={"email": transport}, channels=["email"])
    assert report.sent == {"email": 23} and transport.opened == 5  # 5 + 5 + 5 + 5 + 3

    with pytest.raises(SettingsError, match="AUXENG_OUTBOX_BATCH_SIZE"):
        load_settings({"AUXENG_OUTBOX_BATCH_SIZE": "0"})
