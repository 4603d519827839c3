"""The weekly-digest opt-out (``/digest/optout/{token}``) over real HTTP against SQLite and PostgreSQL:
it mirrors the all-messages opt-out, and the two never touch each other."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from auxeng.messaging import optouts, tokens
from auxeng.store.db import session_scope
from auxeng.store.models import DigestOptOutRow, OptOutRow
from tests.web.conftest import HOST_PERSON, KEY, NOW, count, invite

STAKEHOLDER = "Dana.Ruiz@Example.com"
ADDRESS = STAKEHOLDER.lower()


def _digest_url(live, email: str = STAKEHOLDER) -> str:
    return tokens.digest_optout_url(email, public_url=live.public_url, key=KEY, now=NOW)


def _digest_opt_outs(engine) -> list[DigestOptOutRow]:
    with session_scope(engine) as session:
        return list(session.scalars(select(DigestOptOutRow)))


def _flip(text: str, index: int) -> str:
    return text[:index] + ("B" if text[index] != "B" else "C") + text[index + 1 :]


def _nothing_stored(engine) -> bool:
    return count(engine, DigestOptOutRow) == 0 and count(engine, OptOutRow) == 0


# --- tokens ------------------------------------------------------------------------------


def test_digest_optout_url_is_signed_for_the_digest_only():
    url = tokens.digest_optout_url(
        " VP-Eng@Example.com ", public_url="http://localhost:8080/auxeng/", key=KEY, now=NOW
    )
    assert url.startswith("http://localhost:8080/auxeng/digest/optout/")
    token = url.rsplit("/", 1)[1]
    claims = tokens.verify(token, tokens.DIGEST_OPTOUT, key=KEY, now=NOW + timedelta(days=364))
    assert claims.subject == "vp-eng@example.com"
    assert claims.purpose == "digest_optout"
    with pytest.raises(tokens.TokenError) as expired:
        tokens.verify(token, tokens.DIGEST_OPTOUT, key=KEY, now=NOW + timedelta(days=365))
    assert expired.value.reason == "expired"
    with pytest.raises(tokens.TokenError) as wrong:
        tokens.verify(token, tokens.OPTOUT, key=KEY, now=NOW)
    assert wrong.value.reason == "wrong_purpose"

    global_token = tokens.optout_url(ADDRESS, public_url="http://x", key=KEY, now=NOW).rsplit("/", 1)[1]
    with pytest.raises(tokens.TokenError) as wrong:
        tokens.verify(global_token, tokens.DIGEST_OPTOUT, key=KEY, now=NOW)
    assert wrong.value.reason == "wrong_purpose"


# --- the page ------------------------------------------------------------------------------


def test_get_asks_to_confirm_and_writes_nothing(live):
    url = _digest_url(live)
    page = live.client.get(url)
    assert live.client.head(url).status_code == 200
    assert page.status_code == 200
    assert "Stop the weekly NPS digest?" in page.text
    assert (
        f"You will no longer receive the AuxEng weekly NPS digest at <strong>{ADDRESS}</strong>. "
        "Surveys and other messages are not affected." in page.text
    )
    assert '<form method="post">' in page.text
    assert "Stop messages from AuxEng follow-ups?" not in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert _nothing_stored(live.engine)


def test_post_records_a_digest_opt_out_once_and_no_global_one(live):
    url = _digest_url(live)
    done = live.client.post(url)
    assert done.status_code == 200
    assert "unsubscribed from the weekly NPS digest" in done.text
    assert "Surveys and other messages are not affected" in done.text
    assert "You will not hear from us again" not in done.text

    live.clock.now = NOW + timedelta(days=1)
    again = live.client.post(url)
    assert again.status_code == 200
    (row,) = _digest_opt_outs(live.engine)
    assert row.email == ADDRESS
    assert row.opted_out_at == NOW
    assert row.source == "web"
    assert count(live.engine, OptOutRow) == 0

    page = live.client.get(url)
    assert page.status_code == 200
    assert "already unsubscribed from the weekly NPS digest" in page.text
    assert "Friday 27 November 2026" in page.text  # since when (NOW, in the program's time zone)
    assert '<form method="post">' not in page.text

    # The digest opt-out says nothing about all messages: the global page still asks.
    global_page = live.client.get(live.optout_url(STAKEHOLDER))
    assert "Stop messages from AuxEng follow-ups?" in global_page.text


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribe_records_the_digest_opt_out(live, encoding):
    url = _digest_url(live)
    if encoding == "urlencoded":
        done = live.client.post(url, data={"List-Unsubscribe": "One-Click"})
    else:
        done = live.client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert done.status_code == 200
    (row,) = _digest_opt_outs(live.engine)
    assert row.source == "one_click"
    assert count(live.engine, OptOutRow) == 0


def test_a_global_opt_out_leaves_the_digest_page_asking(live):
    assert live.client.post(live.optout_url(STAKEHOLDER)).status_code == 200
    assert count(live.engine, OptOutRow) == 1
    page = live.client.get(_digest_url(live))
    assert "Stop the weekly NPS digest?" in page.text
    assert _digest_opt_outs(live.engine) == []


# --- tokens that do not belong here ----------------------------------------------------------


def test_survey_and_global_opt_out_tokens_are_refused_on_the_digest_route(live):
    global_token = live.optout_url(STAKEHOLDER).rsplit("/", 1)[1]
    survey_token = live.survey_url(invite(live.engine)).rsplit("/", 1)[1]
    for token in (global_token, survey_token):
        _assert_refused(live, f"{live.public_url}/digest/optout/{token}")
    assert _nothing_stored(live.engine)


def _assert_refused(live, url: str) -> None:
    """GET shows "not valid" (403); neither a button POST nor a one-click POST is accepted."""
    page = live.client.get(url)
    assert page.status_code == 403
    assert "This link is not valid" in page.text
    assert live.client.post(url).status_code == 403
    assert live.client.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 403


def test_a_digest_token_is_refused_on_the_global_route(live):
    token = _digest_url(live).rsplit("/", 1)[1]
    _assert_refused(live, f"{live.public_url}/optout/{token}")
    assert _nothing_stored(live.engine)


def test_a_tampered_digest_link_names_the_problem_and_records_nothing(live):
    prefix, token = _digest_url(live).rsplit("/", 1)
    tampered = f"{prefix}/{_flip(token, 10)}"
    page = live.client.get(tampered)
    assert page.status_code in (400, 403)
    assert "This link is not valid" in page.text
    assert "incomplete or was changed" in page.text
    assert live.client.post(tampered).status_code in (400, 403)
    assert live.client.get(f"{prefix}/not-a-token").status_code == 400
    assert _nothing_stored(live.engine)


def test_an_expired_digest_link_says_so(live):
    url = _digest_url(live)
    live.clock.now = NOW + timedelta(days=366)
    page = live.client.get(url)
    assert page.status_code == 410
    assert "This link expired" in page.text
    assert live.client.post(url).status_code == 410
    assert _nothing_stored(live.engine)


# --- the store functions ----------------------------------------------------------------------


def test_digest_opted_out_returns_the_lower_cased_addresses(registry_store):
    engine = registry_store
    first = optouts.record_opt_out(engine, STAKEHOLDER, now=NOW, source="web", digest=True)
    assert first.created and first.opted_out_at == NOW
    again = optouts.record_digest_opt_out(engine, ADDRESS, now=NOW + timedelta(days=2), source="one_click")
    assert not again.created and again.opted_out_at == NOW
    optouts.record_opt_out(engine, HOST_PERSON, now=NOW, source="web")  # all messages: not a digest one

    with session_scope(engine) as session:
        assert optouts.digest_opted_out(session) == {ADDRESS}
        assert optouts.opted_out_at(session, STAKEHOLDER, digest=True) == NOW
        assert optouts.opted_out_at(session, STAKEHOLDER) is None
        assert optouts.opted_out_at(session, HOST_PERSON) == NOW
        assert optouts.opted_out_at(session, HOST_PERSON, digest=True) is None
    assert count(engine, DigestOptOutRow) == 1
    assert count(engine, OptOutRow) == 1


def test_digest_opted_out_is_empty_without_digest_opt_outs(registry_store):
    optouts.record_opt_out(registry_store, HOST_PERSON, now=NOW, source="web")
    with session_scope(registry_store) as session:
        assert optouts.digest_opted_out(session) == set()
