"""Reading the host teams' Slack help channels (``auxeng.redflags.help_channels``) against the Slack stand-in.

Every test runs on SQLite and PostgreSQL (the ``store`` fixture) with a real Slack API
connection to the local stand-in; only ``sleep`` is replaced (a recorder), so rate-limit
and back-off waits cost nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.redflags.help_channels import read_help_channels
from auxeng.registry.lifecycle import mark_ended
from auxeng.registry.parse import parse_registry
from auxeng.registry.sync import sync_registry
from auxeng.settings import load_settings
from auxeng.store.models import HelpChannelReadRow, HelpRequestRow

SETTINGS = load_settings({"AUXENG_TIMEZONE": "Europe/Berlin", "AUXENG_HELP_LOOKBACK_DAYS": "90"})
BERLIN = SETTINGS.timezone
TODAY = date(2026, 9, 15)
NOW = datetime(2026, 9, 15, 7, 0, tzinfo=UTC)
HISTORY = "conversations.history"

REGISTRY = """
program:
  name: AuxEng
  managers:
    - {name: Dana Ruiz, email: dana@example.com, slack_id: U0DANA}
  stakeholders: [dana@example.com]
teams:
  - key: payments
    name: Payments
    manager: {name: Carol Moss, email: carol@example.com, slack_id: U0CAROL}
    help_channel: C0PAYMENTS
  - key: quiet
    name: Quiet
    help_channel: C0QUIET
  - key: search
    name: Search
    help_channel: C0SEARCH
  - key: nohelp
    name: No help channel
people:
  - {email: alice@example.com, name: Alice Chen, slack_id: U0ALICE}
  - {email: dan@example.com, name: Dan Ng, slack_id: U0DAN}
  - {email: erin@example.com, name: Erin Okafor, slack_id: U0ERIN}
engagements:
  - key: ENG-PAY
    title: Payments on Kubernetes
    host_team: payments
    start: 2026-06-01
    end: 2026-08-31
    auxeng: [{email: alice@example.com, role: engineer, lead: true}]
    host: [{email: dan@example.com, role: tech_lead}, {email: carol@example.com, role: manager}]
  - key: ENG-SEARCH
    title: Search reindexing
    host_team: search
    start: 2026-02-01
    end: 2026-05-01
    auxeng: [{email: alice@example.com, role: engineer, lead: true}]
    host: [{email: erin@example.com, role: tech_lead}]
  - key: ENG-QUIET-CANCELLED
    title: Cancelled before it started
    host_team: quiet
    start: 2026-07-01
    end: 2026-08-01
    status: cancelled
    auxeng: [{email: alice@example.com, role: engineer, lead: true}]
    host: [{email: erin@example.com, role: engineer}]
  - key: ENG-QUIET
    title: Not over yet
    host_team: quiet
    start: 2026-09-01
    end: 2026-12-18
    auxeng: [{email: alice@example.com, role: engineer, lead: true}]
    host: [{email: erin@example.com, role: engineer}]
"""

# Where each channel's first read starts: the end date of the latest ended engagement, or
# today − 90 days if later; midnight in Berlin.
PAYMENTS_FROM = datetime(2026, 8, 31, tzinfo=BERLIN)
SEARCH_FROM = datetime(2026, 6, 17, tzinfo=BERLIN)


def ts(moment: datetime) -> str:
    return f"{moment.timestamp():.6f}"


def asks(count: int, start: datetime, *, user: str = "U0DAN", step: timedelta = timedelta(minutes=3)):
    """``count`` top-level questions by ``user``, oldest first, from ``start`` on."""
    return [
        {"user": user, "text": f"Question {i}: the deploy is red again", "ts": ts(start + i * step)}
        for i in range(count)
    ]


class Sleeps(list):
    """A ``sleep`` that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def teams(store):
    """The store with the small registry above loaded and the ended engagements marked."""
    moment = datetime.combine(TODAY, datetime.min.time(), UTC) + timedelta(hours=5)
    registry = parse_registry(REGISTRY)
    assert not registry.problems
    sync_registry(store, registry, source="test", now=moment)
    mark_ended(store, TODAY, now=moment)
    return store


