"""The engagement registry: a YAML file describing the program, parsed and validated.

Validation is strict and collects every problem in one report; valid teams,
people and engagements are returned alongside the problems so that one bad row
never blocks the others.

Reading goes in three steps. The bytes must be UTF-8 text (a BOM is fine). The YAML is read
without aliases or duplicate keys (:class:`_Loader`). Then each row is validated on its own
against its model in :mod:`auxeng.registry.schema` (structure and per-field rules), pydantic's
errors becoming problems that name section, index, key and field; the rules across rows
(host teams, duplicate keys, a member listed twice, end before start) follow here, in Python.
Every value a problem quotes goes through :func:`auxeng.text.shown`: one line, cut short.
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
import re
import typing
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, NamedTuple

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from auxeng.registry import schema
from auxeng.registry.gcpause import gc_paused
from auxeng.text import clip, describe_control, first_control, shown
from auxeng.vocabulary import EngagementStatus

SECTIONS = ("program", "teams", "people", "engagements")
SIDES = ("auxeng", "host")


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
        subject = f"{clip(self.key)} ({where})" if self.key else where
        return f"{subject} {self.field}: {self.message}" if self.field else f"{subject}: {self.message}"


@dataclass(frozen=True)
class Contact:
    email: str
    name: str | None = None
    slack_id: str | None = None


@dataclass(frozen=True)
class HelpAfterEnd:
    """Where a host team can get help after its engagement (each field optional)."""

    text: str | None = None
    office_hours: str | None = None
    slack_channel: str | None = None
    docs: str | None = None

    def as_stored(self) -> dict[str, str]:
        """The fields that are set, as the store keeps them (JSON)."""
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class Program:
    name: str
    managers: tuple[Contact, ...] = ()
    stakeholders: tuple[str, ...] = ()
    digest_slack_channel: str | None = None
    help_after_end: HelpAfterEnd | None = None


@dataclass(frozen=True)
class Team:
    key: str
    name: str
    org: str | None
    manager: Contact | None
    help_channel: str | None
    help_after_end: HelpAfterEnd | None = None


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
    broken_sections: set[str] = field(default_factory=lambda: set(SECTIONS))
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


_TIMESTAMP, _BOOL = "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool"


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

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """A value PyYAML cannot build (``!!int ''``, ``!!bool maybe``) is a YAML error at its line."""
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as exc:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"cannot read {shown(node.value)} as {node.tag.rsplit(':', 1)[-1]}",
                node.start_mark,
            ) from exc


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
                                f"line {line}: duplicate key {shown(key.value)} (first at line {keys[key.value]})",
                            )
                        )
                    else:
                        keys[key.value] = line
                stack.extend((value, key))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return [message for _, message in sorted(found)]


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_TIMESTAMP, _BOOL)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# Only true and false are booleans, as in YAML 1.2 and in editors: yes, no, on and off stay text
# (``name: No`` is a name, and ``lead: yes`` is refused rather than taken for true).
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
# An explicit ``!!timestamp`` tag would otherwise still build a date (or raise for a bad one).
_Loader.add_constructor(_TIMESTAMP, lambda loader, node: loader.construct_scalar(node))


MAX_REGISTRY_BYTES = 32 * 1024 * 1024
"""The largest registry file read: about 60,000 engagements (10,000 take 5 MB and load in a few seconds)."""


def read_registry_bytes(path: str | Path) -> bytes:
    """The file's bytes, up to one byte more than a registry may hold (so a huge file is never read whole)."""
    with Path(path).open("rb") as file:
        return file.read(MAX_REGISTRY_BYTES + 1)


def load_registry_file(path: str | Path) -> Registry:
    """Read and validate a registry file; a missing or oversized file is reported, not raised."""
    path = Path(path)
    try:
        data = read_registry_bytes(path)
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
    # surrogatepass: a str with a lone surrogate becomes bytes that are not UTF-8, reported as such
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    registry = Registry(sha256=hashlib.sha256(raw).hexdigest())
    if len(raw) > MAX_REGISTRY_BYTES:
        registry.problems.append(Problem("file", None, None, None, _too_large()))
        return registry
    document, refused = _read(raw)
    if refused:
        registry.problems.extend(Problem("file", None, None, None, message) for message in refused)
    elif document is None:
        registry.problems.append(Problem("file", None, None, None, "the registry is empty"))
    elif not isinstance(document, dict):
        registry.problems.append(
            Problem(
                "file",
                None,
                None,
                None,
                f"expected a mapping with program, teams, people and engagements, got {schema.kind(document)}",
            )
        )
    else:
        _Validator(registry).validate(document)
    return registry


