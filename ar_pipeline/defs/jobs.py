"""Jobs and the schedule: the daily job (06:00) and the apply job (started by the sensor or
``ar-pipeline apply``)."""

import datetime as dt
from typing import Any

import dagster as dg

from ar_pipeline.actions.apply import NEEDS_ATTENTION, SEND_RETRY_DELAYS, apply_actions, describe
from ar_pipeline.actions.mail import Mailer
from ar_pipeline.defs.assets import ACTIONS_GROUP, ALGA_GROUP, GROUP
from ar_pipeline.defs.resources import AS_OF_TAG, ArDatabase

DAILY_JOB = "ar_aging_daily"
APPLY_JOB = "apply_approved_actions"
SUMMARY_JOB = "ar_aging_summary_job"
WORKLIST_JOB = "collection_worklist_job"
DAILY_CRON = "0 6 * * *"

# In-process: the multiprocess executor starts a process per step, seconds on two cores for
# steps that take milliseconds (docs/design.md, Decisions about Dagster).
ar_aging_daily = dg.define_asset_job(
    DAILY_JOB,
    selection=dg.AssetSelection.groups(GROUP, ACTIONS_GROUP, ALGA_GROUP),
    executor_def=dg.in_process_executor,
    description="Age the receivables, assign dunning tiers and stage proposals for approval.",
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


class ApplyConfig(dg.Config):
    action_ids: list[int]
    as_of: str | None = None  # date of the balance re-check; default today in AR_TIMEZONE
    retry_delay_seconds: float = SEND_RETRY_DELAYS[0]


# No retry policy: the op has side effects, and an error inside one action is that action's
# outcome (``error``, which fails the run); a retried op would claim nothing and go green while
# a row it had claimed waits for a person.
@dg.op(ins={"after": dg.In(dg.Nothing)})
def apply_approved(
    context: dg.OpExecutionContext, config: ApplyConfig, ar_db: ArDatabase, mailer: Mailer
) -> dict:
    """Claim, re-check and apply each approved action on its own (``ar_pipeline.actions.apply``).
    ``after``: what must finish first (the Alga PSA source refreshes its copy of the ledger, so
    that the re-check sees payments recorded since the daily run).

    Every action is tried; then, if any ended ``failed`` or ``unconfirmed``, the step fails (no
    retry) naming those actions and why, so the run is red in Dagster and not a quiet success.
    """
    try:
        as_of = dt.date.fromisoformat(config.as_of) if config.as_of else ar_db.today()
    except ValueError:
        raise dg.Failure(f"as_of must be a date like 2026-03-31, got {config.as_of!r}",
                         allow_retries=False) from None  # fmt: skip
    delay = config.retry_delay_seconds
    outcomes = apply_actions(
        ar_db.engine,
        mailer,
        config.action_ids,
        approvers=set(ar_db.approvers),
        as_of=as_of,
        hold_policy=ar_db.hold_policy,
        retry_delays=(delay, 2 * delay),
    )
    for outcome in outcomes:
        log = context.log.warning if outcome.outcome == "failed" else context.log.info
        log(f"action {outcome.action_id}: {outcome.outcome} {outcome.detail}".strip())
    counts = describe(outcomes)
    trouble = [o for o in outcomes if o.outcome in NEEDS_ATTENTION]
    if trouble:
        raise dg.Failure(
            description=f"{len(trouble)} of {len(outcomes)} action(s) need attention: "
            + "; ".join(f"action {o.action_id} {o.outcome}: {o.detail}" for o in trouble),
            metadata={**counts, "action_ids": ",".join(str(o.action_id) for o in trouble)},
            allow_retries=False,
        )
    context.add_output_metadata({k: v for k, v in counts.items()})
    return counts


@dg.job(
    name=APPLY_JOB,
    executor_def=dg.in_process_executor,
    description="The only job with side effects: sends approved letters, sets approved holds.",
)
def apply_approved_actions() -> None:
    apply_approved()


def trend_partitions(start: dt.date, timezone: str) -> dg.DailyPartitionsDefinition:
    """One partition per day from ``start``; today's exists already (end offset 1), so the
    daily run can fill it."""
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(), timezone=timezone, end_offset=1
    )


def _one_asset_job(name: str, asset: dg.AssetsDefinition, description: str) -> Any:
    return dg.define_asset_job(
        name, selection=[asset.key], executor_def=dg.in_process_executor, description=description
    )


def build_summary_job(summary_asset: dg.AssetsDefinition) -> Any:
    return _one_asset_job(
        SUMMARY_JOB, summary_asset,
        "Rebuild ar_aging_summary for a day (or, as a backfill, a range of days).",
    )  # fmt: skip


def build_worklist_job(worklist_asset: dg.AssetsDefinition) -> Any:
    return _one_asset_job(
        WORKLIST_JOB, worklist_asset,
        "Rank today's calls (collection_worklist) for a day, after the daily job.",
    )  # fmt: skip
