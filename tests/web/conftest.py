"""Fixtures for the public pages: the demo registry in the store, invitations, and the web
app served by a real uvicorn server on a free loopback port (mounted under /auxeng,
as the Airflow api-server mounts it). Here that app is the public one (``auxeng.web:app``);
the dashboard's tests serve the plugin's app instead (their ``web_app`` fixture)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

from auxeng.messaging import tokens
from auxeng.registry.sync import sync_registry_file
from auxeng.store.db import session_scope
from auxeng.store.models import MemberRow, SurveyInvitationRow
from tests.conftest import DEMO_REGISTRY, REPO, _airflow_conn_uri

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"  # git-ignored: screenshots and axe-core reports
KEY_TEXT = "test-secret-key-for-signed-links-0123"
KEY = KEY_TEXT.encode()
NOW = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)
ENGAGEMENT = "ENG-2026-031"  # "Move Customer Care Tools to Kubernetes", host team Customer Care Tools
HOST_PERSON = "bea.zhang@example.com"
AUXENG_PERSON = "heidi.sauer@example.com"
ANONYMOUS_ENGAGEMENT = "ENG-2026-028"  # "CI/CD for Fulfillment", anonymous: true
ANONYMOUS_HOST_PERSON = "pavel.evans@example.com"

GOOD_FORM = {
    "nps": "9",
    "went_well": "Pairing on the deploy pipeline",
    "to_change": "",
    "business_goals": "yes",
    "technical_goals": "partly",
}


@pytest.fixture
def registry_store(store):
    """The migrated store with the demo registry loaded."""
    result = sync_registry_file(store, DEMO_REGISTRY, now=NOW - timedelta(days=30))
    assert not result.problems
    return store


def invite(
    engine,
    engagement_key: str = ENGAGEMENT,
    email: str = HOST_PERSON,
    *,
    survey: str = "post_engagement",
    closes_at: datetime = NOW + timedelta(days=14),
    status: str = "invited",
) -> int:
    """An invitation row for a member of the engagement, as the survey planner would write it."""
    with session_scope(engine) as session:
        member = session.scalars(
            select(MemberRow).where(MemberRow.engagement_key == engagement_key, MemberRow.email == email)
        ).one()
        row = SurveyInvitationRow(
            survey=survey,
            engagement_key=engagement_key,
            email=email,
            side=member.side,
            role=member.role,
            status=status,
            invited_on=(closes_at - timedelta(days=21)).date(),
            closes_at=closes_at,
            reminders_queued=0,
            created_at=NOW - timedelta(days=7),
            updated_at=NOW - timedelta(days=7),
        )
        session.add(row)
        session.flush()
        return row.id


def count(engine, model) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


class Clock:
    """The web app's clock in tests: a fixed time a test can move."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@contextlib.contextmanager
def web_clock(clock: Clock) -> Iterator[None]:
    """Every page of the pack's web apps (the public one and the plugin's) tells time by ``clock``
    inside the block."""
    from auxeng.web import airflow_app, public_app
    from auxeng.web.common import clock as web_app_clock

    apps = (public_app(), airflow_app())
    for app in apps:
        app.dependency_overrides[web_app_clock] = clock
    try:
        yield
    finally:
        for app in apps:
            app.dependency_overrides.pop(web_app_clock, None)


@pytest.fixture
def web_app():
    """The app ``live`` serves: the public one, as ``uvicorn auxeng.web:app`` serves it."""
    from auxeng.web import app

    return app


@dataclass
class Live:
    client: httpx.Client
    base_url: str
    clock: Clock
    engine: object

    def survey_url(self, invitation_id: int, *, score: int | None = None, expires_at: datetime | None = None):
        expires_at = expires_at or NOW + timedelta(days=44)
        return tokens.survey_url(invitation_id, expires_at, score=score, public_url=self.public_url, key=KEY)

    def optout_url(self, email: str) -> str:
        return tokens.optout_url(email, public_url=self.public_url, key=KEY, now=NOW)

    @property
    def public_url(self) -> str:
        """AUXENG_PUBLIC_URL for this server: the app's base URL, mount point included."""
        return f"{self.base_url}/auxeng"


@pytest.fixture
def live(registry_store, store_url, monkeypatch, web_app):
    """``web_app`` under a real uvicorn server (in a thread), pointed at the test store."""
    monkeypatch.setenv("AIRFLOW_CONN_AUXENG_DB", _airflow_conn_uri(store_url))
    monkeypatch.setenv("AUXENG_SECRET_KEY", KEY_TEXT)
    clock = Clock(NOW)
    root = FastAPI()
    root.mount("/auxeng", web_app)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(root, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.01)
    base_url = f"http://127.0.0.1:{port}"
    try:
        with web_clock(clock), httpx.Client(base_url=base_url, timeout=60) as client:
            yield Live(client=client, base_url=base_url, clock=clock, engine=registry_store)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


# --- the browser ----------------------------------------------------------------------------


def ensure_chromium() -> None:
    """Install Debian's chromium with ``make browser`` (``make test`` runs it first) when it is missing."""
    if CHROMIUM.exists() or shutil.which("make") is None:
        return
    subprocess.run(["make", "-s", "browser"], cwd=REPO, check=False, timeout=900)


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium, one per test module: Debian's package, never a downloaded build.
    Each test opens its own pages (``new_page``: a fresh context, no cookies shared)."""
    from playwright.sync_api import sync_playwright

    ensure_chromium()
    if not CHROMIUM.exists():
        pytest.skip(
            f"Debian's chromium is not installed ({CHROMIUM} is missing) and could not be installed: "
            "`make browser` needs root and apt-get (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()
