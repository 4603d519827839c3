"""`make demo`: run the pack's DAGs on the demo data over a few days, in one process.

Day 1 (DEMO_DATE, a Thursday by default): load the registry, detect ended
engagements, send surveys at 08:00, run the three-month check-ins at 08:30
(calendar invitations 7 days before the due dates, check-in surveys on them)
and deliver the outbox at 12:00 and 20:00 UTC
(people are only messaged in their own working hours). Two people answer the
next day, one of them a detractor. Day 5 (a Monday): the weekly NPS and independence
snapshots at 07:00 (the 12 weeks before backfilled, so the independence trend has a story:
Checkout grows independent, Fulfillment is at risk) and the stakeholder digest (email with
the trend chart and its Independence section, Slack post and chart upload), then the
reminders and the detractor alert. Each day at 09:00 the dependency red flags
(``auxeng_dependency_alerts``): a CSV drop of help requests shows Fulfillment still asking
for help, and the registry's Frank Ito is on his third engagement in a row. Before day 1 the store gets 26 weeks of synthetic
survey history (``auxeng.dev.demo_history``) so the digest has a trend to show.
Messages go to the dev outbox (AUXENG_DEV_OUTBOX) as .eml, .json and .png files.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from airflow.dag_processing.dagbag import DagBag
from airflow.utils.state import DagRunState
from sqlalchemy import select

from auxeng.dev.demo_history import STORY_TEAMS, seed_history, seed_independence_story
from auxeng.independence.snapshots import TEAM, segment_trend
from auxeng.independence.tasks import compute_weekly_independence
from auxeng.messaging import tokens
from auxeng.redflags.rules import RULE_TITLES
from auxeng.store.db import open_store, session_scope
from auxeng.store.models import (
    CheckinEventRow,
    CheckinRow,
    FlagRow,
    IndependenceSnapshotRow,
    NpsSnapshotRow,
    NpsWeekRow,
    OutboxRow,
    SurveyInvitationRow,
)
from auxeng.surveys.responses import record_response
from auxeng.vocabulary import MessageKind


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


def run(dags: DagBag, dag_id: str, moment: datetime) -> None:
    dag_run = dags.dags[dag_id].test(logical_date=moment)
    state = dag_run.state
    print(f"==> {dag_id} at {moment:%Y-%m-%d %H:%M} UTC: {state}")
    if state != DagRunState.SUCCESS:
        sys.exit(f"{dag_id} failed; see the task logs above")


def checkins_today(day: date) -> None:
    """What the check-in run of ``day`` did: handovers, calendar invitations and check-in surveys queued."""
    with session_scope(open_store()) as session:
        statuses = Counter(session.scalars(select(CheckinRow.status)))
        events = session.execute(
            select(
                CheckinRow.engagement_key, CheckinRow.due_on, CheckinEventRow.event, CheckinEventRow.detail
            )
            .join(CheckinRow, CheckinRow.id == CheckinEventRow.checkin_id)
            .where(CheckinEventRow.as_of == day, CheckinEventRow.event.in_(("calendar_request", "surveyed")))
            .order_by(CheckinEventRow.id)
        ).all()
        handovers: dict[str, list[str]] = {}
        for key, email in session.execute(
            select(OutboxRow.engagement_key, OutboxRow.recipient_email)
            .where(
                OutboxRow.kind == MessageKind.HANDOVER,
                OutboxRow.channel == "email",
                OutboxRow.created_at >= at(day, 0),
                OutboxRow.created_at < at(day + timedelta(days=1), 0),
            )
            .order_by(OutboxRow.id)
        ):
            handovers.setdefault(key, []).append(email)
    print(f"==> check-ins on {day}: {', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))}")
    for key, emails in handovers.items():
        print(f"==>   handover for {key} to {', '.join(emails)}")
    for key, due_on, event, detail in events:
        if event == "calendar_request":
            print(f"==>   calendar invitation for {key} (due {due_on}) to {', '.join(detail['to'])}")
        else:
            print(f"==>   check-in survey for {key} (due {due_on}) sent to {detail['invited']} people")


def answer(day: date) -> None:
    """Two host-team people answer their survey (one promoter, one detractor)."""
    engine = open_store()
    with session_scope(engine) as session:
        invited = list(
            session.scalars(
                select(SurveyInvitationRow)
                .where(
                    SurveyInvitationRow.status == "invited",
                    SurveyInvitationRow.survey == "post_engagement",
                    SurveyInvitationRow.invited_on >= day - timedelta(days=1),
                )
                .order_by(SurveyInvitationRow.engagement_key, SurveyInvitationRow.id)
                .limit(2)
            )
        )
    answers = [
        {
            "nps": 9,
            "went_well": "Pairing on the deploy pipeline",
            "to_change": "",
            "business_goals": "yes",
            "technical_goals": "yes",
        },
        {
            "nps": 4,
            "went_well": "Good runbooks",
            "to_change": "The handover was rushed; we still page the platform team <b>weekly</b>.",
            "business_goals": "partly",
            "technical_goals": "no",
        },
    ]
    for invitation, form in zip(invited, answers, strict=False):
        record_response(engine, invitation.id, form, now=at(day, 10), key=tokens.secret_key())
        print(f"==> {invitation.email} answered {form['nps']}/10 for {invitation.engagement_key}")


def seed(day: date) -> None:
    with session_scope(open_store()) as session:
        added = seed_history(session, until=day)
        asks = seed_independence_story(session, until=day)
    print(f"==> seeded 26 weeks of synthetic survey history before {day}: {added} answers")
    print(
        f"==> seeded the independence story: {asks} help asks ({STORY_TEAMS['improving']} stops asking "
        f"after its end, {STORY_TEAMS['at_risk']} asks more and more)"
    )


def backfill_independence(first_monday: date, weeks: int) -> None:
    """The independence snapshots of the ``weeks`` weeks before the week ``first_monday``'s run
    computes, as a backfill of ``auxeng_weekly_nps`` would store them."""
    mondays = [first_monday - timedelta(weeks=n) for n in range(weeks + 1, 1, -1)]
    for monday in mondays:
        compute_weekly_independence(week=monday, run_id="demo-backfill", now=at(first_monday, 6))
    print(f"==> independence backfilled for the {weeks} weeks {mondays[0]} to {mondays[-1]}")


def independence(day: date) -> None:
    """The program's independence figure of the week ``day``'s weekly run computed, and the story teams'."""
    week = day - timedelta(weeks=1)
    with session_scope(open_store()) as session:
        program = session.scalar(
            select(IndependenceSnapshotRow).where(
                IndependenceSnapshotRow.week == week, IndependenceSnapshotRow.segment == "program"
            )
        )
        trends = {
            story: [row for _week, row in segment_trend(session, TEAM, team, week) if row is not None]
            for story, team in STORY_TEAMS.items()
        }
    print(
        f"==> independence for the week of {week}: {program.score:.0f}/100 over {program.scored} engagements; "
        f"independent at three months {program.independent} of {program.checkins}"
    )
    for story, rows in trends.items():
        scores = " ".join("-" if row.score is None else f"{row.score:.0f}" for row in rows)
        print(f"==>   {story.replace('_', ' ')}: {STORY_TEAMS[story]}, weekly from {rows[0].week}: {scores}")


