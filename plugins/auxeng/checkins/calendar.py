"""Calendar invitations (``.ics``) for check-ins, built with the ``icalendar`` library.

One stable UID per check-in; a moved meeting is the same UID with a higher
SEQUENCE, a cancelled one ``METHOD:CANCEL``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

REQUEST, CANCEL = "REQUEST", "CANCEL"
PRODID = "-//AuxEng follow-ups//check-ins//EN"


@dataclass(frozen=True)
class Attendee:
    email: str
    name: str | None = None


def build_invitation(
    *,
    uid: str,
    sequence: int,
    method: str,
    organizer: Attendee,
    attendees: Sequence[Attendee],
    start: datetime,
    end: datetime,
    summary: str,
    description: str,
    stamp: datetime,
) -> bytes:
    """The ``.ics`` bytes of one meeting request (``REQUEST``) or cancellation (``CANCEL``)."""
    from icalendar import Calendar, Event, vCalAddress, vText

    if method not in (REQUEST, CANCEL):
        raise ValueError(f"method must be {REQUEST} or {CANCEL}, not {method!r}")
    if start.tzinfo is None or end.tzinfo is None or stamp.tzinfo is None:
        raise ValueError("meeting times must be time-zone aware")
    if end <= start:
        raise ValueError("a meeting must end after it starts")

    def address(person: Attendee, **params: str) -> vCalAddress:
        value = vCalAddress(f"mailto:{person.email}")
        if person.name:
            value.params["CN"] = vText(person.name)
        for key, param in params.items():
            value.params[key] = vText(param)
        return value

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", method)
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("description", description)
    event.add("status", "CANCELLED" if method == CANCEL else "CONFIRMED")
    event.add("organizer", address(organizer))
    seen: set[str] = set()
    for person in attendees:
        if person.email.lower() in seen:
            continue
        seen.add(person.email.lower())
        event.add("attendee", address(person, ROLE="REQ-PARTICIPANT", PARTSTAT="NEEDS-ACTION", RSVP="TRUE"))
    cal.add_component(event)
    return cal.to_ical()
