"""The weekly NPS from stored weekly counts equals a from-scratch recompute, on SQLite and PostgreSQL.

The oracle is the aggregation as it was before the counts were stored: one count query per
table over the 26 weeks (``answer_totals``, ``invitation_totals``), rolled up in Python.
The history arrives as it would in production: invitations on their day, answers when
given (the invitation's ``answered_at`` set, the response inserted), some answers
imported weeks late, a few rows answered before they were invited.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from auxeng.nps.queries import answer_totals, engagement_hosts, invitation_totals
from auxeng.nps.week_counts import local_midnight
from auxeng.nps.weekly import WeeklySnapshot, compute_week, save_week, snapshot_of, snapshot_weeks
from auxeng.store.models import (
    EngagementRow,
    NpsDirtyDayRow,
    NpsWeekAggregateRow,
    SurveyInvitationRow,
    SurveyResponseRow,
    TeamRow,
)
from tests.support.statements import counting
from tests.web.conftest import registry_store  # noqa: F401

BERLIN = ZoneInfo("Europe/Berlin")
FIRST = date(2026, 3, 2)  # a Monday: the first week with invitations
WEEK = date(2026, 9, 21)  # a Monday: the last week the sequence of runs reports


def run_moment(week: date) -> datetime:
    """Monday 07:00 (Berlin) after ``week``: when its run happens."""
    return datetime.combine(week + timedelta(weeks=1), time(7), BERLIN).astimezone(UTC)


def from_scratch(session: Session, week: date) -> WeeklySnapshot:
    """The snapshot of ``week`` as computed before the weekly counts were stored."""
    days = [*snapshot_weeks(week), week + timedelta(weeks=1)]
    moments = [local_midnight(day, BERLIN) for day in days]
    hosts = engagement_hosts(session)
    answers = answer_totals(session, moments, hosts=hosts)
    invitations = invitation_totals(session, days, answered_before=moments[-1], hosts=hosts)
    return snapshot_of(week, timezone=BERLIN, min_responses=3, answers=answers, invitations=invitations)


def run(store, week: date, now: datetime | None = None) -> WeeklySnapshot:
    """The weekly task's work for ``week``: compute, save, commit."""
    now = now or run_moment(week)
    with Session(store) as session:
        snapshot = compute_week(session, week, timezone=BERLIN, min_responses=3, now=now)
        save_week(session, snapshot, run_id=f"run-{week}", now=now)
        session.commit()
    return snapshot


def assert_same_as_from_scratch(store, week: date, now: datetime | None = None) -> WeeklySnapshot:
    snapshot = run(store, week, now)
    with Session(store) as session:
        expected = from_scratch(session, week)
    assert snapshot == expected, week
    return snapshot


@dataclass
class Event:
    """A write of the history, applied when the clock passes ``at``."""

    at: datetime
    kind: str  # "invite" or "answer"
    number: int
    survey: str
    engagement: str
    status: str
    invited_on: date
    answered_at: datetime | None = None
    nps: int | None = None
    comfort: int | None = None


def history(
    engagements: list[str], *, weeks: int, seed: int, per_week: int = 14, imported: float = 0.1
) -> list[Event]:
    """Invitations over ``weeks`` weeks from FIRST and their answers, in the order they are
    written (a share ``imported`` of the answers by a CSV import weeks later)."""
    rng = random.Random(seed)
    events = []
    for number in range(weeks * per_week):
        invited_on = FIRST + timedelta(days=rng.randrange(weeks * 7))
        invited_at = datetime.combine(invited_on, time(9), BERLIN).astimezone(UTC)
        survey = rng.choices(["post_engagement", "checkin", "retro"], [6, 3, 1])[0]
        status = rng.choices(["invited", "skipped"], [9, 1])[0]
        common = {
            "number": number,
            "survey": survey,
            "engagement": rng.choice(engagements),
            "status": status,
            "invited_on": invited_on,
        }
        events.append(Event(invited_at, "invite", **common))
        if status != "invited" or rng.random() < 0.3:
            continue
        if rng.random() < 0.04:  # answered before the invitation was recorded
            answered_at = invited_at - timedelta(hours=rng.randint(1, 24 * 20))
        else:  # at any hour, often across a week's end, sometimes weeks later
            answered_at = invited_at + timedelta(minutes=rng.randint(10, 60 * 24 * rng.choice([3, 8, 40])))
        arrives = max(answered_at, invited_at)
        if rng.random() < imported:  # a CSV import, weeks later
            arrives += timedelta(weeks=rng.randint(2, 8))
        comfort = rng.randint(1, 5) if survey == "checkin" else None
        events.append(
            Event(
                arrives, "answer", **common, answered_at=answered_at, nps=rng.randint(0, 10), comfort=comfort
            )
        )
    return sorted(events, key=lambda event: (event.at, event.kind != "invite"))


