"""Flags in the store, on SQLite and PostgreSQL: one live flag per rule and subject (the database
enforces it), escalation reopens an acknowledged flag, resolved flags make room for new ones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auxeng.redflags.alerts import announcement_reason
from auxeng.redflags.rules import Flag
from auxeng.redflags.store import acknowledge, reconcile
from auxeng.store.models import FlagRow

DAY = date(2026, 12, 1)
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def finding(severity: str = "warning", requests: int = 2) -> Flag:
    return Flag(
        rule="help_requests",
        subject_kind="team",
        subject_key="fulfillment",
        severity=severity,
        summary=f"Fulfillment asked for help {requests} times",
        evidence={"requests": requests},
        team_key="fulfillment",
    )


def evaluate(store, flags: list[Flag], day: date):
    with Session(store) as session:
        report = reconcile(session, flags, as_of=day, now=datetime.combine(day, NOW.timetz()))
        session.commit()
    return report


def rows(store) -> list[FlagRow]:
    with Session(store) as session:
        return list(session.scalars(select(FlagRow).order_by(FlagRow.id)))


def test_a_daily_re_evaluation_updates_one_flag_and_never_duplicates_it(store):
    assert evaluate(store, [finding()], DAY).opened == ["help_requests:team:fulfillment"]
    assert evaluate(store, [finding()], DAY + timedelta(days=1)).unchanged == 1
    assert evaluate(store, [finding(requests=3)], DAY + timedelta(days=2)).updated == [
        "help_requests:team:fulfillment"
    ]
    (row,) = rows(store)
    assert (row.evidence, row.opened_on, row.evaluated_on) == ({"requests": 3}, DAY, DAY + timedelta(days=2))


def test_the_database_refuses_a_second_live_flag_for_the_same_rule_and_subject(store):
    evaluate(store, [finding()], DAY)
    (row,) = rows(store)
    with Session(store) as session:
        session.add(
            FlagRow(
                rule=row.rule,
                subject_kind=row.subject_kind,
                subject_key=row.subject_key,
                open_key=row.open_key,
                status="open",
                severity="warning",
                summary="twin",
                evidence={},
                opened_at=NOW,
                opened_on=DAY,
                evaluated_on=DAY,
                updated_at=NOW,
                announcements=0,
            )
        )
        with pytest.raises(IntegrityError):
            session.commit()


def test_escalation_above_what_was_acknowledged_reopens_the_flag(store):
    evaluate(store, [finding()], DAY)
    (row,) = rows(store)
    with Session(store) as session:
        assert (
            acknowledge(session, row.id, by="dana.ruiz@example.com", note="On it", now=NOW).state
            == "acknowledged"
        )
        session.commit()
    evaluate(store, [finding()], DAY + timedelta(days=1))
    assert rows(store)[0].status == "acknowledged"
    assert evaluate(store, [finding("critical", 5)], DAY + timedelta(days=2)).escalated
    (row,) = rows(store)
    assert (row.status, row.severity, row.acknowledged_by) == ("open", "critical", "dana.ruiz@example.com")


def test_a_resolved_flag_makes_room_for_a_new_one_when_the_condition_returns(store):
    evaluate(store, [finding()], DAY)
    assert evaluate(store, [], DAY + timedelta(days=30)).resolved == ["help_requests:team:fulfillment"]
    evaluate(store, [finding()], DAY + timedelta(days=60))
    first, second = rows(store)
    assert (first.status, first.open_key, second.status) == ("resolved", None, "open")
    assert second.open_key == "help_requests:team:fulfillment"


def test_announcement_is_due_when_new_escalated_or_a_week_after_the_last_one_went_out():
    def reason(flag, now, went_out=None):
        return announcement_reason(flag, now=now, reannounce_days=7, last_went_out=went_out)

    flag = FlagRow(status="open", severity="warning", announced_at=None, announced_severity=None)
    assert reason(flag, NOW) == "new"
    flag.announced_at, flag.announced_severity = NOW, "warning"
    assert reason(flag, NOW + timedelta(days=30)) is None  # queued but not gone out yet
    went_out = NOW + timedelta(days=2)  # held by working hours (or an outage) for two days
    assert reason(flag, went_out + timedelta(days=7) - timedelta(seconds=1), went_out) is None
    assert reason(flag, NOW + timedelta(days=7), went_out) is None  # a week after queuing is too soon
    assert reason(flag, went_out + timedelta(days=7), went_out) == "still open"
    flag.severity = "critical"
    assert reason(flag, NOW + timedelta(hours=1)) == "escalated"
    flag.status = "acknowledged"
    assert reason(flag, NOW + timedelta(days=30), went_out) is None
