"""Hostile registries: control characters, line breaks, huge values, other encodings.

Each file in ``tests/data/hostile/registry/`` is pinned to its exact report (the three
alias and duplicate-key files in ``test_parse.py``); huge values are generated here. Every
problem line stays short and on one line, and only the rows concerned are refused.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from auxeng.registry.parse import MAX_REGISTRY_BYTES, load_registry_file, parse_registry, read_registry_bytes

HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile" / "registry"
PINNED_IN_TEST_PARSE = {"alias_bomb.yaml", "duplicate_fields.yaml", "second_engagements_block.yaml"}
HOST_ROLES = "designer, engineer, manager, product_manager, tech_lead"

# file, exact problems in order, loaded engagement keys, loaded team keys, loaded people
CORPUS = [
    pytest.param(
        "nul_in_title.yaml",
        ["ENG-2026-202 (engagements[1]) title: contains a control character (U+0000) at position 5"],
        {"ENG-2026-201", "ENG-2026-203"},
        {"payments"},
        set(),
        id="nul_in_title",
    ),
    pytest.param(
        "line_breaks_in_names.yaml",
        [
            "program managers[0].name: contains a line break (U+000A) at position 10",
            "payments (teams[0]) name: contains a line break (U+000D) at position 9",
            "payments (teams[0]) manager.name: contains a line break (U+000D) at position 6",
            "alice@example.com (people[0]) name: contains a line break (U+000D) at position 11",
            "ENG-2026-212 (engagements[1]) title: contains a line break (U+000A) at position 4",
            "ENG-2026-213 (engagements[2]) host_team: team 'payments' is invalid (see its problems under teams)",
        ],
        {"ENG-2026-211", "ENG-2026-214"},
        {"search"},
        {"bob@example.com"},
        id="line_breaks_in_names",
    ),
    pytest.param(
        "control_in_every_field.yaml",
        [
            "program name: contains a control character (U+0007) at position 4",
            "program digest_slack_channel: contains a control character (U+001B) at position 6",
            "teams[0] key: contains a control character (U+0000) at position 4",
            "search (teams[1]) name: contains a control character (U+007F) at position 4",
            "checkout (teams[2]) help_channel: contains a control character (U+000B) at position 5",
            "managed (teams[3]) manager.email: contains a control character (U+000C) at position 10",
            "managed (teams[3]) manager.slack_id: contains a control character (U+001F) at position 5",
            "people[0] email: contains a control character (U+0000) at position 18",
            "bob@example.com (people[1]) slack_id: contains a control character (U+0001) at position 4",
            "bob@example.com (people[1]) timezone: contains a control character (U+0002) at position 11",
            "engagements[0] key: contains a control character (U+0000) at position 4",
            "ENG-222 (engagements[1]) host_team: contains a control character (U+001D) at position 4",
            "ENG-223 (engagements[2]) start: contains a control character (U+0008) at position 9",
            "ENG-223 (engagements[2]) end: contains a control character (U+007F) at position 5",
            "ENG-224 (engagements[3]) status: contains a control character (U+0000) at position 7",
            "ENG-224 (engagements[3]) follow_up: contains a control character (U+001B) at position 4",
            "ENG-225 (engagements[4]) goals.technical: contains a control character (U+0007) at position 5",
            "ENG-226 (engagements[5]) auxeng[0].role: contains a control character (U+0000) at position 5",
            "ENG-226 (engagements[5]) host[0].email: contains a control character (U+0001) at position 9",
        ],
        {"ENG-227"},
        {"valid"},
        {"carol@example.com"},
        id="control_in_every_field",
    ),
    pytest.param(
        "multi_line_values.yaml",
        [
            "file 'engagements\\nagain': unknown top-level section",
            "ENG-2026-232 (engagements[1]) 'ened\\n': unknown field (did you mean 'end'?)",
            "ENG-2026-232 (engagements[1]) status: unknown status ['done\\nfor now'] (expected one of: active, cancelled)",
            "ENG-2026-232 (engagements[1]) anonymous: expected true or false, got 'yes\\nno'",
            "ENG-2026-233 (engagements[2]) start: contains a line break (U+000A) at position 11",
            f"ENG-2026-233 (engagements[2]) host[0].role: unknown role ['tech_lead', 'and\\nmore'] (expected one of: {HOST_ROLES})",
        ],
        {"ENG-2026-231"},
        {"payments"},
        set(),
        id="multi_line_values",
    ),
    pytest.param(
        "latin1.yaml",
        ["file: not UTF-8 text at line 4, byte 26 (0xE9): save the file as UTF-8"],
        set(),
        set(),
        set(),
        id="latin1",
    ),
    pytest.param(
        "utf16.yaml",
        ["file: not UTF-8 text at line 1, byte 1 (0xFF): the file is UTF-16: save it as UTF-8"],
        set(),
        set(),
        set(),
        id="utf16",
    ),
    pytest.param(
        "utf16_no_bom.yaml",
        ["file: not UTF-8 text at line 1, byte 2 (0x00): the file is UTF-16: save it as UTF-8"],
        set(),
        set(),
        set(),
        id="utf16_no_bom",
    ),
    pytest.param("utf8_bom.yaml", [], {"ENG-2026-241"}, {"cafe"}, set(), id="utf8_bom"),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("name", "problems", "engagements", "teams", "people"), CORPUS)
def test_hostile_file_reports_exact_problems(name, problems, engagements, teams, people):
    registry = load_registry_file(HOSTILE / name)
    assert [str(p) for p in registry.problems] == problems
    assert set(registry.engagements) == engagements
    assert set(registry.teams) == teams
    assert set(registry.people) == people


def test_hostile_table_covers_every_file():
    assert {p.values[0] for p in CORPUS} | PINNED_IN_TEST_PARSE == {f.name for f in HOSTILE.iterdir()}


def test_what_is_kept_keeps_its_text_as_written():
    """Goals keep their line breaks and tabs; a folded title's final line break is trimmed."""
    registry = load_registry_file(HOSTILE / "line_breaks_in_names.yaml")
    kept = registry.engagements["ENG-2026-214"]
    assert kept.title == "A folded title on two lines"
    assert kept.goals_business == "Ship it.\nThen measure it."
    every = load_registry_file(HOSTILE / "control_in_every_field.yaml")
    assert every.teams["valid"].org == "Tab\tallowed"
    assert load_registry_file(HOSTILE / "utf8_bom.yaml").engagements["ENG-2026-241"].title == "Crème brûlée"


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("data", "problems"),
    [
        (
            b"program: {name: A\x01}\n",
            [
                "file: not valid YAML at line 1, column 18: unacceptable character U+0001 (control characters are not allowed)"
            ],
        ),
        (
            "teams: []\n# caf\u00e9\nprogram: {name: A\x7f}\n".encode(),
            [
                "file: not valid YAML at line 3, column 18: unacceptable character U+007F (control characters are not allowed)"
            ],
        ),
        (
            "program: {name: \ud800}\n",
            ["file: not UTF-8 text at line 1, byte 17 (0xED): save the file as UTF-8"],
        ),
        (
            b"program: {name: A}\n\x00",
            ["file: not UTF-8 text at line 2, byte 1 (0x00): save the file as UTF-8"],
        ),
        (b"a: 1\nb: \xc3\n", ["file: not UTF-8 text at line 2, byte 4 (0xC3): save the file as UTF-8"]),
        (
            b"program: {name: !!float " + b"9" * 5000 + b"x}\n",
            ["file: not valid YAML at line 1, column 17: cannot read '" + "9" * 77 + "'… as float"],
        ),
    ],
    ids=[
        "raw-control",
        "raw-del-after-non-ascii",
        "lone-surrogate",
        "nul-byte",
        "truncated-utf8",
        "huge-yaml-error",
    ],
)
def test_bytes_yaml_refuses_are_one_line_problems(data, problems):
    """Characters YAML refuses in a file are located by line and column (not a multi-line message)."""
    assert [str(p) for p in parse_registry(data).problems] == problems