def apply(store, events: list[Event]) -> None:
    """Write the events as the pack would: an invitation row, then its answer and response."""
    with Session(store) as session:
        for event in events:
            if event.kind == "invite":
                session.add(
                    SurveyInvitationRow(
                        id=event.number + 1,
                        survey=event.survey,
                        engagement_key=event.engagement,
                        email=f"person.{event.number}@example.com",
                        side="host",
                        role="engineer",
                        status=event.status,
                        invited_on=event.invited_on,
                        closes_at=event.at + timedelta(days=21),
                        created_at=event.at,
                        updated_at=event.at,
                    )
                )
                session.flush()
                continue
            session.execute(
                update(SurveyInvitationRow)
                .where(SurveyInvitationRow.id == event.number + 1)
                .values(answered_at=event.answered_at, updated_at=event.at)
            )
            session.add(
                SurveyResponseRow(
                    response_ref=f"ref-{event.number}",
                    invitation_id=event.number + 1,
                    survey=event.survey,
                    engagement_key=event.engagement,
                    nps=event.nps,
                    answers={} if event.comfort is None else {"maintainability": event.comfort},
                    source="web",
                    submitted_at=event.answered_at,
                    updated_at=event.at,
                )
            )
            session.flush()
        session.commit()


class Clock:
    """The history written up to a moment, as the clock moves on."""

    def __init__(self, store, events: list[Event]) -> None:
        self.store, self.events = store, events

    def until(self, moment: datetime) -> None:
        due = [event for event in self.events if event.at <= moment]
        self.events = self.events[len(due) :]
        apply(self.store, due)


def engagement_keys(store) -> list[str]:
    with Session(store) as session:
        return list(session.scalars(select(EngagementRow.key).order_by(EngagementRow.key)))


@pytest.fixture
def steady(registry_store):  # noqa: F811
    """The history written up to the run of WEEK, every week from FIRST + 4 weeks run once (unchecked)."""
    clock = Clock(registry_store, history(engagement_keys(registry_store), weeks=32, seed=16))
    week = FIRST + timedelta(weeks=4)
    while week <= WEEK:
        clock.until(run_moment(week))
        run(registry_store, week)
        week += timedelta(weeks=1)
    return registry_store, clock


def stored_weeks(store) -> set[date]:
    with Session(store) as session:
        return set(session.scalars(select(NpsWeekAggregateRow.week)))


def test_every_weekly_run_equals_a_from_scratch_recompute(registry_store):  # noqa: F811
    clock = Clock(registry_store, history(engagement_keys(registry_store), weeks=32, seed=7))
    week = FIRST + timedelta(weeks=2)
    while week <= WEEK:
        clock.until(run_moment(week))
        assert_same_as_from_scratch(registry_store, week)
        week += timedelta(weeks=1)
    assert stored_weeks(registry_store) >= set(snapshot_weeks(WEEK))
    with Session(registry_store) as session:
        assert session.scalar(select(func.count()).select_from(NpsDirtyDayRow)) == 0


def response_in(session: Session, week: date, survey: str = "post_engagement") -> SurveyResponseRow:
    return session.scalars(
        select(SurveyResponseRow)
        .where(
            SurveyResponseRow.submitted_at >= local_midnight(week, BERLIN),
            SurveyResponseRow.submitted_at < local_midnight(week + timedelta(weeks=1), BERLIN),
            SurveyResponseRow.survey == survey,
        )
        .order_by(SurveyResponseRow.id)
        .limit(1)
    ).one()


def late_csv_import(session: Session) -> None:
    """Answers of week WEEK - 6 written with a plain INSERT (no ORM), as a bulk import would."""
    old = response_in(session, WEEK - timedelta(weeks=6))
    session.execute(
        insert(SurveyResponseRow.__table__),
        [
            {
                "response_ref": f"csv-{n}",
                "survey": "checkin",
                "engagement_key": old.engagement_key,
                "nps": n,
                "answers": {"maintainability": 1 + n % 5},
                "maintainability": 1 + n % 5,
                "source": "csv",
                "submitted_at": old.submitted_at + timedelta(minutes=n),
                "updated_at": old.submitted_at,
            }
            for n in range(11)
        ],
    )


def updated_answer(session: Session) -> None:
    """An answer of week WEEK - 9 re-submitted with another score."""
    response = response_in(session, WEEK - timedelta(weeks=9))
    response.nps = 0 if response.nps >= 7 else 10


