"""The weekly stakeholder digest: what it says (from the stored snapshot) and the messages it queues.

Content, for the week of a stored snapshot (:mod:`auxeng.nps.weekly`):

* the headline NPS of the week and of the last 13 weeks, with their 95% intervals;
* the change vs last week and vs the previous 13 weeks, flagged as real only when the
  difference's interval excludes 0 (:func:`auxeng.nps.maths.change_is_real`);
* the response rate, NPS per survey kind and per org, the check-in comfort score;
* the comments submitted since the last digest (detractors first; comments from
  anonymous engagements are never attributed);
* the check-ins due in the coming week;
* host-team independence (:mod:`auxeng.independence.views`): the program's score and its two
  headline proportions, the 13-week trend, the teams whose score dropped most over four weeks
  and the teams at risk, each with the components that moved it; one line saying why when the
  week's independence snapshot was not computed;
* the 13-week trend chart (PNG, inline in the email, uploaded to Slack).

A segment with fewer answers than ``AUXENG_NPS_MIN_RESPONSES`` is "too few responses".
Every message goes through the outbox under a per-week dedupe key: one digest per week
and recipient, however often the DAG runs.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from auxeng.independence.views import IndependenceSection, digest_section
from auxeng.messaging import blocks, tokens
from auxeng.messaging.optouts import digest_opted_out
from auxeng.messaging.outbox import EMAIL, SLACK, OutboundMessage, enqueue, unsubscribe_headers
from auxeng.messaging.rendering import render, slack_escape
from auxeng.nps.chart import WeekPoint, trend_chart
from auxeng.nps.maths import NpsResult, category, change_is_real, nps
from auxeng.nps.weekly import PREV_QUARTER, PREV_WEEK, QUARTER, WEEK, load_week, result_of
from auxeng.redflags.alerts import FlagView, flag_views
from auxeng.redflags.store import live_flags
from auxeng.settings import Settings
from auxeng.store.models import (
    CheckinRow,
    DigestRow,
    EngagementRow,
    NpsSnapshotRow,
    NpsWeekRow,
    OptOutRow,
    PersonRow,
    ProgramRow,
    SurveyResponseRow,
    TeamRow,
)
from auxeng.surveys.questions import TEXT, get_survey
from auxeng.vocabulary import NPS_SURVEYS, MessageKind, SurveyKind

log = logging.getLogger(__name__)

DIGEST_KINDS = (MessageKind.NPS_DIGEST, MessageKind.NPS_DIGEST_CHART)
CHART_CID = "nps-trend"
CHART_FILENAME = "nps-trend.png"
MAX_COMMENTS = 20
SURVEY_LABELS = {SurveyKind.POST_ENGAGEMENT: "End of engagement", SurveyKind.CHECKIN: "Three-month check-in"}
COMMENT_FIELDS = {
    survey.kind: [(f.name, f.label) for f in survey.fields if f.kind == TEXT]
    for survey in map(get_survey, NPS_SURVEYS)
}
CATEGORY_ORDER = {"detractor": 0, "passive": 1, "promoter": 2}


@dataclass(frozen=True)
class Figure:
    """An NPS as stakeholders see it: the text is "too few responses" below the threshold."""

    label: str
    result: NpsResult
    text: str
    shown: bool


@dataclass(frozen=True)
class Change:
    label: str
    text: str
    real: bool
    points: float | None


@dataclass(frozen=True)
class SegmentLine:
    kind: str
    label: str
    text: str
    responses: int


@dataclass(frozen=True)
class Comment:
    category: str
    score: int
    survey: str
    question: str
    text: str
    attribution: str | None
    submitted_on: date


@dataclass(frozen=True)
class DueCheckin:
    engagement_key: str
    team: str
    due_on: date
    invitation: str


@dataclass
class Digest:
    """Everything one week's digest says; rendered into email, Slack text and Block Kit."""

    program: str
    week: date
    min_responses: int
    headline_week: Figure
    headline_quarter: Figure
    changes: list[Change]
    response_rate_week: str
    response_rate_quarter: str
    segments: list[SegmentLine]
    maintainability: str
    comments: list[Comment]
    more_comments: int
    checkins_due: list[DueCheckin]
    trend: list[WeekPoint]
    comments_since: datetime | None
    comments_until: datetime
    open_flags: list[FlagView] = field(default_factory=list)
    independence: IndependenceSection | None = None

    @property
    def week_end(self) -> date:
        return self.week + timedelta(days=6)

    @property
    def period(self) -> str:
        return f"{self.week:%d %b} – {self.week_end:%d %b %Y}"


