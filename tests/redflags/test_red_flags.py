"""The pure red-flag rules: each threshold at its edge, evidence, ordering (no Airflow, no database)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from auxeng.independence.trends import TeamIndependence
from auxeng.redflags import rules as rf
from auxeng.redflags.rules import (
    CRITICAL,
    WARNING,
    Answer,
    Checkin,
    Engagement,
    Facts,
    HelpRequest,
    Thresholds,
)

AS_OF = date(2026, 6, 15)
T = Thresholds()


def day(offset: int) -> date:
    return AS_OF + timedelta(days=offset)


def eng(key, start, end, team="payments", people=(), cancelled=False) -> Engagement:
    return Engagement(
        key=key,
        team_key=team,
        title=f"Title {key}",
        start=start,
        end=end,
        cancelled=cancelled,
        platform_people=tuple(people),
    )


def facts(as_of=AS_OF, **kwargs) -> Facts:
    kwargs.setdefault("team_names", {"payments": "Payments Core", "search": "Search"})
    return Facts(as_of=as_of, **kwargs)


# --- help_requests ------------------------------------------------------------------------------

ENDED = eng("ENG-2026-025", date(2026, 1, 5), date(2026, 3, 20))


def req(on: date, team="payments", source="slack", summary="how do I deploy?", **kwargs) -> HelpRequest:
    return HelpRequest(team_key=team, on=on, source=source, summary=summary, **kwargs)


def help_flags(requests, engagements=(ENDED,), open_flags=frozenset(), thresholds=T, as_of=AS_OF):
    f = facts(
        as_of=as_of,
        engagements=tuple(engagements),
        help_requests=tuple(requests),
        open_flags=open_flags,
    )
    return rf.help_request_flags(f, thresholds)


@pytest.mark.parametrize(
    ("count", "severity"),
    [(0, None), (1, None), (2, WARNING), (4, WARNING), (5, CRITICAL), (7, CRITICAL)],
)
def test_help_request_counts(count, severity):
    flags = help_flags([req(day(-i)) for i in range(count)])
    assert [f.severity for f in flags] == ([severity] if severity else [])


def test_help_request_flag_fields_and_evidence():
    requests = [
        req(day(0), source="slack", author="ana", link="https://slack/x", summary="x" * 400),
        req(day(-3), source="csv", author="bo"),
        req(day(-10), source="slack"),
    ]
    (flag,) = help_flags(requests)
    assert (flag.rule, flag.subject_kind, flag.subject_key) == (rf.HELP_REQUESTS, rf.TEAM, "payments")
    assert flag.team_key == "payments"
    assert flag.engagement_key == "ENG-2026-025"
    assert flag.summary == (
        "Payments Core asked for help 3 times in the last 30 days, 12 weeks after ENG-2026-025 ended"
    )
    ev = flag.evidence
    assert ev["requests"] == 3
    assert ev["window_days"] == 30
    assert ev["since"] == "2026-03-20"
    assert ev["engagement"] == "ENG-2026-025"
    assert ev["sources"] == {"slack": 2, "csv": 1}
    assert [item["on"] for item in ev["latest"]] == ["2026-06-15", "2026-06-12", "2026-06-05"]
    first = ev["latest"][0]
    assert first["author"] == "ana" and first["link"] == "https://slack/x" and first["source"] == "slack"
    assert len(first["summary"]) == rf.QUOTE_LIMIT and first["summary"].endswith("…")
    assert json.loads(json.dumps(ev)) == ev


def test_help_request_latest_is_capped():
    (flag,) = help_flags([req(day(-i)) for i in range(12)])
    assert flag.evidence["requests"] == 12
    assert len(flag.evidence["latest"]) == rf.EVIDENCE_ITEMS


def test_help_request_window_edge():
    # exactly window_days ago is outside; window_days - 1 is inside
    assert help_flags([req(day(0)), req(day(-30))]) == []
    assert len(help_flags([req(day(0)), req(day(-29))])) == 1


def test_help_request_after_as_of_ignored():
    assert help_flags([req(day(0)), req(day(1)), req(day(2))]) == []


def test_help_request_during_running_engagement_not_counted():
    running = eng("ENG-2026-040", day(-5), day(20))
    assert help_flags([req(day(-1)), req(day(-2))], engagements=(ENDED, running)) == []
    # a request before the running engagement started still counts
    flags = help_flags([req(day(-6)), req(day(-7)), req(day(-1))], engagements=(ENDED, running))
    assert flags[0].evidence["requests"] == 2


def test_help_request_on_end_date_not_counted():
    end = day(-10)
    just_ended = eng("ENG-A", day(-60), end)
    assert help_flags([req(end), req(day(-9))], engagements=(just_ended,)) == []
    assert len(help_flags([req(day(-8)), req(day(-9))], engagements=(just_ended,))) == 1


def test_help_request_needs_an_ended_engagement():
    planned = eng("ENG-B", day(10), day(40))
    assert help_flags([req(day(0)), req(day(-1))], engagements=(planned,)) == []
    assert help_flags([req(day(0)), req(day(-1))], engagements=()) == []


def test_help_request_cancelled_engagement_ignored():
    cancelled = eng("ENG-C", day(-60), day(-20), cancelled=True)
    assert help_flags([req(day(0)), req(day(-1))], engagements=(cancelled,)) == []
    # a cancelled engagement "running" does not hide requests either
    running_cancelled = eng("ENG-D", day(-5), day(5), cancelled=True)
    assert len(help_flags([req(day(0)), req(day(-1))], engagements=(ENDED, running_cancelled))) == 1


def test_help_request_engagement_is_latest_ended_before_latest_request():
    later = eng("ENG-LATER", date(2026, 4, 1), date(2026, 5, 31))
    (flag,) = help_flags([req(day(0)), req(day(-1))], engagements=(ENDED, later))
    assert flag.engagement_key == "ENG-LATER"
    assert flag.evidence["since"] == "2026-05-31"


def test_help_request_hysteresis():
    open_flags = frozenset({(rf.HELP_REQUESTS, "payments")})
    # one request keeps an open flag open (warning)
    (flag,) = help_flags([req(day(-29))], open_flags=open_flags)
    assert flag.severity == WARNING and flag.evidence["requests"] == 1
    # ... but does not open one
    assert help_flags([req(day(-29))]) == []
    # it clears after window_days with no counted request
    assert help_flags([req(day(-30))], open_flags=open_flags) == []
    # another team's open flag does not matter
    other = frozenset({(rf.HELP_REQUESTS, "search")})
    assert help_flags([req(day(-1))], open_flags=other) == []


def test_help_request_thresholds_honoured():
    th = Thresholds(help_window_days=7, help_requests_min=3, help_requests_critical=4)
    assert help_flags([req(day(0)), req(day(-1))], thresholds=th) == []
    assert help_flags([req(day(0)), req(day(-1)), req(day(-7))], thresholds=th) == []
    flags = help_flags([req(day(0)), req(day(-1)), req(day(-6))], thresholds=th)
    assert flags[0].severity == WARNING and flags[0].evidence["window_days"] == 7
    flags = help_flags([req(day(-i)) for i in range(4)], thresholds=th)
    assert flags[0].severity == CRITICAL


def test_help_request_per_team_sorted():
    engagements = (ENDED, eng("ENG-S", date(2026, 1, 1), date(2026, 2, 1), team="search"))
    requests = [req(day(0), team=t) for t in ("search", "payments")] + [
        req(day(-1), team=t) for t in ("search", "payments")
    ]
    flags = help_flags(requests, engagements=engagements)
    assert [f.subject_key for f in flags] == ["payments", "search"]


# --- checkin ------------------------------------------------------------------------------------


TEN_DAYS_AGO = day(-10)
FIVE_DAYS_AGO = day(-5)


def chk(key="ENG-1", status="answered", closed=TEN_DAYS_AGO, **kwargs) -> Checkin:
    kwargs.setdefault("invited", 4)
    kwargs.setdefault("responses", 2)
    return Checkin(
        engagement_key=key,
        team_key="payments",
        status=status,
        due_on=closed - timedelta(days=14) if closed else day(-20),
        closed_on=closed,
        **kwargs,
    )


def checkin_flags(*checkins, thresholds=T, as_of=AS_OF):
    return rf.checkin_flags(facts(as_of=as_of, checkins=tuple(checkins)), thresholds)


@pytest.mark.parametrize(("comfort", "severity"), [(1, CRITICAL), (2, CRITICAL), (3, None), (None, None)])
def test_checkin_comfort(comfort, severity):
    flags = checkin_flags(chk(maintainability_min=comfort, help_needed="never"))
    assert [f.severity for f in flags] == ([severity] if severity else [])
    if severity:
        assert flags[0].evidence["reasons"] == [f"comfort {comfort}/5"]


@pytest.mark.parametrize(
    ("help_needed", "severity"),
    [("regularly", CRITICAL), ("once_or_twice", None), ("never", None), (None, None)],
)
def test_checkin_help_needed(help_needed, severity):
    flags = checkin_flags(chk(maintainability_min=4, help_needed=help_needed))
    assert [f.severity for f in flags] == ([severity] if severity else [])


def test_checkin_unanswered_is_warning():
    (flag,) = checkin_flags(chk(status="unanswered", invited=5, responses=0))
    assert flag.severity == WARNING
    assert flag.evidence["reasons"] == ["no one answered the check-in (5 invited)"]
    assert (flag.subject_kind, flag.subject_key, flag.engagement_key) == (rf.ENGAGEMENT, "ENG-1", "ENG-1")
    assert flag.team_key == "payments"


def test_checkin_severity_is_max_and_evidence():
    (flag,) = checkin_flags(chk(maintainability_min=2, help_needed="regularly"))
    assert flag.severity == CRITICAL
    ev = flag.evidence
    assert ev == {
        "reasons": ["comfort 2/5", "needs the platform team's help regularly"],
        "due_on": day(-24).isoformat(),
        "closed_on": day(-10).isoformat(),
        "responses": 2,
        "invited": 4,
        "maintainability_min": 2,
        "help_needed": "regularly",
    }
    assert json.loads(json.dumps(ev)) == ev
    assert "comfort 2/5" in flag.summary


@pytest.mark.parametrize("status", ["planned", "invited", "open", "cancelled", "skipped"])
def test_checkin_other_statuses_ignored(status):
    assert checkin_flags(chk(status=status, maintainability_min=1)) == []


def test_checkin_not_closed_ignored():
    assert checkin_flags(chk(closed=None, maintainability_min=1)) == []


def test_an_open_checkin_is_flagged_by_its_first_worrying_answer():
    """The host team said it: no need to wait for the close (the evidence grows with more answers)."""
    (flag,) = checkin_flags(chk(status="surveying", closed=None, responses=1, maintainability_min=2))
    assert (flag.severity, flag.evidence["closed_on"], flag.evidence["responses"]) == (CRITICAL, None, 1)
    (flag,) = checkin_flags(chk(status="surveying", closed=None, responses=1, help_needed="regularly"))
    assert flag.evidence["reasons"] == ["needs the platform team's help regularly"]
    (grown,) = checkin_flags(
        chk(status="surveying", closed=None, responses=3, maintainability_min=1, help_needed="regularly")
    )
    assert grown.evidence["reasons"] == ["comfort 1/5", "needs the platform team's help regularly"]


def test_an_open_checkin_without_worrying_answers_waits_for_its_close():
    assert checkin_flags(chk(status="surveying", closed=None, responses=0, invited=4)) == []  # "nobody" waits
    assert checkin_flags(chk(status="surveying", closed=None, responses=2, maintainability_min=4)) == []


def test_checkin_memory_edge():
    c = chk(closed=day(-89), maintainability_min=1)
    assert len(checkin_flags(c)) == 1
    assert checkin_flags(chk(closed=day(-90), maintainability_min=1)) == []
    # closing day itself flags; a check-in closed after as_of is not seen yet
    assert len(checkin_flags(chk(closed=day(0), maintainability_min=1))) == 1
    assert checkin_flags(chk(closed=day(1), maintainability_min=1)) == []


def test_checkin_thresholds_honoured():
    th = Thresholds(comfort_max=3, memory_days=10)
    assert len(checkin_flags(chk(closed=day(-9), maintainability_min=3), thresholds=th)) == 1
    assert checkin_flags(chk(closed=day(-10), maintainability_min=3), thresholds=th) == []
    assert checkin_flags(chk(closed=day(-9), maintainability_min=4), thresholds=th) == []


def test_checkin_sorted_by_engagement():
    flags = checkin_flags(
        chk("ENG-3", status="unanswered"),
        chk("ENG-1", status="unanswered"),
        chk("ENG-2", status="unanswered"),
    )
    assert [f.subject_key for f in flags] == ["ENG-1", "ENG-2", "ENG-3"]


# --- repeat_dependency --------------------------------------------------------------------------


def repeat_flags(*engagements, thresholds=T, as_of=AS_OF):
    return rf.repeat_dependency_flags(facts(as_of=as_of, engagements=tuple(engagements)), thresholds)


PREV = eng("ENG-A", date(2026, 1, 1), date(2026, 1, 15))


def test_repeat_exactly_six_months_vs_one_day_more():
    inside = eng("ENG-B", date(2026, 7, 15), date(2026, 9, 1))
    (flag,) = repeat_flags(PREV, inside)
    assert flag.severity == WARNING
    assert (flag.subject_kind, flag.subject_key, flag.team_key, flag.engagement_key) == (
        rf.TEAM,
        "payments",
        "payments",
        "ENG-B",
    )
    ev = flag.evidence
    assert ev == {
        "previous": {"key": "ENG-A", "end": "2026-01-15"},
        "next": {"key": "ENG-B", "start": "2026-07-15", "end": "2026-09-01"},
        "gap_days": (date(2026, 7, 15) - date(2026, 1, 15)).days,
        "months": 6,
        "chain": ["ENG-A", "ENG-B"],
    }
    assert json.loads(json.dumps(ev)) == ev
    assert repeat_flags(PREV, eng("ENG-B", date(2026, 7, 16), date(2026, 9, 1))) == []


def test_repeat_month_end_clamping():
    prev = eng("ENG-A", date(2025, 6, 1), date(2025, 8, 31))
    # 2025-08-31 + 6 months = 2026-02-28
    assert len(repeat_flags(prev, eng("ENG-B", date(2026, 2, 28), date(2026, 7, 1)))) == 1
    assert repeat_flags(prev, eng("ENG-B", date(2026, 3, 1), date(2026, 7, 1))) == []
    th = Thresholds(repeat_months=1)
    jan = eng("ENG-J", date(2027, 12, 1), date(2028, 1, 31))
    # 2028 is a leap year: Jan 31 + 1 month = Feb 29
    assert (
        len(
            repeat_flags(
                jan, eng("ENG-K", date(2028, 2, 29), date(2028, 3, 31)), thresholds=th, as_of=date(2028, 3, 1)
            )
        )
        == 1
    )
    assert (
        repeat_flags(
            jan, eng("ENG-K", date(2028, 3, 1), date(2028, 3, 31)), thresholds=th, as_of=date(2028, 3, 1)
        )
        == []
    )


def test_repeat_overlap_counts():
    (flag,) = repeat_flags(PREV, eng("ENG-B", date(2026, 1, 10), date(2026, 7, 1)))
    assert flag.evidence["gap_days"] == -5
    assert "still running" in flag.summary


def test_repeat_same_start_is_not_a_repeat():
    assert repeat_flags(PREV, eng("ENG-B", PREV.start, date(2026, 7, 1))) == []


def test_repeat_cancelled_ignored():
    cancelled = eng("ENG-X", date(2026, 1, 1), date(2026, 1, 15), cancelled=True)
    assert repeat_flags(cancelled, eng("ENG-B", date(2026, 3, 1), date(2026, 7, 1))) == []
    assert repeat_flags(PREV, eng("ENG-B", date(2026, 3, 1), date(2026, 7, 1), cancelled=True)) == []


def test_repeat_planned_flags_and_clears_after_next_ends():
    nxt = eng("ENG-B", date(2026, 7, 1), date(2026, 8, 31))
    # planned: flagged as soon as it is in the registry
    assert len(repeat_flags(PREV, nxt, as_of=date(2026, 2, 1))) == 1
    assert "starts ENG-B" in repeat_flags(PREV, nxt, as_of=date(2026, 2, 1))[0].summary
    assert len(repeat_flags(PREV, nxt, as_of=date(2026, 8, 31))) == 1
    assert repeat_flags(PREV, nxt, as_of=date(2026, 9, 1)) == []


def test_repeat_chain_of_three_is_critical():
    b = eng("ENG-B", date(2026, 3, 1), date(2026, 4, 30))
    c = eng("ENG-C", date(2026, 6, 1), date(2026, 8, 31))
    (flag,) = repeat_flags(PREV, b, c)
    assert flag.severity == CRITICAL
    assert flag.engagement_key == "ENG-C"
    assert flag.evidence["chain"] == ["ENG-A", "ENG-B", "ENG-C"]
    assert flag.evidence["previous"]["key"] == "ENG-B"
    # a broken chain starts again at two
    far_b = eng("ENG-B", date(2025, 1, 1), date(2025, 2, 1))
    early_a = eng("ENG-A", date(2024, 1, 1), date(2024, 2, 1))
    (flag,) = repeat_flags(early_a, far_b, eng("ENG-C", date(2025, 6, 1), date(2026, 8, 31)))
    assert flag.severity == WARNING
    assert flag.evidence["chain"] == ["ENG-B", "ENG-C"]


def test_repeat_one_flag_per_team_sorted():
    engagements = [
        PREV,
        eng("ENG-B", date(2026, 3, 1), date(2026, 4, 30)),
        eng("ENG-C", date(2026, 6, 1), date(2026, 8, 31)),
        eng("S-1", date(2026, 1, 1), date(2026, 2, 1), team="search"),
        eng("S-2", date(2026, 5, 1), date(2026, 7, 1), team="search"),
    ]
    flags = repeat_flags(*reversed(engagements))
    assert [f.subject_key for f in flags] == ["payments", "search"]


def test_repeat_thresholds_honoured():
    nxt = eng("ENG-B", date(2026, 4, 15), date(2026, 9, 1))
    assert len(repeat_flags(PREV, nxt, thresholds=Thresholds(repeat_months=3))) == 1
    assert repeat_flags(PREV, nxt, thresholds=Thresholds(repeat_months=2)) == []


# --- engineer_load ------------------------------------------------------------------------------

ANA = "ana@example.org"


def load_flags(*engagements, thresholds=T, as_of=AS_OF):
    f = facts(as_of=as_of, engagements=tuple(engagements), person_names={ANA: "Ana Lima"})
    return rf.engineer_load_flags(f, thresholds)


def back_to_back(gaps, length=30, first=date(2026, 5, 1), people=(ANA,)):
    """Engagements of ``length`` days each, the i-th starting gaps[i-1] days after the previous end."""
    out, start = [], first
    for i in range(len(gaps) + 1):
        end = start + timedelta(days=length)
        out.append(eng(f"ENG-{i + 1}", start, end, team=f"team{i + 1}", people=people))
        if i < len(gaps):
            start = end + timedelta(days=gaps[i])
    return out


def test_load_two_engagements_is_fine():
    assert load_flags(*back_to_back([0])) == []


def test_load_gap_edge():
    three = back_to_back([14, 14])
    assert len(load_flags(*three)) == 1
    assert load_flags(*back_to_back([14, 15])) == []
    assert load_flags(*back_to_back([15, 14])) == []


def test_load_warning_before_third_starts_critical_on_its_start_day():
    e1, e2, e3 = back_to_back([5, 5], first=date(2026, 5, 1))
    (flag,) = load_flags(e1, e2, e3, as_of=e3.start - timedelta(days=1))
    assert flag.severity == WARNING
    assert (flag.subject_kind, flag.subject_key, flag.team_key, flag.engagement_key) == (
        rf.ENGINEER,
        ANA,
        None,
        "ENG-3",
    )
    assert flag.summary.startswith("Ana Lima has 3 engagements back to back")
    ev = flag.evidence
    assert ev == {
        "engagements": [
            {"key": e.key, "team": e.team_key, "start": e.start.isoformat(), "end": e.end.isoformat()}
            for e in (e1, e2, e3)
        ],
        "gaps_days": [5, 5],
        "limit": 2,
        "gap_limit_days": 14,
    }
    assert json.loads(json.dumps(ev)) == ev
    (flag,) = load_flags(e1, e2, e3, as_of=e3.start)
    assert flag.severity == CRITICAL
    # flagged long before, too (planned engagements count)
    assert load_flags(e1, e2, e3, as_of=date(2026, 1, 1))[0].severity == WARNING


def test_load_four_is_critical_before_the_third_starts():
    chain = back_to_back([3, 3, 3])
    (flag,) = load_flags(*chain, as_of=chain[0].start)
    assert flag.severity == CRITICAL
    assert flag.engagement_key == "ENG-3"


def test_load_clears_after_chain_ended():
    chain = back_to_back([3, 3])
    assert len(load_flags(*chain, as_of=chain[-1].end)) == 1
    assert load_flags(*chain, as_of=chain[-1].end + timedelta(days=1)) == []


def test_load_overlap_uses_max_end():
    long = eng("ENG-L", date(2026, 5, 1), date(2026, 8, 31), people=(ANA,))
    short = eng("ENG-S", date(2026, 5, 10), date(2026, 5, 20), people=(ANA,))
    # 16 days after ENG-S ended but during ENG-L
    after = eng("ENG-N", date(2026, 6, 5), date(2026, 6, 30), people=(ANA,))
    (flag,) = load_flags(long, short, after, as_of=date(2026, 5, 2))
    assert flag.evidence["gaps_days"] == [-113, -87]
    assert flag.engagement_key == "ENG-N"
    # still live while the long one runs, even though the last to start ended
    assert len(load_flags(long, short, after, as_of=date(2026, 7, 15))) == 1


def test_load_cancelled_and_other_people_ignored():
    e1, e2, e3 = back_to_back([3, 3])
    cancelled = eng(e3.key, e3.start, e3.end, people=(ANA,), cancelled=True)
    assert load_flags(e1, e2, cancelled) == []
    other = eng(e3.key, e3.start, e3.end, people=("bo@example.org",))
    assert load_flags(e1, e2, other) == []


def test_load_latest_qualifying_chain():
    early = back_to_back([1, 1], first=date(2026, 5, 1))
    late = [
        eng(f"LATE-{i}", e.start + timedelta(days=200), e.end + timedelta(days=200), people=(ANA,))
        for i, e in enumerate(early, start=1)
    ]
    (flag,) = load_flags(*early, *late, as_of=date(2026, 5, 2))
    assert flag.engagement_key == "LATE-3"


def test_load_thresholds_honoured():
    chain = back_to_back([20, 20])
    assert load_flags(*chain) == []
    assert len(load_flags(*chain, thresholds=Thresholds(load_gap_days=20))) == 1
    two = back_to_back([1])
    (flag,) = load_flags(*two, thresholds=Thresholds(load_max_engagements=1), as_of=date(2026, 5, 2))
    assert flag.severity == WARNING and flag.engagement_key == "ENG-2"


def test_load_sorted_by_email_and_name_fallback():
    people = ("zed@example.org", ANA)
    flags = load_flags(*back_to_back([1, 1], people=people))
    assert [f.subject_key for f in flags] == [ANA, "zed@example.org"]
    assert flags[1].summary.startswith("zed@example.org has 3")


# --- detractor_cluster --------------------------------------------------------------------------


def ans(nps, on=FIVE_DAYS_AGO, key="ENG-1", who="Bo", comment="meh", survey="host_end") -> Answer:
    return Answer(
        engagement_key=key, team_key="payments", survey=survey, nps=nps, on=on, who=who, comment=comment
    )


def detractor_flags(*answers, thresholds=T, as_of=AS_OF):
    return rf.detractor_cluster_flags(facts(as_of=as_of, answers=tuple(answers)), thresholds)


@pytest.mark.parametrize(
    ("detractors", "severity"), [(0, None), (1, None), (2, WARNING), (3, WARNING), (4, CRITICAL)]
)
def test_detractor_counts(detractors, severity):
    answers = [ans(6) for _ in range(detractors)] + [ans(7), ans(9), ans(10)]
    flags = detractor_flags(*answers)
    assert [f.severity for f in flags] == ([severity] if severity else [])


def test_detractor_nps_seven_is_not_a_detractor():
    assert detractor_flags(ans(6), ans(7)) == []
    assert len(detractor_flags(ans(0), ans(6))) == 1


def test_detractor_evidence():
    answers = [
        ans(2, on=day(-1), who=None, comment="c" * 500, survey="retro"),
        ans(5, on=day(-3)),
        ans(9, on=day(-2)),
    ]
    (flag,) = detractor_flags(*answers)
    assert (flag.subject_kind, flag.subject_key, flag.engagement_key, flag.team_key) == (
        rf.ENGAGEMENT,
        "ENG-1",
        "ENG-1",
        "payments",
    )
    ev = flag.evidence
    assert ev["detractors"] == 2 and ev["answers"] == 3
    assert ev["latest_on"] == day(-1).isoformat()
    first, second = ev["quotes"]
    assert first["who"] == "anonymous" and first["nps"] == 2 and first["survey"] == "retro"
    assert first["on"] == day(-1).isoformat()
    assert len(first["comment"]) == rf.QUOTE_LIMIT and first["comment"].endswith("…")
    assert second == {
        "who": "Bo",
        "nps": 5,
        "survey": "host_end",
        "on": day(-3).isoformat(),
        "comment": "meh",
    }
    assert json.loads(json.dumps(ev)) == ev


def test_detractor_quotes_capped():
    (flag,) = detractor_flags(*[ans(1, on=day(-i)) for i in range(15)])
    assert flag.evidence["detractors"] == 15
    assert len(flag.evidence["quotes"]) == rf.EVIDENCE_ITEMS


def test_detractor_memory_edge():
    assert len(detractor_flags(ans(1, on=day(-100)), ans(1, on=day(-89)))) == 1
    assert detractor_flags(ans(1, on=day(-100)), ans(1, on=day(-90))) == []


def test_detractor_answers_after_as_of_ignored():
    assert detractor_flags(ans(1, on=day(0)), ans(1, on=day(1))) == []
    (flag,) = detractor_flags(ans(1, on=day(0)), ans(1, on=day(-1)), ans(9, on=day(3)))
    assert flag.evidence["answers"] == 2


def test_detractor_per_engagement_sorted():
    flags = detractor_flags(
        ans(1, key="ENG-2"), ans(1, key="ENG-2"), ans(1, key="ENG-1"), ans(1, key="ENG-1")
    )
    assert [f.subject_key for f in flags] == ["ENG-1", "ENG-2"]
    assert detractor_flags(ans(1, key="ENG-1"), ans(1, key="ENG-2")) == []


def test_detractor_thresholds_honoured():
    th = Thresholds(detractor_cluster_min=3, memory_days=10)
    assert detractor_flags(ans(1), ans(1), thresholds=th) == []
    assert detractor_flags(*[ans(1)] * 5, thresholds=th)[0].severity == WARNING
    assert detractor_flags(*[ans(1)] * 6, thresholds=th)[0].severity == CRITICAL
    assert detractor_flags(*[ans(1, on=day(-10))] * 3, thresholds=th) == []


# --- independence ---------------------------------------------------------------------------------

LATEST = date(2026, 6, 8)  # a Monday: the latest computed week


def snap(score, weeks_before=0, team="payments", **points) -> TeamIndependence:
    return TeamIndependence(
        team_key=team, week=LATEST - timedelta(weeks=weeks_before), score=score, scored=2, components=points
    )


def independence_flags(*snapshots, thresholds=T):
    return rf.independence_flags(facts(independence=tuple(snapshots)), thresholds)


@pytest.mark.parametrize(
    ("score", "severity"),
    [(100, None), (50, None), (49.9, WARNING), (30, WARNING), (29.9, CRITICAL), (0, CRITICAL)],
)
def test_independence_score_edges(score, severity):
    flags = independence_flags(snap(score))
    assert [f.severity for f in flags] == ([severity] if severity else [])


@pytest.mark.parametrize(("before", "flagged"), [(75, False), (75.1, True), (90, True)])
def test_independence_drop_over_four_weeks_edge(before, flagged):
    # 60 is above the threshold: only a drop of more than 15 points flags it
    flags = independence_flags(snap(before, 4), snap(70, 2), snap(60))
    assert [f.severity for f in flags] == ([WARNING] if flagged else [])


def test_independence_drop_compares_with_four_weeks_before_not_five():
    assert independence_flags(snap(95, 5), snap(60)) == []
    assert independence_flags(snap(95, 5), snap(61, 3), snap(60)) == []
    # a team whose history is shorter: its earliest week within the four
    assert independence_flags(snap(95, 2), snap(60))[0].evidence["before_week"] == "2026-05-25"


def test_independence_flag_fields_and_evidence():
    [flag] = independence_flags(
        snap(80, 4, maintainability=90.0, help_asks=100.0, goals_business=100.0, help_needed=50.0),
        snap(
            45, maintainability=70.0, help_asks=10.0, goals_business=100.0, help_needed=60.0, nps_change=20.0
        ),
    )
    assert (flag.rule, flag.subject_kind, flag.subject_key, flag.team_key) == (
        "independence",
        "team",
        "payments",
        "payments",
    )
    assert flag.engagement_key is None and flag.severity == WARNING
    assert flag.summary == (
        "Payments Core: independence 45/100 in the week of 2026-06-08, below 50; "
        "down 35 points from 80 on 2026-05-11"
    )
    assert flag.evidence == {
        "week": "2026-06-08",
        "score": 45,
        "engagements": 2,
        "before_week": "2026-05-11",
        "before_score": 80,
        "drop": 35,
        "below": 50,
        "critical": 30,
        "drop_limit": 15,
        "moved": [
            {"component": "help_asks", "from": 100, "to": 10, "change": -90},
            {"component": "maintainability", "from": 90, "to": 70, "change": -20},
            {"component": "help_needed", "from": 50, "to": 60, "change": 10},
        ],
        "weakest": [
            {"component": "help_asks", "points": 10},
            {"component": "nps_change", "points": 20},
            {"component": "help_needed", "points": 60},
        ],
    }
    assert json.loads(json.dumps(flag.evidence)) == flag.evidence


def test_independence_only_the_latest_week_counts_and_a_recovery_clears():
    # low four weeks ago, fine now (a rise is no drop): the condition cleared
    assert independence_flags(snap(20, 4), snap(20, 1), snap(55)) == []
    # a team missing from the latest week is not flagged from an older week
    assert independence_flags(snap(20, 1, team="search"), snap(80)) == []


def test_independence_without_snapshots_flags_nothing():
    assert independence_flags() == []


def test_independence_week_not_ended_by_as_of_is_not_seen_yet():
    ended_on_sunday = facts(as_of=LATEST + timedelta(days=6), independence=(snap(80, 1), snap(20)))
    assert [f.severity for f in rf.independence_flags(ended_on_sunday, T)] == [CRITICAL]
    on_saturday = facts(as_of=LATEST + timedelta(days=5), independence=(snap(80, 1), snap(20)))
    assert rf.independence_flags(on_saturday, T) == []


def test_independence_thresholds_honoured():
    th = Thresholds(independence_below=70, independence_critical=60, independence_drop=5)
    assert independence_flags(snap(69.9), thresholds=th)[0].severity == WARNING
    assert independence_flags(snap(59), thresholds=th)[0].severity == CRITICAL
    assert independence_flags(snap(80, 4), snap(74, 0), thresholds=th)[0].evidence["drop"] == 6
    assert independence_flags(snap(80, 4), snap(75, 0), thresholds=th) == []


def test_independence_one_flag_per_team_sorted():
    flags = independence_flags(snap(10, team="search"), snap(40, team="payments"), snap(90, team="ads"))
    assert [(f.subject_key, f.severity) for f in flags] == [("payments", WARNING), ("search", CRITICAL)]
    assert flags[1].summary.startswith("Search: independence 10/100")


# --- evaluate, ordering, severity ---------------------------------------------------------------


def everything(as_of=AS_OF) -> Facts:
    engagements = (
        ENDED,
        eng("ENG-B", date(2026, 4, 1), date(2026, 4, 30), team="search", people=(ANA,)),
        eng("ENG-C", date(2026, 5, 5), date(2026, 5, 30), team="search", people=(ANA,)),
        eng("ENG-D", date(2026, 6, 5), date(2026, 7, 30), team="search", people=(ANA,)),
    )
    return facts(
        as_of=as_of,
        engagements=engagements,
        help_requests=(req(day(0)), req(day(-1))),
        checkins=(chk("ENG-2026-025", maintainability_min=1),),
        answers=(ans(1, key="ENG-B"), ans(3, key="ENG-B")),
        independence=(snap(40, 1), snap(35)),
        person_names={ANA: "Ana Lima"},
    )


def test_evaluate_runs_every_rule_in_order():
    flags = rf.evaluate(everything(), T)
    assert [f.rule for f in flags] == list(rf.RULES)
    assert set(rf.RULE_FUNCTIONS) == set(rf.RULES)
    for rule, function in rf.RULE_FUNCTIONS.items():
        assert [f for f in flags if f.rule == rule] == function(everything(), T)
    assert json.loads(json.dumps([f.evidence for f in flags])) == [f.evidence for f in flags]
    assert len({f.open_key for f in flags}) == len(flags)


def test_evaluate_is_deterministic():
    f = everything()
    shuffled = Facts(
        as_of=f.as_of,
        engagements=tuple(reversed(f.engagements)),
        help_requests=tuple(reversed(f.help_requests)),
        checkins=f.checkins,
        answers=tuple(reversed(f.answers)),
        independence=tuple(reversed(f.independence)),
        team_names=f.team_names,
        person_names=f.person_names,
    )
    assert rf.evaluate(f, T) == rf.evaluate(shuffled, T) == rf.evaluate(f, T)


def test_evaluate_defaults_thresholds():
    assert rf.evaluate(everything()) == rf.evaluate(everything(), Thresholds())


def test_evaluate_past_day_gives_that_days_view():
    # dated facts (requests, check-ins, answers) of later days are not seen yet; the registry's
    # planned engagements are
    flags = rf.evaluate(everything(as_of=date(2026, 3, 1)), T)
    assert [f.rule for f in flags] == [rf.REPEAT_DEPENDENCY, rf.ENGINEER_LOAD]


@pytest.mark.parametrize(
    ("old", "new", "rose"),
    [
        (None, WARNING, True),
        (None, CRITICAL, True),
        (WARNING, CRITICAL, True),
        (WARNING, WARNING, False),
        (CRITICAL, WARNING, False),
        (CRITICAL, CRITICAL, False),
    ],
)
def test_severity_rose(old, new, rose):
    assert rf.severity_rose(old, new) is rose
