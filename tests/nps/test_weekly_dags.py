"""``auxeng_weekly_nps`` and ``auxeng_weekly_digest`` run for real (``dag.test()``), on SQLite
and PostgreSQL: an 8-week backfill, idempotent re-runs, and the digest as received by a
real SMTP server on loopback and the local Slack stand-in."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auxeng.dev.demo_history import seed_history
from auxeng.messaging.optouts import record_opt_out
from auxeng.nps.weekly import compute_week
from auxeng.store.models import (
    DigestOptOutRow,
    DigestRow,
    EngagementRow,
    IndependenceWeekRow,
    NpsSnapshotRow,
    NpsWeekRow,
    OutboxRow,
    SurveyResponseRow,
)
from tests.support.dagruns import run
from tests.support.independence_rows import insert_week, segment
from tests.web.conftest import KEY_TEXT, registry_store  # noqa: F401

pytestmark = pytest.mark.airflow

# The DAGs are parsed once per module with the default program time zone (UTC).
PROGRAM_TZ = ZoneInfo("UTC")
LAST_WEEK = date(2026, 11, 16)
STAKEHOLDERS = {"vp-eng@example.com", "dana.ruiz@example.com", "sam.okoro@example.com"}
SCRIPT = "<script>alert('x')</script> the hand-over was rushed"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def monday_morning(week: date) -> datetime:
    """07:00 on the Monday after ``week``: when the run for ``week`` happens."""
    return datetime.combine(week + timedelta(weeks=1), datetime.min.time().replace(hour=7), PROGRAM_TZ)


@pytest.fixture
def history(pack_env, registry_store, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AUXENG_SECRET_KEY", KEY_TEXT)
    monkeypatch.setenv("AUXENG_PUBLIC_URL", "https://airflow.example.com/auxeng")
    with Session(registry_store) as session:
        assert seed_history(session, until=LAST_WEEK + timedelta(weeks=1), weeks=30, seed=5) > 100
        session.commit()
    return registry_store


def add_comment(store, text: str, score: int, when: datetime, *, anonymous: bool = False) -> None:
    """A response from an engagement's (anonymous or not) host side, as the survey page stores it."""
    with Session(store) as session:
        key = session.scalar(
            select(EngagementRow.key)
            .where(EngagementRow.anonymous.is_(anonymous))
            .order_by(EngagementRow.key)
        )
        session.add(
            SurveyResponseRow(
                response_ref=hashlib.sha256(text.encode()).hexdigest()[:40],
                survey="post_engagement",
                engagement_key=key,
                respondent_email=None if anonymous else "carol.moss@example.com",
                nps=score,
                answers={"to_change": text},
                source="web",
                submitted_at=when,
                updated_at=when,
            )
        )
        session.commit()


def test_a_backfill_over_eight_weeks_computes_each_week_once(dags, history):
    weeks = [LAST_WEEK - timedelta(weeks=n) for n in range(7, -1, -1)]
    for week in weeks:
        states = run(dags, "auxeng_weekly_nps", monday_morning(week))
        assert states == {"compute_weekly_nps": "success", "compute_weekly_independence": "success"}
    with Session(history) as session:
        stored = session.scalars(select(NpsWeekRow).order_by(NpsWeekRow.week)).all()
        assert [row.week for row in stored] == weeks
        rows_before = session.scalar(select(func.count()).select_from(NpsSnapshotRow))
        for week in (weeks[0], weeks[-1]):
            expected = compute_week(session, week, timezone=PROGRAM_TZ, min_responses=3)
            program = session.scalar(
                select(NpsSnapshotRow).where(
                    NpsSnapshotRow.week == week,
                    NpsSnapshotRow.span == "13w",
                    NpsSnapshotRow.segment == "program",
                )
            )
            assert program.responses == expected.get("13w").result.responses > 0
            assert program.score == pytest.approx(expected.get("13w").result.score)
        first_run = stored[2].run_id

    run(dags, "auxeng_weekly_nps", monday_morning(weeks[2]))  # a re-run of one week replaces it
    with Session(history) as session:
        assert session.scalar(select(func.count()).select_from(NpsWeekRow)) == 8
        assert session.scalar(select(func.count()).select_from(NpsSnapshotRow)) == rows_before
        assert session.get(NpsWeekRow, weeks[2]).run_id != first_run

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as meta:
        announced = [e.extra.get("week") for e in meta.scalars(select(AssetEvent).order_by(AssetEvent.id))]
    assert [w for w in announced if w][-9:] == [w.isoformat() for w in weeks] + [weeks[2].isoformat()]

    # The digest of a backfilled week is not sent: it is stale by the time the backfill runs.
    # (Its own logical date: dag.test() re-uses the conf of an earlier run at the same one.)
    states = run(
        dags, "auxeng_weekly_digest", monday_morning(LAST_WEEK) + timedelta(minutes=59), week="2026-10-05"
    )
    assert states["queue_digest"] == "success"
    with Session(history) as session:
        assert session.scalar(select(func.count()).select_from(OutboxRow)) == 0
        assert session.scalar(select(func.count()).select_from(DigestRow)) == 0


