"""SQLAlchemy 2 models of the engagement store (the pack's own database, never Airflow's).

Every table is prefixed ``auxeng_`` so the store can share a database safely.
Schema changes go through an Alembic migration in ``store/migrations/versions``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from auxeng.vocabulary import OutboxStatus, SkipCause

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always returned time-zone aware (SQLite keeps none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes time-zone aware timestamps")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar = {datetime: UTCDateTime}


class ProgramRow(Base):
    """The program section of the registry (one row, id 1)."""

    __tablename__ = "auxeng_program"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    managers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    stakeholders: Mapped[list[str]] = mapped_column(JSON, default=list)
    digest_slack_channel: Mapped[str | None] = mapped_column(String(32))
    help_after_end: Mapped[dict[str, str] | None] = mapped_column(JSON)
    """Where host teams get help after an engagement (text, office_hours, slack_channel, docs)."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TeamRow(Base):
    __tablename__ = "auxeng_teams"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    org: Mapped[str | None] = mapped_column(String(200))
    manager_email: Mapped[str | None] = mapped_column(String(320))
    manager_name: Mapped[str | None] = mapped_column(String(200))
    manager_slack_id: Mapped[str | None] = mapped_column(String(32))
    help_channel: Mapped[str | None] = mapped_column(String(32))
    help_after_end: Mapped[dict[str, str] | None] = mapped_column(JSON)
    """This team's places to get help after an engagement; each field replaces the program's."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PersonRow(Base):
    __tablename__ = "auxeng_people"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    slack_id: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EngagementRow(Base):
    """An engagement as last loaded from the registry, plus what the pack did with it."""

    __tablename__ = "auxeng_engagements"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    host_team_key: Mapped[str] = mapped_column(ForeignKey("auxeng_teams.key"))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    follow_up: Mapped[str] = mapped_column(String(16), default="none")
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    goals_business: Mapped[str | None] = mapped_column(Text)
    goals_technical: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_as_of: Mapped[date | None] = mapped_column(Date)
    ended_end_date: Mapped[date | None] = mapped_column(Date)

    members: Mapped[list[MemberRow]] = relationship(
        back_populates="engagement", cascade="all, delete-orphan", order_by="MemberRow.id"
    )

    __table_args__ = (
        Index("ix_auxeng_engagements_status_end", "status", "end_date"),
        # The dashboard's keyset order: latest end first, then key.
        Index("ix_auxeng_engagements_end_key", end_date.desc(), "key"),
    )


class MemberRow(Base):
    """A person on an engagement: the platform team's side (``auxeng``) or the host's."""

    __tablename__ = "auxeng_engagement_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    engagement_key: Mapped[str] = mapped_column(
        ForeignKey("auxeng_engagements.key", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), index=True)
    side: Mapped[str] = mapped_column(String(8))
    role: Mapped[str] = mapped_column(String(32))
    lead: Mapped[bool] = mapped_column(Boolean, default=False)

    engagement: Mapped[EngagementRow] = relationship(back_populates="members")

    __table_args__ = (UniqueConstraint("engagement_key", "email"),)


class EngagementRevisionRow(Base):
    """History of an engagement: what changed, when, and from which registry load."""

    __tablename__ = "auxeng_engagement_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    engagement_key: Mapped[str] = mapped_column(String(64), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(16))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    registry_sha256: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RegistryLoadRow(Base):
    """One validation and load of the registry file."""

    __tablename__ = "auxeng_registry_loads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    restored: Mapped[int] = mapped_column(Integer, default=0)
    problems: Mapped[list[str]] = mapped_column(JSON, default=list)


SKIP_CAUSE = Enum(
    SkipCause,
    name="skip_cause",
    native_enum=False,
    create_constraint=True,
    length=24,
    values_callable=lambda causes: [c.value for c in causes],
)


class OutboxRow(Base):
    """One message to deliver (email or Slack), queued once under its dedupe key.

    Status: ``pending`` → ``sent`` | ``failed`` (permanent error, or attempts
    exhausted) | ``skipped`` (no longer wanted: opted out, answered, cancelled), with
    ``skip_cause`` the code (:class:`~auxeng.vocabulary.SkipCause`) and ``reason`` the text;
    ``sending`` while a drainer hands it to its transport, ``in_doubt`` when that drainer died
    before recording the outcome (possibly delivered: never sent again by itself).
    ``rendered`` is an email's MIME bytes, rendered when queued (without From, Date, Message-ID).
    Only :mod:`auxeng.messaging.outbox` changes these rows.
    ``claimed_until`` is a drainer's lease: rows another drainer holds are left alone.
    ``response_id`` is the survey response a detractor alert is about.
    """

    __tablename__ = "auxeng_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(320))
    recipient_email: Mapped[str | None] = mapped_column(String(320), index=True)
    subject: Mapped[str | None] = mapped_column(String(500))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    engagement_key: Mapped[str | None] = mapped_column(String(64), index=True)
    invitation_id: Mapped[int | None] = mapped_column(Integer, index=True)
    response_id: Mapped[int | None] = mapped_column(Integer, index=True)
    stop_if_answered: Mapped[bool] = mapped_column(Boolean, default=False)
    requires_ended: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(Text)
    skip_cause: Mapped[SkipCause | None] = mapped_column(SKIP_CAUSE)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    transport: Mapped[str | None] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When it went out, on the business clock (the delivery run's moment)."""
    rendered: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_auxeng_outbox_due", "status", "channel", "not_before"),)


