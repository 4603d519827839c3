"""The pack's words, defined once: survey and message kinds, statuses, causes, NPS thresholds.

Every value is a ``StrEnum``: it is stored as its plain string (existing rows keep working)
and compares equal to it, so a kind or status is never retyped as a literal elsewhere.
"""

from __future__ import annotations

from enum import StrEnum

PROMOTER_MIN = 9
"""An answer of 9 or 10 is a promoter."""
DETRACTOR_MAX = 6
"""An answer of 0 to 6 is a detractor (and alerts the AuxEng lead)."""


class SurveyKind(StrEnum):
    """What a survey invitation or response is about."""

    POST_ENGAGEMENT = "post_engagement"
    RETRO = "retro"
    CHECKIN = "checkin"
    FOLLOW_UP = "follow_up"


END_OF_ENGAGEMENT_SURVEYS = (SurveyKind.POST_ENGAGEMENT, SurveyKind.RETRO)
NPS_SURVEYS = (SurveyKind.POST_ENGAGEMENT, SurveyKind.CHECKIN)

NO_ORG = "(no org)"
"""The org segment of host teams without an org (weekly NPS and independence snapshots)."""


class IndependenceComponent(StrEnum):
    """The independence score's components, in the formula's order (``docs/independence.md``);
    ``AUXENG_INDEPENDENCE_WEIGHTS`` names them."""

    MAINTAINABILITY = "maintainability"
    HELP_NEEDED = "help_needed"
    HELP_ASKS = "help_asks"
    REPEAT_ENGAGEMENT = "repeat_engagement"
    NPS_CHANGE = "nps_change"
    GOALS_BUSINESS = "goals_business"
    GOALS_TECHNICAL = "goals_technical"


OVERRIDE_ACTIONS = ("reschedule", "skip", "resume", "finish_follow_up")
"""What ``auxeng_checkin_override`` can do to one check-in (:mod:`auxeng.checkins.overrides`)."""
WEEKLY_NPS_WEEKDAY, WEEKLY_NPS_HOUR = 1, 7
"""``auxeng_weekly_nps`` runs on Mondays (cron numbering) at 07:00 in ``AUXENG_TIMEZONE``."""
MAX_DRAINERS = 16
"""At most this many ``deliver_outbox`` drainers side by side (``auxeng_deliver_outbox``'s param)."""
DRAINER_SUMMARY_KEY = "summary"
"""The XCom key under which each drainer publishes its summary."""


class MessageKind(StrEnum):
    """What an outbox row is (its guards and the dashboard know it by this)."""

    SURVEY_INVITE = "survey_invite"
    SURVEY_REMINDER = "survey_reminder"
    DETRACTOR_ALERT = "detractor_alert"
    CHECKIN_CALENDAR = "checkin_calendar"
    FOLLOW_UP_REMINDER = "follow_up_reminder"
    HANDOVER = "handover"
    FLAG_ALERT = "flag_alert"
    NPS_DIGEST = "nps_digest"
    NPS_DIGEST_CHART = "nps_digest_chart"
    OPS_FAILURE = "ops_failure"


class OutboxStatus(StrEnum):
    """An outbox row's state: ``pending`` until it is ``sent``, ``failed`` or ``skipped``.

    ``sending``: a drainer is handing it to its transport (committed before it does);
    ``in_doubt``: that drainer died before recording the outcome, so the message may have
    gone out: it is never sent again unless a person retries it.
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    IN_DOUBT = "in_doubt"


class InvitationStatus(StrEnum):
    """A survey invitation's state (answers are recorded beside it, in ``answered_at``)."""

    INVITED = "invited"
    SKIPPED = "skipped"
    VOID = "void"


class ResponseSource(StrEnum):
    """Where a survey answer came from."""

    WEB = "web"
    CSV = "csv"
    DEMO = "demo"


class FlagRule(StrEnum):
    """The dependency red-flag rules (see :mod:`auxeng.redflags.rules`)."""

    HELP_REQUESTS = "help_requests"
    CHECKIN = "checkin"
    REPEAT_DEPENDENCY = "repeat_dependency"
    ENGINEER_LOAD = "engineer_load"
    DETRACTOR_CLUSTER = "detractor_cluster"
    INDEPENDENCE = "independence"


class SkipCause(StrEnum):
    """Why a pending outbox row was skipped (stored as a code; ``reason`` is the text for people)."""

    OPTED_OUT = "opted_out"
    ANSWERED = "answered"
    ENGAGEMENT_REMOVED = "engagement_removed"
    ENGAGEMENT_CANCELLED = "engagement_cancelled"
    ENGAGEMENT_REOPENED = "engagement_reopened"
    ENGAGEMENT_UNKNOWN = "engagement_unknown"
    WITHDRAWN = "withdrawn"
    """Its planner took it back (a check-in moved or cancelled, a follow-up stopped)."""


ENGAGEMENT_GONE = frozenset(
    {
        SkipCause.ENGAGEMENT_REMOVED,
        SkipCause.ENGAGEMENT_CANCELLED,
        SkipCause.ENGAGEMENT_REOPENED,
        SkipCause.ENGAGEMENT_UNKNOWN,
    }
)
"""Skip causes meaning the engagement is no longer ended and live: its invitations become void."""


class EngagementStatus(StrEnum):
    """An engagement's ``status`` in the registry (and ``auxeng_engagements.status``)."""

    ACTIVE = "active"
    CANCELLED = "cancelled"
