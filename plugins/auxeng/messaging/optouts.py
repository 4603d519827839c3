"""Opt-outs: people who want no more messages (or no more weekly digests), from a signed link.

The one module that writes ``auxeng_opt_outs`` and ``auxeng_digest_opt_outs``. Delivery reads the
first at send time (its guard skips every queued message to an opted-out person); planners read
both to leave people out before anything is queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auxeng.store.db import session_scope
from auxeng.store.models import DigestOptOutRow, OptOutRow


@dataclass(frozen=True)
class OptOutOutcome:
    created: bool
    opted_out_at: datetime


def _opt_out_model(digest: bool) -> type[OptOutRow] | type[DigestOptOutRow]:
    """Where opt-outs are kept: from everything (:class:`OptOutRow`) or from the weekly digest only."""
    return DigestOptOutRow if digest else OptOutRow


def opted_out_at(session: Session, email: str, *, digest: bool = False) -> datetime | None:
    """When ``email`` opted out of all messages (``digest``: of the weekly NPS digest only), or ``None``."""
    row = session.get(_opt_out_model(digest), email.strip().lower())
    return row.opted_out_at if row is not None else None


def digest_opted_out(session: Session) -> set[str]:
    """Every (lower-cased) address that opted out of the weekly NPS digest.

    Only the digest opt-outs: the digest planner also leaves out those who opted out of everything.
    """
    return {email.strip().lower() for email in session.scalars(select(DigestOptOutRow.email))}


def record_opt_out(
    engine: Engine, email: str, *, now: datetime, source: str, digest: bool = False
) -> OptOutOutcome:
    """Record that ``email`` wants no more messages; the first opt-out's time is kept.

    With ``digest`` it records only that ``email`` wants no more weekly NPS digests
    (other messages are unaffected). The two opt-outs are kept apart: neither writes the other.
    Two concurrent first opt-outs meet on the primary key: the loser reads the winner's.
    """
    model = _opt_out_model(digest)
    address = email.strip().lower()
    for attempt in (1, 2):
        try:
            with session_scope(engine) as session:
                row = session.get(model, address)
                if row is not None:
                    return OptOutOutcome(created=False, opted_out_at=row.opted_out_at)
                session.add(model(email=address, opted_out_at=now, source=source[:16]))
                session.flush()
                return OptOutOutcome(created=True, opted_out_at=now)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def record_digest_opt_out(engine: Engine, email: str, *, now: datetime, source: str) -> OptOutOutcome:
    """:func:`record_opt_out` for the weekly NPS digest only."""
    return record_opt_out(engine, email, now=now, source=source, digest=True)
