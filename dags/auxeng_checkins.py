"""
### Three-month check-ins and monthly follow-ups

Every ended, non-cancelled engagement gets **one check-in**, due 3 calendar
months after its end date (`AUXENG_CHECKIN_OFFSET_MONTHS`; an end on the
29th-31st lands on the last day of a shorter month).

1. `schedule_checkins`: creates, moves (end date changed) and cancels
   (engagement cancelled or removed) check-ins. **7 days before the due date**
   (`AUXENG_CHECKIN_INVITE_DAYS_BEFORE`) the AuxEng lead, the host manager and
   the host tech lead get an email with a calendar invitation (`.ics`, a 30-minute
   slot at 10:00 on the due date in the host manager's time zone, Monday if the
   due date is a weekend). A move after it went out sends the same UID with a
   higher SEQUENCE; a cancellation or a skip sends METHOD:CANCEL.
2. `queue_handovers`: once an engagement has ended, its host manager and host tech
   lead each get **one handover message** (email and Slack DM): from the day after
   the last day the platform team does no more work for the team; where to get help
   (the registry's `help_after_end`, the team's else the program's); the check-in
   date; the goals as recorded. Once per engagement and person, ever; engagements
   that ended more than 30 days ago (`AUXENG_HANDOVER_MAX_AGE_DAYS`) get none.
3. `send_checkin_surveys`: on the due date, the host team's people get the
   **check-in survey** (comfort maintaining it 1-5, help needed since the end,
   what could not be taken over, NPS) through the response page.
4. `queue_checkin_reminders`: reminders 3 and 7 days later to those who have not answered.
5. `close_checkins`: after 14 days (`AUXENG_CHECKIN_WINDOW_DAYS`) the check-in
   is closed as `answered` (with its scores) or `unanswered`.
6. `queue_follow_ups`: engagements with `follow_up: monthly` remind their
   AuxEng lead every month for 6 months (`AUXENG_FOLLOW_UP_MONTHS`) to hold a
   sync, with a "how is it going" link; answering "finished" stops them.
7. `deliver_outbox`: sends what is due (people only in their working hours;
   the rest goes out with `auxeng_deliver_outbox`).

**When:** daily at 08:30 in the program's time zone, and when
`auxeng_detect_ended` announces ended engagements (`auxeng://engagements/ended`).

**Catch-up:** a check-in whose due date is more than 30 days before the run
(`AUXENG_CHECKIN_MAX_AGE_DAYS`) with nothing sent yet is recorded as `missed`
and sends nothing: a first install does not flood anyone.

**Override:** to reschedule or skip one check-in (reason recorded), trigger
`auxeng_checkin_override`.

**Params:** `dry_run` (default false): plan and render, report, change and send nothing.

**Re-running** (clear, backfill, twice a day) is safe: one check-in per engagement,
every message has a dedupe key, nothing is sent twice. If a task fails, read its
log: a missing connection is named; the messages stay pending and the retry sends them.
"""

from airflow.sdk import AssetOrTimeSchedule, dag, get_current_context, task

from auxeng.dagkit.assets import ENGAGEMENTS_ENDED
from auxeng.dagkit.context import run_date, run_moment
from auxeng.dagkit.defaults import DEFAULT_ARGS, START_DATE, TAGS, daily_at
from auxeng.dagkit.params import param
from auxeng.vocabulary import MessageKind

# The task modules (store models, calendar, email) are imported inside the tasks, never while parsing.

DRY_RUN = param(False, type="boolean", description="Plan and render only: change and send nothing.")


def _step(name: str) -> dict:
    """Runs ``auxeng.checkins.tasks.<name>`` for this run."""
    from auxeng.checkins import tasks as checkin_tasks

    function = getattr(checkin_tasks, name)
    context = get_current_context()
    return function(run_date(context), run_moment(context), dry_run=context["params"]["dry_run"])


@dag(
    schedule=AssetOrTimeSchedule(timetable=daily_at(8, 30), assets=ENGAGEMENTS_ENDED),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "checkins"],
    params={"dry_run": DRY_RUN},
    doc_md=__doc__,
)
def auxeng_checkins():
    @task(multiple_outputs=False)
    def schedule_checkins() -> dict:
        """Creates, moves and cancels check-ins and queues their calendar invitations. Safe to clear and re-
        run (one check-in per engagement).
        """
        return _step("schedule_checkins")

    @task(multiple_outputs=False)
    def queue_handovers() -> dict:
        """Queues the end-of-engagement handover to the host manager and tech lead of every engagement that
        ended. Safe to re-run: once per engagement and person.
        """
        from auxeng.handover import tasks as handover_tasks

        context = get_current_context()
        return handover_tasks.queue_handovers(
            run_date(context), run_moment(context), dry_run=context["params"]["dry_run"]
        )

    @task(multiple_outputs=False)
    def send_checkin_surveys() -> dict:
        """Queues the check-in surveys due today. Safe to re-run: one invitation per person."""
        return _step("send_checkin_surveys")

    @task(multiple_outputs=False)
    def queue_checkin_reminders() -> dict:
        """Queues reminders to people who have not answered their check-in survey."""
        return _step("queue_checkin_reminders")

    @task(multiple_outputs=False)
    def close_checkins() -> dict:
        """Closes check-ins whose response window ended, with their scores."""
        return _step("close_checkins")

    @task(multiple_outputs=False)
    def queue_follow_ups() -> dict:
        """Queues the monthly follow-up reminders that are due."""
        return _step("queue_follow_ups")

    @task(multiple_outputs=False)
    def deliver_outbox() -> dict:
        """Sends the due messages of this DAG. If it fails, its log names the missing connection or the
        SMTP/Slack error; the messages stay pending and the retry (or auxeng_deliver_outbox) sends them.
        """
        from auxeng.checkins.planning import CHECKIN_KINDS
        from auxeng.delivery import tasks as delivery_tasks

        context = get_current_context()
        return delivery_tasks.deliver_outbox(
            run_moment(context),
            dry_run=context["params"]["dry_run"],
            kinds=(*CHECKIN_KINDS, MessageKind.FOLLOW_UP_REMINDER, MessageKind.HANDOVER),
        )

    (
        schedule_checkins()
        >> queue_handovers()
        >> send_checkin_surveys()
        >> queue_checkin_reminders()
        >> close_checkins()
        >> queue_follow_ups()
        >> deliver_outbox()
    )


auxeng_checkins()
