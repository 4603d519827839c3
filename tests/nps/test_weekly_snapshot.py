"""The weekly snapshot computed in SQL equals the pure maths over the same rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auxeng.demo_history import seed_history
from auxeng.nps import nps_of_scores
from auxeng.store.models import (
    EngagementRow,
    NpsSnapshotRow,
    NpsWeekRow,
    SurveyInvitationRow,
    SurveyResponseRow,
    TeamRow,
)
from auxeng.weekly_nps import compute_week, load_week, save_week, week_to_report
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


def test_snapshot_matches_python_for_every_span_segment_and_key(history):
    with Session(history) as session:
        snapshot = compute_week(session, WEEK, timezone=BERLIN, min_responses=3)
        expected = expected_spans(session)
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
