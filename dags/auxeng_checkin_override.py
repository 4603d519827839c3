"""
### Override one engagement's check-in (or its monthly follow-up)

Trigger this DAG from the Airflow UI ("Trigger DAG" with its form) to change one
engagement's check-in by hand. The reason and who asked are recorded on the
check-in and in its event log; the calendar is then brought up to date at once.

| action | what it does |
| --- | --- |
| `reschedule` | moves the check-in to `new_due_date` (today or later); a calendar invitation already sent is updated (same UID, higher SEQUENCE) |
| `skip` | the check-in will not happen: nothing more is sent; an invitation already sent is cancelled (METHOD:CANCEL) |
| `resume` | undoes a skip (or a `missed` check-in, with a `new_due_date`) |
| `finish_follow_up` | stops the engagement's monthly follow-up reminders |

Only check-ins whose survey has not gone out yet can be changed. A bad request
(unknown engagement, no reason, a date in the past) fails the task with a
message that says what is wrong (no retries), and changes nothing.
"""

from airflow.sdk import dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from auxeng.dagkit.context import run_date, run_moment
from auxeng.dagkit.defaults import DEFAULT_ARGS, START_DATE, TAGS
from auxeng.dagkit.params import param
from auxeng.vocabulary import OVERRIDE_ACTIONS, MessageKind

# The task modules (store models, calendar, email) are imported inside the tasks, never while parsing.

PARAMS = {
    "engagement": param("", type="string", minLength=1, description="Engagement key, e.g. ENG-2026-025."),
    "action": param("reschedule", type="string", enum=list(OVERRIDE_ACTIONS), description="What to do."),
    "new_due_date": param(
        None,
        type=["null", "string"],
        format="date",
        description="For reschedule (and resume): the new due date, YYYY-MM-DD.",
    ),
    "reason": param("", type="string", minLength=3, description="Why (recorded with the change)."),
}


@dag(
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "checkins", "ops"],
    params=PARAMS,
    doc_md=__doc__,
)
def auxeng_checkin_override():
    @task(multiple_outputs=False)
    def apply_override() -> dict:
        """Applies the requested override. If it fails, the log says what was wrong with the request (unknown
        engagement, bad date, missing reason); nothing was changed: trigger again with a corrected form.
        """
        from auxeng.checkins import tasks as checkin_tasks
        from auxeng.checkins.overrides import OverrideError

        context = get_current_context()
        params = context["params"]
        dag_run = context["dag_run"]
        requested_by = getattr(dag_run, "triggering_user_name", None) or "airflow"
        try:
            return checkin_tasks.apply_override(
                engagement_key=params["engagement"],
                action=params["action"],
                reason=params["reason"],
                requested_by=requested_by,
                new_due=params.get("new_due_date"),
                as_of=run_date(context),
                now=run_moment(context),
            )
        except OverrideError as exc:
            raise AirflowFailException(f"override not applied: {exc}") from exc

    @task(multiple_outputs=False)
    def update_calendar() -> dict:
        """Sends the calendar update or cancellation the override calls for. Safe to clear and re-run."""
        from auxeng.checkins import tasks as checkin_tasks

        context = get_current_context()
        return checkin_tasks.schedule_checkins(run_date(context), run_moment(context))

    @task(multiple_outputs=False)
    def deliver_outbox() -> dict:
        """Sends the due messages of this DAG. If it fails, its log names the missing connection or the
        SMTP/Slack error; the messages stay pending and the retry (or auxeng_deliver_outbox) sends them.
        """
        from auxeng.delivery import tasks as delivery_tasks

        context = get_current_context()
        return delivery_tasks.deliver_outbox(run_moment(context), kinds=(MessageKind.CHECKIN_CALENDAR,))

    apply_override() >> update_calendar() >> deliver_outbox()


auxeng_checkin_override()
