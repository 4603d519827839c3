"""The weekly independence snapshot on SQLite and PostgreSQL: every stored figure is recomputed
here from the raw rows (plain Python over what was inserted, not the module's queries)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auxeng.checkins.schedule import add_months
from auxeng.independence import snapshots
from auxeng.independence.score import Signals, Weights, score
from auxeng.settings import load_settings
from auxeng.stats import wilson_interval
from auxeng.store.models import (
    EngagementRow,
    HelpRequestRow,
    IndependenceScoreRow,
    IndependenceSnapshotRow,
    IndependenceWeekRow,
    SurveyResponseRow,
    TeamRow,
)
from tests.independence.world import answer, engagement, help_ask, team
from tests.support.statements import counting

WEEK = date(2026, 11, 16)
EARLIER = date(2026, 8, 3)
SETTINGS = load_settings({"AUXENG_TIMEZONE": "Europe/Paris"})
TZ = SETTINGS.timezone
NOW = datetime(2026, 11, 30, 6, tzinfo=UTC)
END, CHECKIN = "post_engagement", "checkin"
GOAL_ORDER = ["no", "partly", "yes"]
HELP_RANK = {"never": 0, "once_or_twice": 1, "regularly": 2}


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), TZ)


@pytest.fixture
def world(store):
    """Teams and engagements covering every rule: counted or not, each signal present, missing or bad."""
    with Session(store) as s:
        team(s, "alpha", org="Payments", help_channel="C0ALPHA")
        team(s, "beta", org="Payments")  # a CSV help source only
        team(s, "gamma")  # no org, no help source
        team(s, "delta", org="Search", help_channel="C0DELTA")
        s.flush()
        engagement(s, "A1", "alpha", date(2026, 5, 4), date(2026, 7, 31))
        # A1's repeat: registered late in August, starts in September (a backfill before either misses it)
        engagement(
            s, "A2", "alpha", date(2026, 9, 1), date(2026, 10, 30), created_at=local(date(2026, 8, 20), 9)
        )
        engagement(s, "B1", "beta", date(2025, 10, 1), date(2025, 12, 15), anonymous=True)
        engagement(s, "G1", "gamma", date(2026, 8, 1), date(2026, 9, 30))
        engagement(s, "D1", "delta", date(2026, 6, 1), date(2026, 7, 1), status="cancelled")
        engagement(s, "D2", "delta", date(2025, 3, 1), date(2025, 6, 1))  # ended before the window
        engagement(s, "D3", "delta", date(2026, 10, 1), date(2026, 12, 31), ended=False)  # running
        engagement(s, "D4", "delta", date(2026, 9, 1), date(2026, 11, 10))
        s.flush()
        # A1: end survey (business goals: yes twice, partly once; technical: partly once, no once, a tie
        # that goes to "no"), check-in answers, one after the week (not seen)
        answer(
            s, "A1", END, local(date(2026, 8, 3), 10), nps=9, business_goals="yes", technical_goals="partly"
        )
        answer(s, "A1", END, local(date(2026, 8, 4), 10), nps=10, business_goals="yes", technical_goals="no")
        answer(s, "A1", END, local(date(2026, 8, 12), 10), nps=6, business_goals="partly")
        answer(s, "A1", "retro", local(date(2026, 8, 5), 11), nps=0, business_goals="no")  # not host side
        answer(s, "A1", CHECKIN, local(date(2026, 11, 2), 10), nps=10, maintainability=4, help_needed="never")
        answer(
            s,
            "A1",
            CHECKIN,
            local(date(2026, 11, 3), 10),
            nps=8,
            maintainability=5,
            help_needed="once_or_twice",
        )
        answer(
            s, "A1", CHECKIN, local(date(2026, 11, 23), 10), nps=0, maintainability=1, help_needed="regularly"
        )
        # A2: only an end survey
        answer(s, "A2", END, local(date(2026, 11, 3), 10), nps=7, business_goals="no", technical_goals="yes")
        # B1 (anonymous): NPS never per engagement; one stored comfort answer is out of range
        answer(
            s, "B1", END, local(date(2025, 12, 20), 10), nps=10, business_goals="yes", technical_goals="yes"
        )
        answer(
            s, "B1", CHECKIN, local(date(2026, 3, 16), 10), nps=3, maintainability=9, help_needed="sometimes"
        )
        answer(
            s, "B1", CHECKIN, local(date(2026, 3, 17), 10), nps=9, maintainability=2, help_needed="regularly"
        )
        # D4: a goals answer the formula does not know and an NPS of 11
        answer(
            s, "D4", END, local(date(2026, 11, 12), 10), nps=11, business_goals="maybe", technical_goals="yes"
        )
        # Help asks: alpha during A1, right at its boundaries (local midnights), after it, and past the 13 weeks
        for day in (date(2026, 5, 4), date(2026, 6, 1), date(2026, 7, 31)):
            help_ask(s, "alpha", local(day, 0, 0))
        help_ask(s, "alpha", local(date(2026, 8, 1), 0, 0))  # the first moment after A1's last day
        help_ask(s, "alpha", local(date(2026, 8, 1), 0, 0) - timedelta(microseconds=1))  # still during
        help_ask(s, "alpha", local(date(2026, 8, 20), 15))
        help_ask(s, "alpha", local(date(2026, 10, 31), 9))  # after A1's 13 weeks, after A2's end
        help_ask(s, "alpha", local(date(2026, 11, 23), 9))  # after the week
        help_ask(s, "beta", local(date(2025, 11, 1), 12), source="csv")
        help_ask(s, "beta", local(date(2026, 1, 5), 12), source="csv")
        help_ask(s, "gamma", local(date(2026, 8, 5), 12), source="slack")  # no channel now: not a source
        help_ask(s, "delta", local(date(2026, 11, 11), 12))
        s.commit()
    return store


def expected_signals(session: Session, week: date) -> dict[str, tuple[EngagementRow, Signals, set[str]]]:
    """Each counted engagement's signals and the signals left out as bad, from every raw row."""
    moment = local(week + timedelta(weeks=1))
    until = week + timedelta(weeks=1)
    teams = {t.key: t for t in session.scalars(select(TeamRow))}
    engagements = session.scalars(select(EngagementRow)).all()
    responses = session.scalars(select(SurveyResponseRow)).all()
    asks = session.scalars(select(HelpRequestRow)).all()
    found = {}
    for e in engagements:
        live = e.status != "cancelled" and e.removed_at is None
        if not (live and e.ended_at is not None and until - timedelta(weeks=52) <= e.end_date < until):
            continue
        mine = [r for r in responses if r.engagement_key == e.key and r.submitted_at < moment]
        checkin = [r for r in mine if r.survey == CHECKIN]
        end = [r for r in mine if r.survey == END]
        values: dict = {}
        bad: set[str] = set()
        comfort = [
            r.answers["maintainability"] for r in checkin if isinstance(r.answers.get("maintainability"), int)
        ]
        if any(not 1 <= c <= 5 for c in comfort):
            bad.add("maintainability")
        elif comfort:
            values["maintainability"] = sum(comfort) / len(comfort)
        helps = [r.answers.get("help_needed") for r in checkin if r.answers.get("help_needed") in HELP_RANK]
        if helps:
            values["help_needed"] = max(helps, key=HELP_RANK.__getitem__)
        channel = teams[e.host_team_key].help_channel
        if channel or any(a.team_key == e.host_team_key and a.source == "csv" for a in asks):
            start, after_from = local(e.start_date), local(e.end_date + timedelta(days=1))
            after_until = min(moment, local(e.end_date + timedelta(days=1, weeks=13)))
            team_asks = [a.requested_at for a in asks if a.team_key == e.host_team_key]
            during = sum(start <= at < after_from for at in team_asks)
            after = sum(after_from <= at < after_until for at in team_asks)
            week_ = timedelta(weeks=1)
            values["help_asks_during_per_week"] = during / max(1, (after_from - start) / week_)
            values["help_asks_after_per_week"] = after / max(1, (after_until - after_from) / week_)
        last = add_months(e.end_date, 6)
        repeats = [
            o
            for o in engagements
            if o.host_team_key == e.host_team_key
            and o.key != e.key
            and o.status != "cancelled"
            and o.removed_at is None
            and (o.start_date < until or o.created_at < moment)
            and e.start_date < o.start_date <= last
        ]
        if repeats:
            values["repeat_engagement"] = True
        elif last < until:
            values["repeat_engagement"] = False
        if not e.anonymous:
            for name, rows in (("end_nps", end), ("checkin_nps", checkin)):
                scores = [r.nps for r in rows if r.nps is not None]
                if any(not 0 <= n <= 10 for n in scores):
                    bad.add(name)
                elif scores:
                    values[name] = (
                        100 * (sum(n >= 9 for n in scores) - sum(n <= 6 for n in scores)) / len(scores)
                    )
        for name, question in (("goals_business", "business_goals"), ("goals_technical", "technical_goals")):
            given = [r.answers[question] for r in end if r.answers.get(question) is not None]
            if any(g not in GOAL_ORDER for g in given):
                bad.add(name)
            elif given:
                counts = Counter(given)
                values[name] = max(GOAL_ORDER, key=lambda a: (counts[a], -GOAL_ORDER.index(a)))
        found[e.key] = (e, Signals(**values), bad)
    return found


