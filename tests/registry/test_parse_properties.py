"""Properties of the registry parser (:func:`auxeng.registry.parse.parse_registry`), with Hypothesis.

Only the public API is used (``parse_registry`` and the ``Registry`` it returns: ``problems``,
``engagements``, ``teams``, ``people``), so the properties hold the parser to its contract
whatever it is built from:

- nothing raises: arbitrary bytes, arbitrary text, YAML-ish text built from fragments (keys,
  colons, dashes, anchors and aliases, ``!!python/object`` tags, tabs, NUL, CR, huge numbers)
  and valid registries with such fragments spliced in; what it returns is sound (an accepted
  engagement's team is an accepted team, its dates are dates in order, …), and a registry
  without problems is complete;
- valid rows survive any number of bad neighbours: malformed engagement items (wrong types,
  unknown fields, bad dates, unknown teams, control characters, non-mappings) inserted among
  valid ones leave exactly the valid ones, and each bad item has a problem naming it;
- parsing is deterministic (same input, same problems; bytes and text alike) and does not
  depend on the order of the valid engagements.

Deterministic in CI: every property runs a fixed number of examples from a derandomized seed,
without Hypothesis' example database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import yaml
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st

from auxeng.dev.synthetic import synthetic_registry_yaml
from auxeng.registry.parse import Registry, parse_registry

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # what auxeng.text.clean_text drops
ENGAGEMENT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PROBLEM_MAX = 400


def properties(examples: int, **extra) -> settings:
    """A fixed number of examples from a fixed seed, nothing stored between runs."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        **extra,
    )


# --- what any parse result must look like ------------------------------------------------------


def assert_sound(registry: Registry) -> None:
    """What holds for every result: problems are printable, the accepted rows are valid and
    consistent with each other, and a result without problems is complete."""
    assert isinstance(registry, Registry)
    for problem in registry.problems:
        assert isinstance(str(problem), str) and str(problem)
    if not registry.problems:
        assert registry.program is not None
        assert not registry.broken_sections
    for key, team in registry.teams.items():
        assert team.key == key
    for email, person in registry.people.items():
        assert person.email == email == email.lower()
    for key, engagement in registry.engagements.items():
        assert engagement.key == key and ENGAGEMENT_KEY.fullmatch(key)
        assert engagement.host_team in registry.teams
        assert type(engagement.start) is date and type(engagement.end) is date
        assert engagement.start <= engagement.end
        assert isinstance(engagement.title, str) and engagement.title.strip()
        assert engagement.status in ("active", "cancelled")
        assert engagement.follow_up in ("none", "monthly")
        assert isinstance(engagement.anonymous, bool)
        emails = [member.email for member in engagement.members]
        assert len(set(emails)) == len(emails)
        assert all(email == email.lower() for email in emails)
    assert not set(registry.engagements) & registry.rejected_engagement_keys


def problem_lines(registry: Registry) -> list[str]:
    return [str(problem) for problem in registry.problems]


# --- strategies: hostile input -----------------------------------------------------------------

FRAGMENTS = [
    "program:",
    "teams:",
    "people:",
    "engagements:",
    "key:",
    "title:",
    "host_team:",
    "start:",
    "end:",
    "status:",
    "anonymous:",
    "auxeng:",
    "goals:",
    "email:",
    "role:",
    "name:",
    ":",
    ": ",
    "-",
    "- ",
    "  ",
    "    ",
    "\n",
    "\r",
    "\r\n",
    "\t",
    "\x00",
    "\x01",
    "\x1b",
    "\x7f",
    "\x85",
    "\u2028",
    "\ufeff",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: *a",
    "!!python/object:os.system ",
    "!!python/object/apply:os.system [id]",
    "!!python/name:os.system ",
    "!!binary ",
    "!!timestamp ",
    "!!float 1.5",
    "!!float abc",
    "!!int 7",
    "!!int 0x",
    "!!bool true",
    "!!set ",
    "!!omap ",
    "!!str ",
    "!<tag:yaml.org,2002:map> ",
    "!local ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "? ",
    "'",
    '"',
    "# comment",
    "|",
    ">",
    "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n",
    "---\n",
    "...\n",
    "~",
    "null",
    "yes",
    "no",
    "on",
    ".nan",
    "-.inf",
    "9" * 400,
    "9" * 5000,  # over Python's int-string limit
    "1e999999",
    "0o777",
    "0x1F",
    "1:30:00",
    "2026-02-30",
    "2026-01-05",
    "0001-01-01",
    "2026-W01-1",
    "ENG-2026-001",
    "team-0000",
    "a@example.com",
    "engineer",
    "active",
    "\\x00",
    '"\\0"',
    '"\\x01\\u2028"',
    "é",
    "😀",
]

