"""Check-in calendar invitations, read back with the same library that built them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from icalendar import Calendar

from auxeng.checkins.calendar import CANCEL, REQUEST, Attendee, build_invitation

START = datetime(2027, 2, 22, 9, 0, tzinfo=UTC)
END = datetime(2027, 2, 22, 9, 30, tzinfo=UTC)


def build(**overrides):
    arguments = {
        "uid": "checkin-ENG-2026-031@auxeng",
        "sequence": 0,
        "method": REQUEST,
        "organizer": Attendee("auxeng@example.com", "AuxEng"),
        "attendees": [
            Attendee("heidi.sauer@example.com", "Heidi Sauer"),
            Attendee("arjun.yilmaz@example.com", "Arjun Yilmaz"),
            Attendee("Arjun.Yilmaz@example.com", "Arjun again"),  # manager who is also on the team
            Attendee("bea.zhang@example.com"),
        ],
        "start": START,
        "end": END,
        "summary": "AuxEng three-month check-in: Move Customer Care Tools to Kubernetes",
        "description": "How is it going?",
        "stamp": datetime(2027, 2, 15, 8, 0, tzinfo=UTC),
    }
    arguments.update(overrides)
    return Calendar.from_ical(build_invitation(**arguments))


def test_request_has_uid_sequence_organizer_attendees_and_times():
    cal = build()
    assert str(cal["METHOD"]) == "REQUEST"
    (event,) = cal.walk("VEVENT")
    assert str(event["UID"]) == "checkin-ENG-2026-031@auxeng"
    assert int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTART") == START and event.decoded("DTEND") == END
    assert str(event["ORGANIZER"]) == "mailto:auxeng@example.com"
    attendees = [str(a) for a in event["ATTENDEE"]]
    assert attendees == [
        "mailto:heidi.sauer@example.com",
        "mailto:arjun.yilmaz@example.com",
        "mailto:bea.zhang@example.com",
    ]
    assert event["ATTENDEE"][0].params["CN"] == "Heidi Sauer"


def test_update_and_cancel_keep_the_uid():
    moved = build(sequence=1, start=START.replace(day=23), end=END.replace(day=23)).walk("VEVENT")[0]
    assert (str(moved["UID"]), int(moved["SEQUENCE"])) == ("checkin-ENG-2026-031@auxeng", 1)
    cancel = build(sequence=2, method=CANCEL)
    assert str(cancel["METHOD"]) == "CANCEL"
    assert str(cancel.walk("VEVENT")[0]["STATUS"]) == "CANCELLED"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"method": "PUBLISH"}, "REQUEST or CANCEL"),
        ({"start": datetime(2027, 2, 22, 9, 0)}, "time-zone aware"),
        ({"end": START}, "end after"),
    ],
)
def test_bad_input_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        build(**overrides)
