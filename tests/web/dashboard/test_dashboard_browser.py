"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright), inside the
real Airflow api-server app (``airflow.api_fastapi.app.create_app``: the UI, its simple auth manager
and login page, and the pack's plugin) under uvicorn on loopback.

A person's path: the dashboard refuses them (401) and links to Airflow's login; they sign in with
the login form, open "AuxEng" in Airflow's navigation (the plugin's external view, framed by the
UI), acknowledge a red flag, retry a failed message. Screenshots go to ``tests/artifacts/``. The
browser is the ``chromium`` fixture of ``tests/web/conftest.py``.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from auxeng.store.db import session_scope
from auxeng.store.models import FlagRow, OutboxRow
from tests.conftest import _airflow_conn_uri
from tests.web.conftest import ARTIFACTS, KEY_TEXT, NOW, Clock, web_clock
from tests.web.dashboard.conftest import FLAG_NOTE, USERS, seed_demo, serve


@pytest.fixture
def airflow(registry_store, store_url, airflow_auth, monkeypatch):
    """The real Airflow api-server app (core: UI, API, auth manager, plugins) on a loopback port,
    with the demo data in the pack's store."""
    from airflow.api_fastapi.app import create_app

    monkeypatch.setenv("AIRFLOW_CONN_AUXENG_DB", _airflow_conn_uri(store_url))
    monkeypatch.setenv("AUXENG_SECRET_KEY", KEY_TEXT)
    demo = seed_demo(registry_store)
    app = create_app("core")
    with web_clock(Clock(NOW)), serve(app, lifespan="on") as base_url:
        yield base_url, demo, registry_store


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
    chart = frame.locator("#nps-chart")
    chart.scroll_into_view_if_needed()
    # decode() waits for the image (rendered by matplotlib on the first request) and fails if it cannot load.
    assert chart.evaluate("img => img.decode().then(() => img.naturalWidth)") == 800

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
    assert full.stat().st_size > 50_000 and in_airflow.stat().st_size > 50_000
    with capsys.disabled():
        print(f"\nDashboard screenshots: {full} and {in_airflow}")