def read(store, now: datetime = NOW, **kwargs):
    kwargs.setdefault("sleep", Sleeps())
    return read_help_channels(store, settings=SETTINGS, now=now, **kwargs)


def requests(store, channel: str | None = None) -> list[HelpRequestRow]:
    with Session(store) as session:
        query = select(HelpRequestRow).order_by(HelpRequestRow.requested_at)
        if channel:
            query = query.where(HelpRequestRow.source_ref.startswith(f"{channel}:"))
        return list(session.scalars(query))


def refs(store, channel: str) -> list[str]:
    return [r.source_ref for r in requests(store, channel)]


def read_row(store, channel: str) -> HelpChannelReadRow:
    with Session(store) as session:
        return session.get(HelpChannelReadRow, channel)


def history_calls(slack_standin, channel: str | None = None):
    return [c for c in slack_standin.calls_of(HISTORY) if channel in (None, c.params.get("channel"))]


def test_every_qualifying_message_is_stored_once_over_several_pages(
    teams, slack_standin, slack_api_connection
):
    before = {
        "user": "U0DAN",
        "text": "asked before the engagement ended",
        "ts": ts(PAYMENTS_FROM - timedelta(hours=1)),
    }
    # oldest and latest are both included: a question at midnight the day it ended counts.
    at_start = {"user": "U0DAN", "text": "asked at midnight", "ts": ts(PAYMENTS_FROM)}
    seeded = [at_start, *asks(449, PAYMENTS_FROM + timedelta(days=1))]
    slack_standin.seed_history("C0PAYMENTS", [before, *seeded])
    slack_standin.seed_history("C0QUIET", asks(3, PAYMENTS_FROM + timedelta(days=1)))

    report = read(teams, page_size=100)

    stored = requests(teams, "C0PAYMENTS")
    assert sorted(r.source_ref for r in stored) == sorted(f"C0PAYMENTS:{m['ts']}" for m in seeded)
    assert {r.team_key for r in stored} == {"payments"}
    assert {r.author for r in stored} == {"dan@example.com"}
    first, second = stored[:2]
    assert (first.requested_at, first.summary) == (PAYMENTS_FROM, "asked at midnight")
    assert second.requested_at == PAYMENTS_FROM + timedelta(days=1)
    assert second.summary == "Question 0: the deploy is red again"
    assert second.link is None

    calls = history_calls(slack_standin, "C0PAYMENTS")
    assert len(calls) == 5  # 450 messages, 100 a page
    assert {c.params["oldest"] for c in calls} == {ts(PAYMENTS_FROM)}
    assert {c.params["latest"] for c in calls} == {ts(NOW)}
    assert {c.params["limit"] for c in calls} == {"100"}
    assert "cursor" not in calls[0].params and all(c.params.get("cursor") for c in calls[1:])
    # The lookback bounds the first read of a team whose engagement ended long ago.
    (search_call,) = history_calls(slack_standin, "C0SEARCH")
    assert search_call.params["oldest"] == ts(SEARCH_FROM)
    # A team whose only ended engagement was cancelled is not read yet.
    assert history_calls(slack_standin, "C0QUIET") == []

    row = read_row(teams, "C0PAYMENTS")
    assert (row.read_until, row.pass_oldest, row.pass_latest, row.pass_cursor) == (ts(NOW), None, None, None)
    assert (row.pages, row.requests_found, row.team_key, row.last_error) == (5, 450, "payments", None)
    summary = report.summary()
    assert summary["by_channel"]["C0PAYMENTS"] == {
        "team": "payments",
        "pages": 5,
        "messages": 450,
        "stored": 450,
        "skipped": {},
        "resumed": False,
        "restarted": False,
        "complete": True,
        "error": None,
    }
    assert (summary["channels"], summary["complete"], summary["stored"]) == (2, 2, 450)
    assert summary["not_read"] == {"quiet": "no ended engagement yet"}
    assert summary["errors"] == {} and summary["stopped"] is None


