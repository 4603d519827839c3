"""The registry validator: every defect reported with its engagement key and field, valid rows kept.

Each file in ``tests/data/registry/`` holds one kind of defect (plus valid rows
where that makes sense); the table below pins the exact report for each.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auxeng.dev.synthetic import synthetic_registry_yaml
from auxeng.registry.parse import Engagement, RegistryError, load_registry_file, parse_registry
from auxeng.store.models import EngagementRow

DATA = Path(__file__).resolve().parents[1] / "data" / "registry"
DEMO = Path(__file__).resolve().parents[2] / "include" / "registry" / "engagements.yaml"

HOST_ROLES = "designer, engineer, manager, product_manager, tech_lead"

# file, exact problems in order, loaded engagement keys, rejected engagement keys, rejected team keys
CORPUS = [
    pytest.param(
        "unknown_team.yaml",
        [
            "ENG-2026-002 (engagements[1]) host_team: unknown team 'paymnets' (did you mean 'payments'?)",
            "ENG-2026-003 (engagements[2]) host_team: unknown team 'logistics'",
        ],
        {"ENG-2026-001"},
        {"ENG-2026-002", "ENG-2026-003"},
        set(),
        id="unknown_team",
    ),
    pytest.param(
        "end_before_start.yaml",
        ["ENG-2026-014 (engagements[3]) end: 2026-08-01 is before start 2026-08-03"],
        {"ENG-2026-011", "ENG-2026-012", "ENG-2026-013"},
        {"ENG-2026-014"},
        set(),
        id="end_before_start",
    ),
    pytest.param(
        "bad_date.yaml",
        [
            "ENG-2026-022 (engagements[1]) start: bad date '2026-02-30' (day is out of range for month)",
            "ENG-2026-023 (engagements[2]) end: bad date 'next week' (expected YYYY-MM-DD)",
            "ENG-2026-024 (engagements[3]) start: bad date '2026-13-01' (month must be in 1..12)",
            "ENG-2026-024 (engagements[3]) end: bad date '2026-5-1' (expected YYYY-MM-DD)",
            "ENG-2026-025 (engagements[4]) start: bad date '2026-W10-1' (expected YYYY-MM-DD)",
            "ENG-2026-025 (engagements[4]) end: bad date 20260430 (expected YYYY-MM-DD)",
            "ENG-2026-026 (engagements[5]) end: missing",
        ],
        {"ENG-2026-021", "ENG-2026-027"},
        {"ENG-2026-022", "ENG-2026-023", "ENG-2026-024", "ENG-2026-025", "ENG-2026-026"},
        set(),
        id="bad_date",
    ),
    pytest.param(
        "duplicate_key.yaml",
        [
            "ENG-2026-032 (engagements[3]) key: duplicate engagement key (first at engagements[1])",
            "ENG-2026-032 (engagements[4]) key: duplicate engagement key (first at engagements[1])",
        ],
        {"ENG-2026-031", "ENG-2026-033"},
        {"ENG-2026-032"},
        set(),
        id="duplicate_key",
    ),
    pytest.param(
        "malformed_email.yaml",
        [
            "ENG-2026-042 (engagements[1]) auxeng[0].email: malformed email address 'alice.chen at example.com'",
            "ENG-2026-042 (engagements[1]) host[0].email: malformed email address 'dan@@example.com'",
            "ENG-2026-042 (engagements[1]) host[1].email: malformed email address 'erin@example'",
            "ENG-2026-042 (engagements[1]) host[2].email: missing",
        ],
        {"ENG-2026-041"},
        {"ENG-2026-042"},
        set(),
        id="malformed_email",
    ),
    pytest.param(
        "unknown_role.yaml",
        [
            "ENG-2026-052 (engagements[1]) auxeng[0].role: unknown role 'lead' (expected one of: advisor, engineer)",
            "ENG-2026-052 (engagements[1]) auxeng[1].role: unknown role 'tech_lead' (expected one of: advisor, engineer)",
            f"ENG-2026-052 (engagements[1]) host[0].role: unknown role 'Engineer' (expected one of: {HOST_ROLES})",
            f"ENG-2026-052 (engagements[1]) host[1].role: missing (expected one of: {HOST_ROLES})",
        ],
        {"ENG-2026-051"},
        {"ENG-2026-052"},
        set(),
        id="unknown_role",
    ),
    pytest.param(
        "person_twice.yaml",
        [
            "ENG-2026-062 (engagements[1]) host[2].email: dan@example.com is listed twice in this engagement (first at host[0])",
            "ENG-2026-063 (engagements[2]) host[0].email: alice@example.com is listed twice in this engagement (first at auxeng[0])",
        ],
        {"ENG-2026-061"},
        {"ENG-2026-062", "ENG-2026-063"},
        set(),
        id="person_twice",
    ),
    pytest.param("empty.yaml", ["file: the registry is empty"], set(), set(), set(), id="empty"),
    pytest.param(
        "not_yaml.yaml",
        [
            "file: not valid YAML at line 2, column 1: found character that cannot start any token (a tab: indent with spaces)"
        ],
        set(),
        set(),
        set(),
        id="not_yaml",
    ),
    pytest.param(
        "unbalanced_bracket.yaml",
        [
            "file: not valid YAML at line 5, column 1: did not find expected ',' or ']'"
            " (while parsing a flow sequence at line 3, column 8)"
        ],
        set(),
        set(),
        set(),
        id="unbalanced_bracket",
    ),
    pytest.param(
        "not_a_mapping.yaml",
        ["file: expected a mapping with program, teams, people and engagements, got a list"],
        set(),
        set(),
        set(),
        id="not_a_mapping",
    ),
    pytest.param(
        "engagements_mapping.yaml",
        ["engagements: expected a list, got a mapping"],
        set(),
        set(),
        set(),
        id="engagements_mapping",
    ),
    pytest.param(
        "missing_section.yaml",
        ["program: missing section"],
        {"ENG-2026-091"},
        set(),
        set(),
        id="missing_section",
    ),
    pytest.param(
        "unknown_field.yaml",
        [
            "search (teams[1]) help_chanel: unknown field (did you mean 'help_channel'?)",
            "ENG-2026-102 (engagements[1]) ened: unknown field (did you mean 'end'?)",
            "ENG-2026-102 (engagements[1]) end: missing",
            "ENG-2026-103 (engagements[2]) goals.technicl: unknown field (did you mean 'technical'?)",
            "ENG-2026-103 (engagements[2]) auxeng[0].teh_lead: unknown field (did you mean 'lead'?)",
            "ENG-2026-104 (engagements[3]) host_team: team 'search' is invalid (see its problems under teams)",
        ],
        {"ENG-2026-101"},
        {"ENG-2026-102", "ENG-2026-103", "ENG-2026-104"},
        {"search"},
        id="unknown_field",
    ),
    pytest.param(
        "duplicate_team.yaml",
        [
            "payments (teams[2]) key: duplicate team key (first at teams[0])",
            "ENG-2026-112 (engagements[1]) host_team: team 'payments' is invalid (see its problems under teams)",
        ],
        {"ENG-2026-111"},
        {"ENG-2026-112"},
        {"payments"},
        id="duplicate_team",
    ),
    pytest.param(
        "bad_slack_channel.yaml",
        [
            "program digest_slack_channel: '#auxeng' is not a Slack channel id (C…)",
            "payments (teams[0]) help_channel: '#payments-help' is not a Slack channel id (C…)",
            "checkout (teams[2]) manager.slack_id: '@gina' is not a Slack user id (U…)",
            "ENG-2026-122 (engagements[1]) host_team: team 'payments' is invalid (see its problems under teams)",
            "ENG-2026-123 (engagements[2]) host_team: team 'checkout' is invalid (see its problems under teams)",
        ],
        {"ENG-2026-121"},
        {"ENG-2026-122", "ENG-2026-123"},
        {"payments", "checkout"},
        id="bad_slack_channel",
    ),
    pytest.param(
        "bad_timezone.yaml",
        [
            "bob@example.com (people[1]) timezone: 'CET+1' is not an IANA time zone (e.g. Europe/Berlin)",
            "frank@example.com (people[2]) timezone: 'Europe' is not an IANA time zone (e.g. Europe/Berlin)",
            "grace@example.com (people[3]) timezone: 'Berlin' is not an IANA time zone (e.g. Europe/Berlin)",
            "Alice@example.com (people[4]) email: the same person is listed twice (first at people[0])",
        ],
        {"ENG-2026-131"},
        set(),
        set(),
        id="bad_timezone",
    ),
    pytest.param(
        "many_problems.yaml",
        [
            "ENG-2026-002 (engagements[1]) host_team: unknown team 'serach' (did you mean 'search'?)",
            "ENG-2026-002 (engagements[1]) end: 2026-06-12 is before start 2026-06-15",
            "ENG-2026-002 (engagements[1]) auxeng[0].role: unknown role 'consultant' (expected one of: advisor, engineer)",
            "ENG-2026-002 (engagements[1]) host[1].email: erin@example.com is listed twice in this engagement (first at host[0])",
            "ENG-2026-004 (engagements[3]) start: bad date '2026-04-31' (day is out of range for month)",
            "ENG-2026-004 (engagements[3]) host[0].email: malformed email address 'frank@'",
            "ENG-2026-001 (engagements[4]) key: duplicate engagement key (first at engagements[0])",
            "ENG-2026-005 (engagements[5]) status: unknown status 'done' (expected one of: active, cancelled)",
            "ENG-2026-005 (engagements[5]) follow_up: unknown follow-up 'weekly' (expected one of: monthly, none)",
        ],
        {"ENG-2026-003", "ENG-2026-006"},
        {"ENG-2026-001", "ENG-2026-002", "ENG-2026-004", "ENG-2026-005"},
        set(),
        id="many_problems",
    ),
]


@pytest.mark.parametrize(("name", "problems", "loaded", "rejected", "rejected_teams"), CORPUS)
def test_corpus_file_reports_exact_problems(name, problems, loaded, rejected, rejected_teams):
    """Each bad file gives exactly its problems; its valid engagements still load, its bad ones do not."""
    registry = load_registry_file(DATA / name)
    assert [str(p) for p in registry.problems] == problems
    assert set(registry.engagements) == loaded
    assert registry.rejected_engagement_keys == rejected
    assert registry.rejected_team_keys == rejected_teams
    assert not registry.ok


def test_corpus_table_covers_every_file():
    """A file added to the corpus without expected problems would go untested."""
    assert {p.values[0] for p in CORPUS} == {f.name for f in DATA.glob("*.yaml")}


def test_many_problems_keeps_the_valid_rest():
    """Program, teams, people and the valid engagements of a file with many problems are all kept."""
    registry = load_registry_file(DATA / "many_problems.yaml")
    assert registry.program is not None
    assert registry.program.stakeholders == ("vp-eng@example.com", "dana@example.com")
    assert set(registry.teams) == {"payments", "search"}
    assert set(registry.people) == {"alice@example.com", "bob@example.com"}
    assert registry.engagements["ENG-2026-003"].status == "cancelled"
    kept = registry.engagements["ENG-2026-006"]
    assert (kept.follow_up, kept.anonymous) == ("monthly", True)
    assert registry.broken_sections == set()


def test_rejected_team_parts_are_dropped_but_the_rest_is_kept():
    """Team- and people-level defects drop only the row concerned."""
    slack = load_registry_file(DATA / "bad_slack_channel.yaml")
    assert slack.program is None
    assert set(slack.teams) == {"search"}
    timezones = load_registry_file(DATA / "bad_timezone.yaml")
    assert timezones.people["alice@example.com"].name == "Alice Chen"
    assert set(timezones.people) == {"alice@example.com"}
    missing = load_registry_file(DATA / "missing_section.yaml")
    assert (missing.program, missing.broken_sections) == (None, set())


def test_demo_registry_is_valid():
    """The demo registry loads without problems: 12 teams, 40 engagements, 4 of them cancelled."""
    registry = load_registry_file(DEMO)
    assert registry.problems == []
    assert registry.ok
    assert len(registry.teams) == 12
    assert len(registry.engagements) == 40
    assert sum(e.status == "cancelled" for e in registry.engagements.values()) == 4
    assert registry.rejected_engagement_keys == set()
    assert registry.broken_sections == set()


def test_missing_file_is_one_clear_problem(tmp_path):
    """A path that does not exist is reported, not raised, and nothing is considered loaded."""
    path = tmp_path / "nope.yaml"
    registry = load_registry_file(path)
    assert [str(p) for p in registry.problems] == [f"file: cannot read {path}: No such file or directory"]
    assert registry.broken_sections == {"program", "teams", "people", "engagements"}
    assert registry.engagements == {}


def test_same_bytes_give_same_sha256():
    """The digest depends on the bytes only: str and bytes agree, and any edit changes it."""
    data = DEMO.read_bytes()
    first, second = parse_registry(data), parse_registry(data.decode())
    assert first.sha256 == second.sha256
    assert re.fullmatch(r"[0-9a-f]{64}", first.sha256)
    assert parse_registry(data + b"\n").sha256 != first.sha256
    assert parse_registry(b"").sha256 != first.sha256


@pytest.mark.parametrize(
    ("text", "broken"),
    [
        ("program: {name: A}\nteams: []\nengagements: {}\n", {"engagements"}),
        ("program: {name: A}\nteams: {}\nengagements: []\n", {"teams"}),
        ("program: {name: A}\nengagements: []\n", {"teams"}),
        ("program: {name: A}\nteams: []\npeople: x\nengagements: []\n", {"people"}),
        ("program: {name: A}\nteams: []\nengagements: []\n", set()),
        ("", {"program", "teams", "people", "engagements"}),
    ],
    ids=["engagements-mapping", "teams-mapping", "teams-missing", "people-text", "people-optional", "empty"],
)
def test_broken_sections(text, broken):
    """A section that is missing or not a list is broken as a whole (so it is left alone by a sync)."""
    assert parse_registry(text).broken_sections == broken


def test_dates_stay_dates():
    """Valid dates are ``date`` objects; a bad date only rejects its own engagement."""
    registry = load_registry_file(DATA / "bad_date.yaml")
    leap = registry.engagements["ENG-2026-027"]
    assert isinstance(leap, Engagement)
    assert (leap.start, leap.end) == (date(2028, 2, 29), date(2028, 3, 31))
    assert all(type(e.start) is date and type(e.end) is date for e in registry.engagements.values())
    assert registry.broken_sections == set()


def test_emails_are_lower_cased():
    """Member, contact, stakeholder and person emails are stored lower-case."""
    registry = load_registry_file(DATA / "malformed_email.yaml")
    assert [m.email for m in registry.engagements["ENG-2026-041"].members] == ["alice.chen@example.com"]
    registry = parse_registry(
        "program: {name: A, managers: [{email: Dana@Example.com}], stakeholders: [VP@Example.com]}\n"
        "teams: [{key: t, name: T, manager: {email: Carol@Example.COM}}]\n"
        "people: [{email: Bob@Example.com}]\n"
        "engagements: []\n"
    )
    assert registry.problems == []
    assert registry.program.managers[0].email == "dana@example.com"
    assert registry.program.stakeholders == ("vp@example.com",)
    assert registry.teams["t"].manager.email == "carol@example.com"
    assert set(registry.people) == {"bob@example.com"}


def test_registry_error_carries_the_full_report():
    """The exception text names the source and lists every problem."""
    registry = load_registry_file(DATA / "many_problems.yaml")
    message = RegistryError(registry, source="many_problems.yaml").args[0]
    assert message.startswith("many_problems.yaml: 9 problem(s) in the registry:\n")
    assert message.splitlines()[1:] == [f"  - {p}" for p in registry.problems]


_HEADER = "program: {name: A}\nteams: [{key: t, name: T}]\n"
_ENGAGEMENT = "engagements:\n  - {key: E, title: x, host_team: t, start: 2026-01-05, end: 2026-01-30, %s}\n"


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        (
            _HEADER + _ENGAGEMENT % "status: [a]",
            ["E (engagements[0]) status: unknown status ['a'] (expected one of: active, cancelled)"],
        ),
        (
            _HEADER + _ENGAGEMENT % "host: [{email: d@example.com, role: [x]}]",
            [f"E (engagements[0]) host[0].role: unknown role ['x'] (expected one of: {HOST_ROLES})"],
        ),
        (
            _HEADER + _ENGAGEMENT % "goals: {business: ''}",
            ["E (engagements[0]) goals.business: expected non-empty text, got empty text"],
        ),
        (
            _HEADER
            + "engagements:\n  - {key: E, title: x, host_team: t, start: !!timestamp 2026-02-30, end: 2026-03-30}\n",
            ["E (engagements[0]) start: bad date '2026-02-30' (day is out of range for month)"],
        ),
        (
            _HEADER + "people: [{email: a@example.com, timezone: America}]\nengagements: []\n",
            ["a@example.com (people[0]) timezone: 'America' is not an IANA time zone (e.g. Europe/Berlin)"],
        ),
        (
            _HEADER + "engagements: [{key: E, title: !!float abc}]\n",
            ["file: not valid YAML at line 3, column 31: cannot read 'abc' as float"],
        ),
        (
            _HEADER + "engagements: [null, {title: x}]\n",
            ["engagements[0]: expected a mapping, got nothing", "engagements[1] key: missing"],
        ),
    ],
    ids=[
        "unhashable-status",
        "unhashable-role",
        "empty-goal",
        "tagged-date",
        "tz-directory",
        "tagged-float",
        "no-key",
    ],
)
def test_odd_values_are_problems_not_crashes(text, problems):
    """Values of the wrong shape are reported like any other defect; parsing never raises."""
    assert [str(p) for p in parse_registry(text).problems] == problems


# -- 10k engagements ----------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_10k() -> str:
    """The text of a valid 10,000-engagement registry (generated once for this module)."""
    return synthetic_registry_yaml(10_000)


def _replace_in_block(text: str, key: str, pattern: str, new: str) -> str:
    """Replace the one match of ``pattern`` inside engagement ``key``'s block."""
    start = text.index(f"  - key: {key}\n")
    following = text.find("\n  - key: ", start + 1)
    end = len(text) if following == -1 else following + 1
    block, count = re.subn(pattern, new, text[start:end], flags=re.MULTILINE)
    assert count == 1, f"{pattern!r} matched {count} times in {key}'s block"
    return text[:start] + block + text[end:]


