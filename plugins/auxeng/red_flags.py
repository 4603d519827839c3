"""Dependency red flags: pure rules over facts read from the store (no database, no Airflow).

Each rule is a small function ``rule(facts, thresholds) -> list[Flag]``. The store side
(:mod:`auxeng.flags`) reads the facts, runs :func:`evaluate`, and keeps one live flag per
rule and subject: a flag a rule no longer returns is resolved ("the condition cleared").

Rules and their thresholds (settings in brackets; defaults documented in the README):

``help_requests`` (subject: host team)
    Requests for help (Slack help channel or CSV drop) posted after the end of the team's
    latest ended engagement, and not while another engagement of the team was running.
    Opens at ``help_requests_min`` [AUXENG_HELP_REQUESTS_MIN=2] requests in the trailing
    ``help_window_days`` [AUXENG_HELP_WINDOW_DAYS=30]; critical from
    ``help_requests_critical`` [AUXENG_HELP_REQUESTS_CRITICAL=5]. Once open it stays open
    while any counted request is in the window, so it resolves after that many quiet days.
``checkin`` (subject: engagement)
    A closed three-month check-in with comfort at most ``comfort_max``
    [AUXENG_FLAG_COMFORT_MAX=2] (critical), help needed "regularly" (critical), or no
    answer at all (warning). Resolves ``memory_days`` [AUXENG_FLAG_MEMORY_DAYS=90] after
    the check-in closed.
``repeat_dependency`` (subject: host team)
    The team starts an engagement within ``repeat_months`` [AUXENG_REPEAT_MONTHS=6]
    calendar months of the end of its previous one (cancelled ones do not count),
    flagged as soon as the new one is in the registry and until it ends. Critical when
    it is the third (or later) engagement of such a chain.
``engineer_load`` (subject: platform engineer or advisor, by email)
    More than ``load_max_engagements`` [AUXENG_LOAD_MAX_ENGAGEMENTS=2] engagements back
    to back (each starting at most ``load_gap_days`` [AUXENG_LOAD_GAP_DAYS=14] days after
    the previous one ended, overlaps included), planned ones counted: a warning before
    the engagement over the limit starts, critical once it has started or the chain is
    longer still. Resolves when the chain's last engagement has ended or the chain breaks.
``detractor_cluster`` (subject: engagement)
    At least ``detractor_cluster_min`` [AUXENG_DETRACTOR_CLUSTER_MIN=2] detractor answers
    (NPS 0-6) on one engagement; critical from twice that. Resolves ``memory_days``
    after the latest of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

WARNING = "warning"
CRITICAL = "critical"
SEVERITY_ORDER = {WARNING: 1, CRITICAL: 2}

HELP_REQUESTS = "help_requests"
CHECKIN = "checkin"
REPEAT_DEPENDENCY = "repeat_dependency"
ENGINEER_LOAD = "engineer_load"
DETRACTOR_CLUSTER = "detractor_cluster"
RULES = (HELP_REQUESTS, CHECKIN, REPEAT_DEPENDENCY, ENGINEER_LOAD, DETRACTOR_CLUSTER)
RULE_TITLES = {
    HELP_REQUESTS: "Host team still asking for help",
    CHECKIN: "Check-in: not comfortable maintaining it",
    REPEAT_DEPENDENCY: "Repeat engagement",
    ENGINEER_LOAD: "Engineer load",
    DETRACTOR_CLUSTER: "Detractor cluster",
}

TEAM = "team"
ENGAGEMENT = "engagement"
ENGINEER = "engineer"

DETRACTOR_MAX = 6
QUOTE_LIMIT = 280
EVIDENCE_ITEMS = 10


@dataclass(frozen=True)
class Engagement:
    """An engagement from the registry; ``platform_people`` are the emails of its AuxEng side."""

    key: str
    team_key: str
    title: str
    start: date
    end: date
    cancelled: bool = False
    platform_people: tuple[str, ...] = ()


@dataclass(frozen=True)
class HelpRequest:
    """One stored help request; ``on`` is its date in the program's time zone."""

    team_key: str
    on: date
    source: str
    summary: str
    author: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class Checkin:
    """A three-month check-in of an engagement (``status`` as in ``auxeng_checkins``)."""

    engagement_key: str
    team_key: str
    status: str
    due_on: date
    closed_on: date | None
    invited: int = 0
    responses: int = 0
    maintainability_min: int | None = None
    help_needed: str | None = None


@dataclass(frozen=True)
class Answer:
    """One survey answer with an NPS score (``who`` is a display name, or None when anonymous)."""

    engagement_key: str
    team_key: str
    survey: str
    nps: int
    on: date
    who: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class Facts:
    """Everything the rules look at, as of one day.

    ``open_flags`` holds ``(rule, subject_key)`` of the flags that are live (open or
    acknowledged) before this evaluation: rules with hysteresis use it.
    """

    as_of: date
    engagements: tuple[Engagement, ...] = ()
    help_requests: tuple[HelpRequest, ...] = ()
    checkins: tuple[Checkin, ...] = ()
    answers: tuple[Answer, ...] = ()
    team_names: dict[str, str] = field(default_factory=dict)
    person_names: dict[str, str] = field(default_factory=dict)
    open_flags: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Thresholds:
    help_window_days: int = 30
    help_requests_min: int = 2
    help_requests_critical: int = 5
    comfort_max: int = 2
    memory_days: int = 90
    repeat_months: int = 6
    load_max_engagements: int = 2
    load_gap_days: int = 14
    detractor_cluster_min: int = 2

    @classmethod
    def from_settings(cls, settings: Any) -> Thresholds:
        return cls(
            help_window_days=settings.help_window_days,
            help_requests_min=settings.help_requests_min,
            help_requests_critical=settings.help_requests_critical,
            comfort_max=settings.flag_comfort_max,
            memory_days=settings.flag_memory_days,
            repeat_months=settings.repeat_months,
            load_max_engagements=settings.load_max_engagements,
            load_gap_days=settings.load_gap_days,
            detractor_cluster_min=settings.detractor_cluster_min,
        )


@dataclass(frozen=True)
class Flag:
    """One finding: ``evidence`` is JSON-ready (dates as ISO strings) and shown to managers as is."""

    rule: str
    subject_kind: str
    subject_key: str
    severity: str
    summary: str
    evidence: dict[str, Any]
    team_key: str | None = None
    engagement_key: str | None = None

    @property
    def open_key(self) -> str:
        return f"{self.rule}:{self.subject_kind}:{self.subject_key}"
