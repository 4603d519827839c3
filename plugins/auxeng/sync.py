"""Load a validated registry into the engagement store, keeping every engagement's history."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from auxeng.registry import Engagement, Registry
from auxeng.store.db import session_scope
from auxeng.store.models import (
    EngagementRevisionRow,
    EngagementRow,
    MemberRow,
    PersonRow,
    ProgramRow,
    RegistryLoadRow,
    TeamRow,
)

_ENGAGEMENT_FIELDS = (
    ("title", "title"),
    ("host_team", "host_team_key"),
    ("start", "start_date"),
    ("end", "end_date"),
    ("status", "status"),
    ("follow_up", "follow_up"),
    ("anonymous", "anonymous"),
    ("goals_business", "goals_business"),
    ("goals_technical", "goals_technical"),
)


@dataclass
class SyncResult:
    """What one load did; ``problems`` lists the registry's problems (valid rows were still saved)."""

    load_id: int | None
    sha256: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: bool = False

    def summary(self) -> dict[str, Any]:
        """Counts only, small enough for an XCom."""
        data = asdict(self)
        for name in ("created", "updated", "removed", "restored", "problems"):
            data[name] = len(data[name])
        return data


def last_load(engine: Engine) -> RegistryLoadRow | None:
    with session_scope(engine) as session:
        return session.scalars(select(RegistryLoadRow).order_by(RegistryLoadRow.id.desc()).limit(1)).first()


def sync_registry(
    engine: Engine, registry: Registry, *, source: str, now: datetime, force: bool = False
) -> SyncResult:
    """Save every valid part of ``registry``; skip all work when the file is unchanged since the last load.

    When the teams or engagements section is missing or unreadable as a whole,
    neither is touched: a broken file never marks anything as removed.
    """
    previous = last_load(engine)
    if previous is not None and previous.sha256 == registry.sha256 and not force:
        return SyncResult(
            load_id=previous.id, sha256=registry.sha256, problems=list(previous.problems), skipped=True
        )
    result = SyncResult(load_id=None, sha256=registry.sha256, problems=[str(p) for p in registry.problems])
    with session_scope(engine) as session:
        if registry.program is not None:
            _sync_program(session, registry, now)
        complete = not {"teams", "engagements"} & registry.broken_sections
        if complete:
            _sync_teams(session, registry, now)
        if "people" not in registry.broken_sections:
            _sync_people(session, registry, now)
        if complete:
            _sync_engagements(session, registry, now, result)
        load = RegistryLoadRow(
            source=source,
            sha256=registry.sha256,
            loaded_at=now,
            created=len(result.created),
            updated=len(result.updated),
            unchanged=result.unchanged,
            removed=len(result.removed),
            restored=len(result.restored),
            problems=result.problems,
        )
        session.add(load)
        session.flush()
        result.load_id = load.id
    return result


def _sync_program(session: Session, registry: Registry, now: datetime) -> None:
    program = registry.program
    row = session.get(ProgramRow, 1) or ProgramRow(id=1)
    row.name = program.name
    row.managers = [asdict(m) for m in program.managers]
    row.stakeholders = list(program.stakeholders)
    row.digest_slack_channel = program.digest_slack_channel
    row.updated_at = now
    session.add(row)


