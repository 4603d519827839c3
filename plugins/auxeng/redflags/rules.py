"""Dependency red flags: pure rules over facts read from the store (no database, no Airflow).

Each rule is a small function ``rule(facts, thresholds) -> list[Flag]``. The store side
(:mod:`auxeng.redflags.store`) reads the facts, runs :func:`evaluate`, and keeps one live flag per
rule and subject: a flag a rule no longer returns is resolved ("the condition cleared").

Rules and their thresholds (settings in brackets; defaults in docs/operations.md, "Settings"):

``help_requests`` (subject: host team)
    Requests for help (Slack help channel or CSV drop) posted after the end of the team's
    latest ended engagement, and not while another engagement of the team was running.
    Opens at ``help_requests_min`` [AUXENG_HELP_REQUESTS_MIN=2] requests in the trailing
    ``help_window_days`` [AUXENG_HELP_WINDOW_DAYS=30]; critical from
    ``help_requests_critical`` [AUXENG_HELP_REQUESTS_CRITICAL=5]. Once open it stays open
    while any counted request is in the window, so it resolves after that many quiet days.
``checkin`` (subject: engagement)
    A three-month check-in with an answer of comfort at most ``comfort_max``
    [AUXENG_FLAG_COMFORT_MAX=2] (critical) or help needed "regularly" (critical), from the
    day the first such answer arrives, while the check-in is still open; or a closed one
    nobody answered (warning). Resolves ``memory_days`` [AUXENG_FLAG_MEMORY_DAYS=90] after
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
``independence`` (subject: host team)
    The team's independence score in the latest weekly snapshot of a week ended by ``as_of`` (the team segment of
    ``auxeng_independence_snapshots``) is below ``independence_below``
    [AUXENG_FLAG_INDEPENDENCE_BELOW=50] (critical below ``independence_critical``
    [AUXENG_FLAG_INDEPENDENCE_CRITICAL=30]), or more than ``independence_drop``
    [AUXENG_FLAG_INDEPENDENCE_DROP=15] points under its score four weekly snapshots before
    (the earliest the team has within those four weeks: :func:`auxeng.independence.trends.team_trends`). Resolves when a newer snapshot
    clears both, or the team has no score in the latest snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

from auxeng.checkins.schedule import is_repeat
from auxeng.independence.trends import TeamIndependence, team_trends
from auxeng.vocabulary import DETRACTOR_MAX, FlagRule

WARNING = "warning"
CRITICAL = "critical"
SEVERITY_ORDER = {WARNING: 1, CRITICAL: 2}

HELP_REQUESTS = FlagRule.HELP_REQUESTS
CHECKIN = FlagRule.CHECKIN
REPEAT_DEPENDENCY = FlagRule.REPEAT_DEPENDENCY
ENGINEER_LOAD = FlagRule.ENGINEER_LOAD
DETRACTOR_CLUSTER = FlagRule.DETRACTOR_CLUSTER
INDEPENDENCE = FlagRule.INDEPENDENCE
RULES = tuple(FlagRule)
RULE_TITLES = {
    HELP_REQUESTS: "Host team still asking for help",
    CHECKIN: "Check-in: not comfortable maintaining it",
    REPEAT_DEPENDENCY: "Repeat engagement",
    ENGINEER_LOAD: "Engineer load",
    DETRACTOR_CLUSTER: "Detractor cluster",
    INDEPENDENCE: "Host team independence low or falling",
}

TEAM = "team"
ENGAGEMENT = "engagement"
ENGINEER = "engineer"

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
    independence: tuple[TeamIndependence, ...] = ()
    """Team snapshots of the latest computed week and the :data:`TREND_WEEKS` weeks before it."""
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
    independence_below: float = 50
    independence_critical: float = 30
    independence_drop: float = 15

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
            independence_below=settings.flag_independence_below,
            independence_critical=settings.flag_independence_critical,
            independence_drop=settings.flag_independence_drop,
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


# --- helpers ---------------------------------------------------------------------------------------


def severity_rose(old: str | None, new: str) -> bool:
    """True when ``new`` is more severe than ``old`` (a flag that was not live counts as lowest)."""
    return old is None or SEVERITY_ORDER[new] > SEVERITY_ORDER.get(old, 0)


def _truncate(text: str | None, limit: int = QUOTE_LIMIT) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _team_name(facts: Facts, team_key: str) -> str:
    return facts.team_names.get(team_key, team_key)


def _live(engagements: Iterable[Engagement]) -> list[Engagement]:
    """Non-cancelled engagements by (start, end, key)."""
    return sorted((e for e in engagements if not e.cancelled), key=lambda e: (e.start, e.end, e.key))


def _by_team(facts: Facts) -> dict[str, list[Engagement]]:
    teams: dict[str, list[Engagement]] = defaultdict(list)
    for engagement in _live(facts.engagements):
        teams[engagement.team_key].append(engagement)
    return teams


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def _span(days: int) -> str:
    if days >= 14:
        return f"{days // 7} weeks"
    return "1 day" if days == 1 else f"{days} days"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _sorted_flags(flags: Iterable[Flag]) -> list[Flag]:
    return sorted(flags, key=lambda f: (f.subject_kind, f.subject_key))


# --- rules -------------------------------------------------------------------------------------------


def help_request_flags(facts: Facts, thresholds: Thresholds) -> list[Flag]:
    """Help requests after a team's engagement ended, not during a running one (see module docs)."""
    as_of, window = facts.as_of, thresholds.help_window_days
    window_start = as_of - timedelta(days=window)
    teams = _by_team(facts)
    counted: dict[str, list[HelpRequest]] = defaultdict(list)
    for request in facts.help_requests:
        if not window_start < request.on <= as_of:
            continue
        engagements = teams.get(request.team_key, [])
        after_end = any(e.end < request.on for e in engagements)
        running = any(e.start <= request.on <= e.end for e in engagements)
        if after_end and not running:
            counted[request.team_key].append(request)

    flags = []
    for team_key, requests in counted.items():
        count = len(requests)
        if count >= thresholds.help_requests_critical:
            severity = CRITICAL
        elif count >= thresholds.help_requests_min or (HELP_REQUESTS, team_key) in facts.open_flags:
            severity = WARNING
        else:
            continue
        requests.sort(key=lambda r: (r.on, r.source, r.author or "", r.summary, r.link or ""), reverse=True)
        latest_on = requests[0].on
        ended = max((e for e in teams[team_key] if e.end < latest_on), key=lambda e: (e.end, e.start, e.key))
        sources: dict[str, int] = {"slack": 0, "csv": 0}
        for request in requests:
            sources[request.source] = sources.get(request.source, 0) + 1
        flags.append(
            Flag(
                rule=HELP_REQUESTS,
                subject_kind=TEAM,
                subject_key=team_key,
                severity=severity,
                summary=(
                    f"{_team_name(facts, team_key)} asked for help {_times(count)} in the last "
                    f"{window} days, {_span((latest_on - ended.end).days)} after {ended.key} ended"
                ),
                evidence={
                    "requests": count,
                    "window_days": window,
                    "since": ended.end.isoformat(),
                    "engagement": ended.key,
                    "sources": sources,
                    "latest": [
                        {
                            "on": r.on.isoformat(),
                            "source": r.source,
                            "author": r.author,
                            "summary": _truncate(r.summary),
                            "link": r.link,
                        }
                        for r in requests[:EVIDENCE_ITEMS]
                    ],
                },
                team_key=team_key,
                engagement_key=ended.key,
            )
        )
    return _sorted_flags(flags)


