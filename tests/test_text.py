"""The free-text rule (control characters, line breaks) and how messages quote values."""

from __future__ import annotations

import re

import pytest

from auxeng.text import NO_CONTROL, ONE_LINE, clip, describe_control, first_control, has_control, shown

SAMPLES = [
    "plain",
    "tab\there",
    "two\nlines",
    "crlf\r\nline",
    "nul\x00",
    "bell\x07",
    "esc\x1b[31m",
    "del\x7f",
    "\nsurrounded by line breaks\r\n",
    "  spaces and tabs\t",
    "unicode: café, \u2028, \x85",
    "",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_the_patterns_and_first_control_are_one_rule(text):
    """What the JSON Schema patterns refuse is what ``first_control`` finds (on trimmed text)."""
    trimmed = text.strip(" \t\r\n")
    assert (re.fullmatch(NO_CONTROL, trimmed) is None) == (first_control(text) is not None)
    assert (re.fullmatch(ONE_LINE, trimmed) is None) == (first_control(text, one_line=True) is not None)


@pytest.mark.parametrize(
    ("text", "one_line", "expected"),
    [
        ("Move\x00checkout", False, 4),
        ("two\nlines", False, None),
        ("two\nlines", True, 3),
        ("tab\tis fine", True, None),
        ("trailing line break\n", True, None),
        ("\r\nleading line break", True, None),
        ("CR\ralone", False, 2),
        ("Del\x7f", True, 3),
        ("café \u2028", True, None),  # only C0 and DEL count
    ],
)
def test_first_control(text, one_line, expected):
    assert first_control(text, one_line=one_line) == expected


def test_first_control_agrees_with_has_control_on_multi_line_text_without_cr():
    for text in SAMPLES:
        if "\r" not in text:
            assert has_control(text) == (first_control(text) is not None), text


def test_describe_control_counts_from_one():
    assert describe_control("Move\x00checkout", 4) == "contains a control character (U+0000) at position 5"
    assert describe_control("a\nb", 1) == "contains a line break (U+000A) at position 2"
    assert describe_control("a\rb", 1) == "contains a line break (U+000D) at position 2"


@pytest.mark.parametrize(
    "value", ["paymnets", "it's", 'say "hi"', 20260430, 1.5, True, None, ["a"], {"a": 1}, b"x\x00"]
)
def test_short_values_are_shown_as_their_repr(value):
    assert shown(value) == repr(value)


@pytest.mark.parametrize(
    "value",
    [
        "x" * 20_000_000,
        "line\n" * 1000,
        "\x00" * 1000,
        "é" * 500,
        ["a\nb" * 100] * 100,
        {f"key{i}\n": "v\r" * 100 for i in range(100)},
        [[[["deep\n"] * 50] * 50] * 50],
        10**4000,
        ("tuple", "of", "many", "things") * 100,
    ],
    ids=["20MB", "lines", "nul", "accents", "list", "dict", "nested", "bigint", "tuple"],
)
@pytest.mark.timeout(5)
def test_any_value_is_shown_on_one_line_in_at_most_80_characters(value):
    text = shown(value)
    assert len(text) <= 80
    assert "…" in text  # cut
    assert text.isprintable(), text


def test_a_cut_string_keeps_its_quotes_and_never_splits_an_escape():
    text = shown("a" * 100)
    assert text == repr("a" * 77) + "…"
    nul = shown("\x00" * 100)
    assert nul == repr("\x00" * 19) + "…"  # 4 characters each: 2 + 19 * 4 + 1 = 79


def test_clip_keeps_text_unquoted_escapes_line_breaks_and_cuts():
    assert clip("dan@example.com") == "dan@example.com"
    assert clip("two\nlines\r\x00") == "two\\nlines\\r\\x00"
    assert clip("x" * 100) == "x" * 79 + "…"
    assert clip("x" * 100, 10) == "x" * 9 + "…"
    assert clip("\n" * 100, 10) == "\\n" * 4 + "…"
