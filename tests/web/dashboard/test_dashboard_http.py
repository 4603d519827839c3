"""The dashboard over plain HTTP (a real uvicorn server, Airflow's real JWTs), on SQLite and PostgreSQL:
who may see it, what it shows, pagination, CSRF, acknowledging a red flag, retrying a message, and a
bounded number of SQL statements on 10,000 engagements."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta
from urllib.parse import parse_qs, urlencode

from sqlalchemy import insert, select

from auxeng.messaging import tokens
from auxeng.nps.digest import rate_text
from auxeng.nps.weekly import result_of
from auxeng.store.db import session_scope
from auxeng.store.models import EngagementRow, FlagRow, NpsSnapshotRow, OutboxRow, SurveyInvitationRow
from auxeng.web.dashboard.queries import PAGE_SIZE
from auxeng.web.dashboard.routes import CSRF_PURPOSE, csrf_token
from tests.web.conftest import ENGAGEMENT, KEY, NOW, invite
from tests.web.dashboard.conftest import FLAG_NOTE, NPS_WEEK, add_outbox, outbox_row, statements

ROW = re.compile(r'<tr id="engagement-([^"]+)"')
MESSAGE_ROW = re.compile(r'<tr id="message-(\d+)"')


def flag(engine, flag_id: int) -> FlagRow:
    with session_scope(engine) as session:
        return session.get(FlagRow, flag_id)


def message(engine, message_id: int) -> OutboxRow:
    with session_scope(engine) as session:
        return session.get(OutboxRow, message_id)


# --- who may see it -------------------------------------------------------------------------


def test_only_logged_in_airflow_users_see_the_dashboard(dash):
    anonymous = dash.get(username=None)
    assert anonymous.status_code == 401
    assert "Log in to Airflow" in anonymous.text and ENGAGEMENT not in anonymous.text
    assert 'href="/auth/login?next=' in anonymous.text  # the simple auth manager's login page

    forged = dash.client.get(dash.url, headers={"Cookie": "_token=not.a.jwt"})
    assert forged.status_code == 403 and ENGAGEMENT not in forged.text
    other_secret = tokens.sign("x", "admin", NOW + timedelta(days=1), key=KEY)  # signed, but not by Airflow
    assert dash.client.get(dash.url, headers={"Cookie": f"_token={other_secret}"}).status_code == 403
    expired = dash.client.get(dash.url, headers={"Cookie": f"_token={dash.token(seconds=-3600)}"})
    assert expired.status_code == 401 and "Token Expired" in expired.text
    assert dash.get("nps.png", username=None).status_code == 401

    by_cookie = dash.get()
    assert by_cookie.status_code == 200 and ENGAGEMENT in by_cookie.text
    assert 'Signed in to Airflow as <strong id="user">admin</strong>' in by_cookie.text
    by_header = dash.client.get(dash.url, headers={"Authorization": f"Bearer {dash.token('vera')}"})
    assert by_header.status_code == 200 and '<strong id="user">vera</strong>' in by_header.text
    # Framed by the Airflow UI only; never cached.
    assert "frame-ancestors 'self'" in by_cookie.headers["content-security-policy"]
    assert by_cookie.headers["x-frame-options"] == "SAMEORIGIN"
    assert by_cookie.headers["cache-control"] == "no-store"


def test_without_the_trailing_slash_it_redirects_to_the_page(dash):
    redirect = dash.client.get("/auxeng/dashboard", headers=dash.cookies())
    assert redirect.status_code == 307
    assert redirect.headers["location"].endswith("/auxeng/dashboard/")
    page = dash.client.get(redirect.headers["location"], headers=dash.cookies())
    assert page.status_code == 200 and ENGAGEMENT in page.text


def test_the_public_pages_stay_public(dash):
    assert dash.client.get("/auxeng/health").status_code == 200
    # A signed-link page answers for itself (here: a bad link), never with the dashboard's login.
    page = dash.client.get("/auxeng/flags/ack/not-a-token")
    assert page.status_code == 400 and "Log in to Airflow" not in page.text


def test_actions_need_a_login_too(dash):
    flag_id = dash.demo.flags["help_requests"]
    csrf = dash.csrf()
    refused = dash.post(f"flags/{flag_id}/ack", {"csrf": csrf, "note": "x"}, username=None)
    assert refused.status_code == 401
    refused = dash.post(f"outbox/{dash.demo.failed[0]}/retry", {"csrf": csrf}, username=None)
    assert refused.status_code == 401
    assert flag(dash.engine, flag_id).status == "open"
    assert message(dash.engine, dash.demo.failed[0]).status == "failed"


# --- what it shows --------------------------------------------------------------------------


def test_the_page_shows_engagements_nps_flags_and_the_outbox(dash):
    page = dash.get()
    assert page.status_code == 200
    text = page.text

    # Ended engagements, latest end first, with their stage.
    keys = ROW.findall(text)
    with session_scope(dash.engine) as session:
        ended = session.scalars(
            select(EngagementRow.key)
            .where(EngagementRow.ended_at.is_not(None))
            .order_by(EngagementRow.end_date.desc(), EngagementRow.key)
        ).all()
    assert keys == ended[:PAGE_SIZE] and len(keys) > 10
    row = re.search(rf'<tr id="engagement-{ENGAGEMENT}">(.*?)</tr>', text, re.S).group(1)
    assert re.search(r'<td class="num">2</td><td class="num">1</td><td class="num">50%</td>', row)
    assert "scheduled</span> due 2027-02-22" in row
    assert '<span class="badge critical">1</span>' in row  # the detractor-cluster flag

    # The weekly NPS of the newest stored week, with its interval, and its chart.
    with session_scope(dash.engine) as session:
        quarter = session.scalars(
            select(NpsSnapshotRow).where(
                NpsSnapshotRow.week == NPS_WEEK,
                NpsSnapshotRow.span == "13w",
                NpsSnapshotRow.segment == "program",
            )
        ).one()
        expected = result_of(quarter).shown(3)
        rate = rate_text(quarter.answered, quarter.invited)
    assert "(95% CI" in expected
    assert f'<dd id="nps-quarter">{expected}</dd>' in text
    assert f"{rate} over 13 weeks" in text
    assert '<svg id="nps-chart" class="chart" role="img"' in text  # drawn in the page, no request
    assert 'href="nps.png?week=2026-11-16"' in text  # the digest's PNG, one click away
    chart = dash.get("nps.png?week=2026-11-16")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG\r\n\x1a\n") and len(chart.content) > 10_000
    assert dash.get("nps.png").content == chart.content  # the newest week by default
    assert dash.get("nps.png?week=2026-11-09").status_code == 404

    # Live red flags, escaped, with a form each.
    assert "Host team still asking for help: Fulfillment" in text
    assert "&lt;b&gt;can AuxEng look?&lt;/b&gt;" in text and "<b>can AuxEng look?</b>" not in text
    for flag_id in dash.demo.flags.values():
        assert f'action="flags/{flag_id}/ack"' in text

    # The outbox: failed (with reasons and Retry) before pending; sent ones are not listed.
    assert "Outbox: 2 failed, 1 pending" in text
    listed = [int(m) for m in MESSAGE_ROW.findall(text)]
    assert listed == [*dash.demo.failed, *dash.demo.pending]
    assert "slack: channel_not_found" in text and "550 5.1.1 &lt;gone@example.com&gt;: user unknown" in text
    assert "SMTP server unreachable" in text
    assert [int(m) for m in re.findall(r'action="outbox/(\d+)/retry"', text)] == dash.demo.failed


def test_pages_of_engagements_and_messages(dash):
    add_outbox(
        dash.engine, [outbox_row(100 + n, "failed", reason=f"reason {n}") for n in range(PAGE_SIZE + 5)]
    )
    first = dash.get()
    # The links carry a cursor (the sort key of the last row shown), never an offset.
    next_link = link(first.text, "Outbox", "next")
    assert next_link.startswith("?outbox_page=2&outbox_after=") and link(first.text, "Outbox", "prev") is None
    second = dash.get(next_link)
    assert len(MESSAGE_ROW.findall(first.text)) == PAGE_SIZE
    assert len(MESSAGE_ROW.findall(second.text)) == 2 + 5 + 1  # the rest: failed, then the pending one
    assert not set(MESSAGE_ROW.findall(first.text)) & set(MESSAGE_ROW.findall(second.text))
    assert "Page 2 of 2" in second.text and link(second.text, "Outbox", "next") is None
    assert link(second.text, "Outbox", "prev") == link(second.text, "Outbox", "first") == ""  # page 1: plain
    # "before" a cursor: the rows preceding that row, in order (here the first page but its last row).
    cursor = parse_qs(next_link[1:])["outbox_after"][0]
    back = dash.get("?" + urlencode({"outbox_page": 2, "outbox_before": cursor}))
    assert MESSAGE_ROW.findall(back.text) == MESSAGE_ROW.findall(first.text)[:-1]
    assert link(back.text, "Outbox", "prev") is None and "Page 1 of 2" in back.text
    # A page number without a cursor: the first page; not a number or below 1: refused.
    assert MESSAGE_ROW.findall(dash.get("?outbox_page=99").text) == MESSAGE_ROW.findall(first.text)
    assert dash.get("?page=0").status_code == 422
    assert dash.get("?page=two").status_code == 422


def link(text: str, list_name: str, rel: str) -> str | None:
    """The query of the ``rel`` link of the ``list_name`` pages (None: no such link)."""
    nav = re.search(rf'<nav class="pages" aria-label="{list_name} pages">(.*?)</nav>', text, re.S)
    found = re.search(rf'href="\./([^"]*)" rel="{rel}"', nav.group(1)) if nav else None
    return html.unescape(found.group(1)) if found else None


def deep_cursor(engine, position: int) -> str:
    """The engagement cursor of the row at 0-based ``position`` (what page ``position // 50`` links to)."""
    from auxeng.registry.lifecycle import ended_and_live_clause

    with session_scope(engine) as session:
        end, key = session.execute(
            select(EngagementRow.end_date, EngagementRow.key)
            .where(ended_and_live_clause())
            .order_by(EngagementRow.end_date.desc(), EngagementRow.key)
            .offset(position - 1)
            .limit(1)
        ).one()
    return f"{end.isoformat()}|{key}"


# --- CSRF ------------------------------------------------------------------------------------


def test_a_post_without_a_valid_form_token_is_refused(dash):
    flag_id = dash.demo.flags["help_requests"]
    failed = dash.demo.failed[0]
    vera = dash.csrf("vera")
    wrong = {
        "missing": None,
        "empty": "",
        "garbage": "abc.def",
        "another user's": vera,
        "expired": csrf_token("admin", key=KEY, now=NOW - timedelta(hours=13)),
        "other purpose": tokens.sign(tokens.SURVEY, "admin", NOW + timedelta(days=1), key=KEY),
        "other key": tokens.sign(
            CSRF_PURPOSE, "admin", NOW + timedelta(days=1), key=b"another-key-0123456789"
        ),
    }
    for name, token in wrong.items():
        form = {"page": "1"} if token is None else {"page": "1", "csrf": token}
        ack = dash.post(f"flags/{flag_id}/ack", {**form, "note": "forged"})
        assert ack.status_code == 403, name
        assert "This form expired" in ack.text
        retry = dash.post(f"outbox/{failed}/retry", form)
        assert retry.status_code == 403, name
    assert flag(dash.engine, flag_id).status == "open"
    assert message(dash.engine, failed).status == "failed"
    # A JSON body (what a cross-site fetch could send) is not a form.
    assert (
        dash.client.post(
            dash.url + f"outbox/{failed}/retry", json={"csrf": dash.csrf()}, headers=dash.cookies()
        ).status_code
        == 400
    )
    # Vera's token works for Vera.
    assert dash.post(f"outbox/{failed}/retry", {"csrf": vera}, username="vera").status_code == 303


# --- acknowledging and retrying ------------------------------------------------------------


def test_acknowledging_a_flag_records_the_airflow_user_and_redirects_with_a_message(dash):
    flag_id = dash.demo.flags["help_requests"]
    done = dash.post(f"flags/{flag_id}/ack", {"csrf": dash.csrf(), "note": FLAG_NOTE, "page": "1"})
    assert done.status_code == 303
    assert done.headers["location"] == "/auxeng/dashboard/"
    row = flag(dash.engine, flag_id)
    assert (row.status, row.acknowledged_by, row.acknowledged_note, row.acknowledged_at) == (
        "acknowledged",
        "admin",
        FLAG_NOTE,
        NOW,
    )
    page = dash.follow(done)
    assert f"Red flag #{flag_id} acknowledged by admin." in page.text
    assert f"Acknowledged by <strong>admin</strong>: “{FLAG_NOTE}”" in page.text
    assert f'action="flags/{flag_id}/ack"' not in page.text

    # A second acknowledgement (another user, a double click) keeps the first one.
    again = dash.post(f"flags/{flag_id}/ack", {"csrf": dash.csrf("vera"), "note": "me too"}, username="vera")
    assert again.status_code == 303
    assert flag(dash.engine, flag_id).acknowledged_by == "admin"
    page = dash.follow(again, "vera")
    assert f"Red flag #{flag_id} was already acknowledged by admin." in page.text


def test_an_acknowledgement_needs_a_note_and_a_live_flag(dash):
    flag_id = dash.demo.flags["engineer_load"]
    empty = dash.post(f"flags/{flag_id}/ack", {"csrf": dash.csrf(), "note": "   ", "outbox_page": "1"})
    assert empty.status_code == 303
    assert flag(dash.engine, flag_id).status == "open"
    page = dash.follow(empty)
    assert "was not acknowledged: say why" in page.text
    missing = dash.post("flags/99999/ack", {"csrf": dash.csrf(), "note": "x"})
    page = dash.follow(missing)
    assert "Red flag #99999 is no longer in the store." in page.text


def test_retrying_a_failed_message_queues_it_again_once(dash):
    failed = dash.demo.failed[1]
    done = dash.post(f"outbox/{failed}/retry", {"csrf": dash.csrf(), "page": "1", "outbox_page": "1"})
    assert done.status_code == 303 and done.headers["location"] == "/auxeng/dashboard/"
    row = message(dash.engine, failed)
    assert (row.status, row.attempts, row.reason, row.not_before, row.claimed_until) == (
        "pending",
        0,
        None,
        NOW,
        None,
    )
    page = dash.follow(done)
    assert f"Message #{failed} is pending again" in page.text
    assert "Outbox: 1 failed, 2 pending" in page.text

    # Retrying a message that is no longer failed (pending now, or sent) does nothing.
    for message_id in (failed, dash.demo.sent[0]):
        before = message(dash.engine, message_id)
        again = dash.post(f"outbox/{message_id}/retry", {"csrf": dash.csrf()})
        assert again.status_code == 303
        after = message(dash.engine, message_id)
        assert (after.status, after.attempts, after.updated_at) == (
            before.status,
            before.attempts,
            before.updated_at,
        )
        page = dash.follow(again)
        assert f"Message #{message_id} is not failed or in doubt (any more): nothing to retry." in page.text


def test_an_in_doubt_message_is_listed_with_the_failed_ones_and_can_be_retried(dash):
    from auxeng.messaging.outbox import IN_DOUBT_REASON

    (doubt,) = add_outbox(dash.engine, [outbox_row(0, "in_doubt", reason=IN_DOUBT_REASON, attempts=1)])
    page = dash.get()
    assert "Outbox: 2 failed, 1 in doubt, 1 pending" in page.text
    listed = MESSAGE_ROW.findall(page.text)
    assert listed.index(str(doubt)) < listed.index(
        str(dash.demo.failed[0])
    )  # the newest needing a person first
    row_html = page.text.split(f'<tr id="message-{doubt}"', 1)[1].split("</tr>", 1)[0]
    assert (
        'data-status="in_doubt"' in row_html
        and "Retry" in row_html
        and "it may have been delivered" in row_html
    )

    done = dash.post(f"outbox/{doubt}/retry", {"csrf": dash.csrf()})
    assert message(dash.engine, doubt).status == "pending"
    assert f"Message #{doubt} is pending again" in dash.follow(done).text
    assert "Outbox: 2 failed, 2 pending" in dash.get().text


def test_the_flash_message_is_shown_once(dash):
    done = dash.post(f"outbox/{dash.demo.failed[0]}/retry", {"csrf": dash.csrf()})
    first = dash.follow(done)
    assert 'id="flash"' in first.text
    assert 'auxeng_dashboard_flash=""' in first.headers["set-cookie"]  # deleted
    assert 'id="flash"' not in dash.get().text
    # A tampered flash cookie is ignored, and its text could never be markup anyway.
    tampered = dash.client.get(dash.url, headers=dash.cookies(auxeng_dashboard_flash="!!!"))
    assert tampered.status_code == 200 and 'id="flash"' not in tampered.text


# --- one clock -----------------------------------------------------------------------------


def test_one_clock_tells_the_time_to_the_public_pages_and_the_dashboard(dash, live):
    """``live`` sets the time once (``app.dependency_overrides[clock]``); moving it moves every page."""
    survey = live.survey_url(invite(dash.engine, survey="checkin"))  # closes at NOW + 14 days
    assert live.client.get(survey).status_code == 200
    assert "· 27 Nov 2026 10:30 UTC</span>" in dash.get().text
    csrf = dash.csrf()  # valid for 12 hours from NOW

    live.clock.now = NOW + timedelta(hours=13)
    assert "· 27 Nov 2026 23:30 UTC</span>" in dash.get().text
    expired = dash.post(f"outbox/{dash.demo.failed[0]}/retry", {"csrf": csrf})
    assert expired.status_code == 403 and "This form expired" in expired.text

    live.clock.now = NOW + timedelta(days=14)
    closed = live.client.get(survey)
    assert closed.status_code == 410 and "This survey is closed" in closed.text
    assert "· 11 Dec 2026 10:30 UTC</span>" in dash.get().text


# --- 10,000 engagements -------------------------------------------------------------------


def test_ten_thousand_engagements_cost_a_few_statements(dash):
    dash.get()  # warm: the first request imports Airflow's auth and the store
    with statements(dash.engine) as demo_page:
        small = dash.get()
    with session_scope(dash.engine) as session:
        session.execute(
            insert(EngagementRow),
            [
                {
                    "key": f"BULK-{n:05d}",
                    "title": f"Bulk engagement {n}",
                    "host_team_key": "fulfillment",
                    "start_date": date(2025, 1, 1),
                    "end_date": date(2025, 6, 1) + timedelta(days=n % 300),
                    "status": "active",
                    "fingerprint": "x",
                    "created_at": NOW,
                    "updated_at": NOW,
                    "ended_at": NOW,
                }
                for n in range(10_000)
            ],
        )
        session.execute(
            insert(SurveyInvitationRow),
            [
                {
                    "survey": "post_engagement",
                    "engagement_key": f"BULK-{n:05d}",
                    "email": f"p{n}@example.com",
                    "side": "host",
                    "role": "engineer",
                    "status": "invited",
                    "invited_on": date(2025, 6, 1),
                    "closes_at": NOW,
                    "answered_at": NOW if n % 2 else None,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for n in range(0, 10_000, 7)
            ],
        )
    with statements(dash.engine) as first_page:
        page = dash.get()
    deep = urlencode({"page": 150, "after": deep_cursor(dash.engine, 149 * PAGE_SIZE)})
    with statements(dash.engine) as later_page:
        later = dash.get("?" + deep)
    assert page.status_code == later.status_code == 200
    total = 10_000 + len(ROW.findall(small.text))
    assert f"Ended engagements ({total}), latest first" in page.text
    assert len(ROW.findall(page.text)) == len(ROW.findall(later.text)) == PAGE_SIZE
    assert f"Page 150 of {-(-total // PAGE_SIZE)}" in later.text
    # A fixed handful: engagements (count + page + the page's survey tally), outbox (counts + page),
    # flags (3), NPS (2), what came since it and its digest (2), the chart's program name, the store's
    # schema check; never one per row.
    assert len(first_page) <= 15, first_page
    assert len(first_page) == len(later_page) == len(demo_page)
    # The stage of each bulk row is its own (the aggregates are per engagement, not global).
    invited_rows = 0
    for key, cells in re.findall(r'<tr id="engagement-BULK-(\d+)">(.*?)</tr>', page.text + later.text, re.S):
        n = int(key)
        if n % 7:
            assert "nobody invited" in cells, key
        else:
            invited_rows += 1
            assert (
                f'<td class="num">1</td><td class="num">{n % 2}</td><td class="num">{100 * (n % 2)}%</td>'
                in cells
            )
    assert invited_rows >= 1