class DigestUnavailable(LookupError):
    """There is no stored snapshot for the week asked for."""


def figure(label: str, result: NpsResult, min_responses: int) -> Figure:
    text = result.shown(min_responses)
    return Figure(label, result, text, shown=result.score is not None and result.responses >= min_responses)


def change(label: str, before: Figure, after: Figure) -> Change:
    """How ``after`` differs from ``before``; never a number when either side is too small."""
    if not (before.shown and after.shown):
        return Change(label, "not comparable (too few responses)", real=False, points=None)
    points = after.result.score - before.result.score  # type: ignore[operator]
    real = change_is_real(before.result, after.result)
    verdict = "a real change (95%)" if real else "within the margin of error"
    return Change(label, f"{points:+.0f} points, {verdict}", real=real, points=points)


def rate_text(answered: int, invited: int) -> str:
    if not invited:
        return "nobody invited"
    return f"{100 * answered / invited:.0f}% ({answered} of {invited} invited)"


def _row_result(
    rows: dict[tuple[str, str, str], NpsSnapshotRow], span: str, segment: str, key: str
) -> NpsResult:
    row = rows.get((span, segment, key))
    return result_of(row) if row is not None else nps(0, 0, 0)


def _comments(
    session: Session, since: datetime | None, until: datetime, start: datetime
) -> tuple[list[Comment], int]:
    r, e = SurveyResponseRow, EngagementRow
    query = (
        select(r, e.anonymous, TeamRow.name, PersonRow.name)
        .join(e, e.key == r.engagement_key)
        .join(TeamRow, TeamRow.key == e.host_team_key)
        .outerjoin(PersonRow, PersonRow.email == r.respondent_email)
        .where(r.survey.in_(tuple(COMMENT_FIELDS)), r.nps.is_not(None), r.submitted_at < until)
        .where(r.submitted_at >= (since or start))
    )
    comments: list[Comment] = []
    for response, anonymous, team, person in session.execute(query):
        for name, label in COMMENT_FIELDS[response.survey]:
            text = str((response.answers or {}).get(name) or "").strip()
            if not text:
                continue
            attribution = None
            if not anonymous:
                who = person or (response.respondent_email or "").split("@")[0] or "A respondent"
                attribution = f"{who}, {team} ({response.engagement_key})"
            comments.append(
                Comment(
                    category=category(response.nps),
                    score=response.nps,
                    survey=SURVEY_LABELS[response.survey],
                    question=label,
                    text=text,
                    attribution=attribution,
                    submitted_on=response.submitted_at.date(),
                )
            )
    comments.sort(key=lambda c: (CATEGORY_ORDER[c.category], c.score, c.submitted_on, c.text))
    return comments[:MAX_COMMENTS], max(0, len(comments) - MAX_COMMENTS)


def _checkins_due(session: Session, first: date, last: date) -> list[DueCheckin]:
    c = CheckinRow
    due = c.due_override.is_not(None) & (c.due_override >= first) & (c.due_override <= last)
    due_plain = c.due_override.is_(None) & (c.due_on >= first) & (c.due_on <= last)
    rows = session.execute(
        select(c, TeamRow.name)
        .join(EngagementRow, EngagementRow.key == c.engagement_key)
        .join(TeamRow, TeamRow.key == EngagementRow.host_team_key)
        .where(c.status == "scheduled", or_(due, due_plain))
    ).all()
    items = [
        DueCheckin(
            engagement_key=row.engagement_key,
            team=team,
            due_on=row.due_override or row.due_on,
            invitation="calendar invitation sent"
            if row.calendar_method == "REQUEST"
            else "invitation pending",
        )
        for row, team in rows
    ]
    return sorted(items, key=lambda item: (item.due_on, item.engagement_key))


