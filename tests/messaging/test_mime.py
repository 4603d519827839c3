"""An email rendered when queued, completed when sent, is the message built at send time, byte for byte."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import pytest

from auxeng.messaging import mime
from auxeng.messaging.outbox import enqueue
from auxeng.store.db import session_scope
from auxeng.store.models import OutboxRow
from tests.delivery.conftest import NOW, email_message, slack_message

DATE = datetime(2026, 12, 6, 13, 0, 5, tzinfo=UTC)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(64))).decode()
BOUNDARY = re.compile(rb"={15}\d+==")  # a multipart boundary: random each time a message is built

MESSAGES = {
    "text and html": email_message(1),
    "text only, no headers": email_message(2, body_html=None, payload={}),
    "non-ASCII name, subject and body, lines starting with From": email_message(
        3,
        subject="Ünïcode réponse " * 8,
        body_text="From here on, merci é\n" * 40,
        payload={"to_name": 'Zoë, "Q" Ärger'},
    ),
    "calendar invitation": email_message(
        4, payload={"calendar": {"method": "REQUEST", "ics": "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"}}
    ),
    "inline image carried as data": email_message(
        5, payload={"inline_images": [{"cid": "chart", "filename": "c.png", "data": PNG}]}
    ),
}
SENDERS = ["AuxEng <auxeng@example.com>", "Équipe Ops <ops@example.org>", "plain@example.net"]


@pytest.mark.parametrize("sender", SENDERS)
@pytest.mark.parametrize("name", list(MESSAGES))
def test_rendered_bytes_completed_at_send_time_are_the_built_message(name, sender):
    message = MESSAGES[name]
    rendered = mime.render(message)
    assert rendered is not None and b"\r\nDate: " not in rendered and not rendered.startswith(b"From: ")

    sent = mime.wire_bytes(
        rendered,
        sender=mime.from_line(sender),
        dedupe_key=message.dedupe_key,
        domain=mime.address_domain(sender),
        date=DATE,
    )

    built = mime.flatten(mime.build_email(message, email_from=sender, date=DATE))
    assert BOUNDARY.sub(b"B", sent) == BOUNDARY.sub(b"B", built)


def test_emails_that_are_built_at_send_time_instead_are_not_rendered():
    assert mime.render(email_message(1, recipient="zoë@example.com")) is None  # needs SMTPUTF8
    image_file = {"inline_images": [{"cid": "chart", "path": "/tmp/chart.png"}]}
    assert mime.render(email_message(2, payload=image_file)) is None  # the file is read when sent
    reserved = {"headers": {"From": "someone-else@example.com"}}
    assert mime.render(email_message(3, payload=reserved)) is None  # fails when sent, as before


def test_bytes_not_rendered_here_are_refused():
    with pytest.raises(ValueError, match="not a rendered email"):
        mime.wire_bytes(
            b"To: x@example.com\r\n\r\nhi\r\n",
            sender=mime.from_line(SENDERS[0]),
            dedupe_key="k",
            domain="example.com",
            date=DATE,
        )


def test_enqueue_stores_the_bytes_of_emails_only(store):
    with session_scope(store) as session:
        enqueue(session, [email_message(1), slack_message(2, "U123")], now=NOW)
    with session_scope(store) as session:
        stored = {r.channel: r.rendered for r in session.query(OutboxRow)}
    assert stored["slack"] is None
    assert BOUNDARY.sub(b"B", stored["email"]) == BOUNDARY.sub(b"B", mime.render(email_message(1)))