def check_stored_week(session: Session, week: date) -> dict[str, Signals]:
    """Every stored row of ``week`` equals its recomputation from the raw rows."""
    expected = expected_signals(session, week)
    stored = snapshots.load_week(session, week)
    assert stored is not None
    assert set(stored.scores) == set(expected)
    components = {
        "help_asks_during_per_week": "help_asks",
        "end_nps": "nps_change",
        "checkin_nps": "nps_change",
    }
    per_segment: dict[tuple[str, str], list[tuple[float | None, bool | None, bool | None, dict]]] = {}
    for key, (e, signals, bad) in expected.items():
        row = stored.scores[key]
        result = score(signals, Weights())
        assert row.total == pytest.approx(result.total), key
        assert [c["name"] for c in row.components] == [c.name for c in result.components]
        for got, want in zip(row.components, result.components, strict=True):
            assert got["status"] == want.status.value, (key, want.name)
            assert got["points"] == pytest.approx(want.points), (key, want.name)
            assert got["contribution"] == pytest.approx(want.contribution), (key, want.name)
            if want.status.value == "missing":
                assert got["reason"], (key, want.name)
        for name in bad:
            reason = next(c["reason"] for c in row.components if c["name"] == components.get(name, name))
            assert name in reason, (key, reason)
        independent = (result.total is not None and result.total >= 70) if signals.has_checkin else None
        assert row.independent == independent, key
        goals = (signals.goals_business, signals.goals_technical)
        achieved = None if None in goals else goals == ("yes", "yes")
        assert row.goals_achieved == achieved, key
        team_row = session.get(TeamRow, e.host_team_key)
        present = {c.name: c.points for c in result.components if c.status.value == "present"}
        for segment in (("program", "all"), ("org", team_row.org or "(no org)"), ("team", e.host_team_key)):
            per_segment.setdefault(segment, []).append((result.total, independent, achieved, present))
    assert set(stored.segments) == set(per_segment)
    for (segment, key), members in per_segment.items():
        row = stored.segments[(segment, key)]
        totals = [total for total, *_ in members if total is not None]
        checked = [i for _, i, _, _ in members if i is not None]
        goals = [g for _, _, g, _ in members if g is not None]
        assert (row.engagements, row.scored) == (len(members), len(totals))
        assert row.score == pytest.approx(sum(totals) / len(totals) if totals else None)
        assert (row.checkins, row.independent) == (len(checked), sum(checked))
        assert (row.goals_answered, row.goals_achieved) == (len(goals), sum(goals))
        assert row.suppressed == (len(totals) < 3)
        for low, high, n, k in (
            (row.independent_low, row.independent_high, len(checked), sum(checked)),
            (row.goals_low, row.goals_high, len(goals), sum(goals)),
        ):
            if n < 3:
                assert (low, high) == (None, None)
            else:
                assert (low, high) == pytest.approx(wilson_interval(k, n))
        for name, figure in row.components.items():
            points = [p[name] for *_, p in members if name in p]
            assert figure["present"] == len(points)
            assert figure["points"] == pytest.approx(sum(points) / len(points) if points else None)
    return {key: signals for key, (_, signals, _) in expected.items()}


