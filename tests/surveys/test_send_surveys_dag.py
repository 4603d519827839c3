"""``auxeng_send_surveys`` and ``auxeng_deliver_outbox`` run for real (``dag.test()``) on the
demo data, against a real SMTP server, the Slack stand-in and the response page under uvicorn.

One engagement's life after it ends: invitations in each person's working hours,
an answer through the page, reminders on the right days to the others only, a
detractor alert to the lead; re-runs send nothing twice.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from urllib.parse import urlparse

import pytest
from sqlalchemy import func, select

from auxeng.messaging.sendwindow import window_from_payload
from auxeng.store.db import get_engine, session_scope
from auxeng.store.models import OutboxRow, SurveyInvitationRow
from tests.support.dagruns import at, run
from tests.web.conftest import KEY_TEXT, live, registry_store, web_app  # noqa: F401

pytestmark = pytest.mark.airflow

DAY = date(2026, 11, 26)  # Thursday
MONDAY = date(2026, 11, 30)
SCORE_LINK = re.compile(r"^ +(\d+): (\S+)$", re.MULTILINE)


@pytest.fixture
def pack(pack_env, live, smtp_connection, slack_api_connection, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AUXENG_SECRET_KEY", KEY_TEXT)
    monkeypatch.setenv("AUXENG_PUBLIC_URL", live.public_url)
    return live


def outbox(store_url, *where) -> list[OutboxRow]:
    with session_scope(get_engine(store_url)) as session:
        return list(session.scalars(select(OutboxRow).where(*where).order_by(OutboxRow.id)))


def emails_to(smtp_server, address: str) -> list:
    return [m for m in smtp_server.messages if address in m.rcpt_tos]


def test_surveys_from_end_to_reminders_and_detractor_alert(dags, pack, store_url, smtp_server, slack_standin):
    run(dags, "auxeng_sync_registry", at(DAY, 4))
    run(dags, "auxeng_detect_ended", at(DAY, 5))
    assert run(dags, "auxeng_send_surveys", at(DAY, 8)) == {
        "queue_invitations": "success",
        "queue_reminders": "success",
        "queue_detractor_alerts": "success",
        "deliver_outbox": "success",
    }
    invites = outbox(store_url, OutboxRow.kind == "survey_invite")
    assert invites
    # at 08:00 UTC only people whose working day has begun got theirs (Berlin, Kolkata, …)
    sent_early = [row for row in invites if row.status == "sent"]
    assert sent_early and len(sent_early) < len(invites)
    for row in sent_early:
        assert window_from_payload(row.payload).contains(at(DAY, 8)), row.recipient
    run(dags, "auxeng_deliver_outbox", at(DAY, 12))
    run(dags, "auxeng_deliver_outbox", at(DAY, 20))
    invites = outbox(store_url, OutboxRow.kind == "survey_invite")
    assert Counter(row.status for row in invites) == {"sent": len(invites)}
    email_invites = [row for row in invites if row.channel == "email"]
    assert len(smtp_server.messages) == len(email_invites)
    assert len([p for p in slack_standin.posts if p.method == "chat.postMessage"]) == len(invites) - len(
        email_invites
    )

    # Re-running the same day, and the next one, sends nothing new.
    received = len(smtp_server.messages)
    run(dags, "auxeng_send_surveys", at(DAY, 8))
    run(dags, "auxeng_send_surveys", at(date(2026, 11, 27), 8))
    run(dags, "auxeng_deliver_outbox", at(date(2026, 11, 27), 20))
    assert len(smtp_server.messages) == received

    # Bea answers 3/10 from the link in her email (the "3" link), through the real page.
    (bea_invite,) = emails_to(smtp_server, "bea.zhang@example.com")
    message = bea_invite.message
    assert message["Message-ID"] in {row.external_id for row in email_invites}
    assert message["List-Unsubscribe"].startswith(f"<{pack.public_url}/optout/")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    links = dict(SCORE_LINK.findall(text))
    assert sorted(links, key=int) == [str(n) for n in range(11)]
    assert html.count("?score=") == 11
    link = urlparse(links["3"])
    page = pack.client.get(f"{link.path}?{link.query}")  # what a mail scanner does, too
    assert page.status_code == 200 and 'value="3" checked' in page.text.replace(
        'checked="checked"', "checked"
    )
    with session_scope(get_engine(store_url)) as session:
        assert session.scalar(select(func.count()).select_from(SurveyInvitationRow).where(
            SurveyInvitationRow.answered_at.is_not(None))) == 0  # fmt: skip
    answer = pack.client.post(
        link.path,
        data={
            "nps": "3",
            "went_well": "Runbooks",
            "to_change": "<script>alert(1)</script> The handover was rushed",
            "business_goals": "partly",
            "technical_goals": "no",
        },
    )
    assert answer.status_code in (200, 303), answer.text

    # Monday: reminder 1 (due Sunday, held to the working week) to everyone but Bea,
    # and the detractor alert to the engagement's AuxEng lead, Heidi.
    run(dags, "auxeng_detect_ended", at(MONDAY, 5))
    run(dags, "auxeng_send_surveys", at(MONDAY, 8))
    run(dags, "auxeng_deliver_outbox", at(MONDAY, 12))
    run(dags, "auxeng_deliver_outbox", at(MONDAY, 20))
    reminders = outbox(store_url, OutboxRow.kind == "survey_reminder", OutboxRow.channel == "email")
    assert reminders and {row.status for row in reminders} == {"sent"}
    assert "bea.zhang@example.com" not in {row.recipient for row in reminders}
    assert "chidi.berg@example.com" in {row.recipient for row in reminders}
    for row in reminders:
        assert row.sent_at is not None
    (alert,) = [
        m for m in emails_to(smtp_server, "heidi.sauer@example.com") if "Detractor" in m.message["Subject"]
    ]
    alert_html = alert.message.get_body(("html",)).get_content()
    assert "3/10" in alert.message["Subject"]
    assert "&lt;script&gt;" in alert_html and "<script>" not in alert_html

    # Over the whole story: every email once (distinct Message-IDs), every row sent once.
    ids = [m.message_id for m in smtp_server.messages]
    assert len(ids) == len(set(ids))
    total = len(smtp_server.messages)
    run(dags, "auxeng_send_surveys", at(MONDAY, 8))
    run(dags, "auxeng_deliver_outbox", at(MONDAY, 20))
    assert len(smtp_server.messages) == total


def test_dry_run_renders_and_reports_but_queues_and_sends_nothing(dags, pack, store_url, smtp_server):
    run(dags, "auxeng_sync_registry", at(DAY, 4))
    run(dags, "auxeng_detect_ended", at(DAY, 5))
    run(dags, "auxeng_send_surveys", at(DAY, 14), dry_run=True)
    assert outbox(store_url) == []
    assert smtp_server.messages == []
    with session_scope(get_engine(store_url)) as session:
        assert session.scalar(select(func.count()).select_from(SurveyInvitationRow)) == 0
