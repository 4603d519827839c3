"""
### Send post-engagement surveys

For every engagement that ended in the last 30 days, invites the host team's
people to the **post-engagement survey** (NPS 0-10, what went well, what to
change, goals achieved) and the platform team's engineers and advisors to the
internal **retro**, by email and Slack DM; queues **reminders** (3 and 7 days
after the invitation by default, `AUXENG_REMINDER_DAYS`) to people who have not
answered; alerts an engagement's AuxEng lead about every **detractor** answer
(0-6), once per response. Then sends what is due.

**When:** when `auxeng_detect_ended` announces ended engagements
(`auxeng://engagements/ended`), and daily at 08:00 in the program's time zone
to catch up (new answers, reminders, late registry edits).

**Rules:** nobody gets more than one survey invitation in 30 days
(`AUXENG_SURVEY_FATIGUE_DAYS`; the skip is recorded with its reason); opted-out
people are never messaged; people are only messaged 09:00-17:00 on weekdays in
their own time zone (`AUXENG_QUIET_HOURS`) — what is not due yet is sent by
`auxeng_deliver_outbox` when the window opens. A cancellation or a moved end
date before the messages went out withdraws them.

**Params:** `dry_run` (default false): plan and render, report what would be
queued and sent, change and send nothing.

**Re-running** (clear, backfill, a second trigger the same day) is safe:
invitations are unique per survey, engagement and person, and every message
has a dedupe key in the outbox; nothing is ever sent twice. A failed delivery
leaves the messages pending and fails `deliver_outbox`, which retries.
"""

from airflow.sdk import AssetOrTimeSchedule, dag, get_current_context, task

from auxeng.dagkit.assets import ENGAGEMENTS_ENDED
from auxeng.dagkit.context import run_date, run_moment
from auxeng.dagkit.defaults import DEFAULT_ARGS, START_DATE, TAGS, daily_at
from auxeng.dagkit.params import param

# The task modules (store models, templates, email) are imported inside the tasks, never while parsing.

DRY_RUN = param(False, type="boolean", description="Plan and render only: queue and send nothing.")


@dag(
    schedule=AssetOrTimeSchedule(timetable=daily_at(8, 0), assets=ENGAGEMENTS_ENDED),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "surveys"],
    params={"dry_run": DRY_RUN},
    doc_md=__doc__,
)
def auxeng_send_surveys():
    @task(multiple_outputs=False)
    def queue_invitations() -> dict:
        """Queues survey invitations for recently ended engagements. Safe to re-run: one invitation per
        person, survey and engagement.
        """
        from auxeng.surveys import tasks as survey_tasks

        context = get_current_context()
        return survey_tasks.queue_invitations(
            run_date(context), run_moment(context), dry_run=context["params"]["dry_run"]
        )

    @task(multiple_outputs=False)
    def queue_reminders() -> dict:
        """Queues reminders to people who have not answered."""
        from auxeng.surveys import tasks as survey_tasks

        context = get_current_context()
        return survey_tasks.queue_reminders(
            run_date(context), run_moment(context), dry_run=context["params"]["dry_run"]
        )

    @task(multiple_outputs=False)
    def queue_detractor_alerts() -> dict:
        """Queues an alert to the AuxEng lead for every new detractor answer, once per answer."""
        from auxeng.surveys import tasks as survey_tasks

        context = get_current_context()
        return survey_tasks.queue_detractor_alerts(run_moment(context), dry_run=context["params"]["dry_run"])

    @task(multiple_outputs=False)
    def deliver_outbox() -> dict:
        """Sends the due messages of this DAG. If it fails, its log names the missing connection or the
        SMTP/Slack error; the messages stay pending and the retry (or auxeng_deliver_outbox) sends them.
        """
        from auxeng.delivery import tasks as delivery_tasks
        from auxeng.surveys.invitations import SURVEY_KINDS

        context = get_current_context()
        return delivery_tasks.deliver_outbox(
            run_moment(context), dry_run=context["params"]["dry_run"], kinds=SURVEY_KINDS
        )

    queue_invitations() >> queue_reminders() >> queue_detractor_alerts() >> deliver_outbox()


auxeng_send_surveys()
