"""The red-flag acknowledge page reflows at 320 CSS pixels (WCAG 2.1 1.4.10): long evidence (an
unbroken URL) wraps instead of making the page scroll sideways. Real headless Chromium."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from auxeng.redflags.rules import Flag
from auxeng.redflags.store import reconcile
from auxeng.store.db import session_scope
from auxeng.store.models import FlagRow
from tests.web.conftest import NOW
from tests.web.test_flag_ack import MANAGER, ack_url

LONG_LINK = "https://jira.example.com/browse/FUL-322?" + "filter=" + "x" * 240
LONG_SUMMARY = "Canary-stuck-at-10%-" * 12


def long_evidence_flag(engine) -> int:
    finding = Flag(
        rule="help_requests",
        subject_kind="team",
        subject_key="fulfillment",
        severity="warning",
        summary=LONG_SUMMARY,
        evidence={
            "requests": 3,
            "window_days": 30,
            "since": "2026-08-27",
            "engagement": "ENG-2026-028",
            "sources": {"csv": 3},
            "latest": [{"on": "2026-11-24", "source": "csv", "summary": LONG_SUMMARY, "link": LONG_LINK}],
        },
        team_key="fulfillment",
        engagement_key="ENG-2026-028",
    )
    with session_scope(engine) as session:
        reconcile(session, [finding], as_of=NOW.date(), now=NOW)
        return session.scalars(select(FlagRow.id)).one()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_acknowledge_page_reflows_at_320_pixels(live, chromium):
    url = ack_url(live, long_evidence_flag(live.engine), MANAGER)
    page = chromium.new_page(viewport={"width": 320, "height": 640})
    try:
        response = page.goto(url)
        assert response.status == 200
        assert LONG_LINK in page.content()  # the long evidence is on the page
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
            " Math.max(...[...document.querySelectorAll('body *')].map(e => e.getBoundingClientRect().right))]"
        )
        assert widths[1] == 320
        assert widths[0] <= 320 and widths[2] <= 320, widths
    finally:
        page.close()
