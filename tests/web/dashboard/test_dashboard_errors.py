"""The dashboard's answers to a client's bad input, inside the Airflow UI: its own HTML page for every
4xx (never FastAPI's raw JSON), 404 for ids no row can have (checked before the store is touched),
and never a 5xx."""

from __future__ import annotations

import pytest

from auxeng.store.db import session_scope
from auxeng.store.models import FlagRow, OutboxRow
from tests.web.dashboard.conftest import statements

IMPOSSIBLE_IDS = ["99999999999999999999", "9223372036854775808", "2147483648", "0", "-1", "abc", "1e3", "１"]


def assert_dashboard_page(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]
    assert "frame-ancestors 'self'" in response.headers["content-security-policy"]  # the dashboard's headers
    assert "<title>" in response.text and "AuxEng follow-ups" in response.text  # the dashboard's layout
    assert '"detail"' not in response.text
    for word in words:
        assert word in response.text, (word, response.text)


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("?page=-1", "page"),
        ("?page=0", "page"),
        ("?page=abc", "page"),
        ("?page=99999999999999999999999", "page"),
        ("?outbox_page=1.5", "outbox_page"),
        # Page cursors the dashboard did not make: malformed, tampered out of range, huge, both ways.
        ("?after=garbage", "after"),
        ("?before=2026-02-30|ENG-1", "before"),
        ("?after=" + "9" * 5000, "after"),
        ("?after=2026-01-01|ENG-1&before=2026-01-01|ENG-2", "after"),
        ("?outbox_after=p|2026-01-01T00:00:00|7", "outbox_after"),
        ("?outbox_before=f|0001-01-01T00:00:00%2B05:00|2026-01-01T00:00:00%2B00:00|7", "outbox_before"),
        ("?outbox_after=p|2026-01-01T00:00:00%2B00:00|99999999999999999999999", "outbox_after"),
    ],
)
def test_bad_page_numbers_get_the_dashboard_s_422_page(dash, query, name):
    response = dash.get(query)
    assert_dashboard_page(response, 422, "This address is not valid", name, "Back to the dashboard")


@pytest.mark.parametrize("week", ["2026-02-30", "abc", "2026-13-01", "99999-01-01"])
def test_a_bad_chart_week_gets_the_dashboard_s_422_page(dash, week):
    assert_dashboard_page(dash.get(f"nps.png?week={week}"), 422, "week")


def test_ids_no_row_can_have_get_404_before_the_store_is_touched(dash):
    csrf = dash.csrf()
    for bad in IMPOSSIBLE_IDS:
        for path in (f"flags/{bad}/ack", f"outbox/{bad}/retry"):
            with statements(dash.engine) as seen:
                response = dash.post(path, {"csrf": csrf, "note": "x"})
            assert_dashboard_page(response, 404, "no ", "Back to the dashboard")
            assert seen == [], (path, seen)
    with session_scope(dash.engine) as session:
        assert all(row.status != "acknowledged" for row in session.query(FlagRow))
        assert {row.status for row in session.query(OutboxRow)} == {"failed", "pending", "sent"}
    # Without a login the answer is still Airflow's 401, whatever the id.
    assert dash.post("flags/99999999999999999999/ack", {"csrf": csrf}, username=None).status_code == 401


def test_the_largest_possible_id_is_looked_up_and_reported_missing(dash):
    csrf = dash.csrf()
    redirect = dash.post("flags/2147483647/ack", {"csrf": csrf, "note": "x"})
    assert "#2147483647 is no longer in the store" in dash.follow(redirect).text
    redirect = dash.post("outbox/2147483647/retry", {"csrf": csrf})
    assert "#2147483647 is not failed" in dash.follow(redirect).text


def test_unknown_dashboard_pages_and_wrong_methods_get_the_dashboard_s_pages(dash):
    assert_dashboard_page(dash.get("nothing-here"), 404, "Not found")
    assert_dashboard_page(dash.get("flags/1/ack/more"), 404, "Not found")
    wrong = dash.get(f"flags/{dash.demo.flags['help_requests']}/ack")
    assert_dashboard_page(wrong, 405, "Open the dashboard")
    assert wrong.headers["allow"] == "POST"
    # Outside the dashboard the plugin's app keeps FastAPI's answers.
    elsewhere = dash.client.get("/auxeng/nothing-here")
    assert elsewhere.status_code == 404 and elsewhere.json() == {"detail": "Not Found"}
