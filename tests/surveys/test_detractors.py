"""Detractor alerts: only answers not alerted yet are read (an indexed anti-join), each alerted once."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from auxeng.dev.demo_history import SOURCE as DEMO_HISTORY
from auxeng.store.models import SurveyResponseRow
from auxeng.surveys import detractors
from tests.surveys.test_planning import DEMO_TEXT, KEY, SETTINGS, load, moment, outbox, plan

ALERTED = 1_000


@pytest.fixture
def demo(store):
    load(store, DEMO_TEXT, date(2026, 11, 26))
    return store


def ref(n: int) -> str:
    return hashlib.sha256(f"answer-{n}".encode()).hexdigest()


def answer(n: int, *, nps: int = 3, source: str = "web") -> SurveyResponseRow:
    return SurveyResponseRow(
        response_ref=ref(n),
        survey="post_engagement",
        engagement_key="ENG-2026-031",
        nps=nps,
        answers={"to_change": f"thing {n}"},
        source=source,
        submitted_at=moment(date(2026, 11, 27)),
        updated_at=moment(date(2026, 11, 27)),
    )


def add(store, *answers: SurveyResponseRow) -> None:
    with Session(store) as session:
        session.add_all(answers)
        session.commit()


def rows_fetched_by_each_select(store, step) -> tuple[object, list[tuple[str, int]]]:
    """``step(session)``'s result, rolled back; then each SELECT it sent, replayed on the same data
    to count the rows it read."""
    selects: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, _executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append((statement, parameters))

    event.listen(store, "before_cursor_execute", record)
    try:
        with Session(store) as session:
            result = step(session)
            session.rollback()
    finally:
        event.remove(store, "before_cursor_execute", record)
    with store.connect() as conn:
        fetched = [
            (statement, len(conn.exec_driver_sql(statement, parameters).all()))
            for statement, parameters in selects
        ]
    return result, fetched


def test_a_run_reads_only_the_detractor_answers_not_alerted_yet(demo):
    add(demo, *(answer(n) for n in range(ALERTED)))
    first = plan(demo, detractors.plan_detractor_alerts, now=moment(date(2026, 11, 28)))
    assert (first.alerts, first.messages) == (ALERTED, 2 * ALERTED)  # email and Slack to the lead, Heidi

    new = ref(ALERTED)
    add(demo, answer(ALERTED), answer(ALERTED + 1, nps=7), answer(ALERTED + 2, source=DEMO_HISTORY))
    with Session(demo) as session:
        assert [r.response_ref for r, _ in detractors.unalerted_detractor_answers(session)] == [new]

    def step(session):
        return detractors.plan_detractor_alerts(
            session, now=moment(date(2026, 11, 29)), settings=SETTINGS, key=KEY
        )

    report, fetched = rows_fetched_by_each_select(demo, step)
    assert (report.alerts, report.messages) == (1, 2)
    reading_answers = [rows for statement, rows in fetched if "FROM auxeng_survey_responses" in statement]
    assert reading_answers == [1]
    assert sum(rows for _, rows in fetched) < ALERTED, fetched  # people and teams, not the history
    assert len(fetched) <= 10, [statement for statement, _ in fetched]

    second = plan(demo, detractors.plan_detractor_alerts, now=moment(date(2026, 11, 29)))
    assert (second.alerts, second.messages) == (1, 2)
    assert plan(demo, detractors.plan_detractor_alerts, now=moment(date(2026, 11, 30))).messages == 0
    queued = outbox(demo, kind="detractor_alert")
    assert len(queued) == 2 * (ALERTED + 1)
    assert {m.dedupe_key for m in queued if m.response_id == queued[-1].response_id} == {
        f"detractor_alert:{new[:24]}:heidi.sauer@example.com:email",
        f"detractor_alert:{new[:24]}:heidi.sauer@example.com:slack",
    }


def test_the_anti_join_looks_alerts_up_by_index(demo):
    query = select(SurveyResponseRow.id).where(~detractors.alerted_clause())
    with demo.connect() as conn:
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        if demo.dialect.name == "postgresql":
            conn.execute(text("SET enable_seqscan = off"))  # an index, if there is one, wins on tiny tables
            plan_text = "\n".join(conn.exec_driver_sql(f"EXPLAIN {sql}").scalars())
        else:
            plan_text = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    assert "ix_auxeng_outbox_response_id" in plan_text, plan_text
