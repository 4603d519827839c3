"""Timing as people live it: ``dag.test()`` stories over consecutive days, on SQLite and PostgreSQL,
against a real SMTP server and the Slack stand-in.

The program runs on Berlin time (its daily DAGs at 08:00 and, as an asset-triggered re-run would,
at 00:30 Berlin); outbox deliveries run at 00:15, 07:15 and 16:15 UTC, when working days begin in
Tokyo, Berlin and Los Angeles. Every day is asserted in the recipient's own time zone:

(a) an engagement ending on a Friday: invitations held to Monday in Berlin, reminders on the
    Thursday and the Monday after (3 and 7 days after the invitation arrived, not after it was
    queued on the Saturday);
(b) recipients in Los Angeles and Tokyo: reminders 3 and 7 local days after each one's invitation;
(c) an SMTP outage holds an email-only invitation two days: its reminders and closing date move
    with it;
(d) a host team answering its check-in "comfort 2 of 5, help needed regularly" the day after it
    was due: the program managers (host manager copied) are alerted the next morning, once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from auxeng.store.db import get_engine, session_scope
from auxeng.store.models import CheckinRow, FlagRow, SurveyInvitationRow
from tests.support.dagruns import at
from tests.web.conftest import KEY_TEXT, live, registry_store, web_app  # noqa: F401

pytestmark = pytest.mark.airflow

BERLIN, LOS_ANGELES, TOKYO = (
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/Los_Angeles"),
    ZoneInfo("Asia/Tokyo"),
)

REGISTRY = """
program:
  name: AuxEng
  managers:
    - {name: Dana Ruiz, email: dana.ruiz@example.com, slack_id: U0DANA}
    - {name: Sam Okoro, email: sam.okoro@example.com, slack_id: U0SAMOK}
  stakeholders: [dana.ruiz@example.com]
teams:
  - key: atlas
    name: Atlas
    org: Core
    manager: {name: Olga Dahl, email: olga.dahl@example.com, slack_id: U0OLGA}
  - key: orbit
    name: Orbit
    org: Core
    manager: {name: Omar Lind, email: omar.lind@example.com, slack_id: U0OMAR}
  - key: quill
    name: Quill
    org: Core
    manager: {name: Quinn Berg, email: quinn.berg@example.com, slack_id: U0QUINN}
  - key: harbor
    name: Harbor
    org: Core
    manager: {name: Hugo Weiss, email: hugo.weiss@example.com, slack_id: U0HUGO}
people:
  - {email: dana.ruiz@example.com, name: Dana Ruiz, slack_id: U0DANA, timezone: Europe/Berlin}
  - {email: sam.okoro@example.com, name: Sam Okoro, slack_id: U0SAMOK, timezone: Europe/Berlin}
  - {email: alice.chen@example.com, name: Alice Chen, slack_id: U0ALICE, timezone: Europe/Berlin}
  - {email: bruno.diaz@example.com, name: Bruno Diaz, slack_id: U0BRUNO, timezone: Europe/Berlin}
  - {email: carla.nunez@example.com, name: Carla Nunez, slack_id: U0CARLA, timezone: Europe/Berlin}
  - {email: dora.kim@example.com, name: Dora Kim, slack_id: U0DORA, timezone: Europe/Berlin}
  - {email: hanna.vogt@example.com, name: Hanna Vogt, slack_id: U0HANNA, timezone: Europe/Berlin}
  - {email: jonas.falk@example.com, name: Jonas Falk, slack_id: U0JONAS, timezone: Europe/Berlin}
  - {email: luis.ortega@example.com, name: Luis Ortega, slack_id: U0LUIS, timezone: America/Los_Angeles}
  - {email: yuki.sato@example.com, name: Yuki Sato, slack_id: U0YUKI, timezone: Asia/Tokyo}
  - {email: emil.brandt@example.com, name: Emil Brandt, timezone: Europe/Berlin}
  - {email: olga.dahl@example.com, name: Olga Dahl, slack_id: U0OLGA, timezone: Europe/Berlin}
  - {email: omar.lind@example.com, name: Omar Lind, slack_id: U0OMAR, timezone: America/Los_Angeles}
  - {email: quinn.berg@example.com, name: Quinn Berg, slack_id: U0QUINN, timezone: Europe/Berlin}
  - {email: hugo.weiss@example.com, name: Hugo Weiss, slack_id: U0HUGO, timezone: Europe/Berlin}
  - {email: ida.roth@example.com, name: Ida Roth, slack_id: U0IDA, timezone: Europe/Berlin}
