"""The surveys the pack asks, as plain data, and the validation of their answers.

A survey is a list of fields of three kinds: ``scale`` (whole numbers in a range,
e.g. NPS 0-10 or a 1-5 rating), ``choice`` (one of a few options) and ``text``.
Adding a survey kind (e.g. the three-month ``checkin``) means adding one
:class:`Survey` to :data:`SURVEYS`; the web page, the CSV import and the
validation follow from it.

The stored answers use the field names as keys; the survey's NPS field (if any)
goes to the response's ``nps`` column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from auxeng.text import clean_text
from auxeng.vocabulary import SurveyKind

MAX_COMMENT_LENGTH = 5000

SCALE = "scale"
CHOICE = "choice"
TEXT = "text"


@dataclass(frozen=True)
class Field:
    """One question. ``choices`` are (value, label) pairs; ``low``/``high`` label a scale's ends.

    ``context`` names an engagement attribute (``goals_business``, ``goals_technical``)
    the page shows under the question, e.g. the goal being asked about.
    """

    name: str
    label: str
    kind: str
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    low: str | None = None
    high: str | None = None
    choices: tuple[tuple[str, str], ...] = ()
    max_length: int = MAX_COMMENT_LENGTH
    help: str | None = None
    context: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in {SCALE, CHOICE, TEXT}:
            raise ValueError(f"field {self.name}: unknown kind {self.kind!r}")
        if self.kind == SCALE and (
            self.minimum is None or self.maximum is None or self.minimum > self.maximum
        ):
            raise ValueError(f"field {self.name}: a scale needs minimum <= maximum")
        if self.kind == CHOICE and not self.choices:
            raise ValueError(f"field {self.name}: a choice needs choices")

    @property
    def values(self) -> list[int]:
        """A scale's possible answers, in order."""
        assert self.minimum is not None
        assert self.maximum is not None
        return list(range(self.minimum, self.maximum + 1))

    @property
    def choice_values(self) -> tuple[str, ...]:
        return tuple(value for value, _label in self.choices)


@dataclass(frozen=True)
class Survey:
    """A survey kind: who answers it (``side`` of the engagement) and its fields, in order."""

    kind: str
    title: str
    intro: str
    side: str
    fields: tuple[Field, ...]
    nps_field: str | None = "nps"

    def field(self, name: str) -> Field:
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.fields)


@dataclass(frozen=True)
class FieldError:
    """A problem with one answer; ``str()`` gives ``"nps: 11 is out of range 0-10"``."""

    field: str
    message: str
    label: str = ""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class UnknownSurvey(KeyError):
    """No survey of that kind is defined."""

    def __str__(self) -> str:
        return f"unknown survey {self.args[0]!r}; known: {', '.join(SURVEYS)}"


GOAL_CHOICES = (("yes", "Yes"), ("partly", "Partly"), ("no", "No"))
NPS_QUESTION = "How likely are you to recommend AuxEng to another team?"


def _nps() -> Field:
    return Field(
        name="nps",
        label=NPS_QUESTION,
        kind=SCALE,
        required=True,
        minimum=0,
        maximum=10,
        low="Not at all likely",
        high="Extremely likely",
    )


def _goals(which: str, label: str) -> Field:
    """Whether the engagement's ``business`` or ``technical`` goals were achieved (shown with the goal)."""
    return Field(
        name=f"{which}_goals",
        label=label,
        kind=CHOICE,
        required=True,
        choices=GOAL_CHOICES,
        context=f"goals_{which}",
    )


POST_ENGAGEMENT = Survey(
    kind=SurveyKind.POST_ENGAGEMENT,
    title="How did the engagement go?",
    intro="Your answers help AuxEng decide what to keep and what to change. It takes about two minutes.",
    side="host",
    fields=(
        _nps(),
        Field(name="went_well", label="What went well?", kind=TEXT),
        Field(name="to_change", label="What should we change?", kind=TEXT),
        _goals("business", "Were the engagement's business goals achieved?"),
        _goals("technical", "Were the engagement's technical goals achieved?"),
    ),
)

RETRO = Survey(
    kind=SurveyKind.RETRO,
    title="Engagement retro",
    intro="A short internal retro for the AuxEng engineers and advisors on this engagement.",
    side="auxeng",
    fields=(
        _nps(),
        Field(name="went_well", label="What went well?", kind=TEXT),
        Field(name="to_change", label="What should we do differently next time?", kind=TEXT),
        _goals("business", "Did the engagement achieve its business goals?"),
        _goals("technical", "Did the engagement achieve its technical goals?"),
    ),
)

