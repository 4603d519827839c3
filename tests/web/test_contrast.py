"""WCAG 2.1 AA colour contrast of the pages and emails, computed from the templates themselves
(relative luminance and contrast ratio as WCAG defines them): text at least 4.5:1 against what is
behind it (1.4.3), keyboard focus rings at least 3:1 against the page, the card and every control
they surround (1.4.11)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from auxeng.settings import include_dir

TEMPLATES = include_dir() / "templates"
TEXT, NON_TEXT = 4.5, 3.0
HEX = re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b")


def luminance(colour: str) -> float:
    """WCAG relative luminance of an sRGB ``#rrggbb`` / ``#rgb`` colour."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(2 * d for d in digits)

    def channel(pair: str) -> float:
        value = int(pair, 16) / 255
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(digits[i : i + 2]) for i in (0, 2, 4))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_contrast_formula_matches_wcag_s_reference_values():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic "just fails" grey
    assert contrast("#f2a900", "#ffffff") == pytest.approx(2.0, abs=0.05)  # the old focus ring
    assert contrast("#b7791f", "#ffffff") == pytest.approx(3.64, abs=0.01)  # the old warning text
    assert contrast("#ffffff", "#d68910") == pytest.approx(2.82, abs=0.01)  # the old score buttons 7 and 8


# --- the pages' stylesheets ---------------------------------------------------------------------


def stylesheet(template: str) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """The ``<style>`` of ``template``: its rules (selector → declarations) and its ``:root`` colours."""
    css = re.search(r"<style>(.*?)</style>", (TEMPLATES / template).read_text(), re.S).group(1)
    css = re.sub(r"@media[^{]*\{((?:[^{}]*\{[^{}]*\})*)\s*\}", "", css)  # small-screen tweaks: no colours
    rules: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        declarations = dict(
            (name.strip(), value.strip())
            for name, value in (part.split(":", 1) for part in body.split(";") if ":" in part)
        )
        for selector in selectors.split(","):
            rules.setdefault(" ".join(selector.split()), {}).update(declarations)
    variables = {name: value for name, value in rules.pop(":root").items() if name.startswith("--")}
    return rules, variables


def resolve(value: str, variables: dict[str, str]) -> str | None:
    """The hex colour of a declaration (``var(--x)`` resolved), or None when it names none."""
    value = re.sub(r"var\((--[\w-]+)\)", lambda m: variables[m.group(1)], value)
    found = HEX.search(value)
    return found.group(0).lower() if found else None


# Where a rule's text sits when the rule does not set its own background.
PAGE_CONTEXT = {
    "web/base.html": {
        "header.site span": "header.site",
        ".errors h2": ".errors",
        ".notice": ".notice",
        "footer": "body",
    },
    "dashboard/base.html": {
        "header.site strong": "header.site",
        "header.site span": "header.site",
        ".flash": ".flash",
    },
}
# The controls a focus ring surrounds: their backgrounds (selector of the rule that sets them).
FOCUSABLE = {
    "web/base.html": ["button", "button.danger", ".option span", ".option input:checked + span"],
    "dashboard/base.html": ["button"],
}


def page_pairs(template: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(where, foreground, background) for every text colour and every focus ring of ``template``."""
    rules, variables = stylesheet(template)
    page = [resolve(variables["--bg"], variables), resolve(variables["--card"], variables)]
    text, rings = [], []
    for selector, declarations in rules.items():
        background = resolve(declarations.get("background", ""), variables)
        if "color" in declarations:
            foreground = resolve(declarations["color"], variables)
            context = PAGE_CONTEXT[template].get(selector)
            if background:
                behind = [background]
            elif context:
                behind = [resolve(rules[context]["background"], variables)]
            else:
                behind = page
            text += [(selector, foreground, colour) for colour in behind]
        if "focus-visible" in selector:
            ring = resolve(declarations["outline"], variables)
            controls = [resolve(rules[c]["background"], variables) for c in FOCUSABLE[template]]
            rings += [(selector, ring, colour) for colour in page + controls]
    return text, rings


@pytest.mark.parametrize("template", ["web/base.html", "dashboard/base.html"])
def test_every_text_colour_and_focus_ring_of_the_pages_meets_wcag_aa(template):
    text, rings = page_pairs(template)
    assert len(text) >= 10 and len(rings) >= 5  # the stylesheet was read
    low_text = [(w, f, b, round(contrast(f, b), 2)) for w, f, b in text if contrast(f, b) < TEXT]
    low_rings = [(w, f, b, round(contrast(f, b), 2)) for w, f, b in rings if contrast(f, b) < NON_TEXT]
    assert low_text == [] and low_rings == []


def test_the_focus_ring_is_checked_against_the_controls_it_surrounds():
    _text, rings = page_pairs("web/base.html")
    behind = {background for _where, _ring, background in rings}
    assert {"#f4f6f9", "#ffffff", "#1f5fbf"} <= behind and len(behind) >= 4  # page, card, buttons


# --- the emails' inline styles ------------------------------------------------------------------

EMAIL_BACKGROUNDS = ["#ffffff", "#f8fafc"]  # the message card, the digest's figure boxes
STYLE = re.compile(r'style="([^"]*)"')
DECLARATION = re.compile(r"(?<![\w-])(color|background):\s*((?:\{\{.*?\}\}|[^;])*)")


def email_pairs(path: Path) -> list[tuple[str, str, str]]:
    """(template, text colour, background) for every inline style that sets a text colour; a Jinja
    choice (``'#a' if … else '#b'``) counts each of its colours."""
    pairs = []
    for style in STYLE.findall(path.read_text()):
        declared: dict[str, list[str]] = {}
        for name, value in DECLARATION.findall(style):
            declared.setdefault(name, []).extend(c.lower() for c in HEX.findall(value))
        for foreground in declared.get("color", []):
            for background in declared.get("background") or EMAIL_BACKGROUNDS:
                pairs.append((path.name, foreground, background))
    return pairs


EMAILS = sorted((TEMPLATES / "messages").glob("*.html"))


def test_the_email_templates_were_found():
    names = {path.name for path in EMAILS}
    assert {"_scale.html", "flag_alert.html", "nps_digest.html"} <= names
    scale = email_pairs(TEMPLATES / "messages" / "_scale.html")
    assert {background for _name, _fg, background in scale} >= {"#c0392b", "#1e8449"}  # each score colour


@pytest.mark.parametrize("path", EMAILS, ids=lambda path: path.name)
def test_every_text_colour_of_the_emails_meets_wcag_aa(path):
    low = [(n, f, b, round(contrast(f, b), 2)) for n, f, b in email_pairs(path) if contrast(f, b) < TEXT]
    assert low == []
