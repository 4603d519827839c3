"""The stand-alone public app (``uvicorn auxeng.web:app``): only the pages behind signed links.
The dashboard is not part of it (404), so no credential a client sends can reach Airflow's auth
manager, which only the api-server initialises."""

from __future__ import annotations

import pytest


def test_the_public_app_has_no_dashboard_and_the_plugin_app_has_both():
    from auxeng.web import airflow_app, app, public_app

    public = {route.path for route in app.routes}
    assert app is public_app()
    assert {"/health", "/survey/{token}", "/survey/{token}/thanks"} <= public
    assert not any(path.startswith("/dashboard") for path in public)
    plugin = {route.path for route in airflow_app().routes}
    assert public < plugin and "/dashboard/" in plugin and "/dashboard/flags/{flag_id}/ack" in plugin


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"},
        {"Cookie": "_token=anything"},
    ],
)
def test_the_stand_alone_public_app_answers_404_for_the_dashboard_whatever_the_credential(live, headers):
    for method, path in [
        ("GET", "/auxeng/dashboard/"),
        ("HEAD", "/auxeng/dashboard/"),
        ("GET", "/auxeng/dashboard/nps.png?week=2026-02-30"),
        ("POST", "/auxeng/dashboard/flags/1/ack"),
        ("POST", "/auxeng/dashboard/outbox/99999999999999999999/retry"),
    ]:
        response = live.client.request(
            method, path, headers=headers, data={"csrf": "x"} if method == "POST" else None
        )
        assert response.status_code == 404, (method, path, response.text)
    assert live.client.get("/auxeng/health").status_code == 200


def test_signed_links_naming_ids_no_row_can_have_get_404_not_a_database_error(live):
    from datetime import timedelta

    from auxeng.messaging import tokens
    from tests.web.conftest import KEY, NOW

    for huge in (2**31, 99999999999999999999):
        survey = tokens.survey_url(huge, NOW + timedelta(days=44), public_url=live.public_url, key=KEY)
        for response in (live.client.get(survey), live.client.get(f"{survey}/thanks")):
            assert response.status_code == 404 and "Survey not found" in response.text
        assert live.client.post(survey, data={"nps": "9"}).status_code == 404
        flag = tokens.flag_ack_url(
            huge, "dana.ruiz@example.com", public_url=live.public_url, key=KEY, now=NOW
        )
        for response in (live.client.get(flag), live.client.post(flag, data={"note": "on it"})):
            assert response.status_code == 404 and "No such red flag" in response.text
