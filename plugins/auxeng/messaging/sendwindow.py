"""Working-hours send windows: people are only messaged 09:00-17:00 on weekdays, their time.

Pure functions. A window travels with an outbox row as ``payload["send_window"]``
(:func:`window_payload`) so delivery re-checks it at send time: a message that is
late (a failed run, a retry) never goes out at night or at the weekend.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

GRID = timedelta(minutes=15)


@dataclass(frozen=True)
class SendWindow:
    """Weekdays from ``start`` (inclusive) to ``end`` (exclusive) in ``timezone``."""

    timezone: ZoneInfo
    start: time = time(9)
    end: time = time(17)

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(self.timezone)
        return local.weekday() < 5 and self.start <= local.time() < self.end

    def next_opening(self, earliest: datetime) -> datetime:
        """The first moment at or after ``earliest``, on a 15-minute grid, inside the window (UTC)."""
        local = _round_up(earliest.astimezone(self.timezone))
        day = local.date()
        for _ in range(8):
            opens = datetime.combine(day, self.start, self.timezone)
            closes = datetime.combine(day, self.end, self.timezone)
            if day.weekday() < 5 and local < closes:
                return max(local, opens).astimezone(UTC)
            day += timedelta(days=1)
            local = datetime.combine(day, self.start, self.timezone)
        raise AssertionError("a weekday always comes within 8 days")  # pragma: no cover

    def as_payload(self) -> dict[str, str]:
        return {
            "tz": self.timezone.key,
            "start": self.start.isoformat("minutes"),
            "end": self.end.isoformat("minutes"),
        }


def _round_up(moment: datetime) -> datetime:
    """Round up to the next quarter hour (a delivery run's tick)."""
    floor = moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)
    return floor if floor == moment else floor + GRID


def window_from_payload(payload: dict[str, Any]) -> SendWindow | None:
    """The send window stored with an outbox row, if any (``payload["send_window"]``)."""
    raw = payload.get("send_window") if payload else None
    if not raw:
        return None
    try:
        zone = ZoneInfo(raw["tz"])
    except (ZoneInfoNotFoundError, ValueError, KeyError):
        zone = ZoneInfo("UTC")
    return SendWindow(zone, time.fromisoformat(raw["start"]), time.fromisoformat(raw["end"]))


def person_timezone(name: str | None, default: ZoneInfo) -> ZoneInfo:
    """A person's registry time zone, or ``default`` when missing or unknown."""
    if not name:
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return default
