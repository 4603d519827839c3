"""Assets the pack's DAGs produce and consume (URIs are part of the public contract)."""

from airflow.sdk import Asset

ENGAGEMENTS_ENDED = Asset(name="auxeng_engagements_ended", uri="auxeng://engagements/ended")
