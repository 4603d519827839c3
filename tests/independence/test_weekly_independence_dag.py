"""``auxeng_weekly_nps`` computes the independence snapshot too (``dag.test()``, SQLite and
PostgreSQL): a host team's score falls week by week as its help asks rise after the end, then
recovers after a good check-in; the week is announced only once both snapshots are stored."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.independence import snapshots
from auxeng.store.db import open_store
from auxeng.store.models import NpsWeekRow
from tests.independence.world import answer, engagement, help_ask, team
from tests.support.dagruns import run

pytestmark = pytest.mark.airflow

START, END = date(2026, 6, 1), date(2026, 8, 30)  # 13 weeks, Monday to Sunday
AFTER = [date(2026, 8, 31), date(2026, 9, 7), date(2026, 9, 14)]  # the first three weeks after the end
CHECKIN_WEEK = date(2026, 11, 30)


def monday_morning(week: date) -> datetime:
    """07:00 UTC on the Monday after ``week``: when its run happens (the DAGs run in UTC here)."""
    return datetime.combine(week + timedelta(weeks=1), time(7), UTC)


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), UTC)


@pytest.fixture
def alpha(pack_env, store_url):
    """Team alpha's engagement: one help ask a week during it, a glowing end survey; after the end
    no ask in the first week, one in the second, two in the third (the score should fall)."""
    store = open_store(store_url)
    with Session(store) as s:
        team(s, "alpha", org="Payments", help_channel="C0ALPHA")
        s.flush()
        engagement(s, "A1", "alpha", START, END)
        s.flush()
        answer(
            s,
            "A1",
            "post_engagement",
            noon(END + timedelta(days=2)),
            nps=9,
            business_goals="yes",
            technical_goals="yes",
        )
        for n in range(13):
            help_ask(s, "alpha", noon(START + timedelta(weeks=n, days=2)))
        help_ask(s, "alpha", noon(AFTER[1] + timedelta(days=1)))
        help_ask(s, "alpha", noon(AFTER[2] + timedelta(days=1)))
        help_ask(s, "alpha", noon(AFTER[2] + timedelta(days=3)))
        s.commit()
    return store


def test_a_team_score_falls_with_help_asks_and_recovers_after_a_good_checkin(dags, alpha):
    for week in AFTER:
        states = run(dags, "auxeng_weekly_nps", monday_morning(week))
        assert states == {"compute_weekly_nps": "success", "compute_weekly_independence": "success"}
    with Session(alpha) as s:
        answer(
            s,
            "A1",
            "checkin",
            noon(CHECKIN_WEEK + timedelta(days=2)),
            nps=10,
            maintainability=5,
            help_needed="never",
        )
        s.commit()
    run(dags, "auxeng_weekly_nps", monday_morning(CHECKIN_WEEK))

    with Session(alpha) as session:
        trend = snapshots.team_trend(session, "alpha", 14)
        scored = {week: row.score for week, row in trend if row is not None}
        assert list(scored) == [*AFTER, CHECKIN_WEEK]
        # no ask yet: 100; 1 ask in 2 weeks after vs 1 a week during: 75; 3 in 3 weeks: 50
        assert [scored[w] for w in AFTER] == pytest.approx([100.0, 75.0, 50.0])
        recovered = snapshots.load_week(session, CHECKIN_WEEK).scores["A1"]
        parts = {c["name"]: c for c in recovered.components}
        # 3 asks over the 13 weeks after the end; comfort 5, never needed help, NPS 100 → 100
        assert parts["help_asks"]["points"] == pytest.approx(100 * (1 - 3 / 13))
        assert parts["maintainability"]["points"] == 100 and parts["nps_change"]["points"] == 50
        assert scored[CHECKIN_WEEK] == pytest.approx(
            (2500 + 1500 + 20 * 100 * (1 - 3 / 13) + 500 + 2000) / 90
        )
        assert recovered.independent is True
        assert session.scalars(select(NpsWeekRow.week)).all() == [*AFTER, CHECKIN_WEEK]

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as meta:
        events = meta.scalars(select(AssetEvent).order_by(AssetEvent.id)).all()[-4:]
    assert [(e.source_task_id, e.extra.get("week")) for e in events] == [
        ("compute_weekly_independence", week.isoformat()) for week in [*AFTER, CHECKIN_WEEK]
    ]


def test_a_recomputed_week_param_covers_both_snapshots(dags, alpha):
    moment = monday_morning(CHECKIN_WEEK) + timedelta(minutes=13)  # its own: dag.test() keeps a run's conf
    run(dags, "auxeng_weekly_nps", moment, week=AFTER[1].isoformat())
    with Session(alpha) as session:
        assert snapshots.latest_week(session) == AFTER[1]
        assert session.scalars(select(NpsWeekRow.week)).all() == [AFTER[1]]
        assert snapshots.load_week(session, AFTER[1]).segments[("team", "alpha")].score == pytest.approx(75.0)