def test_bots_joins_thread_replies_and_the_platform_team_are_not_requests(
    teams, slack_standin, slack_api_connection
):
    at = PAYMENTS_FROM + timedelta(days=2)

    def at_minute(minute: int) -> str:
        return ts(at + timedelta(minutes=minute))

    thread = at_minute(1)
    long_text = "Our pipeline\n\nfails   <https://ci.example.com|here> " + "x" * 2000
    slack_standin.seed_history(
        "C0PAYMENTS",
        [
            {"user": "U0CAROL", "text": "Can someone look at the alerts?", "ts": at_minute(0)},
            {"user": "U0DAN", "text": "Thread start", "ts": thread, "thread_ts": thread, "reply_count": 1},
            {"user": "U0ALICE", "text": "On it", "ts": at_minute(2), "thread_ts": thread},
            {
                "user": "U0DAN",
                "text": "Also in channel",
                "ts": at_minute(3),
                "thread_ts": thread,
                "subtype": "thread_broadcast",
            },
            {"bot_id": "B0CI", "text": "Build failed", "ts": at_minute(4)},
            {"subtype": "bot_message", "username": "ci", "text": "Build failed", "ts": at_minute(5)},
            {"user": "U0ERIN", "subtype": "channel_join", "text": "<@U0ERIN> has joined", "ts": at_minute(6)},
            {"user": "U0DAN", "subtype": "channel_topic", "text": "set the topic", "ts": at_minute(7)},
            {"user": "U0ALICE", "text": "Release notes are out", "ts": at_minute(8)},
            {"user": "U0DANA", "text": "Reminder: office hours on Friday", "ts": at_minute(9)},
            {"user": "U0STRANGER", "text": long_text, "ts": at_minute(10)},
            {
                "user": "U0ERIN",
                "subtype": "file_share",
                "text": "see the log",
                "ts": at_minute(11),
                "permalink": "https://auxeng-test.slack.com/archives/C0PAYMENTS/p1",
            },
            {"text": "no author", "ts": at_minute(12)},
        ],
    )

    report = read(teams)

    stored = {r.source_ref.split(":")[1]: r for r in requests(teams, "C0PAYMENTS")}
    assert sorted(stored) == sorted([at_minute(0), thread, at_minute(10), at_minute(11)])
    assert stored[at_minute(0)].author == "carol@example.com"  # the team manager: known from the teams
    assert stored[thread].summary == "Thread start"
    stranger = stored[at_minute(10)]
    assert stranger.author == "U0STRANGER"
    assert len(stranger.summary) == 500
    assert stranger.summary.startswith("Our pipeline fails <https://ci.example.com|here> xxx")
    assert stranger.summary.endswith("…")
    assert stored[at_minute(11)].link == "https://auxeng-test.slack.com/archives/C0PAYMENTS/p1"
    assert stored[at_minute(11)].author == "erin@example.com"
    assert report.summary()["by_channel"]["C0PAYMENTS"]["skipped"] == {
        "bot": 2,
        "no_user": 1,
        "platform_team": 2,
        "subtype": 2,
        "thread_reply": 2,
    }


