"""``AUXENG_*`` settings: defaults, overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

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