engagements:
  - key: ENG-FRIDAY
    title: "Atlas on Kubernetes"
    host_team: atlas
    start: 2026-04-13
    end: 2026-06-05
    auxeng:
      - {email: alice.chen@example.com, role: engineer, lead: true}
    host:
      - {email: hanna.vogt@example.com, role: engineer}
      - {email: jonas.falk@example.com, role: tech_lead}
  - key: ENG-PACIFIC
    title: "Orbit event pipeline"
    host_team: orbit
    start: 2026-04-13
    end: 2026-06-07
    auxeng:
      - {email: bruno.diaz@example.com, role: engineer, lead: true}
    host:
      - {email: luis.ortega@example.com, role: engineer}
      - {email: yuki.sato@example.com, role: tech_lead}
  - key: ENG-OUTAGE
    title: "Quill search"
    host_team: quill
    start: 2026-04-13
    end: 2026-06-08
    auxeng:
      - {email: carla.nunez@example.com, role: engineer, lead: true}
    host:
      - {email: emil.brandt@example.com, role: engineer}
  - key: ENG-CHECKIN
    title: "Harbor CI/CD"
    host_team: harbor
    start: 2026-01-12
    end: 2026-03-03
    auxeng:
      - {email: dora.kim@example.com, role: engineer, lead: true}
    host:
      - {email: ida.roth@example.com, role: tech_lead}
      - {email: hugo.weiss@example.com, role: manager}
