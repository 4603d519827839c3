"""
### Load the engagement registry into the store

Validates the registry YAML (`AUXENG_REGISTRY_PATH`, default
`include/registry/engagements.yaml`) and loads it into the engagement store
(connection `auxeng_db`, default SQLite in `AIRFLOW_HOME`).

**When:** as soon as the file's content changes (a watcher in the triggerer
checks it every 30 s), hourly to be sure, and on demand (*Trigger DAG*). An
unchanged file is detected by its SHA-256 and costs nothing; set the `force`
param to reload anyway.

**What it writes:** teams, people and engagements. Every change to an
engagement is kept as a revision (an end date moved stays visible). An
engagement removed from the file is marked removed, never deleted: its
surveys and responses stay.

**When it fails:** the file has problems. Valid rows were saved anyway; the
task log lists *every* problem with its engagement key and field
(e.g. `ENG-2026-014 (engagements[3]) end: 2026-08-01 is before start 2026-08-03`).
Fix the file and trigger the DAG again: it is not retried automatically. A
file that is empty or unreadable as a whole changes nothing in the store.

**When it refuses a mass removal:** a load that would remove more than 20% of
the live engagements, and at least 3 (`AUXENG_REGISTRY_REMOVAL_GUARD_SHARE`,
`AUXENG_REGISTRY_REMOVAL_GUARD_MIN`), fails with a report (how many of how many,
the first keys) and changes nothing: an emptied `engagements:` list or rows
without a readable key would otherwise withdraw invitations and cancel check-ins
of every engagement they drop. If the removals are intended, *Trigger DAG*
with `allow_mass_removal` switched on; otherwise fix the file.

**Re-running** is always safe: loading the same file twice changes nothing.
"""

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from auxeng.dagkit.assets import registry_file_asset
from auxeng.dagkit.defaults import DEFAULT_ARGS, START_DATE, TAGS
from auxeng.dagkit.params import param

# auxeng.registry.tasks (YAML, store models) is imported inside the task, never while parsing.


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 * * * *", timezone="UTC"), assets=registry_file_asset()
    ),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=TAGS,
    doc_md=__doc__,
    params={
        "force": param(False, type="boolean", description="Reload even if the file is unchanged."),
        "allow_mass_removal": param(
            False,
            type="boolean",
            description="Confirm a load that removes more engagements than the mass-removal guard "
            "allows (more than 20% of the live ones and at least 3, by default). Without it such a "
            "load fails with its report and changes nothing. Applies to this run only.",
        ),
    },
)
def auxeng_sync_registry():
    @task(multiple_outputs=False)
    def load_registry(params: dict | None = None) -> dict:
        """Validates the registry file and loads it. If it fails, fix the file (the watcher starts the next
        run): the log lists every problem with its line (valid rows were saved), or reports a refused mass
        removal (nothing was saved; trigger with allow_mass_removal on if the removals are intended).
        """
        from auxeng.registry import tasks as registry_tasks

        params = params or {}
        return registry_tasks.load_registry(
            force=bool(params.get("force")), allow_mass_removal=bool(params.get("allow_mass_removal"))
        )

    load_registry()


auxeng_sync_registry()