arbitrary_bytes = st.binary(max_size=600)
arbitrary_text = st.text(max_size=400)
yamlish_text = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), min_size=1, max_size=60
).map("".join)


@st.composite
def spliced_registries(draw) -> str:
    """A small valid registry with fragments (and odd text) spliced in at random places."""
    text = synthetic_registry_yaml(
        draw(st.integers(1, 4)), teams=2, platform_people=3, seed=draw(st.integers(0, 999))
    )
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(text)))
        fragment = draw(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)))
        cut = draw(st.integers(0, 12))  # sometimes replace, not only insert
        text = text[:position] + fragment + text[position + cut :]
    return text


hostile_input = st.one_of(
    arbitrary_bytes,
    arbitrary_text,
    yamlish_text,
    yamlish_text.map(lambda text: text.encode("utf-8", "surrogatepass")),
    spliced_registries(),
)


# --- nothing raises; the result is sound; the same input gives the same result ------------------


@properties(300)
@given(arbitrary_bytes)
def test_arbitrary_bytes_never_raise(data):
    assert_sound(parse_registry(data))


@properties(300)
@given(arbitrary_text)
def test_arbitrary_text_never_raises(text):
    assert_sound(parse_registry(text))


@properties(400)
@given(yamlish_text)
@example("a: &a [*a]\nb: *a\n")
@example("program: !!python/object/apply:os.system [id]\n")
@example("engagements:\n\t- key: x\n")
@example("program:\x00\r\n  name: A\r")
@example("a: " + "9" * 5000 + "\n")
def test_yamlish_text_never_raises(text):
    assert_sound(parse_registry(text))


@properties(300)
@given(spliced_registries())
def test_a_spliced_valid_registry_never_raises(text):
    assert_sound(parse_registry(text))


@properties(200)
@given(hostile_input)
def test_parsing_is_deterministic(data):
    """The same input gives the same problems and rows, and text parses as its UTF-8 bytes do."""
    first, second = parse_registry(data), parse_registry(data)
    assert problem_lines(first) == problem_lines(second)
    assert first.engagements == second.engagements
    assert first.sha256 == second.sha256
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no bytes spell it
            return
        as_bytes = parse_registry(raw)
        assert problem_lines(as_bytes) == problem_lines(first)
        assert as_bytes.engagements == first.engagements


@properties(300, phases=[Phase.explicit, Phase.generate])
@given(hostile_input)
@example('program: {name: A}\nteams: []\nengagements: [{key: "a\\nb"}]\n')
@example('program: {name: A}\nteams: []\nengagements: [{key: E, "x\\ny": 1}]\n')
@example(f'program: {{name: A}}\nteams: []\nengagements: [{{key: E, start: "{"x" * 1000}"}}]\n')
@example("\x00")
def test_every_problem_is_one_bounded_line(data):
    for line in problem_lines(parse_registry(data)):
        assert "\n" not in line and "\r" not in line, line[:200]
        assert not re.search(r"[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", line), line[:200]
        assert len(line) <= PROBLEM_MAX, f"{len(line)} characters: {line[:200]}…"


ODD_VALUES = st.one_of(
    st.integers(3700, 5000).map(lambda n: "0x" + "f" * n),  # ~4,460+ decimal digits
    st.integers(14500, 17000).map(lambda n: "0b" + "1" * n),
    st.integers(2500, 3000).map(lambda n: ":".join(["59"] * n)),  # sexagesimal
    st.integers(950, 995).map(lambda n: "[" * n + "]" * n),  # within libyaml's nesting limit
)