def compute_and_save(store, week: date, run_id: str = "run") -> snapshots.IndependenceSnapshot:
    with Session(store) as session:
        snapshot = snapshots.compute_week(session, week, settings=SETTINGS, now=NOW)
        snapshots.save_week(session, snapshot, run_id=run_id, now=NOW)
        session.commit()
    return snapshot


def test_the_stored_week_is_its_recomputation_from_the_raw_rows(world):
    snapshot = compute_and_save(world, WEEK)
    with Session(world) as session:
        signals = check_stored_week(session, WEEK)
    assert set(signals) == {"A1", "A2", "B1", "G1", "D4"}  # not cancelled, too old or running
    a1 = signals["A1"]
    assert a1.maintainability == 4.5 and a1.help_needed == "once_or_twice"  # the late answer is not seen
    assert a1.help_asks_during_per_week == pytest.approx(
        4 / (89 / 7)
    ) and a1.help_asks_after_per_week == pytest.approx(2 / 13)
    assert a1.repeat_engagement is True and a1.end_nps == pytest.approx(100 / 3) and a1.checkin_nps == 50
    assert (a1.goals_business, a1.goals_technical) == ("yes", "no")
    assert signals["B1"].repeat_engagement is False and signals["B1"].end_nps is None  # anonymous
    assert signals["B1"].help_needed == "regularly" and signals["B1"].help_asks_after_per_week is not None
    assert signals["G1"].help_asks_during_per_week is None  # no help source
    assert {(key, component) for key, component, _ in snapshot.problems} == {
        ("B1", "maintainability"),
        ("D4", "goals_business"),
        ("D4", "nps_change"),
    }


