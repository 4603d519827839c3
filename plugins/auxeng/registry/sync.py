"""Load a validated registry into the engagement store, keeping every engagement's history."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session, selectinload

from auxeng.registry.gcpause import gc_paused
from auxeng.registry.guard import MassRemovalRefused, RemovalGuard
from auxeng.registry.parse import (
    Engagement,
    Registry,
    load_registry_file,
    parse_registry,
    read_registry_bytes,
)
from auxeng.settings import load_settings
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

log = logging.getLogger(__name__)

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


def _unchanged_since_last_load(engine: Engine, sha256: str) -> SyncResult | None:
    """A "skipped" result carrying the last load's problems, if that load had the same content.

    Only loads that saved something are recorded (a load refused by the mass-removal guard
    writes no row), so a refused file is never skipped as "unchanged": it is refused again
    until it is confirmed or fixed.
    """
    previous = last_load(engine)
    if previous is None or previous.sha256 != sha256:
        return None
    return SyncResult(load_id=previous.id, sha256=sha256, problems=list(previous.problems), skipped=True)


def sync_registry_file(
    engine: Engine,
    path: str | Path,
    *,
    now: datetime,
    force: bool = False,
    allow_mass_removal: bool = False,
    guard: RemovalGuard | None = None,
) -> SyncResult:
    """Load the registry file at ``path``: what the DAG task and the CLI do.

    The raw bytes are hashed first, so an unchanged file is skipped without parsing.
    """
    options = {"force": force, "allow_mass_removal": allow_mass_removal, "guard": guard}
    try:
        data = read_registry_bytes(path)
    except OSError:
        return sync_registry(engine, load_registry_file(path), source=str(path), now=now, **options)
    if not force and (skipped := _unchanged_since_last_load(engine, hashlib.sha256(data).hexdigest())):
        return skipped
    return sync_registry(engine, parse_registry(data), source=str(path), now=now, **options)


def sync_registry(
    engine: Engine,
    registry: Registry,
    *,
    source: str,
    now: datetime,
    force: bool = False,
    allow_mass_removal: bool = False,
    guard: RemovalGuard | None = None,
) -> SyncResult:
    """Save every valid part of ``registry``; skip all work when the file is unchanged since the last load.

    When the teams or engagements section is missing or unreadable as a whole,
    neither is touched: a broken file never marks anything as removed.

    A load that would remove more engagements than ``guard`` allows (default: the
    ``AUXENG_REGISTRY_REMOVAL_GUARD_*`` settings) raises :class:`MassRemovalRefused`
    before anything is written, unless ``allow_mass_removal``: nothing is saved, not even
    its valid rows or a load record (the log has a line for it).
    """
    if not force and (skipped := _unchanged_since_last_load(engine, registry.sha256)):
        return skipped
    result = SyncResult(load_id=None, sha256=registry.sha256, problems=[str(p) for p in registry.problems])
    with gc_paused(), session_scope(engine) as session:
        complete = not {"teams", "engagements"} & registry.broken_sections
        stored = _stored_engagements(session) if complete else {}
        if complete:
            _guard_removals(registry, stored, source, result, allow_mass_removal, guard)
        if registry.program is not None:
            _sync_program(session, registry, now)
        if complete:
            _sync_teams(session, registry, now)
        if "people" not in registry.broken_sections:
            _sync_people(session, registry, now)
        if complete:
            _sync_engagements(session, registry, stored, now, result)
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
    row.help_after_end = program.help_after_end.as_stored() if program.help_after_end else None
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
            "help_after_end": team.help_after_end.as_stored() if team.help_after_end else None,
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


def _snapshot_engagement(engagement: Engagement) -> dict[str, Any]:
    """What the registry says, in the JSON form revisions record."""
    return _snapshot({name: getattr(engagement, name) for name, _ in _ENGAGEMENT_FIELDS}, engagement.members)


def _snapshot_row(row: EngagementRow) -> dict[str, Any]:
    """What the store holds, in the same form as ``_snapshot_engagement``."""
    return _snapshot({name: getattr(row, column) for name, column in _ENGAGEMENT_FIELDS}, row.members)


def _snapshot(values: dict[str, Any], members: Any) -> dict[str, Any]:
    snapshot = {name: _jsonable(value) for name, value in values.items()}
    snapshot["members"] = sorted(f"{m.side}:{m.email}:{m.role}{':lead' if m.lead else ''}" for m in members)
    return snapshot


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _stored_engagements(session: Session) -> dict[str, Any]:
    """Every stored engagement's key, fingerprint and ``removed_at`` (one query)."""
    return {row.key: row for row in session.execute(select(*_FINGERPRINT_COLUMNS))}


def _gone(registry: Registry, stored: dict[str, Any]) -> list[str]:
    """Live stored engagements this load would mark removed (rejected rows keep theirs)."""
    return [
        key
        for key, row in stored.items()
        if key not in registry.engagements
        and key not in registry.rejected_engagement_keys
        and row.removed_at is None
    ]