class SurveyInvitationRow(Base):
    """One person asked (or deliberately not asked) to answer one survey of one engagement.

    ``round`` tells repeated asks of the same survey apart (the month of a
    monthly follow-up); it is 0 for surveys asked once.

    ``status`` is ``invited`` or ``skipped`` (with ``skip_reason``: fatigue, opted
    out, no contact) or ``void`` (its messages were withdrawn before any went out,
    e.g. the engagement was reopened or cancelled).

    ``invited_on`` is the day it was queued; ``sent_at`` when it reached the person (the
    first of its email and Slack messages to go out), from which its reminders and its
    closing date count.
    """

    __tablename__ = "auxeng_survey_invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    survey: Mapped[str] = mapped_column(String(32))
    engagement_key: Mapped[str] = mapped_column(ForeignKey("auxeng_engagements.key"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    side: Mapped[str] = mapped_column(String(8))
    role: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    skip_reason: Mapped[str | None] = mapped_column(Text)
    invited_on: Mapped[date] = mapped_column(Date)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminders_queued: Mapped[int] = mapped_column(Integer, default=0)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("survey", "engagement_key", "email", "round"),
        # Covering: the weekly NPS counts invitations from this index alone.
        Index(
            "ix_auxeng_survey_invitations_invited_on",
            "invited_on",
            "survey",
            "status",
            "engagement_key",
            "answered_at",
        ),
        # Covering: the weekly NPS counts the answers that arrived in a week from this index alone.
        Index(
            "ix_auxeng_survey_invitations_answered_at",
            "answered_at",
            "survey",
            "status",
            "engagement_key",
            "invited_on",
        ),
    )


class SurveyResponseRow(Base):
    """An answer to one invitation (one per invitation; re-submitting updates it).

    ``response_ref`` is an HMAC of the invitation id, so the signed link finds
    the response again. For anonymous engagements ``invitation_id`` and
    ``respondent_email`` stay empty: the response is not linked to the person.

    ``maintainability`` copies the check-in comfort (1-5) out of ``answers`` so the
    weekly NPS can sum it from an index; it is NULL when ``answers`` has no integer
    there. It is kept in step on every ORM insert and update (see
    :func:`_sync_maintainability`); writes that bypass the ORM must set it themselves.
    """

    __tablename__ = "auxeng_survey_responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    response_ref: Mapped[str] = mapped_column(String(64), unique=True)
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("auxeng_survey_invitations.id"))
    survey: Mapped[str] = mapped_column(String(32))
    engagement_key: Mapped[str] = mapped_column(ForeignKey("auxeng_engagements.key"))
    respondent_email: Mapped[str | None] = mapped_column(String(320))
    nps: Mapped[int | None] = mapped_column(Integer)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    maintainability: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(8))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_auxeng_survey_responses_engagement", "engagement_key", "survey"),
        # Covering: the weekly NPS counts answers from this index alone.
        Index(
            "ix_auxeng_survey_responses_submitted",
            "submitted_at",
            "survey",
            "engagement_key",
            "nps",
            "maintainability",
        ),
    )