def build_digest(session: Session, week: date, *, settings: Settings) -> Digest:
    """The digest of the stored week ``week``; raises :class:`DigestUnavailable` if it was never computed."""
    stored = load_week(session, week)
    if stored is None:
        raise DigestUnavailable(f"no weekly NPS snapshot for the week of {week}: run auxeng_weekly_nps first")
    header, rows = stored
    threshold = header.min_responses
    program = session.get(ProgramRow, 1)
    this_week = figure("This week", _row_result(rows, WEEK, "program", "all"), threshold)
    last_week = figure("Last week", _row_result(rows, PREV_WEEK, "program", "all"), threshold)
    quarter = figure("Last 13 weeks", _row_result(rows, QUARTER, "program", "all"), threshold)
    previous_quarter = figure("13 weeks before", _row_result(rows, PREV_QUARTER, "program", "all"), threshold)
    week_row, quarter_row = rows.get((WEEK, "program", "all")), rows.get((QUARTER, "program", "all"))

    segments = []
    for (span, segment, key), row in sorted(rows.items()):
        if span != QUARTER or segment not in ("survey", "org"):
            continue
        label = SURVEY_LABELS.get(key, key) if segment == "survey" else key
        segments.append(SegmentLine(segment, label, result_of(row).shown(threshold), row.responses))
    comfort = rows.get((QUARTER, "survey", SurveyKind.CHECKIN))
    if comfort is None or comfort.maintainability_answers < threshold or comfort.maintainability_mean is None:
        maintainability = "too few responses"
    else:
        maintainability = f"{comfort.maintainability_mean:.1f} / 5 (n={comfort.maintainability_answers})"

    previous = session.scalar(
        select(DigestRow).where(DigestRow.week < week).order_by(DigestRow.week.desc()).limit(1)
    )
    current = session.get(DigestRow, week)
    since = current.comments_since if current is not None else (previous.comments_until if previous else None)
    comments, more = _comments(session, since, header.ends_at, header.starts_at)
    next_monday = week + timedelta(weeks=1)
    trend = trend_points(header)
    return Digest(
        program=program.name if program is not None else "AuxEng",
        week=week,
        min_responses=threshold,
        headline_week=this_week,
        headline_quarter=quarter,
        changes=[
            change("vs last week", last_week, this_week),
            change("vs the 13 weeks before", previous_quarter, quarter),
        ],
        response_rate_week=rate_text(week_row.answered, week_row.invited) if week_row else rate_text(0, 0),
        response_rate_quarter=rate_text(quarter_row.answered, quarter_row.invited)
        if quarter_row
        else rate_text(0, 0),
        segments=segments,
        maintainability=maintainability,
        comments=comments,
        more_comments=more,
        checkins_due=_checkins_due(session, next_monday, next_monday + timedelta(days=6)),
        trend=trend,
        comments_since=since,
        comments_until=header.ends_at,
        open_flags=flag_views(session, live_flags(session)),
        independence=digest_section(session, week, settings=settings),
    )


def trend_points(header: NpsWeekRow) -> list[WeekPoint]:
    """The program's NPS for each of the 13 weeks a computed week holds (oldest first)."""
    return [
        WeekPoint(
            date.fromisoformat(point["week"]), nps(point["promoters"], point["passives"], point["detractors"])
        )
        for point in header.trend
    ]


def chart_title(program: str, week: date) -> str:
    return f"{program} NPS, 13 weeks to {week + timedelta(days=6):%d %b %Y}"


def trend_png(program: str, week: date, trend: list[WeekPoint], min_responses: int) -> bytes:
    """The 13-week trend chart of ``week`` (its Monday), as the digest sends it (the dashboard shows
    the same chart as SVG, :func:`auxeng.nps.chart.trend_svg`)."""
    return trend_chart(trend, title=chart_title(program, week), min_responses=min_responses)


def chart_png(digest: Digest) -> bytes:
    return trend_png(digest.program, digest.week, digest.trend, digest.min_responses)


