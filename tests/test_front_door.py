"""What a newcomer runs: ``make demo`` and the ``python -m auxeng`` command line."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import DEMO_REGISTRY, REPO
from tests.support.registry_edits import edit_engagement


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AUXENG_"))}
    return {**env, **extra}


@pytest.mark.airflow
def test_make_demo_runs_the_dags_over_two_days_and_prints_what_happened(make_demo):
    assert make_demo.returncode == 0, make_demo.stdout + make_demo.stderr
    out = make_demo.stdout
    for line in (
        "auxeng_sync_registry at 2026-11-26 04:00 UTC: success",
        "auxeng_detect_ended at 2026-11-26 05:00 UTC: success",
        "auxeng_send_surveys at 2026-11-26 08:00 UTC: success",
        "auxeng_deliver_outbox at 2026-11-26 20:00 UTC: success",
        "auxeng_send_surveys at 2026-11-30 08:00 UTC: success",
        "auxeng_deliver_outbox at 2026-11-30 20:00 UTC: success",
        "AuxEng as of 2026-11-30 (Monday)",
        "registry load #1: 40 engagements, 0 problem(s)",
        "Engagements detected as ended: 33",
        "ENG-2026-031   host-team survey (NPS)  3 invited (2 answered, 1 reminded), 0 skipped",
        "ENG-2026-031   retro                   2 invited (0 answered, 2 reminded), 0 skipped",
        "auxeng_checkins at 2026-11-26 08:30 UTC: success",
        "calendar invitation for ENG-2026-027 (due 2026-12-02) to kai.brandt@example.com, rafa.moss@example.com, "
        "sana.ng@example.com",
        "check-in survey for ENG-2026-025 (due 2026-11-30) sent to 3 people",
        "Check-ins: 33 (22 missed, 8 scheduled, 3 surveying)",
        "ENG-2026-027   scheduled  due 2026-12-02; calendar REQUEST Wed 02 Dec 10:00 America/Los_Angeles",
        "ENG-2026-025   check-in (NPS)          3 invited (0 answered, 0 reminded), 0 skipped",
        "checkin_calendar   email  15 sent",
        "chidi.berg@example.com answered 4/10 for ENG-2026-031",
        "detractor_alert    email  1 sent",
        "auxeng_weekly_nps at 2026-11-30 07:00 UTC: success",
        "auxeng_weekly_digest at 2026-11-30 07:05 UTC: success",
        "digest nps_digest by email to vp-eng@example.com: sent",
        "digest nps_digest by slack to C0AUXENG: sent",
        "digest nps_digest_chart by slack to C0AUXENG: sent",
        "nps_digest         email  3 sent",
        "auxeng_dependency_alerts at 2026-11-26 09:00 UTC: success",
        "[WARNING] Engineer load: Frank Ito has 3 engagements back to back (ENG-2026-038, ENG-2026-039, "
        "ENG-2026-040) until 2027-01-29; ENG-2026-040 starts on 2026-11-30",
        "[CRITICAL] Engineer load: Frank Ito has 3 engagements back to back (ENG-2026-038, ENG-2026-039, "
        "ENG-2026-040) until 2027-01-29; ENG-2026-040 started on 2026-11-30",
        "[CRITICAL] Host team still asking for help: Fulfillment asked for help 27 times in the last 30 days",
        "independence for the week of 2026-11-23: ",
        "at risk: fulfillment, weekly from 2026-08-31: ",
        "[CRITICAL] Host team independence low or falling: Fulfillment: independence ",
        "handover for ENG-2026-034 to mateo.usman@example.com, nora.varga@example.com",
        "alert about Host team still asking for help: fulfillment to dana.ruiz@example.com (email sent, slack sent); "
        "sam.okoro@example.com (email sent, slack sent); olga.dahl@example.com (email sent, slack sent)",
        "alert about Engineer load: frank.ito@example.com to dana.ruiz@example.com (email sent, slack sent); "
        "sam.okoro@example.com (email sent, slack sent)",
        "AuxEng state on 2026-11-30",
        "  red flags     13 live, 1 resolved",
        "    1 critical Engineer load (open)",
    ):
        assert line in out
    state_last, _, serve = out.rstrip().splitlines()[-3:]
    assert state_last.startswith("  outbox        ")
    assert serve == (
        "==> To answer the survey link above: make demo-serve "
        "(serves http://localhost:8080/auxeng from this demo until Ctrl-C), then open the link"
    )
    assert re.search(
        r"weekly NPS for the week of 2026-11-23: \d+ answers this week, \d+ over 13 weeks, NPS ", out
    )
    outbox = make_demo.home / "dev-outbox"
    digest = next((outbox / "email").glob("*nps_digest-vp-eng@example.com.eml"))
    message = email.message_from_bytes(digest.read_bytes(), policy=email.policy.default)
    (chart,) = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert chart["Content-ID"] == "<nps-trend>" and chart.get_payload(decode=True).startswith(b"\x89PNG")
    assert 'src="cid:nps-trend"' in message.get_body(("html",)).get_content()
    digest_text = message.get_body(("plain",)).get_content()
    assert "Open red flags (6)" in digest_text and "[WARNING] Engineer load: Frank Ito" in digest_text
    assert "Independence (host teams maintaining what was built without AuxEng)" in digest_text
    assert (
        next((outbox / "slack").glob("*nps_digest_chart-C0AUXENG-*.png")).read_bytes().startswith(b"\x89PNG")
    )
    assert re.search(r"survey_invite +email +\d+ sent\n", out)
    assert re.search(
        r"an unanswered host-team survey \(ENG-[\d-]+, [^)]+\), to open in a browser: "
        r"http://localhost:8080/auxeng/survey/\S+\n",
        out,
    )
    assert re.search(r"survey_reminder +email +\d+ sent\n", out)
    assert re.search(r"follow_up_reminder +email +\d+ sent\n", out)
    assert "pending" not in out and "failed" not in out
    invitation = next((make_demo.home / "dev-outbox" / "email").glob("*survey_invite*.eml"))
    message = email.message_from_bytes(invitation.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    assert "http://localhost:8080/auxeng/survey/" in text and "?score=10" in text
    assert message["Message-ID"] and message["List-Unsubscribe"]
    calendar = next((make_demo.home / "dev-outbox" / "email").glob("*checkin_calendar*.eml"))
    message = email.message_from_bytes(calendar.read_bytes(), policy=email.policy.default)
    (ics,) = [part for part in message.walk() if part.get_filename() == "invite.ics"]
    assert b"METHOD:REQUEST" in ics.get_payload(decode=True)
    for key in (
        "ENG-2026-031",
        "ENG-2026-039",
        "ENG-2026-032",
        "ENG-2026-033",
        "ENG-2026-034",
        "ENG-2026-035",
    ):
        assert key in out
    assert "Cancelled (never counted as ended): ENG-2025-007, ENG-2026-020, ENG-2026-029, ENG-2026-036" in out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.airflow
def test_make_demo_serve_serves_the_survey_link_make_demo_printed(make_demo, tmp_path):
    (link,) = re.findall(r"to open in a browser: (http://localhost:8080/auxeng/survey/\S+)", make_demo.stdout)
    # The demo's home as `make demo AUXENG_PORT=<port>` leaves it (a copy: the session's stays as it was).
    port = _free_port()
    home = tmp_path / ".airflow-demo"
    shutil.copytree(make_demo.home, home)
    settings = home / "auxeng-demo.env"
    settings.write_text(settings.read_text().replace("localhost:8080", f"localhost:{port}"))
    link = link.replace("localhost:8080", f"localhost:{port}")
    server = subprocess.Popen(
        ["make", "--no-print-directory", "demo-serve"],
        cwd=REPO,
        env=_clean_env(AUXENG_DEMO_HOME=str(home)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        banner = server.stdout.readline()
        assert f"at http://localhost:{port}/auxeng (pages as at 2026-11-30 21:00 UTC)" in banner, banner
        with httpx.Client(timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get(f"http://localhost:{port}/auxeng/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, "make demo-serve did not start"
                time.sleep(0.2)
            page = client.get(link)
            assert page.status_code == 200, page.text
            assert '<form method="post"' in page.text and 'name="nps"' in page.text
            choices = dict(re.findall(r'<input type="radio" name="(\w+)" value="([^"]+)"', page.text)[::-1])
            answer = client.post(
                link, data={**choices, "nps": "9", "went_well": "answered through make demo-serve"}
            )
            assert answer.status_code == 303, answer.text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    with sqlite3.connect(home / "auxeng.db") as db:
        stored = db.execute(
            "SELECT nps, source, submitted_at FROM auxeng_survey_responses WHERE answers LIKE ?",
            ("%answered through make demo-serve%",),
        ).fetchall()
    assert [(nps, source) for nps, source, _ in stored] == [(9, "web")]
    assert stored[0][2].startswith("2026-11-30 21:0")


def _cli(*args: str, store_url: str) -> subprocess.CompletedProcess:
    conn = json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": store_url}})
    return subprocess.run(
        [sys.executable, "-m", "auxeng", *args],
        cwd=REPO,
        env=_clean_env(PYTHONPATH=str(REPO / "plugins"), AIRFLOW_CONN_AUXENG_DB=conn),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_sync_reports_every_problem_and_exits_1_after_saving_valid_rows(store_url, tmp_path):
    bad = tmp_path / "engagements.yaml"
    text = edit_engagement(DEMO_REGISTRY.read_text(), "ENG-2026-033", "role: tech_lead", "role: techlead")
    bad.write_text(text)
    result = _cli("sync-registry", "--path", str(bad), store_url=store_url)
    assert result.returncode == 1
    assert "39 created" in result.stdout
    assert (
        "ENG-2026-033 (engagements[36]) host[0].role: unknown role 'techlead' "
        "(expected one of: designer, engineer, manager, product_manager, tech_lead)" in result.stderr
    )
    again = _cli("sync-registry", "--path", str(DEMO_REGISTRY), store_url=store_url)
    assert again.returncode == 0, again.stderr
    assert "1 created, 0 updated, 39 unchanged" in again.stdout
    report = _cli("report", "--date", "2026-11-26", store_url=store_url)
    assert report.returncode == 0, report.stderr
    assert "Ending in the next 7 days: 2" in report.stdout
    assert "not marked ended yet (auxeng_detect_ended has not run for 2026-11-26): 32" in report.stdout