def test_missing_components_are_explicit(world):
    compute_and_save(world, WEEK)
    with Session(world) as session:
        g1 = snapshots.load_week(session, WEEK).scores["G1"]
    reasons = {c["name"]: (c["status"], c["reason"]) for c in g1.components}
    assert g1.total is None and g1.independent is None and g1.goals_achieved is None
    assert reasons == {
        "maintainability": ("missing", "no check-in answer yet"),
        "help_needed": ("missing", "no check-in answer yet"),
        "help_asks": ("missing", "no help source for the host team"),
        "repeat_engagement": ("missing", "six months after the end have not passed"),
        "nps_change": ("missing", "no end survey NPS (not answered or anonymous)"),
        "goals_business": ("missing", "business goals not answered"),
        "goals_technical": ("missing", "technical goals not answered"),
    }


def test_a_rerun_replaces_the_week(world):
    compute_and_save(world, WEEK, run_id="first")
    with Session(world) as session:
        counts = [
            session.scalar(select(func.count()).select_from(m))
            for m in (IndependenceScoreRow, IndependenceSnapshotRow)
        ]
        answer(session, "G1", CHECKIN, local(date(2026, 11, 17), 9), maintainability=5, help_needed="never")
        session.commit()
    compute_and_save(world, WEEK, run_id="second")
    with Session(world) as session:
        assert session.scalar(select(func.count()).select_from(IndependenceWeekRow)) == 1
        assert session.get(IndependenceWeekRow, WEEK).run_id == "second"
        again = [
            session.scalar(select(func.count()).select_from(m))
            for m in (IndependenceScoreRow, IndependenceSnapshotRow)
        ]
        assert again == counts
        assert snapshots.load_week(session, WEEK).scores["G1"].total == 100.0
        check_stored_week(session, WEEK)


def test_a_backfill_sees_the_signals_as_they_were(world):
    compute_and_save(world, WEEK)
    compute_and_save(world, EARLIER)
    with Session(world) as session:
        signals = check_stored_week(session, EARLIER)
        check_stored_week(session, WEEK)
        assert snapshots.latest_week(session) == WEEK
        trend = snapshots.team_trend(session, "alpha", 16)
    assert set(signals) == {"A1", "B1"}  # A2, G1 and D4 had not ended yet
    a1 = signals["A1"]
    assert a1.repeat_engagement is None  # A2 was neither registered nor started
    assert a1.maintainability is None and a1.end_nps == 100.0  # two end answers by then, no check-in
    assert a1.help_asks_after_per_week == pytest.approx(1 / (9 / 7))  # one ask in the 9 days after the end
    assert [week for week, row in trend if row is not None] == [EARLIER, WEEK]
    assert len(trend) == 16 and trend[-1][0] == WEEK