MAINTAINABILITY_LIMIT = 10**9  # larger values are not a comfort score (and need not fit the column)


def maintainability_of(answers: Any) -> int | None:
    """The check-in comfort in ``answers``: its ``maintainability`` when that is a JSON
    integer (below 10⁹ in size), else None. The backfill of migration 0004 applies the same rule."""
    value = answers.get("maintainability") if isinstance(answers, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < MAINTAINABILITY_LIMIT:
        return value
    return None


@event.listens_for(SurveyResponseRow, "before_insert")
@event.listens_for(SurveyResponseRow, "before_update")
def _sync_maintainability(_mapper: Any, _connection: Any, target: SurveyResponseRow) -> None:
    """Keep ``maintainability`` equal to the comfort in ``answers`` on every ORM write."""
    target.maintainability = maintainability_of(target.answers)


class OptOutRow(Base):
    """A person who asked never to be messaged again by the pack."""

    __tablename__ = "auxeng_opt_outs"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(16))


class CheckinRow(Base):
    """The three-month check-in of one ended engagement (one per engagement).

    ``status``: ``scheduled`` (calendar invitation planned or sent) → ``surveying``
    (check-in survey sent on the due date) → ``answered`` | ``unanswered`` (closed
    after the response window, with the scores). Or ``skipped`` (manual override),
    ``cancelled`` (engagement cancelled or removed), ``missed`` (the due date was
    more than the catch-up cut-off in the past before anything went out).

    The calendar columns describe the last invitation queued: ``uid`` never
    changes, ``sequence`` grows with every new REQUEST or CANCEL.
    """

    __tablename__ = "auxeng_checkins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    engagement_key: Mapped[str] = mapped_column(ForeignKey("auxeng_engagements.key"), unique=True)
    uid: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    end_date: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    due_override: Mapped[date | None] = mapped_column(Date)
    invite_on: Mapped[date] = mapped_column(Date)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    calendar_method: Mapped[str | None] = mapped_column(String(8))
    calendar_due: Mapped[date | None] = mapped_column(Date)
    slot_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    slot_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    slot_timezone: Mapped[str | None] = mapped_column(String(64))
    survey_sent_on: Mapped[date | None] = mapped_column(Date)
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    invited: Mapped[int] = mapped_column(Integer, default=0)
    responses: Mapped[int] = mapped_column(Integer, default=0)
    maintainability_min: Mapped[int | None] = mapped_column(Integer)
    maintainability_mean: Mapped[float | None] = mapped_column(Float)
    help_needed: Mapped[str | None] = mapped_column(String(16))
    nps_mean: Mapped[float | None] = mapped_column(Float)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    note: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    override_reason: Mapped[str | None] = mapped_column(Text)
    override_by: Mapped[str | None] = mapped_column(String(200))
    override_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CheckinEventRow(Base):
    """What happened to a check-in, when and why (scheduled, moved, invited, overridden…)."""

    __tablename__ = "auxeng_checkin_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checkin_id: Mapped[int] = mapped_column(ForeignKey("auxeng_checkins.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(24))
    as_of: Mapped[date] = mapped_column(Date)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FollowUpRow(Base):
    """Monthly follow-ups of an engagement with ``follow_up: monthly``.

    ``status``: ``active`` → ``finished`` (the lead said so, or an override) |
    ``completed`` (all ``months`` reminders went out) | ``cancelled``.
    ``last_round`` is the last month whose reminder was queued (or passed over).
    """

    __tablename__ = "auxeng_follow_ups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    engagement_key: Mapped[str] = mapped_column(ForeignKey("auxeng_engagements.key"), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    months: Mapped[int] = mapped_column(Integer)
    last_round: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_by: Mapped[str | None] = mapped_column(String(320))
    finish_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NpsWeekRow(Base):
    """One computed week of the weekly NPS aggregation (``auxeng_weekly_nps``), replaced on re-runs.

    ``week`` is the Monday (in the program's time zone) of the week [``starts_at``, ``ends_at``).
    ``trend`` holds the program's counts for each of the 13 weeks ending with this one
    (oldest first): ``{"week", "promoters", "passives", "detractors", "invited", "answered"}``.
    """

    __tablename__ = "auxeng_nps_weeks"

    week: Mapped[date] = mapped_column(Date, primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    min_responses: Mapped[int] = mapped_column(Integer)
    trend: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    run_id: Mapped[str | None] = mapped_column(String(250))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    snapshots: Mapped[list[NpsSnapshotRow]] = relationship(
        back_populates="nps_week", cascade="all, delete-orphan", passive_deletes=True
    )


class NpsSnapshotRow(Base):
    """NPS of one segment over one window of a computed week.

    ``span``: ``week`` (that week), ``13w`` (the 13 weeks ending with it), and for the
    whole program also ``prev_week`` and ``prev_13w`` (the spans just before, for the
    digest's "change"). ``segment`` is ``program``, ``org``, ``team`` or ``survey``.
    Counts and score are stored as computed; ``suppressed`` says the segment had fewer
    answers than the privacy threshold, so it is shown as "too few responses".
    """

    __tablename__ = "auxeng_nps_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    week: Mapped[date] = mapped_column(ForeignKey("auxeng_nps_weeks.week", ondelete="CASCADE"))
    span: Mapped[str] = mapped_column(String(12))
    segment: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    promoters: Mapped[int] = mapped_column(Integer)
    passives: Mapped[int] = mapped_column(Integer)
    detractors: Mapped[int] = mapped_column(Integer)
    responses: Mapped[int] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float] = mapped_column(Float)
    ci_high: Mapped[float] = mapped_column(Float)
    suppressed: Mapped[bool] = mapped_column(Boolean)
    invited: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)
    response_rate: Mapped[float | None] = mapped_column(Float)
    maintainability_answers: Mapped[int] = mapped_column(Integer)
    maintainability_mean: Mapped[float | None] = mapped_column(Float)

    nps_week: Mapped[NpsWeekRow] = relationship(back_populates="snapshots")

    __table_args__ = (UniqueConstraint("week", "span", "segment", "key"),)


