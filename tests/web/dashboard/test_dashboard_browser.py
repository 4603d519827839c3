"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright), inside the
real Airflow api-server app (``airflow.api_fastapi.app.create_app``: the UI, its simple auth manager
and login page, and the pack's plugin) under uvicorn on loopback.

A person's path: the dashboard refuses them (401) and links to Airflow's login; they sign in with
the login form, open "AuxEng" in Airflow's navigation (the plugin's external view, framed by the
UI), acknowledge a red flag, retry a failed message. Screenshots go to ``tests/artifacts/``. The
browser is the ``chromium`` fixture of ``tests/web/conftest.py``.
"""

from __future__ import annotations

from datetime import UTC, date

import pytest
from playwright.sync_api import expect

from auxeng.nps.weekly import compute_week, save_week
from auxeng.store.db import session_scope
from auxeng.store.models import FlagRow, OutboxRow
from tests.conftest import _airflow_conn_uri
from tests.web.conftest import ARTIFACTS, KEY_TEXT, NOW, Clock, web_clock
from tests.web.dashboard.conftest import FLAG_NOTE, USERS, airflow_jwt, seed_demo, serve
from tests.web.dashboard.test_team_page import store_independence
from tests.web.test_accessibility import DESKTOP, axe_problems, readable
from tests.web.test_contrast import contrast


@pytest.fixture
def airflow_server(registry_store, store_url, airflow_auth, monkeypatch):
    """The real Airflow api-server app (core: UI, API, auth manager, plugins) on a loopback port,
    on a store that holds the demo registry."""
    from airflow.api_fastapi.app import create_app

    monkeypatch.setenv("AIRFLOW_CONN_AUXENG_DB", _airflow_conn_uri(store_url))
    monkeypatch.setenv("AUXENG_SECRET_KEY", KEY_TEXT)
    app = create_app("core")
    with web_clock(Clock(NOW)), serve(app, lifespan="on") as base_url:
        yield base_url


@pytest.fixture
def airflow(airflow_server, registry_store):
    """:func:`airflow_server` with the demo data in the pack's store."""
    return airflow_server, seed_demo(registry_store), registry_store


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Airflow's own imports (testclient, pathspec)
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_person_signs_in_opens_auxeng_acknowledges_and_retries(chromium, airflow, capsys):
    base_url, demo, engine = airflow
    flag_id, failed = demo.flags["help_requests"], demo.failed[0]
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    expect.set_options(timeout=30_000)

    # Not signed in: refused, with a link to Airflow's login page.
    response = page.goto(f"{base_url}/auxeng/dashboard/")
    assert response.status == 401
    assert "engagement" not in page.content().lower()
    page.get_by_role("link", name="Log in to Airflow").click()
    page.wait_for_url("**/auth/login?next=*")

    # Airflow's own login form (the simple auth manager) sets the _token cookie and sends them back.
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(USERS["admin"][1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/auxeng/dashboard/")
    assert [c["name"] for c in page.context.cookies() if c["name"] == "_token"] == ["_token"]
    expect(page.locator("#user")).to_have_text("admin")

    # In Airflow's UI: the "AuxEng" entry of the navigation opens the dashboard in a frame.
    page.goto(f"{base_url}/")
    # other tests' DAG runs put "auxeng_…" links on Airflow's home page: click the nav entry itself
    page.get_by_test_id("nav-sidebar").get_by_role("link", name="AuxEng", exact=True).click()
    page.wait_for_url("**/plugin/auxeng")
    frame = page.frame_locator("iframe")
    # Playwright's expect() retries until the (incrementally parsed) page shows what is expected.
    expect(frame.locator("#user")).to_have_text("admin")
    expect(frame.locator("#engagement-ENG-2026-031")).to_be_visible()
    expect(frame.locator("#engagement-ENG-2026-031")).to_contain_text("50%")
    expect(frame.locator("#flags li[id^=flag-]")).to_have_count(3)
    expect(frame.locator("#nps-quarter")).to_contain_text("(95% CI")
    # The trend chart is part of the page (inline SVG): there as soon as the page is, no image to wait for.
    chart = frame.locator("#nps-chart")
    chart.scroll_into_view_if_needed()
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] > 400

    # Acknowledge a red flag through its form.
    item = frame.locator(f"#flag-{flag_id}")
    item.locator("textarea").fill(FLAG_NOTE)
    item.get_by_role("button", name="Acknowledge").click()
    expect(frame.locator("#flash")).to_have_text(f"Red flag #{flag_id} acknowledged by admin.")
    expect(item).to_have_attribute("data-status", "acknowledged")
    expect(item).to_contain_text(f"Acknowledged by admin: “{FLAG_NOTE}”")

    # Retry a failed message.
    frame.locator(f"#message-{failed}").get_by_role("button", name="Retry").click()
    expect(frame.locator("#flash")).to_contain_text(f"Message #{failed} is pending again")
    expect(frame.locator(f"#message-{failed}")).to_have_attribute("data-status", "pending")

    with session_scope(engine) as session:
        flag = session.get(FlagRow, flag_id)
        message = session.get(OutboxRow, failed)
        assert (flag.status, flag.acknowledged_by, flag.acknowledged_note) == (
            "acknowledged",
            "admin",
            FLAG_NOTE,
        )
        assert (message.status, message.attempts, message.reason, message.not_before) == (
            "pending",
            0,
            None,
            NOW,
        )

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    in_airflow = ARTIFACTS / "dashboard-in-airflow.png"
    page.screenshot(path=str(in_airflow))
    page.goto(f"{base_url}/auxeng/dashboard/")
    full = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(full), full_page=True)
    # At desktop width: its wide tables scroll sideways at 320 px (a known limit of the ops page).
    problems = axe_problems(page, "dashboard-demo", widths=(DESKTOP,), exclude=("svg#nps-chart",))
    assert not problems, readable(problems)
    assert full.stat().st_size > 50_000 and in_airflow.stat().st_size > 50_000
    with capsys.disabled():
        print(f"\nDashboard screenshots: {full} and {in_airflow}")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_empty_dashboard_says_why_and_its_chart_has_axes(
    chromium, airflow_server, registry_store, airflow_auth
):
    """Nothing ended, asked or computed yet: each part says why, and passes axe; then a week without
    answers: the chart has its NPS (-100..+100) and answers (0..3) axes, and still passes axe."""
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    expect.set_options(timeout=30_000)
    host = airflow_server.split("//", 1)[1].split(":")[0]
    page.context.add_cookies(
        [{"name": "_token", "value": airflow_jwt(airflow_auth), "domain": host, "path": "/"}]
    )

    page.goto(f"{airflow_server}/auxeng/dashboard/")
    expect(page.locator("#nps-why")).to_contain_text(
        "No weekly NPS yet: auxeng_weekly_nps computes each week"
    )
    expect(page.locator("#nps-digest")).to_have_text("No digest yet: there is no weekly NPS to send.")
    expect(page.locator("#chart-empty")).to_contain_text("next run 30 Nov 2026 07:00 UTC")
    expect(page.locator("#engagements-why")).to_contain_text("are past their last day")
    problems = axe_problems(page, "dashboard-empty")

    with session_scope(registry_store) as session:
        snapshot = compute_week(session, date(2026, 11, 9), timezone=UTC, min_responses=3)
        save_week(session, snapshot, run_id="test", now=NOW)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.reload()
    expect(page.locator("#nps-why")).to_contain_text("no engagement ended in the 13 weeks")
    expect(page.locator("#nps-digest")).to_contain_text("a run for it is a backfill and sends none")
    chart = page.locator("svg#nps-chart")
    expect(chart).to_be_visible()
    assert chart.locator(".nps-tick").all_text_contents() == ["-100", "-50", "0", "+50", "+100"]
    assert chart.locator(".answers-tick").all_text_contents() == ["0", "3"]
    ticks = [box["y"] for box in (t.bounding_box() for t in chart.locator(".nps-tick").all())]
    assert ticks == sorted(ticks, reverse=True)  # -100 at the bottom, +100 at the top
    # axe cannot measure the contrast of SVG text: the chart is named for assistive technology and its
    # text colours are checked against its white card here.
    problems += axe_problems(page, "dashboard-week-without-answers", exclude=("svg#nps-chart",))
    expect(page.get_by_role("img", name="AuxEng NPS, 13 weeks to 15 Nov 2026")).to_be_visible()
    fills = set(chart.locator("text").evaluate_all("texts => texts.map(t => t.getAttribute('fill'))"))
    assert fills and all(contrast(fill, "#ffffff") >= 4.5 for fill in fills), fills
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.screenshot(path=str(ARTIFACTS / "dashboard-empty-week.png"), full_page=True)
    assert not problems, readable(problems)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_team_page_from_the_dashboard_passes_axe(chromium, airflow, airflow_auth):
    """From the dashboard's engagement list to a host team's page: its score, trend chart, signals,
    timeline and flags, accessible at desktop width (axe, and the chart's text contrast)."""
    base_url, demo, engine = airflow
    store_independence(engine)
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    expect.set_options(timeout=30_000)
    host = base_url.split("//", 1)[1].split(":")[0]
    page.context.add_cookies(
        [{"name": "_token", "value": airflow_jwt(airflow_auth), "domain": host, "path": "/"}]
    )
    page.goto(f"{base_url}/auxeng/dashboard/")
    page.locator("#engagement-ENG-2026-028").get_by_role("link", name="Fulfillment").click()
    page.wait_for_url(f"{base_url}/auxeng/dashboard/teams/fulfillment")
    expect(page.locator("#team-score")).to_have_text(
        "41 / 100 in the week of 16 Nov 2026, over 2 engagement(s)"
    )
    chart = page.get_by_role("img", name="Fulfillment: independence, 13 weeks to 22 Nov 2026")
    expect(chart).to_be_visible()
    ticks = [box["y"] for box in (t.bounding_box() for t in chart.locator(".score-tick").all())]
    assert len(ticks) == 5 and ticks == sorted(ticks, reverse=True)  # 0 at the bottom, 100 at the top
    expect(page.locator("#signals-ENG-2026-028")).to_contain_text("30 / 100")
    expect(page.locator("#engagement-ENG-2026-028")).to_contain_text("answered")
    flag_id = demo.flags["help_requests"]
    page.get_by_role("link", name=f"Acknowledge red flag #{flag_id} on the dashboard").click()
    page.wait_for_url(f"{base_url}/auxeng/dashboard/#flag-{flag_id}")
    expect(page.locator(f"#note-{flag_id}")).to_be_visible()
    page.go_back()
    expect(page.locator("#team-name")).to_contain_text("Fulfillment")
    # axe cannot measure the contrast of SVG text: its colours are checked against the white card.
    problems = axe_problems(page, "team-page", widths=(DESKTOP,), exclude=("svg#independence-chart",))
    fills = set(chart.locator("text").evaluate_all("texts => texts.map(t => t.getAttribute('fill'))"))
    assert fills and all(contrast(fill, "#ffffff") >= 4.5 for fill in fills), fills
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.screenshot(path=str(ARTIFACTS / "team-page.png"), full_page=True)
    assert not problems, readable(problems)