def _guard_removals(
    registry: Registry,
    stored: dict[str, Any],
    source: str,
    result: SyncResult,
    allow_mass_removal: bool,
    guard: RemovalGuard | None,
) -> None:
    """Raise :class:`MassRemovalRefused` if the load removes too many engagements unconfirmed."""
    gone = _gone(registry, stored)
    if not gone:
        return
    live = sum(1 for row in stored.values() if row.removed_at is None)
    guard = guard or RemovalGuard.from_settings(load_settings())
    if not guard.refuses(len(gone), live):
        return
    if allow_mass_removal:
        log.warning(
            "Registry %s (sha256 %s): mass removal confirmed: removing %d of %d live engagements",
            source,
            registry.sha256,
            len(gone),
            live,
        )
        return
    log.warning(
        "Registry load refused: %s (sha256 %s) would remove %d of %d live engagements; nothing changed",
        source,
        registry.sha256,
        len(gone),
        live,
    )
    raise MassRemovalRefused(source=source, removing=gone, live=live, guard=guard, problems=result.problems)


def _sync_engagements(
    session: Session, registry: Registry, stored: dict[str, Any], now: datetime, result: SyncResult
) -> None:
    """Diff by fingerprint first; only new, changed and removed engagements cost any work."""
    fingerprints = {key: engagement.fingerprint() for key, engagement in registry.engagements.items()}
    new = [key for key in registry.engagements if key not in stored]
    changed = [
        key
        for key, fingerprint in fingerprints.items()
        if key in stored and (stored[key].fingerprint != fingerprint or stored[key].removed_at is not None)
    ]
    result.unchanged = len(registry.engagements) - len(new) - len(changed)
    revisions: list[dict[str, Any]] = []
    _insert_new(session, registry, new, fingerprints, now, revisions)
    result.created.extend(new)
    for chunk in _chunks(changed):
        rows = session.scalars(
            select(EngagementRow)
            .where(EngagementRow.key.in_(chunk))
            .options(selectinload(EngagementRow.members))
        )
        for row in rows:
            engagement = registry.engagements[row.key]
            before, after = _snapshot_row(row), _snapshot_engagement(engagement)
            changes = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
            restored = row.removed_at is not None
            row.fingerprint = fingerprints[row.key]
            if not changes and not restored:
                result.unchanged += 1
                continue
            _apply(row, engagement, now)
            row.removed_at = None
            row.revision += 1
            (result.restored if restored else result.updated).append(row.key)
            revisions.append(
                _revision(
                    row.key, row.revision, "restored" if restored else "updated", changes, registry, now
                )
            )
    for chunk in _chunks(_gone(registry, stored)):
        marked = session.execute(
            update(EngagementRow)
            .where(EngagementRow.key.in_(chunk), EngagementRow.removed_at.is_(None))
            .values(removed_at=now, revision=EngagementRow.revision + 1)
            .returning(EngagementRow.key, EngagementRow.revision)
        ).all()
        for key, revision in marked:
            result.removed.append(key)
            revisions.append(_revision(key, revision, "removed", {}, registry, now))
    result.updated.sort()
    result.restored.sort()
    result.removed.sort()
    session.flush()
    if revisions:
        session.execute(insert(EngagementRevisionRow), revisions)


_FINGERPRINT_COLUMNS = (EngagementRow.key, EngagementRow.fingerprint, EngagementRow.removed_at)


def _chunks(keys: list[str], size: int = 500) -> list[list[str]]:
    return [keys[i : i + size] for i in range(0, len(keys), size)]


def _insert_new(
    session: Session,
    registry: Registry,
    keys: list[str],
    fingerprints: dict[str, str],
    now: datetime,
    revisions: list[dict[str, Any]],
) -> None:
    """Bulk-insert new engagements and their members (one executemany per table)."""
    if not keys:
        return
    engagements, members = [], []
    for key in keys:
        engagement = registry.engagements[key]
        engagements.append(
            {
                "key": key,
                **{column: getattr(engagement, name) for name, column in _ENGAGEMENT_FIELDS},
                "fingerprint": fingerprints[key],
                "revision": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        members += [
            {"engagement_key": key, "email": m.email, "side": m.side, "role": m.role, "lead": m.lead}
            for m in engagement.members
        ]
        revisions.append(_revision(key, 1, "created", _snapshot_engagement(engagement), registry, now))
    session.execute(insert(EngagementRow), engagements)
    if members:
        session.execute(insert(MemberRow), members)


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
    key: str, revision: int, event: str, changes: dict[str, Any], registry: Registry, now: datetime
) -> dict[str, Any]:
    return {
        "engagement_key": key,
        "revision": revision,
        "event": event,
        "changes": changes,
        "registry_sha256": registry.sha256,
        "recorded_at": now,
    }
