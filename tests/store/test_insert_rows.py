"""``insert_rows``: one statement per dialect, the values stored as the ORM would store them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from auxeng.store.db import insert_rows
from auxeng.store.models import NpsSnapshotRow, NpsWeekRow

WEEK = date(2026, 11, 23)
PLAIN_KEYS = ["a,b", "{x}", "NULL", "", " spaced ", "ünï", "tab\there", "'q'", "x}y{", "line\nbreak"]
ESCAPED_KEYS = ['a"b', "back\\slash", 'both\\"', "end\\", *PLAIN_KEYS]


@pytest.mark.parametrize(
    "keys", [PLAIN_KEYS, ESCAPED_KEYS], ids=["nothing to escape", "quotes and backslashes"]
)
def test_inserted_rows_read_back_as_given(store, keys):
    moment = datetime(2026, 11, 30, 6, tzinfo=UTC)
    rows = [
        {
            "week": WEEK,
            "span": "week",
            "segment": "team",
            "key": key,
            "promoters": n,
            "passives": 2**31 - 1,
            "detractors": 0,
            "responses": n,
            "score": None if n % 2 else 100 / 3 - n,
            "ci_low": -0.1 * n,
            "ci_high": 1e-300 * n,
            "suppressed": n % 3 == 0,
            "invited": n,
            "answered": n,
            "response_rate": None if n % 2 == 0 else n / 7,
            "maintainability_answers": n,
            "maintainability_mean": 2 / 3 if n else None,
        }
        for n, key in enumerate(keys)
    ]
    with Session(store) as session:
        session.execute(
            insert(NpsWeekRow.__table__).values(
                week=WEEK, starts_at=moment, ends_at=moment, min_responses=3, trend=[], computed_at=moment
            )
        )
        insert_rows(session, NpsSnapshotRow.__table__, rows)
        session.commit()
    columns = [NpsSnapshotRow.__table__.c[name] for name in rows[0]]
    with Session(store) as session:
        stored = session.execute(select(*columns).order_by(NpsSnapshotRow.promoters)).all()
    assert [dict(row._mapping) for row in stored] == rows


def test_timestamps_and_json_read_back_as_given(store):
    from zoneinfo import ZoneInfo

    from auxeng.store.models import IndependenceScoreRow, IndependenceWeekRow

    moment = datetime(2026, 11, 30, 6, tzinfo=UTC)
    with Session(store) as session:
        insert_rows(
            session,
            IndependenceWeekRow.__table__,
            [
                {
                    "week": WEEK,
                    "starts_at": datetime(2026, 11, 23, 0, 0, 0, 1, tzinfo=ZoneInfo("Europe/Paris")),
                    "ends_at": moment,
                    "min_responses": 3,
                    "threshold": 70.0,
                    "window_weeks": 52,
                    "weights": {"maintainability": 25.0},
                    "computed_at": moment,
                }
            ],
        )
        components = [
            [{"name": 'a "quoted" \\ name', "value": None, "points": 2 / 3}],
            [],
            [{"ünï": [1, True]}],
        ]
        insert_rows(
            session,
            IndependenceScoreRow.__table__,
            [
                {
                    "week": WEEK,
                    "engagement_key": f"E{n}",
                    "team_key": "t",
                    "org": None,
                    "end_date": WEEK,
                    "total": None,
                    "components": value,
                    "independent": None,
                    "goals_achieved": n == 1,
                }
                for n, value in enumerate(components)
            ],
        )
        session.commit()
    with Session(store) as session:
        header = session.get(IndependenceWeekRow, WEEK)
        stored = session.scalars(
            select(IndependenceScoreRow).order_by(IndependenceScoreRow.engagement_key)
        ).all()
    assert header.starts_at == datetime(2026, 11, 22, 23, 0, 0, 1, tzinfo=UTC)
    assert header.ends_at == moment and header.weights == {"maintainability": 25.0}
    assert [row.components for row in stored] == components
