"""
### Dependency red flags and manager alerts

Daily at 09:00 in the program's time zone (`AUXENG_TIMEZONE`):

1. `read_help_channels`: reads the new messages of every host team's Slack help channel
   (`help_channel` in the registry) with `conversations.history` through the Slack API
   connection, page by page from where the last read stopped (a restart resumes, nothing
   is counted twice). Messages by host-team people count as help requests; bot messages,
   thread replies and posts by the platform team do not.
2. `import_help_requests`: imports the CSV drop file(s) (`AUXENG_HELP_REQUESTS_CSV`:
   team, date, summary, link); bad rows are logged with file and line and skipped.
3. `evaluate_flags`: runs the rules (help requests after the end, check-in answers,
   repeat engagements, engineer load, detractor clusters; docs/red-flags.md, "The rules",
   lists every threshold) and keeps **one live flag per rule and subject**: new findings
   open a flag, later runs update its evidence or escalate it, and a flag whose condition
   cleared is resolved.
4. `queue_flag_alerts`: emails and Slack-DMs the program managers about new flags and
   flags whose severity rose; a still-open flag again at most every 7 days
   (`AUXENG_FLAG_REANNOUNCE_DAYS`). The host team's manager is copied on help-request and
   check-in flags (`AUXENG_FLAG_COPY_HOST_MANAGER`). Each alert links to a page where the
   manager acknowledges the flag, saying why.
5. `deliver_outbox`: sends the alerts (people only in their working hours; the rest goes
   out with `auxeng_deliver_outbox`).

**Params:** `dry_run` (default false): read no Slack, change and send nothing, report.

**Re-running** the same day is safe: flags are reconciled, not added, and every alert has
a dedupe key. **If it fails:** `read_help_channels` fails naming each channel it could not
read to the end (`channel_not_found`, `not_in_channel`: invite the bot; `invalid_auth`:
fix the Slack API connection); the others are read, the flags are still evaluated from
what is stored, and the next run resumes the channel where it stopped. A missing Slack
API connection only logs a warning. `import_help_requests` logs bad CSV rows with file
and line and imports the rest. `deliver_outbox` fails when alerts could not go out (they
stay pending and the retry sends them).
"""

from airflow.sdk import dag, get_current_context, task

from auxeng.dagkit.context import run_date, run_moment
from auxeng.dagkit.defaults import DEFAULT_ARGS, START_DATE, TAGS, daily_at
from auxeng.dagkit.params import param
from auxeng.vocabulary import MessageKind

# The task modules (store models, Slack SDK, email) are imported inside the tasks, never while parsing.


@dag(
    schedule=daily_at(9),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "red-flags"],
    params={"dry_run": param(False, type="boolean", description="Read, change and send nothing; report.")},
    doc_md=__doc__,
)
def auxeng_dependency_alerts():
    @task(multiple_outputs=False)
    def read_help_channels() -> dict:
        """Reads new messages of the host teams' Slack help channels. If it fails, the log names each channel
        not read to the end (invite the bot, or fix the Slack API connection); the next run resumes it.
        """
        from auxeng.redflags import tasks as flag_tasks

        context = get_current_context()
        return flag_tasks.read_help_channels(run_moment(context), dry_run=context["params"]["dry_run"])

    @task(multiple_outputs=False)
    def import_help_requests() -> dict:
        """Imports the CSV drop of help requests. Bad rows are logged with file and line and skipped; fix the
        file and the next run imports them.
        """
        from auxeng.redflags import tasks as flag_tasks

        context = get_current_context()
        return flag_tasks.import_help_requests(run_moment(context), dry_run=context["params"]["dry_run"])

    # Flags are evaluated even when a help channel could not be read (that task fails, and ops hear).
    @task(multiple_outputs=False, trigger_rule="all_done")
    def evaluate_flags() -> dict:
        """Runs the red-flag rules and opens, updates or resolves flags. Safe to clear and re-run."""
        from auxeng.redflags import tasks as flag_tasks

        context = get_current_context()
        return flag_tasks.evaluate_flags(
            run_date(context), run_moment(context), dry_run=context["params"]["dry_run"]
        )

    @task(multiple_outputs=False)
    def queue_flag_alerts() -> dict:
        """Queues the managers' alerts about new, escalated and still-open flags. Safe to re-run: alerts are
        deduplicated.
        """
        from auxeng.redflags import tasks as flag_tasks

        context = get_current_context()
        return flag_tasks.queue_flag_alerts(run_moment(context), dry_run=context["params"]["dry_run"])

    @task(multiple_outputs=False)
    def deliver_outbox() -> dict:
        """Sends the due messages of this DAG. If it fails, its log names the missing connection or the
        SMTP/Slack error; the messages stay pending and the retry (or auxeng_deliver_outbox) sends them.
        """
        from auxeng.delivery import tasks as delivery_tasks

        context = get_current_context()
        return delivery_tasks.deliver_outbox(
            run_moment(context), dry_run=context["params"]["dry_run"], kinds=(MessageKind.FLAG_ALERT,)
        )

    (
        [read_help_channels(), import_help_requests()]
        >> evaluate_flags()
        >> queue_flag_alerts()
        >> deliver_outbox()
    )


auxeng_dependency_alerts()
