"""NPS maths against hand-computed values (adjusted-Wald: n + 3, counts + 3/4)."""

from __future__ import annotations

import pytest

from auxeng.nps.maths import category, change_is_real, nps, nps_of_scores, response_rate


@pytest.mark.parametrize(
    ("score", "kind"),
    [(0, "detractor"), (6, "detractor"), (7, "passive"), (8, "passive"), (9, "promoter"), (10, "promoter")],
)
def test_category_boundaries(score, kind):
    assert category(score) == kind


@pytest.mark.parametrize("bad", [-1, 11, 7.5, "9", True, None])
def test_an_answer_outside_0_to_10_is_an_error_naming_it(bad):
    with pytest.raises(ValueError, match="whole number from 0 to 10"):
        category(bad)


def test_no_responses_has_no_score_and_the_widest_interval():
    # n' = 3, p+ = p- = 0.25: centre 0, var = 0.5 / 3, margin = 1.96 * 0.40825 = 0.80015
    result = nps(0, 0, 0)
    assert result.score is None and result.responses == 0
    assert result.low == pytest.approx(-80.0152, abs=1e-3)
    assert result.high == pytest.approx(80.0152, abs=1e-3)
    assert result.shown() == "too few responses"


def test_all_promoters():
    # n' = 13, p+ = 10.75/13 = 0.826923, p- = 0.75/13 = 0.057692, centre 0.769231,
    # var = (0.884615 - 0.591716) / 13 = 0.022531, margin = 0.294202 -> [47.50, 106.34] clipped to 100
    result = nps(10, 0, 0)
    assert result.score == 100.0
    assert result.low == pytest.approx(47.5036, abs=1e-3)
    assert result.high == 100.0
    assert result.variance == pytest.approx(0.0225307, abs=1e-6)


def test_all_detractors_mirror_all_promoters():
    result = nps(0, 0, 10)
    assert result.score == -100.0
    assert (result.low, result.high) == (-100.0, pytest.approx(-47.5036, abs=1e-3))


def test_a_mixed_segment():
    # 5 promoters, 3 passives, 2 detractors: NPS 30; n' = 13, p+ = 0.442308, p- = 0.211538,
    # centre 0.230769, var = (0.653846 - 0.053254) / 13 = 0.046199, margin 0.421280 -> [-19.05, 65.20]
    result = nps(5, 3, 2)
    assert result.score == 30.0
    assert result.low == pytest.approx(-19.0506, abs=1e-3)
    assert result.high == pytest.approx(65.2045, abs=1e-3)
    assert result.shown() == "+30 (95% CI -19 to +65, n=10)"
    assert nps_of_scores([10, 9, 9, 10, 9, 7, 8, 8, 0, 6]) == result


def test_privacy_threshold_hides_small_segments():
    assert nps(2, 0, 0).shown() == "too few responses"
    # n' = 5, p+ = 0.55, p- = 0.15, centre 0.4, var = (0.7 - 0.16) / 5 = 0.108, margin 0.644
    assert nps(2, 0, 0).shown(min_responses=2) == "+100 (95% CI -24 to +100, n=2)"
    assert nps(2, 1, 0).shown().startswith("+67 ")


def test_negative_counts_are_rejected():
    with pytest.raises(ValueError, match="detractors cannot be negative"):
        nps(1, 1, -1)


def test_a_change_is_real_only_when_the_difference_interval_excludes_zero():
    assert not change_is_real(nps(5, 3, 2), nps(6, 2, 2))  # 30 -> 40 on 10 answers: noise
    assert change_is_real(nps(10, 20, 70), nps(70, 20, 10))  # -60 -> +60 on 100 answers
    assert not change_is_real(nps(0, 0, 0), nps(10, 0, 0))  # nothing to compare with
    # the same NPS on more answers is no change at all
    assert not change_is_real(nps(50, 25, 25), nps(500, 250, 250))


def test_response_rate():
    assert response_rate(3, 12) == 0.25
    assert response_rate(0, 0) is None
    with pytest.raises(ValueError, match="between 0 and invited"):
        response_rate(5, 4)