class SectionText(HTMLParser):
    """The text of the element with ``id`` (headings and list items one per line), parsed for real."""

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id, self.depth, self.lines = element_id, 0, [""]

    def handle_starttag(self, tag, attrs):
        if self.depth or dict(attrs).get("id") == self.element_id:
            self.depth += 1
            if tag in ("h2", "h3", "li", "p"):
                self.lines.append("")

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.lines[-1] += data

    @classmethod
    def of(cls, html: str, element_id: str) -> list[str]:
        parser = cls(element_id)
        parser.feed(html)
        return [" ".join(line.split()) for line in parser.lines if line.strip()]


def store_independence(store, week: date) -> None:
    """The week's independence as the weekly run stores it (written here: read by the digest)."""
    with Session(store) as session:
        for n in range(5):
            insert_week(
                session,
                week - timedelta(weeks=4 - n),
                segments=[
                    segment("program", "all", 55.0 + n, scored=9, checkins=6, independent=4),
                    segment(
                        "team",
                        "fulfillment",
                        72.0 - 8 * n,
                        {"help_asks": 90.0 - 20 * n, "maintainability": 75.0},
                    ),
                    segment("team", "customer-care-tools", 80.0, {"help_needed": 100.0}),
                ],
            )
        session.commit()


def html_and_image(received):
    html = image = None
    for part in received.message.walk():
        if part.get_content_type() == "text/html":
            html = part.get_content()
        if part.get_content_type() == "image/png":
            image = part
    return html, image


def test_the_digest_by_email_and_slack(
    dags, history, smtp_server, smtp_connection, slack_standin, slack_api_connection
):
    in_week = datetime(2026, 11, 18, 10, tzinfo=UTC)
    add_comment(history, SCRIPT, 2, in_week)
    add_comment(history, "Anonymous but glad: we run it ourselves now", 10, in_week, anonymous=True)
    run(dags, "auxeng_weekly_nps", monday_morning(LAST_WEEK))
    store_independence(history, LAST_WEEK)
    moment = monday_morning(LAST_WEEK) + timedelta(minutes=5)
    states = run(dags, "auxeng_weekly_digest", moment)
    assert states == {"queue_digest": "success", "deliver_outbox": "success"}

    received = smtp_server.wait_for(3)
    assert {r.rcpt_tos[0] for r in received} == STAKEHOLDERS
    for message in received:
        subject = " ".join(str(message.message["Subject"]).split())
        assert subject.startswith("AuxEng weekly NPS, 16 Nov – 22 Nov 2026:")
        html, image = html_and_image(message)
        assert 'src="cid:nps-trend"' in html
        assert image["Content-ID"] == "<nps-trend>"
        assert image.get_payload(decode=True).startswith(PNG_MAGIC)
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
        assert "<script>" not in html
        assert message.message["List-Unsubscribe"].startswith(
            "<https://airflow.example.com/auxeng/digest/optout/"
        )
        text = message.message.get_body(("plain",)).get_content()
        assert SCRIPT in text
        comments = text.split("New comments", 1)[1]
        assert comments.index("2/10") < comments.index("10/10")  # detractors first
        assert "Carol Moss" in comments  # an attributed comment names the respondent's team and engagement
        anonymous = comments.split("Anonymous but glad", 1)[1].split("\n- ", 1)[0]
        assert "-- anonymous engagement" in anonymous and "Carol" not in anonymous
        independence = text.split("Independence", 1)[1].split("Open red flags", 1)[0]
        assert "Score this week: 59 / 100 (n=9)" in independence
        assert (
            "Independent at three months: 67% (4 of 6 answered check-ins; 95% CI 30% to 90%)" in independence
        )
        assert (
            "Trend, 13 weeks (oldest first): – · – · – · – · – · – · – · – · 55 · 56 · 57 · 58 · 59"
            in independence
        )
        assert SectionText.of(html, "independence") == [
            "Independence",
            "Score this week: 59 / 100 (n=9)",
            "Independent at three months: 67% (4 of 6 answered check-ins; 95% CI 30% to 90%)",
            "Goals achieved: too few goal answers (n=0)",
            "Trend, 13 weeks (oldest first): – · – · – · – · – · – · – · – · 55 · 56 · 57 · 58 · 59",
            "Biggest drops over four weeks",
            "Fulfillment: 40 (-32 since 19 Oct, was 72): help asks after the end 90 → 10",
            "Teams at risk (below 50)",
            "Fulfillment: 40 (-32 since 19 Oct, was 72): help asks after the end 90 → 10",
        ]

    (post,) = slack_standin.posts_to("C0AUXENG")[:1]
    assert post.method == "chat.postMessage"
    assert post.blocks[0]["text"]["text"] == "AuxEng weekly NPS, 16 Nov – 22 Nov 2026"
    assert "&lt;script&gt;" in str(post.blocks)
    independence = next(b["text"]["text"] for b in post.blocks if "*Independence*" in str(b))
    assert "• *Fulfillment* 40 (-32 since 19 Oct, was 72): help asks after the end 90 → 10" in independence
    uploads = [p for p in slack_standin.posts if p.method == "files.completeUploadExternal"]
    assert len(uploads) == 1 and uploads[0].conversation == "C0AUXENG"
    assert uploads[0].files[0]["data"].startswith(PNG_MAGIC)

    # Once per week and recipient: a re-run sends nothing new.
    run(dags, "auxeng_weekly_nps", monday_morning(LAST_WEEK))
    run(dags, "auxeng_weekly_digest", moment + timedelta(minutes=30))
    assert len(smtp_server.messages) == 3
    assert len(slack_standin.posts) == 2
    with Session(history) as session:
        assert session.scalar(select(func.count()).select_from(DigestRow)) == 1


