"""``auxeng_survey_responses.maintainability`` follows the comfort in ``answers`` on every ORM write."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from auxeng.store.models import EngagementRow, SurveyResponseRow, maintainability_of
from auxeng.surveys.responses import record_response
from tests.web.conftest import HOST_PERSON, KEY, NOW, invite, registry_store  # noqa: F401

ENGAGEMENT = "ENG-2026-031"


def stored(engine, ref: str) -> int | None:
    """The column as the database holds it (not as the session remembers it)."""
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT maintainability FROM auxeng_survey_responses WHERE response_ref = :ref"),
            {"ref": ref},
        ).scalar_one()


def response(ref: str, answers) -> SurveyResponseRow:
    return SurveyResponseRow(
        response_ref=ref,
        survey="checkin",
        engagement_key=ENGAGEMENT,
        nps=8,
        answers=answers,
        source="web",
        submitted_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"maintainability": 3, "help_needed": "never"}, 3),
        ({"maintainability": 1}, 1),
        ({}, None),
        ({"help_needed": "never"}, None),
        ({"maintainability": None}, None),
        ({"maintainability": "4"}, None),
        ({"maintainability": 4.5}, None),
        ({"maintainability": True}, None),
        ({"maintainability": 10**12}, None),
        (None, None),
    ],
)
def test_the_rule(answers, expected):
    assert maintainability_of(answers) == expected


def test_insert_and_update_keep_the_column_in_step(registry_store):  # noqa: F811
    assert registry_store.dialect.name in ("sqlite", "postgresql")
    with Session(registry_store) as session:
        assert session.get(EngagementRow, ENGAGEMENT) is not None
        session.add_all(
            [
                response("with", {"maintainability": 3, "help_needed": "never"}),
                response("without", {"went_well": "pairing"}),
                response("text", {"maintainability": "three"}),
            ]
        )
        session.commit()
        assert [stored(registry_store, ref) for ref in ("with", "without", "text")] == [3, None, None]

        row = session.scalars(select(SurveyResponseRow).where(SurveyResponseRow.response_ref == "with")).one()
        row.answers = {"maintainability": 5, "help_needed": "regularly"}
        session.commit()
        assert (row.maintainability, stored(registry_store, "with")) == (5, 5)

        row.nps = 9  # another column changes: the comfort stays
        session.commit()
        assert stored(registry_store, "with") == 5

        row.answers = {"help_needed": "regularly"}
        session.commit()
        assert stored(registry_store, "with") is None

        other = session.scalars(
            select(SurveyResponseRow).where(SurveyResponseRow.response_ref == "without")
        ).one()
        other.answers = {"maintainability": 2}
        other.maintainability = 4  # set by hand: the answers win
        session.commit()
        assert stored(registry_store, "without") == 2


def test_a_check_in_answered_and_changed_through_record_response(registry_store):  # noqa: F811
    invitation_id = invite(registry_store, ENGAGEMENT, HOST_PERSON, survey="checkin")
    first = {"maintainability": "2", "help_needed": "regularly", "nps": "5"}
    outcome = record_response(registry_store, invitation_id, first, now=NOW, key=KEY)
    with Session(registry_store) as session:
        row = session.get(SurveyResponseRow, outcome.response_id)
        assert (row.answers["maintainability"], row.maintainability) == (2, 2)
        ref = row.response_ref

    changed = {**first, "maintainability": "4"}
    record_response(registry_store, invitation_id, changed, now=NOW + timedelta(hours=1), key=KEY)
    assert stored(registry_store, ref) == 4
