"""The registry's ``help_after_end`` (program and teams): validated with clear problems, stored, updated."""

from __future__ import annotations

from datetime import UTC, datetime

from auxeng.registry.parse import HelpAfterEnd, parse_registry
from auxeng.registry.sync import sync_registry
from auxeng.store.db import session_scope
from auxeng.store.models import ProgramRow, TeamRow
from tests.conftest import DEMO_REGISTRY

NOW = datetime(2026, 11, 24, 9, tzinfo=UTC)
DEMO_TEXT = DEMO_REGISTRY.read_text()
TEAM_HELP = """    help_after_end:
      text: Warehouse systems questions go to the logistics platform guild first.
      slack_channel: "#logistics-platform"
      office_hours: https://wiki.example.com/logistics/office-hours
"""


def test_the_demo_registry_has_help_for_the_program_and_a_team():
    registry = parse_registry(DEMO_TEXT)
    assert registry.ok
    assert registry.program.help_after_end == HelpAfterEnd(
        text="Ask in the platform help channel; the on-call platform engineer answers within a working day.",
        office_hours="https://wiki.example.com/auxeng/office-hours",
        slack_channel="#platform-help",
        docs="https://docs.example.com/platform",
    )
    assert registry.teams["warehouse-ops"].help_after_end.slack_channel == "#logistics-platform"
    assert registry.teams["checkout"].help_after_end is None


def test_bad_values_are_problems_naming_the_row_and_the_field():
    text = DEMO_TEXT.replace(
        TEAM_HELP,
        """    help_after_end:
      slack_channel: logistics-platform
      office_hours: "javascript:alert(1)"
      docs: https://docs.example.com/<script>
      phone: 555
""",
    ).replace("    docs: https://docs.example.com/platform\n", "    docs: [https://docs.example.com]\n", 1)
    problems = [str(p) for p in parse_registry(text).problems]
    assert problems[:5] == [
        "program help_after_end.docs: ['https://docs.example.com'] is not a web address (https://…)",
        "warehouse-ops (teams[5]) help_after_end.phone: unknown field",
        "warehouse-ops (teams[5]) help_after_end.office_hours: 'javascript:alert(1)' is not a web address (https://…)",
        "warehouse-ops (teams[5]) help_after_end.slack_channel: 'logistics-platform' is not a Slack channel name "
        "('#' and lower-case letters, digits, '-', '_', '.')",
        "warehouse-ops (teams[5]) help_after_end.docs: 'https://docs.example.com/<script>' is not a web address "
        "(https://…)",
    ]
    too_long = DEMO_TEXT.replace(
        "      text: Warehouse systems questions go to the logistics platform guild first.\n",
        f"      text: {'x' * 501}\n",
    )
    assert "warehouse-ops (teams[5]) help_after_end.text: too long: 501 characters (at most 500)" in [
        str(p) for p in parse_registry(too_long).problems
    ]
    not_a_mapping = DEMO_TEXT.replace(TEAM_HELP, "    help_after_end: ask us\n")
    assert (
        "warehouse-ops (teams[5]) help_after_end: expected a mapping with text, office_hours, slack_channel "
        "and docs, got a string"
    ) in [str(p) for p in parse_registry(not_a_mapping).problems]


def test_help_after_end_is_stored_and_follows_edits(store):
    sync_registry(store, parse_registry(DEMO_TEXT), source="test", now=NOW)
    with session_scope(store) as session:
        assert session.get(ProgramRow, 1).help_after_end["slack_channel"] == "#platform-help"
        assert session.get(TeamRow, "warehouse-ops").help_after_end == {
            "text": "Warehouse systems questions go to the logistics platform guild first.",
            "slack_channel": "#logistics-platform",
            "office_hours": "https://wiki.example.com/logistics/office-hours",
        }
        assert session.get(TeamRow, "checkout").help_after_end is None
    edited = DEMO_TEXT.replace(TEAM_HELP, "").replace(
        '    slack_channel: "#platform-help"\n', '    slack_channel: "#help"\n', 1
    )
    sync_registry(store, parse_registry(edited), source="test", now=NOW)
    with session_scope(store) as session:
        assert session.get(ProgramRow, 1).help_after_end["slack_channel"] == "#help"
        assert session.get(TeamRow, "warehouse-ops").help_after_end is None
