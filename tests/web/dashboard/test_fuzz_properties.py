"""A Hypothesis-generated fuzz of the pack's two web apps over HTTP, on SQLite and PostgreSQL: about
1,500 requests per database, on top of the table-driven fuzz (``test_fuzz.py``).

Requests are built from the apps' real routes, read from ``airflow_app().routes`` and
``public_app().routes`` (the plugin's app mounted at ``/auxeng``, the public one at ``/public``,
both under one uvicorn server): path parameters (signed links real, expired, tampered, foreign,
for the wrong purpose or naming rows that cannot exist; real and impossible row ids), the
routes' query parameters and stray ones, methods (the route's and others), headers (Airflow
logins by cookie and bearer token, real, expired, foreign and junk; flash cookies; odd content
types) and bodies (forms with real and bad CSRF tokens, one-click opt-outs, raw and oversized
bytes). Every response must be:

- not a 5xx;
- of the type its route promises (HTML pages; JSON for ``/health``, ``/openapi.json`` and
  FastAPI's own 404/405 outside the dashboard; the chart's PNG), with a body that is one;
- for GET and HEAD, without a single INSERT, UPDATE or DELETE in the store.

POSTs do write (answers, opt-outs, acknowledgements, retries): the site's state moves on during
the run, which is what a real site does; the properties hold in every state. The number of
requests sent is counted and asserted, and written, per database, to
``tests/artifacts/web_fuzz_summary.json`` (printed with ``-s``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, unquote, urlencode

import httpx
import jwt
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.requests import Request
from starlette.routing import Match, Mount

from auxeng.messaging import tokens
from auxeng.registry.sync import sync_registry_file
from auxeng.store.db import open_store, session_scope
from auxeng.store.models import SurveyInvitationRow
from auxeng.web import airflow_app, public_app
from auxeng.web.dashboard.queries import Flash
from auxeng.web.dashboard.routes import FLASH_COOKIE, _encode_flash, _is_dashboard
from tests.conftest import DEMO_REGISTRY, REPO, _airflow_conn_uri, _reset_postgres
from tests.web.conftest import (
    ANONYMOUS_ENGAGEMENT,
    ANONYMOUS_HOST_PERSON,
    AUXENG_PERSON,
    ENGAGEMENT,
    HOST_PERSON,
    KEY,
    KEY_TEXT,
    NOW,
    Clock,
    invite,
    web_clock,
)
from tests.web.dashboard.conftest import CSRF_INPUT, airflow_jwt, seed_demo, serve, statements

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.I)
MOUNTS = {"/auxeng": airflow_app, "/public": public_app}
REQUESTS_PER_DB = 1500  # about: examples x requests per example
MIN_REQUESTS_PER_DB = 1200
SUMMARY = REPO / "tests" / "artifacts" / "web_fuzz_summary.json"
FOREIGN_KEY = b"another-key-another-key-0123456789"
FOREIGN_JWT_SECRET = "not-airflow-s-secret-" + "x" * 50
TALLIES: dict[str, Counter] = {}  # database -> what this session's fuzz sent and got
DISTINCT: dict[str, set[str]] = {}  # database -> the distinct requests sent

# What each route promises to answer with (a new route must be added here to be fuzzed).
PROMISES = {
    "/openapi.json": "json",
    "/health": "json",
    "/survey/{token}": "html",
    "/survey/{token}/thanks": "html",
    "/optout/{token}": "html",
    "/digest/optout/{token}": "html",
    "/flags/ack/{token}": "html",
    "/dashboard/": "html",
    "/dashboard/nps.png": "png",
    "/dashboard/teams/{team_key}": "html",
    "/dashboard/flags/{flag_id}/ack": "html",
    "/dashboard/outbox/{message_id}/retry": "html",
}
MEDIA = {"html": "text/html", "json": "application/json", "png": "image/png", "plain": "text/plain"}
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

AWKWARD = [
    "",
    "0",
    "-1",
    "1",
    "2147483647",
    "2147483648",
    "9223372036854775808",
    "99999999999999999999",
    "1e3",
    "1.5",
    "abc",
    "１",
    "٣",
    "%00",
    "%ff",
    "%2F",
    "..%2f..%2fetc%2fpasswd",
    "<script>alert(1)</script>",
    "2026-02-30",
    "2026-13-01",
    "2026-11-16",
    "0001-01-01",
    "9999-12-31",
    "a" * 3000,
    "9" * 4301,  # over Python's int-string limit
    "٣" * 4400,
    " ",
    "null",
    "true",
    "\x00",
    "é",
    "😀",
]


# --- the site under test ------------------------------------------------------------------------


@dataclass
class Site:
    """The served apps, the store behind them, and what the fuzz draws from."""

    db: str
    client: httpx.Client
    engine: Any
    links: dict[str, list[str]]  # route template -> real tokens for it (valid or not)
    usable: dict[str, list[str]]  # route template or id name -> the tokens and ids that work
    ids: dict[str, list[str]]  # "flag_id" / "message_id" -> real ids
    logins: dict[str, dict[str, str]]  # name -> headers
    csrf: dict[str, str]  # name -> token

    @property
    def tally(self) -> Counter:
        return TALLIES.setdefault(self.db, Counter())


def _signed_tokens(engine, demo) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Tokens for every public route, by route template: all of them (real, expired, for rows that
    cannot exist, for the wrong purpose, with another key) and the usable ones."""
    later, earlier = NOW + timedelta(days=44), NOW - timedelta(days=1)
    with session_scope(engine) as session:  # seed_demo's two: HOST_PERSON's answered, chidi.berg's open
        answered, unanswered = session.scalars(
            select(SurveyInvitationRow.id)
            .where(SurveyInvitationRow.engagement_key == ENGAGEMENT)
            .order_by(SurveyInvitationRow.email)  # bea.zhang, chidi.berg
        ).all()
    closed = invite(engine, ENGAGEMENT, AUXENG_PERSON, survey="retro", closes_at=earlier)
    skipped = invite(engine, ENGAGEMENT, "arjun.yilmaz@example.com", status="skipped")
    checkin = invite(engine, ENGAGEMENT, HOST_PERSON, survey="checkin")
    anonymous = invite(engine, ANONYMOUS_ENGAGEMENT, ANONYMOUS_HOST_PERSON)
    invitations = [answered, unanswered, closed, skipped, checkin, anonymous]

    def sign(purpose: str, subject: str, expires=later, key=KEY) -> str:
        return tokens.sign(purpose, subject, expires, key=key)

    odd_subjects = [
        "-5",
        "0",
        "1e3",
        "１",
        "99999999999999999999",
        "2147483648",
        "x:y:z",
        "1:",
        ":a@b",
        "",
        "a" * 200,
    ]
    survey = [sign(tokens.SURVEY, str(i)) for i in invitations]
    survey += [sign(tokens.SURVEY, s) for s in odd_subjects]
    survey += [
        sign(tokens.SURVEY, str(answered), earlier),
        sign(tokens.SURVEY, str(answered), key=FOREIGN_KEY),
    ]
    survey += [sign(tokens.OPTOUT, HOST_PERSON), sign(tokens.FLAG_ACK, f"1:{HOST_PERSON}")]
    emails = [HOST_PERSON, "nobody@example.com", "", "x", "A@B.C", "a" * 250 + "@example.com"]
    optout = [sign(tokens.OPTOUT, email) for email in emails]
    digest = [sign(tokens.DIGEST_OPTOUT, email) for email in emails]
    for group in (optout, digest):
        group += [
            sign(tokens.OPTOUT, HOST_PERSON, earlier),
            sign(tokens.SURVEY, "1"),
            sign(tokens.OPTOUT, HOST_PERSON, key=FOREIGN_KEY),
        ]
    flag_ids = [*demo.flags.values(), 2147483647, 99999999999999999999, 0]
    flags = [sign(tokens.FLAG_ACK, f"{flag}:{HOST_PERSON}") for flag in flag_ids]
    flags += [sign(tokens.FLAG_ACK, s) for s in [*odd_subjects, "1:no-at-sign", "-1:a@b"]]
    flags += [sign(tokens.FLAG_ACK, f"{flag_ids[0]}:{HOST_PERSON}", earlier), sign(tokens.SURVEY, "1")]
    links = {
        "/survey/{token}": survey,
        "/survey/{token}/thanks": survey,
        "/optout/{token}": optout,
        "/digest/optout/{token}": digest,
        "/flags/ack/{token}": flags,
    }
    open_surveys = [survey[invitations.index(i)] for i in (answered, unanswered, checkin, anonymous)]
    usable = {
        "/survey/{token}": open_surveys,
        "/survey/{token}/thanks": open_surveys,
        "/optout/{token}": optout[:2],
        "/digest/optout/{token}": digest[:2],
        "/flags/ack/{token}": flags[: len(demo.flags)],
    }
    return links, usable


