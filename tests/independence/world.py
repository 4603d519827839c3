"""Raw store rows for the independence tests: teams, engagements, survey answers, help requests,
written as the pack's own modules would leave them (no registry file, no DAG)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from itertools import count

from sqlalchemy.orm import Session

from auxeng.store.models import EngagementRow, HelpRequestRow, SurveyResponseRow, TeamRow

LOADED = datetime(2025, 1, 1, tzinfo=UTC)
_refs = count(1)


def team(session: Session, key: str, *, org: str | None = None, help_channel: str | None = None) -> None:
    session.add(TeamRow(key=key, name=key.title(), org=org, help_channel=help_channel, updated_at=LOADED))


def engagement(
    session: Session,
    key: str,
    team_key: str,
    start: date,
    end: date,
    *,
    anonymous: bool = False,
    status: str = "active",
    ended: bool = True,
    created_at: datetime = LOADED,
) -> None:
    """An engagement; ``ended``: marked ended the day after its last day (as ``mark_ended`` does)."""
    session.add(
        EngagementRow(
            key=key,
            title=f"Engagement {key}",
            host_team_key=team_key,
            start_date=start,
            end_date=end,
            status=status,
            anonymous=anonymous,
            fingerprint=hashlib.sha256(key.encode()).hexdigest(),
            created_at=created_at,
            updated_at=created_at,
            ended_at=datetime.combine(end + timedelta(days=1), time(6), UTC) if ended else None,
        )
    )


def answer(
    session: Session, key: str, survey: str, at: datetime, *, nps: int | None = None, **answers: object
) -> None:
    """A host-side answer (the ORM keeps ``maintainability`` in step with ``answers``)."""
    session.add(
        SurveyResponseRow(
            response_ref=f"ref-{next(_refs)}",
            survey=survey,
            engagement_key=key,
            nps=nps,
            answers=answers,
            source="web",
            submitted_at=at,
            updated_at=at,
        )
    )


def help_ask(session: Session, team_key: str, at: datetime, *, source: str = "slack") -> None:
    ref = next(_refs)
    session.add(
        HelpRequestRow(
            team_key=team_key,
            source=source,
            source_ref=f"{source}:{ref}",
            requested_at=at,
            summary=f"help {ref}",
            imported_at=at,
            updated_at=at,
        )
    )