def _checkin_reasons(checkin: Checkin, thresholds: Thresholds) -> list[tuple[str, str]]:
    reasons = []
    if checkin.maintainability_min is not None and checkin.maintainability_min <= thresholds.comfort_max:
        reasons.append((CRITICAL, f"comfort {checkin.maintainability_min}/5"))
    if checkin.help_needed == "regularly":
        reasons.append((CRITICAL, "needs the platform team's help regularly"))
    if checkin.status == "unanswered":
        reasons.append((WARNING, f"no one answered the check-in ({checkin.invited} invited)"))
    return reasons


def checkin_flags(facts: Facts, thresholds: Thresholds) -> list[Flag]:
    """Check-ins with low comfort or regular help, from the first such answer (the check-in may
    still be open: the host team said so, nothing more is needed), and closed ones nobody
    answered; each kept ``memory_days`` after its close."""
    as_of = facts.as_of
    titles = {e.key: e.title for e in facts.engagements}
    best: dict[str, tuple[tuple[int, date, date], Flag]] = {}
    for checkin in facts.checkins:
        closed = checkin.closed_on
        if checkin.status in ("answered", "unanswered") and closed is not None:
            if not closed <= as_of < closed + timedelta(days=thresholds.memory_days):
                continue
        elif checkin.status != "surveying" or not checkin.responses:
            continue
        reasons = _checkin_reasons(checkin, thresholds)
        if not reasons:
            continue
        severity = max((s for s, _ in reasons), key=SEVERITY_ORDER.__getitem__)
        key = checkin.engagement_key
        title = titles.get(key)
        name = f"{key} ({title})" if title else key
        flag = Flag(
            rule=CHECKIN,
            subject_kind=ENGAGEMENT,
            subject_key=key,
            severity=severity,
            summary=(
                f"{_team_name(facts, checkin.team_key)}, check-in for {name}: "
                + "; ".join(text for _, text in reasons)
            ),
            evidence={
                "reasons": [text for _, text in reasons],
                "due_on": checkin.due_on.isoformat(),
                "closed_on": closed.isoformat() if closed else None,
                "responses": checkin.responses,
                "invited": checkin.invited,
                "maintainability_min": checkin.maintainability_min,
                "help_needed": checkin.help_needed,
            },
            team_key=checkin.team_key,
            engagement_key=key,
        )
        rank = (SEVERITY_ORDER[severity], closed or as_of, checkin.due_on)
        if key not in best or rank > best[key][0]:
            best[key] = (rank, flag)
    return _sorted_flags(flag for _, flag in best.values())


