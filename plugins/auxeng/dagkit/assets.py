"""Assets the pack's DAGs produce and consume (URIs are part of the public contract)."""

from __future__ import annotations

from airflow.sdk import Asset, AssetWatcher

from auxeng.dagkit.triggers import FileContentChangedTrigger
from auxeng.settings import load_settings

ENGAGEMENTS_ENDED = Asset(name="auxeng_engagements_ended", uri="auxeng://engagements/ended")


def registry_file_asset() -> Asset:
    """The registry file, updated by a triggerer watcher whenever its content changes."""
    path = str(load_settings().registry_path.resolve())
    watcher = AssetWatcher(name="auxeng_registry_file_watcher", trigger=FileContentChangedTrigger(path=path))
    return Asset(name="auxeng_registry_file", uri="auxeng://registry/file", watchers=[watcher])


# Announced by ``auxeng_weekly_nps`` for each computed week once its NPS and independence snapshots
# are both stored (extra: ``{"week": "YYYY-MM-DD"}``).
NPS_WEEKLY = Asset(name="auxeng_nps_weekly", uri="auxeng://nps/weekly")
