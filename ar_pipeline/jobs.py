"""The daily job and its 06:00 schedule."""

import dagster as dg

from ar_pipeline.assets import GROUP
from ar_pipeline.resources import AS_OF_TAG

DAILY_JOB = "ar_aging_daily"
DAILY_CRON = "0 6 * * *"

# In-process: the multiprocess executor starts a process per step, seconds on two cores for
# steps that take milliseconds (DESIGN.md section 8).
ar_aging_daily = dg.define_asset_job(
    DAILY_JOB,
    selection=dg.AssetSelection.groups(GROUP),
    executor_def=dg.in_process_executor,
    description="Age the receivables, snapshot prior actions and assign dunning tiers.",
)


def build_daily_schedule(timezone: str) -> dg.ScheduleDefinition:
    """06:00 every day in ``timezone``; the run's as-of date is the schedule's date there."""

    @dg.schedule(
        job=ar_aging_daily,
        cron_schedule=DAILY_CRON,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        name=f"{DAILY_JOB}_schedule",
    )
    def daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        as_of = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(run_key=as_of, tags={AS_OF_TAG: as_of})

    return daily_schedule
