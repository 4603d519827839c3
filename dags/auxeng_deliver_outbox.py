"""
### Deliver the outbox

Sends every due message of the pack's outbox (survey invitations, reminders,
alerts, and later check-ins and digests) by email (`smtp_default`) and Slack
(`slack_api_default`, or the `slack_default` webhook for channel posts).

**When:** every 15 minutes. Messages to people wait in the outbox until their
working hours (09:00-17:00 on a weekday, their time zone) and go out on the
first run inside that window.

**Exactly once:** each row is claimed with a lease (`SELECT … FOR UPDATE SKIP
LOCKED` on PostgreSQL), sent, and marked sent right away. A retry or a re-run
never re-sends a sent message. Permanent errors (unknown Slack user, refused
address) mark that message *failed* with the reason; transient ones (SMTP
down, Slack 5xx) leave it pending and fail the task so Airflow retries.

**Missing connections** never drop messages: they stay pending and the task
says which connection to create. Local runs (`make run`, `make demo`) set
`AUXENG_DEV_OUTBOX`: messages are then written as `.eml` / `.json` files under
`$AIRFLOW_HOME/dev-outbox/`.

**Params:** `dry_run` (default false): report what is due, send nothing.
"""

from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task

from auxeng import survey_tasks
from auxeng.defaults import DEFAULT_ARGS, START_DATE, TAGS
from auxeng.runtime import run_moment


@dag(
    schedule=CronTriggerTimetable("*/15 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "delivery"],
    params={"dry_run": Param(False, type="boolean", description="Report what is due: send nothing.")},
    doc_md=__doc__,
)
def auxeng_deliver_outbox():
    @task(multiple_outputs=False)
    def deliver_outbox() -> dict:
        context = get_current_context()
        return survey_tasks.deliver_outbox(run_moment(context), dry_run=context["params"]["dry_run"])

    deliver_outbox()


auxeng_deliver_outbox()
