"""Block Kit as Slack accepts it: every message kind, with people's long words, passes Slack's own models."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from slack_sdk.models.blocks import Block
from sqlalchemy.orm import Session

from auxeng.messaging import blocks
from auxeng.messaging.planner import MessagePlanner
from auxeng.nps.digest import slack_blocks
from auxeng.settings import load_settings
from tests.messaging.contexts import contexts, digest

LONG = ("The consumer lag alerts fire every night & nobody <knows> why. " * 100)[:6000]
NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)


def assert_valid(payload_blocks):
    """What Slack checks of ``blocks``: each block against the SDK's models, and their count."""
    assert 0 < len(payload_blocks) <= blocks.MESSAGE_BLOCKS_LIMIT
    for block in payload_blocks:
        Block.parse(block).validate_json()  # raises SlackObjectFormationError
        for field in block.get("fields") or []:
            assert len(field["text"]) <= blocks.FIELD_TEXT_LIMIT  # Slack's limit the SDK does not check


def slack_payloads(store, user_text):
    """(kind, variant, blocks) of the Slack DM of every person message kind, and of the digest."""
    with Session(store) as session:
        planner = MessagePlanner(session, load_settings({}), now=NOW, key=b"k" * 32)
        recipient = planner.recipient("jose@example.com", "José Müller", slack_id="U0JOSE")
        for kind, variant, context in contexts(user_text):
            if kind == "nps_digest":
                continue
            context = {
                k: v for k, v in context.items() if k not in ("person_name", "program_name", "optout_link")
            }
            _, dm = planner.person_messages(
                dedupe_prefix=f"test:{kind}",
                template=kind,
                recipient=recipient,
                context=context,
                earliest=NOW,
                engagement_key="ENG-42",
            )
            yield kind, variant, dm.payload["blocks"]
    for chart_follows in (True, False):
        yield (
            "nps_digest",
            f"chart {chart_follows}",
            slack_blocks(digest(user_text), chart_follows=chart_follows),
        )


def test_every_slack_payload_is_valid_block_kit_with_a_6000_character_answer(store):
    payloads = list(slack_payloads(store, LONG))
    assert len(payloads) == 25
    for _, _, payload_blocks in payloads:
        assert_valid(payload_blocks)
    detractor = next(
        b for kind, variant, b in payloads if kind == "detractor_alert" and variant == "answered True"
    )
    texts = [b["text"]["text"] for b in detractor]
    assert texts[0].startswith(":rotating_light: *Detractor (3/10)*")
    assert texts[1].startswith("*What went well:* The consumer lag") and texts[1].endswith(blocks.MARK)
    assert texts[-1].endswith(
        "Please close the loop with the host team this week."
    )  # nothing after the answer is lost
    flag = next(b for kind, _, b in payloads if kind == "flag_alert")
    assert "|Acknowledge>" in flag[-1]["text"]["text"]


def test_short_messages_stay_one_section(store):
    for kind, variant, payload_blocks in slack_payloads(store, "It went well."):
        if kind != "nps_digest":
            assert len(payload_blocks) == 1 and blocks.MARK not in payload_blocks[0]["text"]["text"], (
                kind,
                variant,
            )


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly 10", 10, "exactly 10"),
        ("one two three", 10, "one two t…"),
        ("ab &amp; cd", 7, "ab…"),  # never half an escape
        ("see <https://x.example/a|the log> now", 20, "see…"),  # never half a link
    ],
)
def test_truncate(text, limit, expected):
    assert blocks.truncate(text, limit) == expected
    assert len(blocks.truncate(text, limit)) <= limit


def test_a_header_and_too_many_blocks_are_cut_to_slacks_limits():
    assert_valid([blocks.header("x" * 500)])
    assert blocks.header("x" * 500)["text"]["text"] == "x" * 149 + blocks.MARK
    many = blocks.message([blocks.context(str(n)) for n in range(120)])
    assert_valid(many)
    assert many[-1]["elements"][0]["text"] == f"{blocks.MARK} 71 more blocks not shown"


def test_a_digest_with_many_checkins_due_lists_them_all_in_valid_blocks():
    from dataclasses import replace
    from datetime import date

    from auxeng.nps.digest import DueCheckin

    due = [DueCheckin(f"ENG-{n}", "Payments and Settlements", date(2026, 12, 1), "sent") for n in range(150)]
    payload_blocks = slack_blocks(replace(digest("fine"), checkins_due=due), chart_follows=False)
    assert_valid(payload_blocks)
    listed = "\n".join(b["text"]["text"] for b in payload_blocks if b["type"] == "section" and "text" in b)
    assert all(f": ENG-{n} (" in listed for n in range(150))
