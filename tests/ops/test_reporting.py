"""``python -m auxeng report``'s surveys: counted per survey as the dashboard counts them, and the
survey link it offers to try: an unanswered, open host-team survey from the dev outbox (never the
retro, never an answered or closed one); when there is none, why, from the store. Both databases."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

from auxeng.ops.reporting import survey_lines, survey_to_try
from auxeng.store.db import session_scope
from auxeng.store.models import OutboxRow
from auxeng.surveys.responses import record_response
from tests.web.conftest import (  # noqa: F401 (fixture)
    AUXENG_PERSON,
    ENGAGEMENT,
    GOOD_FORM,
    HOST_PERSON,
    KEY,
    NOW,
    invite,
    registry_store,
)

CHIDI, ARJUN = "chidi.berg@example.com", "arjun.yilmaz@example.com"


def link(invitation_id: int) -> str:
    return f"http://localhost:8080/auxeng/survey/token-of-{invitation_id}"


def delivered(engine, outbox: Path, invitation_id: int, email: str, *, file: bool = True) -> None:
    """The invitation's email, sent by the dev transport: its outbox row and (``file``) its ``.eml``."""
    with session_scope(engine) as session:
        row = OutboxRow(
            dedupe_key=f"survey_invite:{invitation_id}:email",
            channel="email",
            kind="survey_invite",
            recipient=email,
            body_text="",
            payload={},
            status="sent",
            attempts=1,
            not_before=NOW,
            created_at=NOW,
            updated_at=NOW,
            engagement_key=ENGAGEMENT,
            invitation_id=invitation_id,
        )
        session.add(row)
        session.flush()
        message_id = row.id
    if file:
        message = EmailMessage()
        message["To"] = email
        message["Subject"] = "How did the engagement go?"
        message.set_content(f"Hello,\n\nOr open the survey: {link(invitation_id)}\n")
        (outbox / "email").mkdir(parents=True, exist_ok=True)
        (outbox / "email" / f"{message_id:06d}-survey_invite-{email}.eml").write_bytes(bytes(message))


def offered(engine, outbox: Path) -> list[str]:
    with session_scope(engine) as session:
        return survey_to_try(session, outbox, NOW)


def test_it_offers_an_unanswered_open_host_team_survey_never_the_retro(registry_store, tmp_path):  # noqa: F811
    answered = invite(registry_store, ENGAGEMENT, HOST_PERSON)
    waiting = invite(registry_store, ENGAGEMENT, CHIDI)
    closed = invite(registry_store, ENGAGEMENT, ARJUN, closes_at=NOW - timedelta(hours=1))
    retro = invite(registry_store, ENGAGEMENT, AUXENG_PERSON, survey="retro")
    for invitation, email in (
        (retro, AUXENG_PERSON),
        (answered, HOST_PERSON),
        (waiting, CHIDI),
        (closed, ARJUN),
    ):
        delivered(registry_store, tmp_path, invitation, email)
    record_response(registry_store, answered, GOOD_FORM, now=NOW - timedelta(days=1), key=KEY)

    lines = offered(registry_store, tmp_path)
    assert lines[1] == (
        f"  an unanswered host-team survey ({ENGAGEMENT}, {CHIDI}), to open in a browser: {link(waiting)}"
    )
    assert lines[0].startswith("  e.g. ") and lines[0].endswith(f"-survey_invite-{CHIDI}.eml")

    # Once it is answered, nothing is left to offer, and the report says why.
    record_response(registry_store, waiting, GOOD_FORM, now=NOW, key=KEY)
    assert offered(registry_store, tmp_path) == [
        "  no host-team survey link to try: all 3 invited were answered (2) or their survey has closed"
    ]


def test_without_a_link_it_says_why(registry_store, tmp_path):  # noqa: F811
    assert offered(registry_store, tmp_path) == [
        "  no host-team survey link to try: nobody has been invited to one yet (they follow "
        "auxeng_detect_ended for engagements that ended in the last AUXENG_SURVEY_MAX_AGE_DAYS days)"
    ]
    waiting = invite(registry_store, ENGAGEMENT, CHIDI)
    assert offered(registry_store, tmp_path) == [
        "  no host-team survey link to try: 1 open one(s) not delivered yet "
        "(the next auxeng_deliver_outbox run writes them here)"
    ]
    delivered(registry_store, tmp_path, waiting, CHIDI, file=False)
    assert offered(registry_store, tmp_path) == [
        "  no host-team survey link to try: the emails of the open ones are not in this dev outbox "
        "(sent before it was set?)"
    ]


def test_the_survey_lines_name_each_survey_and_end_with_the_link(registry_store, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AUXENG_DEV_OUTBOX", str(tmp_path))
    host = invite(registry_store, ENGAGEMENT, HOST_PERSON)
    retro = invite(registry_store, ENGAGEMENT, AUXENG_PERSON, survey="retro")
    invite(registry_store, ENGAGEMENT, CHIDI, status="skipped")
    delivered(registry_store, tmp_path, retro, AUXENG_PERSON)
    delivered(registry_store, tmp_path, host, HOST_PERSON)
    record_response(registry_store, retro, GOOD_FORM, now=NOW, key=KEY)

    with session_scope(registry_store) as session:
        lines = survey_lines(session, now=NOW)
    text = "\n".join(lines)
    assert (
        "The NPS counts the host team's answers (the host-team survey and the three-month check-in)" in text
    )
    assert f"  {ENGAGEMENT}   host-team survey (NPS)  1 invited (0 answered, 0 reminded), 1 skipped" in lines
    assert f"  {ENGAGEMENT}   {'retro':<23} 1 invited (1 answered, 0 reminded), 0 skipped" in lines
    assert lines[-1].endswith(f"to open in a browser: {link(host)}")
