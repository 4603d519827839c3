"""Realistic render contexts of every message kind, with each ``{% if %}`` branch, for template tests.

``user_text`` goes where people's own words go (answers, comments, flag evidence, reasons).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

from auxeng.checkins.calendar import Attendee
from auxeng.handover.help import HelpPlaces
from auxeng.independence.views import IndependenceSection, TeamLine, TrendPoint
from auxeng.nps.chart import WeekPoint
from auxeng.nps.digest import Change, Comment, Digest, DueCheckin, Figure, SegmentLine
from auxeng.nps.maths import nps
from auxeng.redflags.alerts import FlagView

PUBLIC = "https://auxeng.example.com/auxeng"
ENGAGEMENT = SimpleNamespace(
    key="ENG-42", title="Kafka consumer migration", end=date(2026, 11, 20), host_team_name="Payments"
)
PERSON = {"person_name": "José Müller", "program_name": "AuxEng", "optout_link": f"{PUBLIC}/optout/tok"}
SURVEY = {
    "engagement": ENGAGEMENT,
    "survey_link": f"{PUBLIC}/s/tok",
    "score_links": [(score, f"{PUBLIC}/s/tok?score={score}") for score in range(11)],
    "closes_on": date(2026, 12, 4),
}


def flag(user_text: str) -> FlagView:
    return FlagView(
        id=7,
        rule="help_requests",
        title="Many help requests",
        severity="critical",
        status="open",
        subject="Payments",
        summary=f"Payments asked for help 9 times in 14 days. {user_text}",
        lines=[f"2026-11-18 #payments-help: {user_text}", "2026-11-19 #payments-help: consumer lag again"],
        opened_on=date(2026, 11, 18),
        acknowledged_by=None,
        acknowledged_note=None,
    )


def independence(user_text: str, *, empty: bool = False) -> IndependenceSection:
    week = date(2026, 11, 23)
    if empty:
        return IndependenceSection(week=week, missing="Not computed for the week of 23 Nov yet.")
    falling = TeamLine(
        key="payments",
        name=f"Payments {user_text}",
        score=41.0,
        before_score=72.0,
        before_week=date(2026, 10, 26),
        drop=31.0,
        moved=["help asks after the end 90 → 5", "comfort maintaining it 80 → 60"],
        weakest=["help asks after the end 5"],
    )
    new = TeamLine("search", "Search", 35.0, None, None, None, [], ["help needed 0", "NPS change 20"])
    return IndependenceSection(
        week=week,
        score="62 / 100 (n=14)",
        independent="58% (7 of 12 answered check-ins; 95% CI 32% to 81%)",
        goals="too few goal answers (n=2)",
        trend=[TrendPoint(date(2026, 11, 16), None), TrendPoint(week, 62.0)],
        dropped=[falling],
        at_risk=[falling, new],
        hidden_at_risk=1,
    )


def digest(user_text: str, *, empty: bool = False) -> Digest:
    result = nps(12, 4, 3)
    week = Figure("This week", result, result.shown(), True)
    quarter = Figure("Last 13 weeks", nps(1, 0, 1), "too few responses", False)
    comments = [
        Comment(
            "detractor",
            3,
            "End of engagement",
            "What should we change?",
            user_text,
            "ENG-42, Payments",
            date(2026, 11, 23),
        ),
        Comment(
            "promoter",
            10,
            "Three-month check-in",
            "What went well?",
            "Great pairing.",
            None,
            date(2026, 11, 24),
        ),
    ]
    return Digest(
        program="AuxEng",
        week=date(2026, 11, 23),
        min_responses=5,
        headline_week=week,
        headline_quarter=quarter,
        changes=[
            Change("vs last week", "+12 (95% CI +2 to +22)", True, 12.0),
            Change("vs last quarter", "+1", False, 1.0),
        ],
        response_rate_week="40% (4 of 10)",
        response_rate_quarter="55% (22 of 40)",
        segments=[SegmentLine("survey", "End of engagement", result.shown(), result.responses)],
        maintainability="4.2 (n=9)",
        comments=[] if empty else comments,
        more_comments=0 if empty else 3,
        checkins_due=[] if empty else [DueCheckin("ENG-42", "Payments", date(2026, 12, 1), "sent")],
        trend=[WeekPoint(date(2026, 11, 16), result), WeekPoint(date(2026, 11, 23), result)],
        comments_since=None if empty else datetime(2026, 11, 23, tzinfo=UTC),
        comments_until=datetime(2026, 11, 30, tzinfo=UTC),
        open_flags=[] if empty else [flag(user_text)],
        independence=independence(user_text, empty=empty),
    )


def contexts(
    user_text: str = "The consumer lag alerts fire every night.",
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(message kind, variant, context) of every message kind, one per template branch."""
    for survey in ("retro", "nps"):
        yield "survey_invite", survey, {**PERSON, **SURVEY, "survey": survey}
        for number in (1, 2):
            yield (
                "survey_reminder",
                f"{survey} {number}",
                {**PERSON, **SURVEY, "survey": survey, "reminder_number": number},
            )
    for number in (0, 1):
        yield "checkin_survey", f"reminder {number}", {**PERSON, **SURVEY, "reminder_number": number}
    for answered in (True, False):
        yield (
            "detractor_alert",
            f"answered {answered}",
            {
                **PERSON,
                "engagement": ENGAGEMENT,
                "lead_name": "Ana Lima",
                "respondent": "José Müller",
                "score": 3,
                "went_well": user_text if answered else None,
                "to_change": user_text if answered else None,
                "business_goals": "Yes" if answered else None,
                "technical_goals": "Partly" if answered else None,
            },
        )
    people = [Attendee("jose@example.com", "José Müller"), Attendee("ana@example.com", None)]
    calendar = {
        **PERSON,
        "engagement": ENGAGEMENT,
        "when": "Monday 22 February 2027, 10:00 (Europe/Berlin)",
        "minutes": 30,
        "organizer": Attendee("auxeng@example.com", "AuxEng"),
        "attendees": people,
        "summary": "Three-month check-in: Kafka consumer migration",
        "description": user_text,
    }
    for updated in (False, True):
        yield "checkin_invitation", f"updated {updated}", {**calendar, "updated": updated}
    for reason in (user_text, ""):
        yield "checkin_cancelled", f"reason {bool(reason)}", {**calendar, "reason": reason}
    for reason in ("new", "escalated", "still open"):
        for copied in (False, True):
            yield (
                "flag_alert",
                f"{reason} copied {copied}",
                {
                    **PERSON,
                    "flag": flag(user_text),
                    "reason": reason,
                    "copied": copied,
                    "ack_link": f"{PUBLIC}/flags/ack/tok",
                },
            )
    places = HelpPlaces(
        text=user_text, office_hours="https://wiki.example.com/office-hours", slack_channel="#platform-help"
    )
    for variant, help_places, checkin_on, goals in (
        ("help, check-in, goals", places, date(2027, 2, 20), user_text),
        ("no help, no check-in, no goals", HelpPlaces(), None, None),
    ):
        yield (
            "handover",
            variant,
            {
                **PERSON,
                "engagement": ENGAGEMENT,
                "role": "manager and tech lead",
                "no_more_work_from": date(2026, 11, 21),
                "help": help_places,
                "checkin_on": checkin_on,
                "goals_business": goals,
                "goals_technical": goals,
            },
        )
    sync_with = [SimpleNamespace(name="Ana Lima", email="ana@example.com", roles=["lead", "engineer"])]
    yield "follow_up_reminder", "sync", {**PERSON, **SURVEY, "round": 1, "months": 3, "sync_with": sync_with}
    for empty in (False, True):
        yield (
            "nps_digest",
            f"empty {empty}",
            {
                "digest": digest(user_text, empty=empty),
                "unsubscribe_link": f"{PUBLIC}/digest/optout/tok",
                "chart_cid": "nps-trend",
            },
        )
