"""Survey and outbox summaries for the CLI report (``python -m auxeng report``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auxeng.settings import load_settings
from auxeng.store.models import OutboxRow, SurveyInvitationRow, SurveyResponseRow


def survey_lines(session: Session) -> list[str]:
    """Invitations per engagement (invited, answered, skipped and why) and the outbox by status."""
    invitations = list(
        session.scalars(
            select(SurveyInvitationRow).order_by(SurveyInvitationRow.engagement_key, SurveyInvitationRow.id)
        )
    )
    if not invitations:
        return ["\nSurveys: none planned yet"]
    by_engagement: dict[str, list[SurveyInvitationRow]] = defaultdict(list)
    for row in invitations:
        by_engagement[row.engagement_key].append(row)
    lines = [f"\nSurveys: {len(by_engagement)} engagement(s)"]
    for key, rows in by_engagement.items():
        invited = [r for r in rows if r.status == "invited"]
        answered = sum(1 for r in invited if r.answered_at is not None)
        reminded = sum(1 for r in invited if r.reminders_queued)
        lines.append(
            f"  {key:<14} {len(invited)} invited ({answered} answered, {reminded} reminded), "
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
        lines.append(f"  {kind:<16} {channel:<6} {statuses}")
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
