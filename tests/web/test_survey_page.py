"""The survey and opt-out pages over real HTTP (uvicorn + httpx) against SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select

from auxeng.messaging import tokens
from auxeng.store.db import session_scope
from auxeng.store.models import OptOutRow, SurveyInvitationRow, SurveyResponseRow
from auxeng.surveys import responses
from tests.conftest import REPO
from tests.web.conftest import (
    ANONYMOUS_ENGAGEMENT,
    ANONYMOUS_HOST_PERSON,
    AUXENG_PERSON,
    ENGAGEMENT,
    GOOD_FORM,
    HOST_PERSON,
    KEY,
    NOW,
    count,
    invite,
)


def _responses(engine) -> list[SurveyResponseRow]:
    with session_scope(engine) as session:
        return list(session.scalars(select(SurveyResponseRow).order_by(SurveyResponseRow.id)))


def _invitation(engine, invitation_id: int) -> SurveyInvitationRow:
    with session_scope(engine) as session:
        return session.get(SurveyInvitationRow, invitation_id)


def _checked(html: str, name: str) -> list[str]:
    """Values of the checked radio buttons named ``name``."""
    return re.findall(rf'<input type="radio" name="{name}" value="([^"]+)" checked', html)


def _flip(text: str, index: int) -> str:
    return text[:index] + ("B" if text[index] != "B" else "C") + text[index + 1 :]


def _assert_nothing_stored(engine, invitation_id: int | None = None) -> None:
    assert count(engine, SurveyResponseRow) == 0
    assert count(engine, OptOutRow) == 0
    if invitation_id is not None:
        assert _invitation(engine, invitation_id).answered_at is None


# --- GET never writes ------------------------------------------------------------------


def test_scanner_get_with_score_shows_the_survey_preselected_and_writes_nothing(live):
    invitation_id = invite(live.engine)
    url = live.survey_url(invitation_id, score=3)

    first = live.client.get(url)
    second = live.client.get(url)
    head = live.client.head(url)

    assert first.status_code == second.status_code == head.status_code == 200
    html = first.text
    assert "Move Customer Care Tools to Kubernetes" in html
    assert "Customer Care Tools" in html
    assert "Hi Bea Zhang," in html
    assert "How likely are you to recommend AuxEng to another team?" in html
    assert "Were the engagement&#39;s business goals achieved?" in html
    assert "Ship the MVP to production for real customers" in html  # the goal being asked about
    assert _checked(html, "nps") == ["3"]
    assert [int(v) for v in re.findall(r'name="nps" value="(\d+)"', html)] == list(range(11))
    _assert_nothing_stored(live.engine, invitation_id)


@pytest.mark.parametrize("score", ["11", "-1", "abc", "3.5", "", "99999999999999999999"])
def test_an_invalid_score_parameter_is_ignored(live, score):
    invitation_id = invite(live.engine)
    page = live.client.get(live.survey_url(invitation_id), params={"score": score})
    assert page.status_code == 200
    assert _checked(page.text, "nps") == []
    _assert_nothing_stored(live.engine, invitation_id)


def test_pages_carry_security_headers(live):
    invitation_id = invite(live.engine)
    for response in (
        live.client.get(live.survey_url(invitation_id)),
        live.client.get("/auxeng/survey/not-a-token"),
        live.client.get(live.optout_url(HOST_PERSON)),
    ):
        headers = response.headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "form-action 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
        assert headers["content-type"].startswith("text/html")


# --- POST records ------------------------------------------------------------------------


def test_post_records_the_answers_and_redirects_to_the_thank_you_page(live):
    invitation_id = invite(live.engine)
    url = live.survey_url(invitation_id, score=9)

    posted = live.client.post(url, data=GOOD_FORM)

    assert posted.status_code == 303
    location = posted.headers["location"]
    thanks = live.client.get(posted.url.join(location))
    assert thanks.url.path.endswith("/thanks")
    assert thanks.url.path.startswith("/auxeng/survey/")
    assert thanks.status_code == 200
    assert "Thank you" in thanks.text
    assert "Move Customer Care Tools to Kubernetes" in thanks.text

    (row,) = _responses(live.engine)
    assert row.invitation_id == invitation_id
    assert row.respondent_email == HOST_PERSON
    assert row.survey == "post_engagement"
    assert row.engagement_key == ENGAGEMENT
    assert row.nps == 9
    assert row.answers == {
        "went_well": "Pairing on the deploy pipeline",
        "business_goals": "yes",
        "technical_goals": "partly",
    }
    assert row.source == "web"
    assert row.submitted_at == row.updated_at == NOW
    assert row.response_ref == tokens.response_ref(invitation_id, key=KEY)
    assert _invitation(live.engine, invitation_id).answered_at == NOW


def test_resubmitting_updates_the_same_response(live):
    invitation_id = invite(live.engine)
    url = live.survey_url(invitation_id)
    assert live.client.post(url, data=GOOD_FORM).status_code == 303

    live.clock.now = NOW + timedelta(days=2)
    changed = {**GOOD_FORM, "nps": "6", "to_change": "Longer handover"}
    assert live.client.post(url, data=changed).status_code == 303

    (row,) = _responses(live.engine)
    assert row.nps == 6
    assert row.answers["to_change"] == "Longer handover"
    assert row.submitted_at == NOW
    assert row.updated_at == NOW + timedelta(days=2)
    assert _invitation(live.engine, invitation_id).answered_at == NOW

    page = live.client.get(url)
    assert page.status_code == 200
    assert "You already answered" in page.text
    assert "You can change them until" in page.text
    assert "11 December 2026" in page.text  # closes_at = NOW + 14 days
    assert _checked(page.text, "nps") == ["6"]
    assert _checked(page.text, "technical_goals") == ["partly"]
    assert ">Longer handover</textarea>" in page.text
    assert "Update my answers" in page.text


def test_a_replayed_post_never_creates_a_second_response(live):
    invitation_id = invite(live.engine)
    url = live.survey_url(invitation_id)
    for _ in range(3):
        assert live.client.post(url, data=GOOD_FORM).status_code == 303
    assert len(_responses(live.engine)) == 1


def test_concurrent_double_submits_make_one_response(live):
    invitation_id = invite(live.engine)
    url = live.survey_url(invitation_id)
    forms = [{**GOOD_FORM, "nps": str(n)} for n in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda form: live.client.post(url, data=form).status_code, forms))
    assert statuses == [303] * 8
    (row,) = _responses(live.engine)
    assert row.nps in range(8)


def test_the_loser_of_a_first_answer_race_updates_the_winners_row(registry_store, monkeypatch):
    """Both submissions saw no response; the second insert hits the unique response_ref and retries."""
    invitation_id = invite(registry_store)
    first = responses.record_response(
        registry_store,
        invitation_id,
        {"nps": 9, "business_goals": "yes", "technical_goals": "yes"},
        now=NOW,
        key=KEY,
    )
    real_find = responses._find_response
    calls = []

    def stale_then_real(session, ref):
        calls.append(ref)
        return None if len(calls) == 1 else real_find(session, ref)

    monkeypatch.setattr(responses, "_find_response", stale_then_real)
    second = responses.record_response(
        registry_store,
        invitation_id,
        {"nps": 2, "business_goals": "no", "technical_goals": "no"},
        now=NOW,
        key=KEY,
    )

    assert len(calls) == 2
    assert first.created
    assert not second.created
    assert second.response_id == first.response_id
    (row,) = _responses(registry_store)
    assert row.nps == 2


def test_record_response_refuses_what_the_page_would_refuse(registry_store):
    invitation_id = invite(registry_store)
    with pytest.raises(responses.InvalidAnswers, match="nps: 42 is out of range 0-10"):
        responses.record_response(
            registry_store, invitation_id, {"nps": 42, "business_goals": "yes"}, now=NOW, key=KEY
        )
    _assert_nothing_stored(registry_store, invitation_id)


def test_threads_racing_on_record_response_make_one_row(registry_store):
    invitation_id = invite(registry_store)
    barrier = threading.Barrier(6)

    def submit(n: int):
        barrier.wait()
        return responses.record_response(
            registry_store,
            invitation_id,
            {"nps": n, "business_goals": "yes", "technical_goals": "yes"},
            now=NOW,
            key=KEY,
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(submit, range(6)))
    assert sum(outcome.created for outcome in outcomes) == 1
    assert len({outcome.response_id for outcome in outcomes}) == 1
    assert len(_responses(registry_store)) == 1


# --- links that do not work ----------------------------------------------------------


@pytest.mark.parametrize("part", ["payload", "signature"])
def test_a_tampered_token_is_refused_and_stores_nothing(live, part):
    invitation_id = invite(live.engine)
    url = live.survey_url(invitation_id)
    prefix, token = url.rsplit("/", 1)
    payload, signature = token.split(".")
    index = len(payload) // 2 if part == "payload" else len(payload) + 1 + len(signature) // 2
    tampered = f"{prefix}/{_flip(token, index)}"

    page = live.client.get(tampered)
    posted = live.client.post(tampered, data=GOOD_FORM)

    assert page.status_code in (400, 403)
    assert posted.status_code in (400, 403)
    assert "This link is not valid" in page.text
    _assert_nothing_stored(live.engine, invitation_id)


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "a.b.c", "%00", "x" * 600, "eyJwIjoic3VydmV5In0.AAAA"],
)
def test_a_malformed_token_is_refused(live, token):
    page = live.client.get(f"/auxeng/survey/{token}")
    assert page.status_code in (400, 403)
    assert "This link is not valid" in page.text


def test_an_opt_out_token_is_not_a_survey_link(live):
    invitation_id = invite(live.engine)
    token = tokens.sign("optout", str(invitation_id), NOW + timedelta(days=5), key=KEY)
    assert live.client.get(f"/auxeng/survey/{token}").status_code == 403
    assert live.client.post(f"/auxeng/survey/{token}", data=GOOD_FORM).status_code == 403
    _assert_nothing_stored(live.engine, invitation_id)


def test_a_link_signed_with_another_key_is_refused(live):
    invitation_id = invite(live.engine)
    url = tokens.survey_url(
        invitation_id, NOW + timedelta(days=5), public_url=live.public_url, key=b"another-key-0123456789"
    )
    assert live.client.get(url).status_code == 403
    _assert_nothing_stored(live.engine, invitation_id)


def test_an_expired_link_says_so_with_410(live):
    invitation_id = invite(live.engine)
    url = live.survey_url(invitation_id, expires_at=NOW - timedelta(seconds=1))
    page = live.client.get(url)
    posted = live.client.post(url, data=GOOD_FORM)
    assert page.status_code == posted.status_code == 410
    assert "This link expired" in page.text
    _assert_nothing_stored(live.engine, invitation_id)


def test_a_closed_survey_says_when_it_closed_with_410(live):
    invitation_id = invite(live.engine, closes_at=NOW - timedelta(hours=1))
    url = live.survey_url(invitation_id)
    page = live.client.get(url)
    posted = live.client.post(url, data=GOOD_FORM)
    assert page.status_code == posted.status_code == 410
    assert "This survey is closed" in page.text
    assert "closed on Friday 27 November 2026" in page.text
    _assert_nothing_stored(live.engine, invitation_id)


def test_the_survey_closes_at_closes_at_even_for_an_open_page(live):
    invitation_id = invite(live.engine)
    url = live.survey_url(invitation_id)
    assert live.client.get(url).status_code == 200
    live.clock.now = NOW + timedelta(days=14)  # == closes_at
    assert live.client.post(url, data=GOOD_FORM).status_code == 410
    _assert_nothing_stored(live.engine, invitation_id)


def test_an_unknown_invitation_is_404(live):
    page = live.client.get(live.survey_url(987654))
    assert page.status_code == 404
    assert live.client.post(live.survey_url(987654), data=GOOD_FORM).status_code == 404
    assert count(live.engine, SurveyResponseRow) == 0


def test_a_skipped_invitation_takes_no_answers(live):
    invitation_id = invite(live.engine, status="skipped")
    url = live.survey_url(invitation_id)
    assert live.client.get(url).status_code == 410
    assert live.client.post(url, data=GOOD_FORM).status_code == 410
    _assert_nothing_stored(live.engine, invitation_id)


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"nps": "11"}, "nps", "11 is out of range 0-10"),
        ({"nps": "seven"}, "nps", "is not a whole number"),
        ({"nps": ""}, "nps", "an answer is required"),
        ({"business_goals": ""}, "business_goals", "an answer is required"),
        ({"technical_goals": "maybe"}, "technical_goals", "is not one of yes, partly, no"),
        ({"went_well": "x" * 6000}, "went_well", "is 6,000 characters long; the limit is 5,000"),
    ],
)
def test_invalid_answers_get_422_with_the_errors_and_store_nothing(live, change, field, message):
    invitation_id = invite(live.engine)
    form = {**GOOD_FORM, **change}
    page = live.client.post(live.survey_url(invitation_id), data=form)
    assert page.status_code == 422
    assert 'role="alert"' in page.text
    assert f'href="#field-{field}"' in page.text
    assert message.replace("'", "&#39;") in page.text
    _assert_nothing_stored(live.engine, invitation_id)


def test_missing_fields_are_all_listed(live):
    invitation_id = invite(live.engine)
    page = live.client.post(live.survey_url(invitation_id), data={"went_well": "kept"})
    assert page.status_code == 422
    for field in ("nps", "business_goals", "technical_goals"):
        assert f'href="#field-{field}"' in page.text
    assert ">kept</textarea>" in page.text  # what they typed is kept
    _assert_nothing_stored(live.engine, invitation_id)


def test_a_body_over_64_kb_is_refused_with_413(live):
    invitation_id = invite(live.engine)
    form = {**GOOD_FORM, "went_well": "x" * (70 * 1024)}
    page = live.client.post(live.survey_url(invitation_id), data=form)
    assert page.status_code == 413
    _assert_nothing_stored(live.engine, invitation_id)


def test_a_json_body_is_not_a_form(live):
    invitation_id = invite(live.engine)
    page = live.client.post(live.survey_url(invitation_id), json=GOOD_FORM)
    assert page.status_code == 415
    _assert_nothing_stored(live.engine, invitation_id)


def test_html_in_comments_is_stored_verbatim_and_escaped_when_shown(live):
    invitation_id = invite(live.engine)
    url = live.survey_url(invitation_id)
    comment = '<script>alert("x")</script> & <b>bold</b>'

    invalid = live.client.post(url, data={**GOOD_FORM, "nps": "12", "to_change": comment})
    assert invalid.status_code == 422
    assert "<script>alert" not in invalid.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in invalid.text

    assert live.client.post(url, data={**GOOD_FORM, "to_change": comment}).status_code == 303
    (row,) = _responses(live.engine)
    assert row.answers["to_change"] == comment

    page = live.client.get(url)
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page.text


# --- anonymous engagements --------------------------------------------------------------


def test_an_anonymous_response_is_not_linked_to_the_person(live):
    invitation_id = invite(live.engine, ANONYMOUS_ENGAGEMENT, ANONYMOUS_HOST_PERSON)
    url = live.survey_url(invitation_id)
    page = live.client.get(url)
    assert "This survey is anonymous" in page.text

    assert live.client.post(url, data={**GOOD_FORM, "nps": "4"}).status_code == 303

    (row,) = _responses(live.engine)
    assert row.invitation_id is None
    assert row.respondent_email is None
    assert row.engagement_key == ANONYMOUS_ENGAGEMENT
    assert row.nps == 4
    assert row.response_ref == tokens.response_ref(invitation_id, key=KEY)
    # Timestamps are cut to the day, so they do not point at the invitation answered at that moment.
    assert row.submitted_at == row.updated_at == NOW.replace(hour=0, minute=0)
    assert _invitation(live.engine, invitation_id).answered_at is not None

    again = live.client.get(url)  # found again through the link, not through who answered
    assert "You already answered" in again.text
    assert _checked(again.text, "nps") == ["4"]

    assert live.client.post(url, data={**GOOD_FORM, "nps": "5"}).status_code == 303
    (row,) = _responses(live.engine)
    assert row.nps == 5


def test_the_retro_survey_is_for_the_platform_side(live):
    invitation_id = invite(live.engine, ENGAGEMENT, AUXENG_PERSON, survey="retro")
    url = live.survey_url(invitation_id)
    page = live.client.get(url)
    assert page.status_code == 200
    assert "Engagement retro" in page.text
    assert live.client.post(url, data=GOOD_FORM).status_code == 303
    (row,) = _responses(live.engine)
    assert row.survey == "retro"


# --- opt-out -----------------------------------------------------------------------------


def _opt_outs(engine) -> list[OptOutRow]:
    with session_scope(engine) as session:
        return list(session.scalars(select(OptOutRow)))


def test_opt_out_get_asks_to_confirm_and_writes_nothing(live):
    url = live.optout_url("Bea.Zhang@Example.com")
    page = live.client.get(url)
    assert live.client.head(url).status_code == 200
    assert page.status_code == 200
    assert "bea.zhang@example.com" in page.text
    assert '<form method="post">' in page.text
    assert _opt_outs(live.engine) == []


def test_opt_out_post_records_it_once(live):
    url = live.optout_url(HOST_PERSON)
    done = live.client.post(url)
    assert done.status_code == 200
    assert "You will not hear from us again" in done.text

    live.clock.now = NOW + timedelta(days=1)
    assert live.client.post(url).status_code == 200
    (row,) = _opt_outs(live.engine)
    assert row.email == HOST_PERSON
    assert row.opted_out_at == NOW
    assert row.source == "web"

    page = live.client.get(url)
    assert "already unsubscribed" in page.text


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribe_records_the_opt_out(live, encoding):
    url = live.optout_url(HOST_PERSON)
    if encoding == "urlencoded":
        done = live.client.post(url, data={"List-Unsubscribe": "One-Click"})
    else:
        done = live.client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert done.status_code == 200
    (row,) = _opt_outs(live.engine)
    assert row.source == "one_click"


def test_a_tampered_opt_out_link_records_nothing(live):
    url = live.optout_url(HOST_PERSON)
    prefix, token = url.rsplit("/", 1)
    tampered = f"{prefix}/{_flip(token, 10)}"
    assert live.client.get(tampered).status_code in (400, 403)
    assert live.client.post(tampered).status_code in (400, 403)
    survey_link = live.survey_url(invite(live.engine))
    assert live.client.post(survey_link.replace("/survey/", "/optout/")).status_code == 403
    assert _opt_outs(live.engine) == []


# --- the module ----------------------------------------------------------------------------


def test_importing_the_web_app_is_cheap_and_touches_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AUXENG_"))}
    env.update(PYTHONPATH=str(REPO / "plugins"), AIRFLOW_HOME=str(tmp_path / "home"))
    code = (
        "import sys, auxeng.web.application; "
        "bad = sorted(m for m in ('airflow', 'sqlalchemy', 'auxeng.store.db', 'jinja2') if m in sys.modules); "
        "assert not bad, bad"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "home").exists()


def test_without_a_secret_key_the_page_says_it_is_unavailable(live, monkeypatch):
    invitation_id = invite(live.engine)
    url = live.survey_url(invitation_id)
    monkeypatch.delenv("AUXENG_SECRET_KEY")
    monkeypatch.setattr(tokens, "_variable_key", lambda: None)
    page = live.client.get(url)
    assert page.status_code == 503
    assert "Not available right now" in page.text
    _assert_nothing_stored(live.engine, invitation_id)


# --- the thank-you page confirms only what was saved ---------------------------------------


def test_the_thanks_page_of_an_unanswered_invitation_says_nothing_was_saved_and_links_to_the_form(live):
    url = live.survey_url(invite(live.engine))
    page = live.client.get(f"{url}/thanks")

    assert page.status_code == 200
    assert "were saved" not in page.text and "Thank you" not in page.text
    assert "No answers saved" in page.text and "nothing was saved" in page.text
    token = url.rsplit("/", 1)[1]
    assert f'<a href="../{token}">Answer the survey</a>' in page.text
    assert live.client.get(page.url.join(f"../{token}")).status_code == 200
    assert count(live.engine, SurveyResponseRow) == 0  # a GET never writes

    live.client.post(url, data=GOOD_FORM)
    saved = live.client.get(f"{url}/thanks")
    assert saved.status_code == 200
    assert "Your answers about “Move Customer Care Tools to Kubernetes” were saved." in saved.text
    assert "go back to your answers" in saved.text


def test_the_thanks_page_of_a_closed_unanswered_survey_does_not_offer_the_form(live):
    closes_at = NOW + timedelta(days=1)
    url = live.survey_url(invite(live.engine, closes_at=closes_at))
    live.clock.now = closes_at + timedelta(hours=1)
    page = live.client.get(f"{url}/thanks")
    assert page.status_code == 200
    assert "nothing was saved" in page.text and "no longer collecting answers" in page.text
    assert "Answer the survey" not in page.text and "were saved" not in page.text
