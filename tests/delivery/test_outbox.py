"""The outbox: idempotent queuing, and the guards that skip messages no longer wanted (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from auxeng.delivery import deliver
from tests.delivery.conftest import (
    DUE,
    NOW,
    Recorder,
    add_engagement,
    add_invitation,
    email_message,
    invitation_status,
    make_settings,
    opt_out,
    queue,
    rows,
    slack_message,
)


def run(store, **kwargs):
    email, slack = Recorder("email"), Recorder("slack")
    report = deliver(
        store, now=NOW, settings=make_settings(), transports={"email": email, "slack": slack}, **kwargs
    )
    return report, email, slack


def test_enqueue_is_idempotent_per_dedupe_key(store):
    assert queue(store, email_message(1), email_message(2)) == 2
    assert queue(store, email_message(1), email_message(2)) == 0
    changed = email_message(1, subject="A different subject", recipient="someone-else@example.com")
    assert queue(store, changed, email_message(3)) == 1

    queued = rows(store)
    assert sorted(queued) == ["test:1:email", "test:2:email", "test:3:email"]
    first = queued["test:1:email"]
    assert (first.subject, first.recipient) == ("How did engagement 1 go?", "person1@example.com")
    assert first.status == "pending" and first.attempts == 0


def test_enqueue_lowercases_the_person_behind_a_message(store):
    queue(store, email_message(1, recipient_email="Person1@Example.COM"))
    assert rows(store)["test:1:email"].recipient_email == "person1@example.com"


def test_a_sent_message_is_never_sent_again(store):
    queue(store, email_message(1), slack_message(2, "U0TWO"))
    report, _, _ = run(store)
    assert (report.sent["email"], report.sent["slack"]) == (1, 1)
    assert queue(store, email_message(1)) == 0  # a planner running again changes nothing

    again, email2, slack2 = run(store)
    assert email2.sent == slack2.sent == []
    assert sum(again.sent.values()) == 0
    row = rows(store)["test:1:email"]
    assert (row.status, row.transport, row.external_id, row.attempts) == (
        "sent",
        "recorder",
        f"rec-{row.id}",
        1,
    )
    assert row.sent_at is not None and row.claimed_until is None


def test_opted_out_recipients_are_skipped_with_the_date(store):
    queue(
        store,
        email_message(1),
        slack_message(1, "U0ONE"),
        email_message(2),
        email_message(3, not_before=NOW + timedelta(days=2)),  # not due yet: skipped as well
    )
    opt_out(store, "Person1@example.com", datetime(2026, 11, 20, 23, 30, tzinfo=UTC))
    opt_out(store, "person3@example.com", datetime(2026, 11, 21, 8, 0, tzinfo=UTC))

    report, email, slack = run(store)

    assert email.recipients == ["person2@example.com"]
    assert slack.sent == []
    state = rows(store)
    for key, day in [
        ("test:1:email", "2026-11-20"),
        ("test:1:slack", "2026-11-20"),
        ("test:3:email", "2026-11-21"),
    ]:
        assert (state[key].status, state[key].reason) == ("skipped", f"opted out on {day}")
    assert report.skipped == {"email": 2, "slack": 1}
    assert report.skipped_by == {"opted_out": 3}
    assert report.summary()["skipped"] == {"email": 2, "slack": 1}


def test_answered_invitations_stop_their_reminders_only(store):
    add_engagement(store, "ENG-1")
    answered = add_invitation(store, "ENG-1", "person1@example.com", answered=True)
    open_ = add_invitation(store, "ENG-1", "person2@example.com")
    queue(
        store,
        email_message(1, kind="survey_reminder", invitation_id=answered, stop_if_answered=True),
        email_message(2, kind="survey_reminder", invitation_id=open_, stop_if_answered=True),
        # A message about the same invitation that does not stop when answered (e.g. a thank-you).
        email_message(3, kind="survey_thanks", invitation_id=answered),
    )

    report, email, _ = run(store)

    assert sorted(email.recipients) == ["person2@example.com", "person3@example.com"]
    skipped = rows(store)["test:1:email"]
    assert (skipped.status, skipped.reason) == ("skipped", "answered before this reminder went out")
    assert report.skipped_by == {"answered": 1}


def test_messages_needing_an_ended_engagement_are_skipped_when_it_is_not(store):
    add_engagement(store, "ENG-OK")
    add_engagement(store, "ENG-CANCELLED", status="cancelled")
    add_engagement(store, "ENG-REOPENED", ended=False)
    add_engagement(store, "ENG-REMOVED", removed=True)
    queue(
        store,
        *(
            email_message(n, engagement_key=key, requires_ended=True)
            for n, key in enumerate(["ENG-OK", "ENG-CANCELLED", "ENG-REOPENED", "ENG-REMOVED", "ENG-GONE"])
        ),
        # Not marked requires_ended: a reopened engagement does not stop it.
        email_message(9, engagement_key="ENG-REOPENED"),
    )

    report, email, _ = run(store)

    assert sorted(email.recipients) == ["person0@example.com", "person9@example.com"]
    reasons = {k: (r.status, r.reason) for k, r in rows(store).items()}
    assert reasons["test:1:email"] == (
        "skipped",
        "engagement ENG-CANCELLED was cancelled before this went out",
    )
    assert reasons["test:2:email"] == ("skipped", "engagement ENG-REOPENED was reopened before this went out")
    assert reasons["test:3:email"] == ("skipped", "engagement ENG-REMOVED was removed before this went out")
    assert reasons["test:4:email"] == ("skipped", "engagement ENG-GONE is not in the store")
    assert report.skipped_by == {
        "engagement_cancelled": 1,
        "engagement_reopened": 1,
        "engagement_removed": 1,
        "engagement_unknown": 1,
    }


def test_withdrawn_invitations_become_void_unless_something_went_out(store):
    add_engagement(store, "ENG-1", ended=False)  # reopened after the invitations were queued
    withdrawn = add_invitation(store, "ENG-1", "person1@example.com")
    partly_sent = add_invitation(store, "ENG-1", "person2@example.com")
    opted = add_invitation(store, "ENG-1", "person3@example.com")
    invite = {"kind": "survey_invite", "engagement_key": "ENG-1", "requires_ended": True}
    queue(
        store,
        email_message(1, invitation_id=withdrawn, **invite),
        slack_message(1, "U0ONE", invitation_id=withdrawn, **invite),
        email_message(2, invitation_id=partly_sent, **{**invite, "requires_ended": False}),
        slack_message(2, "U0TWO", invitation_id=partly_sent, **invite),
        email_message(3, invitation_id=opted, **invite),
    )
    opt_out(store, "person3@example.com", NOW - timedelta(days=1))

    report, email, slack = run(store)

    assert email.recipients == ["person2@example.com"]  # its email did not need the engagement ended
    assert slack.sent == []
    status, reason = invitation_status(store, withdrawn)
    assert (status, reason) == ("void", "engagement ENG-1 was reopened before this went out")
    assert invitation_status(store, partly_sent)[0] == "invited"  # one of its messages went out
    assert invitation_status(store, opted)[0] == "invited"  # opted out: not withdrawn by the engagement
    assert report.voided_invitations == 1

    # Running again changes nothing.
    again, _, _ = run(store)
    assert again.voided_invitations == 0 and sum(again.skipped.values()) == 0


def test_guards_and_sends_stay_within_the_channels_and_kinds_asked_for(store):
    queue(
        store,
        email_message(1, kind="survey_invite"),
        email_message(2, kind="survey_reminder"),
        slack_message(3, "U0THREE", kind="survey_invite"),
    )
    opt_out(store, "person3@example.com", NOW - timedelta(days=1))

    report, email, slack = run(store, channels=["email"], kinds=["survey_reminder"])

    assert email.recipients == ["person2@example.com"]
    assert slack.opened == 0
    state = rows(store)
    assert state["test:1:email"].status == "pending"
    assert state["test:3:slack"].status == "pending"  # opted out, but outside this run's scope
    assert report.sent == {"email": 1}


def test_rows_not_due_wait_for_their_time(store):
    queue(store, email_message(1), email_message(2, not_before=NOW + timedelta(minutes=1)))

    report, email, _ = run(store)
    assert email.recipients == ["person1@example.com"]
    assert report.not_due == {"email": 1}

    later = deliver(
        store,
        now=NOW + timedelta(minutes=1),
        settings=make_settings(),
        transports={"email": (recorder := Recorder("email")), "slack": Recorder("slack")},
    )
    assert recorder.recipients == ["person2@example.com"]
    assert later.not_due == {}


def test_due_order_is_oldest_first(store):
    queue(
        store,
        email_message(1, not_before=DUE),
        email_message(2, not_before=DUE - timedelta(hours=3)),
        email_message(3, not_before=DUE - timedelta(hours=1)),
    )
    _, email, _ = run(store, batch_size=2)
    assert email.recipients == ["person2@example.com", "person3@example.com", "person1@example.com"]
    assert email.opened == 2  # one session per batch


def test_void_follows_the_skip_cause_not_the_reason_text(store):
    """Which invitations become void is decided by the stored cause code: rewording a reason
    (or a withdrawal whose text happens to start with "engagement") changes nothing."""
    from sqlalchemy import update

    from auxeng.store.db import session_scope
    from auxeng.store.models import OutboxRow
    from auxeng.surveys.invitations import void_withdrawn
    from auxeng.vocabulary import SkipCause

    add_engagement(store, "ENG-1")
    by_cause = add_invitation(store, "ENG-1", "person1@example.com")
    by_text = add_invitation(store, "ENG-1", "person2@example.com")
    invite = {"kind": "survey_invite", "engagement_key": "ENG-1", "requires_ended": True}
    queue(
        store,
        email_message(1, invitation_id=by_cause, **invite),
        email_message(2, invitation_id=by_text, **invite),
    )
    with session_scope(store) as session:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.invitation_id == by_cause)
            .values(status="skipped", skip_cause=SkipCause.ENGAGEMENT_CANCELLED, reason="reworded: gone")
        )
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.invitation_id == by_text)
            .values(
                status="skipped",
                skip_cause=SkipCause.WITHDRAWN,
                reason="engagement ENG-1 was cancelled before this went out",
            )
        )
    with store.begin() as conn:
        assert void_withdrawn(conn, NOW) == 1
    assert invitation_status(store, by_cause) == ("void", "reworded: gone")
    assert invitation_status(store, by_text) == ("invited", None)


def test_every_guard_stores_its_cause_code(store):
    add_engagement(store, "ENG-GONE", removed=True)
    add_engagement(store, "ENG-X", status="cancelled")
    add_engagement(store, "ENG-OPEN", ended=False)
    answered = add_invitation(store, "ENG-X", "person5@example.com", answered=True)
    needs_end = {"kind": "survey_invite", "requires_ended": True}
    queue(
        store,
        email_message(1, engagement_key="ENG-GONE", **needs_end),
        email_message(2, engagement_key="ENG-X", **needs_end),
        email_message(3, engagement_key="ENG-OPEN", **needs_end),
        email_message(4, engagement_key="ENG-NONE", **needs_end),
        email_message(5, kind="survey_reminder", invitation_id=answered, stop_if_answered=True),
        email_message(6, kind="survey_reminder"),
    )
    opt_out(store, "person6@example.com", NOW - timedelta(days=1))

    run(store)

    causes = {key.split(":")[1]: (row.status, row.skip_cause) for key, row in rows(store).items()}
    assert causes == {
        "1": ("skipped", "engagement_removed"),
        "2": ("skipped", "engagement_cancelled"),
        "3": ("skipped", "engagement_reopened"),
        "4": ("skipped", "engagement_unknown"),
        "5": ("skipped", "answered"),
        "6": ("skipped", "opted_out"),
    }
