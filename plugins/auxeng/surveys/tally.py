"""Who was invited to each engagement's surveys and who answered: the one count the dashboard and
``python -m auxeng report`` both show, survey by survey.

An engagement has two end-of-engagement surveys, always counted apart: the **host-team survey**
(``post_engagement``, the host team's people) and the **retro** (``retro``, the platform team's own
look back). The NPS counts the host side only (:data:`auxeng.vocabulary.NPS_SURVEYS`: the
host-team survey and the three-month check-in), never the retro.

*Invited* is an invitation with status ``invited`` (a skipped one asked nobody); *answered* is an
invited one with an answer recorded.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from auxeng.vocabulary import NPS_SURVEYS, InvitationStatus, SurveyKind

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

SURVEY_NAMES = {
    SurveyKind.POST_ENGAGEMENT: "host-team survey",
    SurveyKind.RETRO: "retro",
    SurveyKind.CHECKIN: "check-in",
    SurveyKind.FOLLOW_UP: "follow-up",
}
SURVEY_ORDER = tuple(SURVEY_NAMES)
NPS_COUNTS = (
    "The NPS counts the host team's answers (the host-team survey and the three-month check-in), "
    "not the retro."
)


def survey_name(kind: str) -> str:
    """How people call survey ``kind``, with "(NPS)" when its answers count in the NPS."""
    name = SURVEY_NAMES.get(kind, kind)
    return f"{name} (NPS)" if kind in NPS_SURVEYS else name


@dataclass(frozen=True)
class Tally:
    """One engagement's invitations to one survey."""

    invited: int = 0
    answered: int = 0
    skipped: int = 0
    reminded: int = 0

    @property
    def rate(self) -> str:
        return f"{100 * self.answered / self.invited:.0f}%" if self.invited else "–"

    def __str__(self) -> str:
        return f"{self.answered} of {self.invited} answered" if self.invited else "nobody invited"


def invitation_tally(
    session: Session, engagement_keys: Collection[str] | None = None
) -> dict[tuple[str, str], Tally]:
    """(engagement key, survey kind) → its :class:`Tally`, for ``engagement_keys`` (None: every
    engagement): one grouped statement, whatever the store holds."""
    from sqlalchemy import and_, case, func, select

    from auxeng.store.models import SurveyInvitationRow as Invitation

    if engagement_keys is not None and not engagement_keys:
        return {}
    invited = Invitation.status == InvitationStatus.INVITED

    def count(condition: object) -> object:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    query = select(
        Invitation.engagement_key,
        Invitation.survey,
        count(invited),
        count(and_(invited, Invitation.answered_at.is_not(None))),
        count(Invitation.status == InvitationStatus.SKIPPED),
        count(and_(invited, Invitation.reminders_queued > 0)),
    ).group_by(Invitation.engagement_key, Invitation.survey)
    if engagement_keys is not None:
        query = query.where(Invitation.engagement_key.in_(list(engagement_keys)))
    return {(key, kind): Tally(*map(int, counts)) for key, kind, *counts in session.execute(query)}
