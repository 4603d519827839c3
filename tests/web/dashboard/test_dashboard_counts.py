"""What the dashboard counts, and why it shows nothing when it has nothing: the host-team survey and
the retro apart (as ``python -m auxeng report`` counts them), a fresh answer at once, empty states
with their reasons from the store, and the trend chart's axes with no data."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from auxeng.nps.weekly import compute_week, save_week
from auxeng.ops.reporting import state_lines, survey_lines
from auxeng.registry.lifecycle import mark_ended
from auxeng.store.db import session_scope
from auxeng.store.models import EngagementRow, SurveyInvitationRow
from auxeng.surveys.responses import record_response
from auxeng.surveys.tally import NPS_COUNTS
from auxeng.web.dashboard.queries import why_none_ended
from tests.web.conftest import AUXENG_PERSON, ENGAGEMENT, GOOD_FORM, HOST_PERSON, KEY, NOW, invite
from tests.web.dashboard.conftest import NPS_WEEK, add_outbox, outbox_row, statements

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SINCE = re.compile(r"(\d+) answer\(s\) recorded since that week ended")


def page_text(dash) -> str:
    page = dash.get()
    assert page.status_code == 200, page.text
    return html.unescape(page.text)


def host_cells(text: str, key: str = ENGAGEMENT) -> tuple[str, str, str]:
    row = re.search(rf'<tr id="engagement-{key}">(.*?)</tr>', text, re.S).group(1)
    found = re.search(
        r'<td class="num">(\d+)</td><td class="num">(\d+)</td><td class="num">([^<]+)</td>', row
    )
    return found.groups()


def retro_cell(text: str, key: str = ENGAGEMENT) -> str:
    row = re.search(rf'<tr id="engagement-{key}">(.*?)</tr>', text, re.S).group(1)
    return re.search(r'<td class="retro[^"]*">([^<]*)</td>', row).group(1)


def test_the_host_team_survey_and_the_retro_are_counted_apart_as_the_report_counts_them(dash, live):
    retro = invite(dash.engine, ENGAGEMENT, AUXENG_PERSON, survey="retro")
    assert live.client.post(live.survey_url(retro), data=GOOD_FORM).status_code == 303

    text = page_text(dash)
    assert host_cells(text) == ("2", "1", "50%")  # the retro's answer is not the host team's
    assert retro_cell(text) == "1 of 1 answered"
    assert "Host-team survey (NPS): invited" in text and "Retro (not NPS)" in text
    assert NPS_COUNTS in text

    with session_scope(dash.engine) as session:
        report = "\n".join(survey_lines(session, now=NOW))
        state = "\n".join(state_lines(session, NOW.date()))
    assert re.search(rf"{ENGAGEMENT} +host-team survey \(NPS\) +2 invited \(1 answered, 0 reminded\)", report)
    assert re.search(rf"{ENGAGEMENT} +retro +1 invited \(1 answered, 0 reminded\)", report)
    assert NPS_COUNTS in report
    assert re.search(
        r"surveys +host-team survey \(NPS\) \d+ invited, \d+ answered; retro 1 invited, 1 answered", state
    )


def test_an_answer_shows_on_the_dashboard_at_once(dash, live):
    before = page_text(dash)
    assert host_cells(before) == ("2", "1", "50%")
    since = int(SINCE.search(before).group(1))
    with session_scope(dash.engine) as session:
        waiting = session.scalar(
            select(SurveyInvitationRow.id).where(
                SurveyInvitationRow.engagement_key == ENGAGEMENT,
                SurveyInvitationRow.answered_at.is_(None),
            )
        )

    # Answered through the public survey page, as a person does (POST, then the thank-you page).
    assert live.client.post(live.survey_url(waiting), data=GOOD_FORM).status_code == 303

    after = page_text(dash)
    assert host_cells(after) == ("2", "2", "100%")
    assert int(SINCE.search(after).group(1)) == since + 1  # counted by the next weekly run, and it says so


def test_an_empty_store_says_why_each_part_is_empty(empty_dash):
    text = page_text(empty_dash)
    assert (
        "No weekly NPS yet: auxeng_weekly_nps computes each week on the Monday after it, at 07:00; "
        "its next run is 30 Nov 2026 07:00 UTC. 0 answer(s) recorded so far." in text
    )
    assert "No digest yet: there is no weekly NPS to send." in text
    assert "The trend chart appears once a weekly NPS is stored (next run 30 Nov 2026 07:00 UTC)." in text
    assert re.search(
        r"No engagement has been marked ended yet: \d+ are past their last day, and auxeng_detect_ended "
        r"marks them on its next daily run",
        text,
    )
    assert "<svg" not in text


def save(engine, week: date) -> None:
    with session_scope(engine) as session:
        snapshot = compute_week(session, week, timezone=UTC, min_responses=3)
        save_week(session, snapshot, run_id="test", now=NOW - timedelta(days=3))


def test_a_week_nobody_was_invited_in_says_so_and_its_digest_is_a_backfill(empty_dash):
    save(empty_dash.engine, date(2026, 11, 9))  # ended 16 Nov: more than 6 days before NOW (27 Nov)
    page_text(empty_dash)
    with statements(empty_dash.engine) as seen:
        text = page_text(empty_dash)
    assert len(seen) <= 16, seen  # the most a page costs (docs/operations.md): the reasons included
    assert (
        "No answers yet: no engagement ended in the 13 weeks since 17 Aug 2026, so nobody was invited."
        in text
    )
    assert (
        "No digest for the week of 09 Nov – 15 Nov 2026: it ended more than 6 days ago "
        "(AUXENG_DIGEST_MAX_AGE_DAYS), so a run for it is a backfill and sends none." in text
    )
    assert "No answer recorded since that week ended; the next weekly run is 30 Nov 2026 07:00 UTC." in text
    assert (
        "A figure needs 3 answers or more (AUXENG_NPS_MIN_RESPONSES): below that it reads “too few responses”"
        in text
    )
    # The chart still has its axes: NPS -100..+100, answers 0..3 (the privacy threshold), never ±0.05.
    svg = re.search(r"<svg.*?</svg>", text, re.S).group(0)
    assert re.findall(r'class="nps-tick"[^>]*>([^<]+)<', svg) == ["-100", "-50", "0", "+50", "+100"]
    assert re.findall(r'class="answers-tick"[^>]*>([^<]+)<', svg) == ["0", "3"]
    assert svg.count(">too few<") == 13


def test_too_few_answers_and_none_yet_say_how_many(empty_dash):
    engine = empty_dash.engine
    mark_ended(engine, NOW.date(), NOW)
    people = [HOST_PERSON, "chidi.berg@example.com", "arjun.yilmaz@example.com"]
    invitations = [
        invite(engine, ENGAGEMENT, person, closes_at=NOW + timedelta(days=14)) for person in people
    ]
    save(engine, date(2026, 11, 16))  # invited on 20 Nov, in that week; nobody answered by its end
    text = page_text(empty_dash)
    assert "No answers yet: 3 invited in these 13 weeks, none answered by the week's end." in text
    assert "No digest queued for the week of 16 Nov – 22 Nov 2026 yet" in text

    for invitation in invitations[:2]:
        record_response(engine, invitation, GOOD_FORM, now=datetime(2026, 11, 21, 9, tzinfo=UTC), key=KEY)
    save(engine, date(2026, 11, 16))
    text = page_text(empty_dash)
    assert (
        "2 answer(s) in these 13 weeks: fewer than 3 (AUXENG_NPS_MIN_RESPONSES), so no score is shown" in text
    )
    svg = re.search(r"<svg.*?</svg>", text, re.S).group(0)
    assert re.findall(r'class="answers-tick"[^>]*>([^<]+)<', svg) == ["0", "3"]


def test_before_any_engagement_ends_it_says_when_the_first_does(empty_dash):
    with session_scope(empty_dash.engine) as session:
        first = session.scalar(
            select(func.min(EngagementRow.end_date)).where(EngagementRow.status != "cancelled")
        )
        assert why_none_ended(session, datetime(2025, 1, 1, tzinfo=UTC)) == (
            f"No engagement has ended yet: the first ends on {first:%d %b %Y}."
        )


def test_the_week_s_digest_is_counted_by_status(dash):
    assert "No digest queued for the week of 16 Nov – 22 Nov 2026 yet" in page_text(dash)
    week = NPS_WEEK.isoformat()
    add_outbox(
        dash.engine,
        [
            outbox_row(50, "sent", kind="nps_digest", dedupe_key=f"nps_digest:{week}:email:a@example.com"),
            outbox_row(51, "pending", kind="nps_digest", dedupe_key=f"nps_digest:{week}:slack:C0AUXENG"),
            outbox_row(52, "sent", kind="nps_digest", dedupe_key="nps_digest:2026-11-09:email:a@example.com"),
        ],
    )
    assert "Digest of the week of 16 Nov – 22 Nov 2026: 1 pending, 1 sent" in page_text(dash)