def _assign(row: Any, values: dict[str, Any]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _sync_teams(session: Session, registry: Registry, now: datetime) -> None:
    existing = {row.key: row for row in session.scalars(select(TeamRow))}
    for team in registry.teams.values():
        manager = team.manager
        values = {
            "name": team.name,
            "org": team.org,
            "manager_email": manager.email if manager else None,
            "manager_name": manager.name if manager else None,
            "manager_slack_id": manager.slack_id if manager else None,
            "help_channel": team.help_channel,
            "removed_at": None,
        }
        row = existing.get(team.key)
        if row is None:
            session.add(TeamRow(key=team.key, updated_at=now, **values))
        elif _assign(row, values):
            row.updated_at = now
    for key, row in existing.items():
        if key not in registry.teams and key not in registry.rejected_team_keys and row.removed_at is None:
            row.removed_at = now


def _sync_people(session: Session, registry: Registry, now: datetime) -> None:
    existing = {row.email: row for row in session.scalars(select(PersonRow))}
    for person in registry.people.values():
        values = {"name": person.name, "slack_id": person.slack_id, "timezone": person.timezone}
        row = existing.get(person.email)
        if row is None:
            session.add(PersonRow(email=person.email, updated_at=now, **values))
        elif _assign(row, values):
            row.updated_at = now


def _member_label(email: str, side: str, role: str, lead: bool) -> str:
    return f"{side}:{email}:{role}{':lead' if lead else ''}"


def _snapshot_engagement(engagement: Engagement) -> dict[str, Any]:
    snapshot = {name: _jsonable(getattr(engagement, name)) for name, _ in _ENGAGEMENT_FIELDS}
    snapshot["members"] = sorted(_member_label(m.email, m.side, m.role, m.lead) for m in engagement.members)
    return snapshot


def _snapshot_row(row: EngagementRow) -> dict[str, Any]:
    snapshot = {name: _jsonable(getattr(row, column)) for name, column in _ENGAGEMENT_FIELDS}
    snapshot["members"] = sorted(_member_label(m.email, m.side, m.role, m.lead) for m in row.members)
    return snapshot


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _sync_engagements(session: Session, registry: Registry, now: datetime, result: SyncResult) -> None:
    existing = {
        row.key: row
        for row in session.scalars(select(EngagementRow).options(selectinload(EngagementRow.members)))
    }
    revisions: list[EngagementRevisionRow] = []
    for key, engagement in registry.engagements.items():
        fingerprint = engagement.fingerprint()
        row = existing.get(key)
        if row is None:
            row = EngagementRow(key=key, created_at=now, revision=1, fingerprint=fingerprint)
            _apply(row, engagement, now)
            session.add(row)
            result.created.append(key)
            revisions.append(_revision(row, "created", _snapshot_engagement(engagement), registry, now))
            continue
        if row.fingerprint == fingerprint and row.removed_at is None:
            result.unchanged += 1
            continue
        before, after = _snapshot_row(row), _snapshot_engagement(engagement)
        changes = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
        restored = row.removed_at is not None
        row.fingerprint = fingerprint
        if not changes and not restored:
            result.unchanged += 1
            continue
        _apply(row, engagement, now)
        row.removed_at = None
        row.revision += 1
        (result.restored if restored else result.updated).append(key)
        revisions.append(_revision(row, "restored" if restored else "updated", changes, registry, now))
    for key, row in existing.items():
        if (
            key in registry.engagements
            or key in registry.rejected_engagement_keys
            or row.removed_at is not None
        ):
            continue
        row.removed_at = now
        row.revision += 1
        result.removed.append(key)
        revisions.append(_revision(row, "removed", {}, registry, now))
    session.add_all(revisions)


def _apply(row: EngagementRow, engagement: Engagement, now: datetime) -> None:
    for name, column in _ENGAGEMENT_FIELDS:
        setattr(row, column, getattr(engagement, name))
    current = {m.email: m for m in row.members}
    members = []
    for member in engagement.members:
        member_row = current.get(member.email) or MemberRow(email=member.email)
        _assign(member_row, {"side": member.side, "role": member.role, "lead": member.lead})
        members.append(member_row)
    if members != list(row.members):
        row.members = members
    row.updated_at = now


def _revision(
    row: EngagementRow, event: str, changes: dict[str, Any], registry: Registry, now: datetime
) -> EngagementRevisionRow:
    return EngagementRevisionRow(
        engagement_key=row.key,
        revision=row.revision,
        event=event,
        changes=changes,
        registry_sha256=registry.sha256,
        recorded_at=now,
    )
