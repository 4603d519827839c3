"""Fixtures for the dashboard: Airflow's real auth manager (the simple one, Airflow's default) and
its JWTs, the demo data in the store, and the pack's app under a real uvicorn server (``live``)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta

import httpx
import pytest
import uvicorn
from sqlalchemy import event, insert, select

from auxeng.dev.demo_history import seed_history
from auxeng.nps.weekly import compute_week, save_week
from auxeng.redflags.rules import Flag
from auxeng.redflags.store import reconcile
from auxeng.registry.lifecycle import mark_ended
from auxeng.store.db import session_scope
from auxeng.store.models import CheckinRow, FlagRow, OutboxRow
from auxeng.surveys.responses import record_response
from tests.conftest import AIRFLOW_TEST_HOME
from tests.web.conftest import (  # noqa: F401 (fixtures)
    ENGAGEMENT,
    GOOD_FORM,
    HOST_PERSON,
    KEY,
    NOW,
    invite,
    live,
    registry_store,
)

JWT_SECRET = "auxeng-dashboard-tests-jwt-secret-" + "0123456789" * 4
USERS = {"admin": ("admin", "admin-password-for-tests"), "vera": ("viewer", "viewer-password-for-tests")}
NPS_WEEK = date(2026, 11, 16)  # the newest week that ended before NOW (Friday 2026-11-27)
FLAG_NOTE = "Booked a pairing session with the Fulfillment team for Tuesday"
CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')


# --- Airflow's auth -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def airflow_auth(airflow_db):
    """Airflow's auth manager as the api-server sets it up: the simple auth manager (Airflow's
    default) with two users and a fixed JWT signing secret. Needs the metadata DB (revoked tokens)."""
    patch = pytest.MonkeyPatch()
    passwords = AIRFLOW_TEST_HOME / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({name: password for name, (_role, password) in USERS.items()}))
    patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", JWT_SECRET)
    patch.setenv(
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", ",".join(f"{n}:{r}" for n, (r, _p) in USERS.items())
    )
    patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
    from airflow.api_fastapi.app import init_auth_manager

    try:
        yield init_auth_manager()
    finally:
        patch.undo()


def airflow_jwt(manager, username: str = "admin", *, seconds: int | None = None) -> str:
    """A real Airflow JWT for ``username``, signed by Airflow's own token signer (as the UI login does)."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    user = SimpleAuthManagerUser(username=username, role=USERS[username][0].upper())
    if seconds is None:
        return manager.generate_jwt(user)
    return manager.generate_jwt(user, expiration_time_in_seconds=seconds)


# --- demo data ------------------------------------------------------------------------------


@dataclass
class Demo:
    """Ids of what :func:`seed_demo` stored."""

    flags: dict[str, int] = field(default_factory=dict)  # rule → flag id
    failed: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)


FINDINGS = [
    Flag(
        rule="help_requests",
        subject_kind="team",
        subject_key="fulfillment",
        severity="warning",
        summary="Fulfillment asked for help 3 times in the last 30 days, 12 weeks after ENG-2026-028 ended",
        evidence={
            "requests": 3,
            "window_days": 30,
            "since": "2026-08-27",
            "engagement": "ENG-2026-028",
            "sources": {"csv": 3},
            "latest": [
                {
                    "on": "2026-11-24",
                    "source": "csv",
                    "summary": "Canary stuck at 10%, <b>can AuxEng look?</b>",
                    "link": "https://jira.example.com/browse/FUL-322",
                }
            ],
        },
        team_key="fulfillment",
        engagement_key="ENG-2026-028",
    ),
    Flag(
        rule="detractor_cluster",
        subject_kind="engagement",
        subject_key=ENGAGEMENT,
        severity="critical",
        summary="4 detractor answers on ENG-2026-031",
        evidence={"detractors": 4, "answers": 5, "latest_on": "2026-11-26", "quotes": []},
        team_key="customer-care",
        engagement_key=ENGAGEMENT,
    ),
    Flag(
        rule="engineer_load",
        subject_kind="engineer",
        subject_key="frank.ito@example.com",
        severity="warning",
        summary="Frank Ito has 3 engagements back to back",
        evidence={"engagements": [], "gaps_days": [10], "limit": 2, "gap_limit_days": 14},
        engagement_key="ENG-2026-039",
    ),
]


def outbox_row(n: int, status: str, *, reason: str | None = None, attempts: int = 0, **extra) -> dict:
    moment = NOW - timedelta(hours=n)
    return {
        "dedupe_key": f"test:{status}:{n}",
        "channel": extra.pop("channel", "email"),
        "kind": extra.pop("kind", "survey_invite"),
        "recipient": extra.pop("recipient", f"person{n}@example.com"),
        "body_text": "Hello",
        "payload": {},
        "status": status,
        "reason": reason,
        "attempts": attempts,
        "not_before": moment,
        "created_at": moment,
        "updated_at": moment,
        **extra,
    }