def repeat_dependency_flags(facts: Facts, thresholds: Thresholds) -> list[Flag]:
    """A team back within ``repeat_months`` of its previous engagement's end, until the new one ends."""
    as_of, months = facts.as_of, thresholds.repeat_months
    flags = []
    for team_key, engagements in _by_team(facts).items():
        found = None
        run = 1
        for index, (prev, nxt) in enumerate(pairwise(engagements), start=1):
            if is_repeat(prev.start, prev.end, nxt.start, months):
                run += 1
                if nxt.end >= as_of:
                    found = (index, run)
            else:
                run = 1
        if found is None:
            continue
        index, run = found
        prev, nxt = engagements[index - 1], engagements[index]
        chain = [e.key for e in engagements[index - run + 1 : index + 1]]
        gap = (nxt.start - prev.end).days
        when = f"while {prev.key} was still running" if gap <= 0 else f"{_span(gap)} after {prev.key} ended"
        verb = "starts" if nxt.start > as_of else "started"
        summary = f"{_team_name(facts, team_key)} {verb} {nxt.key} on {nxt.start.isoformat()}, {when}"
        if run >= 3:
            summary += f" ({_ordinal(run)} engagement in a row)"
        flags.append(
            Flag(
                rule=REPEAT_DEPENDENCY,
                subject_kind=TEAM,
                subject_key=team_key,
                severity=CRITICAL if run >= 3 else WARNING,
                summary=summary,
                evidence={
                    "previous": {"key": prev.key, "end": prev.end.isoformat()},
                    "next": {"key": nxt.key, "start": nxt.start.isoformat(), "end": nxt.end.isoformat()},
                    "gap_days": gap,
                    "months": months,
                    "chain": chain,
                },
                team_key=team_key,
                engagement_key=nxt.key,
            )
        )
    return _sorted_flags(flags)


