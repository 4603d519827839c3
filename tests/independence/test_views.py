"""The digest's independence section read from stored weeks, on SQLite and PostgreSQL: the figures
and their privacy threshold, the 13-week trend, the biggest drops and the teams at risk, in three
statements whatever the store holds; one line when the week was not computed."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session

from auxeng.independence.views import digest_section, proportion_text, score_text
from auxeng.settings import load_settings
from tests.support.independence_rows import insert_week, segment
from tests.support.statements import counting

SETTINGS = load_settings({})
WEEK = date(2026, 11, 23)


def program(mean: float, **counts: int) -> dict:
    return segment("program", "all", mean, scored=14, **counts)


def store_weeks(store, extra_teams: int = 0) -> None:
    """14 weeks: the program rising 50 → 63 (one week suppressed), teams falling and steady."""
    with Session(store) as session:
        for n in range(14):
            week = WEEK - timedelta(weeks=13 - n)
            teams = [
                segment(
                    "team", "fulfillment", 80.0 - 4 * n, {"help_asks": 100.0 - 7 * n, "maintainability": 80.0}
                ),
                segment("team", "search", 70.0 - n, {"help_needed": 50.0}),
                segment("team", "ads", 90.0, {"goals_business": 100.0}),
                segment("team", "tiny", 20.0, {"help_asks": 0.0}, scored=1),  # suppressed
                *(segment("team", f"team-{t:03d}", 75.0) for t in range(extra_teams)),
            ]
            rows = [program(50.0 + n, checkins=12, independent=7, goals_answered=2, goals_achieved=2), *teams]
            if n == 5:
                rows[0] = segment("program", "all", 40.0, scored=2)
            insert_week(session, week, segments=rows)
        session.commit()


def test_the_section_of_a_computed_week(store):
    store_weeks(store)
    with Session(store) as session:
        section = digest_section(session, WEEK, settings=SETTINGS)
    assert section.missing is None
    assert section.score == "63 / 100 (n=14)"
    assert section.independent == "58% (7 of 12 answered check-ins; 95% CI 32% to 81%)"
    assert section.goals == "too few goal answers (n=2)"
    assert [p.week for p in section.trend] == [WEEK - timedelta(weeks=12 - n) for n in range(13)]
    assert section.trend_text == "51 · 52 · 53 · 54 · – · 56 · 57 · 58 · 59 · 60 · 61 · 62 · 63"
    # Fulfillment fell 16 points in four weeks (44 ← 60), Search 4; Ads is steady; Tiny is hidden.
    assert [(t.key, t.score, t.drop) for t in section.dropped] == [
        ("fulfillment", 28.0, 16.0),
        ("search", 57.0, 4.0),
    ]
    fulfillment = section.dropped[0]
    assert fulfillment.change_text == "-16 since 26 Oct, was 44"
    assert fulfillment.moved == ["help asks after the end 37 → 9"]
    assert fulfillment.why == "help asks after the end 37 → 9"
    assert [t.key for t in section.at_risk] == ["fulfillment"]
    assert section.hidden_at_risk == 1 and section.threshold == 50 and section.min_responses == 3


def test_the_top_three_drops_only_and_three_statements_whatever_the_store_holds(store):
    store_weeks(store, extra_teams=30)
    with counting(store) as statements, Session(store) as session:
        section = digest_section(session, WEEK, settings=SETTINGS)
    assert len(statements) == 3, statements.sql
    assert len(section.dropped) == 2  # only teams whose score fell; at most three
    with Session(store) as session:
        for n in range(5):
            insert_week(
                session,
                WEEK - timedelta(weeks=4 - n),
                segments=[segment("team", f"falling-{t}", 90.0 - t * n) for t in range(1, 6)],
            )
        session.commit()
        section = digest_section(session, WEEK, settings=SETTINGS)
    assert [t.key for t in section.dropped] == ["falling-5", "falling-4", "falling-3"]


def test_a_week_not_computed_says_so_in_one_line(store):
    with counting(store) as statements, Session(store) as session:
        section = digest_section(session, WEEK, settings=SETTINGS)
    assert len(statements) == 1
    assert section.missing == "Not computed for the week of 23 Nov yet (auxeng_weekly_nps computes it)."


def test_a_suppressed_program_and_small_proportions_show_no_number():
    assert score_text(40.0, 2, suppressed=True) == "too few engagements (n=2)"
    assert score_text(None, 0, suppressed=False) == "no score yet"
    assert proportion_text(2, 2, 0.3, 1.0, min_responses=3, of="answered check-ins") == (
        "too few answered check-ins (n=2)"
    )
    assert proportion_text(3, 3, 0.4, 1.0, min_responses=3, of="goal answers") == (
        "100% (3 of 3 goal answers; 95% CI 40% to 100%)"
    )
