"""The registry's JSON Schema: committed as generated, and it agrees with the validator.

``jsonschema`` (an independent implementation, Draft 2020-12) checks YAML read the way
editors read it: dates stay text (YAML 1.2 has no timestamps), so the loader below drops
PyYAML's timestamp resolver. The schema covers the structure (types, fields, required fields,
enums, patterns, lengths); rules across rows (unknown or duplicate keys, a person twice, end
before start) and calendar and time-zone checks are the validator's alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from auxeng.registry.parse import parse_registry
from auxeng.registry.schema import SCHEMA_PATH, json_schema, main, schema_text

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "include" / "registry" / "engagements.yaml"
DATA = REPO / "tests" / "data" / "registry"
HOSTILE = REPO / "tests" / "data" / "hostile" / "registry"


class _EditorLoader(yaml.CSafeLoader):
    """YAML as an editor reads it: dates and yes/no stay text."""


_EditorLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith((":timestamp", ":bool"))]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}
_EditorLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _load(source: Path | str):
    return yaml.load(source.read_bytes() if isinstance(source, Path) else source, _EditorLoader)


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_the_committed_schema_is_the_generated_one():
    assert SCHEMA_PATH == REPO / "include" / "registry" / "engagements.schema.json"
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "include/registry/engagements.schema.json is out of date: run `make schema`"
        " (python -m auxeng.registry.schema)"
    )
    assert json_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_schema_command_writes_and_checks(tmp_path, capsys):
    path = tmp_path / "schema.json"
    assert main(["--check", "--path", str(path)]) == 1
    assert "out of date: run `make schema`" in capsys.readouterr().err
    assert main(["--path", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == schema_text()
    assert main(["--check", "--path", str(path)]) == 0


def test_the_demo_registry_points_editors_at_the_schema():
    assert DEMO.read_text().splitlines()[0] == "# yaml-language-server: $schema=./engagements.schema.json"
    assert (DEMO.parent / "engagements.schema.json").exists()


def test_the_schema_describes_the_fields_for_editors():
    schema = json_schema()
    engagement = schema["$defs"]["Engagement"]
    assert schema["title"] == "AuxEng engagement registry"
    assert engagement["description"] and engagement["additionalProperties"] is False
    assert engagement["required"] == ["key", "title", "host_team", "start", "end"]
    assert engagement["properties"]["start"]["description"] == "First day, YYYY-MM-DD."
    assert engagement["properties"]["start"]["format"] == "date"
    assert engagement["properties"]["title"]["maxLength"] == 200
    assert engagement["properties"]["status"]["enum"] == ["active", "cancelled"]


def test_jsonschema_accepts_the_demo_registry(validator):
    document = _load(DEMO)
    assert isinstance(document["engagements"][0]["start"], str)
    assert [error.message for error in validator.iter_errors(document)] == []


# file: the structural defect jsonschema must find too (the validator's report is pinned elsewhere)
STRUCTURAL = [
    ("bad_date.yaml", "pattern"),  # 2026-13-01 and next week; 20260430 is a number
    ("bad_slack_channel.yaml", "pattern"),
    ("empty.yaml", "type"),
    ("engagements_mapping.yaml", "type"),
    ("malformed_email.yaml", "pattern"),  # and a member without an email: required
    ("many_problems.yaml", "enum"),
    ("missing_section.yaml", "required"),
    ("not_a_mapping.yaml", "type"),
    ("unknown_field.yaml", "additionalProperties"),
    ("unknown_role.yaml", "enum"),
    ("nul_in_title.yaml", "pattern"),
    ("line_breaks_in_names.yaml", "pattern"),
    ("control_in_every_field.yaml", "pattern"),
    ("multi_line_values.yaml", "additionalProperties"),
]
# Sound in structure: what is wrong there is a rule across rows, a calendar or time-zone check,
# or YAML itself (duplicate keys, not YAML, not UTF-8), which the loader refuses.
NOT_STRUCTURAL = [
    "duplicate_key.yaml",
    "duplicate_team.yaml",
    "end_before_start.yaml",
    "person_twice.yaml",
    "unknown_team.yaml",
    "bad_timezone.yaml",
    "duplicate_fields.yaml",
    "second_engagements_block.yaml",
    "utf8_bom.yaml",
]
# Refused before any schema applies: not YAML, not UTF-8, or (the alias bomb) too big once read.
UNREADABLE = [
    "not_yaml.yaml",
    "unbalanced_bracket.yaml",
    "latin1.yaml",
    "utf16.yaml",
    "utf16_no_bom.yaml",
    "alias_bomb.yaml",
]


def _corpus(name: str) -> Path:
    return DATA / name if (DATA / name).exists() else HOSTILE / name


def _rules(errors) -> set[str]:
    """The keywords that failed, also inside ``anyOf`` branches (``X | None`` fields)."""
    return {rule for error in errors for rule in (error.validator, *_rules(error.context or ()))}


def test_every_corpus_file_is_classified():
    names = {name for name, _ in STRUCTURAL} | set(NOT_STRUCTURAL) | set(UNREADABLE)
    assert names == {f.name for f in [*DATA.iterdir(), *HOSTILE.iterdir()]}


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("name", "rule"), STRUCTURAL, ids=[name for name, _ in STRUCTURAL])
def test_jsonschema_rejects_each_structural_defect(validator, name, rule):
    path = _corpus(name)
    errors = list(validator.iter_errors(_load(path)))
    assert rule in _rules(errors), [error.message[:100] for error in errors]
    assert parse_registry(path.read_bytes()).problems


@pytest.mark.parametrize("name", NOT_STRUCTURAL)
def test_jsonschema_accepts_what_only_the_validator_refuses(validator, name):
    assert [error.message for error in validator.iter_errors(_load(_corpus(name)))] == []


_BASE = {
    "program": {"name": "AuxEng"},
    "teams": [{"key": "payments", "name": "Payments"}],
    "engagements": [
        {
            "key": "ENG-1",
            "title": "Valid",
            "host_team": "payments",
            "start": "2026-03-02",
            "end": "2026-04-24",
            "auxeng": [{"email": "alice@example.com", "role": "engineer", "lead": True}],
        }
    ],
}


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"title": 5}, "type"),
        ({"anonymous": "yes"}, "type"),
        ({"anonymous": 1}, "type"),
        ({"status": "done"}, "enum"),
        ({"follow_up": "weekly"}, "enum"),
        ({"titel": "typo"}, "additionalProperties"),
        ({"key": "ENG 1"}, "pattern"),
        ({"host_team": "Payments"}, "pattern"),
        ({"start": "2026-3-2"}, "pattern"),
        ({"title": "x" * 201}, "maxLength"),
        ({"title": ""}, "minLength"),
        ({"title": "Move\x00checkout"}, "pattern"),
        ({"title": "two\nlines"}, "pattern"),
        ({"goals": {"business": "x" * 2001}}, "maxLength"),
        ({"goals": {"business": "bell\x07"}}, "pattern"),
        ({"auxeng": [{"email": "alice at example.com", "role": "engineer"}]}, "pattern"),
        ({"auxeng": [{"email": "alice@example.com", "role": "tech_lead"}]}, "enum"),
        ({"auxeng": [{"email": "alice@example.com"}]}, "required"),
        ({"auxeng": {"email": "alice@example.com", "role": "engineer"}}, "type"),
        ({"end": None}, "type"),
    ],
)
def test_the_schema_and_the_validator_refuse_the_same_structural_defects(validator, change, rule):
    document = json.loads(json.dumps(_BASE))
    document["engagements"][0].update(change)
    assert rule in _rules(validator.iter_errors(document))
    assert parse_registry(json.dumps(document)).problems


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"goals": {"business": "Two\nlines\tand a tab", "technical": None}},
        {"status": "cancelled", "follow_up": "monthly", "anonymous": True},
        {"key": "ENG-2026.1_a", "title": "x" * 200},
        {"host": None, "auxeng": None, "goals": None},
    ],
)
def test_the_schema_and_the_validator_accept_the_same_valid_rows(validator, change):
    document = json.loads(json.dumps(_BASE))
    document["engagements"][0].update(change)
    assert [e.message for e in validator.iter_errors(document)] == []
    assert parse_registry(json.dumps(document)).problems == []