def _load_chains(engagements: list[Engagement], gap_days: int) -> list[tuple[list[Engagement], list[int]]]:
    """Back-to-back runs: each engagement starts at most ``gap_days`` after the run's latest end."""
    chains: list[tuple[list[Engagement], list[int]]] = []
    chain: list[Engagement] = []
    gaps: list[int] = []
    chain_end: date | None = None
    for engagement in engagements:
        if chain_end is not None and (engagement.start - chain_end).days <= gap_days:
            gaps.append((engagement.start - chain_end).days)
            chain.append(engagement)
            chain_end = max(chain_end, engagement.end)
            continue
        if chain:
            chains.append((chain, gaps))
        chain, gaps, chain_end = [engagement], [], engagement.end
    if chain:
        chains.append((chain, gaps))
    return chains


def engineer_load_flags(facts: Facts, thresholds: Thresholds) -> list[Flag]:
    """Platform people with more than ``load_max_engagements`` engagements back to back."""
    as_of, limit, gap_limit = facts.as_of, thresholds.load_max_engagements, thresholds.load_gap_days
    people: dict[str, list[Engagement]] = defaultdict(list)
    for engagement in _live(facts.engagements):
        for email in dict.fromkeys(engagement.platform_people):
            people[email].append(engagement)

    flags = []
    for email, engagements in people.items():
        qualifying = [
            (chain, gaps)
            for chain, gaps in _load_chains(engagements, gap_limit)
            if len(chain) > limit and max(e.end for e in chain) >= as_of
        ]
        if not qualifying:
            continue
        chain, gaps = qualifying[-1]
        over = chain[limit]
        critical = as_of >= over.start or len(chain) >= limit + 2
        name = facts.person_names.get(email, email)
        last_end = max(e.end for e in chain)
        summary = (
            f"{name} has {len(chain)} engagements back to back "
            f"({', '.join(e.key for e in chain)}) until {last_end.isoformat()}; "
            f"{over.key} {'started' if as_of >= over.start else 'starts'} on {over.start.isoformat()}"
        )
        flags.append(
            Flag(
                rule=ENGINEER_LOAD,
                subject_kind=ENGINEER,
                subject_key=email,
                severity=CRITICAL if critical else WARNING,
                summary=summary,
                evidence={
                    "engagements": [
                        {
                            "key": e.key,
                            "team": e.team_key,
                            "start": e.start.isoformat(),
                            "end": e.end.isoformat(),
                        }
                        for e in chain
                    ],
                    "gaps_days": gaps,
                    "limit": limit,
                    "gap_limit_days": gap_limit,
                },
                team_key=None,
                engagement_key=over.key,
            )
        )
    return _sorted_flags(flags)


