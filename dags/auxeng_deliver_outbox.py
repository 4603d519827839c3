"""
### Deliver the outbox

Sends every due message of the pack's outbox (survey invitations, reminders,
alerts, and later check-ins and digests) by email (`smtp_default`) and Slack
(`slack_api_default`, or the `slack_default` webhook for channel posts).

**When:** every 15 minutes. Messages to people wait in the outbox until their
working hours (09:00-17:00 on a weekday, their time zone) and go out on the
first run inside that window.

**Tasks:** `plan_drainers` → `deliver_outbox` mapped over `drainers` instances
(default 4), which run side by side on as many workers as the pool allows →
`summarize` (runs even when drainers failed) adds up their summaries and logs
one line: sent / failed / skipped by reason / pending (due now, later).

**Exactly once:** each row is claimed with a lease (`SELECT … FOR UPDATE SKIP
LOCKED` on PostgreSQL; one atomic `UPDATE` on SQLite, whose single writer makes
the drainers take turns) and sent in groups of 50, each marked *sending* before
it goes out and *sent* after, so the drainers never send the same message twice. A retry or a re-run never re-sends a sent
message. Permanent errors (unknown Slack user, refused address) mark that
message *failed* with the reason; transient ones (SMTP down, Slack 5xx) leave
it pending and fail that drainer so Airflow retries it.

**When it fails:** open the `summarize` log: its last lines name each drainer
that left messages undelivered and why (`drainer 2: email: 12 due message(s)
left pending (…)`), or a drainer that reported nothing (read that mapped
instance's log). Fix the cause (SMTP/Slack down, a connection missing or its
credentials rejected), then clear the failed `deliver_outbox` instances with
their downstream (`summarize`), or just wait: the next run, 15 minutes later,
picks up every pending message. Clearing a successful run is also safe: sent
messages are never sent again. A drainer killed mid-send (its worker lost) leaves its
batch leased until `AUXENG_OUTBOX_LEASE_SECONDS` pass; then the next drainer
sends the rest of the batch, and the group it was sending becomes
*in doubt* on the dashboard: never re-sent, retry those that did not arrive.

**Missing connections** never drop messages: they stay pending and the task
says which connection to create. Local runs (`make run`, `make demo`) set
`AUXENG_DEV_OUTBOX`: messages are then written as `.eml` / `.json` files under
`$AIRFLOW_HOME/dev-outbox/`.

**Params:** `dry_run` (default false): report what is due, send nothing; only
drainer 0 previews (the others return at once), and `summarize` logs its
preview. `drainers` (1-16, default 4): how many `deliver_outbox` instances
drain at once; more only helps while workers and the SMTP/Slack side keep up.
"""

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from auxeng.dagkit.context import run_moment
from auxeng.dagkit.defaults import DEFAULT_ARGS, START_DATE, TAGS
from auxeng.dagkit.params import param
from auxeng.vocabulary import DRAINER_SUMMARY_KEY, MAX_DRAINERS

# auxeng.delivery.tasks (store, transports) is imported inside the tasks, never while parsing.

DRAINER_DOC = """One drainer: claims due messages and sends them. If it fails, its log names the missing
connection or the SMTP/Slack error; the messages stay pending and the retry sends them."""


@dag(
    schedule=CronTriggerTimetable("*/15 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "delivery"],
    params={
        "dry_run": param(False, type="boolean", description="Report what is due: send nothing."),
        "drainers": param(
            4,
            type="integer",
            minimum=1,
            maximum=MAX_DRAINERS,
            description="How many deliver_outbox instances drain the outbox at once.",
        ),
    },
    doc_md=__doc__,
)
def auxeng_deliver_outbox():
    @task
    def plan_drainers() -> list[int]:
        """The drainer slots to map over (param `drainers`, 1-16). A bad value fails here, naming it."""
        from auxeng.delivery import tasks as delivery_tasks

        return delivery_tasks.drainer_slots(get_current_context()["params"]["drainers"])

    # A mapped task does not take its docstring as doc_md: it is passed explicitly.
    @task(
        multiple_outputs=False,
        map_index_template="drainer {{ task.op_kwargs['drainer'] }}",
        doc_md=DRAINER_DOC,
    )
    def deliver_outbox(drainer: int) -> dict:
        from auxeng.delivery import tasks as delivery_tasks

        context = get_current_context()

        def publish(summary: dict) -> None:  # read by summarize, also when this drainer fails
            context["ti"].xcom_push(DRAINER_SUMMARY_KEY, summary)

        return delivery_tasks.deliver_outbox(
            run_moment(context), dry_run=context["params"]["dry_run"], drainer=drainer, publish=publish
        )

    @task(multiple_outputs=False, trigger_rule="all_done")
    def summarize(summaries: list[dict]) -> dict:
        """Adds up what the drainers did in one log line. It fails when a drainer left due messages
        undelivered: read that drainer's log, fix the cause, and clear it (or wait for the next run).
        """
        from auxeng.delivery import tasks as delivery_tasks

        context = get_current_context()
        drainers = len(delivery_tasks.drainer_slots(context["params"]["drainers"]))
        # One slice request: iterating the lazy sequence asks for the item past its end, which
        # Airflow logs as "XCom not found" in every successful run.
        return delivery_tasks.summarize_delivery(run_moment(context), summaries[:], drainers=drainers)

    drained = deliver_outbox.expand(drainer=plan_drainers())
    summarize(drained[DRAINER_SUMMARY_KEY])


auxeng_deliver_outbox()
