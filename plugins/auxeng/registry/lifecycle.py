"""Detect engagements that have ended as of a given day, marking each exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, and_, select, update

from auxeng.store.db import session_scope
from auxeng.store.models import EngagementRevisionRow, EngagementRow


def has_ended(end: date, status: str, as_of: date) -> bool:
    """``end`` is the engagement's last day: it has ended once ``as_of`` is a later day."""
    return status == "active" and end < as_of


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
    """Mark every active engagement whose last day is before ``as_of`` as ended.

    The marking is one conditional UPDATE, so concurrent or repeated runs mark each
    engagement once. An ended engagement whose end date was later moved to
    ``as_of`` or after is reopened (its end date changed since it was marked).
    Cancelled and removed engagements never count.
    """
    with session_scope(engine) as session:
        reopened_rows = session.execute(
            update(EngagementRow)
            .where(
                EngagementRow.ended_at.is_not(None),
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
            .where(
                and_(
                    EngagementRow.status == "active",
                    EngagementRow.removed_at.is_(None),
                    EngagementRow.ended_at.is_(None),
                    EngagementRow.end_date < as_of,
                )
            )
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
    """Engagements currently marked ended (optionally those ended on or after ``since``)."""
    query = select(EngagementRow).where(EngagementRow.ended_at.is_not(None), EngagementRow.status == "active")
    if since is not None:
        query = query.where(EngagementRow.end_date >= since)
    with session_scope(engine) as session:
        return [
            EndedEngagement(r.key, r.title, r.host_team_key, r.end_date)
            for r in session.scalars(query.order_by(EngagementRow.end_date, EngagementRow.key))
        ]
