"""axe-core (Deque's accessibility engine, bundled by the ``axe-playwright-python`` package) run in
headless Chromium with the WCAG 2.0 and 2.1 level A and AA rules, on every kind of public page and
on the HTML part of every email.

The pages are the public app under uvicorn on loopback (the ``live`` fixture, SQLite and
PostgreSQL), reached the way people reach them: by signed links, and by pressing their buttons
(a survey sent, an opt-out confirmed, a red flag acknowledged). Each page is checked as laid out
for a desktop and at 320 CSS pixels (WCAG 1.4.10 reflow). The emails are the real templates
rendered by :func:`auxeng.messaging.rendering.render` with the contexts of the template tests, one
per branch, loaded into a page (``set_content``), at their 600-pixel design width and at 320.

Every check writes axe's full result to ``tests/artifacts/axe/<name>-<width>px.json``
(git-ignored) for inspection. A test fails on any violation, on any text whose contrast axe could
not determine (it reports those as "incomplete": for instance text overlapped by what sticks out
at 320 pixels, or a one-character label in a colour that fails), and on a page or email that
scrolls sideways at 320 pixels; the message lists each: rule, impact, help, and the elements.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe

from auxeng.messaging import tokens
from auxeng.messaging.rendering import render
from auxeng.settings import include_dir
from tests.messaging.contexts import contexts
from tests.web.conftest import (
    ANONYMOUS_ENGAGEMENT,
    ANONYMOUS_HOST_PERSON,
    ARTIFACTS,
    AUXENG_PERSON,
    ENGAGEMENT,
    HOST_PERSON,
    KEY,
    NOW,
    invite,
)
from tests.web.test_flag_ack import MANAGER, ack_url
from tests.web.test_flag_ack_reflow import LONG_LINK, long_evidence_flag

WCAG21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
OPTIONS = {"runOnly": {"type": "tag", "values": WCAG21_AA}, "resultTypes": ["violations"]}
DESKTOP, EMAIL, NARROW = 1280, 600, 320
REPORTS = ARTIFACTS / "axe"
AXE = Axe()
EMAILS = list(contexts())  # every message kind, one context per branch of its template
TEMPLATES = include_dir() / "templates" / "messages"


def axe_problems(
    page, name: str, widths: tuple[int, ...] = (DESKTOP, NARROW), *, exclude: tuple[str, ...] = ()
) -> list[str]:
    """Run axe on ``page`` as it is now, laid out at each of ``widths``; save each result as
    ``tests/artifacts/axe/<name>-<width>px.json`` and return a readable account of every violation,
    of every text whose contrast axe could not determine, and of sideways scrolling at 320 px.
    ``exclude``: selectors of parts axe cannot judge (an inline SVG chart's text), checked by the caller."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for width in widths:
        page.set_viewport_size({"width": width, "height": 800})
        context = {"exclude": [[selector] for selector in exclude]} if exclude else None
        results = AXE.run(page, context=context, options=OPTIONS).response
        assert results["testEngine"]["name"] == "axe-core"
        assert results["toolOptions"]["runOnly"]["values"] == WCAG21_AA
        assert results["passes"], f"axe found nothing to check on {name}"  # the page was there
        report = {"page": name, "width": width, "url": page.url, "tags": WCAG21_AA, **results}
        slug = re.sub(r"[^a-z0-9]+", "-", f"{name}-{width}px".lower()).strip("-")
        (REPORTS / f"{slug}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
        where = f"{name} at {width}px"
        problems += [describe(where, rule) for rule in results["violations"]]
        problems += [
            describe(where, rule, "could not be checked")
            for rule in results["incomplete"]
            if rule["id"] == "color-contrast"
        ]
        if width <= NARROW:
            problems += sideways(page, where, width)
    return problems


def describe(where: str, rule: dict, outcome: str = "") -> str:
    """One rule's result: id, impact, help (and link), then each element that fails it and why."""
    lines = [
        f"{where}: {rule['id']} ({rule['impact']}){' ' + outcome if outcome else ''}: {rule['help']}"
        f" <{rule['helpUrl'].split('?')[0]}>"
    ]
    for node in rule["nodes"]:
        checks = node["any"] + node["all"] + node["none"]
        why = "; ".join(dict.fromkeys(check["message"] for check in checks))
        lines.append(f"    {' > '.join(map(str, node['target']))}: {why}")
    return "\n".join(lines)


def sideways(page, where: str, width: int) -> list[str]:
    """WCAG 1.4.10 (reflow), which axe leaves to people: at 320 CSS pixels the page does not scroll
    sideways. Names the elements that stick out, or whose content does."""
    wide, culprits = page.evaluate(
        """width => {
             const all = [...document.querySelectorAll('body *')];
             const out = e => e.getBoundingClientRect().right > width + 0.5;
             // where sticking out starts: the element does, its parent does not
             const boxes = all.filter(e => out(e) && !out(e.parentElement));
             // content wider than its (visible-overflow) box, innermost, not explained by those boxes
             const spills = all.filter(e => e.scrollWidth > e.clientWidth + 1
                                            && getComputedStyle(e).overflowX === 'visible');
             const texts = spills.filter(e => !spills.some(o => o !== e && e.contains(o))
                                              && !boxes.some(b => e.contains(b) || b.contains(e)));
             return [document.documentElement.scrollWidth, [...boxes, ...texts].map(e =>
               `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''} (${Math.round(e.getBoundingClientRect().width)}px)`)];
           }""",
        width,
    )
    if wide <= width:
        return []
    return [
        f"{where}: reflow (WCAG 1.4.10): the page is {wide}px wide and scrolls sideways;"
        f" too wide: {', '.join(dict.fromkeys(culprits)) or 'nothing found'}"
    ]


def readable(problems: list[str]) -> str:
    return f"{len(problems)} accessibility problem(s) (axe-core, WCAG 2.1 A/AA):\n" + "\n".join(problems)


class Visit:
    """One browser tab on the live app: opens pages, presses their buttons, and runs axe on each."""

    def __init__(self, page, store: str) -> None:
        self.page = page
        self.store = store
        self.problems: list[str] = []
        self.checked: list[str] = []

    def open(self, name: str, url: str, status: int = 200) -> None:
        response = self.page.goto(url)
        assert response.status == status, f"{name}: {url} answered {response.status}"
        self.check(name)

    def submit(self, name: str, button: str, status: int = 200, *, validate: bool = True) -> None:
        """Press ``button``; ``validate=False`` first turns off the browser's own checks of the
        form (``required``), as an old browser would, so the server's error page shows."""
        if not validate:
            self.page.evaluate("document.querySelector('form').noValidate = true")
        with self.page.expect_navigation() as navigation:
            self.page.get_by_role("button", name=button).click()
        response = navigation.value
        assert response.status == status, f"{name}: the POST answered {response.status}"
        self.check(name)

    def choose(self, field: str, value: str) -> None:
        self.page.locator(f"label.option:has(input[name='{field}'][value='{value}'])").click()

    def check(self, name: str) -> None:
        self.checked.append(name)
        self.problems += axe_problems(self.page, f"{self.store}-{name}")


@pytest.fixture
def visit(chromium, store_url, request):
    page = chromium.new_page()
    page.set_default_timeout(15_000)
    try:
        yield Visit(page, request.node.callspec.params["store_url"])
    finally:
        page.close()


def test_every_kind_of_public_page_passes_axe(live, visit):
    # The host team's survey: empty, refused (the server's error summary), sent, thanked, answered.
    host = invite(live.engine, ENGAGEMENT, HOST_PERSON)
    visit.open("survey-form", live.survey_url(host))
    visit.submit("survey-form-errors", "Send my answers", 422, validate=False)
    assert visit.page.get_by_role("alert").is_visible()
    visit.choose("nps", "9")
    visit.choose("business_goals", "yes")
    visit.choose("technical_goals", "partly")
    visit.page.get_by_label("What went well?").fill("Pairing on the deploy pipeline")
    visit.submit("survey-thanks", "Send my answers")
    assert visit.page.url.endswith("/thanks")
    visit.page.get_by_role("link", name="go back to your answers").click()
    visit.page.wait_for_url(live.survey_url(host))
    visit.check("survey-form-answered")
    visit.open("survey-form-score-from-email", live.survey_url(host, score=3))

    # The other surveys (check-in, the platform side's retro and follow-up), an anonymous one.
    checkin = invite(live.engine, ENGAGEMENT, HOST_PERSON, survey="checkin")
    visit.open("checkin-form", live.survey_url(checkin))
    visit.open("survey-thanks-nothing-saved", live.survey_url(checkin) + "/thanks")
    visit.open("retro-form", live.survey_url(invite(live.engine, ENGAGEMENT, AUXENG_PERSON, survey="retro")))
    follow_up = invite(live.engine, ENGAGEMENT, AUXENG_PERSON, survey="follow_up")
    visit.open("follow-up-form", live.survey_url(follow_up))
    anonymous = invite(live.engine, ANONYMOUS_ENGAGEMENT, ANONYMOUS_HOST_PERSON)
    visit.open("survey-form-anonymous", live.survey_url(anonymous))

    # Links that cannot be used: expired, changed, a closed survey.
    visit.open("link-expired", live.survey_url(host, expires_at=NOW - timedelta(seconds=1)), 410)
    foreign = tokens.survey_url(
        host, NOW + timedelta(days=5), public_url=live.public_url, key=b"another-key-0123"
    )
    visit.open("link-invalid", foreign, 403)
    closed = invite(
        live.engine,
        ANONYMOUS_ENGAGEMENT,
        ANONYMOUS_HOST_PERSON,
        survey="checkin",
        closes_at=NOW - timedelta(hours=1),
    )
    visit.open("survey-closed", live.survey_url(closed), 410)

    # The opt-outs: asked, done, already done; for every message and for the digest only.
    visit.open("optout-confirm", live.optout_url(HOST_PERSON))
    visit.submit("optout-done", f"Unsubscribe {HOST_PERSON}")
    visit.open("optout-already", live.optout_url(HOST_PERSON))
    digest = tokens.digest_optout_url(MANAGER, public_url=live.public_url, key=KEY, now=NOW)
    visit.open("digest-optout-confirm", digest)
    visit.submit("digest-optout-done", f"Stop the digest for {MANAGER}")
    visit.open("digest-optout-already", digest)

    # A red flag with long evidence: the form, the note refused, acknowledged.
    visit.open("flag-ack", ack_url(live, long_evidence_flag(live.engine), MANAGER))
    assert LONG_LINK in visit.page.content()
    visit.submit("flag-ack-errors", "Acknowledge", 422, validate=False)
    visit.page.get_by_label(re.compile("What will you do about it")).fill("Booked a pairing session")
    visit.submit("flag-ack-done", "Acknowledge")
    assert "Acknowledged by" in visit.page.content()

    assert len(visit.checked) == 22
    assert not visit.problems, readable(visit.problems)


@pytest.fixture(scope="module")
def mail_page(chromium):
    """One tab for every email (a fresh document each): axe's script stays compiled between them."""
    page = chromium.new_page()
    yield page
    page.close()


@pytest.mark.parametrize(("kind", "variant", "context"), EMAILS, ids=[f"{k}-{v}" for k, v, _ in EMAILS])
def test_every_email_passes_axe(mail_page, kind, variant, context):
    mail_page.set_content(render(kind, **context).html)
    problems = axe_problems(mail_page, f"email-{kind}-{variant}", widths=(EMAIL, NARROW))
    assert not problems, readable(problems)


def test_every_html_email_template_was_checked():
    checked = {kind for kind, _variant, _context in EMAILS}
    assert {path.stem for path in TEMPLATES.glob("[!_]*.html")} == checked
    assert {"survey_invite", "nps_digest"} <= checked


def test_a_violation_is_reported_rule_by_rule_with_the_failing_elements(mail_page):
    """The check itself: a page with known faults fails it, each fault named with its elements."""
    mail_page.set_content(
        '<!doctype html><html><head><title>Broken</title></head><body><main><p id="faint" style="color:#bbb">'
        'Faint text</p><img id="chart" src="data:,"><a id="empty" href="#x"></a>'
        '<pre id="wide">' + "x" * 80 + "</pre></main></body></html>"
    )
    message = readable(axe_problems(mail_page, "known-bad", widths=(NARROW,)))
    assert message.startswith("5 accessibility problem(s) (axe-core, WCAG 2.1 A/AA):\n"), message
    for line in (
        "known-bad at 320px: color-contrast (serious): Elements must meet minimum color contrast ratio thresholds",
        "    #faint: Element has insufficient color contrast of 1.91",
        "known-bad at 320px: html-has-lang (serious): <html> element must have a lang attribute",
        "known-bad at 320px: image-alt (critical): Images must have alternative text",
        "known-bad at 320px: link-name (serious): Links must have discernible text",
        "    #empty: Element does not have text that is visible to screen readers",
        "known-bad at 320px: reflow (WCAG 1.4.10): the page is ",
        "px wide and scrolls sideways; too wide: pre#wide (",
    ):
        assert line in message, message
