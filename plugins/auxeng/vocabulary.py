"""The pack's words, defined once, as string enums (each member compares equal to its value)."""

from __future__ import annotations

from enum import StrEnum


class EngagementStatus(StrEnum):
    """An engagement's ``status`` in the registry (and ``auxeng_engagements.status``)."""

    ACTIVE = "active"
    CANCELLED = "cancelled"