def weekly_digest(day: date) -> None:
    """What the weekly NPS run and the digest of ``day`` (a Monday) produced."""
    with session_scope(open_store()) as session:
        week = session.scalar(select(NpsWeekRow).order_by(NpsWeekRow.week.desc()).limit(1))
        rows = {
            row.span: row
            for row in session.scalars(
                select(NpsSnapshotRow).where(
                    NpsSnapshotRow.week == week.week, NpsSnapshotRow.segment == "program"
                )
            )
        }
        digests = session.execute(
            select(OutboxRow.channel, OutboxRow.kind, OutboxRow.recipient, OutboxRow.status)
            .where(OutboxRow.kind.like("nps_digest%"))
            .order_by(OutboxRow.id)
        ).all()
    quarter = rows["13w"]
    print(
        f"==> weekly NPS for the week of {week.week}: {rows['week'].responses} answers this week, "
        f"{quarter.responses} over 13 weeks, NPS {quarter.score:+.0f} "
        f"(95% CI {quarter.ci_low:+.0f} to {quarter.ci_high:+.0f})"
    )
    for channel, kind, recipient, status in digests:
        print(f"==>   digest {kind} by {channel} to {recipient}: {status}")


def drop_help_requests(day: date) -> None:
    """A CSV drop file of help requests, as a ticket system would export it: Fulfillment
    (its last engagement ended 2026-08-27) still asks the platform team for help."""
    path = os.path.join(os.environ.get("AIRFLOW_HOME", "."), "help-requests.csv")
    rows = [
        ("fulfillment", day - timedelta(days=9), "Pipeline fails on the new carrier label step", "FUL-311"),
        ("fulfillment", day - timedelta(days=6), "How do we rotate the queue credentials?", "FUL-318"),
        ("fulfillment", day - timedelta(days=2), "Canary stuck at 10%, can AuxEng look?", "FUL-322"),
        ("customer-care", day - timedelta(days=3), "Where is the runbook for the sync job?", "CC-120"),
    ]
    with open(path, "w", encoding="utf-8") as out:
        out.write("team,date,summary,link\n")
        for team, when, summary, ticket in rows:
            out.write(f'{team},{when.isoformat()},"{summary}",https://jira.example.com/browse/{ticket}\n')
    os.environ["AUXENG_HELP_REQUESTS_CSV"] = path
    print(f"==> help requests dropped as CSV: {len(rows)} rows in {path}")


