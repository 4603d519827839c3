"""Check-in planning sends a fixed number of statements, however many engagements the store holds.

Counted with a ``before_cursor_execute`` listener (counts are deterministic, unlike times) on the
steps of :func:`tests.support.statements.planning_story`; ``bench/planning.py`` runs the same story
up to 10,000 engagements, with the seconds.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auxeng.settings import load_settings
from auxeng.store.models import CheckinEventRow, CheckinRow, FollowUpRow, SurveyInvitationRow
from auxeng.vocabulary import SurveyKind
from tests.support.statements import fresh_store, load_synthetic, planning_story

SETTINGS = load_settings({"AUXENG_PUBLIC_URL": "https://airflow.example.com/auxeng"})
CHECKIN_STEPS = (
    "check-ins: new",
    "check-in surveys: day 0",
    "check-ins: calendar",
    "check-ins: moved, cancelled",
    "check-in surveys: day 20",
    "check-in reminders",
    "check-ins: close",
    "follow-ups: new",
    "follow-ups: next month",
)


def _story(store_url: str, tmp_path, engagements: int):
    engine = fresh_store(store_url, tmp_path, f"auxeng-{engagements}.db")
    load_synthetic(engine, engagements)
    story = planning_story(engine, SETTINGS)
    with Session(engine) as session:
        stored = {
            "check-ins": session.scalar(select(func.count()).select_from(CheckinRow)),
            "events": session.scalar(select(func.count()).select_from(CheckinEventRow)),
            "follow-ups": session.scalar(select(func.count()).select_from(FollowUpRow)),
            "check-in invitations": session.scalar(
                select(func.count()).where(SurveyInvitationRow.survey == SurveyKind.CHECKIN)
            ),
        }
    engine.dispose()
    return story, stored


def test_checkin_and_follow_up_planning_take_as_many_statements_at_1000_engagements_as_at_100(
    store_url, tmp_path
):
    small, small_rows = _story(store_url, tmp_path, 100)
    large, large_rows = _story(store_url, tmp_path, 1000)
    counts = {step: (len(small[step][1]), len(large[step][1])) for step in CHECKIN_STEPS}

    # The work grows about tenfold ...
    assert all(large_rows[what] >= 5 * small_rows[what] for what in small_rows), (small_rows, large_rows)
    report = {step: large[step][0] for step in CHECKIN_STEPS}
    assert report["check-ins: new"].created == large_rows["check-ins"] > 300
    assert report["check-ins: moved, cancelled"].withdrawn > 0
    assert report["check-ins: moved, cancelled"].cancellations > 0
    assert report["check-ins: moved, cancelled"].updates > 0
    assert report["check-in surveys: day 0"].people_invited > 100
    assert report["check-in reminders"].reminders > 100
    assert sum(report["check-ins: close"].closed.values()) > 30
    assert report["follow-ups: new"].follow_ups > 100
    assert report["follow-ups: next month"].follow_ups > 100
    # ... the statements do not.
    assert all(small_count == large_count for small_count, large_count in counts.values()), counts
    assert all(large_count <= 14 for _, large_count in counts.values()), counts
    # Rows written in one statement per table (and per executemany page).
    for step in ("check-ins: new", "check-in surveys: day 0", "follow-ups: new"):
        statements = large[step][1]
        for table in ("auxeng_outbox", "auxeng_checkin_events", "auxeng_checkins", "auxeng_follow_ups"):
            assert statements.inserts(table) <= 1, (step, table, statements.by_verb())
        assert statements.inserts("auxeng_survey_invitations") <= 1, (step, statements.by_verb())
