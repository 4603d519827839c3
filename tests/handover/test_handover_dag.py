"""``auxeng_checkins`` hands over ended engagements for real (``dag.test()``): the demo registry,
the loopback SMTP server and the Slack stand-in; two days of runs deliver each handover once."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.store.db import get_engine
from auxeng.store.models import OutboxRow
from auxeng.vocabulary import MessageKind
from tests.support.dagruns import at, run

pytestmark = pytest.mark.airflow

# ENG-2026-039 (Warehouse Ops) ended on Friday 2026-11-20: Wen Moss manages the team, Xavi Ng is the
# host tech lead, both in Los Angeles; the team has its own help_after_end.
ENGAGEMENT, MANAGER, TECH_LEAD = "ENG-2026-039", "wen.moss@example.com", "xavi.ng@example.com"
SLACK_IDS = {MANAGER: "U0WENMO", TECH_LEAD: "U0XAVING"}


@pytest.fixture
def pack(pack_env, smtp_connection, slack_api_connection, monkeypatch):
    monkeypatch.setenv("AUXENG_SECRET_KEY", "handover-test-key-0123456789abcdef")


def day_of(dags, day: date) -> None:
    """Registry sync, end detection, check-ins at 08:30 UTC, delivery at 20:00 UTC (noon in Los Angeles)."""
    run(dags, "auxeng_sync_registry", at(day, 4))
    run(dags, "auxeng_detect_ended", at(day, 5))
    run(dags, "auxeng_checkins", at(day, 8, 30))
    run(dags, "auxeng_deliver_outbox", at(day, 20))


def handover_emails(smtp_server) -> dict[str, list]:
    found: dict[str, list] = {}
    for received in smtp_server.messages:
        subject = " ".join(str(received.message["Subject"]).split())
        if subject.endswith("has ended: what happens now, and where to get help"):
            found.setdefault(received.rcpt_tos[0], []).append(received.message)
    return found


def test_the_handover_is_queued_and_delivered_once_across_two_days(
    dags, pack, store_url, smtp_server, slack_standin
):
    day_of(dags, date(2026, 11, 25))
    day_of(dags, date(2026, 11, 26))

    with Session(get_engine(store_url)) as session:
        rows = list(
            session.scalars(
                select(OutboxRow).where(
                    OutboxRow.kind == MessageKind.HANDOVER, OutboxRow.engagement_key == ENGAGEMENT
                )
            )
        )
    assert sorted((r.recipient_email, r.channel, r.status) for r in rows) == [
        (MANAGER, "email", "sent"),
        (MANAGER, "slack", "sent"),
        (TECH_LEAD, "email", "sent"),
        (TECH_LEAD, "slack", "sent"),
    ]

    emails = handover_emails(smtp_server)
    assert len(emails[MANAGER]) == 1 and len(emails[TECH_LEAD]) == 1
    text = emails[TECH_LEAD][0].get_body(("plain",)).get_content()
    assert "From 2026-11-21 the platform team does no more work for Warehouse Ops" in text
    assert "- Slack: #logistics-platform" in text  # the team's
    assert "- Documentation: https://docs.example.com/platform" in text  # the program's
    assert "On 2027-02-20 we check in with you" in text
    html = emails[TECH_LEAD][0].get_body(("html",)).get_content()
    assert '<a href="https://wiki.example.com/logistics/office-hours"' in html

    for email, user in SLACK_IDS.items():
        dms = [p for p in slack_standin.posts_to(f"D{user}") if p.text and "has ended" in p.text]
        assert len([p for p in dms if ENGAGEMENT in p.text]) == 1, email