"""

INVITE = 'How did "{title}" go?'


@pytest.fixture
def story(pack_env, smtp_connection, slack_api_connection, slack_standin, monkeypatch):
    """The pack on Berlin time with the story registry; every person but Emil is on Slack."""
    pack_env.write_text(REGISTRY)
    monkeypatch.setenv("AUXENG_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("AUXENG_SECRET_KEY", KEY_TEXT)
    monkeypatch.setenv("AUXENG_PUBLIC_URL", "https://airflow.example.com/auxeng")
    return pack_env


SLACK_IDS = {
    "U0HANNA": "hanna.vogt@example.com",
    "U0JONAS": "jonas.falk@example.com",
    "U0LUIS": "luis.ortega@example.com",
    "U0YUKI": "yuki.sato@example.com",
    "U0DANA": "dana.ruiz@example.com",
    "U0SAMOK": "sam.okoro@example.com",
    "U0HUGO": "hugo.weiss@example.com",
    "U0IDA": "ida.roth@example.com",
}


class Arrivals:
    """What reached people, and during which run: each new email at the SMTP server and each new
    Slack post at the stand-in is stamped with the moment of the DAG run that sent it."""

    def __init__(self, dags, smtp_server, slack_standin) -> None:
        self.dags, self.smtp, self.slack = dags, smtp_server, slack_standin
        self.mails = self.posts = 0
        self.log: list[tuple[datetime, str, str, str]] = []  # (moment, channel, person, kind)

    def run(self, dag_id: str, moment: datetime, *, may_fail: bool = False) -> None:
        dag = self.dags.dags[dag_id]
        for task in dag.tasks:
            task.retries = 0
        state = dag.test(logical_date=moment.astimezone(UTC)).state
        assert state == "success" or may_fail, f"{dag_id} at {moment}: {state}"
        for item in self.smtp.messages[self.mails :]:
            self.log.append((moment, "email", item.rcpt_tos[0], _kind(item.message["Subject"])))
        self.mails = len(self.smtp.messages)
        for post in self.slack.posts[self.posts :]:
            text = post.text or ""
            self.log.append((moment, "slack", SLACK_IDS.get(post.channel or "", post.channel), _kind(text)))
        self.posts = len(self.slack.posts)

    def days(self, person: str, kind: str, zone: ZoneInfo, channel: str | None = None) -> list[date]:
        """The local days on which ``person`` got messages of ``kind`` (each day once)."""
        return sorted(
            {
                moment.astimezone(zone).date()
                for moment, via, who, what in self.log
                if who == person and what == kind and channel in (None, via)
            }
        )

    def count(self, person: str, kind: str, channel: str) -> int:
        return sum(1 for _, via, who, what in self.log if who == person and what == kind and via == channel)

    def day(self, day: date, *, smtp_down: bool = False) -> None:
        """One day (program time Berlin): surveys at 00:30 and 08:00 Berlin, deliveries when the
        working day begins in Tokyo (00:15 UTC), Berlin (07:15 UTC) and Los Angeles (16:15 UTC)."""
        moments = [
            ("auxeng_send_surveys", datetime.combine(day, time(0, 30), BERLIN)),
            ("auxeng_deliver_outbox", at(day, 0, 15)),
            ("auxeng_detect_ended", datetime.combine(day, time(5, 30), BERLIN)),
            ("auxeng_send_surveys", datetime.combine(day, time(8), BERLIN)),
            ("auxeng_deliver_outbox", at(day, 7, 15)),
            ("auxeng_deliver_outbox", at(day, 16, 15)),
        ]
        for dag_id, moment in sorted(moments, key=lambda m: m[1]):
            self.run(dag_id, moment, may_fail=smtp_down)


def _kind(text: str) -> str:
    """What a message is, from its email subject or Slack text."""
    lowered = text.lower()
    if re.match(r"reminder( \(\d+\))?:", lowered) or "a short reminder" in lowered:
        return "reminder"
    if lowered.startswith(("[warning]", "[critical]", ":warning:", ":rotating_light:")):
        return "alert"
    if " go?" in lowered or "how likely are you to recommend" in lowered or "three months" in lowered:
        return "invitation"
    return "other"


@pytest.fixture
def arrivals(dags, story, smtp_server, slack_standin) -> Arrivals:
    return Arrivals(dags, smtp_server, slack_standin)


def sent_days(store_url, engagement: str, zone: ZoneInfo) -> dict[str, dict[str, list[date]]]:
    """The outbox's record of each invitation and reminder to each person of ``engagement``: the
    calendar days, in ``zone``, on which they went out (email and Slack alike)."""
    from auxeng.store.models import OutboxRow

    with session_scope(get_engine(store_url)) as session:
        rows = session.execute(
            select(OutboxRow.recipient_email, OutboxRow.kind, OutboxRow.sent_at).where(
                OutboxRow.engagement_key == engagement,
                OutboxRow.kind.in_(("survey_invite", "survey_reminder")),
                OutboxRow.status == "sent",
            )
        ).all()
    days: dict[str, dict[str, list[date]]] = defaultdict(lambda: defaultdict(list))
    for email, kind, sent_at in rows:
        days[email][kind].append(sent_at.astimezone(zone).date())
    return {email: {kind: sorted(set(d)) for kind, d in kinds.items()} for email, kinds in days.items()}


def invitation(store_url, engagement: str, email: str) -> SurveyInvitationRow:
    with session_scope(get_engine(store_url)) as session:
        row = session.scalar(
            select(SurveyInvitationRow).where(
                SurveyInvitationRow.engagement_key == engagement, SurveyInvitationRow.email == email
            )
        )
        session.expunge(row)
        return row


def test_a_friday_ending_invites_on_monday_and_reminds_on_thursday_and_the_next_monday(arrivals, store_url):
    arrivals.run("auxeng_sync_registry", at(date(2026, 6, 6), 2))
    for offset in range(11):  # Saturday 6 June (the day after the end) to Tuesday 16 June
        arrivals.day(date(2026, 6, 6) + timedelta(days=offset))

    for person in ("hanna.vogt@example.com", "jonas.falk@example.com"):
        # queued on Saturday, held to Monday 09:00 in Berlin: that is when the invitation arrived
        assert arrivals.days(person, "invitation", BERLIN) == [date(2026, 6, 8)], person
        # 3 and 7 days after Monday: Thursday and the next Monday (not Tuesday and Saturday→Monday)
        assert arrivals.days(person, "reminder", BERLIN) == [date(2026, 6, 11), date(2026, 6, 15)], person
        for kind, expected in (("invitation", 1), ("reminder", 2)):
            assert arrivals.count(person, kind, "email") == arrivals.count(person, kind, "slack") == expected
        assert sent_days(store_url, "ENG-FRIDAY", BERLIN)[person] == {
            "survey_invite": [date(2026, 6, 8)],
            "survey_reminder": [date(2026, 6, 11), date(2026, 6, 15)],
        }
        row = invitation(store_url, "ENG-FRIDAY", person)
        assert (row.invited_on, row.sent_at.astimezone(BERLIN).date()) == (date(2026, 6, 6), date(2026, 6, 8))
        assert row.closes_at.astimezone(BERLIN).date() == date(2026, 6, 29)  # 21 days from Monday


def test_los_angeles_and_tokyo_are_reminded_three_and_seven_local_days_after_their_invitation(
    arrivals, store_url
):
    arrivals.run("auxeng_sync_registry", at(date(2026, 6, 8), 2))
    for offset in range(10):  # Monday 8 June (the day after the Sunday end) to Wednesday 17 June
        arrivals.day(date(2026, 6, 8) + timedelta(days=offset))

    luis = "luis.ortega@example.com"
    assert arrivals.days(luis, "invitation", LOS_ANGELES) == [date(2026, 6, 8)]  # Monday, his morning
    # Thursday and the next Monday in Los Angeles: not Wednesday, which Thursday midnight in Berlin is
    assert arrivals.days(luis, "reminder", LOS_ANGELES) == [date(2026, 6, 11), date(2026, 6, 15)]

    yuki = "yuki.sato@example.com"
    assert arrivals.days(yuki, "invitation", TOKYO) == [date(2026, 6, 8)]  # Monday afternoon, hers
    assert arrivals.days(yuki, "reminder", TOKYO) == [date(2026, 6, 11), date(2026, 6, 15)]
    for person, zone in ((luis, LOS_ANGELES), (yuki, TOKYO)):
        invited = arrivals.days(person, "invitation", zone)[0]
        assert [(day - invited).days for day in arrivals.days(person, "reminder", zone)] == [3, 7]
        assert arrivals.count(person, "reminder", "email") == arrivals.count(person, "reminder", "slack") == 2


def test_an_smtp_outage_moves_the_reminders_and_the_closing_date_with_the_invitation(
    arrivals, store_url, smtp_server
):
    """Emil is not on Slack (his Slack message fails for good: users_not_found), so only email
    reaches him; SMTP is down on Tuesday 9 and Wednesday 10 June, when his invitation is due."""
    emil = "emil.brandt@example.com"
    arrivals.run("auxeng_sync_registry", at(date(2026, 6, 9), 2))
    smtp_server.stop()
    for day in (date(2026, 6, 9), date(2026, 6, 10)):
        arrivals.day(day, smtp_down=True)
    assert arrivals.days(emil, "invitation", BERLIN) == []
    smtp_server.start()
    for offset in range(10):  # Thursday 11 June to Saturday 20 June
        arrivals.day(date(2026, 6, 11) + timedelta(days=offset))

    assert arrivals.days(emil, "invitation", BERLIN) == [date(2026, 6, 11)]  # two days late
    # 3 days after Thursday is a Sunday: Monday 15th; 7 days after is Thursday 18th
    assert arrivals.days(emil, "reminder", BERLIN) == [date(2026, 6, 15), date(2026, 6, 18)]
    assert (arrivals.count(emil, "invitation", "email"), arrivals.count(emil, "reminder", "email")) == (1, 2)
    row = invitation(store_url, "ENG-OUTAGE", emil)
    assert (row.invited_on, row.sent_at.astimezone(BERLIN).date()) == (date(2026, 6, 9), date(2026, 6, 11))
    assert row.closes_at.astimezone(BERLIN).date() == date(2026, 7, 2)  # 21 days from the 11th, not the 9th


def test_a_host_team_struggling_at_its_check_in_is_flagged_to_managers_the_next_morning_once(
    arrivals,
    store_url,
    smtp_server,
    live,  # noqa: F811
    monkeypatch,
):
    """ENG-CHECKIN's check-in is due Wednesday 3 June; Ida answers on Thursday 4 June (comfort 2
    of 5, help needed regularly); the program managers hear of it on Friday 5 June, the host
    manager copied, and not again in the days after."""
    # ``live`` loaded the demo registry; the story's registry replaces all 40 of its engagements
    # on purpose, which the mass-removal guard would refuse: switch it off for this story.
    monkeypatch.setenv("AUXENG_REGISTRY_REMOVAL_GUARD_SHARE", "1")
    arrivals.run("auxeng_sync_registry", at(date(2026, 6, 1), 2))

    def day_of(day: date) -> None:
        for dag_id, hour, minute in (
            ("auxeng_detect_ended", 5, 30),
            ("auxeng_checkins", 8, 30),
            ("auxeng_dependency_alerts", 9, 0),
        ):
            arrivals.run(dag_id, datetime.combine(day, time(hour, minute), BERLIN))
        arrivals.run("auxeng_deliver_outbox", at(day, 7, 45))
        arrivals.run("auxeng_deliver_outbox", at(day, 16, 15))

    for day in (date(2026, 6, 1), date(2026, 6, 2), date(2026, 6, 3), date(2026, 6, 4)):
        day_of(day)
    with session_scope(get_engine(store_url)) as session:
        checkin = session.scalar(select(CheckinRow).where(CheckinRow.engagement_key == "ENG-CHECKIN"))
        assert (checkin.status, checkin.survey_sent_on) == ("surveying", date(2026, 6, 3))

    # Thursday 4 June, 14:00 in Berlin (after that morning's runs): Ida answers through the page.
    surveys = [
        m.message
        for m in smtp_server.messages
        if m.rcpt_tos[0] == "ida.roth@example.com" and m.message["Subject"].startswith("Three months on")
    ]
    assert len(surveys) == 1, [(m.rcpt_tos, m.message["Subject"]) for m in smtp_server.messages]
    survey = surveys[0]
    link = urlparse(next(w for w in survey.get_body(("plain",)).get_content().split() if "/survey/" in w))
    live.clock.now = datetime(2026, 6, 4, 12, tzinfo=UTC)
    answer = live.client.post(
        link.path, data={"maintainability": "2", "help_needed": "regularly", "nps": "5"}
    )
    assert answer.status_code in (200, 303), answer.text

    assert [entry for entry in arrivals.log if entry[3] == "alert"] == []
    day_of(date(2026, 6, 5))  # the next morning
    for day in (date(2026, 6, 6), date(2026, 6, 7), date(2026, 6, 8), date(2026, 6, 9)):
        day_of(day)  # and the days after: nothing again

    alerted = sorted((who, via) for _, via, who, what in arrivals.log if what == "alert")
    assert alerted == sorted(
        (person, via)
        for person in ("dana.ruiz@example.com", "sam.okoro@example.com", "hugo.weiss@example.com")
        for via in ("email", "slack")
    )  # the program managers, and the host manager copied: once each, by email and Slack
    for person in ("dana.ruiz@example.com", "sam.okoro@example.com", "hugo.weiss@example.com"):
        assert arrivals.days(person, "alert", BERLIN) == [date(2026, 6, 5)]
    with session_scope(get_engine(store_url)) as session:
        flag = session.scalar(select(FlagRow).where(FlagRow.rule == "checkin"))
        assert (flag.severity, flag.status, flag.announcements) == ("critical", "open", 1)
        assert (flag.evidence["maintainability_min"], flag.evidence["help_needed"]) == (2, "regularly")
        assert flag.opened_on == date(2026, 6, 5)