def _foreign_jwt() -> str:
    return jwt.encode({"sub": "admin", "exp": 4102444800}, FOREIGN_JWT_SECRET, algorithm="HS512")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory, airflow_auth):
    """Both apps under one uvicorn server, on a store with the demo registry and dashboard data."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'auxeng.db'}"
    else:
        url = request.getfixturevalue("postgres_database_url")
        _reset_postgres(url)
    engine = open_store(url)
    assert not sync_registry_file(engine, DEMO_REGISTRY, now=NOW - timedelta(days=30)).problems
    demo = seed_demo(engine)
    links, usable = _signed_tokens(engine, demo)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_AUXENG_DB", _airflow_conn_uri(url))
        patch.setenv("AUXENG_SECRET_KEY", KEY_TEXT)
        with (
            web_clock(Clock(NOW)),
            serve(ROOT) as base_url,
            httpx.Client(base_url=base_url, timeout=60) as client,
        ):
            admin, viewer = airflow_jwt(airflow_auth, "admin"), airflow_jwt(airflow_auth, "vera")
            expired = airflow_jwt(airflow_auth, "admin", seconds=-3600)
            logins = {
                "none": {},
                "admin cookie": {"Cookie": f"_token={admin}"},
                "viewer cookie": {"Cookie": f"_token={viewer}"},
                "admin bearer": {"Authorization": f"Bearer {admin}"},
                "expired cookie": {"Cookie": f"_token={expired}"},
                "foreign cookie": {"Cookie": f"_token={_foreign_jwt()}"},
                "junk bearer": {"Authorization": "Bearer a.b.c"},
                "empty bearer": {"Authorization": "Bearer"},
                "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="},
                "junk cookie": {"Cookie": "_token=%%%; other=1"},
            }
            csrf = {}
            for name in ("admin cookie", "viewer cookie"):
                page = client.get("/auxeng/dashboard/", headers=logins[name])
                assert page.status_code == 200, page.text
                csrf[name] = CSRF_INPUT.search(page.text).group(1)
            ids = {
                "flag_id": [str(i) for i in demo.flags.values()],
                "message_id": [str(i) for i in demo.failed + demo.pending + demo.sent],
                "team_key": ["fulfillment", "customer-care", "payments-core"],
            }
            yield Site(request.param, client, engine, links, usable | ids, ids, logins, csrf)


# --- routes and what they promise ---------------------------------------------------------------


def routes() -> list[tuple[str, Any]]:
    """(mount, route) of every route of both apps."""
    return [(mount, route) for mount, app in MOUNTS.items() for route in app().routes]


def test_every_route_has_a_promise():
    """A route added to the apps without saying what it answers with would go unchecked."""
    assert {route.path for _mount, route in routes()} == set(PROMISES)


ROOT = FastAPI()
for _mount, _app in MOUNTS.items():
    ROOT.mount(_mount, _app())


def resolve(method: str, path: str) -> tuple[str, Any, Match, bool]:
    """The mount, the route and the match (FULL; PARTIAL: wrong method; NONE) the server gives
    ``method path``, and whether the dashboard's error pages answer for it, found with the
    routes' own matching (Starlette's path regexes have their quirks: ``$`` before a newline)."""
    scope = {
        "type": "http",
        "path": unquote(path.split("?", 1)[0], errors="replace"),
        "root_path": "",
        "method": method,
    }
    for mount in ROOT.routes:
        match, child = mount.matches(scope) if isinstance(mount, Mount) else (Match.NONE, {})
        if match != Match.FULL:
            continue
        inner = {**scope, **child}
        on_dashboard = mount.path == "/auxeng" and _is_dashboard(Request(inner))
        partial = None
        for route in mount.routes:
            match, _child = route.matches(inner)
            if match == Match.FULL:
                return mount.path, route, match, on_dashboard
            if match == Match.PARTIAL and partial is None:
                partial = route
        return mount.path, partial, Match.PARTIAL if partial else Match.NONE, on_dashboard
    return "", None, Match.NONE, False


def allowed_media(method: str, path: str, status: int) -> set[str]:
    """The content types an answer of ``status`` to ``method path`` may have."""
    _mount, route, match, on_dashboard = resolve(method, path)
    if match != Match.FULL:
        return {"html"} if on_dashboard else {"json"}  # 404/405: the dashboard's pages, else FastAPI's
    promise = PROMISES[route.path]
    if promise == "png":
        return {"png"} if status == 200 else {"plain"} if status == 404 else {"html"}
    return {promise}


# --- strategies ---------------------------------------------------------------------------------


def tampered(tokens_: list[str]) -> st.SearchStrategy[str]:
    """One of ``tokens_`` changed a little: a character flipped, cut short, lengthened, its two
    parts swapped, re-spelled in standard base64."""

    def edit(choice: tuple[str, int, str, int]) -> str:
        token, at, char, how = choice
        at %= len(token)
        return [
            token[:at] + char + token[at + 1 :],
            token[: max(1, at)],
            token + char * (1 + at % 4),
            ".".join(reversed(token.split("."))),
            token.replace("-", "+").replace("_", "/"),
        ][how]

    return st.tuples(
        st.sampled_from(tokens_), st.integers(0, 600), st.sampled_from("AB_-.=0"), st.integers(0, 4)
    ).map(edit)


def as_segment(raw: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``raw`` values as path segments: percent-encoded, or with their %-sequences left as they are."""
    return st.tuples(raw, st.booleans()).map(lambda pair: quote(pair[0], safe="%" if pair[1] else ""))


