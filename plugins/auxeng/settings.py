"""Settings read from the environment (``AUXENG_*``), never at import time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PACKAGE_DIR = Path(__file__).resolve().parent


class SettingsError(ValueError):
    """An ``AUXENG_*`` setting has a value the pack cannot use."""


def include_dir() -> Path:
    """The pack's ``include/`` folder (templates, demo registry), next to ``plugins/``."""
    override = os.environ.get("AUXENG_INCLUDE_DIR")
    return Path(override) if override else PACKAGE_DIR.parents[1] / "include"


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


@dataclass(frozen=True)
class Settings:
    """The pack's settings; see the README's "Settings" table."""

    registry_path: Path
    timezone: ZoneInfo
    db_conn_id: str


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    tz_name = env.get("AUXENG_TIMEZONE", "UTC")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise SettingsError(f"AUXENG_TIMEZONE={tz_name!r} is not an IANA time zone") from exc
    registry = env.get("AUXENG_REGISTRY_PATH") or str(include_dir() / "registry" / "engagements.yaml")
    return Settings(
        registry_path=Path(registry),
        timezone=tz,
        db_conn_id=env.get("AUXENG_DB_CONN_ID", "auxeng_db"),
    )