def slack_blocks(digest: Digest, *, chart_follows: bool) -> list[dict[str, Any]]:
    """Block Kit of the Slack digest: the headline numbers, the changes, the top comments."""
    changes = "\n".join(
        f"{':small_red_triangle:' if c.real and (c.points or 0) > 0 else ':small_red_triangle_down:' if c.real else '•'} "
        f"{slack_escape(c.label)}: {slack_escape(c.text)}"
        for c in digest.changes
    )
    out: list[dict[str, Any]] = [
        blocks.header(f"{digest.program} weekly NPS, {digest.period}"),
        blocks.fields(
            [
                f"*This week*\n{slack_escape(digest.headline_week.text)}",
                f"*Last 13 weeks*\n{slack_escape(digest.headline_quarter.text)}",
                f"*Response rate (13 weeks)*\n{slack_escape(digest.response_rate_quarter)}",
                f"*Check-in comfort (13 weeks)*\n{slack_escape(digest.maintainability)}",
            ]
        ),
        *blocks.sections(f"*Change*\n{changes}"),
    ]
    if digest.comments:
        lines = [
            f"• _{c.score}/10_ {slack_escape(c.text[:200])}"
            + (f" — {slack_escape(c.attribution)}" if c.attribution else "")
            for c in digest.comments[:5]
        ]
        more = len(digest.comments) - 5 + digest.more_comments
        if more > 0:
            lines.append(f"…and {more} more in the email digest")
        out += blocks.sections("*New comments*\n" + "\n".join(lines))
    if digest.checkins_due:
        lines = [
            f"• {c.due_on:%a %d %b}: {slack_escape(c.engagement_key)} ({slack_escape(c.team)})"
            for c in digest.checkins_due
        ]
        out += blocks.sections("*Check-ins due next week*\n" + "\n".join(lines))
    if digest.independence is not None:
        out += blocks.sections(independence_mrkdwn(digest.independence))
    if digest.open_flags:
        lines = [
            f"• {':rotating_light:' if f.severity == 'critical' else ':warning:'} *{slack_escape(f.title)}: "
            f"{slack_escape(f.subject)}* ({f.status} since {f.opened_on:%d %b}) {slack_escape(f.summary[:200])}"
            for f in digest.open_flags[:10]
        ]
        if len(digest.open_flags) > 10:
            lines.append(f"…and {len(digest.open_flags) - 10} more in the email digest")
        out += blocks.sections(f"*Open red flags ({len(digest.open_flags)})*\n" + "\n".join(lines))
    note = "NPS = % promoters (9-10) − % detractors (0-6), 95% adjusted-Wald interval; "
    note += f"fewer than {digest.min_responses} answers show as too few responses."
    if chart_follows:
        note += " Trend chart below."
    out.append(blocks.context(note))
    return blocks.message(out)


def independence_mrkdwn(section: IndependenceSection) -> str:
    """The digest's independence section as Slack mrkdwn."""
    if section.missing:
        return f"*Independence*\n{slack_escape(section.missing)}"
    lines = [
        "*Independence*",
        f"• Score: {slack_escape(section.score)}",
        f"• Independent at three months: {slack_escape(section.independent)}",
        f"• Goals achieved: {slack_escape(section.goals)}",
        f"• 13 weeks: {slack_escape(section.trend_text)}",
    ]
    for title, teams in (
        ("Biggest drops (4 weeks)", section.dropped),
        (f"At risk (below {section.threshold})", section.at_risk),
    ):
        if teams:
            lines.append(f"_{title}_")
            lines += [
                f"• *{slack_escape(t.name)}* {t.score:.0f} ({slack_escape(t.change_text)}): {slack_escape(t.why)}"
                for t in teams[:10]
            ]
    if section.hidden_at_risk:
        lines.append(
            f"• {section.hidden_at_risk} more at risk with fewer than {section.min_responses} engagements "
            "(not shown; see the red flags)"
        )
    return "\n".join(lines)


@dataclass
class DigestReport:
    week: str
    status: str = "queued"
    emails: int = 0
    slack: int = 0
    charts: int = 0
    opted_out: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "week": self.week,
            "status": self.status,
            "emails_queued": self.emails,
            "slack_queued": self.slack,
            "charts_queued": self.charts,
            "opted_out": sorted(self.opted_out),
        }


