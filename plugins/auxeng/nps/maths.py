"""Net Promoter Score maths: pure functions, no Airflow, no database.

Promoters answer 9-10, passives 7-8, detractors 0-6; NPS = % promoters − % detractors
(−100…100; :func:`auxeng.stats.nps_score`). The 95% confidence interval is the
adjusted-Wald interval (Sauro & Lewis): add 3 to n and ¾ to the promoter and detractor counts, then

    p⁺ = (P + ¾) / (n + 3),  p⁻ = (D + ¾) / (n + 3),  d = p⁺ − p⁻
    var = (p⁺ + p⁻ − d²) / (n + 3),  interval = d ± z·√var   (clipped to −100…100)

The weekly aggregation (a later issue) computes the same counts in SQL and feeds them here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from auxeng.stats import Z_95, nps_score
from auxeng.vocabulary import DETRACTOR_MAX, PROMOTER_MIN

MIN_RESPONSES = 3


def category(score: int) -> str:
    """``promoter`` (9-10), ``passive`` (7-8) or ``detractor`` (0-6); a score outside 0-10 is an error."""
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise ValueError(f"an NPS answer is a whole number from 0 to 10, not {score!r}")
    if score >= PROMOTER_MIN:
        return "promoter"
    return "detractor" if score <= DETRACTOR_MAX else "passive"


@dataclass(frozen=True)
class NpsResult:
    """NPS of one segment: counts, the score (None without answers) and its 95% interval."""

    promoters: int
    passives: int
    detractors: int
    score: float | None
    low: float
    high: float
    variance: float

    @property
    def responses(self) -> int:
        return self.promoters + self.passives + self.detractors

    def shown(self, min_responses: int = MIN_RESPONSES) -> str:
        """The score as stakeholders see it; "too few responses" below the privacy threshold."""
        if self.score is None or self.responses < min_responses:
            return "too few responses"
        return f"{self.score:+.0f} (95% CI {self.low:+.0f} to {self.high:+.0f}, n={self.responses})"


def nps(promoters: int, passives: int, detractors: int, *, z: float = Z_95) -> NpsResult:
    """NPS and its adjusted-Wald interval from the three counts (each ≥ 0)."""
    if promoters < 0 or passives < 0 or detractors < 0:  # checked at once: the snapshot calls this per row
        for name, count in (("promoters", promoters), ("passives", passives), ("detractors", detractors)):
            if count < 0:
                raise ValueError(f"{name} cannot be negative ({count})")
    n = promoters + passives + detractors
    adjusted = n + 3
    p_plus, p_minus = (promoters + 0.75) / adjusted, (detractors + 0.75) / adjusted
    centre = p_plus - p_minus
    variance = (p_plus + p_minus - centre * centre) / adjusted
    margin = z * math.sqrt(variance)
    return NpsResult(
        promoters=promoters,
        passives=passives,
        detractors=detractors,
        score=nps_score(promoters, passives, detractors),
        low=max(-100.0, 100.0 * (centre - margin)),
        high=min(100.0, 100.0 * (centre + margin)),
        variance=variance,
    )


def nps_of_scores(scores: list[int]) -> NpsResult:
    """NPS of raw 0-10 answers (validated)."""
    kinds = [category(score) for score in scores]
    return nps(kinds.count("promoter"), kinds.count("passive"), kinds.count("detractor"))


def change_is_real(before: NpsResult, after: NpsResult, *, z: float = Z_95) -> bool:
    """Whether the move from ``before`` to ``after`` is beyond chance: the 95% interval of the
    difference of the two adjusted estimates excludes 0. False when either side has no answers."""
    if before.score is None or after.score is None:
        return False

    def centre(result: NpsResult) -> float:
        adjusted = result.responses + 3
        return (result.promoters - result.detractors) / adjusted

    difference = centre(after) - centre(before)
    return abs(difference) > z * math.sqrt(before.variance + after.variance)


def response_rate(answered: int, invited: int) -> float | None:
    """Answered / invited, or None when nobody was invited."""
    if answered < 0 or invited < 0 or answered > invited:
        raise ValueError(f"answered ({answered}) must be between 0 and invited ({invited})")
    return answered / invited if invited else None
