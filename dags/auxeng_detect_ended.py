"""
### Detect engagements that just ended

Marks every active engagement whose last day (`end`) is before the run's date
as **ended**, exactly once, and announces them on the asset
`auxeng://engagements/ended` so that follow-up DAGs start.

**When:** daily at 05:30 in the program's time zone (`AUXENG_TIMEZONE`).
The run's date is its logical date, never the wall clock: a backfill or
`airflow dags test auxeng_detect_ended 2026-09-26` behaves as that day would.

**What it writes:** `ended_at` on each engagement, plus a revision entry.
Cancelled and removed engagements never count. If an ended engagement's end
date is later moved to the run's date or after, it is reopened and will end
again on its new date.

**Asset event:** `extra = {"as_of": "YYYY-MM-DD", "engagements": [{key, title,
host_team, end}], "reopened": [...]}`. No event when nothing newly ended
(`announce_ended` is then *skipped*, which is normal).

**Re-running / backfilling** is safe and idempotent: an engagement already
marked is never marked or announced again. Follow-up DAGs also run daily
from the store, so a lost event delays nothing by more than a day.
"""

from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from auxeng.dagkit.assets import ENGAGEMENTS_ENDED
from auxeng.dagkit.context import run_date
from auxeng.dagkit.defaults import DEFAULT_ARGS, START_DATE, TAGS, daily_at

# auxeng.registry.tasks (store models) is imported inside the task, never while parsing.


@dag(
    schedule=daily_at(5, 30),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=TAGS,
    doc_md=__doc__,
)
def auxeng_detect_ended():
    @task(multiple_outputs=False)
    def mark_ended() -> dict:
        """Marks engagements whose last day has passed as ended, once each. If it fails, check the store
        connection (AIRFLOW_CONN_AUXENG_DB); re-running is safe.
        """
        from auxeng.registry import tasks as registry_tasks

        return registry_tasks.detect_ended(run_date(get_current_context()))

    @task(outlets=[ENGAGEMENTS_ENDED])
    def announce_ended(detected: dict) -> int:
        """Announces the newly ended engagements on auxeng://engagements/ended (skipped when none)."""
        if not detected["engagements"]:
            raise AirflowSkipException(f"No engagement newly ended as of {detected['as_of']}")
        get_current_context()["outlet_events"][ENGAGEMENTS_ENDED].extra = detected
        return len(detected["engagements"])

    announce_ended(mark_ended())


auxeng_detect_ended()
