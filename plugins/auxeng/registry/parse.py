"""The engagement registry: a YAML file describing the program, parsed and validated.

Validation is strict and collects every problem in one report; valid teams,
people and engagements are returned alongside the problems so that one bad row
never blocks the others.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from auxeng.registry.gcpause import gc_paused
from auxeng.vocabulary import EngagementStatus

AUXENG_ROLES = frozenset({"engineer", "advisor"})
HOST_ROLES = frozenset({"manager", "tech_lead", "engineer", "product_manager", "designer"})
STATUSES = frozenset(EngagementStatus)
FOLLOW_UPS = frozenset({"none", "monthly"})

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_TEAM_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ENGAGEMENT_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_SLACK_CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,20}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", re.ASCII)

_PROGRAM_FIELDS = {"name", "managers", "stakeholders", "digest_slack_channel"}
_CONTACT_FIELDS = {"name", "email", "slack_id"}
_TEAM_FIELDS = {"key", "name", "org", "manager", "help_channel"}
_PERSON_FIELDS = {"email", "name", "slack_id", "timezone"}
_MEMBER_FIELDS = {"email", "role", "lead"}
_ENGAGEMENT_FIELDS = {
    "key",
    "title",
    "host_team",
    "start",
    "end",
    "status",
    "auxeng",
    "host",
    "goals",
    "follow_up",
    "anonymous",
}
_GOAL_FIELDS = {"business", "technical"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the registry, located by section, index, key and field."""

    section: str
    index: int | None
    key: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.section if self.index is None else f"{self.section}[{self.index}]"
        subject = f"{self.key} ({where})" if self.key else where
        return f"{subject} {self.field}: {self.message}" if self.field else f"{subject}: {self.message}"


@dataclass(frozen=True)
class Contact:
    email: str
    name: str | None = None
    slack_id: str | None = None


@dataclass(frozen=True)
class Program:
    name: str
    managers: tuple[Contact, ...] = ()
    stakeholders: tuple[str, ...] = ()
    digest_slack_channel: str | None = None


@dataclass(frozen=True)
class Team:
    key: str
    name: str
    org: str | None
    manager: Contact | None
    help_channel: str | None


@dataclass(frozen=True)
class Person:
    email: str
    name: str | None = None
    slack_id: str | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class Member:
    email: str
    side: str  # "auxeng" or "host"
    role: str
    lead: bool = False


@dataclass(frozen=True)
class Engagement:
    key: str
    title: str
    host_team: str
    start: date
    end: date
    status: str = EngagementStatus.ACTIVE.value  # a plain str: the fingerprint hashes its repr
    members: tuple[Member, ...] = ()
    goals_business: str | None = None
    goals_technical: str | None = None
    follow_up: str = "none"
    anonymous: bool = False

    def fingerprint(self) -> str:
        """A stable hash of everything the registry says about this engagement."""
        return hashlib.sha256(repr(self).encode()).hexdigest()


