"""The engagement lifecycle: ended, reopened, cancelled, removed, and the one "ended and live" rule.

An engagement is

- **removed** once it is no longer in the registry (``removed_at`` set);
- **cancelled** when the registry says ``status: cancelled``;
- **live** when it is neither removed nor cancelled;
- **ended** once :func:`mark_ended` marked it (``ended_at`` set): a live engagement is
  marked the day after its last day (:func:`is_due_to_end`), and unmarked (reopened) if
  its end date later moves to the run's date or after;
- **ended and live** when both hold: only those are surveyed, checked in on and followed up.

Each rule is here twice, as a Python predicate over a row and as a SQL clause; the
tests hold the two to the same answers. The clauses take the engagement's columns
(:class:`EngagementRow`, an alias of it, or ``EngagementRow.__table__.c``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Engine, and_, not_, select, update

from auxeng.store.db import session_scope
from auxeng.store.models import EngagementRevisionRow, EngagementRow
from auxeng.vocabulary import EngagementStatus


class EngagementState(Protocol):
    """What the lifecycle rules read of an engagement (an :class:`EngagementRow` has it all)."""

    status: str
    end_date: date
    ended_at: datetime | None
    removed_at: datetime | None


def is_removed(engagement: EngagementState) -> bool:
    return engagement.removed_at is not None


def is_cancelled(engagement: EngagementState) -> bool:
    return engagement.status == EngagementStatus.CANCELLED


def is_live(engagement: EngagementState) -> bool:
    """Neither removed from the registry nor cancelled."""
    return not is_removed(engagement) and not is_cancelled(engagement)


def is_ended(engagement: EngagementState) -> bool:
    """Marked ended (and not reopened since)."""
    return engagement.ended_at is not None


def is_ended_and_live(engagement: EngagementState) -> bool:
    """THE rule for who is surveyed, checked in on and followed up."""
    return is_ended(engagement) and is_live(engagement)


def is_due_to_end(engagement: EngagementState, as_of: date) -> bool:
    """Live, not marked ended, and its last day (``end_date``) is before ``as_of``."""
    return is_live(engagement) and not is_ended(engagement) and engagement.end_date < as_of


def removed_clause(columns: Any = EngagementRow) -> ColumnElement[bool]:
    return columns.removed_at.is_not(None)


def cancelled_clause(columns: Any = EngagementRow) -> ColumnElement[bool]:
    return columns.status == EngagementStatus.CANCELLED.value


def live_clause(columns: Any = EngagementRow) -> ColumnElement[bool]:
    """SQL of :func:`is_live`."""
    return and_(not_(removed_clause(columns)), not_(cancelled_clause(columns)))


def ended_clause(columns: Any = EngagementRow) -> ColumnElement[bool]:
    """SQL of :func:`is_ended`."""
    return columns.ended_at.is_not(None)


def ended_and_live_clause(columns: Any = EngagementRow) -> ColumnElement[bool]:
    """SQL of :func:`is_ended_and_live`."""
    return and_(ended_clause(columns), live_clause(columns))


def due_to_end_clause(as_of: date, columns: Any = EngagementRow) -> ColumnElement[bool]:
    """SQL of :func:`is_due_to_end`."""
    return and_(live_clause(columns), not_(ended_clause(columns)), columns.end_date < as_of)


@dataclass(frozen=True)
class EndedEngagement:
    key: str
    title: str
    host_team: str
    end: date

    def as_event(self) -> dict[str, str]:
        return {
            "key": self.key,
            "title": self.title,
            "host_team": self.host_team,
            "end": self.end.isoformat(),
        }


@dataclass
class DetectionResult:
    as_of: date
    ended: list[EndedEngagement]
    reopened: list[str]


def mark_ended(engine: Engine, as_of: date, now: datetime) -> DetectionResult:
    """Mark every engagement due to end by ``as_of`` (:func:`is_due_to_end`) as ended.

    The marking is one conditional UPDATE, so concurrent or repeated runs mark each
    engagement once. An ended engagement whose end date was later moved to
    ``as_of`` or after is reopened (its end date changed since it was marked).
    Cancelled and removed engagements never count.
    """
    with session_scope(engine) as session:
        reopened_rows = session.execute(
            update(EngagementRow)
            .where(
                ended_clause(),
                EngagementRow.end_date != EngagementRow.ended_end_date,
                EngagementRow.end_date >= as_of,
            )
            .values(
                ended_at=None,
                ended_as_of=None,
                ended_end_date=None,
                revision=EngagementRow.revision + 1,
            )
            .returning(EngagementRow.key, EngagementRow.revision, EngagementRow.end_date)
        ).all()
        ended_rows = session.execute(
            update(EngagementRow)
            .where(due_to_end_clause(as_of))
            .values(
                ended_at=now,
                ended_as_of=as_of,
                ended_end_date=EngagementRow.end_date,
                revision=EngagementRow.revision + 1,
            )
            .returning(
                EngagementRow.key,
                EngagementRow.revision,
                EngagementRow.title,
                EngagementRow.host_team_key,
                EngagementRow.end_date,
            )
        ).all()
        session.add_all(
            [
                EngagementRevisionRow(
                    engagement_key=row.key,
                    revision=row.revision,
                    event="reopened",
                    changes={"end_date": row.end_date.isoformat(), "as_of": as_of.isoformat()},
                    recorded_at=now,
                )
                for row in reopened_rows
            ]
            + [
                EngagementRevisionRow(
                    engagement_key=row.key,
                    revision=row.revision,
                    event="ended",
                    changes={"end_date": row.end_date.isoformat(), "as_of": as_of.isoformat()},
                    recorded_at=now,
                )
                for row in ended_rows
            ]
        )
    ended = sorted(
        (EndedEngagement(r.key, r.title, r.host_team_key, r.end_date) for r in ended_rows),
        key=lambda e: (e.end, e.key),
    )
    return DetectionResult(as_of=as_of, ended=ended, reopened=sorted(r.key for r in reopened_rows))


def ended_engagements(engine: Engine, *, since: date | None = None) -> list[EndedEngagement]:
    """Engagements ended and live (optionally those ended on or after ``since``)."""
    query = select(EngagementRow).where(ended_and_live_clause())
    if since is not None:
        query = query.where(EngagementRow.end_date >= since)
    with session_scope(engine) as session:
        return [
            EndedEngagement(r.key, r.title, r.host_team_key, r.end_date)
            for r in session.scalars(query.order_by(EngagementRow.end_date, EngagementRow.key))
        ]