class IndependenceWeekRow(Base):
    """One computed week of the independence snapshot (``auxeng_weekly_nps``), replaced on re-runs.

    ``week`` is the Monday (program time zone) of the week [``starts_at``, ``ends_at``); every
    signal is read as it stood at ``ends_at``, so a backfill computes a past week as it was.
    ``weights`` are the weights used (component → weight); ``threshold`` the total at or above
    which an engagement with a check-in counts as independent; ``window_weeks`` how far back
    an engagement's end may lie to be counted.
    """

    __tablename__ = "auxeng_independence_weeks"

    week: Mapped[date] = mapped_column(Date, primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    min_responses: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[float] = mapped_column(Float)
    window_weeks: Mapped[int] = mapped_column(Integer)
    weights: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    run_id: Mapped[str | None] = mapped_column(String(250))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IndependenceScoreRow(Base):
    """One engagement's independence score in a computed week, with every component.

    ``components``: one dict per component in the formula's order, ``{"name", "value",
    "points", "weight", "share", "contribution", "status", "reason"}``
    (:class:`auxeng.independence.score.Component`). ``total`` is NULL when no component is
    present. ``independent`` is NULL without a check-in answer; ``goals_achieved`` is NULL
    unless both goal questions were answered (then: both ``yes``).
    """

    __tablename__ = "auxeng_independence_scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    week: Mapped[date] = mapped_column(ForeignKey("auxeng_independence_weeks.week", ondelete="CASCADE"))
    engagement_key: Mapped[str] = mapped_column(String(64))
    team_key: Mapped[str] = mapped_column(String(64))
    org: Mapped[str | None] = mapped_column(String(200))
    end_date: Mapped[date] = mapped_column(Date)
    total: Mapped[float | None] = mapped_column(Float)
    components: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    independent: Mapped[bool | None] = mapped_column(Boolean)
    goals_achieved: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        UniqueConstraint("week", "engagement_key"),
        Index("ix_auxeng_independence_scores_team_week", "team_key", "week"),
    )


