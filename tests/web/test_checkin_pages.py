"""The check-in survey and the monthly follow-up page: the same signed-link page, other questions."""

from __future__ import annotations

from sqlalchemy import select

from auxeng.store.db import session_scope
from auxeng.store.models import SurveyResponseRow
from tests.web.conftest import AUXENG_PERSON, ENGAGEMENT, HOST_PERSON, NOW, invite


def _response(engine, invitation_id: int) -> SurveyResponseRow:
    with session_scope(engine) as session:
        row = session.scalars(
            select(SurveyResponseRow).where(SurveyResponseRow.invitation_id == invitation_id)
        ).one()
        session.expunge(row)
        return row


def test_the_check_in_page_asks_its_four_questions_and_records_the_answers(live):
    invitation_id = invite(live.engine, ENGAGEMENT, HOST_PERSON, survey="checkin")
    url = live.survey_url(invitation_id)

    page = live.client.get(url)
    assert page.status_code == 200
    for question in (
        "How comfortable does your team feel maintaining what we built?",
        "Since the engagement ended, how often have you needed the platform team&#39;s help?",
        "Is there anything you could not take over?",
        "How likely are you to recommend AuxEng to another team?",
    ):
        assert question in page.text
    posted = live.client.post(
        url,
        data={
            "maintainability": "2",
            "help_needed": "regularly",
            "not_taken_over": "<b>alerts</b>",
            "nps": "5",
        },
    )
    assert posted.status_code == 303

    row = _response(live.engine, invitation_id)
    assert (row.survey, row.nps, row.submitted_at) == ("checkin", 5, NOW)
    assert row.answers == {
        "maintainability": 2,
        "help_needed": "regularly",
        "not_taken_over": "<b>alerts</b>",
    }


def test_a_check_in_answer_out_of_range_names_the_question_and_records_nothing(live):
    invitation_id = invite(live.engine, ENGAGEMENT, HOST_PERSON, survey="checkin")

    posted = live.client.post(
        live.survey_url(invitation_id), data={"maintainability": "6", "help_needed": "daily", "nps": "5"}
    )

    assert posted.status_code == 422
    assert "6 is out of range 1-5" in posted.text
    assert "&#39;daily&#39; is not one of never, once_or_twice, regularly" in posted.text
    with session_scope(live.engine) as session:
        assert session.scalars(select(SurveyResponseRow)).first() is None


def test_the_follow_up_page_records_how_it_is_going_and_the_finish(live):
    invitation_id = invite(live.engine, ENGAGEMENT, AUXENG_PERSON, survey="follow_up")
    url = live.survey_url(invitation_id)

    page = live.client.get(url)
    assert page.status_code == 200
    assert "How is the host team doing on its own?" in page.text
    assert "Follow-up finished: stop the reminders" in page.text
    posted = live.client.post(
        url, data={"progress": "some_concerns", "notes": "On-call is thin", "next": "finished"}
    )
    assert posted.status_code == 303

    row = _response(live.engine, invitation_id)
    assert (row.survey, row.nps, row.respondent_email) == ("follow_up", None, AUXENG_PERSON)
    assert row.answers == {"progress": "some_concerns", "notes": "On-call is thin", "next": "finished"}
