"""Requests for help in the store (``auxeng_help_requests``): the one module that writes them.

Each request is identified by its ``source`` (``slack``, ``csv``) and ``source_ref`` within it.
Slack messages never change once read, so they are only added; a CSV row may be edited in the
ticket system, so a re-import updates it in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.store.db import insert_skipping_duplicates
from auxeng.store.models import HelpRequestRow

CHUNK = 500


@dataclass(frozen=True)
class Upserted:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0


def add_new(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert the requests not stored yet (whole rows, keyed by source and source_ref); how many were new."""
    if not rows:
        return 0
    statement = insert_skipping_duplicates(session, HelpRequestRow, ["source", "source_ref"])
    return len(session.execute(statement.returning(HelpRequestRow.id), list(rows)).all())


def upsert(session: Session, source: str, requests: Sequence[dict[str, Any]], *, now: datetime) -> Upserted:
    """Add the new requests of ``source`` and update the changed ones (``source_ref`` plus the
    request's fields each); stored ones are found in one query per 500."""
    stored: dict[str, HelpRequestRow] = {}
    refs = [request["source_ref"] for request in requests]
    for start in range(0, len(refs), CHUNK):
        stored.update(
            (row.source_ref, row)
            for row in session.scalars(
                select(HelpRequestRow).where(
                    HelpRequestRow.source == source,
                    HelpRequestRow.source_ref.in_(refs[start : start + CHUNK]),
                )
            )
        )
    imported = updated = unchanged = 0
    for request in requests:
        values = {name: value for name, value in request.items() if name != "source_ref"}
        row = stored.get(request["source_ref"])
        if row is None:
            session.add(
                HelpRequestRow(
                    source=source, source_ref=request["source_ref"], imported_at=now, updated_at=now, **values
                )
            )
            imported += 1
            continue
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, values[name])
        if changed:
            row.updated_at = now
            updated += 1
        else:
            unchanged += 1
    return Upserted(imported, updated, unchanged)
