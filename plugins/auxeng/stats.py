"""Small statistics shared across domains: pure functions, no store, no Airflow.

* :func:`nps_score`: Net Promoter Score from the three counts (% promoters − % detractors);
  the NPS maths with its interval is :mod:`auxeng.nps.maths`, which builds on it.
* :func:`wilson_interval`: the 95% Wilson score interval of a proportion (successes of n),
  used for the independence headline figures. Unlike the plain Wald interval it stays inside
  0-1 and behaves at 0 and n successes and for small n:

      centre = (p + z²/2n) / (1 + z²/n),  half = z·√(p(1−p)/n + z²/4n²) / (1 + z²/n)
"""

from __future__ import annotations

import math

Z_95 = 1.959963984540054
"""The two-sided 95% quantile of the standard normal distribution."""


def nps_score(promoters: int, passives: int, detractors: int) -> float | None:
    """100 × (promoters − detractors) / answers, or None without answers."""
    n = promoters + passives + detractors
    return 100.0 * (promoters - detractors) / n if n else None


def wilson_interval(successes: int, n: int, *, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval (low, high) of ``successes`` of ``n`` (0-1), or None when n is 0."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"successes ({successes}) must be between 0 and n ({n})")
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
