"""Manual overrides of one engagement's check-in or follow-up, with the reason recorded.

Used by the ``auxeng_checkin_override`` DAG (triggered from the Airflow UI with
params). The change is written to the check-in, with who and why, and to its
event log; the next scheduling pass (run by the same DAG right after) sends the
updated or cancelled calendar invitation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.checkins.follow_ups import ACTIVE, FINISHED, stop_follow_up
from auxeng.checkins.planning import (
    CANCELLED,
    MISSED,
    SCHEDULED,
    SKIPPED,
    SURVEYING,
    add_checkin,
    override_checkin,
)
from auxeng.checkins.schedule import is_stale
from auxeng.registry.lifecycle import is_ended, is_live
from auxeng.settings import Settings
from auxeng.store.models import CheckinRow, EngagementRow, FollowUpRow
from auxeng.vocabulary import OVERRIDE_ACTIONS

RESCHEDULE, SKIP, RESUME, FINISH_FOLLOW_UP = OVERRIDE_ACTIONS
ACTIONS = OVERRIDE_ACTIONS
MIN_REASON = 3


class OverrideError(ValueError):
    """The override cannot be applied; the message says why and names the engagement."""


@dataclass(frozen=True)
class OverrideResult:
    engagement_key: str
    action: str
    status: str
    due_on: date | None
    reason: str
    requested_by: str

    def summary(self) -> dict[str, str | None]:
        return {
            "engagement": self.engagement_key,
            "action": self.action,
            "status": self.status,
            "due_on": self.due_on.isoformat() if self.due_on else None,
            "reason": self.reason,
            "requested_by": self.requested_by,
        }


def parse_date(raw: str | date | None, what: str) -> date | None:
    if raw is None or isinstance(raw, date):
        return raw
    text = str(raw).strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise OverrideError(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None


def apply_override(
    session: Session,
    *,
    engagement_key: str,
    action: str,
    reason: str,
    requested_by: str,
    as_of: date,
    now: datetime,
    settings: Settings,
    new_due: str | date | None = None,
) -> OverrideResult:
    """Reschedule, skip or resume one check-in, or finish a follow-up; raises :class:`OverrideError`."""
    key = (engagement_key or "").strip()
    why = " ".join((reason or "").split())
    if action not in ACTIONS:
        raise OverrideError(f"{key or 'override'}: action {action!r} is not one of {', '.join(ACTIONS)}")
    if len(why) < MIN_REASON:
        raise OverrideError(f"{key or 'override'}: give a reason (at least {MIN_REASON} characters)")
    engagement = session.get(EngagementRow, key)
    if engagement is None or not key:
        raise OverrideError(f"unknown engagement {key!r}")
    who = (requested_by or "").strip() or "unknown"

    if action == FINISH_FOLLOW_UP:
        follow_up = session.scalar(select(FollowUpRow).where(FollowUpRow.engagement_key == key))
        if follow_up is None or follow_up.status != ACTIVE:
            state = follow_up.status if follow_up else "none"
            raise OverrideError(f"{key} has no active monthly follow-up (follow-up: {state})")
        stop_follow_up(session, follow_up, FINISHED, now=now, by=who, why=why)
        return OverrideResult(key, action, FINISHED, None, why, who)

    checkin = session.scalar(select(CheckinRow).where(CheckinRow.engagement_key == key))
    if checkin is None:
        if not is_live(engagement):
            raise OverrideError(f"{key} is cancelled or removed: it has no check-in to change")
        if not is_ended(engagement):
            raise OverrideError(
                f"{key} has no check-in yet (it ends on {engagement.end_date}); it gets one when it ends"
            )
        checkin = add_checkin(session, engagement, settings, as_of=as_of, now=now, by="override")
    if checkin.status not in (SCHEDULED, SKIPPED, MISSED, CANCELLED):
        raise OverrideError(
            f"{key}: the check-in is {checkin.status}"
            + (f" (survey sent on {checkin.survey_sent_on})" if checkin.status == SURVEYING else "")
            + "; only a check-in not surveyed yet can be changed"
        )

    due = parse_date(new_due, f"{key}: new_due_date")
    if action == RESCHEDULE:
        if due is None:
            raise OverrideError(f"{key}: reschedule needs new_due_date (YYYY-MM-DD)")
        if due < as_of:
            raise OverrideError(f"{key}: new_due_date {due} is in the past (today is {as_of})")
        if not is_live(engagement):
            raise OverrideError(f"{key} is cancelled or removed: its check-in cannot be rescheduled")
        detail = {"due_on": {"from": checkin.due_on.isoformat(), "to": due.isoformat()}}
        status, note = SCHEDULED, f"rescheduled by {who}: {why}"
    elif action == SKIP:
        if checkin.status == SKIPPED:
            raise OverrideError(f"{key}: the check-in is already skipped ({checkin.override_reason})")
        status, note, detail = SKIPPED, f"skipped by {who}: {why}", {}
    else:
        if checkin.status not in (SKIPPED, MISSED):
            raise OverrideError(
                f"{key}: only a skipped or missed check-in can be resumed (it is {checkin.status})"
            )
        if due is not None and due < as_of:
            raise OverrideError(f"{key}: new_due_date {due} is in the past (today is {as_of})")
        if due is None and is_stale(checkin.due_on, as_of, settings.checkin_max_age_days):
            raise OverrideError(
                f"{key}: the check-in was due on {checkin.due_on}; resume it with a new_due_date"
            )
        detail = {"due_on": (due or checkin.due_on).isoformat()}
        status, note = SCHEDULED, f"resumed by {who}: {why}"
    override_checkin(
        session,
        checkin,
        f"override_{action}",
        status=status,
        note=note,
        due=due if action != SKIP else None,
        by=who,
        why=why,
        settings=settings,
        as_of=as_of,
        now=now,
        **detail,
    )
    return OverrideResult(key, action, checkin.status, checkin.due_on, why, who)
