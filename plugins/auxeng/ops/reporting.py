"""Check-in, survey and outbox summaries for the CLI report (``python -m auxeng report``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auxeng.checkins.follow_ups import ACTIVE as FOLLOW_UP_ACTIVE
from auxeng.messaging.outbox import EMAIL
from auxeng.registry.lifecycle import is_cancelled, is_ended, removed_clause
from auxeng.settings import load_settings
from auxeng.store.models import CheckinRow, FollowUpRow, OutboxRow, SurveyInvitationRow, SurveyResponseRow
from auxeng.surveys.tally import NPS_COUNTS, SURVEY_ORDER, invitation_tally, survey_name
from auxeng.vocabulary import InvitationStatus, MessageKind, OutboxStatus, SurveyKind


def checkin_lines(session: Session, as_of: date) -> list[str]:
    """Check-ins by status, the open ones (due date, calendar, survey) and the monthly follow-ups."""
    checkins = list(
        session.scalars(select(CheckinRow).order_by(CheckinRow.due_on, CheckinRow.engagement_key))
    )
    if not checkins:
        return ["\nCheck-ins: none yet"]
    statuses = Counter(row.status for row in checkins)
    lines = [f"\nCheck-ins: {len(checkins)} ({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))})"]
    for row in checkins:
        if row.status in ("missed",):
            continue
        if (
            row.status in ("answered", "unanswered")
            and row.closed_at
            and row.closed_at.date() < as_of - timedelta(days=30)
        ):
            continue
        calendar = "no invitation yet" if row.calendar_method is None else f"calendar {row.calendar_method}"
        if row.calendar_method and row.sequence:
            calendar += f" (SEQUENCE {row.sequence})"
        if row.slot_start and row.slot_timezone and row.calendar_method == "REQUEST":
            local = row.slot_start.astimezone(ZoneInfo(row.slot_timezone))
            calendar += f" {local:%a %d %b %H:%M} {row.slot_timezone}"
        detail = {
            "surveying": f"survey sent {row.survey_sent_on} to {row.invited}, closes {row.closes_at:%Y-%m-%d}"
            if row.closes_at
            else "surveying",
            "answered": f"{row.responses} answer(s), comfort min {row.maintainability_min}, "
            f"help {row.help_needed}, NPS {row.nps_mean}",
            "unanswered": "nobody answered",
        }.get(row.status, row.note or "")
        when = "due today" if row.due_on == as_of else f"due {row.due_on}"
        lines.append(f"  {row.engagement_key:<14} {row.status:<10} {when}; {calendar}; {detail}".rstrip("; "))
        lines += [f"      warning: {w}" for w in row.warnings or []]
    if statuses.get("missed"):
        lines.append(f"  ({statuses['missed']} missed: due before the catch-up cut-off, nothing sent)")
    follow_ups = list(session.scalars(select(FollowUpRow).order_by(FollowUpRow.engagement_key)))
    if follow_ups:
        states = Counter(row.status for row in follow_ups)
        lines.append(f"\nMonthly follow-ups: {', '.join(f'{n} {s}' for s, n in sorted(states.items()))}")
        lines += [
            f"  {row.engagement_key:<14} "
            + (
                f"reminded for month {row.last_round} of {row.months}"
                if row.last_round
                else "first reminder not due yet"
            )
            for row in follow_ups
            if row.status == FOLLOW_UP_ACTIVE
        ]
    return lines


def survey_lines(session: Session, now: datetime | None = None) -> list[str]:
    """Invitations per engagement and survey (host-team survey, retro, check-in, follow-up: invited,
    answered, skipped and why; the dashboard's counts, :mod:`auxeng.surveys.tally`), the outbox by
    status, and an unanswered host-team survey link from the dev outbox to try."""
    now = now or datetime.now(UTC)
    tally = invitation_tally(session)
    if not tally:
        return ["\nSurveys: none planned yet"]
    lines = [f"\nSurveys: {len({key for key, _ in tally})} engagement(s). {NPS_COUNTS}"]
    order = {kind: n for n, kind in enumerate(SURVEY_ORDER)}
    skipped = defaultdict(list)
    for row in session.scalars(
        select(SurveyInvitationRow)
        .where(SurveyInvitationRow.status == InvitationStatus.SKIPPED)
        .order_by(SurveyInvitationRow.id)
    ):
        skipped[(row.engagement_key, row.survey)].append(row)
    for (key, kind), counts in sorted(
        tally.items(), key=lambda item: (item[0][0], order.get(item[0][1], 99))
    ):
        lines.append(
            f"  {key:<14} {survey_name(kind):<23} {counts.invited} invited ({counts.answered} answered, "
            f"{counts.reminded} reminded), {counts.skipped} skipped"
        )
        lines += [f"      skipped {r.email}: {r.skip_reason}" for r in skipped[(key, kind)]]
    responses = session.scalar(select(func.count()).select_from(SurveyResponseRow))
    lines.append(f"  responses recorded: {responses}")
    counts = Counter(session.execute(select(OutboxRow.kind, OutboxRow.channel, OutboxRow.status)).all())
    lines.append("\nOutbox (kind / channel: status counts)")
    for kind, channel in sorted({(k, c) for k, c, _ in counts}):
        statuses = ", ".join(
            f"{n} {s}" for (k, c, s), n in sorted(counts.items()) if (k, c) == (kind, channel)
        )
        lines.append(f"  {kind:<18} {channel:<6} {statuses}")
    for row in session.scalars(select(OutboxRow).where(OutboxRow.status == "failed").limit(5)):
        lines.append(f"      failed {row.channel} → {row.recipient}: {row.reason}")
    dev_outbox = load_settings().dev_outbox
    if dev_outbox is not None and Path(dev_outbox).is_dir():
        files = sorted(p for p in Path(dev_outbox).rglob("*") if p.is_file())
        lines.append(f"\nDev outbox {dev_outbox}: {len(files)} file(s) (what would have been sent)")
        lines += survey_to_try(session, Path(dev_outbox), now)
    return lines


def survey_to_try(session: Session, dev_outbox: Path, now: datetime) -> list[str]:
    """A host-team survey link to open in a browser: from the dev-outbox email of an invitation
    nobody has answered that is still open (the one closing last); when there is none, why."""
    invitation = SurveyInvitationRow
    open_host = (
        invitation.survey == SurveyKind.POST_ENGAGEMENT,
        invitation.status == InvitationStatus.INVITED,
        invitation.answered_at.is_(None),
        invitation.closes_at > now,
    )
    sent = session.execute(
        select(OutboxRow.id, OutboxRow.recipient, OutboxRow.engagement_key)
        .join(invitation, invitation.id == OutboxRow.invitation_id)
        .where(
            *open_host,
            OutboxRow.kind == MessageKind.SURVEY_INVITE,
            OutboxRow.channel == EMAIL,
            OutboxRow.status == OutboxStatus.SENT,
        )
        .order_by(invitation.closes_at.desc(), OutboxRow.id.desc())
    ).all()
    for message_id, recipient, engagement in sent:
        eml = next(iter(sorted(dev_outbox.rglob(f"{message_id:06d}-*.eml"))), None)
        link = survey_link_in(eml) if eml is not None else None
        if link:
            return [
                f"  e.g. {eml}",
                f"  an unanswered host-team survey ({engagement}, {recipient}), to open in a browser: {link}",
            ]
    return [f"  no host-team survey link to try: {why_no_survey_link(session, open_host, bool(sent))}"]


def survey_link_in(eml: Path) -> str | None:
    """The survey link in a dev-outbox invitation (the file holds the MIME as sent: quoted-printable)."""
    import email
    import email.policy
    import re

    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",))
    found = re.search(r"Or open the survey: (\S+)", body.get_content()) if body else None
    return found.group(1) if found else None


def why_no_survey_link(session: Session, open_host: tuple, sent_elsewhere: bool) -> str:
    """Why :func:`survey_to_try` found no link, from the store."""
    invitation = SurveyInvitationRow
    host = invitation.survey == SurveyKind.POST_ENGAGEMENT
    invited = session.scalar(select(func.count()).where(host, invitation.status == InvitationStatus.INVITED))
    if not invited:
        return (
            "nobody has been invited to one yet (they follow auxeng_detect_ended for engagements "
            "that ended in the last AUXENG_SURVEY_MAX_AGE_DAYS days)"
        )
    if sent_elsewhere:
        return "the emails of the open ones are not in this dev outbox (sent before it was set?)"
    still_open = session.scalar(select(func.count()).where(*open_host)) or 0
    if still_open:
        return f"{still_open} open one(s) not delivered yet (the next auxeng_deliver_outbox run writes them here)"
    answered = session.scalar(
        select(func.count()).where(
            host, invitation.status == InvitationStatus.INVITED, invitation.answered_at.is_not(None)
        )
    )
    return f"all {invited} invited were answered ({answered}) or their survey has closed"


def state_lines(session: Session, as_of: date) -> list[str]:
    """The pack's state on one screen: engagements, surveys, check-ins, NPS, red flags, outbox."""
    from auxeng.redflags.rules import RULE_TITLES
    from auxeng.store.models import EngagementRow, FlagRow, NpsSnapshotRow, NpsWeekRow

    engagements = Counter(
        "cancelled" if is_cancelled(row) else "ended" if is_ended(row) else "running or planned"
        for row in session.execute(
            select(EngagementRow.status, EngagementRow.ended_at).where(~removed_clause())
        )
    )
    by_survey: Counter[str] = Counter()
    answered_by_survey: Counter[str] = Counter()
    for (_key, kind), counts in invitation_tally(session).items():
        by_survey[kind] += counts.invited
        answered_by_survey[kind] += counts.answered
    checkins = Counter(session.scalars(select(CheckinRow.status)))
    week = session.scalar(select(NpsWeekRow.week).order_by(NpsWeekRow.week.desc()).limit(1))
    quarter = (
        session.scalar(
            select(NpsSnapshotRow).where(
                NpsSnapshotRow.week == week, NpsSnapshotRow.span == "13w", NpsSnapshotRow.segment == "program"
            )
        )
        if week
        else None
    )
    flags = Counter(
        session.execute(
            select(FlagRow.severity, FlagRow.rule, FlagRow.status).where(FlagRow.status != "resolved")
        ).all()
    )
    resolved = session.scalar(select(func.count()).where(FlagRow.status == "resolved")) or 0
    outbox = Counter(session.scalars(select(OutboxRow.status)))

    def counts(counter: Counter) -> str:
        return ", ".join(f"{n} {k}" for k, n in sorted(counter.items())) or "none"

    surveys = "; ".join(
        f"{survey_name(kind)} {by_survey[kind]} invited, {answered_by_survey[kind]} answered"
        for kind in SURVEY_ORDER
        if by_survey[kind]
    )
    lines = [
        f"AuxEng state on {as_of.isoformat()}",
        f"  engagements   {counts(engagements)}",
        f"  surveys       {surveys or 'nobody invited yet'}",
        f"  check-ins     {counts(checkins)}",
    ]
    if quarter is not None and quarter.score is not None and not quarter.suppressed:
        lines.append(
            f"  NPS           {quarter.score:+.0f} over the 13 weeks to {week + timedelta(days=6)} "
            f"(95% CI {quarter.ci_low:+.0f} to {quarter.ci_high:+.0f}, {quarter.responses} answers)"
        )
    else:
        lines.append("  NPS           no weekly snapshot yet (auxeng_weekly_nps runs on Mondays)")
    lines.append(f"  red flags     {sum(flags.values())} live, {resolved} resolved")
    for (severity, rule, status), n in sorted(flags.items(), key=lambda item: (item[0][0], item[0][1])):
        lines.append(f"    {n} {severity:<8} {RULE_TITLES.get(rule, rule)} ({status})")
    lines.append(f"  outbox        {counts(outbox)}")
    for reason, n in Counter(
        session.scalars(select(OutboxRow.reason).where(OutboxRow.status == "failed"))
    ).most_common(3):
        lines.append(f"    failed x{n}: {reason}")
    return lines
