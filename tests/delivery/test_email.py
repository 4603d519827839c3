"""Email delivery through the smtp provider's hook to a real SMTP server (aiosmtpd), as received there."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import update

from auxeng.delivery import DeliveryIncomplete, deliver
from auxeng.messaging.outbox import message_id
from auxeng.store.models import OutboxRow
from tests.delivery.conftest import NOW, email_message, make_settings, queue, rows

# A 1×1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYPj/HwADAgH/eL9GtQAAAABJRU5ErkJggg=="
)


def send_email(store, **kwargs):
    return deliver(store, now=NOW, settings=make_settings(), channels=["email"], **kwargs)


def by_recipient(server):
    return {m.rcpt_tos[0]: m for m in server.messages}


def test_messages_arrive_with_headers_both_parts_and_a_stable_message_id(store, smtp_connection, smtp_server):
    queue(store, email_message(1), email_message(2, body_html=None, payload={}))

    report = send_email(store)

    assert report.sent == {"email": 2} and report.transports == {"email": "smtp"}
    received = by_recipient(smtp_server)
    first = received["person1@example.com"]
    assert first.mail_from == "auxeng@example.com"
    msg = first.message
    assert msg["From"] == "auxeng@example.com"
    assert msg["To"] == "Person 1 <person1@example.com>"
    assert msg["Subject"] == "How did engagement 1 go?"
    assert msg["Date"] is not None and msg["Date"].datetime.tzinfo is not None
    assert msg["Message-ID"] == message_id("test:1:email", "example.com")
    assert msg["List-Unsubscribe"] == "<https://auxeng.example.com/optout/1>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text.get_content() == "Hello person 1,\n\nPlease answer: https://auxeng.example.com/s/1\n"
    assert "<a href='https://auxeng.example.com/s/1'>Answer</a>" in html.get_content()

    text_only = received["person2@example.com"].message
    assert text_only.get_content_type() == "text/plain" and text_only["To"] == "person2@example.com"

    state = rows(store)
    assert state["test:1:email"].external_id == msg["Message-ID"]
    assert state["test:1:email"].transport == "smtp"


def test_the_sender_setting_wins_over_the_connection(store, smtp_connection, smtp_server):
    queue(store, email_message(1))
    deliver(
        store,
        now=NOW,
        settings=make_settings(email_from="AuxEng Program <program@auxeng.example.org>"),
        channels=["email"],
    )
    (received,) = smtp_server.messages
    assert received.mail_from == "program@auxeng.example.org"
    assert received.message["From"] == "AuxEng Program <program@auxeng.example.org>"
    assert received.message["Message-ID"] == message_id("test:1:email", "auxeng.example.org")


def test_one_smtp_session_per_batch(store, smtp_connection, smtp_server):
    queue(store, *(email_message(n) for n in range(5)))
    send_email(store)
    assert len(smtp_server.messages) == 5
    assert smtp_server.sessions == 1
    assert smtp_server.quits == 1  # ended with QUIT, not just a closed socket

    smtp_server.clear()
    queue(store, *(email_message(n) for n in range(5, 10)))
    send_email(store, batch_size=2)
    assert len(smtp_server.messages) == 5
    assert smtp_server.sessions == 3
    assert smtp_server.quits == 3


def test_a_refused_recipient_fails_that_message_only(store, smtp_connection, smtp_server):
    smtp_server.refuse("person2@example.com")
    queue(store, email_message(1), email_message(2), email_message(3))

    report = send_email(store)

    assert sorted(by_recipient(smtp_server)) == ["person1@example.com", "person3@example.com"]
    failed = rows(store)["test:2:email"]
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.reason.startswith("smtp 550 5.1.1 <person2@example.com>: Recipient address rejected")
    assert report.failed == {"email": 1} and report.sent == {"email": 2}
    assert smtp_server.sessions == 1  # the session went on after the refusal
    report.raise_for_problems()


def test_a_temporary_refusal_leaves_the_message_pending(store, smtp_connection, smtp_server):
    smtp_server.defer("person1@example.com")
    queue(store, email_message(1), email_message(2))

    report = send_email(store)

    row = rows(store)["test:1:email"]
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.reason.startswith("smtp 451 4.7.1")
    assert report.deferred == {"email": 1} and report.sent == {"email": 1}
    with pytest.raises(DeliveryIncomplete, match="email: 1 due message"):
        report.raise_for_problems()


def test_smtp_down_then_up_delivers_every_message_exactly_once(store, smtp_connection, smtp_server):
    queue(store, *(email_message(n) for n in range(4)))
    smtp_server.stop()

    report = send_email(store)

    for row in rows(store).values():
        assert (row.status, row.attempts, row.claimed_until) == ("pending", 0, None)
        assert row.reason.startswith("not attempted: smtp: cannot connect to 127.0.0.1:")
    assert report.deferred == {"email": 4}
    with pytest.raises(DeliveryIncomplete, match=r"email: 4 due message\(s\) left pending .*cannot connect"):
        report.raise_for_problems()

    smtp_server.start()  # same port
    again = send_email(store)
    again.raise_for_problems()
    assert again.sent == {"email": 4}
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == [f"person{n}@example.com" for n in range(4)]
    assert all(r.status == "sent" and r.reason is None for r in rows(store).values())

    assert sum(send_email(store).sent.values()) == 0  # and never again
    assert len(smtp_server.messages) == 4


def test_a_dropped_connection_is_reopened_once_per_batch(store, smtp_connection, smtp_server):
    queue(store, *(email_message(n) for n in range(5)))
    smtp_server.drop_after(2)  # the server hangs up after the 2nd message

    report = send_email(store)

    assert report.sent == {"email": 5}
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == [f"person{n}@example.com" for n in range(5)]
    assert smtp_server.sessions == 2
    assert smtp_server.quits == 1  # only the reopened session could be ended politely


def test_images_are_embedded_inline(store, smtp_connection, smtp_server, tmp_path):
    chart = tmp_path / "chart.png"
    chart.write_bytes(PNG)
    payload = {"inline_images": [{"cid": "chart", "path": str(chart)}]}
    queue(store, email_message(1, body_html="<p><img src='cid:chart'></p>", payload=payload))

    send_email(store)

    msg = smtp_server.messages[0].message
    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
    ]
    image = next(p for p in msg.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<chart>" and image.get_content_disposition() == "inline"
    assert image.get_content() == PNG


def test_a_calendar_invitation_arrives_as_an_alternative_and_an_attachment(
    store, smtp_connection, smtp_server
):
    from datetime import UTC, datetime

    from icalendar import Calendar

    from auxeng.checkins.calendar import REQUEST, Attendee, build_invitation

    ics = build_invitation(
        uid="checkin-ENG-1@auxeng",
        sequence=1,
        method=REQUEST,
        organizer=Attendee("auxeng@example.com", "AuxEng"),
        attendees=[Attendee("person1@example.com", "Person 1")],
        start=datetime(2027, 2, 22, 9, tzinfo=UTC),
        end=datetime(2027, 2, 22, 9, 30, tzinfo=UTC),
        summary="Check-in",
        description="How is it going?",
        stamp=datetime(2027, 2, 15, tzinfo=UTC),
    ).decode()
    payload = {"to_name": "Person 1", "calendar": {"method": REQUEST, "ics": ics}}
    queue(store, email_message(1, payload=payload))

    send_email(store)

    msg = smtp_server.messages[0].message
    types = [p.get_content_type() for p in msg.walk()]
    assert types == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/calendar",
        "text/calendar",
    ]
    inline, attached = (p for p in msg.walk() if p.get_content_type() == "text/calendar")
    assert inline.get_param("method") == "REQUEST" and attached.get_filename() == "invite.ics"
    for part in (inline, attached):
        content = part.get_content()
        event = Calendar.from_ical(content if isinstance(content, str) else content.decode()).walk("VEVENT")[
            0
        ]
        assert (str(event["UID"]), int(event["SEQUENCE"])) == ("checkin-ENG-1@auxeng", 1)


def test_a_message_that_cannot_be_built_fails_with_the_reason(store, smtp_connection, smtp_server, tmp_path):
    queue(
        store,
        email_message(1, payload={"inline_images": [{"cid": "x", "path": str(tmp_path / "missing.png")}]}),
        email_message(2, payload={"headers": {"From": "someone-else@example.com"}}),
        email_message(3),
    )

    report = send_email(store)

    state = rows(store)
    assert state["test:1:email"].reason.startswith("cannot build the email: inline image")
    assert (
        state["test:2:email"].reason
        == "cannot build the email: payload header 'From' is set by delivery itself"
    )
    assert report.failed == {"email": 2} and report.sent == {"email": 1}


def test_images_carried_as_base64_in_the_row_are_embedded_inline(store, smtp_connection, smtp_server):
    html = "<p>This week's NPS</p><p><img src='cid:chart' alt='NPS trend'></p>"
    payload = {
        "inline_images": [
            {"cid": "chart", "filename": "nps-trend.png", "data": base64.b64encode(PNG).decode()},
            {"cid": "logo", "data": base64.encodebytes(PNG).decode()},  # line-wrapped; no file name
        ]
    }
    queue(store, email_message(1, body_html=html, payload=payload))

    report = send_email(store)

    assert report.sent == {"email": 1}
    msg = smtp_server.messages[0].message
    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "image/png",
    ]
    related = next(p for p in msg.walk() if p.get_content_type() == "multipart/related")
    html_part, chart, logo = related.iter_parts()
    assert "src='cid:chart'" in html_part.get_content()
    assert chart["Content-ID"] == "<chart>" and chart.get_filename() == "nps-trend.png"
    assert chart.get_content_disposition() == "inline"
    assert chart.get_content() == PNG
    assert logo["Content-ID"] == "<logo>" and logo.get_filename() == "logo.png"
    assert logo.get_content() == PNG


def test_an_inline_image_from_bytes_guesses_its_type_from_the_file_name():
    from auxeng.delivery import QueuedMessage, build_email

    message = QueuedMessage(
        id=1,
        dedupe_key="test:1:email",
        channel="email",
        kind="digest",
        recipient="person1@example.com",
        body_text="text",
        body_html="<img src='cid:chart'>",
        payload={"inline_images": [{"cid": "chart", "filename": "chart.gif", "data": "R0lGODlh"}]},
    )
    image = next(p for p in build_email(message, email_from="a@example.com").walk() if p["Content-ID"])
    assert image.get_content_type() == "image/gif" and image.get_content() == b"GIF89a"


def test_an_inline_image_that_cannot_be_decoded_fails_naming_its_cid(store, smtp_connection, smtp_server):
    html = "<img src='cid:chart'>"
    queue(
        store,
        email_message(
            1, body_html=html, payload={"inline_images": [{"cid": "chart", "data": "not base64!"}]}
        ),
        email_message(2, body_html=html, payload={"inline_images": [{"cid": "trend", "filename": "t.png"}]}),
        email_message(
            3, body_html=html, payload={"inline_images": [{"data": base64.b64encode(PNG).decode()}]}
        ),
        email_message(4, body_html=html, payload={"inline_images": [{"cid": "chart", "data": ""}]}),
        email_message(5),
    )

    report = send_email(store)

    state = rows(store)
    reasons = {n: state[f"test:{n}:email"].reason for n in range(1, 6)}
    assert reasons[1].startswith("cannot build the email: inline image 'chart': data is not valid base64")
    assert reasons[2] == "cannot build the email: inline image 'trend' has neither path nor data"
    assert reasons[3] == "cannot build the email: inline image without a cid (['data'])"
    assert reasons[4] == "cannot build the email: inline image 'chart': data is empty"
    assert reasons[5] is None
    assert all(state[f"test:{n}:email"].status == "failed" for n in range(1, 5))
    assert report.failed == {"email": 4} and report.sent == {"email": 1}
    assert [m.rcpt_tos[0] for m in smtp_server.messages] == ["person5@example.com"]


def test_list_unsubscribe_arrives_unencoded_on_one_line(store, smtp_connection, smtp_server):
    from auxeng.messaging import tokens
    from auxeng.messaging.outbox import unsubscribe_headers

    link = tokens.optout_url(
        "person1@example.com", public_url="https://auxeng.example.com/auxeng", key=b"k" * 32, now=NOW
    )
    assert len(link) > 78  # longer than a default-folded header line
    queue(store, email_message(1, payload={"headers": unsubscribe_headers(link)}))

    send_email(store)

    raw = smtp_server.messages[0].data
    assert f"\r\nList-Unsubscribe: <{link}>\r\n".encode() in raw
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert b"=?" not in raw.split(b"\r\n\r\n", 1)[0]  # no RFC 2047 word in the headers
    assert smtp_server.messages[0].message["List-Unsubscribe"] == f"<{link}>"


def test_a_non_ascii_attendee_round_trips_through_the_attached_invite(store, smtp_connection, smtp_server):
    from datetime import UTC, datetime

    from icalendar import Calendar

    from auxeng.checkins.calendar import REQUEST, Attendee, build_invitation

    ics = build_invitation(
        uid="checkin-ENG-2@auxeng",
        sequence=0,
        method=REQUEST,
        organizer=Attendee("auxeng@example.com", "AuxEng"),
        attendees=[Attendee("person1@example.com", "José Müller")],
        start=datetime(2027, 2, 22, 9, tzinfo=UTC),
        end=datetime(2027, 2, 22, 9, 30, tzinfo=UTC),
        summary="Check-in: Über-Migration",
        description="Wie läuft es?",
        stamp=datetime(2027, 2, 15, tzinfo=UTC),
    ).decode()
    queue(
        store,
        email_message(1, payload={"to_name": "José Müller", "calendar": {"method": REQUEST, "ics": ics}}),
    )

    send_email(store)

    msg = smtp_server.messages[0].message
    assert msg["To"] == "José Müller <person1@example.com>"
    inline, attached = (p for p in msg.walk() if p.get_content_type() == "text/calendar")
    assert attached.get_filename() == "invite.ics" and attached.get_content_charset() == "utf-8"
    for part in (inline, attached):
        event = Calendar.from_ical(part.get_content()).walk("VEVENT")[0]
        assert str(event["ATTENDEE"].params["CN"]) == "José Müller"
        assert (str(event["SUMMARY"]), str(event["DESCRIPTION"])) == (
            "Check-in: Über-Migration",
            "Wie läuft es?",
        )


def test_the_queued_bytes_go_out_and_a_row_without_them_is_built_the_same(
    store, smtp_connection, smtp_server
):
    """The bytes rendered when queueing go out; rows without them (queued before ``rendered``
    existed, or not rendered) are built at send time."""
    queue(store, email_message(1), email_message(2))
    rendered = rows(store)["test:1:email"].rendered
    with store.begin() as conn:
        conn.execute(update(OutboxRow).where(OutboxRow.dedupe_key == "test:2:email").values(rendered=None))
        # Marked, to see that the bytes stored when queueing are what goes out.
        marked = rendered.replace(b"Hello person 1,", b"Hello PERSON 1,")
        conn.execute(update(OutboxRow).where(OutboxRow.dedupe_key == "test:1:email").values(rendered=marked))

    assert send_email(store).sent == {"email": 2}

    received = by_recipient(smtp_server)
    prerendered, built = received["person1@example.com"].message, received["person2@example.com"].message
    for msg, n in ((prerendered, 1), (built, 2)):
        assert msg["Message-ID"] == message_id(f"test:{n}:email", "example.com")
        assert msg["From"] == "auxeng@example.com" and msg["Date"].datetime.tzinfo is not None
    assert [h for h, _ in prerendered.items()] == [h for h, _ in built.items()]  # same headers, same order
    assert built.get_body(("plain",)).get_content() == email_message(2).body_text
    assert prerendered.get_body(("plain",)).get_content() == email_message(1).body_text.replace(
        "Hello person 1,", "Hello PERSON 1,"
    )