def test_an_opted_out_stakeholder_gets_no_digest(
    dags, history, smtp_server, smtp_connection, slack_standin, slack_api_connection
):
    now = datetime(2026, 11, 20, tzinfo=UTC)
    from auxeng.messaging.optouts import record_digest_opt_out

    record_digest_opt_out(history, "VP-Eng@example.com", now=now, source="web")
    record_opt_out(history, "sam.okoro@example.com", now=now, source="web")
    run(dags, "auxeng_weekly_nps", monday_morning(LAST_WEEK))
    run(dags, "auxeng_weekly_digest", monday_morning(LAST_WEEK) + timedelta(minutes=5))
    assert [r.rcpt_tos[0] for r in smtp_server.wait_for(1)] == ["dana.ruiz@example.com"]
    with Session(history) as session:
        assert session.scalar(select(func.count()).select_from(DigestOptOutRow)) == 1


def test_a_webhook_only_slack_gets_the_text_without_the_chart(
    dags, history, smtp_connection, slack_standin, slack_webhook_connection
):
    run(dags, "auxeng_weekly_nps", monday_morning(LAST_WEEK))
    run(dags, "auxeng_weekly_digest", monday_morning(LAST_WEEK) + timedelta(minutes=5))
    (post,) = slack_standin.posts
    assert post.method == "webhook"
    assert post.blocks[0]["type"] == "header"
    assert "Trend chart below" not in str(post.blocks)
    with Session(history) as session:
        kinds = session.scalars(select(OutboxRow.kind).where(OutboxRow.channel == "slack")).all()
    assert kinds == ["nps_digest"]


def test_a_bad_week_param_fails_the_run_at_once_and_changes_nothing(dags, history):
    dag = dags.dags["auxeng_weekly_nps"]
    dag_run = dag.test(
        logical_date=monday_morning(LAST_WEEK) + timedelta(minutes=17), run_conf={"week": "2026-11-17"}
    )
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    ti = tis["compute_weekly_nps"]
    assert (dag_run.state, ti.state, ti.try_number) == ("failed", "failed", 1)
    assert tis["compute_weekly_independence"].state == "upstream_failed"  # nothing announced
    with Session(history) as session:
        assert session.scalar(select(func.count()).select_from(NpsWeekRow)) == 0
        assert session.scalar(select(func.count()).select_from(IndependenceWeekRow)) == 0
