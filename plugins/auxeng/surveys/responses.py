"""Survey responses: recording them from the web page and importing them from CSV (opt-outs:
:mod:`auxeng.messaging.optouts`).

One response per invitation, stored under ``response_ref`` (an HMAC of the invitation
id, see :func:`auxeng.messaging.tokens.response_ref`): submitting again updates it. For
engagements marked ``anonymous`` the response keeps neither the invitation id nor the
email, and its timestamps (and the invitation's ``answered_at``) are cut to the day,
so the two cannot be joined on the moment of answering.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auxeng import csvinput
from auxeng.messaging.tokens import response_ref
from auxeng.settings import Settings, load_settings
from auxeng.store.db import session_scope
from auxeng.store.models import (
    EngagementRow,
    MemberRow,
    PersonRow,
    SurveyInvitationRow,
    SurveyResponseRow,
    TeamRow,
)
from auxeng.surveys import invitations
from auxeng.surveys.questions import FieldError, UnknownSurvey, get_survey, validate_answers
from auxeng.text import clean_text
from auxeng.vocabulary import END_OF_ENGAGEMENT_SURVEYS, InvitationStatus, ResponseSource

log = logging.getLogger(__name__)

OPEN_STATUSES = (InvitationStatus.INVITED,)
CSV_COLUMNS = (
    "engagement",
    "email",
    "survey",
    "nps",
    "went_well",
    "to_change",
    "business_goals",
    "technical_goals",
    "submitted_at",
)
REQUIRED_CSV_COLUMNS = CSV_COLUMNS[:-1]


class InvitationNotFound(LookupError):
    """No invitation with that id."""


class SurveyClosed(Exception):
    """The invitation stopped taking answers at ``closes_at``."""

    def __init__(self, closes_at: datetime) -> None:
        self.closes_at = closes_at
        super().__init__(f"the survey closed on {closes_at:%Y-%m-%d %H:%M} UTC")


class InvalidAnswers(ValueError):
    """Answers that do not fit the survey (``errors`` as from :func:`validate_answers`)."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


class AnsweredElsewhere(Exception):
    """The response was given through a channel an import must not overwrite (the survey page)."""

    def __init__(self, source: str, submitted_at: datetime) -> None:
        self.source = source
        super().__init__(
            f"answered on the survey page ({source}) on {submitted_at:%Y-%m-%d}; "
            "a CSV row never overwrites that answer"
        )


class SubmittedTooEarly(Exception):
    """``submitted_at`` lies before the invitation was queued."""

    def __init__(self, submitted_at: datetime, invited_on: date) -> None:
        super().__init__(
            f"submitted_at: {submitted_at:%Y-%m-%d %H:%M} UTC is before the invitation was queued "
            f"({invited_on.isoformat()})"
        )


class SurveyNotOpen(Exception):
    """The invitation is not one that takes answers (skipped or withdrawn)."""

    def __init__(self, status: str) -> None:
        self.status = status
        super().__init__(f"the invitation is {status}, not open for answers")


@dataclass(frozen=True)
class InvitationView:
    """What the survey page needs to know about one invitation."""

    id: int
    survey: str
    status: str
    engagement_key: str
    engagement_title: str
    host_team_name: str
    person_name: str | None
    email: str
    closes_at: datetime
    answered_at: datetime | None
    anonymous: bool
    goals_business: str | None = None
    goals_technical: str | None = None

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def open(self) -> bool:
        """Whether this invitation takes answers at all (its status; see :meth:`closed` for time)."""
        return self.status in OPEN_STATUSES

    def closed(self, now: datetime) -> bool:
        return now >= self.closes_at


@dataclass(frozen=True)
class RecordOutcome:
    """``created``: a new response row; ``changed``: anything was written."""

    created: bool
    response_id: int
    changed: bool = True


