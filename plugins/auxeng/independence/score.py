"""The independence score: an engagement's signals in, a total 0-100 and its components out.

Pure: no store, no clock. Each component maps one signal to points 0-100; the total is the
weighted mean of the components that are present. A missing component (no check-in yet, an
anonymous answer, no help channel, six months not yet passed) is left out and the remaining
weights re-normalised, never counted as zero. The formula and worked examples: ``docs/independence.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from auxeng.surveys.questions import GOAL_CHOICES, HELP_CHOICES

GOAL_POINTS = {"yes": 100.0, "partly": 50.0, "no": 0.0}
"""Points for a goals answer (the choices of :data:`auxeng.surveys.questions.GOAL_CHOICES`)."""
HELP_NEEDED_POINTS = {"never": 100.0, "once_or_twice": 50.0, "regularly": 0.0}
"""Points for the check-in's "help needed" answer (:data:`auxeng.surveys.questions.HELP_CHOICES`)."""
INDEPENDENT_THRESHOLD = 70.0
"""An engagement with a check-in and a total at or above this is independent at three months."""
MAINTAINABILITY_RANGE = (1.0, 5.0)
NPS_RANGE = (-100.0, 100.0)

GOAL_ANSWERS = tuple(value for value, _ in GOAL_CHOICES)
HELP_ANSWERS = tuple(value for value, _ in HELP_CHOICES)


class InvalidSignals(ValueError):
    """A signal, weight or threshold outside what the formula accepts."""


class Status(StrEnum):
    """Whether a component counted towards the total."""

    PRESENT = "present"
    MISSING = "missing"


@dataclass(frozen=True)
class Signals:
    """One engagement's independence signals; ``None`` means the signal does not exist (yet)."""

    maintainability: float | None = None
    """Mean check-in answer, 1 (not at all comfortable) to 5 (fully comfortable)."""
    help_needed: str | None = None
    """The check-in's "help needed" answer: ``never``, ``once_or_twice`` or ``regularly``."""
    help_asks_during_per_week: float | None = None
    """The host team's help asks per week during the engagement; ``None``: no help source."""
    help_asks_after_per_week: float | None = None
    """The host team's help asks per week after the end; ``None``: no help source."""
    repeat_engagement: bool | None = None
    """A new engagement for the same host team within six months of the end; ``None``: too early."""
    end_nps: float | None = None
    """The end survey's NPS, -100 to 100; ``None``: no answer or anonymous."""
    checkin_nps: float | None = None
    """The check-in's NPS, -100 to 100; ``None``: no answer or anonymous."""
    goals_business: str | None = None
    """Business goals achieved: ``yes``, ``partly`` or ``no``."""
    goals_technical: str | None = None
    """Technical goals achieved: ``yes``, ``partly`` or ``no``."""

    def __post_init__(self) -> None:
        _check_range("maintainability", self.maintainability, *MAINTAINABILITY_RANGE)
        _check_choice("help_needed", self.help_needed, HELP_ANSWERS)
        _check_range("help_asks_during_per_week", self.help_asks_during_per_week, 0.0, math.inf)
        _check_range("help_asks_after_per_week", self.help_asks_after_per_week, 0.0, math.inf)
        if self.repeat_engagement is not None and not isinstance(self.repeat_engagement, bool):
            raise InvalidSignals(
                f"repeat_engagement must be True, False or None, not {self.repeat_engagement!r}"
            )
        _check_range("end_nps", self.end_nps, *NPS_RANGE)
        _check_range("checkin_nps", self.checkin_nps, *NPS_RANGE)
        _check_choice("goals_business", self.goals_business, GOAL_ANSWERS)
        _check_choice("goals_technical", self.goals_technical, GOAL_ANSWERS)

    @property
    def has_checkin(self) -> bool:
        """Whether the three-month check-in was answered."""
        return self.maintainability is not None or self.help_needed is not None


@dataclass(frozen=True)
class Weights:
    """How much each component counts; the defaults sum to 100 (only the ratios matter)."""

    maintainability: float = 25.0
    help_needed: float = 15.0
    help_asks: float = 20.0
    repeat_engagement: float = 10.0
    nps_change: float = 10.0
    goals_business: float = 10.0
    goals_technical: float = 10.0

    def __post_init__(self) -> None:
        for field in fields(self):
            _check_range(f"weight {field.name}", getattr(self, field.name), 0.0, math.inf)
            if getattr(self, field.name) is None:
                raise InvalidSignals(f"weight {field.name} must be a number, not None")
        if not any(getattr(self, field.name) for field in fields(self)):
            raise InvalidSignals("at least one weight must be above zero")


