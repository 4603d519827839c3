"""The end-of-engagement handover on the store: who gets it, once only, opt-outs, versions, guards."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from auxeng.delivery.drain import deliver
from auxeng.handover import planning
from auxeng.handover.help import HelpPlaces, help_places
from auxeng.messaging.outbox import EMAIL, SLACK
from auxeng.store.models import OptOutRow
from auxeng.vocabulary import MessageKind, OutboxStatus, SkipCause
from tests.checkins.store_helpers import SETTINGS, load, mark_sent, moment, outbox, run
from tests.delivery.conftest import Recorder
from tests.support.registry_edits import edit_engagement

DAY = date(2026, 11, 24)  # a Tuesday: H-1 and H-3 ended on Friday 20 November
MANAGER, TECH_LEAD = "mia.manager@example.com", "tom.lead@example.com"

REGISTRY = """
program:
  name: AuxEng
  managers: [{name: Dana Ruiz, email: dana@example.com}]
  help_after_end:
    text: The platform on-call answers within a working day.
    office_hours: https://wiki.example.com/office-hours
    slack_channel: "#platform-help"
teams:
  - key: alpha
    name: Alpha <Team>
    manager: {name: Mia Manager, email: mia.manager@example.com}
    help_after_end:
      slack_channel: "#alpha-platform"
  - key: beta
    name: Beta
people:
  - {email: tom.lead@example.com, name: Tom Lead, timezone: Europe/Berlin}
engagements:
  - key: H-1
    title: Move <b>billing</b> to Kubernetes
    host_team: alpha
    start: 2026-10-01
    end: 2026-11-20
    auxeng: [{email: ana@example.com, role: engineer, lead: true}]
    host:
      - {email: tom.lead@example.com, role: tech_lead}
      - {email: eve@example.com, role: engineer}
    goals:
      business: "Invoices out <script>alert(1)</script> & on time"
  - key: H-2
    title: No one to hand over to
    host_team: beta
    start: 2026-10-01
    end: 2026-11-19
    auxeng: [{email: ana@example.com, role: engineer}]
    host: [{email: bo@example.com, role: engineer}]
  - key: H-3
    title: Anonymous one
    host_team: alpha
    start: 2026-10-01
    end: 2026-11-20
    anonymous: true
    auxeng: [{email: ana@example.com, role: engineer}]
    host: [{email: mia.manager@example.com, role: tech_lead}]
  - key: H-OLD
    title: Ended long ago
    host_team: alpha
    start: 2026-08-01
    end: 2026-09-01
    auxeng: [{email: ana@example.com, role: engineer}]
    host: [{email: tom.lead@example.com, role: tech_lead}]
