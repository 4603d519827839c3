"""The registry file's schema: its structure and per-field rules, as pydantic models.

:mod:`auxeng.registry.parse` validates each row of the file against these models on its own
and turns pydantic's errors into problems; every field type carries, as :class:`Describe`,
the words a problem uses for a value it refuses. Rules across rows (a host team that exists,
duplicate keys, a member listed twice, end before start) are in ``parse``.

The models are strict: no value is coerced (``1`` is not the text ``"1"``, ``yes`` is not
``true``), unknown fields are refused, and every text has a length limit. The registry's
JSON Schema (:func:`json_schema`, for editors) is generated from them:
``python -m auxeng.registry.schema`` rewrites ``include/registry/engagements.schema.json``
(``make schema``), ``--check`` only compares.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue

from auxeng.settings import shipped_include_dir
from auxeng.text import NO_CONTROL, ONE_LINE, shown
from auxeng.vocabulary import EngagementStatus

SCHEMA_PATH = shipped_include_dir() / "registry" / "engagements.schema.json"

KEY_MAX = 64
"""Team and engagement keys (the store's key columns are 64 characters)."""
NAME_MAX = 200
"""Names, titles and orgs: one line each."""
GOAL_MAX = 2000
"""Each of an engagement's goals: may span lines."""
EMAIL_MAX = 254
"""The longest address SMTP can carry (RFC 5321)."""
TIME_ZONE_MAX = 64
SLACK_ID_MAX = 21
"""What the Slack id patterns allow: a letter and 2 to 20 more."""
HELP_TEXT_MAX = 500
"""The short text of where to get help after an engagement: may span lines."""
URL_MAX = 500
SLACK_CHANNEL_NAME_MAX = 81
"""'#' and a Slack channel name (at most 80 characters)."""

EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
TEAM_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
ENGAGEMENT_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
SLACK_USER_PATTERN = r"^[UW][A-Z0-9]{2,20}$"
SLACK_CHANNEL_PATTERN = r"^[CG][A-Z0-9]{2,20}$"
SLACK_CHANNEL_NAME_PATTERN = r"^#[a-z0-9][a-z0-9._-]*$"
URL_PATTERN = r"^https?://[^\s<>\"'\x00-\x1f\x7f]+$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
TIME_ZONE_PATTERN = r"^[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*$"


@dataclass(frozen=True)
class Describe:
    """How a problem describes a value of this type that validation refused (type metadata).

    ``bad(value, reason)`` words a wrong value (``reason``: why a check in Python refused it);
    ``nothing`` is said when the value is missing or null. Control characters and lengths are
    worded the same for every type, by ``parse``.
    """

    bad: Callable[[Any, str | None], str]
    nothing: str = "missing"
    multiline: bool = False
    doc: str | None = None
    """The type's description in the JSON Schema (a field's own docstring goes before it)."""

    def __get_pydantic_json_schema__(
        self, core_schema: Any, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(core_schema)
        if self.doc:
            json_schema.setdefault("description", self.doc)
        return json_schema


def kind(value: Any) -> str:
    """What a value of the wrong type is, in words: ``a mapping``, ``a number``…"""
    return {
        type(None): "nothing",
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _text(max_length: int, description: str, pattern: str = ONE_LINE, multiline: bool = False) -> Any:
    """Non-empty text of at most ``max_length`` characters, trimmed."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length, pattern=pattern),
        Describe(
            lambda value, _: (
                "expected non-empty text, got " + ("empty text" if isinstance(value, str) else kind(value))
            ),
            multiline=multiline,
            doc=description,
        ),
    ]


def _pattern(
    pattern: str, max_length: int, description: str, bad: Callable[[Any], str], **constraints: Any
) -> Any:
    """Text matching ``pattern``; ``bad(value)`` words a value that does not."""
    return Annotated[
        str,
        StringConstraints(max_length=max_length, pattern=pattern, **constraints),
        Describe(lambda value, _: bad(value), doc=description),
    ]


def _choice(what: str, values: Iterable[str]) -> Any:
    values = tuple(values)
    expected = f"expected one of: {', '.join(sorted(values))}"
    return Annotated[
        Literal[values],  # type: ignore[valid-type]
        Describe(
            lambda value, _: f"unknown {what} {shown(value)} ({expected})", nothing=f"missing ({expected})"
        ),
    ]


def _expected(what: str) -> Describe:
    return Describe(lambda value, _: f"expected {what}, got {kind(value)}")


def _calendar_date(value: str) -> date:
    return date.fromisoformat(value)  # its ValueError ("day is out of range for month") is the reason


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe" is a tzdata directory
        raise ValueError("not an IANA time zone") from exc
    return value


Name = _text(NAME_MAX, f"One line of text, at most {NAME_MAX} characters.")
Goal = _text(GOAL_MAX, f"Text, at most {GOAL_MAX} characters; may span lines.", NO_CONTROL, multiline=True)
HelpText = _text(
    HELP_TEXT_MAX, f"Text, at most {HELP_TEXT_MAX} characters; may span lines.", NO_CONTROL, multiline=True
)
Email = _pattern(
    EMAIL_PATTERN,
    EMAIL_MAX,
    "An email address (compared lower-cased).",
    lambda value: f"malformed email address {shown(value)}",
    strip_whitespace=True,
    to_lower=True,
)
TeamKey = _pattern(
    TEAM_KEY_PATTERN,
    KEY_MAX,
    "A team key: lower-case letters, digits, '-' and '_'.",
    lambda value: f"{shown(value)} is not a team key (lower-case letters, digits, '-' and '_')",
)
TeamReference = Annotated[
    _text(KEY_MAX, "The key of a team under teams."), Field(json_schema_extra={"pattern": TEAM_KEY_PATTERN})
]
"""A team named by an engagement. The validator takes any one-line text, so that a key that is no
team's (``Payments``) is reported by ``parse`` as an unknown team with its closest match; editors
get the team key's pattern."""
EngagementKey = _pattern(
    ENGAGEMENT_KEY_PATTERN,
    KEY_MAX,
    "An engagement key: letters, digits, '.', '_' and '-', e.g. ENG-2026-014.",
    lambda value: f"{shown(value)} is not an engagement key (letters, digits, '.', '_' and '-')",
)
SlackUserId = _pattern(
    SLACK_USER_PATTERN,
    SLACK_ID_MAX,
    "A Slack user id (U… or W…), e.g. U0DANA.",
    lambda value: f"{shown(value)} is not a Slack user id (U…)",
)
SlackChannelId = _pattern(
    SLACK_CHANNEL_PATTERN,
    SLACK_ID_MAX,
    "A Slack channel id (C… or G…), not its name: e.g. C0AUXENG.",
    lambda value: f"{shown(value)} is not a Slack channel id (C…)",
)
SlackChannelName = _pattern(
    SLACK_CHANNEL_NAME_PATTERN,
    SLACK_CHANNEL_NAME_MAX,
    "A Slack channel's name as people type it, e.g. #platform-help.",
    lambda value: (
        f"{shown(value)} is not a Slack channel name ('#' and lower-case letters, digits, '-', '_', '.')"
    ),
)
Url = _pattern(
    URL_PATTERN,
    URL_MAX,
    "A web address starting with https:// (or http://).",
    lambda value: f"{shown(value)} is not a web address (https://…)",
    strip_whitespace=True,
)
TimeZone = Annotated[
    _pattern(
        TIME_ZONE_PATTERN,
        TIME_ZONE_MAX,
        "An IANA time zone, e.g. Europe/Berlin.",
        lambda value: f"{shown(value)} is not an IANA time zone (e.g. Europe/Berlin)",
    ),
    AfterValidator(_time_zone),
]
Day = Annotated[
    str,
    StringConstraints(max_length=10, pattern=DATE_PATTERN),
    AfterValidator(_calendar_date),
    Field(json_schema_extra={"format": "date"}),
    Describe(
        lambda value, reason: f"bad date {shown(value)} ({reason or 'expected YYYY-MM-DD'})",
        doc="A calendar day, YYYY-MM-DD.",
    ),
]
Flag = Annotated[
    bool,
    Describe(
        lambda value, _: f"expected true or false, got {shown(value)}",
        nothing="expected true or false, got nothing",
    ),
]
Status = _choice("status", (status.value for status in EngagementStatus))
FollowUp = _choice("follow-up", ("none", "monthly"))
AuxEngRole = _choice("role", ("engineer", "advisor"))
HostRole = _choice("role", ("manager", "tech_lead", "engineer", "product_manager", "designer"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


class Contact(_Strict):
    """A person to reach: a program manager or a team's manager."""

    email: Email
    name: Name | None = None
    slack_id: SlackUserId | None = None


ContactEntry = Annotated[Contact, _expected("a mapping with name, email and slack_id")]


class HelpAfterEnd(_Strict):
    """Where a host team can get help once its engagement has ended (the handover message says it).

    Every field is optional; a team's fields replace the program's, field by field.
    """

    text: HelpText | None = None
    """A few words: who helps, how, when."""
    office_hours: Url | None = None
    """Where to book or join office hours."""
    slack_channel: SlackChannelName | None = None
    """The Slack channel to ask in, by name: #platform-help."""
    docs: Url | None = None
    """Documentation to start from."""


HelpAfterEndEntry = Annotated[
    HelpAfterEnd, _expected("a mapping with text, office_hours, slack_channel and docs")
]


class Program(_Strict):
    """The program: its name and who hears about it."""

    name: Name
    managers: Annotated[list[ContactEntry] | None, _expected("a list")] = None
    """Receive red-flag alerts."""
    stakeholders: Annotated[list[Email] | None, _expected("a list")] = None
    """Email addresses that receive the digests (duplicates are dropped)."""
    digest_slack_channel: SlackChannelId | None = None
    """Where the digests are posted."""
    help_after_end: HelpAfterEndEntry | None = None
    """Where every host team can get help after its engagement (told in the handover message)."""


class Team(_Strict):
    """A host team."""

    key: TeamKey
    """Unique: lower-case letters, digits, '-' and '_'. Engagements name it as host_team."""
    name: Name
    org: Name | None = None
    manager: ContactEntry | None = None
    help_channel: SlackChannelId | None = None
    """Where the team asks the platform team for help (read for help requests and red flags)."""
    help_after_end: HelpAfterEndEntry | None = None
    """This team's places to get help after its engagements: each field replaces the program's."""


class Person(_Strict):
    """Optional details of someone listed under engagements."""

    email: Email
    """Unique (compared lower-cased)."""
    name: Name | None = None
    slack_id: SlackUserId | None = None
    timezone: TimeZone | None = None
    """The person's time zone (check-in times are planned in it)."""


class Goals(_Strict):
    """What the engagement is for; each goal may span lines."""

    business: Goal | None = None
    technical: Goal | None = None


class AuxEngMember(_Strict):
    """Someone of the platform team on an engagement."""

    email: Email
    role: AuxEngRole
    lead: Flag = False
    """The engagement's lead on the platform team's side."""


class HostMember(_Strict):
    """Someone of the host team on an engagement."""

    email: Email
    role: HostRole
    lead: Flag = False


AuxEngMemberEntry = Annotated[AuxEngMember, _expected("a mapping with email and role")]
HostMemberEntry = Annotated[HostMember, _expected("a mapping with email and role")]


class Engagement(_Strict):
    """One engagement of the platform team with a host team."""

    key: EngagementKey
    """Unique: letters, digits, '.', '_' and '-', e.g. ENG-2026-014."""
    title: Name
    """What the engagement is about, as messages and the dashboard show it."""
    host_team: TeamReference
    """The key of a team under teams."""
    start: Day
    """First day, YYYY-MM-DD."""
    end: Day
    """Last day, YYYY-MM-DD, not before start."""
    status: Status = EngagementStatus.ACTIVE.value
    follow_up: FollowUp = "none"
    """monthly: a follow-up reminder each month after the engagement ends."""
    anonymous: Flag = False
    """true: survey responses are stored without the person."""
    goals: Annotated[Goals | None, _expected("a mapping with business and technical")] = None
    auxeng: Annotated[list[AuxEngMemberEntry] | None, _expected("a list of people")] = None
    """The platform team's engineers and advisors (a person appears once per engagement)."""
    host: Annotated[list[HostMemberEntry] | None, _expected("a list of people")] = None
    """The host team's people."""


class RegistryFile(_Strict):
    """The AuxEng engagement registry: the program, its host teams, people and engagements.

    Validated by the pack (auxeng_sync_registry) with the same rules and more: host teams that
    exist, unique keys, real calendar dates, IANA time zones. See docs/registry.md.
    """

    model_config = ConfigDict(title="AuxEng engagement registry")

    program: Program
    teams: list[Team]
    people: list[Person] | None = None
    """Optional: names, Slack ids and time zones of people listed under engagements."""
    engagements: list[Engagement]


def json_schema() -> dict[str, Any]:
    """The registry's JSON Schema (Draft 2020-12), generated from the models."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **RegistryFile.model_json_schema()}


def schema_text() -> str:
    """:func:`json_schema` as the committed file holds it."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m auxeng.registry.schema", description="Write the registry's JSON Schema."
    )
    parser.add_argument("--path", type=Path, default=SCHEMA_PATH, help=f"default: {SCHEMA_PATH}")
    parser.add_argument("--check", action="store_true", help="only check that the file is up to date")
    args = parser.parse_args(argv)
    text = schema_text()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is out of date: run `make schema`", file=sys.stderr)
            return 1
        return 0
    args.path.write_text(text, encoding="utf-8")
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
