"""The independence red flag read from stored weekly snapshots, on SQLite and PostgreSQL: the
team facts take two statements however many weeks and teams are stored; a low or falling team
is flagged (a suppressed one too: flags go to managers), and resolved when a later week clears it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from auxeng.redflags.store import evaluate_flags, load_facts
from auxeng.settings import load_settings
from tests.support.independence_rows import insert_week, segment
from tests.support.statements import counting

SETTINGS = load_settings({})
FIRST = date(2026, 11, 2)  # a Monday
FULFILLMENT = [80.0, 75.0, 70.0, 60.0, 45.0]  # weeks of 11-02 to 11-30
POINTS = [
    {"maintainability": 90.0, "help_asks": 100.0},
    {"maintainability": 90.0, "help_asks": 80.0},
    {"maintainability": 85.0, "help_asks": 60.0},
    {"maintainability": 80.0, "help_asks": 40.0},
    {"maintainability": 75.0, "help_asks": 10.0},
]


def store_weeks(store, teams: int = 0) -> None:
    with Session(store) as session:
        for n, (mean, points) in enumerate(zip(FULFILLMENT, POINTS, strict=True)):
            insert_week(
                session,
                FIRST + timedelta(weeks=n),
                segments=[
                    segment("program", "all", 70.0, scored=12),
                    segment("team", "fulfillment", mean, points, scored=4),
                    segment("team", "ads", 20.0, {"help_asks": 0.0}, scored=1),  # suppressed
                    segment("team", "unscored", None, scored=0),
                    *(segment("team", f"team-{t:03d}", 90.0) for t in range(teams)),
                ],
            )
        session.commit()


def evaluate(store, day: date):
    with Session(store) as session:
        report = evaluate_flags(
            session, settings=SETTINGS, as_of=day, now=datetime(2026, 12, 8, 9, tzinfo=UTC)
        )
        session.commit()
    return report


def test_team_facts_take_two_statements_whatever_the_store_holds(store):
    store_weeks(store, teams=40)
    with counting(store) as statements, Session(store) as session:
        facts = load_facts(session, settings=SETTINGS, as_of=date(2026, 12, 6))
    independence = [s for s in statements.sql if "auxeng_independence" in s]
    assert len(independence) == 2, independence
    # the latest week and the four before it; no team without a score
    assert {s.week for s in facts.independence} == {FIRST + timedelta(weeks=n) for n in range(5)}
    assert {s.team_key for s in facts.independence} == {"fulfillment", "ads"} | {
        f"team-{t:03d}" for t in range(40)
    }
    latest = next(
        s for s in facts.independence if s.team_key == "fulfillment" and s.week == date(2026, 11, 30)
    )
    assert (latest.score, latest.scored, latest.components) == (45.0, 4, POINTS[-1])


def test_a_week_not_ended_yet_is_not_read(store):
    store_weeks(store)
    with Session(store) as session:
        facts = load_facts(session, settings=SETTINGS, as_of=date(2026, 12, 5))
    assert max(s.week for s in facts.independence) == date(2026, 11, 23)


def test_a_low_or_falling_team_is_flagged_and_resolved_when_a_later_week_clears_it(store):
    store_weeks(store)
    opened = evaluate(store, date(2026, 12, 7))
    assert opened.opened == ["independence:team:ads", "independence:team:fulfillment"]
    with Session(store) as session:
        facts = load_facts(session, settings=SETTINGS, as_of=date(2026, 12, 7))
    assert {(s.team_key, s.score) for s in facts.independence if s.week == date(2026, 11, 30)} == {
        ("fulfillment", 45.0),
        ("ads", 20.0),
    }
    # A recovery: Fulfillment back at 65 (75 four weeks before: a drop of 10), Ads at 55.
    with Session(store) as session:
        insert_week(
            session,
            date(2026, 12, 7),
            segments=[
                segment("team", "fulfillment", 65.0, POINTS[0], scored=4),
                segment("team", "ads", 55.0, scored=1),
            ],
        )
        session.commit()
    assert evaluate(store, date(2026, 12, 12)).unchanged == 2  # the new week has not ended
    cleared = evaluate(store, date(2026, 12, 13))  # its Sunday
    assert cleared.resolved == ["independence:team:ads", "independence:team:fulfillment"]