class IndependenceSnapshotRow(Base):
    """Independence of one segment (``program`` / ``org`` / ``team``, ``key``) in a computed week.

    ``engagements``: ended engagements counted (end within the week's window); ``scored``:
    those with a total; ``score``: the mean total (NULL when none). ``components``: per
    component name, ``{"points": mean points over the engagements where it is present,
    "present": how many}``. The two headline proportions, each with its 95% Wilson interval:
    ``independent`` of ``checkins`` (engagements whose check-in was answered), and
    ``goals_achieved`` of ``goals_answered``. ``suppressed``: fewer than ``min_responses``
    scored engagements, so the segment is shown as too few to show; each proportion is also
    hidden when its denominator is under ``min_responses``.
    """

    __tablename__ = "auxeng_independence_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    week: Mapped[date] = mapped_column(ForeignKey("auxeng_independence_weeks.week", ondelete="CASCADE"))
    segment: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    engagements: Mapped[int] = mapped_column(Integer)
    scored: Mapped[int] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    components: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    checkins: Mapped[int] = mapped_column(Integer)
    independent: Mapped[int] = mapped_column(Integer)
    independent_low: Mapped[float | None] = mapped_column(Float)
    independent_high: Mapped[float | None] = mapped_column(Float)
    goals_answered: Mapped[int] = mapped_column(Integer)
    goals_achieved: Mapped[int] = mapped_column(Integer)
    goals_low: Mapped[float | None] = mapped_column(Float)
    goals_high: Mapped[float | None] = mapped_column(Float)
    suppressed: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (UniqueConstraint("week", "segment", "key"),)


class NpsWeekAggregateRow(Base):
    """The stored counts of one week for the weekly NPS (:mod:`auxeng.nps.week_counts`).

    Reusable while the week's bounds (the program's time zone) still match and no mark in
    ``auxeng_nps_dirty_days`` touched it; only weeks that had ended when computed are stored.
    """

    __tablename__ = "auxeng_nps_week_aggregates"

    week: Mapped[date] = mapped_column(Date, primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NpsWeekCountRow(Base):
    """One segment key's counts in one week: the answers submitted in it and the people
    invited in it (``answered``: of those, how many answered before the week's end)."""

    __tablename__ = "auxeng_nps_week_counts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    week: Mapped[date] = mapped_column(ForeignKey("auxeng_nps_week_aggregates.week", ondelete="CASCADE"))
    segment: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    promoters: Mapped[int] = mapped_column(Integer)
    passives: Mapped[int] = mapped_column(Integer)
    detractors: Mapped[int] = mapped_column(Integer)
    maintainability_total: Mapped[int] = mapped_column(Integer)
    maintainability_answers: Mapped[int] = mapped_column(Integer)
    invited: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("week", "segment", "key"),)


class NpsLateAnswerRow(Base):
    """Of the people invited in ``invite_week`` (one of the 25 weeks before ``week``), how many
    per segment key answered during ``week``."""

    __tablename__ = "auxeng_nps_late_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    week: Mapped[date] = mapped_column(ForeignKey("auxeng_nps_week_aggregates.week", ondelete="CASCADE"))
    invite_week: Mapped[date] = mapped_column(Date)
    segment: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    answered: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("week", "invite_week", "segment", "key"),)


class NpsDirtyDayRow(Base):
    """A UTC day whose answers or invitations changed since the weekly NPS last looked.

    Written by database triggers (migration 0010) on every insert, delete and relevant
    update of ``auxeng_survey_responses`` and ``auxeng_survey_invitations``, and of the
    host mapping (``auxeng_engagements``, ``auxeng_teams``: the days of the rows it moves);
    ``marks`` counts the changes, so a run deletes only the marks it read.
    """

    __tablename__ = "auxeng_nps_dirty_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    marks: Mapped[int] = mapped_column(Integer)


