"""The shared statistics: the NPS score and the Wilson interval, against published values."""

from __future__ import annotations

import pytest

from auxeng.stats import nps_score, wilson_interval


def test_nps_score():
    assert nps_score(2, 1, 1) == 25.0
    assert nps_score(0, 0, 3) == -100.0
    assert nps_score(0, 0, 0) is None


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [  # Wilson 95% intervals as tabulated (Newcombe 1998; any statistics package)
        (5, 10, 0.2366, 0.7634),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),
        (1, 1, 0.2065, 1.0),
    ],
)
def test_wilson_interval_matches_published_values(successes, n, low, high):
    got = wilson_interval(successes, n)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) is None
    for bad in ((-1, 3), (4, 3), (0, -1)):
        with pytest.raises(ValueError, match="between 0 and n"):
            wilson_interval(*bad)