"""


def handovers(store, **where):
    return outbox(store, kind=MessageKind.HANDOVER, **where)


def plan(store, day: date = DAY, **kwargs):
    return run(store, planning.plan_handovers, day, **kwargs)


@pytest.fixture
def loaded(store):
    load(store, REGISTRY, DAY)
    return store


def test_the_manager_and_the_tech_lead_each_get_one_email_and_one_slack_dm(loaded):
    report = plan(loaded)
    rows = handovers(loaded)
    assert sorted((r.engagement_key, r.recipient_email, r.channel) for r in rows) == sorted(
        [
            ("H-1", MANAGER, EMAIL),
            ("H-1", MANAGER, SLACK),
            ("H-1", TECH_LEAD, EMAIL),
            ("H-1", TECH_LEAD, SLACK),
            ("H-3", MANAGER, EMAIL),  # anonymous engagements are handed over too
            ("H-3", MANAGER, SLACK),
        ]
    )
    assert all(r.requires_ended and not r.stop_if_answered for r in rows)
    assert report.messages == 6 and report.people == 3 and report.engagements == 2
    # Each inside the recipient's working hours: Tom is in Berlin (09:00 = 08:00 UTC), Mia in UTC.
    not_before = {(r.recipient_email, r.channel): r.not_before for r in rows if r.engagement_key == "H-1"}
    assert not_before[(TECH_LEAD, EMAIL)] == moment(DAY, 8)
    assert not_before[(MANAGER, EMAIL)] == moment(DAY, 9)
    # H-3's manager is its tech lead too: one message, both roles said.
    (h3,) = handovers(loaded, engagement_key="H-3", channel=EMAIL)
    assert "as the team's manager and tech lead" in h3.body_text


def test_missing_manager_or_tech_lead_is_a_clear_warning_and_old_engagements_get_none(loaded):
    report = plan(loaded)
    assert report.warnings == [
        "H-2: no host manager (neither team beta nor a host member with role manager names one): "
        "nobody gets the manager's handover",
        "H-2: no host member with role tech_lead: nobody gets the tech lead's handover",
    ]
    assert not handovers(loaded, engagement_key="H-2")
    assert not handovers(loaded, engagement_key="H-OLD")  # ended more than 30 days before the run


def test_once_only_across_re_runs_re_detection_and_a_reopened_then_ended_engagement(loaded):
    plan(loaded)
    assert plan(loaded).messages == 0  # a re-run
    load(loaded, REGISTRY, DAY)  # a re-detection
    assert plan(loaded, date(2026, 11, 25)).messages == 0
    mark_sent(loaded, moment(DAY, 12))
    # Reopened (the end moved ahead), then ended again: whoever had it gets nothing more.
    moved = edit_engagement(REGISTRY, "H-1", "end: 2026-11-20", "end: 2026-11-26")
    load(loaded, moved, date(2026, 11, 25))
    load(loaded, moved, date(2026, 11, 27))
    report = plan(loaded, date(2026, 11, 27))
    assert (report.messages, report.already_sent) == (0, 3)
    assert len(handovers(loaded)) == 6


def test_reopened_before_delivery_is_skipped_then_handed_over_when_it_ends_again(loaded):
    plan(loaded)
    moved = edit_engagement(REGISTRY, "H-1", "end: 2026-11-20", "end: 2026-11-26")
    load(loaded, moved, date(2026, 11, 25))  # reopened: the pending handovers are no longer wanted
    transports = {EMAIL: Recorder(EMAIL), SLACK: Recorder(SLACK)}
    deliver(loaded, now=moment(date(2026, 11, 25), 10), settings=SETTINGS, transports=transports)
    reopened = handovers(loaded, engagement_key="H-1")
    assert {(r.status, r.skip_cause) for r in reopened} == {
        (OutboxStatus.SKIPPED, SkipCause.ENGAGEMENT_REOPENED)
    }
    assert "was reopened before this went out" in reopened[0].reason
    load(loaded, moved, date(2026, 11, 27))  # ended again: a new version, with the new dates
    report = plan(loaded, date(2026, 11, 27))
    again = handovers(loaded, engagement_key="H-1", status=OutboxStatus.PENDING)
    assert report.messages == 4 and len(again) == 4
    assert all(":2026-11-26:2026-11-27:" in r.dedupe_key for r in again)
    assert "From 2026-11-27 the platform team does no more work" in again[0].body_text


def test_a_corrected_end_date_replaces_the_pending_handover(loaded):
    plan(loaded)
    corrected = edit_engagement(REGISTRY, "H-1", "end: 2026-11-20", "end: 2026-11-18")
    load(loaded, corrected, date(2026, 11, 25))  # still ended: not reopened
    report = plan(loaded, date(2026, 11, 25))
    assert (report.messages, report.withdrawn) == (4, 4)
    pending = handovers(loaded, engagement_key="H-1", status=OutboxStatus.PENDING)
    assert len(pending) == 4 and all(":2026-11-18:" in r.dedupe_key for r in pending)
    assert {r.skip_cause for r in handovers(loaded, engagement_key="H-1", status=OutboxStatus.SKIPPED)} == {
        SkipCause.WITHDRAWN
    }


def test_opted_out_people_are_left_out(loaded):
    with Session(loaded) as session:
        session.add(OptOutRow(email=TECH_LEAD, opted_out_at=moment(date(2026, 11, 1)), source="web"))
        session.commit()
    report = plan(loaded)
    assert report.skipped_people == {"opted_out": 1}
    assert TECH_LEAD not in {r.recipient_email for r in handovers(loaded)}


def test_a_dry_run_queues_nothing(loaded, monkeypatch):
    from auxeng.handover import tasks

    monkeypatch.setattr("auxeng.messaging.tokens.secret_key", lambda: b"k" * 32)
    monkeypatch.setattr("auxeng.store.uow.open_store", lambda: loaded)
    result = tasks.queue_handovers(DAY, moment(DAY), dry_run=True)
    assert result["dry_run"] and result["messages_queued"] == 6
    assert handovers(loaded) == []


def test_the_message_says_the_boundary_the_help_the_check_in_and_the_goals_escaped(loaded):
    plan(loaded)
    (email,) = handovers(loaded, engagement_key="H-1", recipient_email=TECH_LEAD, channel=EMAIL)
    (slack,) = handovers(loaded, engagement_key="H-1", recipient_email=TECH_LEAD, channel=SLACK)
    assert (
        email.subject
        == "Move <b>billing</b> to Kubernetes has ended: what happens now, and where to get help"
    )
    text = email.body_text
    assert "From 2026-11-21 the platform team does no more work for Alpha <Team>" in text
    assert "- Slack: #alpha-platform" in text  # the team's channel replaces the program's
    assert "- Office hours: https://wiki.example.com/office-hours" in text  # the program's, not replaced
    assert "The platform on-call answers within a working day." in text
    assert "On 2027-02-20 we check in with you" in text  # due_date(2026-11-20, 3 months)
    assert "- Business: Invoices out <script>alert(1)</script> & on time" in text
    assert "- Technical: not recorded" in text
    html = email.body_html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; on time" in html
    assert "Move &lt;b&gt;billing&lt;/b&gt; to Kubernetes" in html and "Alpha &lt;Team&gt;" in html
    assert '<a href="https://wiki.example.com/office-hours"' in html
    assert "not recorded" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp;amp; on time" not in slack.body_text
    assert "Invoices out &lt;script&gt;alert(1)&lt;/script&gt; &amp; on time" in slack.body_text
    assert "*Move &lt;b&gt;billing&lt;/b&gt; to Kubernetes*" in slack.body_text
    assert "• Slack: #alpha-platform" in slack.body_text


def test_the_check_in_date_follows_the_check_in_and_a_skipped_one_is_said_not_planned(loaded):
    from auxeng.checkins import planning as checkins

    run(loaded, checkins.schedule_checkins, DAY)
    with Session(loaded) as session:
        from sqlalchemy import select, update

        from auxeng.store.models import CheckinRow

        session.execute(
            update(CheckinRow).where(CheckinRow.engagement_key == "H-1").values(due_on=date(2027, 3, 1))
        )
        session.execute(
            update(CheckinRow).where(CheckinRow.engagement_key == "H-3").values(status=checkins.SKIPPED)
        )
        session.commit()
        assert session.scalar(select(CheckinRow.due_on).where(CheckinRow.engagement_key == "H-1"))
    plan(loaded)
    (h1,) = handovers(loaded, engagement_key="H-1", recipient_email=MANAGER, channel=EMAIL)
    (h3,) = handovers(loaded, engagement_key="H-3", channel=EMAIL)
    assert "On 2027-03-01 we check in with you" in h1.body_text
    assert "No three-month check-in is planned for this engagement." in h3.body_text


def test_no_help_configured_is_said_explicitly(loaded):
    bare = REGISTRY.replace(
        """  help_after_end:
    text: The platform on-call answers within a working day.
    office_hours: https://wiki.example.com/office-hours
    slack_channel: "#platform-help"