def test_only_true_and_false_are_booleans():
    """As in YAML 1.2 and in editors: ``yes``/``no``/``on``/``off`` are text, never coerced."""
    registry = parse_registry(
        "program: {name: No}\nteams: [{key: t, name: Off}]\n"
        "engagements: [{key: E, title: x, host_team: t, start: 2026-01-05, end: 2026-01-30, anonymous: yes,"
        " auxeng: [{email: a@example.com, role: engineer, lead: on}]}]\n"
    )
    assert [str(p) for p in registry.problems] == [
        "E (engagements[0]) anonymous: expected true or false, got 'yes'",
        "E (engagements[0]) auxeng[0].lead: expected true or false, got 'on'",
    ]
    assert (registry.program.name, registry.teams["t"].name) == ("No", "Off")


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("title", 1, "title: expected non-empty text, got a number"),
        ("key", 2026, "key: 2026 is not an engagement key (letters, digits, '.', '_' and '-')"),
        ("anonymous", "true", "anonymous: expected true or false, got 'true'"),
        ("anonymous", 1, "anonymous: expected true or false, got 1"),
        ("status", True, "status: unknown status True (expected one of: active, cancelled)"),
        ("start", 20260105, "start: bad date 20260105 (expected YYYY-MM-DD)"),
        ("goals", "ship it", "goals: expected a mapping with business and technical, got a string"),
        ("host", {"email": "d@example.com"}, "host: expected a list of people, got a mapping"),
    ],
)
def test_no_value_is_coerced(field, value, problem):
    row = {
        "key": "E",
        "title": "x",
        "host_team": "t",
        "start": "2026-01-05",
        "end": "2026-01-30",
        field: value,
    }
    text = json.dumps({"program": {"name": "A"}, "teams": [{"key": "t", "name": "T"}], "engagements": [row]})
    assert [f"{p.field}: {p.message}" for p in parse_registry(text).problems] == [problem]