HELP_CHOICES = (("never", "Never"), ("once_or_twice", "Once or twice"), ("regularly", "Regularly"))
HELP_ORDER = {value: rank for rank, (value, _label) in enumerate(HELP_CHOICES)}
"""How worrying each "help needed" answer is (higher: more help needed)."""


def worst_help_needed(answers: Iterable[object]) -> str | None:
    """THE rule for several "help needed" answers of one check-in: the most worrying known
    answer (unknown values are ignored); None when there is none."""
    known = [answer for answer in answers if answer in HELP_ORDER]
    return max(known, key=HELP_ORDER.__getitem__) if known else None


CHECKIN = Survey(
    kind=SurveyKind.CHECKIN,
    title="Three months on: how is it going?",
    intro="Three months after the engagement, we check whether your team is comfortable on its own.",
    side="host",
    fields=(
        Field(
            name="maintainability",
            label="How comfortable does your team feel maintaining what we built?",
            kind=SCALE,
            required=True,
            minimum=1,
            maximum=5,
            low="Not at all comfortable",
            high="Fully comfortable",
        ),
        Field(
            name="help_needed",
            label="Since the engagement ended, how often have you needed the platform team's help?",
            kind=CHOICE,
            required=True,
            choices=HELP_CHOICES,
        ),
        Field(name="not_taken_over", label="Is there anything you could not take over?", kind=TEXT),
        _nps(),
    ),
)

PROGRESS_CHOICES = (
    ("well", "Going well"),
    ("some_concerns", "Some concerns"),
    ("struggling", "Struggling"),
)
FOLLOW_UP_NEXT = (
    ("continue", "Keep the monthly reminder"),
    ("finished", "Follow-up finished: stop the reminders"),
)

FOLLOW_UP = Survey(
    kind=SurveyKind.FOLLOW_UP,
    title="Monthly follow-up: how is it going?",
    intro="A note after this month's sync with the host team's tech lead, an engineer and the manager.",
    side="auxeng",
    fields=(
        Field(
            name="progress",
            label="How is the host team doing on its own?",
            kind=CHOICE,
            required=True,
            choices=PROGRESS_CHOICES,
        ),
        Field(name="notes", label="What came up in the sync?", kind=TEXT),
        Field(
            name="next",
            label="Keep following up?",
            kind=CHOICE,
            required=True,
            choices=FOLLOW_UP_NEXT,
        ),
    ),
    nps_field=None,
)

SURVEYS: dict[str, Survey] = {survey.kind: survey for survey in (POST_ENGAGEMENT, RETRO, CHECKIN, FOLLOW_UP)}


def get_survey(kind: str) -> Survey:
    try:
        return SURVEYS[kind]
    except KeyError:
        raise UnknownSurvey(kind) from None


def _check(item: Field, raw: str) -> tuple[Any, str | None]:
    """(value, error message) for one non-empty answer."""
    if item.kind == SCALE:
        text = raw.strip()
        if not re.fullmatch(r"[+-]?\d{1,6}", text):
            return None, f"{_show(text)} is not a whole number"
        value = int(text)
        if not item.minimum <= value <= item.maximum:  # type: ignore[operator]
            return None, f"{value} is out of range {item.minimum}-{item.maximum}"
        return value, None
    if item.kind == CHOICE:
        value = raw.strip().lower()
        if value not in item.choice_values:
            return None, f"{_show(raw.strip())} is not one of {', '.join(item.choice_values)}"
        return value, None
    value = clean_text(raw)
    if len(value) > item.max_length:
        return None, f"is {len(value):,} characters long; the limit is {item.max_length:,}"
    return value, None


def _show(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def validate_answers(survey: str, form: Mapping[str, str]) -> tuple[dict[str, Any], list[FieldError]]:
    """Clean answers (scales as ints, choices as their value, stripped text) and the problems found.

    Keys not in the survey are ignored; an empty optional answer is left out of the result.
    Raises :class:`UnknownSurvey` for an unknown ``survey``.
    """
    definition = get_survey(survey)
    answers: dict[str, Any] = {}
    errors: list[FieldError] = []
    for item in definition.fields:
        raw = form.get(item.name)
        raw = "" if raw is None else str(raw)
        if (clean_text(raw) if item.kind == TEXT else raw.strip()) == "":
            if item.required:
                errors.append(FieldError(item.name, "an answer is required", item.label))
            continue
        value, problem = _check(item, raw)
        if problem is not None:
            errors.append(FieldError(item.name, problem, item.label))
        else:
            answers[item.name] = value
    return answers, errors


__all__ = [
    "CHOICE",
    "MAX_COMMENT_LENGTH",
    "SCALE",
    "SURVEYS",
    "TEXT",
    "Field",
    "FieldError",
    "Survey",
    "UnknownSurvey",
    "get_survey",
    "validate_answers",
]