def voided_invitation(session: Session) -> None:
    """An answered invitation of week WEEK - 11 withdrawn (answered late, in a later week)."""
    invitation = session.scalars(
        select(SurveyInvitationRow)
        .where(
            SurveyInvitationRow.invited_on == WEEK - timedelta(weeks=11) + timedelta(days=6),
            SurveyInvitationRow.status == "invited",
        )
        .order_by(SurveyInvitationRow.answered_at.desc())
        .limit(1)
    ).one()
    invitation.status = "void"


def answer_removed(session: Session) -> None:
    """An invitation of week WEEK - 4 loses its answer, and the answer is deleted."""
    response = response_in(session, WEEK - timedelta(weeks=4))
    if response.invitation_id is not None:
        session.get(SurveyInvitationRow, response.invitation_id).answered_at = None
    session.delete(response)


def host_team_moved(session: Session) -> None:
    """An engagement with answers now hosted by another team (a registry sync)."""
    response = response_in(session, WEEK - timedelta(weeks=5))
    engagement = session.get(EngagementRow, response.engagement_key)
    teams = session.scalars(select(TeamRow.key).where(TeamRow.key != engagement.host_team_key)).all()
    engagement.host_team_key = sorted(teams)[0]


def team_changed_org(session: Session) -> None:
    """A host team with answers moved to another org."""
    response = response_in(session, WEEK - timedelta(weeks=7))
    engagement = session.get(EngagementRow, response.engagement_key)
    team = session.get(TeamRow, engagement.host_team_key)
    team.org = "Reorganised"


@pytest.mark.parametrize(
    "change",
    [late_csv_import, updated_answer, voided_invitation, answer_removed, host_team_moved, team_changed_org],
)
def test_a_change_to_an_older_week_is_in_the_next_run(steady, change):
    store, clock = steady
    with Session(store) as session:
        before = from_scratch(session, WEEK)
        change(session)
        session.commit()
        after = from_scratch(session, WEEK)
    assert after != before  # the change shows in the week's snapshot
    assert_same_as_from_scratch(store, WEEK, run_moment(WEEK) + timedelta(hours=1))
    next_week = WEEK + timedelta(weeks=1)
    clock.until(run_moment(next_week))
    assert_same_as_from_scratch(store, next_week)


def test_a_backfill_of_an_old_week_equals_a_from_scratch_recompute(steady):
    store, _clock = steady
    for week in (WEEK - timedelta(weeks=10), WEEK - timedelta(weeks=30), WEEK - timedelta(weeks=3)):
        assert_same_as_from_scratch(store, week, run_moment(WEEK))
    assert_same_as_from_scratch(store, WEEK)


def test_a_run_naming_the_unfinished_week_does_not_store_it(steady):
    store, clock = steady
    week = WEEK + timedelta(weeks=1)
    wednesday = local_midnight(week + timedelta(days=2), BERLIN) + timedelta(hours=10)
    clock.until(wednesday)
    assert_same_as_from_scratch(store, week, wednesday)
    assert week not in stored_weeks(store)
    assert WEEK in stored_weeks(store)
    clock.until(run_moment(week))
    assert_same_as_from_scratch(store, week)
    assert week in stored_weeks(store)


def test_a_steady_weekly_run_sends_as_many_statements_whatever_the_history(registry_store):  # noqa: F811
    keys = engagement_keys(registry_store)
    counts = []
    for weeks, seed in ((8, 1), (32, 2)):
        with Session(registry_store) as session:  # start again with a longer history
            for table in (SurveyResponseRow, SurveyInvitationRow, NpsWeekAggregateRow, NpsDirtyDayRow):
                session.query(table).delete()
            session.commit()
        clock = Clock(registry_store, history(keys, weeks=weeks, seed=seed, imported=0))
        last = FIRST + timedelta(weeks=weeks - 1)
        clock.until(run_moment(last - timedelta(weeks=1)))
        run(registry_store, last - timedelta(weeks=1))
        clock.until(run_moment(last))
        with counting(registry_store) as statements:
            snapshot = run(registry_store, last)
        with Session(registry_store) as session:
            assert snapshot == from_scratch(session, last)
        counts.append(statements.by_verb())
    # reads: marks, stored weeks, their counts and late answers (1 SELECT); the new week's query (WITH);
    # the marked weeks and the marks deleted, the new week stored (3 INSERTs); save_week: the
    # week deleted (its rows by ON DELETE CASCADE), the week and its rows inserted (2 INSERTs)
    assert counts[0] == counts[1] == {"SELECT": 3, "WITH": 1, "DELETE": 3, "INSERT": 5}