def detractor_cluster_flags(facts: Facts, thresholds: Thresholds) -> list[Flag]:
    """Engagements with at least ``detractor_cluster_min`` detractors, for ``memory_days``."""
    as_of, minimum = facts.as_of, thresholds.detractor_cluster_min
    titles = {e.key: e.title for e in facts.engagements}
    answers: dict[str, list[Answer]] = defaultdict(list)
    for answer in facts.answers:
        if answer.on <= as_of:
            answers[answer.engagement_key].append(answer)

    flags = []
    for key, given in answers.items():
        detractors = sorted(
            (a for a in given if a.nps <= DETRACTOR_MAX),
            key=lambda a: (a.on, a.survey, a.nps, a.who or "", a.comment or ""),
            reverse=True,
        )
        count = len(detractors)
        if count < minimum or count == 0:
            continue
        latest_on = detractors[0].on
        if not as_of < latest_on + timedelta(days=thresholds.memory_days):
            continue
        team_key = detractors[0].team_key
        title = titles.get(key)
        name = f"{key} ({title})" if title else key
        flags.append(
            Flag(
                rule=DETRACTOR_CLUSTER,
                subject_kind=ENGAGEMENT,
                subject_key=key,
                severity=CRITICAL if count >= 2 * minimum else WARNING,
                summary=(
                    f"{_team_name(facts, team_key)}, {name}: {count} detractor answers "
                    f"out of {len(given)}, latest on {latest_on.isoformat()}"
                ),
                evidence={
                    "detractors": count,
                    "answers": len(given),
                    "latest_on": latest_on.isoformat(),
                    "quotes": [
                        {
                            "who": a.who or "anonymous",
                            "nps": a.nps,
                            "survey": a.survey,
                            "on": a.on.isoformat(),
                            "comment": _truncate(a.comment),
                        }
                        for a in detractors[:EVIDENCE_ITEMS]
                    ],
                },
                team_key=team_key,
                engagement_key=key,
            )
        )
    return _sorted_flags(flags)


def independence_flags(facts: Facts, thresholds: Thresholds) -> list[Flag]:
    """Teams whose latest independence score is low, or fell fast over four weeks (see module docs)."""
    ended = [s for s in facts.independence if s.week + timedelta(days=6) <= facts.as_of]
    if not ended:
        return []
    latest = max(s.week for s in ended)
    flags = []
    for trend in team_trends(ended, latest):
        now, before, drop, team_key = trend.now, trend.before, trend.drop, trend.now.team_key
        reasons = []
        if now.score < thresholds.independence_critical:
            reasons.append((CRITICAL, f"below {thresholds.independence_critical:g}"))
        elif now.score < thresholds.independence_below:
            reasons.append((WARNING, f"below {thresholds.independence_below:g}"))
        if before is not None and drop is not None and drop > thresholds.independence_drop:
            reasons.append(
                (WARNING, f"down {drop:.0f} points from {before.score:.0f} on {before.week.isoformat()}")
            )
        if not reasons:
            continue
        severity = max((s for s, _ in reasons), key=SEVERITY_ORDER.__getitem__)
        flags.append(
            Flag(
                rule=INDEPENDENCE,
                subject_kind=TEAM,
                subject_key=team_key,
                severity=severity,
                summary=(
                    f"{_team_name(facts, team_key)}: independence {now.score:.0f}/100 in the week of "
                    f"{latest.isoformat()}, " + "; ".join(text for _, text in reasons)
                ),
                evidence={
                    "week": latest.isoformat(),
                    "score": round(now.score, 1),
                    "engagements": now.scored,
                    "before_week": before.week.isoformat() if before else None,
                    "before_score": round(before.score, 1) if before else None,
                    "drop": round(drop, 1) if drop is not None else None,
                    "below": thresholds.independence_below,
                    "critical": thresholds.independence_critical,
                    "drop_limit": thresholds.independence_drop,
                    "moved": trend.moved(),
                    "weakest": trend.weakest(),
                },
                team_key=team_key,
            )
        )
    return _sorted_flags(flags)


RULE_FUNCTIONS: dict[str, Callable[[Facts, Thresholds], list[Flag]]] = {
    HELP_REQUESTS: help_request_flags,
    CHECKIN: checkin_flags,
    REPEAT_DEPENDENCY: repeat_dependency_flags,
    ENGINEER_LOAD: engineer_load_flags,
    DETRACTOR_CLUSTER: detractor_cluster_flags,
    INDEPENDENCE: independence_flags,
}


def evaluate(facts: Facts, thresholds: Thresholds | None = None) -> list[Flag]:
    """Every rule's flags, rule by rule in :data:`RULES` order, each sorted by subject."""
    thresholds = thresholds or Thresholds()
    return [flag for rule in RULES for flag in RULE_FUNCTIONS[rule](facts, thresholds)]