def add_outbox(engine, rows: list[dict]) -> list[int]:
    with session_scope(engine) as session:
        return list(session.scalars(insert(OutboxRow).returning(OutboxRow.id), rows))


def seed_demo(engine) -> Demo:
    """The demo registry's engagements ended as of NOW, an answered survey, a check-in, three live
    red flags, failed/pending/sent messages and 26 weeks of NPS history with its weekly snapshot."""
    demo = Demo()
    mark_ended(engine, NOW.date(), NOW)
    answered = invite(engine, ENGAGEMENT, HOST_PERSON)
    invite(engine, ENGAGEMENT, "chidi.berg@example.com")
    record_response(engine, answered, GOOD_FORM, now=NOW - timedelta(days=1), key=KEY)
    with session_scope(engine) as session:
        session.add(
            CheckinRow(
                engagement_key=ENGAGEMENT,
                uid="checkin-eng-2026-031@auxeng.test",
                status="scheduled",
                end_date=date(2026, 11, 20),
                due_on=date(2027, 2, 22),
                invite_on=date(2027, 2, 15),
                created_at=NOW,
                updated_at=NOW,
            )
        )
        reconcile(session, FINDINGS, as_of=NOW.date(), now=NOW)
        demo.flags = dict(session.execute(select(FlagRow.rule, FlagRow.id)).all())
        seed_history(session, until=NPS_WEEK + timedelta(weeks=1))
        snapshot = compute_week(session, NPS_WEEK, timezone=UTC, min_responses=3)
        save_week(session, snapshot, run_id="test", now=NOW - timedelta(days=4))
    demo.failed = add_outbox(
        engine,
        [
            outbox_row(1, "failed", reason="slack: channel_not_found", channel="slack", recipient="C0GONE"),
            outbox_row(2, "failed", reason="550 5.1.1 <gone@example.com>: user unknown", attempts=5),
        ],
    )
    demo.pending = add_outbox(
        engine, [outbox_row(3, "pending", reason="SMTP server unreachable", attempts=1)]
    )
    demo.sent = add_outbox(engine, [outbox_row(4, "sent", reason=None, attempts=1)])
    return demo


# --- the app under uvicorn ------------------------------------------------------------------


@contextlib.contextmanager
def serve(app, *, lifespan: str = "off") -> Iterator[str]:
    """``app`` under a real uvicorn server on a free loopback port (in a thread); yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 60 s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@dataclass
class Dash:
    client: httpx.Client
    base_url: str
    engine: object
    demo: Demo
    manager: object
    url: str = "/auxeng/dashboard/"

    def token(self, username: str = "admin", **kwargs) -> str:
        return airflow_jwt(self.manager, username, **kwargs)

    def cookies(self, username: str | None = "admin", **others: str) -> dict[str, str]:
        """A ``Cookie`` header: the ``_token`` a UI login sets for ``username``, and ``others``."""
        pairs = {**others, **({"_token": self.token(username)} if username else {})}
        return {"Cookie": "; ".join(f"{name}={value}" for name, value in pairs.items())} if pairs else {}

    def get(self, path: str = "", *, username: str | None = "admin", **kwargs) -> httpx.Response:
        return self.client.get(self.url + path, headers=self.cookies(username), **kwargs)

    def csrf(self, username: str = "admin") -> str:
        page = self.get(username=username)
        assert page.status_code == 200, page.text
        return CSRF_INPUT.search(page.text).group(1)

    def post(self, path: str, data: dict, *, username: str | None = "admin") -> httpx.Response:
        return self.client.post(self.url + path, data=data, headers=self.cookies(username))

    def follow(self, redirect: httpx.Response, username: str = "admin") -> httpx.Response:
        """The page a POST redirected to, as the browser gets it (with the flash cookie it set)."""
        assert redirect.status_code == 303, redirect.text
        flash = {name: value for name, value in redirect.cookies.items()}
        return self.client.get(redirect.headers["location"], headers=self.cookies(username, **flash))


@pytest.fixture
def web_app():
    """The app the Airflow plugin mounts (public pages and the dashboard), for ``live`` to serve."""
    from auxeng.airflow_plugin import AuxEngPlugin

    [mounted] = AuxEngPlugin.fastapi_apps
    return mounted["app"]


@pytest.fixture
def dash(live, airflow_auth):  # noqa: F811
    """The pack's app (dashboard included) served by ``live``, with the demo data and Airflow's auth."""
    demo = seed_demo(live.engine)
    return Dash(
        client=live.client, base_url=live.base_url, engine=live.engine, demo=demo, manager=airflow_auth
    )


@pytest.fixture
def empty_dash(live, airflow_auth):  # noqa: F811
    """The dashboard on a store that holds only the demo registry: nothing ended, asked or computed."""
    return Dash(
        client=live.client, base_url=live.base_url, engine=live.engine, demo=Demo(), manager=airflow_auth
    )


@contextlib.contextmanager
def statements(engine) -> Iterator[list[str]]:
    """Every SQL statement ``engine`` runs inside the block."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
