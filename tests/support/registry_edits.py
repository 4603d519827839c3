"""Edits of registry YAML text for tests: change or drop one engagement's block."""

from __future__ import annotations


def _block(text: str, key: str) -> tuple[int, int]:
    start = text.index(f"  - key: {key}\n")
    following = text.find("\n  - key: ", start + 1)
    return start, len(text) if following == -1 else following + 1


def edit_engagement(text: str, key: str, old: str, new: str) -> str:
    """Replace ``old`` with ``new`` inside engagement ``key``'s block (exactly once)."""
    start, end = _block(text, key)
    block = text[start:end]
    assert block.count(old) == 1, f"{old!r} is not exactly once in {key}'s block"
    return text[:start] + block.replace(old, new) + text[end:]


def drop_engagement(text: str, key: str) -> str:
    start, end = _block(text, key)
    return text[:start] + text[end:]


def with_engagements(text: str, body: str) -> str:
    """``text`` with its ``engagements:`` section (the file's last) replaced by ``body``."""
    return text[: text.index("\nengagements:") + 1] + body


def first_engagements(text: str, count: int) -> str:
    """``text`` keeping only its first ``count`` engagements (the engagements section is the file's last)."""
    start = text.index("\nengagements:\n") + len("\nengagements:\n")
    blocks = text[start:].split("\n  - key: ")
    return text[:start] + "\n  - key: ".join(blocks[:count]).rstrip("\n") + "\n"
