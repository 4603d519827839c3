"""Survey definitions and answer validation (pure)."""

from __future__ import annotations

import pytest

from auxeng.surveys import questions
from auxeng.surveys.questions import (
    CHOICE,
    SCALE,
    SURVEYS,
    TEXT,
    Field,
    FieldError,
    Survey,
    UnknownSurvey,
    get_survey,
    validate_answers,
)

GOOD = {
    "nps": "9",
    "went_well": "  Pairing  ",
    "to_change": "",
    "business_goals": "yes",
    "technical_goals": "Partly",
}


def _messages(errors: list[FieldError]) -> list[str]:
    return [str(error) for error in errors]


def test_the_surveys():
    assert set(SURVEYS) == {"post_engagement", "retro", "checkin", "follow_up"}
    post = get_survey("post_engagement")
    assert post.side == "host"
    assert get_survey("retro").side == "auxeng"
    assert post.field_names == ("nps", "went_well", "to_change", "business_goals", "technical_goals")
    nps = post.field("nps")
    assert nps.label == "How likely are you to recommend AuxEng to another team?"
    assert (nps.kind, nps.required, nps.values) == (SCALE, True, list(range(11)))
    assert post.field("went_well").label == "What went well?"
    assert post.field("to_change").label == "What should we change?"
    assert post.field("went_well").max_length == 5000
    assert post.field("business_goals").label == "Were the engagement's business goals achieved?"
    for name in ("business_goals", "technical_goals"):
        item = post.field(name)
        assert (item.kind, item.required, item.choice_values) == (CHOICE, True, ("yes", "partly", "no"))
    retro = get_survey("retro")
    assert retro.field("nps").label == nps.label
    assert {f.name for f in retro.fields if f.required} == {"nps", "business_goals", "technical_goals"}


@pytest.mark.parametrize("survey", ["post_engagement", "retro"])
def test_valid_answers_are_cleaned(survey):
    answers, errors = validate_answers(survey, {**GOOD, "unrelated": "ignored"})
    assert errors == []
    assert answers == {"nps": 9, "went_well": "Pairing", "business_goals": "yes", "technical_goals": "partly"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("11", "nps: 11 is out of range 0-10"),
        ("-1", "nps: -1 is out of range 0-10"),
        ("7.5", "nps: '7.5' is not a whole number"),
        ("seven", "nps: 'seven' is not a whole number"),
        ("1e3", "nps: '1e3' is not a whole number"),
        ("", "nps: an answer is required"),
        ("   ", "nps: an answer is required"),
    ],
)
def test_nps_errors(value, message):
    answers, errors = validate_answers("post_engagement", {**GOOD, "nps": value})
    assert _messages(errors) == [message]
    assert "nps" not in answers
    assert errors[0].label == "How likely are you to recommend AuxEng to another team?"


def test_the_ends_of_the_scale_are_valid():
    for value in ("0", "10", " 10 "):
        answers, errors = validate_answers("post_engagement", {**GOOD, "nps": value})
        assert errors == []
        assert answers["nps"] == int(value)


def test_missing_required_answers_are_each_reported():
    answers, errors = validate_answers("post_engagement", {"went_well": "fine"})
    assert _messages(errors) == [
        "nps: an answer is required",
        "business_goals: an answer is required",
        "technical_goals: an answer is required",
    ]
    assert answers == {"went_well": "fine"}


def test_an_unknown_choice():
    _, errors = validate_answers("retro", {**GOOD, "business_goals": "maybe"})
    assert _messages(errors) == ["business_goals: 'maybe' is not one of yes, partly, no"]


def test_text_limit():
    _, errors = validate_answers("post_engagement", {**GOOD, "to_change": "x" * 5000})
    assert errors == []
    _, errors = validate_answers("post_engagement", {**GOOD, "to_change": "x" * 5001})
    assert _messages(errors) == ["to_change: is 5,001 characters long; the limit is 5,000"]


def test_text_is_normalised_but_kept_verbatim_otherwise():
    raw = "line one\r\nline <b>two</b>\x00\x07\r\n\tindented"
    answers, errors = validate_answers("post_engagement", {**GOOD, "went_well": raw})
    assert errors == []
    assert answers["went_well"] == "line one\nline <b>two</b>\n\tindented"
    # Windows line endings count once against the limit.
    answers, errors = validate_answers("post_engagement", {**GOOD, "went_well": "x\r\n" * 2500})
    assert errors == []


def test_an_unknown_survey():
    with pytest.raises(UnknownSurvey, match="exit_interview"):
        validate_answers("exit_interview", GOOD)


def test_a_new_survey_kind_is_one_definition(monkeypatch):
    """The three-month check-in (1-5 scale, single choice, text) needs no new code."""
    checkin = Survey(
        kind="checkin",
        title="Three months on",
        intro="How are things since the engagement ended?",
        side="host",
        nps_field=None,
        fields=(
            Field(
                name="ownership",
                label="How well do you own it now?",
                kind=SCALE,
                required=True,
                minimum=1,
                maximum=5,
            ),
            Field(
                name="still_used",
                label="Is what we built still in use?",
                kind=CHOICE,
                required=True,
                choices=(("yes", "Yes"), ("no", "No")),
            ),
            Field(name="notes", label="Anything else?", kind=TEXT, max_length=2000),
        ),
    )
    monkeypatch.setitem(questions.SURVEYS, "checkin", checkin)
    answers, errors = validate_answers("checkin", {"ownership": "5", "still_used": "no", "notes": "ok"})
    assert (answers, errors) == ({"ownership": 5, "still_used": "no", "notes": "ok"}, [])
    _, errors = validate_answers("checkin", {"ownership": "0", "still_used": "yes"})
    assert _messages(errors) == ["ownership: 0 is out of range 1-5"]


def test_field_definitions_are_checked():
    with pytest.raises(ValueError, match="unknown kind"):
        Field(name="x", label="X", kind="slider")
    with pytest.raises(ValueError, match="minimum <= maximum"):
        Field(name="x", label="X", kind=SCALE, minimum=5, maximum=1)
    with pytest.raises(ValueError, match="needs choices"):
        Field(name="x", label="X", kind=CHOICE)