def _too_large() -> str:
    return (
        f"the file is larger than {MAX_REGISTRY_BYTES // (1024 * 1024)} MB, the most a registry may be:"
        " nothing was read"
    )


# -- bytes and YAML ------------------------------------------------------------------------------


def _read(raw: bytes) -> tuple[Any, list[str]]:
    """The YAML document in ``raw``, or why there is none (file-level problem messages)."""
    if message := _not_utf8(raw):
        return None, [message]
    try:
        loader = _Loader(raw)
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow in a file
        character = f"U+{exc.character:04X}" if isinstance(exc.character, int) else shown(exc.character)
        where = _line_column(raw, exc.position)
        return None, [f"not valid YAML at {where}: unacceptable character {character} ({clip(exc.reason)})"]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = clip(getattr(exc, "problem", None) or str(exc), 200)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if mark and context and context_mark and context_mark.line != mark.line:
            reason += f" ({clip(context)} at line {context_mark.line + 1}, column {context_mark.column + 1})"
        if mark and _char_at(raw, mark.line, mark.column) == "\t":
            reason += " (a tab: indent with spaces)"
        return None, [f"not valid YAML{where}: {reason}"]
    except Exception as exc:
        # e.g. ``!!float abc`` (ValueError), ``!!int ''`` (IndexError), ``!!bool maybe`` (KeyError)
        return None, [f"not valid YAML: {clip(f'{type(exc).__name__}: {exc}', 200)}"]
    return document, getattr(loader, "refused", [])  # not set for an empty file


def _not_utf8(raw: bytes) -> str | None:
    """Why ``raw`` is not UTF-8 text, naming the first bad byte by its line and its position in
    that line (both counted from 1, the position in bytes); None when it is UTF-8 text.

    A NUL byte counts as bad: it is valid UTF-8 but never text (and every other byte of a UTF-16
    file without a byte order mark is one).
    """
    try:
        raw.decode("utf-8")
        at = raw.find(b"\x00")
    except UnicodeDecodeError as exc:
        at = exc.start
    if at < 0:
        return None
    line, column = raw.count(b"\n", 0, at) + 1, at - raw.rfind(b"\n", 0, at)
    utf16 = raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in raw[:2]
    advice = "the file is UTF-16: save it as UTF-8" if utf16 else "save the file as UTF-8"
    return f"not UTF-8 text at line {line}, byte {column} (0x{raw[at]:02X}): {advice}"


def _line_column(raw: bytes, offset: int) -> str:
    """``line L, column C`` of byte ``offset`` (libyaml reports reader errors in bytes)."""
    line, start = raw.count(b"\n", 0, offset) + 1, raw.rfind(b"\n", 0, offset) + 1
    return f"line {line}, column {len(raw[start:offset].decode('utf-8', errors='replace')) + 1}"


def _char_at(raw: bytes, line: int, column: int) -> str:
    lines = raw.decode("utf-8", errors="replace").split("\n")
    return lines[line][column : column + 1] if line < len(lines) else ""


# -- pydantic's errors as problems ---------------------------------------------------------------

Where = tuple[str | int, ...]
"""A location within a row, as pydantic gives it: field names and list indexes."""
Found = tuple[Where, str]
"""A problem within a row: its location and its message."""

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class _Place(NamedTuple):
    """What a location within a row is, for a problem: its label (``auxeng[0].role``), how it
    sorts (in the order of the model's fields, unknown fields first), the words for its type and
    the field names allowed where it is."""

    label: str
    rank: tuple[tuple[int, str], ...]
    describe: schema.Describe | None
    fields: tuple[str, ...]