# -- huge and multi-line values in every field kind ---------------------------------------------

BASE = {
    "program": {
        "name": "AuxEng",
        "managers": [{"name": "Dana", "email": "dana@example.com", "slack_id": "U0DANA"}],
        "stakeholders": ["vp@example.com"],
        "digest_slack_channel": "C0AUXENG",
    },
    "teams": [
        {"key": "kept", "name": "Kept"},
        {
            "key": "other",
            "name": "Other",
            "org": "Org",
            "help_channel": "C0OTHER",
            "manager": {"name": "Carol", "email": "carol@example.com", "slack_id": "U0CAROL"},
        },
    ],
    "people": [
        {"email": "alice@example.com"},
        {"email": "bob@example.com", "name": "Bob", "slack_id": "U0BOB", "timezone": "Europe/Berlin"},
    ],
    "engagements": [
        {"key": "E0", "title": "Kept", "host_team": "kept", "start": "2026-01-05", "end": "2026-01-30"},
        {
            "key": "E1",
            "title": "Target",
            "host_team": "kept",
            "start": "2026-01-05",
            "end": "2026-01-30",
            "status": "active",
            "follow_up": "none",
            "anonymous": False,
            "goals": {"business": "b", "technical": "t"},
            "auxeng": [{"email": "alice@example.com", "role": "engineer", "lead": True}],
            "host": [{"email": "dan@example.com", "role": "tech_lead"}],
        },
    ],
}
# Every field of every kind: one-line text, multi-line text, emails, keys, Slack ids, time zones,
# dates, choices, booleans; and a field name.
PATHS = [
    ("program", "name"),
    ("program", "managers", 0, "name"),
    ("program", "managers", 0, "email"),
    ("program", "managers", 0, "slack_id"),
    ("program", "stakeholders", 0),
    ("program", "digest_slack_channel"),
    ("teams", 1, "key"),
    ("teams", 1, "name"),
    ("teams", 1, "org"),
    ("teams", 1, "help_channel"),
    ("teams", 1, "manager", "email"),
    ("teams", 1, "manager", "name"),
    ("teams", 1, "manager", "slack_id"),
    ("people", 1, "email"),
    ("people", 1, "name"),
    ("people", 1, "slack_id"),
    ("people", 1, "timezone"),
    ("engagements", 1, "key"),
    ("engagements", 1, "title"),
    ("engagements", 1, "host_team"),
    ("engagements", 1, "start"),
    ("engagements", 1, "end"),
    ("engagements", 1, "status"),
    ("engagements", 1, "follow_up"),
    ("engagements", 1, "anonymous"),
    ("engagements", 1, "goals", "business"),
    ("engagements", 1, "goals", "technical"),
    ("engagements", 1, "auxeng", 0, "email"),
    ("engagements", 1, "auxeng", 0, "role"),
    ("engagements", 1, "auxeng", 0, "lead"),
    ("engagements", 1, "host", 0, "email"),
    ("engagements", 1, "host", 0, "role"),
]
VALUES = {
    "huge": "x" * 1_000_000,
    "huge-multi-line": "line\n" * 200_000,
    "multi-line": "Alice\nBcc: mallory@example.com",
    "crlf": "a\r\nb",
    "huge-list": ["a\nb" * 1000] * 1000,
}


