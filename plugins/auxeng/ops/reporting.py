"""Check-in, survey and outbox summaries for the CLI report (``python -m auxeng report``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auxeng.checkins.follow_ups import ACTIVE as FOLLOW_UP_ACTIVE
from auxeng.registry.lifecycle import is_cancelled, is_ended, removed_clause
from auxeng.settings import load_settings
from auxeng.store.models import CheckinRow, FollowUpRow, OutboxRow, SurveyInvitationRow, SurveyResponseRow
from auxeng.vocabulary import SurveyKind

SURVEY_GROUPS = {
    SurveyKind.POST_ENGAGEMENT: "end",
    SurveyKind.RETRO: "end",
    SurveyKind.CHECKIN: "check-in",
    SurveyKind.FOLLOW_UP: "follow-up",
}
GROUP_ORDER = ("end", "check-in", "follow-up")


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


def survey_lines(session: Session) -> list[str]:
    """Invitations per engagement (invited, answered, skipped and why) and the outbox by status."""
    invitations = list(
        session.scalars(
            select(SurveyInvitationRow).order_by(SurveyInvitationRow.engagement_key, SurveyInvitationRow.id)
        )
    )
    if not invitations:
        return ["\nSurveys: none planned yet"]
    groups: dict[tuple[str, str], list[SurveyInvitationRow]] = defaultdict(list)
    for row in invitations:
        groups[(row.engagement_key, SURVEY_GROUPS.get(row.survey, row.survey))].append(row)
    lines = [f"\nSurveys: {len({key for key, _ in groups})} engagement(s)"]
    for (key, group), rows in sorted(
        groups.items(), key=lambda item: (item[0][0], GROUP_ORDER.index(item[0][1]))
    ):
        invited = [r for r in rows if r.status == "invited"]
        answered = sum(1 for r in invited if r.answered_at is not None)
        reminded = sum(1 for r in invited if r.reminders_queued)
        lines.append(
            f"  {key:<14} {group:<10} {len(invited)} invited ({answered} answered, {reminded} reminded), "
            f"{sum(1 for r in rows if r.status == 'skipped')} skipped"
        )
        lines += [f"      skipped {r.email}: {r.skip_reason}" for r in rows if r.status == "skipped"]
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
        example = next((p for p in files if p.suffix == ".eml" and "survey_invite" in p.name), None)
        if example is not None:
            lines.append(f"  e.g. {example}")
            link = survey_link_in(example)
            if link:
                lines.append(f"  its survey, to open in a browser: {link}")
    return lines


def survey_link_in(eml: Path) -> str | None:
    """The survey link in a dev-outbox invitation (the file holds the MIME as sent: quoted-printable)."""
    import email
    import email.policy
    import re

    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",))
    found = re.search(r"Or open the survey: (\S+)", body.get_content()) if body else None
    return found.group(1) if found else None


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
    invited = session.scalar(select(func.count()).where(SurveyInvitationRow.status == "invited")) or 0
    answered = (
        session.scalar(
            select(func.count()).where(
                SurveyInvitationRow.status == "invited", SurveyInvitationRow.answered_at.is_not(None)
            )
        )
        or 0
    )
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

    rate = f"{answered / invited:.0%}" if invited else "n/a"
    lines = [
        f"AuxEng state on {as_of.isoformat()}",
        f"  engagements   {counts(engagements)}",
        f"  surveys       {invited} invited, {answered} answered ({rate})",
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
