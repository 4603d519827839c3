"""Building one person's messages: recipient, engagement, signed links, rendering, send window.

A planning step (surveys, check-ins, follow-ups, flag alerts) loads one :class:`MessagePlanner`
and asks it for each person's email and Slack message; :func:`run_planning_step` runs such a
step in one transaction with the link-signing key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from auxeng.messaging import blocks, tokens
from auxeng.messaging.outbox import EMAIL, SLACK, OutboundMessage, unsubscribe_headers
from auxeng.messaging.rendering import render
from auxeng.messaging.sendwindow import SendWindow, person_timezone
from auxeng.settings import Settings
from auxeng.store.models import EngagementRow, OptOutRow, PersonRow, ProgramRow, SurveyInvitationRow, TeamRow
from auxeng.store.uow import run_in_transaction


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    slack_id: str | None
    window: SendWindow | None


@dataclass(frozen=True)
class EngagementView:
    key: str
    title: str
    host_team_name: str
    end: date
    anonymous: bool


def end_of_day(day: date, settings: Settings) -> datetime:
    """The last second of ``day`` in the program's time zone, in UTC."""
    return datetime.combine(day, time(23, 59, 59), settings.timezone).astimezone(UTC)


class MessagePlanner:
    """Shared look-ups of one planning step (people, program, links), loaded in bulk."""

    def __init__(self, session: Session, settings: Settings, *, now: datetime, key: bytes) -> None:
        self.session = session
        self.settings = settings
        self.now = now
        self.key = key
        program = session.get(ProgramRow, 1)
        self.program_name = program.name if program else "AuxEng"
        self.people = {p.email: p for p in session.scalars(select(PersonRow))}
        self.opted_out = dict(session.execute(select(OptOutRow.email, OptOutRow.opted_out_at)).all())
        self.teams = {t.key: t for t in session.scalars(select(TeamRow))}

    def recipient(
        self, email: str, fallback_name: str | None = None, slack_id: str | None = None
    ) -> Recipient:
        person = self.people.get(email)
        zone = person_timezone(person.timezone if person else None, self.settings.default_recipient_timezone)
        return Recipient(
            email=email,
            name=(person.name if person and person.name else fallback_name) or email.split("@")[0],
            slack_id=(person.slack_id if person and person.slack_id else slack_id),
            window=(
                SendWindow(zone, self.settings.quiet_start, self.settings.quiet_end)
                if self.settings.quiet_start and self.settings.quiet_end
                else None
            ),
        )

    def engagement_view(self, row: EngagementRow) -> EngagementView:
        team = self.teams.get(row.host_team_key)
        return EngagementView(
            key=row.key,
            title=row.title,
            host_team_name=team.name if team else row.host_team_key,
            end=row.end_date,
            anonymous=row.anonymous,
        )

    def optout_link(self, email: str) -> str:
        return tokens.optout_url(email, public_url=self.settings.public_url, key=self.key, now=self.now)

    def survey_links(self, invitation: SurveyInvitationRow) -> tuple[str, list[tuple[int, str]]]:
        expires = invitation.closes_at + timedelta(days=30)
        link = tokens.survey_url(invitation.id, expires, public_url=self.settings.public_url, key=self.key)
        scores = [
            (
                score,
                tokens.survey_url(
                    invitation.id, expires, score=score, public_url=self.settings.public_url, key=self.key
                ),
            )
            for score in range(11)
        ]
        return link, scores

    def person_messages(
        self,
        *,
        dedupe_prefix: str,
        template: str,
        recipient: Recipient,
        context: dict[str, Any],
        earliest: datetime,
        engagement_key: str | None,
        invitation_id: int | None = None,
        stop_if_answered: bool = False,
        requires_ended: bool = False,
        kind: str | None = None,
    ) -> list[OutboundMessage]:
        """The email and Slack DM of one rendered message to one person, inside their send window.

        ``kind`` (default: the template's name) is what the outbox and its guards know it as.
        """
        optout = self.optout_link(recipient.email)
        rendered = render(
            template,
            person_name=recipient.name,
            program_name=self.program_name,
            optout_link=optout,
            **context,
        )
        not_before = recipient.window.next_opening(earliest) if recipient.window else earliest
        common = {
            "kind": kind or template,
            "recipient_email": recipient.email,
            "not_before": not_before,
            "engagement_key": engagement_key,
            "invitation_id": invitation_id,
            "stop_if_answered": stop_if_answered,
            "requires_ended": requires_ended,
        }
        window = {"send_window": recipient.window.as_payload()} if recipient.window else {}
        email = OutboundMessage(
            dedupe_key=f"{dedupe_prefix}:email",
            channel=EMAIL,
            recipient=recipient.email,
            subject=rendered.subject,
            body_text=rendered.text,
            body_html=rendered.html,
            payload={
                "to_name": recipient.name,
                **window,
                "headers": unsubscribe_headers(optout),
            },
            **common,
        )
        slack = OutboundMessage(
            dedupe_key=f"{dedupe_prefix}:slack",
            channel=SLACK,
            recipient=recipient.slack_id or f"email:{recipient.email}",
            body_text=rendered.slack,
            payload={
                **window,
                "blocks": blocks.message(blocks.sections(rendered.slack)),
            },
            **common,
        )
        return [email, slack]


def run_planning_step(step: Callable[..., Any], *, dry_run: bool, **kwargs: Any) -> dict[str, Any]:
    """A planning step that queues messages: :func:`run_in_transaction` with the link-signing key."""
    return run_in_transaction(step, dry_run=dry_run, key=tokens.secret_key(), **kwargs)
