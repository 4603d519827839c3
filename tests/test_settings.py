"""``AUXENG_*`` settings: defaults, overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from auxeng.redflags.rules import Thresholds
from auxeng.settings import SettingsError, include_dir, load_settings


def test_defaults_point_at_the_demo_registry_and_utc():
    settings = load_settings({})
    assert settings.registry_path == include_dir() / "registry" / "engagements.yaml"
    assert settings.registry_path.is_file()
    assert str(settings.timezone) == "UTC"
    assert settings.db_conn_id == "auxeng_db"


def test_overrides():
    settings = load_settings(
        {
            "AUXENG_REGISTRY_PATH": "/srv/reg.yaml",
            "AUXENG_TIMEZONE": "Europe/Berlin",
            "AUXENG_DB_CONN_ID": "x",
        }
    )
    assert (settings.registry_path, str(settings.timezone), settings.db_conn_id) == (
        Path("/srv/reg.yaml"),
        "Europe/Berlin",
        "x",
    )


@pytest.mark.parametrize("value", ["Mars/Olympus", "Europe", ""])
def test_bad_timezone_names_the_setting(value):
    with pytest.raises(SettingsError, match="AUXENG_TIMEZONE"):
        load_settings({"AUXENG_TIMEZONE": value})


def test_red_flag_thresholds_have_documented_defaults_and_overrides():
    settings = load_settings({})
    assert (
        settings.help_requests_csv,
        settings.help_window_days,
        settings.help_requests_min,
        settings.help_requests_critical,
        settings.flag_comfort_max,
        settings.flag_memory_days,
        settings.repeat_months,
        settings.load_max_engagements,
        settings.load_gap_days,
        settings.detractor_cluster_min,
        settings.flag_reannounce_days,
        settings.flag_copy_host_manager,
    ) == (None, 30, 2, 5, 2, 90, 6, 2, 14, 2, 7, frozenset({"help_requests", "checkin"}))
    changed = load_settings(
        {
            "AUXENG_HELP_REQUESTS_CSV": "/drop/asks",
            "AUXENG_LOAD_GAP_DAYS": "0",
            "AUXENG_FLAG_COPY_HOST_MANAGER": "help_requests, detractor_cluster",
        }
    )
    assert changed.help_requests_csv == Path("/drop/asks") and changed.load_gap_days == 0
    assert changed.flag_copy_host_manager == frozenset({"help_requests", "detractor_cluster"})
    assert load_settings({"AUXENG_FLAG_COPY_HOST_MANAGER": "none"}).flag_copy_host_manager == frozenset()
    assert (
        settings.flag_independence_below,
        settings.flag_independence_critical,
        settings.flag_independence_drop,
    ) == (50, 30, 15)
    low = load_settings({"AUXENG_FLAG_INDEPENDENCE_BELOW": "40", "AUXENG_FLAG_INDEPENDENCE_CRITICAL": "0"})
    assert Thresholds.from_settings(low) == Thresholds(independence_below=40, independence_critical=0)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUXENG_HELP_REQUESTS_MIN": "0"}, "AUXENG_HELP_REQUESTS_MIN='0' must be at least 1"),
        ({"AUXENG_REPEAT_MONTHS": "six"}, "AUXENG_REPEAT_MONTHS='six' is not a whole number"),
        (
            {"AUXENG_HELP_REQUESTS_MIN": "4", "AUXENG_HELP_REQUESTS_CRITICAL": "3"},
            "AUXENG_HELP_REQUESTS_CRITICAL=3 must be at least AUXENG_HELP_REQUESTS_MIN=4",
        ),
        ({"AUXENG_FLAG_COPY_HOST_MANAGER": "engineer_load"}, "unknown rule(s) engineer_load"),
        (
            {"AUXENG_FLAG_INDEPENDENCE_CRITICAL": "60"},
            "AUXENG_FLAG_INDEPENDENCE_CRITICAL=60 must be at most AUXENG_FLAG_INDEPENDENCE_BELOW=50",
        ),
        ({"AUXENG_FLAG_INDEPENDENCE_BELOW": "101"}, "AUXENG_FLAG_INDEPENDENCE_BELOW=101, itself at most 100"),
        ({"AUXENG_FLAG_INDEPENDENCE_DROP": "0"}, "AUXENG_FLAG_INDEPENDENCE_DROP='0' must be at least 1"),
    ],
)
def test_bad_red_flag_settings_name_the_variable(env, message):
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert message in str(caught.value)


def test_registry_removal_guard_defaults_and_overrides():
    settings = load_settings({})
    assert (settings.registry_removal_guard_share, settings.registry_removal_guard_min) == (0.2, 3)
    changed = load_settings(
        {"AUXENG_REGISTRY_REMOVAL_GUARD_SHARE": " 0.5 ", "AUXENG_REGISTRY_REMOVAL_GUARD_MIN": "1"}
    )
    assert (changed.registry_removal_guard_share, changed.registry_removal_guard_min) == (0.5, 1)
    assert load_settings({"AUXENG_REGISTRY_REMOVAL_GUARD_SHARE": ""}).registry_removal_guard_share == 0.2


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"AUXENG_REGISTRY_REMOVAL_GUARD_SHARE": "20%"},
            "AUXENG_REGISTRY_REMOVAL_GUARD_SHARE='20%' is not a number (a share between 0 and 1, e.g. 0.2)",
        ),
        (
            {"AUXENG_REGISTRY_REMOVAL_GUARD_SHARE": "20"},
            "AUXENG_REGISTRY_REMOVAL_GUARD_SHARE='20' must be a share between 0 and 1, e.g. 0.2",
        ),
        ({"AUXENG_REGISTRY_REMOVAL_GUARD_SHARE": "nan"}, "must be a share between 0 and 1"),
        (
            {"AUXENG_REGISTRY_REMOVAL_GUARD_MIN": "0"},
            "AUXENG_REGISTRY_REMOVAL_GUARD_MIN='0' must be at least 1",
        ),
    ],
)
def test_bad_registry_removal_guard_settings_name_the_variable(env, message):
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert message in str(caught.value)


def test_process_settings_are_built_once_and_follow_environment_changes(monkeypatch, tmp_path):
    monkeypatch.setenv("AUXENG_TIMEZONE", "Europe/Berlin")
    monkeypatch.delenv("AUXENG_REGISTRY_PATH", raising=False)
    first = load_settings()
    assert load_settings() is first  # DAG files call it on every parse: built once
    monkeypatch.setenv("AUXENG_TIMEZONE", "Asia/Tokyo")
    assert str(load_settings().timezone) == "Asia/Tokyo"
    monkeypatch.setenv("AUXENG_INCLUDE_DIR", str(tmp_path))  # read by include_dir, not by a field's own name
    assert load_settings().registry_path == tmp_path / "registry" / "engagements.yaml"
    monkeypatch.setenv("AUXENG_OUTBOX_LEASE_SECONDS", "60")
    assert load_settings().outbox_lease_seconds == 60
    monkeypatch.setenv("AUXENG_TIMEZONE", "Europe/Berlin")
    monkeypatch.delenv("AUXENG_INCLUDE_DIR")
    monkeypatch.delenv("AUXENG_OUTBOX_LEASE_SECONDS")
    assert load_settings() == first


def test_a_bad_environment_value_fails_every_time_until_fixed(monkeypatch):
    monkeypatch.setenv("AUXENG_SURVEY_WINDOW_DAYS", "0")
    for _ in range(2):
        with pytest.raises(SettingsError, match="AUXENG_SURVEY_WINDOW_DAYS"):
            load_settings()
    monkeypatch.setenv("AUXENG_SURVEY_WINDOW_DAYS", "5")
    assert load_settings().survey_window_days == 5


def test_an_explicit_mapping_is_never_served_from_the_process_cache(monkeypatch):
    monkeypatch.setenv("AUXENG_TIMEZONE", "Asia/Tokyo")
    assert str(load_settings().timezone) == "Asia/Tokyo"
    assert str(load_settings({}).timezone) == "UTC"
    assert str(load_settings({"AUXENG_TIMEZONE": "Europe/Paris"}).timezone) == "Europe/Paris"


def test_independence_settings_defaults_and_overrides():
    settings = load_settings({})
    assert settings.independence_weights == ()
    assert (settings.independence_threshold, settings.independence_window_weeks) == (70.0, 52)
    changed = load_settings(
        {
            "AUXENG_INDEPENDENCE_WEIGHTS": " maintainability = 30, help_asks=0 ",
            "AUXENG_INDEPENDENCE_THRESHOLD": "65.5",
            "AUXENG_INDEPENDENCE_WINDOW_WEEKS": "26",
        }
    )
    assert changed.independence_weights == (("maintainability", 30.0), ("help_asks", 0.0))
    assert (changed.independence_threshold, changed.independence_window_weeks) == (65.5, 26)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"AUXENG_INDEPENDENCE_WEIGHTS": "maintainability=25,comfort=10"},
            "AUXENG_INDEPENDENCE_WEIGHTS: 'comfort=10' is not component=weight",
        ),
        ({"AUXENG_INDEPENDENCE_WEIGHTS": "help_asks"}, "AUXENG_INDEPENDENCE_WEIGHTS: 'help_asks' is not"),
        (
            {"AUXENG_INDEPENDENCE_WEIGHTS": "help_asks=lots"},
            "AUXENG_INDEPENDENCE_WEIGHTS: 'help_asks=lots': the weight is not a number",
        ),
        (
            {"AUXENG_INDEPENDENCE_WEIGHTS": "help_asks=-1"},
            "AUXENG_INDEPENDENCE_WEIGHTS: 'help_asks=-1': a weight is a number of at least 0",
        ),
        ({"AUXENG_INDEPENDENCE_WEIGHTS": "help_asks=inf"}, "'help_asks=inf': a weight is a number"),
        (
            {"AUXENG_INDEPENDENCE_WEIGHTS": "help_asks=1,help_asks=2"},
            "AUXENG_INDEPENDENCE_WEIGHTS: 'help_asks' is given twice",
        ),
        (
            {
                "AUXENG_INDEPENDENCE_WEIGHTS": "maintainability=0,help_needed=0,help_asks=0,repeat_engagement=0,"
                "nps_change=0,goals_business=0,goals_technical=0"
            },
            "AUXENG_INDEPENDENCE_WEIGHTS: at least one weight must be above 0",
        ),
        ({"AUXENG_INDEPENDENCE_THRESHOLD": "high"}, "AUXENG_INDEPENDENCE_THRESHOLD='high' is not a number"),
        ({"AUXENG_INDEPENDENCE_THRESHOLD": "101"}, "AUXENG_INDEPENDENCE_THRESHOLD='101' must be a score"),
        (
            {"AUXENG_INDEPENDENCE_WINDOW_WEEKS": "0"},
            "AUXENG_INDEPENDENCE_WINDOW_WEEKS='0' must be at least 1",
        ),
    ],
)
def test_bad_independence_settings_name_the_variable(env, message):
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert message in str(caught.value)