def _locate(model: type[BaseModel], where: Where) -> _Place:
    label, rank, fields = "", [], ()
    node: Any = model
    describe = None
    for part in where:
        node, metadata = _unwrap(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            fields = tuple(node.model_fields)
            info = node.model_fields.get(part) if isinstance(part, str) else None
            label += f".{_name(part)}" if label else _name(part)
            rank.append((fields.index(part) if info else -1, str(part)[:100]))
            node, metadata = (info.annotation, info.metadata) if info else (None, [])
        else:  # a list, and ``part`` an index
            label += f"[{part}]"
            rank.append((part if isinstance(part, int) else -1, ""))
            node, metadata = (typing.get_args(node) or (None,))[0], []
        node, more = _unwrap(node)
        describe = _describe([*metadata, *more])
    return _Place(label, tuple(rank), describe, fields)


def _name(name: Any) -> str:
    """A field or section name as a problem shows it: as is when plain, else quoted and cut."""
    return name if isinstance(name, str) and _PLAIN_NAME.fullmatch(name) else shown(name)


def _unwrap(node: Any) -> tuple[Any, list[Any]]:
    """``node`` without ``| None`` and ``Annotated``, and the metadata ``Annotated`` carried."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(node)
        if origin is typing.Annotated:
            node, *more = typing.get_args(node)
            metadata += more
        elif origin in (typing.Union, UnionType):
            node = next(arg for arg in typing.get_args(node) if arg is not NoneType)
        else:
            return node, metadata


def _describe(metadata: list[Any]) -> schema.Describe | None:
    return next((m for m in metadata if isinstance(m, schema.Describe)), None)


def _validate(model: type[BaseModel], value: Any) -> tuple[Any, list[Found]]:
    """The row ``value`` validated by ``model``, or None and every problem found in it."""
    try:
        return model.model_validate(value), []
    except ValidationError as exc:
        return None, [(error["loc"], _message(model, error)) for error in exc.errors(include_url=False)]


def _message(model: type[BaseModel], error: ErrorDetails) -> str:
    where, kind, value, context = error["loc"], error["type"], error["input"], error.get("ctx") or {}
    if not where:
        return f"expected a mapping, got {schema.kind(value)}"
    place = _locate(model, where)
    describe = place.describe or schema.Describe(lambda _value, _reason: clip(error["msg"]))
    if kind in ("extra_forbidden", "invalid_key"):  # invalid_key: a name that is not text
        close = difflib.get_close_matches(str(where[-1])[:100], place.fields, n=1)
        return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing" or value is None:
        return describe.nothing
    if isinstance(value, str) and kind in ("string_pattern_mismatch", "literal_error", "string_too_long"):
        at = first_control(value, one_line=not describe.multiline)
        if at is not None:
            return describe_control(value, at)
    if kind == "string_too_long":
        return f"too long: {len(value)} characters (at most {context['max_length']})"
    return describe.bad(value, str(context["error"]) if "error" in context else None)


def _valid(found: list[Found], *where: str | int) -> bool:
    """Whether no problem lies at ``where``, inside it or around it: its value is then valid as
    written (so rules across rows can read it even when another field of the row is wrong)."""
    return not any(loc[: len(where)] == where or where[: len(loc)] == loc for loc, _ in found)


def _email_id(email: str) -> str:
    """A valid email as the models store it (trimmed, lower-cased), to compare people."""
    return email.strip().lower()


class _Validator:
    def __init__(self, registry: Registry):
        self.registry = registry

    def report(
        self, section: str, index: int | None, key: str | None, model: Any, found: list[Found]
    ) -> None:
        """The problems of one row (or of the program), in the order of its model's fields."""
        places = sorted(
            ((_locate(model, where), message) for where, message in found), key=lambda p: p[0].rank
        )
        self.registry.problems += [Problem(section, index, key, p.label or None, m) for p, m in places]

    def validate(self, document: dict[Any, Any]) -> None:
        self.registry.broken_sections.clear()
        for unknown in sorted(map(_name, set(document) - set(SECTIONS))):
            self.registry.problems.append(Problem("file", None, None, unknown, "unknown top-level section"))
        self._program(document.get("program"))
        self._teams(self._section(document, "teams"))
        self._people(self._section(document, "people"))
        self._engagements(self._section(document, "engagements"))

    def _section(self, document: dict[Any, Any], section: str) -> list[Any]:
        value = document.get(section)
        if value is None:
            if section != "people":
                self.registry.problems.append(Problem(section, None, None, None, "missing section"))
                self.registry.broken_sections.add(section)
            return []
        if not isinstance(value, list):
            self.registry.problems.append(
                Problem(section, None, None, None, f"expected a list, got {schema.kind(value)}")
            )
            self.registry.broken_sections.add(section)
            return []
        return value

    def _row(self, model: type[BaseModel], value: Any, key_field: str) -> tuple[Any, list[Found], str | None]:
        """A row validated, its problems, and its key as written if that is valid (else None,
        and only the key's problems and unknown fields are kept: the row cannot be named)."""
        validated, found = _validate(model, value)
        if _valid(found, key_field):
            return validated, found, value[key_field]
        kept = [f for f in found if not f[0] or f[0][0] == key_field or f[0][0] not in model.model_fields]
        return None, kept, None

    def _program(self, value: Any) -> None:
        if value is None:
            self.registry.problems.append(Problem("program", None, None, None, "missing section"))
            return
        program, found = _validate(schema.Program, value)
        self.report("program", None, None, schema.Program, found)
        if program is not None:
            self.registry.program = Program(
                name=program.name,
                managers=tuple(_contact(manager) for manager in program.managers or ()),
                stakeholders=tuple(dict.fromkeys(program.stakeholders or ())),
                digest_slack_channel=program.digest_slack_channel,
                help_after_end=_help(program.help_after_end),
            )

    def _teams(self, items: list[Any]) -> None:
        teams, first = self.registry.teams, {}
        for index, value in enumerate(items):
            team, found, key = self._row(schema.Team, value, "key")
            if key in first:
                # Like engagements: which definition is meant is unknown, so neither is used.
                found.append((("key",), f"duplicate team key (first at teams[{first[key]}])"))
                teams.pop(key, None)
            elif key is not None:
                first[key] = index
            self.report("teams", index, key, schema.Team, found)
            if found and key is not None:
                self.registry.rejected_team_keys.add(key)
            elif not found:
                manager = _contact(team.manager) if team.manager else None
                teams[key] = Team(
                    key, team.name, team.org, manager, team.help_channel, _help(team.help_after_end)
                )

    def _people(self, items: list[Any]) -> None:
        first: dict[str, int] = {}
        for index, value in enumerate(items):
            person, found, key = self._row(schema.Person, value, "email")
            email = _email_id(key) if key is not None else None
            if email in first:
                found.append(
                    (("email",), f"the same person is listed twice (first at people[{first[email]}])")
                )
            elif email is not None:
                first[email] = index
            self.report("people", index, key, schema.Person, found)
            if not found:
                self.registry.people[email] = Person(email, person.name, person.slack_id, person.timezone)

    def _engagements(self, items: list[Any]) -> None:
        rejected, first, parsed = self.registry.rejected_engagement_keys, {}, []
        for index, value in enumerate(items):
            engagement, found, key = self._row(schema.Engagement, value, "key")
            if key in first:
                found.append((("key",), f"duplicate engagement key (first at engagements[{first[key]}])"))
            elif key is not None:
                first[key] = index
            if key is not None:
                found += self._across(value, found)
            self.report("engagements", index, key, schema.Engagement, found)
            if found and key is not None:
                rejected.add(key)
            elif not found:
                parsed.append(_engagement(engagement))
        self.registry.engagements.update((e.key, e) for e in parsed if e.key not in rejected)

    def _across(self, value: dict[str, Any], found: list[Found]) -> list[Found]:
        """The rules an engagement's model cannot check: its host team, its dates' order, and
        each person once. Each reads only fields that are valid as written."""
        more: list[Found] = []
        team = value["host_team"] if _valid(found, "host_team") else None
        if team in self.registry.rejected_team_keys:
            more.append((("host_team",), f"team {shown(team)} is invalid (see its problems under teams)"))
        elif team is not None and team not in self.registry.teams:
            close = difflib.get_close_matches(team, list(self.registry.teams), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            more.append((("host_team",), f"unknown team {shown(team)}{hint}"))
        if _valid(found, "start") and _valid(found, "end"):
            start, end = date.fromisoformat(value["start"]), date.fromisoformat(value["end"])
            if end < start:
                more.append((("end",), f"{end.isoformat()} is before start {start.isoformat()}"))
        first: dict[str, str] = {}
        for side in SIDES:
            members = value.get(side)
            for position, member in enumerate(members if isinstance(members, list) else ()):
                if not _valid(found, side, position, "email"):
                    continue
                email = _email_id(member["email"])
                if email in first:
                    more.append(
                        (
                            (side, position, "email"),
                            f"{clip(email)} is listed twice in this engagement (first at {first[email]})",
                        )
                    )
                else:
                    first[email] = f"{side}[{position}]"
        return more


def _contact(contact: schema.Contact) -> Contact:
    return Contact(email=contact.email, name=contact.name, slack_id=contact.slack_id)


def _help(value: schema.HelpAfterEnd | None) -> HelpAfterEnd | None:
    return HelpAfterEnd(**value.model_dump()) if value is not None else None


def _engagement(engagement: schema.Engagement) -> Engagement:
    goals = engagement.goals
    return Engagement(
        key=engagement.key,
        title=engagement.title,
        host_team=engagement.host_team,
        start=engagement.start,
        end=engagement.end,
        status=engagement.status,
        members=tuple(
            Member(email=member.email, side=side, role=member.role, lead=member.lead)
            for side in SIDES
            for member in getattr(engagement, side) or ()
        ),
        goals_business=goals.business if goals else None,
        goals_technical=goals.technical if goals else None,
        follow_up=engagement.follow_up,
        anonymous=engagement.anonymous,
    )