def _with(path: tuple, value: object, document: dict = BASE) -> str:
    """The base registry with ``value`` at ``path``, as text (JSON is YAML)."""
    document = copy.deepcopy(document)
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return json.dumps(document)


def _assert_bounded(problems: list) -> None:
    assert problems
    for problem in problems:
        line = str(problem)
        assert "\n" not in line and "\r" not in line, line
        assert line.isprintable(), line
        assert len(line) <= 300, line


@pytest.mark.timeout(20)
@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
@pytest.mark.parametrize("path", PATHS, ids=[".".join(map(str, path)) for path in PATHS])
def test_huge_and_multi_line_values_give_short_one_line_problems(path, value):
    registry = parse_registry(_with(path, value))
    if path[-2] == "goals" and value == VALUES["multi-line"]:  # goals may span lines
        assert registry.problems == [] and "E1" in registry.engagements
        return
    _assert_bounded(registry.problems)
    assert "E0" in registry.engagements and "kept" in registry.teams
    assert "alice@example.com" in registry.people
    section = path[0]
    if section == "program":
        assert registry.program is None
    elif section == "teams":
        assert "other" not in registry.teams
    elif section == "people":
        assert "bob@example.com" not in registry.people
    else:
        assert "E1" not in registry.engagements


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["x" * 1_000_000, "ti\ntle", "\x00", "title\n" * 1000])
@pytest.mark.parametrize("row", [(), ("program",), ("teams", 1), ("engagements", 1)], ids=str)
def test_unknown_field_names_are_shown_short_and_on_one_line(row, name):
    document = copy.deepcopy(BASE)
    mapping = document
    for part in row:
        mapping = mapping[part]
    mapping[name] = "x"
    _assert_bounded(parse_registry(json.dumps(document)).problems)


@pytest.mark.timeout(10)
def test_a_20mb_title_is_refused_quickly():
    """Refused by its length; the text is never scanned or quoted whole."""
    registry = parse_registry(_with(("engagements", 1, "title"), "x" * 20_000_000))
    assert [str(p) for p in registry.problems] == [
        "E1 (engagements[1]) title: too long: 20000000 characters (at most 200)"
    ]
    assert set(registry.engagements) == {"E0"}
    assert registry.rejected_engagement_keys == {"E1"}


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        (("program", "name"), 200),
        (("teams", 1, "org"), 200),
        (("people", 1, "name"), 200),
        (("engagements", 1, "title"), 200),
        (("engagements", 1, "goals", "business"), 2000),
        (("engagements", 1, "auxeng", 0, "email"), 254),
        (("engagements", 1, "key"), 64),
        (("teams", 1, "key"), 64),
        (("people", 1, "timezone"), 64),
    ],
)
def test_length_limits(path, limit):
    """At the limit a value is fine; one character more is one problem naming the limit."""
    fill = {
        "email": lambda n: "a" * (n - 12) + "@example.com",
        "timezone": lambda n: "Europe/" + "B" * (n - 7),
    }
    make = fill.get(path[-1], lambda n: "a" * n)
    at_limit = parse_registry(_with(path, make(limit))).problems
    assert [p.message for p in at_limit if "too long" in p.message] == []
    if path[-1] != "timezone":  # the time zone of the right length is no real zone
        assert at_limit == []
    over = parse_registry(_with(path, make(limit + 1))).problems
    assert [p.message for p in over] == [f"too long: {limit + 1} characters (at most {limit})"]


@pytest.mark.timeout(10)
def test_a_file_over_the_size_cap_is_one_problem_and_is_not_read_whole(tmp_path):
    path = tmp_path / "engagements.yaml"
    with path.open("wb") as file:
        file.write(b"program: {name: P}\n")
        file.truncate(MAX_REGISTRY_BYTES + 10_000_000)
    assert len(read_registry_bytes(path)) == MAX_REGISTRY_BYTES + 1
    registry = load_registry_file(path)
    assert [str(p) for p in registry.problems] == [
        "file: the file is larger than 32 MB, the most a registry may be: nothing was read"
    ]
    assert registry.engagements == {}


def test_an_unknown_host_team_in_capitals_gets_its_closest_match():
    registry = parse_registry(_with(("engagements", 1, "host_team"), "Kept"))
    assert [str(p) for p in registry.problems] == [
        "E1 (engagements[1]) host_team: unknown team 'Kept' (did you mean 'kept'?)"
    ]