def test_10k_engagements_load_cleanly(synthetic_10k, tmp_path):
    """A 10,000-engagement file from disk loads with no problems."""
    path = tmp_path / "engagements.yaml"
    path.write_text(synthetic_10k)
    registry = load_registry_file(path)
    assert registry.problems == []
    assert len(registry.engagements) == 10_000
    assert len(registry.teams) == 500


def test_10k_engagements_with_three_defects(synthetic_10k, tmp_path):
    """Three planted defects give exactly three problems; only the four engagements involved drop out."""
    text = _replace_in_block(synthetic_10k, "SYN-000100", r"^    host_team: .*$", "    host_team: payments")
    text = _replace_in_block(text, "SYN-005000", r"^    start: .*$", "    start: 2025-02-29")
    text = _replace_in_block(text, "SYN-009999", r"^  - key: SYN-009999$", "  - key: SYN-000007")
    path = tmp_path / "engagements.yaml"
    path.write_text(text)
    registry = load_registry_file(path)
    assert [str(p) for p in registry.problems] == [
        "SYN-000100 (engagements[100]) host_team: unknown team 'payments'",
        "SYN-005000 (engagements[5000]) start: bad date '2025-02-29' (day is out of range for month)",
        "SYN-000007 (engagements[9999]) key: duplicate engagement key (first at engagements[7])",
    ]
    assert registry.rejected_engagement_keys == {"SYN-000100", "SYN-005000", "SYN-000007"}
    assert len(registry.engagements) == 10_000 - 4
    assert {"SYN-000100", "SYN-005000", "SYN-000007", "SYN-009999"}.isdisjoint(registry.engagements)
    assert {"SYN-000000", "SYN-000099", "SYN-000101", "SYN-009998"} <= set(registry.engagements)


HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile" / "registry"


@pytest.mark.timeout(10)
def test_an_alias_bomb_is_refused_before_anything_is_built():
    """Nine lines that would expand to 10^9 items: refused at once, one problem per repeated node."""
    registry = load_registry_file(HOSTILE / "alias_bomb.yaml")
    assert [str(p) for p in registry.problems] == [
        f"file: line {line}: a YAML alias (*name) repeats the node defined here" for line in range(2, 11)
    ]
    assert not registry.engagements and not registry.teams


@pytest.mark.parametrize(
    ("name", "problems"),
    [
        (
            "second_engagements_block.yaml",
            ["file: line 7: duplicate key 'engagements' (first at line 5)"],
        ),
        (
            "duplicate_fields.yaml",
            [
                "file: line 6: duplicate key 'key' (first at line 4)",
                "file: line 11: duplicate key 'title' (first at line 9)",
            ],
        ),
    ],
)
def test_every_duplicate_key_is_a_problem_naming_its_line_and_nothing_loads(name, problems):
    registry = load_registry_file(HOSTILE / name)
    assert [str(p) for p in registry.problems] == problems
    assert not registry.engagements


def test_a_duplicated_engagements_block_removes_nothing(store):
    from auxeng.registry.sync import sync_registry_file

    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    first = sync_registry_file(store, DEMO, now=now)
    assert not first.problems and first.created
    result = sync_registry_file(
        store, HOSTILE / "second_engagements_block.yaml", now=now + timedelta(hours=1)
    )
    assert result.problems and result.removed == []
    with Session(store) as session:
        assert session.scalar(select(func.count()).where(EngagementRow.removed_at.is_not(None))) == 0
