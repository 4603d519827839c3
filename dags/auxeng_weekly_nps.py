"""
### Weekly NPS and independence snapshots

Every **Monday at 07:00** in the program's time zone (`AUXENG_TIMEZONE`) this DAG
computes the week that just ended (Monday 00:00 to Monday 00:00, local time) and
stores it in the snapshot tables (`auxeng_nps_weeks`, `auxeng_nps_snapshots`):

- NPS (promoters 9-10, passives 7-8, detractors 0-6), counts and the 95% adjusted-Wald
  interval, for **the week** and **the last 13 weeks** (and, for the whole program,
  the week before and the 13 weeks before, for the digest's "change");
- per segment: whole program, org, host team, survey kind (end of engagement vs
  three-month check-in), with the check-in's comfort (maintainability) score;
- the response rate: of the people invited in the span, the share who answered by the week's end.

The maths runs in the database (one aggregating query per segment kind). Segments with
fewer than `AUXENG_NPS_MIN_RESPONSES` (3) answers are marked as too few to show.

Then, for the same week, `compute_weekly_independence` stores the **independence snapshot**
(`auxeng_independence_weeks`, `_scores`, `_snapshots`; see docs/independence.md): each
engagement that ended in the last `AUXENG_INDEPENDENCE_WINDOW_WEEKS` (52) weeks scored from
its signals as they stood at the week's end, and per program, org and host team the mean score,
the share independent at three months and the goals-achieved rate (95% Wilson intervals, the
same privacy threshold). Stored data the formula cannot take (a comfort of 9) leaves that
component out, logged as a warning naming the engagement and the field; the week still computes.

Only once both are stored does it announce `auxeng://nps/weekly` (extra `{"week": …}`), which
triggers `auxeng_weekly_digest`.

**Interval-based:** a run covers its data interval (the week before its Monday), so a
backfill recomputes past weeks:
`airflow backfill create --dag-id auxeng_weekly_nps --from-date 2026-09-28 --to-date 2026-11-23`.
A re-run **replaces** that week's snapshots; it never duplicates them. Digests of weeks
older than `AUXENG_DIGEST_MAX_AGE_DAYS` are not sent, so a backfill mails nobody.

**Params:** `week` (optional, a Monday `YYYY-MM-DD`): recompute that week instead.

**If it fails:** the log names the problem (store unreachable, bad `week`); nothing is
half-written (one transaction per task). Fix it and clear the failed task: when only
`compute_weekly_independence` failed, clearing it alone recomputes the independence snapshot and
then announces the week.
"""

from airflow.sdk import dag, get_current_context, task

from auxeng.dagkit.assets import NPS_WEEKLY
from auxeng.dagkit.context import run_moment, utcnow
from auxeng.dagkit.defaults import DEFAULT_ARGS, START_DATE, TAGS, weekly_interval
from auxeng.dagkit.params import param
from auxeng.vocabulary import WEEKLY_NPS_HOUR, WEEKLY_NPS_WEEKDAY

# auxeng.nps.tasks and auxeng.independence.tasks (store models) are imported inside the tasks,
# never while parsing.


@dag(
    schedule=weekly_interval(WEEKLY_NPS_WEEKDAY, WEEKLY_NPS_HOUR),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "nps"],
    params={
        "week": param(
            None, type=["null", "string"], description="Recompute this week (its Monday, YYYY-MM-DD) instead."
        )
    },
    doc_md=__doc__,
)
def auxeng_weekly_nps():
    @task(multiple_outputs=False)
    def compute_weekly_nps() -> dict:
        """Computes and replaces the week's NPS snapshot. A bad week param fails at once naming it;
        otherwise clear and re-run freely.
        """
        from auxeng.nps import tasks as nps_tasks

        context = get_current_context()
        interval_end = context.get("data_interval_end") or run_moment(context)
        return nps_tasks.compute_weekly_nps(
            interval_end,
            run_id=context["run_id"],
            week=nps_tasks.week_param(context["params"].get("week")),
            now=utcnow(),
        )

    @task(outlets=[NPS_WEEKLY], multiple_outputs=False)
    def compute_weekly_independence(nps: dict) -> dict:
        """Computes and replaces the same week's independence snapshot, then announces the week (both
        snapshots stored). Clear and re-run freely.
        """
        from datetime import date

        from auxeng.independence import tasks as independence_tasks

        context = get_current_context()
        result = independence_tasks.compute_weekly_independence(
            week=date.fromisoformat(nps["week"]), run_id=context["run_id"], now=utcnow()
        )
        context["outlet_events"][NPS_WEEKLY].extra = {"week": result["week"]}
        return result

    compute_weekly_independence(compute_weekly_nps())


auxeng_weekly_nps()