def test_a_rate_limit_mid_read_is_waited_out_and_nothing_is_missed(
    teams, slack_standin, slack_api_connection
):
    seeded = asks(250, PAYMENTS_FROM + timedelta(days=1))
    slack_standin.seed_history("C0PAYMENTS", seeded)
    slack_standin.fail_next(1, status=429, retry_after=7, method=HISTORY, after=1)
    sleeps = Sleeps()

    report = read(teams, page_size=100, sleep=sleeps)

    assert sleeps == [7.0]
    assert sorted(refs(teams, "C0PAYMENTS")) == sorted(f"C0PAYMENTS:{m['ts']}" for m in seeded)
    calls = history_calls(slack_standin, "C0PAYMENTS")
    assert [c.status for c in calls] == [200, 429, 200, 200]
    assert calls[1].params["cursor"] == calls[2].params["cursor"]  # the same page asked again
    assert report.summary()["by_channel"]["C0PAYMENTS"]["pages"] == 3


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"count": 4, "status": 500}, id="transient-after-retries"),
        pytest.param({"count": 1, "error": "not_in_channel"}, id="permanent"),
    ],
)
def test_a_read_stopped_on_page_three_resumes_from_its_saved_cursor(
    teams, slack_standin, slack_api_connection, caplog, fault
):
    seeded = asks(450, PAYMENTS_FROM + timedelta(days=1))
    slack_standin.seed_history("C0PAYMENTS", seeded)
    slack_standin.fail_next(method=HISTORY, after=2, **fault)

    with caplog.at_level(logging.WARNING, logger="auxeng.redflags.help_channels"):
        first = read(teams, page_size=100)

    assert first.summary()["by_channel"]["C0PAYMENTS"]["pages"] == 2
    assert first.summary()["by_channel"]["C0PAYMENTS"]["complete"] is False
    assert "C0PAYMENTS" in first.summary()["errors"]
    assert any("C0PAYMENTS" in r.getMessage() and "payments" in r.getMessage() for r in caplog.records)
    assert len(refs(teams, "C0PAYMENTS")) == 200
    row = read_row(teams, "C0PAYMENTS")
    assert row.read_until is None and row.pass_latest == ts(NOW) and row.pass_cursor
    assert row.last_error == first.channels[0].error
    saved_cursor = row.pass_cursor
    calls_before = len(history_calls(slack_standin, "C0PAYMENTS"))
    # Posted after the first pass started: not in its window, read by the pass after.
    later = {"user": "U0DAN", "text": "one more", "ts": ts(NOW + timedelta(hours=2))}
    slack_standin.seed_history("C0PAYMENTS", [later])

    next_day = NOW + timedelta(days=1)
    second = read(teams, next_day, page_size=100)

    resumed = history_calls(slack_standin, "C0PAYMENTS")[calls_before:]
    assert len(resumed) == 3  # pages 3 to 5, not the whole channel again
    assert resumed[0].params["cursor"] == saved_cursor
    assert {c.params["latest"] for c in resumed} == {ts(NOW)}  # the pass keeps its bound
    assert sorted(refs(teams, "C0PAYMENTS")) == sorted(f"C0PAYMENTS:{m['ts']}" for m in seeded)
    summary = second.summary()["by_channel"]["C0PAYMENTS"]
    assert (summary["resumed"], summary["complete"], summary["stored"]) == (True, True, 250)
    row = read_row(teams, "C0PAYMENTS")
    assert (row.read_until, row.pass_cursor, row.last_error) == (ts(NOW), None, None)
    assert (row.pages, row.requests_found) == (5, 450)

    third = read(teams, next_day, page_size=100)

    assert third.summary()["by_channel"]["C0PAYMENTS"]["stored"] == 1
    assert refs(teams, "C0PAYMENTS")[-1] == f"C0PAYMENTS:{later['ts']}"


def test_a_refused_saved_cursor_starts_the_pass_over_without_counting_twice(
    teams, slack_standin, slack_api_connection
):
    seeded = asks(450, PAYMENTS_FROM + timedelta(days=1))
    slack_standin.seed_history("C0PAYMENTS", seeded)
    slack_standin.fail_next(4, status=503, method=HISTORY, after=2)
    read(teams, page_size=100)
    calls_before = len(history_calls(slack_standin, "C0PAYMENTS"))
    slack_standin.expire_cursors()

    report = read(teams, NOW + timedelta(days=1), page_size=100)

    again = history_calls(slack_standin, "C0PAYMENTS")[calls_before:]
    assert [c.error for c in again] == ["invalid_cursor", None, None, None, None, None]
    assert "cursor" not in again[1].params
    assert {c.params["oldest"] for c in again} == {ts(PAYMENTS_FROM)}
    assert {c.params["latest"] for c in again} == {ts(NOW)}
    summary = report.summary()["by_channel"]["C0PAYMENTS"]
    assert (summary["restarted"], summary["complete"], summary["stored"]) == (True, True, 250)
    assert len(requests(teams, "C0PAYMENTS")) == 450
    assert read_row(teams, "C0PAYMENTS").requests_found == 450


