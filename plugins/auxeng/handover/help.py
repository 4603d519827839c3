"""Where a host team can get help after its engagement: the team's places, else the program's.

Pure: the registry's ``help_after_end`` of the program and of the team (as the store keeps
them) merged field by field, a team's field replacing the program's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FIELDS = ("text", "office_hours", "slack_channel", "docs")


@dataclass(frozen=True)
class HelpPlaces:
    """Where to get help; every field may be missing (``configured`` is False when all are)."""

    text: str | None = None
    office_hours: str | None = None
    slack_channel: str | None = None
    docs: str | None = None

    @property
    def configured(self) -> bool:
        return any(getattr(self, name) for name in FIELDS)


def help_places(program: Mapping[str, str] | None, team: Mapping[str, str] | None) -> HelpPlaces:
    """The team's ``help_after_end`` fields, each missing one taken from the program's."""
    program, team = program or {}, team or {}
    return HelpPlaces(**{name: team.get(name) or program.get(name) for name in FIELDS})