def test_nothing_counted_stores_an_empty_week(store):
    snapshot = compute_and_save(store, WEEK)
    assert snapshot.scores == [] and snapshot.segments == {}
    with Session(store) as session:
        stored = snapshots.load_week(session, WEEK)
        assert stored.segments == {} and stored.scores == {}
        assert stored.header.weights == {
            "maintainability": 25.0,
            "help_needed": 15.0,
            "help_asks": 20.0,
            "repeat_engagement": 10.0,
            "nps_change": 10.0,
            "goals_business": 10.0,
            "goals_technical": 10.0,
        }
        assert snapshots.segment_trend(session, "program", "all", WEEK, 2) == [
            (WEEK - timedelta(weeks=1), None),
            (WEEK, None),
        ]


def test_weights_and_threshold_come_from_the_settings(world):
    settings = load_settings(
        {
            "AUXENG_TIMEZONE": "Europe/Paris",
            "AUXENG_INDEPENDENCE_WEIGHTS": "maintainability=100",
            "AUXENG_INDEPENDENCE_THRESHOLD": "95",
        }
    )
    with Session(world) as session:
        snapshot = snapshots.compute_week(session, WEEK, settings=settings, now=NOW)
    a1 = next(s for s in snapshot.scores if s.engagement.key == "A1")
    assert a1.result.component("maintainability").weight == 100
    assert a1.independent is False and snapshot.threshold == 95


def test_a_week_starts_on_a_monday(store):
    with Session(store) as session, pytest.raises(ValueError, match="is a Tuesday"):
        snapshots.compute_week(session, WEEK + timedelta(days=1), settings=SETTINGS, now=NOW)


def test_the_statements_do_not_grow_with_the_engagements(world):
    def statements() -> int:
        with Session(world) as session, counting(world) as sent:
            snapshots.compute_week(session, WEEK, settings=SETTINGS, now=NOW)
        return len(sent)

    before = statements()
    with Session(world) as s:
        for n in range(30):
            team(s, f"team-{n}", org=f"Org {n % 3}", help_channel=f"C{n:04d}")
            s.flush()
            engagement(s, f"E{n}", f"team-{n}", date(2026, 3, 2), date(2026, 6, 26) + timedelta(days=n))
            s.flush()
            answer(s, f"E{n}", END, local(date(2026, 7, 1), 10), nps=n % 11, business_goals="yes")
            answer(
                s,
                f"E{n}",
                CHECKIN,
                local(date(2026, 10, 1), 10),
                maintainability=1 + n % 5,
                help_needed="never",
            )
            help_ask(s, f"team-{n}", local(date(2026, 8, 1), 10))
        s.commit()
    assert statements() == before
    with Session(world) as session:
        assert len(expected_signals(session, WEEK)) == 35


def test_the_task_logs_each_signal_left_out(world, pack_env, monkeypatch, caplog, capsys):
    from auxeng.independence import tasks

    monkeypatch.setenv("AUXENG_TIMEZONE", "Europe/Paris")
    with caplog.at_level("WARNING", logger="auxeng.independence.tasks"):
        result = tasks.compute_weekly_independence(week=WEEK, run_id="manual", now=NOW)
    assert (result["week"], result["engagements"], result["problems"]) == ("2026-11-16", 5, 3)
    logged = caplog.text + capsys.readouterr().out  # once Airflow set logging up, structlog prints it
    assert (
        "Week of 2026-11-16, B1: maintainability left out: maintainability: 1 stored check-in answer(s) "
        "outside 1-5 (e.g. 9)"
    ) in logged
    assert (
        "D4: goals_business left out: goals_business: 1 stored answer(s) not among no, partly, yes (e.g. 'maybe')"
        in logged
    )
    assert "D4: nps_change left out: end_nps: 1 stored NPS answer(s) outside 0-10 (e.g. 11)" in logged
    with Session(world) as session:
        assert snapshots.load_week(session, WEEK).header.run_id == "manual"


def test_the_component_names_are_the_formula_weights():
    from dataclasses import fields

    assert [f.name for f in fields(Weights)] == list(snapshots.COMPONENTS)
    assert [c.name for c in score(Signals()).components] == list(snapshots.COMPONENTS)
