"""Red-flag evaluation and alerts send a fixed number of statements, however many flags change.

Counted with a ``before_cursor_execute`` listener (deterministic, unlike times): flags opened,
escalated, updated and resolved, then their alerts queued, for 10 and for 100 flags.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auxeng.redflags.alerts import plan_flag_alerts
from auxeng.redflags.rules import Flag
from auxeng.redflags.store import reconcile
from auxeng.settings import load_settings
from auxeng.store.models import FlagEventRow, FlagRow
from tests.support.statements import KEY, counting, fresh_store, load_synthetic

SETTINGS = load_settings({"AUXENG_PUBLIC_URL": "https://airflow.example.com/auxeng"})
DAY = date(2026, 12, 1)
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def findings(numbers: range | list[int], *, severity: str = "warning", requests: int = 2) -> list[Flag]:
    return [
        Flag(
            rule="help_requests",
            subject_kind="team",
            subject_key=f"team-{n:04d}",
            severity=severity,
            summary=f"Team {n} asked for help {requests} times",
            evidence={"requests": requests},
            team_key=f"team-{n:04d}",
        )
        for n in numbers
    ]


def _run(engine, step, **options):
    with counting(engine) as statements, Session(engine) as session:
        report = step(session, **options)
        session.commit()
    return report, statements


def _counts(store_url, tmp_path, flags: int) -> dict[str, int]:
    engine = fresh_store(store_url, tmp_path, f"auxeng-{flags}.db")
    load_synthetic(engine, 10)  # the program and its manager, who gets the alerts
    counts = {}
    opened, statements = _run(engine, reconcile, flags=findings(range(flags)), as_of=DAY, now=NOW)
    assert len(opened.opened) == flags
    counts["opened"] = len(statements)
    alerts, statements = _run(engine, plan_flag_alerts, settings=SETTINGS, key=KEY, now=NOW)
    assert sum(len(keys) for keys in alerts.announced.values()) == flags and alerts.messages >= flags
    counts["announced"] = len(statements)
    # Interleaved by id: every third flag escalated, the next updated, the next resolved.
    escalated, updated = range(0, flags, 3), range(1, flags, 3)
    changed = findings(escalated, severity="critical", requests=9) + findings(updated, requests=3)
    later = datetime(2026, 12, 2, 9, tzinfo=UTC)
    changes, statements = _run(engine, reconcile, flags=changed, as_of=date(2026, 12, 2), now=later)
    assert (len(changes.escalated), len(changes.updated), len(changes.resolved)) == (
        len(escalated),
        len(escalated) + len(updated),  # the escalated ones are updated too
        flags - len(escalated) - len(updated),
    )
    counts["changed"] = len(statements)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(FlagRow)) == flags
        assert session.scalar(select(func.count()).select_from(FlagEventRow)) == 3 * flags
    engine.dispose()
    return counts


def test_flags_open_change_and_alert_in_as_many_statements_for_100_flags_as_for_10(store_url, tmp_path):
    few, many = _counts(store_url, tmp_path, 10), _counts(store_url, tmp_path, 100)
    assert few == many, (few, many)
    assert all(count <= 12 for count in many.values()), many