def red_flags(day: date) -> None:
    """The live red flags after the dependency alerts run of ``day``, and the alerts it queued."""
    with session_scope(open_store()) as session:
        live = session.scalars(
            select(FlagRow).where(FlagRow.status != "resolved").order_by(FlagRow.severity, FlagRow.id)
        ).all()
        alerts = session.execute(
            select(OutboxRow.channel, OutboxRow.recipient_email, OutboxRow.status, OutboxRow.dedupe_key)
            .where(OutboxRow.kind == MessageKind.FLAG_ALERT, OutboxRow.created_at >= at(day, 0))
            .order_by(OutboxRow.id)
        ).all()
    print(f"==> red flags on {day}: {len(live)} live")
    for flag in live:
        print(f"==>   [{flag.severity.upper()}] {RULE_TITLES[flag.rule]}: {flag.summary}")
    sent: dict[int, dict[str, list[str]]] = {}
    for channel, email, status, dedupe_key in alerts:
        sent.setdefault(int(dedupe_key.split(":")[1]), {}).setdefault(email, []).append(f"{channel} {status}")
    titles = {flag.id: f"{RULE_TITLES[flag.rule]}: {flag.subject_key}" for flag in live}
    for flag_id, people in sent.items():
        to = "; ".join(f"{email} ({', '.join(how)})" for email, how in people.items())
        print(f"==>   alert about {titles.get(flag_id, flag_id)} to {to}")


def main(day: date) -> None:
    logging.getLogger("airflow").setLevel(logging.WARNING)
    dags = DagBag(bundle_name="dags-folder")
    later = day + timedelta(days=4)
    run(dags, "auxeng_sync_registry", at(day, 4))
    seed(day)
    drop_help_requests(day)
    for current in (day, later):
        if current.weekday() == 0:
            backfill_independence(current, 12)
            run(dags, "auxeng_weekly_nps", at(current, 7))
            run(dags, "auxeng_weekly_digest", at(current, 7, 5))
            weekly_digest(current)
            independence(current)
        run(dags, "auxeng_detect_ended", at(current, 5))
        run(dags, "auxeng_send_surveys", at(current, 8))
        run(dags, "auxeng_checkins", at(current, 8, 30))
        checkins_today(current)
        run(dags, "auxeng_dependency_alerts", at(current, 9))
        red_flags(current)
        run(dags, "auxeng_deliver_outbox", at(current, 12))
        run(dags, "auxeng_deliver_outbox", at(current, 20))
        if current == day:
            answer(day + timedelta(days=1))


if __name__ == "__main__":
    main(date.fromisoformat(sys.argv[1]))
