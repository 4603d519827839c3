"""The weekly snapshot computed in SQL equals the pure maths over the same rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, make_url, select
from sqlalchemy.orm import Session

from auxeng.dev.demo_history import seed_history
from auxeng.nps.maths import nps_of_scores
from auxeng.nps.queries import SEGMENTS, segment_counts
from auxeng.nps.weekly import WeeklySnapshot, compute_week, load_week, save_week, week_to_report
from auxeng.registry.sync import sync_registry_file
from auxeng.store.db import get_engine, open_store
from auxeng.store.models import (
    EngagementRow,
    NpsSnapshotRow,
    NpsWeekRow,
    SurveyInvitationRow,
    SurveyResponseRow,
    TeamRow,
)
from tests.conftest import DEMO_REGISTRY, _reset_postgres
from tests.web.conftest import NOW as REGISTRY_NOW
from tests.web.conftest import registry_store  # noqa: F401

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = date(2026, 11, 16)  # a Monday
NOW = datetime(2026, 11, 23, 6, tzinfo=UTC)


def midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), BERLIN).astimezone(UTC)


@pytest.fixture
def history(registry_store):  # noqa: F811
    with Session(registry_store) as session:
        added = seed_history(session, until=WEEK + timedelta(weeks=1), weeks=30, seed=11)
        session.commit()
    assert added > 100
    return registry_store


def expected_spans(session: Session) -> dict[tuple[str, str, str], tuple]:
    """(span, segment, key) → (scores, comfort answers, invited, answered), computed in Python."""
    hosts = dict(session.execute(select(EngagementRow.key, EngagementRow.host_team_key)).all())
    orgs = dict(session.execute(select(TeamRow.key, TeamRow.org)).all())
    spans = {
        "week": (WEEK, WEEK + timedelta(weeks=1)),
        "13w": (WEEK - timedelta(weeks=12), WEEK + timedelta(weeks=1)),
        "prev_week": (WEEK - timedelta(weeks=1), WEEK),
        "prev_13w": (WEEK - timedelta(weeks=25), WEEK - timedelta(weeks=12)),
    }

    def keys(engagement: str, survey: str):
        team = hosts[engagement]
        return (("program", "all"), ("org", orgs[team] or "(no org)"), ("team", team), ("survey", survey))

    result: dict = defaultdict(lambda: ([], [], 0, 0))
    for response in session.scalars(select(SurveyResponseRow)):
        if response.survey not in ("post_engagement", "checkin") or response.nps is None:
            continue
        for span, (first, last) in spans.items():
            if midnight(first) <= response.submitted_at < midnight(last):
                for segment, key in keys(response.engagement_key, response.survey):
                    if span.startswith("prev") and segment != "program":
                        continue
                    scores, comfort, invited, answered = result[(span, segment, key)]
                    scores.append(response.nps)
                    if "maintainability" in (response.answers or {}):
                        comfort.append(response.answers["maintainability"])
    for invitation in session.scalars(select(SurveyInvitationRow)):
        if invitation.status != "invited" or invitation.survey not in ("post_engagement", "checkin"):
            continue
        for span, (first, last) in spans.items():
            if first <= invitation.invited_on < last:
                for segment, key in keys(invitation.engagement_key, invitation.survey):
                    if span.startswith("prev") and segment != "program":
                        continue
                    scores, comfort, invited, answered = result[(span, segment, key)]
                    in_time = invitation.answered_at is not None and invitation.answered_at < midnight(
                        WEEK + timedelta(weeks=1)
                    )
                    result[(span, segment, key)] = (scores, comfort, invited + 1, answered + int(in_time))
    return result


def assert_matches_python(snapshot: WeeklySnapshot, expected: dict) -> None:
    assert snapshot.starts_at == datetime(2026, 11, 15, 23, tzinfo=UTC)
    nonzero = {k for k, v in snapshot.spans.items() if v.result.responses or v.invitations.invited}
    assert nonzero == set(expected)
    for key, (scores, comfort, invited, answered) in expected.items():
        got = snapshot.spans[key]
        want = nps_of_scores(scores)
        assert got.result == want, key
        assert (got.invitations.invited, got.invitations.answered) == (invited, answered), key
        if comfort:
            assert got.answers.maintainability_mean == pytest.approx(sum(comfort) / len(comfort)), key
        else:
            assert got.answers.maintainability_mean is None, key
    assert [point["week"] for point in snapshot.trend] == [
        (WEEK - timedelta(weeks=12 - n)).isoformat() for n in range(13)
    ]
    assert sum(p["promoters"] + p["passives"] + p["detractors"] for p in snapshot.trend) == (
        snapshot.get("13w").result.responses
    )


def assert_stored(rows: dict[tuple[str, str, str], NpsSnapshotRow], snapshot: WeeklySnapshot) -> None:
    """The stored rows hold exactly what was computed (floats to the last bit)."""
    assert set(rows) == set(snapshot.spans)
    for key, span in snapshot.spans.items():
        row, result = rows[key], span.result
        assert (
            row.promoters,
            row.passives,
            row.detractors,
            row.responses,
            row.score,
            row.ci_low,
            row.ci_high,
            row.suppressed,
            row.invited,
            row.answered,
            row.response_rate,
            row.maintainability_answers,
            row.maintainability_mean,
        ) == (
            result.promoters,
            result.passives,
            result.detractors,
            result.responses,
            result.score,
            result.low,
            result.high,
            result.responses < snapshot.min_responses,
            span.invitations.invited,
            span.invitations.answered,
            span.rate,
            span.answers.maintainability_answers,
            span.answers.maintainability_mean,
        ), key


def test_snapshot_matches_python_for_every_span_segment_and_key(history):
    with Session(history) as session:
        snapshot = compute_week(session, WEEK, timezone=BERLIN, min_responses=3)
        expected = expected_spans(session)
    assert_matches_python(snapshot, expected)


@pytest.fixture
def psycopg2_history(postgres_database_url):
    """The suite's PostgreSQL database reached through psycopg2, the driver the store's URL
    gets from an Airflow ``postgres`` connection: it sends parameters inlined into the SQL,
    so a constant the queries group by reaches PostgreSQL as a literal (psycopg 3 binds it)."""
    _reset_postgres(postgres_database_url)
    url = make_url(postgres_database_url).set(drivername="postgresql+psycopg2")
    engine = open_store(url.render_as_string(hide_password=False))
    try:
        assert engine.dialect.driver == "psycopg2"
        assert not sync_registry_file(engine, DEMO_REGISTRY, now=REGISTRY_NOW - timedelta(days=30)).problems
        with Session(engine) as session:
            assert seed_history(session, until=WEEK + timedelta(weeks=1), weeks=30, seed=11) > 100
            session.commit()
        yield engine
    finally:
        engine.dispose()
        get_engine(postgres_database_url).dispose()


def test_the_week_computed_and_saved_through_psycopg2(psycopg2_history):
    with Session(psycopg2_history) as session:
        snapshot = compute_week(session, WEEK, timezone=BERLIN, min_responses=3)
        written = save_week(session, snapshot, run_id="psycopg2", now=NOW)
        session.commit()
        assert_matches_python(snapshot, expected_spans(session))
        header, rows = load_week(session, WEEK)
        assert (header.run_id, len(rows)) == ("psycopg2", written)
        assert_stored(rows, snapshot)
        for segment in SEGMENTS:  # one period: nothing to group by but the key
            counts = segment_counts(session, segment, start=snapshot.starts_at, end=snapshot.ends_at)
            assert {c.key: c.result for c in counts} == {
                key: span.result
                for (span_name, seg, key), span in snapshot.spans.items()
                if (span_name, seg) == ("week", segment) and span.result.responses
            }


def test_saving_a_week_twice_replaces_it(history):
    with Session(history) as session:
        first = compute_week(session, WEEK, timezone=BERLIN, min_responses=3)
        written = save_week(session, first, run_id="one", now=NOW)
        session.commit()
        again = compute_week(session, WEEK, timezone=BERLIN, min_responses=5)
        assert save_week(session, again, run_id="two", now=NOW) == written
        session.commit()
        assert session.scalar(select(func.count()).select_from(NpsWeekRow)) == 1
        assert session.scalar(select(func.count()).select_from(NpsSnapshotRow)) == written
        header, rows = load_week(session, WEEK)
        assert (header.run_id, header.min_responses) == ("two", 5)
        assert_stored(rows, again)
        program = rows[("13w", "program", "all")]
        assert program.responses == first.get("13w").result.responses
        assert program.score == pytest.approx(first.get("13w").result.score)
        small = [row for row in rows.values() if row.responses < 5]
        assert small and all(row.suppressed for row in small)
        assert load_week(session, WEEK - timedelta(weeks=1)) is None


def test_a_week_must_start_on_monday(history):
    with Session(history) as session, pytest.raises(ValueError, match="2026-11-17 is a Tuesday"):
        compute_week(session, date(2026, 11, 17), timezone=BERLIN, min_responses=3)


@pytest.mark.parametrize(
    ("moment", "week"),
    [
        (datetime(2026, 11, 23, 6, tzinfo=UTC), date(2026, 11, 16)),  # Monday 07:00 Berlin
        (datetime(2026, 11, 22, 23, 30, tzinfo=UTC), date(2026, 11, 16)),  # Monday 00:30 Berlin
        (datetime(2026, 11, 22, 22, 30, tzinfo=UTC), date(2026, 11, 9)),  # still Sunday in Berlin
        (datetime(2026, 11, 25, 12, tzinfo=UTC), date(2026, 11, 16)),  # a Wednesday
    ],
)
def test_the_week_a_run_reports(moment, week):
    assert week_to_report(moment, BERLIN) == week