class DigestOptOutRow(Base):
    """A stakeholder who no longer wants the weekly digest (other messages are unaffected)."""

    __tablename__ = "auxeng_digest_opt_outs"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(16))


class DigestRow(Base):
    """One weekly digest queued: the week it reports and the moment up to which comments were shown."""

    __tablename__ = "auxeng_digests"

    week: Mapped[date] = mapped_column(Date, primary_key=True)
    comments_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comments_until: Mapped[datetime] = mapped_column(UTCDateTime)
    recipients: Mapped[int] = mapped_column(Integer)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HelpRequestRow(Base):
    """A request for help from a host team: a Slack help-channel message or a row of a CSV drop file.

    ``source`` is ``slack`` or ``csv``; ``source_ref`` identifies the request within its
    source (``<channel>:<ts>`` for Slack; the link, or a hash of team, date and summary,
    for CSV), so reading or importing the same request again updates it, never adds it twice.
    Whether a request counts as *post-engagement* is decided by the rules at evaluation time
    (the registry can change); every eligible request is kept.
    """

    __tablename__ = "auxeng_help_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_key: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))
    source_ref: Mapped[str] = mapped_column(String(300))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    author: Mapped[str | None] = mapped_column(String(320))
    summary: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(1000))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("source", "source_ref"),
        Index("ix_auxeng_help_requests_team_at", "team_key", "requested_at"),
    )


class HelpChannelReadRow(Base):
    """How far a host team's Slack help channel has been read (one row per channel).

    ``read_until`` is the Slack ``ts`` up to which every message has been read: the next
    read asks only for newer ones (``oldest``). A read in progress keeps its upper bound
    (``pass_latest``) and the cursor of its next page (``pass_cursor``), committed with
    each page's requests, so a restart resumes where it stopped; ``read_until`` moves
    only when the last page is in.
    """

    __tablename__ = "auxeng_help_channel_reads"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    team_key: Mapped[str] = mapped_column(String(64))
    read_until: Mapped[str | None] = mapped_column(String(32))
    pass_oldest: Mapped[str | None] = mapped_column(String(32))
    pass_latest: Mapped[str | None] = mapped_column(String(32))
    pass_cursor: Mapped[str | None] = mapped_column(String(500))
    pages: Mapped[int] = mapped_column(Integer, default=0)
    requests_found: Mapped[int] = mapped_column(Integer, default=0)
    last_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FlagRow(Base):
    """A dependency red flag: one rule's finding about one subject (host team, engagement or engineer).

    ``status``: ``open`` → ``acknowledged`` (a manager saw it: who, when, why) → ``resolved``
    (the condition cleared, recorded with the reason). ``open_key`` is
    ``<rule>:<subject_kind>:<subject_key>`` while the flag is not resolved and NULL after,
    so the database itself keeps one live flag per rule and subject. ``severity`` is
    ``warning`` or ``critical``; ``announced_severity`` and ``announced_at`` describe the
    last alert sent, so a rise in severity is announced again, and a still-open flag at
    most every ``AUXENG_FLAG_REANNOUNCE_DAYS``.
    """

    __tablename__ = "auxeng_flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(32))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_key: Mapped[str] = mapped_column(String(320))
    open_key: Mapped[str | None] = mapped_column(String(400), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    team_key: Mapped[str | None] = mapped_column(String(64))
    engagement_key: Mapped[str | None] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_on: Mapped[date] = mapped_column(Date)
    evaluated_on: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    announced_severity: Mapped[str | None] = mapped_column(String(16))
    announcements: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(320))
    acknowledged_note: Mapped[str | None] = mapped_column(Text)
    acknowledged_severity: Mapped[str | None] = mapped_column(String(16))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_auxeng_flags_rule_subject", "rule", "subject_kind", "subject_key"),)


class FlagEventRow(Base):
    """What happened to a flag: opened, updated, escalated, announced, acknowledged, reopened, resolved."""

    __tablename__ = "auxeng_flag_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("auxeng_flags.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
