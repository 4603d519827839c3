"""A host team's dashboard page over plain HTTP (a real uvicorn server, Airflow's real JWTs), on SQLite
and PostgreSQL: its engagements on a timeline, its independence trend and the signals behind its
latest score, its live flags; links to it from the dashboard; unknown or malformed keys; a fixed
number of SQL statements whatever the store holds."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert

from auxeng.independence.score import Signals
from auxeng.store.db import session_scope
from auxeng.store.models import CheckinRow, EngagementRow
from auxeng.web.dashboard.queries import PAGE_SIZE
from tests.support.independence_rows import insert_week, score, segment
from tests.web.conftest import NOW
from tests.web.dashboard.conftest import statements

LATEST = date(2026, 11, 16)  # the newest week that ended before NOW (Friday 2026-11-27)
AT_RISK = Signals(
    maintainability=2.0,
    help_needed="once_or_twice",
    help_asks_during_per_week=2.0,
    help_asks_after_per_week=3.0,
    goals_business="yes",
    goals_technical="no",
)
STEADY = Signals(
    maintainability=4.0, help_needed="never", repeat_engagement=False, end_nps=50.0, checkin_nps=60.0
)
CHECKIN_CLOSED = datetime(2026, 11, 20, 9, tzinfo=UTC)


def store_independence(engine, weeks: int = 4, extra_scores: int = 0, *, checkin: bool = True) -> None:
    """Fulfillment's last ``weeks`` weeks to LATEST (falling), its two scored engagements in LATEST,
    and a week not ended by NOW (never shown)."""
    with session_scope(engine) as session:
        for n in range(weeks):
            week = LATEST - timedelta(weeks=weeks - 1 - n)
            scores = []
            if week == LATEST:
                scores = [
                    score("ENG-2026-028", "fulfillment", AT_RISK, end_date=date(2026, 8, 27)),
                    score("ENG-2025-016", "fulfillment", STEADY, end_date=date(2026, 2, 18)),
                    *(
                        score(f"BULK-{k:04d}", "fulfillment", STEADY, end_date=date(2025, 1, 1))
                        for k in range(extra_scores)
                    ),
                ]
            insert_week(
                session,
                week,
                segments=[
                    segment("team", "fulfillment", 41.0 + 3 * (weeks - 1 - n), scored=max(2, len(scores)))
                ],
                scores=scores,
            )
        insert_week(session, LATEST + timedelta(weeks=1), segments=[segment("team", "fulfillment", 99.0)])
        if not checkin:
            return
        session.add(
            CheckinRow(
                engagement_key="ENG-2026-028",
                uid="checkin-eng-2026-028@auxeng.test",
                status="answered",
                end_date=date(2026, 8, 27),
                due_on=date(2026, 11, 27),
                invite_on=date(2026, 11, 20),
                closed_at=CHECKIN_CLOSED,
                created_at=NOW,
                updated_at=NOW,
            )
        )


def team_text(dash, key: str = "fulfillment"):
    page = dash.get(f"teams/{key}")
    return page, html.unescape(page.text)


def test_the_team_page_shows_timeline_trend_signals_and_flags(dash):
    store_independence(dash.engine)
    page, text = team_text(dash)
    assert page.status_code == 200, page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert '<h1 id="team-name">Fulfillment <span class="muted">(fulfillment)</span></h1>' in text
    assert "Host team in Logistics, managed by Olga Dahl." in text
    # The score of the newest week that had ended (the week of 23 Nov is not over yet).
    assert '<p id="team-score">41 / 100 in the week of 16 Nov 2026, over 2 engagement(s)</p>' in text
    svg = re.search(r'<svg id="independence-chart".*?</svg>', text, re.S).group(0)
    assert re.findall(r'class="score-tick"[^>]*>([^<]+)<', svg) == ["0", "25", "50", "75", "100"]
    assert svg.count("<circle") == 4 and "too few" not in svg  # 4 weeks stored of 13: no gap is "too few"
    assert "13 weeks; a score (0 to 100) in 4 of them" in svg
    assert "16 Nov: 41 / 100 over 2 engagement(s)" in svg and "99" not in svg
    # The signals behind the latest score: each component, or why it is missing.
    at_risk = text.split('id="signals-ENG-2026-028"', 1)[1].split("</table>", 1)[0]
    assert "ENG-2026-028: 30 / 100" in at_risk  # 2375 / 80 and "not independent at three months" in at_risk
    row = re.search(r"<th scope=\"row\">comfort maintaining it</th>(.*?)</tr>", at_risk, re.S).group(1)
    assert re.findall(r"<td[^>]*>([^<]*)</td>", row) == ["2", "25", "31%", "7.8"]
    assert "missing: no end survey NPS (not answered or anonymous)" in at_risk
    assert "missing: six months after the end have not passed" in at_risk
    assert "ENG-2025-016: " in text.split('id="signals-ENG-2025-016"', 1)[1]
    # The timeline: every engagement of the team, its check-in; bars on one axis.
    assert re.findall(r'<tr id="engagement-([^"]+)"', text) == [
        "ENG-2025-004",
        "ENG-2025-016",
        "ENG-2026-028",
    ]
    checkin = re.search(r'<tr id="engagement-ENG-2026-028">(.*?)</tr>', text, re.S).group(1)
    assert "2026-06-21 to 2026-08-27" in checkin
    assert '<span class="badge answered">answered</span> due 2026-11-27, closed 2026-11-20' in checkin
    assert 'class="due answered" style="left: 100.0%;"' in checkin
    assert '<span class="span ended" style="left: 0.0%;' in text
    # Its live flag, with the way to acknowledge it.
    flag_id = dash.demo.flags["help_requests"]
    assert f'<li id="flag-{flag_id}" data-status="open">' in text
    assert f'<a href="../#flag-{flag_id}">Acknowledge red flag #{flag_id} on the dashboard</a>' in text
    assert "Detractor cluster" not in text  # another team's flag


def test_the_dashboard_links_to_each_team_page(dash):
    text = html.unescape(dash.get().text)
    row = re.search(r'<tr id="engagement-ENG-2026-028">(.*?)</tr>', text, re.S).group(1)
    assert '<a href="teams/fulfillment">Fulfillment</a>' in row
    flag = text.split(f'<li id="flag-{dash.demo.flags["help_requests"]}"', 1)[1].split("</li>\n", 1)[0]
    assert '<a href="teams/fulfillment">The host team\'s page</a>' in flag
    for link in set(re.findall(r'href="teams/([^"]+)"', text)):
        assert dash.get(f"teams/{link}").status_code == 200, link


def test_a_team_without_independence_yet_says_why(dash):
    page, text = team_text(dash, "reviews")
    assert page.status_code == 200
    assert "No independence week computed yet (auxeng_weekly_nps computes one each Monday)." in text
    assert 'id="team-chart-empty"' in text and "<svg" not in text
    assert "No live red flags for this team." in text


def test_unknown_or_malformed_team_keys_are_a_clear_404(dash):
    page, text = team_text(dash, "no-such-team")
    assert page.status_code == 404
    assert "There is no host team 'no-such-team' in the store: check the registry." in text
    for key in ("Fulfillment", "%3Cscript%3E", "x" * 65, "-fulfillment", "caf%C3%A9"):
        page, text = team_text(dash, key)
        assert page.status_code == 404, key
        assert "That is not a host team's key" in text and "<script>" not in page.text
    for path in ("a%2Fb", "..%2F..%2Fnps.png"):  # a slash is no team key: no such page
        page, text = team_text(dash, path)
        assert page.status_code == 404 and "There is no such page or item" in text, path
    assert dash.get("teams/fulfillment", username=None).status_code == 401


def test_the_team_page_costs_the_same_statements_whatever_the_store_holds(dash):
    store_independence(dash.engine)
    dash.get("teams/fulfillment")  # warm
    with statements(dash.engine) as small:
        assert dash.get("teams/fulfillment").status_code == 200
    with session_scope(dash.engine) as session:
        session.execute(
            insert(EngagementRow),
            [
                {
                    "key": f"BULK-{n:04d}",
                    "title": f"Bulk engagement {n}",
                    "host_team_key": "fulfillment",
                    "start_date": date(2024, 1, 1) + timedelta(days=n),
                    "end_date": date(2024, 3, 1) + timedelta(days=n),
                    "status": "active",
                    "fingerprint": "x",
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for n in range(300)
            ],
        )
    store_independence(dash.engine, weeks=30, extra_scores=300, checkin=False)
    with statements(dash.engine) as large:
        page = dash.get("teams/fulfillment")
    assert page.status_code == 200 and page.text.count('<tr id="engagement-') == PAGE_SIZE
    assert "Engagements (303)" in page.text and f"The latest {PAGE_SIZE} by start date." in page.text
    assert len(re.findall(r'<h3 id="signals-', page.text)) == PAGE_SIZE
    assert f"The latest {PAGE_SIZE} by end date, of 302." in page.text
    # team, engagements, the week, its team weeks, its scores, the team's flags, their names (2),
    # the store's schema check
    assert len(small) == len(large) <= 10, large
