"""The acknowledge page of a red flag (signed link from the alert), served by a real uvicorn server,
on SQLite and PostgreSQL: a GET never writes, the POST records who and why, bad links are refused."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from auxeng.messaging import tokens
from auxeng.redflags.rules import Flag
from auxeng.redflags.store import reconcile
from auxeng.store.db import session_scope
from auxeng.store.models import FlagEventRow, FlagRow
from tests.web.conftest import KEY, NOW

MANAGER = "dana.ruiz@example.com"
EVIDENCE = {
    "requests": 3,
    "window_days": 30,
    "since": "2026-08-27",
    "engagement": "ENG-2026-028",
    "sources": {"slack": 2, "csv": 1},
    "latest": [
        {"on": "2026-11-25", "source": "slack", "author": "U0PAVELEV", "summary": "<b>help</b>", "link": None}
    ],
}


def open_flag(engine) -> int:
    finding = Flag(
        rule="help_requests",
        subject_kind="team",
        subject_key="fulfillment",
        severity="warning",
        summary="Fulfillment asked for help 3 times in the last 30 days",
        evidence=EVIDENCE,
        team_key="fulfillment",
        engagement_key="ENG-2026-028",
    )
    with session_scope(engine) as session:
        reconcile(session, [finding], as_of=NOW.date(), now=NOW)
        return session.scalars(select(FlagRow.id)).one()


def ack_url(live, flag_id: int, email: str = MANAGER) -> str:
    return tokens.flag_ack_url(flag_id, email, public_url=live.public_url, key=KEY, now=NOW)


def stored(engine, flag_id: int) -> FlagRow:
    with session_scope(engine) as session:
        return session.get(FlagRow, flag_id)


def test_the_page_shows_the_flag_and_its_evidence_and_never_writes(live):
    flag_id = open_flag(live.engine)
    page = live.client.get(ack_url(live, flag_id))
    assert page.status_code == 200
    assert "Host team still asking for help: Fulfillment" in page.text
    assert "&lt;b&gt;help&lt;/b&gt;" in page.text and "<b>help</b>" not in page.text
    assert f"recorded with your name, {MANAGER}" in page.text
    assert stored(live.engine, flag_id).status == "open"


def test_acknowledging_records_who_and_why_once(live):
    flag_id = open_flag(live.engine)
    url = ack_url(live, flag_id)
    done = live.client.post(url, data={"note": "Booked a pairing session with Olga's team"})
    assert done.status_code == 200
    assert f"Acknowledged by {MANAGER}" in done.text
    row = stored(live.engine, flag_id)
    assert (row.status, row.acknowledged_by, row.acknowledged_note) == (
        "acknowledged",
        MANAGER,
        "Booked a pairing session with Olga's team",
    )
    assert row.acknowledged_at == NOW and row.acknowledged_severity == "warning"

    # A second manager (or a second click) does not overwrite the first acknowledgement.
    again = live.client.post(ack_url(live, flag_id, "sam.okoro@example.com"), data={"note": "me too"})
    assert again.status_code == 200 and f"Acknowledged by {MANAGER}" in again.text
    with session_scope(live.engine) as session:
        assert session.scalars(select(FlagEventRow.event).order_by(FlagEventRow.id)).all() == [
            "opened",
            "acknowledged",
        ]


def test_a_note_is_required(live):
    flag_id = open_flag(live.engine)
    page = live.client.post(ack_url(live, flag_id), data={"note": "   "})
    assert page.status_code == 422 and "say why" in page.text
    long = live.client.post(ack_url(live, flag_id), data={"note": "x" * 1001})
    assert long.status_code == 422 and "at most 1000" in long.text
    assert stored(live.engine, flag_id).status == "open"


def test_tampered_expired_and_foreign_links_are_refused(live):
    flag_id = open_flag(live.engine)
    url = ack_url(live, flag_id)
    tampered = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    assert live.client.post(tampered, data={"note": "x"}).status_code in (400, 403)
    live.clock.now = NOW + timedelta(days=61)
    assert live.client.get(url).status_code == 410
    live.clock.now = NOW
    survey_link = tokens.optout_url(MANAGER, public_url=live.public_url, key=KEY, now=NOW)
    foreign = f"{live.public_url}/flags/ack/{survey_link.rsplit('/', 1)[1]}"
    assert live.client.post(foreign, data={"note": "x"}).status_code == 403
    assert stored(live.engine, flag_id).status == "open"


def test_a_resolved_flag_cannot_be_acknowledged(live):
    flag_id = open_flag(live.engine)
    with session_scope(live.engine) as session:
        reconcile(session, [], as_of=NOW.date(), now=NOW)
    page = live.client.post(ack_url(live, flag_id), data={"note": "late"})
    assert page.status_code == 200 and "was resolved" in page.text
    row = stored(live.engine, flag_id)
    assert (row.status, row.acknowledged_by) == ("resolved", None)


def test_an_unknown_flag_is_a_clear_404(live):
    assert live.client.get(ack_url(live, 99999)).status_code == 404
