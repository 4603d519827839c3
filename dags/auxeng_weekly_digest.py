"""
### Weekly stakeholder digest

Runs when `auxeng_weekly_nps` announces a computed week (`auxeng://nps/weekly`) and
sends that week's digest:

- **email** (HTML and plain text) to the program's `stakeholders` (registry), with the
  13-week trend chart (NPS, its 95% interval band, answers per week) inline;
- **Slack**: the headline numbers in Block Kit to the program's `digest_slack_channel`,
  then the chart uploaded as a file through the Slack API connection (an
  incoming-webhook-only set-up gets the text and blocks only).

It says: the NPS of the week and of 13 weeks with intervals; the change vs last week and
vs the 13 weeks before (called real only when the interval of the difference excludes
zero); response rate; NPS per survey kind and org; check-in comfort; comments since
the last digest (escaped, detractors first, never attributed for anonymous
engagements); the check-ins due next week. Segments below `AUXENG_NPS_MIN_RESPONSES`
answers show "too few responses".

**Once per week and recipient:** every message has a per-week dedupe key in the
outbox; re-runs send nothing new. A stakeholder can stop the digest with the link at
its bottom. A week that ended more than `AUXENG_DIGEST_MAX_AGE_DAYS` (6) days before
the run (a backfill) is not sent.

**Params:** `week` (a Monday, `YYYY-MM-DD`; default: the week the asset announced, else
the newest computed one), `dry_run`.

**If it fails:** `queue_digest` names the problem (no snapshot for the week: run
`auxeng_weekly_nps`; no secret key). `deliver_outbox` fails when messages could not
go out (SMTP down, Slack credentials): they stay pending and its retry sends them.
"""

from airflow.sdk import dag, get_current_context, task

from auxeng.dagkit.assets import NPS_WEEKLY
from auxeng.dagkit.context import run_moment
from auxeng.dagkit.defaults import DEFAULT_ARGS, START_DATE, TAGS
from auxeng.dagkit.params import param

# The task modules (store models, matplotlib, email) are imported inside the tasks, never while parsing.


@dag(
    schedule=[NPS_WEEKLY],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "nps", "digest"],
    params={
        "week": param(
            None, type=["null", "string"], description="Send the digest of this week (its Monday)."
        ),
        "dry_run": param(False, type="boolean", description="Build and render only: queue and send nothing."),
    },
    doc_md=__doc__,
)
def auxeng_weekly_digest():
    @task(multiple_outputs=False)
    def queue_digest() -> dict:
        """Queues the week's digest to the stakeholders and the digest channel. If it fails with "no
        snapshot", run auxeng_weekly_nps for that week first.
        """
        from auxeng.nps import tasks as nps_tasks

        context = get_current_context()
        week = context["params"].get("week") or nps_tasks.announced_week(context)
        return nps_tasks.queue_digest(
            run_moment(context), week=nps_tasks.week_param(week), dry_run=context["params"]["dry_run"]
        )

    @task(multiple_outputs=False)
    def deliver_outbox() -> dict:
        """Sends the due messages of this DAG. If it fails, its log names the missing connection or the
        SMTP/Slack error; the messages stay pending and the retry (or auxeng_deliver_outbox) sends them.
        """
        from auxeng.delivery import tasks as delivery_tasks
        from auxeng.nps.digest import DIGEST_KINDS

        context = get_current_context()
        return delivery_tasks.deliver_outbox(
            run_moment(context), dry_run=context["params"]["dry_run"], kinds=DIGEST_KINDS
        )

    queue_digest() >> deliver_outbox()


auxeng_weekly_digest()