@dataclass(frozen=True)
class Component:
    """One signal's part of the score; ``points`` and ``contribution`` are 0 when missing."""

    name: str
    value: float | str | bool | None
    points: float
    weight: float
    share: float
    """The weight re-normalised over the present components (0 to 1; 0 when missing)."""
    contribution: float
    """``points * share``: the components' contributions sum to the total."""
    status: Status
    reason: str = ""
    """Why the component is missing (empty when present)."""

    def as_stored(self, reason: str | None = None) -> dict[str, Any]:
        """The component as the store keeps it (JSON-ready: a value that is not a finite number is
        null); ``reason``, when given, replaces why it is missing."""
        value = self.value
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        return {
            "name": self.name,
            "value": value,
            "points": self.points,
            "weight": self.weight,
            "share": self.share,
            "contribution": self.contribution,
            "status": str(self.status),
            "reason": self.reason if reason is None else reason,
        }


@dataclass(frozen=True)
class Score:
    """The total (``None`` when no weighted component is present) and every component."""

    total: float | None
    components: tuple[Component, ...]

    def component(self, name: str) -> Component:
        """The component called ``name``."""
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(name)


def _check_range(name: str, value: object, low: float, high: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidSignals(f"{name} must be a number, not {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        accepted = f"at least {low:g}" if math.isinf(high) else f"between {low:g} and {high:g}"
        raise InvalidSignals(f"{name} must be a finite number {accepted}, not {value!r}")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise InvalidSignals(f"{name} must be one of {', '.join(choices)} or None, not {value!r}")


def help_asks_ratio(during: float, after: float) -> float:
    """Help asks per week after the end over those during (0 when both are 0, ``inf`` when only during is)."""
    if during == 0:
        return 0.0 if after == 0 else math.inf
    return after / during


def help_asks_points(during: float, after: float) -> float:
    """100 when asks after the end fall to zero, 0 when they stay at or above the rate during."""
    if during == 0:
        return 100.0 if after == 0 else 0.0
    return 100.0 * max(0.0, 1.0 - after / during)


def nps_change_points(end_nps: float, checkin_nps: float) -> float:
    """50 for no change, plus half the change in NPS points, clamped to 0-100."""
    return min(100.0, max(0.0, 50.0 + (checkin_nps - end_nps) / 2))


def _raw_components(signals: Signals) -> list[tuple[str, object, float | None, str]]:
    """(name, value, points or None, reason when missing) for each component, in weight order."""
    s = signals
    no_checkin = "no check-in answer yet"
    if s.help_asks_during_per_week is None or s.help_asks_after_per_week is None:
        help_asks = (None, None, "no help source for the host team")
    else:
        during, after = s.help_asks_during_per_week, s.help_asks_after_per_week
        help_asks = (help_asks_ratio(during, after), help_asks_points(during, after), "")
    if s.end_nps is None or s.checkin_nps is None:
        missing = "end survey" if s.end_nps is None else "check-in"
        nps_change = (None, None, f"no {missing} NPS (not answered or anonymous)")
    else:
        nps_change = (s.checkin_nps - s.end_nps, nps_change_points(s.end_nps, s.checkin_nps), "")
    return [
        (
            "maintainability",
            s.maintainability,
            None if s.maintainability is None else (s.maintainability - 1) / 4 * 100,
            no_checkin,
        ),
        (
            "help_needed",
            s.help_needed,
            None if s.help_needed is None else HELP_NEEDED_POINTS[s.help_needed],
            no_checkin,
        ),
        ("help_asks", *help_asks),
        (
            "repeat_engagement",
            s.repeat_engagement,
            None if s.repeat_engagement is None else (0.0 if s.repeat_engagement else 100.0),
            "six months after the end have not passed",
        ),
        ("nps_change", *nps_change),
        (
            "goals_business",
            s.goals_business,
            None if s.goals_business is None else GOAL_POINTS[s.goals_business],
            "business goals not answered",
        ),
        (
            "goals_technical",
            s.goals_technical,
            None if s.goals_technical is None else GOAL_POINTS[s.goals_technical],
            "technical goals not answered",
        ),
    ]


def score(signals: Signals, weights: Weights | None = None) -> Score:
    """The independence score of one engagement's ``signals`` (default :class:`Weights`)."""
    weights = weights or Weights()
    raw = _raw_components(signals)
    present_weight = sum(getattr(weights, name) for name, _, points, _ in raw if points is not None)
    components = []
    for name, value, points, reason in raw:
        weight = getattr(weights, name)
        if points is None:
            components.append(Component(name, value, 0.0, weight, 0.0, 0.0, Status.MISSING, reason))
            continue
        share = weight / present_weight if present_weight else 0.0
        components.append(Component(name, value, points, weight, share, points * share, Status.PRESENT))
    total = sum(c.contribution for c in components) if present_weight else None
    return Score(total=total, components=tuple(components))


def independent_at_three_months(
    signals: Signals, result: Score, threshold: float = INDEPENDENT_THRESHOLD
) -> bool:
    """Whether the check-in was answered and the total is at least ``threshold`` (0-100)."""
    _check_range("threshold", threshold, 0.0, 100.0)
    return signals.has_checkin and result.total is not None and result.total >= threshold