def test_a_second_read_asks_only_for_newer_messages(teams, slack_standin, slack_api_connection):
    slack_standin.seed_history("C0PAYMENTS", asks(3, PAYMENTS_FROM + timedelta(days=1)))
    read(teams)
    tomorrow = NOW + timedelta(days=1)
    new = asks(2, NOW + timedelta(hours=3), user="U0CAROL")
    slack_standin.seed_history("C0PAYMENTS", new)
    calls_before = len(history_calls(slack_standin, "C0PAYMENTS"))

    report = read(teams, tomorrow)

    (call,) = history_calls(slack_standin, "C0PAYMENTS")[calls_before:]
    assert (call.params["oldest"], call.params["latest"]) == (ts(NOW), ts(tomorrow))
    summary = report.summary()["by_channel"]["C0PAYMENTS"]
    assert (summary["messages"], summary["stored"]) == (2, 2)
    assert refs(teams, "C0PAYMENTS")[-2:] == [f"C0PAYMENTS:{m['ts']}" for m in new]
    assert len(requests(teams, "C0PAYMENTS")) == 5
    assert read_row(teams, "C0PAYMENTS").read_until == ts(tomorrow)
    # Replaying an earlier day reads nothing: the channel is read past it.
    replay = read(teams, NOW)
    assert replay.channels == [] and replay.summary()["not_read"]["payments"].startswith("already read")


def test_a_missing_channel_is_recorded_and_the_others_are_still_read(
    teams, slack_standin, slack_api_connection, caplog
):
    slack_standin.missing_channels.add("C0PAYMENTS")
    slack_standin.seed_history("C0SEARCH", asks(3, SEARCH_FROM + timedelta(days=1), user="U0ERIN"))

    with caplog.at_level(logging.WARNING, logger="auxeng.redflags.help_channels"):
        report = read(teams)

    assert report.summary()["errors"] == {"C0PAYMENTS": "slack: channel_not_found"}
    assert read_row(teams, "C0PAYMENTS").last_error == "slack: channel_not_found"
    assert read_row(teams, "C0PAYMENTS").read_until is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("C0PAYMENTS" in w and "payments" in w and "channel_not_found" in w for w in warnings)
    assert len(refs(teams, "C0SEARCH")) == 3
    assert report.summary()["by_channel"]["C0SEARCH"]["complete"] is True
    assert report.stopped is None


def test_rejected_credentials_stop_the_whole_read(teams, slack_standin, slack_api_connection):
    slack_standin.seed_history("C0SEARCH", asks(3, SEARCH_FROM + timedelta(days=1), user="U0ERIN"))
    slack_standin.fail_next(1, error="invalid_auth", method=HISTORY)

    report = read(teams)

    assert len(history_calls(slack_standin)) == 1  # payments only: search is not tried
    summary = report.summary()
    assert summary["errors"] == {"C0PAYMENTS": "slack: invalid_auth"}
    assert "invalid_auth" in summary["stopped"]
    assert summary["not_read"]["search"] == "read stopped"
    assert requests(teams) == []


def test_without_a_slack_api_connection_nothing_is_read_and_a_warning_says_why(teams, slack_standin, caplog):
    slack_standin.seed_history("C0PAYMENTS", asks(3, PAYMENTS_FROM + timedelta(days=1)))

    with caplog.at_level(logging.WARNING, logger="auxeng.redflags.help_channels"):
        report = read(teams)

    assert report.channels == []
    summary = report.summary()
    assert "slack_api_default" in summary["stopped"]
    assert summary["not_read"] == {
        "payments": "no Slack API connection",
        "search": "no Slack API connection",
        "quiet": "no ended engagement yet",
    }
    assert (summary["channels"], summary["stored"]) == (0, 0)
    assert any("slack_api_default" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert slack_standin.calls == [] and requests(teams) == []