def path_values(site: Site) -> dict[tuple[str, str], st.SearchStrategy[str]]:
    """(route template, parameter) -> what the fuzz puts there."""
    every_token = [token for group in site.links.values() for token in group]
    values = {}
    for _mount, route in routes():
        for name in re.findall(r"{(\w+)}", route.path):
            if name == "token":
                real = site.links[route.path]
                raw = st.one_of(
                    st.sampled_from(real),
                    st.sampled_from(real),
                    st.sampled_from(real),
                    tampered(real),
                    st.sampled_from(every_token),  # another route's
                    st.sampled_from(AWKWARD),
                    st.text(max_size=40),
                )
            else:
                real = site.ids[name]
                raw = st.one_of(
                    st.sampled_from(real),
                    st.sampled_from(real),
                    st.sampled_from(AWKWARD),
                    st.integers(-5, 2**40).map(str),
                )
            values[route.path, name] = as_segment(raw)
    return values


def query_strings(route: Any) -> st.SearchStrategy[str]:
    names = [param.name for param in route.dependant.query_params] if hasattr(route, "dependant") else []
    value = st.one_of(
        st.sampled_from(AWKWARD),
        st.integers(-(2**70), 2**70).map(str),
        st.dates().map(str),
        st.text(max_size=20),
    )
    pairs = st.lists(
        st.tuples(st.sampled_from([*names, "page", "x", "", "week", "score"]), value), max_size=4
    )
    return st.one_of(
        st.just(""),
        st.just(""),
        pairs.map(lambda items: "?" + urlencode(items) if items else ""),
        st.sampled_from(
            ["?", "?&&", "?page", "?page=%ff", "?week=%00", "?score=%F0%9F%92%A9", "?=", "?a=1&a=2"]
        ),
    )