@dataclass
class Registry:
    """What a registry file validly describes, plus every problem found in it."""

    program: Program | None = None
    teams: dict[str, Team] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    engagements: dict[str, Engagement] = field(default_factory=dict)
    rejected_engagement_keys: set[str] = field(default_factory=set)
    rejected_team_keys: set[str] = field(default_factory=set)
    broken_sections: set[str] = field(default_factory=lambda: {"program", "teams", "people", "engagements"})
    problems: list[Problem] = field(default_factory=list)
    sha256: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        lines = [f"{len(self.problems)} problem(s) in the registry:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class RegistryError(ValueError):
    """Raised (by callers) when a registry has problems; carries the full report."""

    def __init__(self, registry: Registry, source: str = "registry"):
        self.registry = registry
        super().__init__(f"{source}: {registry.report()}")


class _Loader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """Safe YAML loader that keeps dates as strings, so that one bad date is one problem.

    It refuses what a registry never needs and an attacker or a slip can abuse, before building
    anything: a node used twice (an ``*alias``: a few lines can expand to billions of items) and a
    key given twice in one mapping (YAML keeps the last silently: a second ``engagements:``
    block would drop the first). Each is reported with its line in :attr:`refused`.
    """

    def construct_document(self, node: yaml.Node) -> Any:
        self.refused = _refused(node)
        if self.refused:
            return None
        return super().construct_document(node)


def _refused(root: yaml.Node) -> list[str]:
    """Aliases and duplicate keys under ``root``, one message each, in file order (one pass over
    the distinct nodes: an alias is not followed)."""
    found: list[tuple[int, str]] = []
    seen: set[int] = set()
    repeated: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            if id(node) not in repeated:
                repeated.add(id(node))
                line = node.start_mark.line + 1
                found.append((line, f"line {line}: a YAML alias (*name) repeats the node defined here"))
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in keys:
                        found.append(
                            (
                                line,
                                f"line {line}: duplicate key {key.value[:80]!r} (first at line {keys[key.value]})",
                            )
                        )
                    else:
                        keys[key.value] = line
                stack.extend((value, key))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return [message for _, message in sorted(found)]


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# An explicit ``!!timestamp`` tag would otherwise still build a date (or raise for a bad one).
_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def load_registry_file(path: str | Path) -> Registry:
    """Read and validate a registry file; a missing file is reported, not raised."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        registry = Registry()
        registry.problems.append(Problem("file", None, None, None, f"cannot read {path}: {exc.strerror}"))
        return registry
    return parse_registry(data)


def parse_registry(data: bytes | str) -> Registry:
    """Validate registry YAML text; never raises for bad content."""
    with gc_paused():
        return _parse_registry(data)


def _parse_registry(data: bytes | str) -> Registry:
    raw = data.encode() if isinstance(data, str) else data
    registry = Registry(sha256=hashlib.sha256(raw).hexdigest())
    loader = None
    try:
        loader = _Loader(raw)
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if mark and context and context_mark and context_mark.line != mark.line:
            reason += f" ({context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
        if mark and _char_at(raw, mark.line, mark.column) == "\t":
            reason += " (a tab: indent with spaces)"
        registry.problems.append(Problem("file", None, None, None, f"not valid YAML{where}: {reason}"))
        return registry
    except UnicodeDecodeError:
        registry.problems.append(
            Problem("file", None, None, None, "not valid YAML: the file is not UTF-8 text")
        )
        return registry
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. ``!!float abc``, absurd nesting
        registry.problems.append(Problem("file", None, None, None, f"not valid YAML: {exc}"))
        return registry
    if loader is not None and getattr(loader, "refused", None):
        registry.problems.extend(Problem("file", None, None, None, message) for message in loader.refused)
        return registry
    if document is None:
        registry.problems.append(Problem("file", None, None, None, "the registry is empty"))
        return registry
    if not isinstance(document, dict):
        registry.problems.append(
            Problem(
                "file",
                None,
                None,
                None,
                f"expected a mapping with program, teams, people and engagements, got {_kind(document)}",
            )
        )
        return registry
    _Validator(registry).validate(document)
    return registry


def _char_at(raw: bytes, line: int, column: int) -> str:
    lines = raw.decode("utf-8", errors="replace").split("\n")
    return lines[line][column : column + 1] if line < len(lines) else ""


def _kind(value: Any) -> str:
    return {
        type(None): "nothing",
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


class _Validator:
    def __init__(self, registry: Registry):
        self.registry = registry
        self._team_index: dict[str, int] = {}
        self._person_index: dict[str, int] = {}

    def problem(
        self, section: str, index: int | None, key: str | None, field_name: str | None, message: str
    ) -> None:
        self.registry.problems.append(Problem(section, index, key, field_name, message))

    def validate(self, document: dict[str, Any]) -> None:
        self.registry.broken_sections.clear()
        for unknown in sorted(set(map(str, document)) - {"program", "teams", "people", "engagements"}):
            self.problem("file", None, None, unknown, "unknown top-level section")
        self.registry.program = self._program(document.get("program"))
        for index, item in enumerate(self._list(document, "teams")):
            team = self._team(index, item)
            if team:
                self.registry.teams[team.key] = team
        for index, item in enumerate(self._list(document, "people")):
            person = self._person(index, item)
            if person:
                self.registry.people[person.email] = person
        self._engagements(self._list(document, "engagements"))

    def _list(self, document: dict[str, Any], section: str) -> list[Any]:
        value = document.get(section)
        if value is None:
            if section != "people":
                self.problem(section, None, None, None, "missing section")
                self.registry.broken_sections.add(section)
            return []
        if not isinstance(value, list):
            self.problem(section, None, None, None, f"expected a list, got {_kind(value)}")
            self.registry.broken_sections.add(section)
            return []
        return value

    # -- helpers ---------------------------------------------------------------

    def _mapping(
        self, section: str, index: int | None, item: Any, allowed: set[str], key: str | None = None
    ) -> tuple[dict[str, Any] | None, bool]:
        """The item if it is a mapping, and whether all its fields are ``allowed`` (unknown ones are reported)."""
        if not isinstance(item, dict):
            self.problem(section, index, None, None, f"expected a mapping, got {_kind(item)}")
            return None, False
        ok = self._unknown_fields((section, index, key), item, allowed)
        return item, ok

    def _unknown_fields(self, where: tuple, item: dict, allowed: set[str], prefix: str = "") -> bool:
        ok = True
        for unknown in sorted(set(map(str, item)) - allowed):
            close = difflib.get_close_matches(unknown, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.problem(*where, f"{prefix}{unknown}", f"unknown field{hint}")
            ok = False
        return ok

    def _text(
        self, where: tuple, item: dict, name: str, *, required: bool, label: str | None = None
    ) -> tuple[bool, str | None]:
        label = label or name
        value = item.get(name)
        if value is None:
            if required:
                self.problem(*where, label, "missing")
                return False, None
            return True, None
        if not isinstance(value, str) or not value.strip():
            self.problem(
                *where,
                label,
                f"expected non-empty text, got {_kind(value) if not isinstance(value, str) else 'empty text'}",
            )
            return False, None
        return True, value.strip()

    def _choice(self, where: tuple, value: Any, name: str, what: str, allowed: frozenset[str]) -> bool:
        if isinstance(value, str) and value in allowed:
            return True
        expected = f"expected one of: {', '.join(sorted(allowed))}"
        if value is None:
            self.problem(*where, name, f"missing ({expected})")
        else:
            self.problem(*where, name, f"unknown {what} {value!r} ({expected})")
        return False

    def _email(self, where: tuple, value: Any, name: str = "email") -> str | None:
        if value is None:
            self.problem(*where, name, "missing")
            return None
        if not isinstance(value, str) or not _EMAIL.match(value.strip()):
            self.problem(*where, name, f"malformed email address {value!r}")
            return None
        return value.strip().lower()

    def _pattern(
        self, where: tuple, item: dict, name: str, pattern: re.Pattern, what: str, label: str | None = None
    ) -> tuple[bool, str | None]:
        value = item.get(name)
        if value is None:
            return True, None
        if not isinstance(value, str) or not pattern.match(value):
            self.problem(*where, label or name, f"{value!r} is not a {what}")
            return False, None
        return True, value

    def _contact(self, where: tuple, value: Any, name: str) -> tuple[bool, Contact | None]:
        if not isinstance(value, dict):
            self.problem(
                *where, name, f"expected a mapping with name, email and slack_id, got {_kind(value)}"
            )
            return False, None
        ok = self._unknown_fields(where, value, _CONTACT_FIELDS, prefix=f"{name}.")
        email = self._email(where, value.get("email"), f"{name}.email")
        name_ok, person_name = self._text(where, value, "name", required=False, label=f"{name}.name")
        slack_ok, slack_id = self._pattern(
            where, value, "slack_id", _SLACK_USER, "Slack user id (U…)", label=f"{name}.slack_id"
        )
        if not (ok and email and name_ok and slack_ok):
            return False, None
        return True, Contact(email=email, name=person_name, slack_id=slack_id)

    # -- sections --------------------------------------------------------------

    def _program(self, value: Any) -> Program | None:
        where = ("program", None, None)
        if value is None:
            self.problem("program", None, None, None, "missing section")
            return None
        item, ok = self._mapping("program", None, value, _PROGRAM_FIELDS)
        if item is None:
            return None
        name_ok, name = self._text(where, item, "name", required=True)
        managers: list[Contact] = []
        raw_managers = item.get("managers") or []
        if not isinstance(raw_managers, list):
            self.problem(*where, "managers", f"expected a list, got {_kind(raw_managers)}")
            raw_managers = []
            ok = False
        ok &= name_ok
        for position, raw in enumerate(raw_managers):
            contact_ok, contact = self._contact(where, raw, f"managers[{position}]")
            ok &= contact_ok
            if contact:
                managers.append(contact)
        stakeholders: list[str] = []
        raw_stakeholders = item.get("stakeholders") or []
        if not isinstance(raw_stakeholders, list):
            self.problem(*where, "stakeholders", f"expected a list, got {_kind(raw_stakeholders)}")
            raw_stakeholders = []
            ok = False
        for position, raw in enumerate(raw_stakeholders):
            email = self._email(where, raw, f"stakeholders[{position}]")
            ok &= email is not None
            if email and email not in stakeholders:
                stakeholders.append(email)
        channel_ok, channel = self._pattern(
            where, item, "digest_slack_channel", _SLACK_CHANNEL, "Slack channel id (C…)"
        )
        if not (ok and channel_ok and name):
            return None
        return Program(
            name=name,
            managers=tuple(managers),
            stakeholders=tuple(stakeholders),
            digest_slack_channel=channel,
        )

    def _team(self, index: int, value: Any) -> Team | None:
        raw_key = value.get("key") if isinstance(value, dict) else None
        where = ("teams", index, raw_key if isinstance(raw_key, str) else None)
        item, fields_ok = self._mapping("teams", index, value, _TEAM_FIELDS, where[2])
        if item is None:
            return None
        if raw_key is None:
            self.problem(*where, "key", "missing")
            return None
        if not isinstance(raw_key, str) or not _TEAM_KEY.match(raw_key):
            self.problem(
                *where, "key", f"{raw_key!r} is not a team key (lower-case letters, digits, '-' and '_')"
            )
            return None
        if raw_key in self._team_index:
            # Like engagements: which definition is meant is unknown, so neither is used.
            self.problem(*where, "key", f"duplicate team key (first at teams[{self._team_index[raw_key]}])")
            self.registry.teams.pop(raw_key, None)
            self.registry.rejected_team_keys.add(raw_key)
            return None
        self._team_index[raw_key] = index
        name_ok, name = self._text(where, item, "name", required=True)
        org_ok, org = self._text(where, item, "org", required=False)
        manager_ok, manager = (
            (True, None) if item.get("manager") is None else self._contact(where, item["manager"], "manager")
        )
        channel_ok, channel = self._pattern(
            where, item, "help_channel", _SLACK_CHANNEL, "Slack channel id (C…)"
        )
        if not (fields_ok and name_ok and org_ok and manager_ok and channel_ok):
            self.registry.rejected_team_keys.add(raw_key)
            return None
        return Team(key=raw_key, name=name, org=org, manager=manager, help_channel=channel)

    def _person(self, index: int, value: Any) -> Person | None:
        raw_email = value.get("email") if isinstance(value, dict) else None
        where = ("people", index, raw_email if isinstance(raw_email, str) else None)
        item, fields_ok = self._mapping("people", index, value, _PERSON_FIELDS, where[2])
        if item is None:
            return None
        email = self._email(where, raw_email)
        if email is None:
            return None
        if email in self._person_index:
            self.problem(
                *where,
                "email",
                f"the same person is listed twice (first at people[{self._person_index[email]}])",
            )
            return None
        self._person_index[email] = index
        name_ok, name = self._text(where, item, "name", required=False)
        slack_ok, slack_id = self._pattern(where, item, "slack_id", _SLACK_USER, "Slack user id (U…)")
        timezone = item.get("timezone")
        tz_ok = timezone is None or _is_time_zone(timezone)
        if not tz_ok:
            self.problem(*where, "timezone", f"{timezone!r} is not an IANA time zone (e.g. Europe/Berlin)")
        if not (fields_ok and name_ok and slack_ok and tz_ok):
            return None
        return Person(email=email, name=name, slack_id=slack_id, timezone=timezone)

    def _engagements(self, items: list[Any]) -> None:
        seen: dict[str, int] = {}
        parsed: dict[int, Engagement] = {}
        for index, value in enumerate(items):
            raw_key = value.get("key") if isinstance(value, dict) else None
            if isinstance(raw_key, str):
                if raw_key in seen:
                    self.problem(
                        "engagements",
                        index,
                        raw_key,
                        "key",
                        f"duplicate engagement key (first at engagements[{seen[raw_key]}])",
                    )
                    self.registry.rejected_engagement_keys.add(raw_key)
                    continue
                seen[raw_key] = index
            engagement = self._engagement(index, value)
            if engagement:
                parsed[index] = engagement
            elif isinstance(raw_key, str):
                self.registry.rejected_engagement_keys.add(raw_key)
        for engagement in parsed.values():
            if engagement.key not in self.registry.rejected_engagement_keys:
                self.registry.engagements[engagement.key] = engagement

    def _engagement(self, index: int, value: Any) -> Engagement | None:
        raw_key = value.get("key") if isinstance(value, dict) else None
        where = ("engagements", index, raw_key if isinstance(raw_key, str) else None)
        item, ok = self._mapping("engagements", index, value, _ENGAGEMENT_FIELDS, where[2])
        if item is None:
            return None
        if raw_key is None:
            self.problem(*where, "key", "missing")
            return None
        if not isinstance(raw_key, str) or not _ENGAGEMENT_KEY.match(raw_key):
            self.problem(
                *where, "key", f"{raw_key!r} is not an engagement key (letters, digits, '.', '_' and '-')"
            )
            return None
        title_ok, title = self._text(where, item, "title", required=True)
        ok &= title_ok
        host_team = item.get("host_team")
        if host_team is None:
            self.problem(*where, "host_team", "missing")
            ok = False
        elif isinstance(host_team, str) and host_team in self.registry.rejected_team_keys:
            self.problem(*where, "host_team", f"team {host_team!r} is invalid (see its problems under teams)")
            ok = False
        elif not isinstance(host_team, str) or host_team not in self.registry.teams:
            close = difflib.get_close_matches(str(host_team), list(self.registry.teams), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.problem(*where, "host_team", f"unknown team {host_team!r}{hint}")
            ok = False
        start = self._date(where, item, "start")
        end = self._date(where, item, "end")
        if start and end and end < start:
            self.problem(*where, "end", f"{end.isoformat()} is before start {start.isoformat()}")
            ok = False
        ok &= start is not None and end is not None
        status = item.get("status", EngagementStatus.ACTIVE.value)
        ok &= self._choice(where, status, "status", "status", STATUSES)
        follow_up = item.get("follow_up", "none")
        ok &= self._choice(where, follow_up, "follow_up", "follow-up", FOLLOW_UPS)
        anonymous = item.get("anonymous", False)
        if not isinstance(anonymous, bool):
            self.problem(*where, "anonymous", f"expected true or false, got {anonymous!r}")
            ok = False
        goals = item.get("goals") or {}
        goals_business = goals_technical = None
        if not isinstance(goals, dict):
            self.problem(
                *where, "goals", f"expected a mapping with business and technical, got {_kind(goals)}"
            )
            ok = False
        else:
            ok &= self._unknown_fields(where, goals, _GOAL_FIELDS, prefix="goals.")
            business_ok, goals_business = self._text(
                where, goals, "business", required=False, label="goals.business"
            )
            technical_ok, goals_technical = self._text(
                where, goals, "technical", required=False, label="goals.technical"
            )
            ok &= business_ok and technical_ok
        members: list[Member] = []
        emails: dict[str, str] = {}
        for side, roles in (("auxeng", AUXENG_ROLES), ("host", HOST_ROLES)):
            raw_members = item.get(side) or []
            if not isinstance(raw_members, list):
                self.problem(*where, side, f"expected a list of people, got {_kind(raw_members)}")
                ok = False
                continue
            for position, raw in enumerate(raw_members):
                member = self._member(where, f"{side}[{position}]", side, roles, raw, emails)
                ok &= member is not None
                if member:
                    members.append(member)
        if not ok:
            return None
        return Engagement(
            key=raw_key,
            title=title,
            host_team=host_team,
            start=start,
            end=end,
            status=status,
            members=tuple(members),
            goals_business=goals_business,
            goals_technical=goals_technical,
            follow_up=follow_up,
            anonymous=anonymous,
        )

    def _date(self, where: tuple, item: dict, name: str) -> date | None:
        value = item.get(name)
        if value is None:
            self.problem(*where, name, "missing")
            return None
        # Strictly YYYY-MM-DD: fromisoformat alone would also take 20260105 and 2026-W01-1.
        if not isinstance(value, str) or not _DATE.match(value):
            self.problem(*where, name, f"bad date {value!r} (expected YYYY-MM-DD)")
            return None
        try:
            return date.fromisoformat(value)
        except ValueError as exc:  # e.g. 2026-02-30: "day is out of range for month"
            self.problem(*where, name, f"bad date {value!r} ({exc})")
            return None

    def _member(
        self, where: tuple, name: str, side: str, roles: frozenset[str], raw: Any, emails: dict[str, str]
    ) -> Member | None:
        if not isinstance(raw, dict):
            self.problem(*where, name, f"expected a mapping with email and role, got {_kind(raw)}")
            return None
        ok = self._unknown_fields(where, raw, _MEMBER_FIELDS, prefix=f"{name}.")
        email = self._email(where, raw.get("email"), f"{name}.email")
        role = raw.get("role")
        ok &= self._choice(where, role, f"{name}.role", "role", roles)
        lead = raw.get("lead", False)
        if not isinstance(lead, bool):
            self.problem(*where, f"{name}.lead", f"expected true or false, got {lead!r}")
            ok = False
        if email and email in emails:
            self.problem(
                *where,
                f"{name}.email",
                f"{email} is listed twice in this engagement (first at {emails[email]})",
            )
            ok = False
        elif email:
            emails[email] = name
        if not (ok and email):
            return None
        return Member(email=email, side=side, role=role, lead=lead)


def _is_time_zone(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a tzdata directory
        return False
    return True
