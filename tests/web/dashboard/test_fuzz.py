"""A bounded, table-driven fuzz of the plugin's app (public pages and the dashboard) over HTTP, on
SQLite and PostgreSQL: a few hundred requests built from awkward values (huge and negative numbers,
impossible dates, bad encodings, tampered and foreign signed links, odd methods and bodies), with
and without an Airflow login. Nothing may answer 5xx, and no GET or HEAD may write to the store."""

from __future__ import annotations

import random
import re
from datetime import timedelta
from urllib.parse import quote

from auxeng.messaging import tokens
from tests.web.conftest import HOST_PERSON, KEY, NOW, invite
from tests.web.dashboard.conftest import statements

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|CREATE|DROP|ALTER)\b", re.I)
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
    "%F0%9F%92%A9",
    "..%2f..%2fetc%2fpasswd",
    "<script>alert(1)</script>",
    "2026-02-30",
    "2026-13-01",
    "0001-01-01",
    "9999-12-31",
    "a" * 3000,
    "9" * 4301,  # over Python's int-string limit
    " ",
    "null",
    "true",
]


def signed_links(dash) -> list[str]:
    """Path+query of real signed links (valid, for impossible ids, tampered), under ``/auxeng``."""
    public = f"{dash.base_url}/auxeng"
    invitation = invite(dash.engine, survey="checkin")
    later = NOW + timedelta(days=44)
    links = [
        tokens.survey_url(invitation, later, public_url=public, key=KEY),
        tokens.survey_url(invitation, later, score=7, public_url=public, key=KEY)
        + "&score=99999999999999999999",
        # Found by the Hypothesis fuzz (test_fuzz_properties.py): int() refuses over 4,300 digits.
        tokens.survey_url(invitation, later, public_url=public, key=KEY) + "?score=" + "9" * 5000,
        tokens.optout_url(HOST_PERSON, public_url=public, key=KEY, now=NOW),
        tokens.digest_optout_url(HOST_PERSON, public_url=public, key=KEY, now=NOW),
        tokens.flag_ack_url(
            dash.demo.flags["help_requests"], HOST_PERSON, public_url=public, key=KEY, now=NOW
        ),
        # Signed with the right key but naming rows that cannot exist.
        tokens.survey_url(99999999999999999999, later, public_url=public, key=KEY),
        tokens.flag_ack_url(99999999999999999999, HOST_PERSON, public_url=public, key=KEY, now=NOW),
        f"{public}/survey/{tokens.sign(tokens.SURVEY, '-5', later, key=KEY)}",
        f"{public}/flags/ack/{tokens.sign(tokens.FLAG_ACK, 'x:y:z', later, key=KEY)}",
        # Another key, another purpose.
        tokens.survey_url(invitation, later, public_url=public, key=b"another-key-another-key-0123456789"),
        f"{public}/survey/{tokens.sign(tokens.OPTOUT, HOST_PERSON, later, key=KEY)}",
    ]
    paths = [link.removeprefix(dash.base_url) for link in links]
    tampered = []
    for path in paths[:5]:
        head, token = path.rsplit("/", 1)
        token, _, _query = token.partition("?")
        for position in (0, len(token) // 2, len(token) - 1):
            flipped = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
            tampered.append(f"{head}/{flipped}")
        tampered.append(f"{head}/{token[:-7]}")
    return paths + tampered + [f"{path}/thanks" for path in paths if "/survey/" in path]


def requests(dash, rng: random.Random) -> list[tuple[str, str, dict, dict | bytes | None]]:
    """(method, path, headers, body) for the fuzz, drawn from the tables with a fixed seed."""
    login = {"admin": dash.cookies("admin"), "none": {}, "junk": {"Authorization": "Bearer a.b.c"}}
    csrf = dash.csrf()
    links = signed_links(dash)
    plans = []
    for link in links:
        plans += [("GET", link, {}, None), ("HEAD", link, {}, None)]
        if "/thanks" not in link:
            plans.append(("POST", link, {}, {"nps": rng.choice(AWKWARD), "note": rng.choice(AWKWARD)}))
            plans.append(("POST", link, {"Content-Type": "application/json"}, b'{"nps": 9}'))
            plans.append(
                ("POST", link, {"Content-Type": "application/x-www-form-urlencoded"}, b"%ff%fe=%00&&=")
            )
    for value in AWKWARD:
        quoted = quote(value, safe="%")
        for template in ("survey/{}", "survey/{}/thanks", "optout/{}", "digest/optout/{}", "flags/ack/{}"):
            plans.append((rng.choice(["GET", "HEAD"]), "/auxeng/" + template.format(quoted), {}, None))
        for who in ("admin", "none", "junk"):
            plans += [
                ("GET", f"/auxeng/dashboard/?page={quoted}", login[who], None),
                ("GET", f"/auxeng/dashboard/?outbox_page={quoted}&page=1", login[who], None),
                ("GET", f"/auxeng/dashboard/nps.png?week={quoted}", login[who], None),
                ("HEAD", f"/auxeng/dashboard/?page={quoted}", login[who], None),
                ("GET", f"/auxeng/dashboard/teams/{quoted}", login[who], None),
            ]
        plans += [
            ("POST", f"/auxeng/dashboard/flags/{quoted}/ack", login["admin"], {"csrf": csrf, "note": "x"}),
            (
                "POST",
                f"/auxeng/dashboard/outbox/{quoted}/retry",
                login["admin"],
                {"csrf": rng.choice(AWKWARD)},
            ),
            ("GET", f"/auxeng/dashboard/{quoted}", login[rng.choice(list(login))], None),
            ("DELETE", f"/auxeng/dashboard/flags/{quoted}/ack", login["admin"], None),
        ]
    return plans


def test_no_request_gets_a_5xx_and_no_get_writes(dash):
    rng = random.Random(20261127)
    plans = requests(dash, rng)
    assert len(plans) >= 300
    failures, writes = [], []
    for method, path, headers, body in plans:
        data, content = (body, None) if isinstance(body, dict) else (None, body)
        with statements(dash.engine) as seen:
            response = dash.client.request(method, path, headers=headers, data=data, content=content)
        if response.status_code >= 500:
            failures.append((method, path[:120], response.status_code, response.text[:200]))
        if method in ("GET", "HEAD"):
            writes += [(method, path[:120], sql[:80]) for sql in seen if WRITE.match(sql)]
    assert failures == []
    assert writes == []