@properties(40, phases=[Phase.explicit, Phase.generate])
@given(value=ODD_VALUES, field=st.sampled_from(["start", "status", "anonymous", "host_team", "follow_up"]))
@example(value="0x" + "f" * 4000, field="start")
@example(value="[" * 990 + "]" * 990, field="status")
def test_odd_values_are_problems_not_crashes(value, field):
    values = {"title": "x", "host_team": "t", "start": "2026-01-05", "end": "2026-01-30", field: value}
    body = ", ".join(f"{name}: {spelled}" for name, spelled in values.items())
    registry = parse_registry(
        f"program: {{name: A}}\nteams: [{{key: t, name: T}}]\nengagements: [{{key: E, {body}}}]\n"
    )
    assert_sound(registry)
    assert registry.problems and "E" not in registry.engagements


@properties(40, phases=[Phase.explicit, Phase.generate])
@given(
    tag=st.sampled_from(["!!int", "!!float", "!!bool"]),
    value=st.sampled_from(["", "_", "__", "maybe", "Y", "ja"]),
    field=st.sampled_from(["title", "start", "anonymous", "status"]),
    quoted=st.booleans(),
)
@example(tag="!!float", value="", field="start", quoted=False)
@example(tag="!!bool", value="maybe", field="anonymous", quoted=False)
def test_explicitly_tagged_scalars_never_raise(tag, value, field, quoted):
    values = {"title": "x", "host_team": "t", "start": "2026-01-05", "end": "2026-01-30"}
    values[field] = f"{tag} {flow(value) if quoted else value}"
    body = ", ".join(f"{name}: {spelled}" for name, spelled in values.items())
    registry = parse_registry(
        f"program: {{name: A}}\nteams: [{{key: t, name: T}}]\nengagements: [{{key: E, {body}}}]\n"
    )
    assert_sound(registry)


# --- valid rows survive bad neighbours -----------------------------------------------------------


class _NoAliases(yaml.SafeDumper):
    """Writes a value used twice twice (the registry refuses ``&anchor`` / ``*alias``)."""

    def ignore_aliases(self, data) -> bool:
        return True


def flow(value) -> str:
    """``value`` as one line of YAML flow style (strings quoted and escaped as needed)."""
    dumped = yaml.dump(
        [value], Dumper=_NoAliases, default_flow_style=True, width=float("inf"), allow_unicode=False
    )
    dumped = dumped.strip()
    assert dumped.startswith("[") and dumped.endswith("]"), dumped
    return dumped[1:-1]


CONTROL_CHARACTERS = st.sampled_from(["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x7f"])
WRONG_TYPES = st.sampled_from([0, -1, 2.5, True, None, [], [1, 2], {}, {"a": 1}])
BAD_DATES = st.sampled_from(
    ["2026-02-30", "2026-13-01", "2026-00-10", "next week", "20260105", "2026-W01-1", "2026-1-5", "", " "]
)


def _set(field, value_strategy):
    return st.tuples(st.just(field), value_strategy).map(lambda pair: ("set", *pair))