@dataclass
class ImportReport:
    """What a CSV import did; ``errors`` has one line per rejected row (valid rows were saved)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # rows left out on purpose (answered on the page)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{len(self.errors)} row(s) rejected"
            + (f", {len(self.skipped)} skipped (answered on the survey page)" if self.skipped else "")
        )


# --- reading ---------------------------------------------------------------------------


def load_invitation(session: Session, invitation_id: int) -> InvitationView | None:
    """The invitation with its engagement, host team and person, or None."""
    row = session.execute(
        select(SurveyInvitationRow, EngagementRow, TeamRow, PersonRow)
        .join(EngagementRow, EngagementRow.key == SurveyInvitationRow.engagement_key)
        .join(TeamRow, TeamRow.key == EngagementRow.host_team_key)
        .outerjoin(PersonRow, PersonRow.email == SurveyInvitationRow.email)
        .where(SurveyInvitationRow.id == invitation_id)
    ).first()
    if row is None:
        return None
    invitation, engagement, team, person = row
    return InvitationView(
        id=invitation.id,
        survey=invitation.survey,
        status=invitation.status,
        engagement_key=engagement.key,
        engagement_title=engagement.title,
        host_team_name=team.name,
        person_name=person.name if person is not None else None,
        email=invitation.email,
        closes_at=invitation.closes_at,
        answered_at=invitation.answered_at,
        anonymous=bool(engagement.anonymous),
        goals_business=engagement.goals_business,
        goals_technical=engagement.goals_technical,
    )


def _find_response(session: Session, ref: str) -> SurveyResponseRow | None:
    return session.scalars(select(SurveyResponseRow).where(SurveyResponseRow.response_ref == ref)).first()


def load_answers(session: Session, invitation_id: int, *, key: bytes) -> dict[str, Any] | None:
    """The answers given to ``invitation_id`` (found by ``response_ref``, so also when anonymous)."""
    response = _find_response(session, response_ref(invitation_id, key=key))
    if response is None:
        return None
    answers = dict(response.answers or {})
    nps_field = get_survey(response.survey).nps_field
    if nps_field and response.nps is not None:
        answers[nps_field] = response.nps
    return answers


# --- writing ---------------------------------------------------------------------------


def _day(moment: datetime) -> datetime:
    """``moment`` cut to its UTC day (anonymous engagements keep no finer timestamps)."""
    return datetime.combine(moment.astimezone(UTC).date(), time(), tzinfo=UTC)


def record_response(
    engine: Engine,
    invitation_id: int,
    answers: dict[str, Any],
    *,
    now: datetime,
    key: bytes,
    source: str = "web",
    submitted_at: datetime | None = None,
    accept_statuses: Collection[str] = OPEN_STATUSES,
    keep_sources: Collection[str] = (),
) -> RecordOutcome:
    """Store ``answers`` (as returned by :func:`auxeng.surveys.questions.validate_answers`) for one invitation.

    The answers are validated again against the invitation's survey (:class:`InvalidAnswers`),
    so callers that build them by hand cannot store what the page would refuse. The first answer creates the response and sets the invitation's ``answered_at``;
    later ones update it (the same answers again write nothing). ``submitted_at``
    (default ``now``) must be before the invitation's ``closes_at``, else
    :class:`SurveyClosed`. Two concurrent first submissions meet on the unique
    ``response_ref``: the loser retries as an update. A stored response whose ``source`` is
    in ``keep_sources`` is never changed: :class:`AnsweredElsewhere`.
    """
    for attempt in (1, 2):
        try:
            with session_scope(engine) as session:
                return _record(
                    session,
                    invitation_id,
                    answers,
                    now=now,
                    key=key,
                    source=source,
                    submitted_at=submitted_at or now,
                    accept_statuses=accept_statuses,
                    keep_sources=keep_sources,
                )
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("Concurrent first answer to invitation %s: updating the other one", invitation_id)
    raise AssertionError("unreachable")


def _record(
    session: Session,
    invitation_id: int,
    answers: dict[str, Any],
    *,
    now: datetime,
    key: bytes,
    source: str,
    submitted_at: datetime,
    accept_statuses: Collection[str],
    keep_sources: Collection[str] = (),
) -> RecordOutcome:
    invitation = session.get(SurveyInvitationRow, invitation_id)
    if invitation is None:
        raise InvitationNotFound(f"no survey invitation {invitation_id}")
    engagement = session.get(EngagementRow, invitation.engagement_key)
    assert engagement is not None  # foreign key
    anonymous = bool(engagement.anonymous)
    nps_field = get_survey(invitation.survey).nps_field
    answers, errors = validate_answers(
        invitation.survey, {name: str(value) for name, value in answers.items() if value is not None}
    )
    if errors:
        raise InvalidAnswers(errors)
    nps = answers.get(nps_field) if nps_field else None
    rest = {name: value for name, value in answers.items() if name != nps_field}
    ref = response_ref(invitation_id, key=key)
    existing = _find_response(session, ref)

    if existing is not None and existing.source in keep_sources:
        raise AnsweredElsewhere(existing.source, existing.submitted_at)
    if existing is not None and existing.nps == nps and (existing.answers or {}) == rest:
        invitations.mark_answered(session, invitation, existing.submitted_at)
        return RecordOutcome(created=False, response_id=existing.id, changed=False)
    if invitation.status not in accept_statuses:
        raise SurveyNotOpen(invitation.status)
    if submitted_at >= invitation.closes_at:
        raise SurveyClosed(invitation.closes_at)

    stamp = _day(now) if anonymous else now
    if existing is not None:
        existing.nps = nps
        existing.answers = rest
        existing.source = source
        existing.updated_at = stamp
        response = existing
        created = False
    else:
        response = SurveyResponseRow(
            response_ref=ref,
            invitation_id=None if anonymous else invitation.id,
            survey=invitation.survey,
            engagement_key=invitation.engagement_key,
            respondent_email=None if anonymous else invitation.email,
            nps=nps,
            answers=rest,
            source=source,
            submitted_at=_day(submitted_at) if anonymous else submitted_at,
            updated_at=stamp,
        )
        session.add(response)
        created = True
    session.flush()  # a concurrent first answer fails here, on the unique response_ref
    invitations.mark_answered(session, invitation, response.submitted_at, touch=None if anonymous else now)
    return RecordOutcome(created=created, response_id=response.id)


# --- CSV import ------------------------------------------------------------------------


def _read_csv_text(source: Path | str) -> str:
    if isinstance(source, Path):
        return csvinput.decode(source.read_bytes())
    return source


def _parse_submitted_at(raw: str, settings: Settings) -> datetime:
    text = raw.strip()
    try:
        moment, _day = csvinput.parse_moment(text, settings.timezone, bare_date_at=time())
    except csvinput.OutOfRange:
        raise
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO date (2026-11-30) or date-time (2026-11-30T14:05)"
        ) from None
    return moment


def import_responses_csv(
    engine: Engine,
    source: Path | str,
    *,
    now: datetime,
    key: bytes,
    settings: Settings | None = None,
    file_name: str | None = None,
) -> ImportReport:
    """Import answers collected elsewhere (paper, a form tool): ``source`` is a file or the CSV text.

    Columns: ``engagement,email,survey,nps,went_well,to_change,business_goals,
    technical_goals,submitted_at`` (a header row is required; ``submitted_at`` may be
    left out or empty, and is an ISO date or date-time in the program's time zone).
    Each valid row is saved as a response with source ``csv``, creating its invitation
    if the person was never invited; rows with problems are reported as
    ``<file>:<line>: <reason>`` (:func:`auxeng.csvinput.located`: ``file_name``, by default the
    file's name or ``<text>``, and the line where the row starts) and skipped. Importing
    the same file again changes nothing.
    """
    settings = settings or load_settings()
    file_name = file_name or (source.name if isinstance(source, Path) else "<text>")
    report = ImportReport()
    try:
        found = csvinput.records(_read_csv_text(source))
        head = next(found, None)
    except csvinput.NotText as exc:
        report.errors.append(f"{file_name}: the file is {exc}")
        return report
    if head is None:
        report.errors.append(f"{file_name}: the file is empty: expected a header row {','.join(CSV_COLUMNS)}")
        return report
    if isinstance(head, csvinput.Problem):
        report.errors.append(csvinput.located(file_name, head.line, f"header: {head.message}"))
        return report
    header = head.values
    columns = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_CSV_COLUMNS if name not in columns]
    unknown = [name for name in columns if name not in CSV_COLUMNS]
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    if missing or unknown or duplicated:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(repr(n) for n in unknown)}")
        if duplicated:
            parts.append(f"repeated column(s) {', '.join(duplicated)}")
        report.errors.append(
            csvinput.located(
                file_name,
                head.line,
                f"header: {'; '.join(parts)}. Expected the columns {','.join(CSV_COLUMNS)} "
                "(submitted_at may be left out).",
            )
        )
        return report

    seen: dict[tuple[str, str, str], int] = {}
    for record in found:
        if isinstance(record, csvinput.Problem):
            report.errors.append(csvinput.located(file_name, record.line, record.message))
            continue
        values = record.values
        if len(values) != len(columns):
            report.errors.append(
                csvinput.located(
                    file_name,
                    record.line,
                    f"has {len(values)} values but the header has {len(columns)} columns",
                )
            )
            continue
        row = dict(zip(columns, values, strict=True))
        engagement_key = clean_text(row["engagement"])
        email = clean_text(row["email"]).lower()
        who = f"({engagement_key or '?'}, {email or '?'})"
        problems, plan = _check_row(engine, row, engagement_key, email, now=now, settings=settings)
        if problems:
            report.errors.append(csvinput.located(file_name, record.line, f"{who} {'; '.join(problems)}"))
            continue
        assert plan is not None
        identity = (plan.survey, engagement_key, email)
        if identity in seen:
            report.errors.append(
                csvinput.located(
                    file_name,
                    record.line,
                    f"{who} the same engagement, email and survey as line {seen[identity]}",
                )
            )
            continue
        seen[identity] = record.line
        try:
            invitation_id = _ensure_invitation(
                engine, plan, engagement_key, email, now=now, settings=settings
            )
            _check_window(engine, invitation_id, plan.submitted_at, settings=settings)
            outcome = record_response(
                engine,
                invitation_id,
                plan.answers,
                now=now,
                key=key,
                source=ResponseSource.CSV,
                submitted_at=plan.submitted_at,
                accept_statuses=(InvitationStatus.INVITED, InvitationStatus.SKIPPED),
                keep_sources=(ResponseSource.WEB,),
            )
        except AnsweredElsewhere as exc:
            report.skipped.append(csvinput.located(file_name, record.line, f"{who} skipped: {exc}"))
            continue
        except (SurveyClosed, SurveyNotOpen, SubmittedTooEarly) as exc:
            report.errors.append(csvinput.located(file_name, record.line, f"{who} {exc}"))
            continue
        if outcome.created:
            report.created += 1
        elif outcome.changed:
            report.updated += 1
        else:
            report.unchanged += 1
    return report


@dataclass(frozen=True)
class _RowPlan:
    survey: str
    answers: dict[str, Any]
    submitted_at: datetime
    side: str
    role: str


def _check_row(
    engine: Engine, row: dict[str, str], engagement_key: str, email: str, *, now: datetime, settings: Settings
) -> tuple[list[str], _RowPlan | None]:
    problems: list[str] = []
    survey_kind = row["survey"].strip().lower()
    survey = None
    try:
        survey = get_survey(survey_kind) if survey_kind in END_OF_ENGAGEMENT_SURVEYS else None
    except UnknownSurvey:
        survey = None
    if survey is None:
        problems.append(
            f"survey: {row['survey'].strip()!r} is not one of {', '.join(END_OF_ENGAGEMENT_SURVEYS)} "
            "(the surveys whose answers this CSV format carries)"
        )
    answers: dict[str, Any] = {}
    if survey is not None:
        answers, errors = validate_answers(survey.kind, row)
        problems.extend(str(error) for error in errors)
    submitted_at = now
    if (row.get("submitted_at") or "").strip():
        try:
            submitted_at = _parse_submitted_at(row["submitted_at"], settings)
        except csvinput.OutOfRange as exc:
            problems.append(f"submitted_at: {exc}")
        except ValueError as exc:
            problems.append(f"submitted_at: {exc}")
        else:
            if submitted_at > now:
                problems.append(f"submitted_at: {row['submitted_at'].strip()} is in the future")
    member = None
    if not engagement_key:
        problems.append("engagement: missing")
    if not email:
        problems.append("email: missing")
    if engagement_key and email:
        with session_scope(engine) as session:
            if session.get(EngagementRow, engagement_key) is None:
                problems.append(f"engagement: {engagement_key} is not in the store (run sync-registry?)")
            else:
                member = session.scalars(
                    select(MemberRow).where(
                        MemberRow.engagement_key == engagement_key, MemberRow.email == email
                    )
                ).first()
                if member is None:
                    problems.append(f"email: {email} is not a member of {engagement_key}")
                elif survey is not None and member.side != survey.side:
                    problems.append(
                        f"email: {email} is on the {member.side} side of {engagement_key}; "
                        f"the {survey.kind} survey is for the {survey.side} side"
                    )
    if problems or survey is None or member is None:
        return problems, None
    return [], _RowPlan(
        survey=survey.kind,
        answers=answers,
        submitted_at=submitted_at.astimezone(UTC),
        side=member.side,
        role=member.role,
    )


def _check_window(engine: Engine, invitation_id: int, submitted_at: datetime, *, settings: Settings) -> None:
    """:class:`SubmittedTooEarly` when ``submitted_at`` lies before the start of the day the
    invitation was queued (``invited_on`` in ``settings.timezone``); the future is refused earlier."""
    with session_scope(engine) as session:
        invitation = session.get(SurveyInvitationRow, invitation_id)
        assert invitation is not None
        queued = datetime.combine(invitation.invited_on, time(), tzinfo=settings.timezone)
        if submitted_at < queued:
            raise SubmittedTooEarly(submitted_at, invitation.invited_on)


def _ensure_invitation(
    engine: Engine, plan: _RowPlan, engagement_key: str, email: str, *, now: datetime, settings: Settings
) -> int:
    """The invitation for (survey, engagement, email), created (``invited``) if there is none."""
    query = select(SurveyInvitationRow.id).where(
        SurveyInvitationRow.survey == plan.survey,
        SurveyInvitationRow.engagement_key == engagement_key,
        SurveyInvitationRow.email == email,
    )
    with session_scope(engine) as session:
        existing = session.scalar(query)
        if existing is not None:
            return existing
        return invitations.record_outside_invitation(
            session,
            survey=plan.survey,
            engagement_key=engagement_key,
            email=email,
            side=plan.side,
            role=plan.role,
            invited_on=plan.submitted_at.astimezone(settings.timezone).date(),
            closes_at=plan.submitted_at + timedelta(days=settings.survey_window_days),
            now=now,
        )
