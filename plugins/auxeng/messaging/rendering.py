"""Message rendering from the Jinja templates in ``include/templates/messages/``.

A message named ``survey_invite`` is made of ``survey_invite.subject.txt``,
``survey_invite.txt`` (plain text part), ``survey_invite.html`` (HTML part,
autoescaped) and ``survey_invite.slack.txt`` (Slack mrkdwn, escaped for Slack).
Missing variables are errors, never blank text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from auxeng.settings import include_dir


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str
    slack: str


def slack_escape(value: Any) -> str:
    """Escape text for Slack mrkdwn (``&``, ``<`` and ``>`` are control characters there)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@functools.cache
def environment(templates_dir: str | None = None) -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(templates_dir or str(include_dir() / "templates")),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["slack"] = slack_escape
    return env


def render(name: str, **context: Any) -> RenderedMessage:
    """Render every part of the message template ``name`` with ``context``."""
    env = environment()

    def part(suffix: str) -> str:
        return env.get_template(f"messages/{name}.{suffix}").render(**context)

    return RenderedMessage(
        subject=" ".join(part("subject.txt").split()),
        text=part("txt"),
        html=part("html"),
        slack=part("slack.txt").strip(),
    )