""",
        "",
    ).replace(
        """    help_after_end:
      slack_channel: "#alpha-platform"
""",
        "",
    )
    load(loaded, bare, DAY)
    plan(loaded)
    (email,) = handovers(loaded, engagement_key="H-1", recipient_email=MANAGER, channel=EMAIL)
    assert "No help places are configured for Alpha <Team> or the program yet" in email.body_text


def test_help_places_take_the_teams_fields_over_the_programs():
    program = {"text": "Ask us.", "docs": "https://docs.example.com", "slack_channel": "#platform-help"}
    assert help_places(program, {"slack_channel": "#team-help"}) == HelpPlaces(
        text="Ask us.", slack_channel="#team-help", docs="https://docs.example.com"
    )
    assert help_places(None, None) == HelpPlaces() and not HelpPlaces().configured
    assert help_places(None, {"docs": "https://d.example.com"}).configured


def test_a_very_long_address_keeps_the_dedupe_key_within_the_outbox_limit():
    prefix = planning.handover_prefix("K" * 64, ("a" * 200) + "@example.com")
    assert prefix.startswith("handover:" + "K" * 64 + ":") and "aaaa" not in prefix  # the address hashed
    assert len(prefix + "2026-11-20:2026-11-21:email") <= 300
    assert planning.handover_prefix("K", "Tom@Example.com") == "handover:K:tom@example.com:"