GOOD_FORMS = [
    {
        "nps": "9",
        "went_well": "Pairing",
        "to_change": "",
        "business_goals": "yes",
        "technical_goals": "partly",
    },
    {"nps": "3", "business_goals": "no", "technical_goals": "no"},
    {"maintainability": "4", "help_needed": "no", "not_taken_over": ""},
    {"note": "Booked a pairing session"},
    {"note": ""},
    {"List-Unsubscribe": "One-Click"},
]


def forms(site: Site, login: str) -> st.SearchStrategy[dict[str, str]]:
    """A form: one the pages would send, or odd fields; with the login's CSRF token (mostly), another
    user's, a tampered, expired or foreign one, junk, or none."""
    real = [site.csrf[login]] * 4 if login in site.csrf else []
    csrf = st.one_of(
        st.sampled_from([*real, *site.csrf.values()]),
        tampered(list(site.csrf.values())),
        st.just(tokens.sign("dashboard_csrf", "admin", NOW - timedelta(hours=1), key=KEY)),
        st.just(tokens.sign("dashboard_csrf", "admin", NOW + timedelta(hours=1), key=FOREIGN_KEY)),
        st.sampled_from(AWKWARD),
    )
    answer = st.one_of(
        st.sampled_from(AWKWARD),
        st.sampled_from(["9", "0", "10", "yes", "no", "partly"]),
        st.text(max_size=30),
    )
    names = [
        "nps",
        "went_well",
        "to_change",
        "business_goals",
        "technical_goals",
        "note",
        "page",
        "outbox_page",
    ]
    names += ["maintainability", "help_needed", "x", ""]
    fields = st.one_of(
        st.sampled_from(GOOD_FORMS),
        st.sampled_from(GOOD_FORMS),
        st.dictionaries(st.sampled_from(names), answer, max_size=6),
    )
    return st.builds(
        lambda fields, token: {**fields, **({"csrf": token} if token is not None else {})},
        fields,
        st.one_of(csrf, csrf, csrf, st.none()),
    )