# Each mutation alone makes an engagement invalid (the parser must reject it).
MUTATIONS = st.one_of(
    _set("title", st.one_of(WRONG_TYPES.filter(lambda v: v is not None), st.sampled_from(["", "   "]))),
    st.just(("drop", "title", None)),
    _set("host_team", st.one_of(st.sampled_from(["no-such-team", "team-9999", ""]), WRONG_TYPES)),
    _set("host_team", CONTROL_CHARACTERS.map(lambda c: f"team-00{c}00")),
    st.just(("drop", "host_team", None)),
    _set("start", st.one_of(BAD_DATES, WRONG_TYPES)),
    _set("end", st.one_of(BAD_DATES, WRONG_TYPES)),
    _set("start", CONTROL_CHARACTERS.map(lambda c: f"2026-03-0{c}")),
    st.just(("set", "end", "2026-02-27")),  # before start
    st.just(("drop", "start", None)),
    _set("status", st.one_of(st.sampled_from(["ended", "Active", "paused", ""]), WRONG_TYPES)),
    _set("follow_up", st.one_of(st.sampled_from(["weekly", "None", ""]), WRONG_TYPES)),
    _set("anonymous", st.sampled_from(["maybe", "", 2, [], {"a": 1}])),
    _set("goals", st.one_of(st.sampled_from(["grow", 5, [1]]), st.just({"business": "b", "budget": "x"}))),
    _set("goals", st.just({"technical": ""})),
    _set("auxeng", st.sampled_from(["eng0@example.com", 5, {"email": "a@example.com"}])),
    _set("auxeng", st.just([{"email": "not an email", "role": "engineer"}])),
    _set("auxeng", st.just([{"email": "a@example.com", "role": "tech_lead"}])),  # a host role
    _set("auxeng", CONTROL_CHARACTERS.map(lambda c: [{"email": f"a{c}@example.com", "role": "engineer"}])),
    _set("host", st.just([{"email": "h@example.com", "role": "manager", "lead": "yes"}])),
    _set(
        "host",
        st.just(
            [{"email": "h@example.com", "role": "manager"}, {"email": "H@example.com", "role": "engineer"}]
        ),
    ),
    _set("host", st.just([{"email": "h@example.com", "role": "manager", "phone": "1"}])),
    st.tuples(
        st.one_of(
            st.sampled_from(["tittle", "priority", "Title", "end_date", "", "5"]),
            st.text(min_size=1, max_size=8).filter(
                lambda n: (
                    n
                    not in {
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
                )
            ),
        ),
        st.sampled_from(["x", 1, None, [1]]),
    ).map(lambda pair: ("set", *pair)),  # an unknown field
)
NON_MAPPINGS = st.sampled_from([None, "engagement", 5, 2.5, True, [], ["key", "BAD"], [{"key": "BAD-X"}]])
KEY_MUTATIONS = st.one_of(
    st.just(("drop", "key", None)),
    _set("key", st.sampled_from([5, True, [], {"a": 1}, "", "-leading-dash", "has space", "é", "x" * 65])),
    _set("key", CONTROL_CHARACTERS.map(lambda c: f"BAD{c}KEY")),
)


@st.composite
def bad_items(draw, number: int, team: str) -> tuple[object, str | None]:
    """A malformed engagement item with the fresh key ``BAD-<number>`` (or none, when its key
    is what is wrong), and that key."""
    key = f"BAD-{number:03d}"
    if draw(st.integers(0, 9)) == 0:
        return draw(NON_MAPPINGS), None
    item = valid_item(key, team)
    mutations = draw(st.lists(MUTATIONS, min_size=1, max_size=3))
    if draw(st.integers(0, 5)) == 0:
        mutations.append(draw(KEY_MUTATIONS))
    for action, field, value in mutations:
        if action == "drop":
            item.pop(field, None)
        else:
            item[field] = value
    named = item.get("key") if item.get("key") == key else None
    return item, named


def valid_item(key: str, team: str) -> dict:
    return {
        "key": key,
        "title": f"Bad neighbour {key}",
        "host_team": team,
        "start": "2026-03-02",
        "end": "2026-04-30",
        "auxeng": [{"email": "eng0@example.com", "role": "engineer", "lead": True}],
        "host": [{"email": "h@example.com", "role": "manager"}],
    }


def split_registry(text: str) -> tuple[str, list[str]]:
    """The text up to ``engagements:`` (included) and the engagement blocks."""
    head, marker, body = text.partition("engagements:\n")
    assert marker
    blocks = ["  - key: " + block for block in body.split("  - key: ")[1:]]
    return head + marker, blocks


@dataclass(frozen=True)
class Neighbours:
    """A valid registry's text up to ``engagements:`` and its engagement items in file order:
    (text, key, bad) where ``key`` is a bad item's fresh key (None when its key is what is wrong)."""

    head: str
    items: tuple[tuple[str, str | None, bool], ...]

    def text(self, items=None) -> str:
        return self.head + "".join(text for text, _key, _bad in (self.items if items is None else items))

    def clean_text(self) -> str:
        return self.text([item for item in self.items if not item[2]])

    def bad(self) -> list[tuple[int, str | None]]:
        return [(position, key) for position, (_text, key, bad) in enumerate(self.items) if bad]


@st.composite
def registries_with_bad_neighbours(draw) -> Neighbours:
    """A small valid registry (1-8 engagements, 1-3 teams) with 0-12 bad items inserted at random places."""
    teams = draw(st.integers(1, 3))
    text = synthetic_registry_yaml(
        draw(st.integers(1, 8)), teams=teams, platform_people=4, seed=draw(st.integers(0, 10_000))
    )
    head, blocks = split_registry(text)
    items: list[tuple[str, str | None, bool]] = [(block, None, False) for block in blocks]
    for number in range(draw(st.integers(0, 12))):
        item, key = draw(bad_items(number, f"team-{draw(st.integers(0, teams - 1)):04d}"))
        items.insert(draw(st.integers(0, len(items))), (f"  - {flow(item)}\n", key, True))
    return Neighbours(head, tuple(items))


def names(line: str, key: str) -> bool:
    """Whether problem ``line`` names engagement ``key`` (as a whole word)."""
    return re.search(rf"(?<![\w.-]){re.escape(key)}(?![\w.-])", line) is not None


def test_the_bad_neighbour_template_is_valid():
    """Without a mutation, the item the bad neighbours start from is accepted: each mutation
    alone is what makes a neighbour bad."""
    head, blocks = split_registry(synthetic_registry_yaml(2, teams=1, platform_people=4))
    registry = parse_registry(head + "".join(blocks) + f"  - {flow(valid_item('BAD-000', 'team-0000'))}\n")
    assert registry.problems == []
    assert "BAD-000" in registry.engagements


@properties(200)
@given(registries_with_bad_neighbours())
def test_valid_engagements_survive_any_number_of_bad_neighbours(case):
    """The valid engagements parse exactly as without the bad items, each bad item has a
    problem naming its index (or key), and no problem names a valid engagement."""
    clean, mixed = parse_registry(case.clean_text()), parse_registry(case.text())
    note(case.text())
    assert clean.problems == []
    assert_sound(mixed)
    assert mixed.engagements == clean.engagements
    assert (mixed.program, mixed.teams, mixed.people) == (clean.program, clean.teams, clean.people)
    lines = problem_lines(mixed)
    for position, key in case.bad():
        assert [line for line in lines if f"engagements[{position}]" in line or (key and names(line, key))], (
            f"no problem names the bad item engagements[{position}] ({key})"
        )
    for key in clean.engagements:
        assert not [line for line in lines if names(line, key)]


@properties(150)
@given(registries_with_bad_neighbours(), st.data())
def test_the_order_of_valid_engagements_does_not_matter(case, data):
    """Shuffling the valid engagements among their places (the bad items stay where they are)
    gives the same valid engagements, the same rejected keys and as many problems."""
    slots = [position for position, item in enumerate(case.items) if not item[2]]
    order = data.draw(st.permutations(slots))
    items = list(case.items)
    for slot, source in zip(slots, order, strict=True):
        items[slot] = case.items[source]
    original, shuffled = parse_registry(case.text()), parse_registry(case.text(items))
    assert shuffled.engagements == original.engagements
    assert shuffled.rejected_engagement_keys == original.rejected_engagement_keys
    assert len(shuffled.problems) == len(original.problems)


# --- control characters never reach the store ---------------------------------------------------

TEXT_FIELDS = {
    "program name": ("  name: AuxEng\n", "  name: {}\n"),
    "team name": ("    name: Team 0\n", "    name: {}\n"),
    "team org": ("    org: Commerce\n", "    org: {}\n"),
    "person name": ("name: Engineer 0,", "name: {},"),
    "engagement title": ("    title: Synthetic engagement 0\n", "    title: {}\n"),
}


@properties(60, phases=[Phase.explicit, Phase.generate])
@given(
    field=st.sampled_from(sorted(TEXT_FIELDS)),
    before=st.text(alphabet="abc ", max_size=3),
    control=CONTROL_CHARACTERS,
)
@example(field="engagement title", before="a", control="\x00")
def test_accepted_text_holds_no_control_characters(field, before, control):
    """A control character in free text is a problem or is dropped; it is never accepted as is."""
    text = synthetic_registry_yaml(1, teams=1, platform_people=2)
    old, template = TEXT_FIELDS[field]
    assert old in text
    text = text.replace(old, template.format(flow(f"{before}{control}x")), 1)
    registry = parse_registry(text)
    assert_sound(registry)
    texts = [registry.program.name if registry.program else ""]
    texts += [t.name for t in registry.teams.values()] + [t.org or "" for t in registry.teams.values()]
    texts += [p.name or "" for p in registry.people.values()]
    for engagement in registry.engagements.values():
        texts += [engagement.title, engagement.goals_business or "", engagement.goals_technical or ""]
    assert not [t for t in texts if CONTROL.search(t)]
