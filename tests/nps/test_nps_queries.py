"""NPS counts from the database equal the pure maths over the same answers, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from auxeng.nps.maths import nps_of_scores
from auxeng.nps.queries import segment_counts
from auxeng.store.models import EngagementRow, SurveyResponseRow, TeamRow
from tests.web.conftest import registry_store  # noqa: F401

START = datetime(2026, 11, 23, tzinfo=UTC)
END = START + timedelta(weeks=1)


@pytest.fixture
def answers(registry_store):  # noqa: F811
    """200 answers over three weeks on the demo engagements: (survey, engagement, nps, comfort, when)."""
    rng = random.Random(7)
    with Session(registry_store) as session:
        keys = [e.key for e in session.query(EngagementRow).order_by(EngagementRow.key)]
        rows = []
        for number in range(200):
            survey = rng.choice(["post_engagement", "checkin", "retro"])
            comfort = rng.randint(1, 5) if survey == "checkin" else None
            rows.append(
                SurveyResponseRow(
                    response_ref=f"ref-{number}",
                    survey=survey,
                    engagement_key=rng.choice(keys),
                    nps=rng.randint(0, 10),
                    answers={"maintainability": comfort} if comfort else {},
                    source="web",
                    submitted_at=START + timedelta(hours=rng.randint(-24 * 7, 24 * 14)),
                    updated_at=START,
                )
            )
        session.add_all(rows)
        session.commit()
        teams = {t.key: t.org for t in session.query(TeamRow)}
        hosts = {e.key: e.host_team_key for e in session.query(EngagementRow)}
        return registry_store, [
            (
                r.survey,
                r.engagement_key,
                r.nps,
                (r.answers or {}).get("maintainability"),
                r.submitted_at,
                hosts,
                teams,
            )
            for r in rows
        ]


def test_every_segment_matches_the_pure_maths(answers):
    store, rows = answers
    in_week = [row for row in rows if START <= row[4] < END and row[0] != "retro"]
    expected = {name: defaultdict(list) for name in ("program", "org", "team", "survey")}
    comfort = {name: defaultdict(list) for name in expected}
    for survey, engagement, score, maintainability, _when, hosts, teams in in_week:
        team = hosts[engagement]
        for name, key in (
            ("program", "all"),
            ("org", teams[team] or "(no org)"),
            ("team", team),
            ("survey", survey),
        ):
            expected[name][key].append(score)
            if maintainability is not None:
                comfort[name][key].append(maintainability)
    with Session(store) as session:
        for name in expected:
            got = {c.key: c for c in segment_counts(session, name, start=START, end=END)}
            assert set(got) == set(expected[name]), name
            for key, scores in expected[name].items():
                assert got[key].result == nps_of_scores(scores), (name, key)
                values = comfort[name][key]
                assert got[key].maintainability_answers == len(values)
                assert got[key].maintainability_mean == (sum(values) / len(values) if values else None)


def test_an_empty_week_has_no_segments_and_an_unknown_segment_is_named(answers):
    store, _rows = answers
    with Session(store) as session:
        assert (
            segment_counts(session, "program", start=END + timedelta(weeks=5), end=END + timedelta(weeks=6))
            == []
        )
        with pytest.raises(ValueError, match="segment 'region' is not one of program, org, team, survey"):
            segment_counts(session, "region", start=START, end=END)
