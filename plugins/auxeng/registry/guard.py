"""The mass-removal guard: a registry load that would remove too many engagements at once is refused.

A registry whose ``engagements:`` list was emptied by mistake, or whose rows are all
malformed (no readable key), would otherwise mark every stored engagement removed; their
invitations would be withdrawn and their check-ins cancelled. Such a load is refused as a
whole, and nothing changes, until someone confirms it (the DAG param ``allow_mass_removal``,
the CLI flag ``--allow-mass-removal``).
"""

from __future__ import annotations

from dataclasses import dataclass

from auxeng.settings import Settings

SHOWN_KEYS = 5
CONFIRM_HINT = (
    "If these removals are intended, confirm them: trigger auxeng_sync_registry with the param "
    "allow_mass_removal switched on (Trigger DAG form), or run "
    "`python -m auxeng sync-registry --allow-mass-removal`."
)


@dataclass(frozen=True)
class RemovalGuard:
    """Refuse a load that removes more than ``share`` of the live engagements and at least ``minimum``."""

    share: float = 0.2
    minimum: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> RemovalGuard:
        return cls(share=settings.registry_removal_guard_share, minimum=settings.registry_removal_guard_min)

    def refuses(self, removing: int, live: int) -> bool:
        """Whether removing ``removing`` of ``live`` live (not removed) engagements needs confirming.

        Both conditions must hold: at least ``minimum`` removals (so small programs can drop
        an engagement or two freely) and strictly more than ``share`` of the live ones (exactly
        the share is allowed). The share is compared as a quotient, so ``3 / 15`` equals ``0.2``.
        """
        if removing < self.minimum or removing <= 0 or live <= 0:
            return False
        return removing / live > self.share

    def describe(self) -> str:
        return f"more than {self.share * 100:g}% of the live engagements and at least {self.minimum}"


class MassRemovalRefused(Exception):
    """A load would remove too many engagements at once: refused, nothing was changed."""

    def __init__(
        self, *, source: str, removing: list[str], live: int, guard: RemovalGuard, problems: list[str]
    ):
        self.source = source
        self.removing = sorted(removing)
        self.live = live
        self.guard = guard
        self.problems = list(problems)
        super().__init__(self.report())

    def report(self) -> str:
        shown = ", ".join(self.removing[:SHOWN_KEYS])
        more = len(self.removing) - SHOWN_KEYS
        lines = [
            f"{self.source}: load refused: it would remove {len(self.removing)} of the {self.live} live "
            f"engagements (the guard stops {self.guard.describe()}). Nothing was changed.",
            f"Would remove: {shown}{f' and {more} more' if more > 0 else ''}.",
            "Engagements missing from the file (rows without a readable key count as missing) are "
            "marked removed: their survey invitations are withdrawn and their check-ins cancelled.",
            CONFIRM_HINT,
        ]
        if self.problems:
            lines.append(f"The registry also has {len(self.problems)} problem(s):")
            lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)