CONTENT_TYPES = [
    None,
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "application/json",
    "multipart/form-data",
    "multipart/form-data; boundary=xyz",
    "text/plain",
    "",
    "x" * 300,
]
RAW_BODIES = [
    b"",
    b"List-Unsubscribe=One-Click",
    b'--xyz\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--xyz--\r\n',
    b"%ff%fe=%00&&=",
    b'{"nps": 9}',
    b"nps=9&business_goals=yes&technical_goals=no",
    b"a=" + b"b" * 70_000,  # over the public pages' 64 KiB
    b"&".join(b"f%d=1" % n for n in range(150)),  # over the form's field limit
]


@dataclass(frozen=True)
class Plan:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str] | None = None
    content: bytes | None = None

    def __repr__(self) -> str:
        body = (
            f" form={self.form!r}"
            if self.form is not None
            else f" content={self.content[:80]!r}"
            if self.content
            else ""
        )
        return f"{self.method} {self.path[:300]} headers={self.headers!r}{body}"


def plans(site: Site) -> st.SearchStrategy[Plan]:
    """One request to a real route (or a path next to one): a third as the pages make them, a third
    with working path parameters and the rest fuzzed, a third fuzzed throughout."""
    templates = routes()

    login_names = ["admin cookie"] * 3 + ["none"] * 2 + list(site.logins)
    values = path_values(site)
    queries = {route.path: query_strings(route) for _mount, route in templates}
    form_for = {login: forms(site, login) for login in site.logins}
    sane_queries = {
        "/dashboard/": ["", "?page=2", "?outbox_page=2&page=1", "?page=999"],
        "/dashboard/nps.png": ["", "?week=2026-11-16", "?week=2026-11-09", "?week=2020-01-06"],
        "/survey/{token}": ["", "?score=0", "?score=9", "?score=10", "?score=99", "?score=" + "9" * 5000],
    }

    def usable_path(draw, mount: str, route: Any) -> str:
        path = route.path
        for name in re.findall(r"{(\w+)}", route.path):
            path = path.replace(
                f"{{{name}}}", draw(st.sampled_from(site.usable[route.path if name == "token" else name]))
            )
        return mount + path

    @st.composite
    def clean(draw) -> Plan:
        """A request as the pages make it: the route's method, a link or id that works, sane query
        values, the admin's login, a form the page would send with the admin's CSRF token."""
        mount, route = draw(st.sampled_from(templates))
        path = usable_path(draw, mount, route) + draw(st.sampled_from(sane_queries.get(route.path, [""])))
        method = draw(st.sampled_from(sorted(route.methods)))
        form = None
        if method == "POST":
            form = {**draw(st.sampled_from(GOOD_FORMS)), "csrf": site.csrf["admin cookie"]}
        return Plan(method, path, dict(site.logins["admin cookie"]), form)

    @st.composite
    def fuzzed(draw, wild: bool) -> Plan:
        """A request with fuzzed query, method, login, headers and body; with ``wild`` fuzzed
        path parameters (and a path next to the route's) too."""
        mount, route = draw(st.sampled_from(templates))
        if wild:
            path = route.path
            for name in re.findall(r"{(\w+)}", route.path):
                path = path.replace(f"{{{name}}}", draw(values[route.path, name]))
            path = mount + path + draw(st.sampled_from(["", "", "", "", "", "", "/", "/thanks", "/x", "//"]))
        else:
            path = usable_path(draw, mount, route)
        path += draw(queries[route.path])
        method = draw(st.sampled_from([*sorted(route.methods) * 6, *METHODS]))
        login = draw(st.sampled_from(login_names))
        headers = dict(site.logins[login])
        if draw(st.integers(0, 4)) == 0:
            flash = draw(
                st.sampled_from([_encode_flash(Flash("ok", "Done <b>x</b>")), "%%%", "a" * 2100, "e30"])
            )
            headers["Cookie"] = "; ".join(filter(None, [headers.get("Cookie"), f"{FLASH_COOKIE}={flash}"]))
        if draw(st.integers(0, 5)) == 0:
            headers["Accept"] = draw(
                st.sampled_from(["application/json", "*/*", "text/html;q=0", "image/png"])
            )
        form = content = None
        if method in ("POST", "PUT", "PATCH", "DELETE") and draw(st.integers(0, 5)) > 0:
            if draw(st.integers(0, 2)) > 0:
                form = draw(form_for[login])
            else:
                content = draw(st.one_of(st.sampled_from(RAW_BODIES), st.binary(max_size=300)))
                content_type = draw(st.sampled_from(CONTENT_TYPES))
                if content_type is not None:
                    headers["Content-Type"] = content_type
        return Plan(method, path, headers, form, content)

    return st.one_of(clean(), fuzzed(wild=False), fuzzed(wild=True))


