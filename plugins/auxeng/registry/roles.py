"""Who plays which part on an engagement: the AuxEng lead(s) and the host team's manager.

One rule each, used by every caller (check-ins, follow-ups, detractor alerts):

- **The AuxEng leads** are the engagement's platform-side (``auxeng``) members marked
  ``lead: true``; if none is marked, its first platform-side engineer. Nobody otherwise
  (an advisor alone is not a lead). Where one person is needed (a meeting's organizer,
  a follow-up reminder) it is the first of them, in registry order. A caller that needs
  someone when there is no lead (the program managers) says so itself.
- **The host manager** is the host team's ``manager``, else the engagement's host-side
  member with role ``manager``.
- **The host tech lead** is the engagement's first host-side member with role ``tech_lead``
  (registry order); nobody otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

PLATFORM_SIDE, HOST_SIDE = "auxeng", "host"
ENGINEER, MANAGER, TECH_LEAD = "engineer", "manager", "tech_lead"


class Member(Protocol):
    """What the rules read of an engagement member (a ``MemberRow`` or a registry ``Member``)."""

    email: str
    side: str
    role: str
    lead: bool


class Team(Protocol):
    manager_email: str | None


M = TypeVar("M", bound=Member)


def auxeng_leads(members: Iterable[M]) -> list[M]:
    """The engagement's AuxEng leads, in the order given (registry order)."""
    platform = [m for m in members if m.side == PLATFORM_SIDE]
    marked = [m for m in platform if m.lead]
    if marked:
        return marked
    return [m for m in platform if m.role == ENGINEER][:1]


def auxeng_lead(members: Iterable[M]) -> M | None:
    """The one AuxEng lead where one person is needed: the first of :func:`auxeng_leads`."""
    leads = auxeng_leads(members)
    return leads[0] if leads else None


def host_manager_email(team: Team | None, members: Sequence[Member]) -> str | None:
    """The host team's manager: the team's ``manager``, else the host-side member with role manager."""
    if team is not None and team.manager_email:
        return team.manager_email
    return next((m.email for m in members if m.side == HOST_SIDE and m.role == MANAGER), None)


def host_tech_lead(members: Iterable[M]) -> M | None:
    """The engagement's host tech lead: its first host-side member with role ``tech_lead``."""
    return next((m for m in members if m.side == HOST_SIDE and m.role == TECH_LEAD), None)
