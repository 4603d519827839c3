"""The independence score's pure formula at every edge, and the worked examples of docs/independence.md."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from auxeng.independence.score import (
    GOAL_POINTS,
    HELP_NEEDED_POINTS,
    INDEPENDENT_THRESHOLD,
    InvalidSignals,
    Signals,
    Status,
    Weights,
    help_asks_points,
    help_asks_ratio,
    independent_at_three_months,
    nps_change_points,
    score,
)
from auxeng.surveys.questions import GOAL_CHOICES, HELP_CHOICES

DOC = Path(__file__).resolve().parents[2] / "docs" / "independence.md"
COMPONENTS = (
    "maintainability",
    "help_needed",
    "help_asks",
    "repeat_engagement",
    "nps_change",
    "goals_business",
    "goals_technical",
)
ALL_SIGNALS = Signals(
    maintainability=5,
    help_needed="never",
    help_asks_during_per_week=2,
    help_asks_after_per_week=0,
    repeat_engagement=False,
    end_nps=0,
    checkin_nps=100,
    goals_business="yes",
    goals_technical="yes",
)

WORKED_EXAMPLES = {
    "independent": (
        Signals(
            maintainability=4.5,
            help_needed="never",
            help_asks_during_per_week=4.0,
            help_asks_after_per_week=0.5,
            repeat_engagement=False,
            end_nps=50,
            checkin_nps=100,
            goals_business="yes",
            goals_technical="partly",
        ),
        {
            "maintainability": 87.5,
            "help_needed": 100,
            "help_asks": 87.5,
            "repeat_engagement": 100,
            "nps_change": 75,
            "goals_business": 100,
            "goals_technical": 50,
        },
        86.875,
    ),
    "at risk": (
        Signals(
            maintainability=2,
            help_needed="regularly",
            help_asks_during_per_week=2.0,
            help_asks_after_per_week=3.0,
            repeat_engagement=True,
            end_nps=100,
            checkin_nps=-100,
            goals_business="partly",
            goals_technical="no",
        ),
        {
            "maintainability": 25,
            "help_needed": 0,
            "help_asks": 0,
            "repeat_engagement": 0,
            "nps_change": 0,
            "goals_business": 50,
            "goals_technical": 0,
        },
        11.25,
    ),
    "partial": (
        Signals(
            maintainability=3.5,
            help_needed="once_or_twice",
            end_nps=0,
            goals_business="yes",
            goals_technical="yes",
        ),
        {"maintainability": 62.5, "help_needed": 50, "goals_business": 100, "goals_technical": 100},
        71.875,
    ),
}


def test_the_points_cover_exactly_the_survey_answers():
    assert set(GOAL_POINTS) == {value for value, _ in GOAL_CHOICES}
    assert set(HELP_NEEDED_POINTS) == {value for value, _ in HELP_CHOICES}


def test_no_signal_gives_no_total_and_every_component_missing_with_a_reason():
    result = score(Signals())
    assert result.total is None
    assert [c.name for c in result.components] == list(COMPONENTS)
    for component in result.components:
        assert component.status is Status.MISSING
        assert component.reason
        assert component.points == component.share == component.contribution == 0


@pytest.mark.parametrize(
    ("signals", "name", "points"),
    [
        (Signals(maintainability=1), "maintainability", 0),
        (Signals(maintainability=3), "maintainability", 50),
        (Signals(maintainability=5), "maintainability", 100),
        (Signals(help_needed="never"), "help_needed", 100),
        (Signals(help_needed="once_or_twice"), "help_needed", 50),
        (Signals(help_needed="regularly"), "help_needed", 0),
        (Signals(repeat_engagement=False), "repeat_engagement", 100),
        (Signals(repeat_engagement=True), "repeat_engagement", 0),
        (Signals(end_nps=20, checkin_nps=20), "nps_change", 50),
        (Signals(end_nps=-100, checkin_nps=100), "nps_change", 100),
        (Signals(end_nps=100, checkin_nps=-100), "nps_change", 0),
        (Signals(goals_business="yes"), "goals_business", 100),
        (Signals(goals_business="partly"), "goals_business", 50),
        (Signals(goals_technical="no"), "goals_technical", 0),
        (Signals(help_asks_during_per_week=4, help_asks_after_per_week=1), "help_asks", 75),
    ],
)
def test_one_present_component_is_the_whole_total(signals, name, points):
    result = score(signals)
    component = result.component(name)
    assert component.status is Status.PRESENT and component.reason == ""
    assert component.points == pytest.approx(points)
    assert component.share == 1
    assert result.total == pytest.approx(points)
    assert sum(c.status is Status.PRESENT for c in result.components) == 1


@pytest.mark.parametrize(
    ("during", "after", "ratio", "points"),
    [
        (0, 0, 0, 100),
        (0, 1, math.inf, 0),
        (2, 0, 0, 100),
        (2, 1, 0.5, 50),
        (2, 2, 1, 0),
        (2, 6, 3, 0),
    ],
)
def test_help_asks_compare_after_with_during(during, after, ratio, points):
    assert help_asks_ratio(during, after) == ratio
    assert help_asks_points(during, after) == points


@pytest.mark.parametrize(
    ("end", "checkin", "points"), [(0, 0, 50), (0, 50, 75), (50, 0, 25), (-100, 100, 100)]
)
def test_nps_change_is_centred_on_fifty(end, checkin, points):
    assert nps_change_points(end, checkin) == points


@pytest.mark.parametrize(
    ("signals", "reason"),
    [
        (Signals(help_asks_during_per_week=1), "no help source"),
        (Signals(help_asks_after_per_week=1), "no help source"),
        (Signals(end_nps=10), "no check-in NPS"),
        (Signals(checkin_nps=10), "no end survey NPS"),
        (Signals(), "six months"),
    ],
)
def test_half_a_pair_is_missing_with_its_reason(signals, reason):
    result = score(signals)
    assert any(c.status is Status.MISSING and reason in c.reason for c in result.components)


def test_all_present_uses_the_weights_as_given():
    result = score(ALL_SIGNALS)
    assert all(c.status is Status.PRESENT for c in result.components)
    assert result.total == 100
    weights = Weights()
    total_weight = sum(getattr(weights, name) for name in COMPONENTS)
    for component in result.components:
        assert component.share == pytest.approx(component.weight / total_weight)


def test_missing_components_are_left_out_and_the_rest_renormalised():
    result = score(Signals(maintainability=5, goals_business="no"))
    maintainability, goals = result.component("maintainability"), result.component("goals_business")
    assert maintainability.share == pytest.approx(25 / 35)
    assert goals.share == pytest.approx(10 / 35)
    assert result.total == pytest.approx(100 * 25 / 35)
    assert sum(c.contribution for c in result.components) == pytest.approx(result.total)


def test_bounds_of_the_total():
    worst = Signals(
        maintainability=1,
        help_needed="regularly",
        help_asks_during_per_week=1,
        help_asks_after_per_week=5,
        repeat_engagement=True,
        end_nps=100,
        checkin_nps=-100,
        goals_business="no",
        goals_technical="no",
    )
    assert score(worst).total == 0
    assert score(ALL_SIGNALS).total == 100


def test_zero_weights_count_nothing_and_an_all_zero_present_set_has_no_total():
    weights = Weights(maintainability=0)
    result = score(Signals(maintainability=5, goals_business="no"), weights)
    assert result.total == 0
    assert result.component("maintainability").share == 0
    assert score(Signals(maintainability=5), weights).total is None
    only_goals = Weights(**{name: 0.0 for name in COMPONENTS} | {"goals_business": 1.0})
    assert score(ALL_SIGNALS, only_goals).total == 100


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"maintainability": -1}, "weight maintainability must be a finite number at least 0"),
        ({"help_asks": math.nan}, "weight help_asks must be a finite number at least 0"),
        ({"help_asks": math.inf}, "weight help_asks must be a finite number at least 0"),
        ({"nps_change": "10"}, "weight nps_change must be a number"),
        ({"nps_change": None}, "weight nps_change must be a number"),
        ({name: 0 for name in COMPONENTS}, "at least one weight must be above zero"),
    ],
)
def test_invalid_weights_are_rejected(weights, message):
    with pytest.raises(InvalidSignals, match=message):
        Weights(**weights)


@pytest.mark.parametrize(
    ("signals", "message"),
    [
        ({"maintainability": 0.5}, "maintainability must be a finite number between 1 and 5"),
        ({"maintainability": 5.5}, "maintainability must be a finite number between 1 and 5"),
        ({"maintainability": True}, "maintainability must be a number"),
        ({"maintainability": math.nan}, "maintainability must be a finite number between"),
        ({"help_needed": "sometimes"}, "help_needed must be one of never, once_or_twice, regularly"),
        ({"help_asks_during_per_week": -1}, "help_asks_during_per_week must be a finite number at least 0"),
        ({"help_asks_after_per_week": "2"}, "help_asks_after_per_week must be a number"),
        ({"repeat_engagement": 1}, "repeat_engagement must be True, False or None"),
        ({"end_nps": -101}, "end_nps must be a finite number between -100 and 100"),
        ({"checkin_nps": 100.5}, "checkin_nps must be a finite number between -100 and 100"),
        ({"goals_business": "Yes"}, "goals_business must be one of yes, partly, no"),
        ({"goals_technical": ""}, "goals_technical must be one of"),
    ],
)
def test_invalid_signals_are_rejected_with_a_clear_error(signals, message):
    with pytest.raises(InvalidSignals, match=message):
        Signals(**signals)


def test_independent_at_three_months_needs_a_checkin_and_the_threshold():
    assert INDEPENDENT_THRESHOLD == 70
    no_checkin = Signals(goals_business="yes", goals_technical="yes")
    assert score(no_checkin).total == 100
    assert not independent_at_three_months(no_checkin, score(no_checkin))
    at_threshold = Signals(maintainability=3.8)
    assert score(at_threshold).total == pytest.approx(70)
    assert independent_at_three_months(at_threshold, score(at_threshold), threshold=score(at_threshold).total)
    below = Signals(maintainability=3)
    assert not independent_at_three_months(below, score(below))
    assert independent_at_three_months(below, score(below), threshold=50)
    assert independent_at_three_months(Signals(help_needed="never"), score(Signals(help_needed="never")))
    with pytest.raises(InvalidSignals, match="threshold must be a finite number between 0 and 100"):
        independent_at_three_months(below, score(below), threshold=101)


@pytest.mark.parametrize("name", WORKED_EXAMPLES)
def test_the_worked_examples_in_the_docs_are_what_the_formula_computes(name):
    signals, points, total = WORKED_EXAMPLES[name]
    result = score(signals)
    assert {c.name: c.points for c in result.components if c.status is Status.PRESENT} == pytest.approx(
        points
    )
    assert result.total == pytest.approx(total)
    doc = DOC.read_text()
    assert f"total **{total:g}**" in doc, f"docs/independence.md does not show the {name!r} total {total:g}"
    for component, value in points.items():
        assert f"| `{component}` | {value:g} |" in doc.split(f"### Example: {name}")[1].split("###")[0]