def plan_digest(
    session: Session,
    *,
    settings: Settings,
    key: bytes,
    week: date,
    now: datetime,
    slack_chart: bool = True,
) -> DigestReport:
    """Queue the digest of ``week`` to every stakeholder (email) and the digest Slack channel.

    ``slack_chart`` says whether the chart can be uploaded (a Slack API connection or the
    dev outbox; an incoming webhook can only post text).
    """
    report = DigestReport(week=week.isoformat())
    digest = build_digest(session, week, settings=settings)
    program = session.get(ProgramRow, 1)
    stakeholders = sorted({email.strip().lower() for email in (program.stakeholders if program else [])})
    opted = digest_opted_out(session) | set(
        session.scalars(select(OptOutRow.email).where(OptOutRow.email.in_(stakeholders)))
    )
    recipients = [email for email in stakeholders if email not in opted]
    report.opted_out = [email for email in stakeholders if email in opted]
    png = chart_png(digest)
    chart = base64.b64encode(png).decode()
    names = dict(
        session.execute(select(PersonRow.email, PersonRow.name).where(PersonRow.email.in_(recipients))).all()
    )
    messages: list[OutboundMessage] = []
    for email in recipients:
        unsubscribe = tokens.digest_optout_url(email, public_url=settings.public_url, key=key, now=now)
        rendered = render(
            MessageKind.NPS_DIGEST, digest=digest, unsubscribe_link=unsubscribe, chart_cid=CHART_CID
        )
        messages.append(
            OutboundMessage(
                dedupe_key=f"{MessageKind.NPS_DIGEST}:{week}:email:{email}",
                channel=EMAIL,
                kind=MessageKind.NPS_DIGEST,
                recipient=email,
                recipient_email=email,
                not_before=now,
                subject=rendered.subject,
                body_text=rendered.text,
                body_html=rendered.html,
                payload={
                    "to_name": names.get(email) or "",
                    "inline_images": [{"cid": CHART_CID, "filename": CHART_FILENAME, "data": chart}],
                    "headers": unsubscribe_headers(unsubscribe),
                },
            )
        )
    channel = program.digest_slack_channel if program else None
    if channel:
        rendered = render(MessageKind.NPS_DIGEST, digest=digest, unsubscribe_link="", chart_cid=CHART_CID)
        messages.append(
            OutboundMessage(
                dedupe_key=f"{MessageKind.NPS_DIGEST}:{week}:slack:{channel}",
                channel=SLACK,
                kind=MessageKind.NPS_DIGEST,
                recipient=channel,
                not_before=now,
                body_text=rendered.slack,
                payload={"blocks": slack_blocks(digest, chart_follows=slack_chart)},
            )
        )
        if slack_chart:
            messages.append(
                OutboundMessage(
                    dedupe_key=f"{MessageKind.NPS_DIGEST_CHART}:{week}:slack:{channel}",
                    channel=SLACK,
                    kind=MessageKind.NPS_DIGEST_CHART,
                    recipient=channel,
                    not_before=now,
                    body_text="",
                    payload={
                        "file": {
                            "filename": f"nps-trend-{week}.png",
                            "title": f"{digest.program} NPS, 13 weeks to {digest.week_end:%d %b %Y}",
                            "data": chart,
                        }
                    },
                )
            )
    queued = enqueue(session, messages, now=now)
    for message in messages:
        if message.channel == EMAIL:
            report.emails += 1
        elif message.kind == MessageKind.NPS_DIGEST_CHART:
            report.charts += 1
        else:
            report.slack += 1
    if queued == 0 and messages:
        report.status = "already queued"
    if session.get(DigestRow, week) is None:
        session.add(
            DigestRow(
                week=week,
                comments_since=digest.comments_since,
                comments_until=digest.comments_until,
                recipients=len(recipients),
                queued_at=now,
            )
        )
    report.samples = [
        f"{digest.headline_week.label}: {digest.headline_week.text}",
        f"{len(digest.comments)} comments",
    ]
    session.flush()
    return report


STALE_WEEK = "stale week, not sent"  # the status of a digest run whose week is too old to send


def latest_week(session: Session, moment: datetime) -> date | None:
    """The newest stored week that had ended by ``moment``."""
    return session.scalar(
        select(NpsWeekRow.week).where(NpsWeekRow.ends_at <= moment).order_by(NpsWeekRow.week.desc()).limit(1)
    )


def too_old_to_send(week_ends_at: datetime, now: datetime, max_age_days: int) -> bool:
    """Whether a week that ended at ``week_ends_at`` is too old for its digest to go out at ``now``
    (more than ``AUXENG_DIGEST_MAX_AGE_DAYS`` before): a backfill, recomputed but never sent."""
    return week_ends_at + timedelta(days=max_age_days) < now


def plan_weekly_digest(
    session: Session,
    *,
    settings: Settings,
    key: bytes,
    now: datetime,
    week: date | None = None,
    slack_chart: bool = True,
) -> DigestReport:
    """Queue the digest of ``week`` (else the newest week computed by ``now``) unless it is stale.

    A backfill announces old weeks too: a week that ended more than
    ``AUXENG_DIGEST_MAX_AGE_DAYS`` before ``now`` is recomputed but not sent.
    """
    week = week or latest_week(session, now)
    if week is None:
        log.warning("No weekly NPS snapshot yet: run auxeng_weekly_nps first; nothing to send")
        return DigestReport(week="", status="no snapshot")
    header = session.get(NpsWeekRow, week)
    if header is not None and too_old_to_send(header.ends_at, now, settings.digest_max_age_days):
        log.info(
            "The week of %s ended on %s, more than %d days before this run: a backfill; no digest sent",
            week,
            header.ends_at.date(),
            settings.digest_max_age_days,
        )
        return DigestReport(week=week.isoformat(), status=STALE_WEEK)
    return plan_digest(session, settings=settings, key=key, week=week, now=now, slack_chart=slack_chart)