# --- the fuzz -----------------------------------------------------------------------------------


def send(site: Site, plan: Plan) -> None:
    """Send ``plan`` and check the answer; counts it in ``site.tally``."""
    with statements(site.engine) as seen:
        response = site.client.request(
            plan.method, plan.path, headers=plan.headers, data=plan.form, content=plan.content
        )
    site.tally["requests"] += 1
    site.tally[f"{response.status_code}"] += 1
    DISTINCT.setdefault(site.db, set()).add(repr(plan))
    note(f"{plan!r} -> {response.status_code}")
    if response.status_code >= 500:
        site.tally["5xx"] += 1
    assert response.status_code < 500, (plan, response.status_code, response.text[:500])
    if plan.method in ("GET", "HEAD"):
        writes = [sql[:120] for sql in seen if WRITE.match(sql)]
        site.tally["get_head_writes"] += len(writes)
        assert writes == [], (plan, writes)
    if 300 <= response.status_code < 400:
        assert response.headers.get("location"), plan
        return
    media = response.headers.get("content-type", "").split(";")[0].strip()
    allowed = {MEDIA[kind] for kind in allowed_media(plan.method, plan.path, response.status_code)}
    assert media in allowed, (plan, response.status_code, media, allowed, response.text[:300])
    if plan.method == "HEAD":
        assert response.content == b""
        return
    if media == "application/json":
        json.loads(response.content)
    elif media == "text/html":
        assert re.search(r"<html\b", response.text, re.I), (plan, response.text[:300])
    elif media == "image/png":
        assert response.content.startswith(b"\x89PNG\r\n\x1a\n")


def write_summary() -> dict:
    """This session's counts per database and in total, written to :data:`SUMMARY`."""
    summary: dict[str, Any] = {
        db: dict(sorted(tally.items())) | {"distinct": len(DISTINCT.get(db, ()))}
        for db, tally in TALLIES.items()
    }
    summary["total_requests"] = sum(tally["requests"] for tally in TALLIES.values())
    summary["total_5xx"] = sum(tally["5xx"] for tally in TALLIES.values())
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# GET and HEAD routes share their endpoint, so /openapi.json repeats their operation ids.
@pytest.mark.filterwarnings("ignore:Duplicate Operation ID:UserWarning")
def test_generated_requests_get_no_5xx_no_writes_from_reads_and_the_promised_type(site):
    before = site.tally["requests"]

    @settings(
        max_examples=REQUESTS_PER_DB,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(plans(site))
    def fuzz(plan: Plan) -> None:
        send(site, plan)

    try:
        fuzz()
    finally:
        summary = write_summary()
        print(
            f"\nweb fuzz ({site.db}): {site.tally['requests'] - before} requests, {site.tally['5xx']} 5xx, "
            f"{site.tally['get_head_writes']} writes from GET/HEAD; all databases so far: "
            f"{summary['total_requests']} requests ({SUMMARY.relative_to(REPO)})"
        )
    assert site.tally["requests"] - before >= MIN_REQUESTS_PER_DB
