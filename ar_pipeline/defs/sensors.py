"""Sensors: ``approved_actions_sensor`` starts apply runs; run-status sensors keep the daily
job's bookkeeping.

The approval sensor keeps a cursor (decision time, action id) so a tick reads only what was
decided since the last one, and batches actions into runs so that a thousand approvals make a
handful of runs, not a thousand (docs/design.md, Decisions about Dagster). A failed action
approved again gets a new decision time and so a new run. An action still ``approved`` ten
minutes after its decision, behind the cursor (its run never claimed it), is requested again
once per ten minutes.
"""

import datetime as dt
import hashlib
import json
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

from ar_pipeline.actions.approvals import publish_approvers
from ar_pipeline.defs.jobs import APPLY_JOB, DAILY_JOB
from ar_pipeline.defs.resources import (
    AS_OF_TAG,
    ArDatabase,
    untagged_run_date,
    untagged_run_start,
)
from ar_pipeline.defs.runs import record_dagster_run
from ar_pipeline.store.schema import NEVER_APPLIED_TYPES, proposed_actions


def utc_now() -> dt.datetime:
    """The sensor's clock (one place, so tests can set it)."""
    return dt.datetime.now(dt.UTC)


BATCH_SIZE = 250
STRANDED_AFTER = dt.timedelta(minutes=10)
MAX_PER_TICK = 5000
ACTION_IDS_TAG = "ar_pipeline/action_ids"
DAILY_SUCCEEDED_SENSOR = "ar_aging_daily_succeeded"


def trend_run_key(daily_run_id: str) -> str:
    """The run key of the trend run that follows the daily run ``daily_run_id``: one trend run
    per daily run. The sensor requests the run under this key; ``ar-pipeline run`` tags its own
    in-process trend run with it (:func:`trend_run_tags`), so a daemon that sees the CLI's daily
    run finds the trend run already made and launches none, and the CLI makes none when the
    daemon was first."""
    return f"summary:{daily_run_id}"


def previous_day_run_key(daily_run_id: str) -> str:
    """The run key of the run that rebuilds the trend of the day before the daily run's day
    (:func:`trend_run_key`'s companion): that day is over, so its row is made final, with the
    letters sent and the payments received after its own morning run."""
    return f"summary-previous-day:{daily_run_id}"


def previous_day_run_tags(daily_run_id: str) -> dict[str, str]:
    """As :func:`trend_run_tags`, for the previous day's trend run."""
    return {RUN_KEY_TAG: previous_day_run_key(daily_run_id),
            SENSOR_NAME_TAG: DAILY_SUCCEEDED_SENSOR}  # fmt: skip


def worklist_run_key(daily_run_id: str) -> str:
    """The run key of the worklist run that follows the daily run ``daily_run_id``."""
    return f"worklist:{daily_run_id}"


def worklist_run_tags(daily_run_id: str) -> dict[str, str]:
    """As :func:`trend_run_tags`, for the worklist run."""
    return {RUN_KEY_TAG: worklist_run_key(daily_run_id), SENSOR_NAME_TAG: DAILY_SUCCEEDED_SENSOR}


def trend_run_tags(daily_run_id: str) -> dict[str, str]:
    """Tags that make a run count, for the daemon, as the one the sensor would request for
    ``daily_run_id`` (Dagster matches a sensor's run key on these two tags)."""
    return {RUN_KEY_TAG: trend_run_key(daily_run_id), SENSOR_NAME_TAG: DAILY_SUCCEEDED_SENSOR}


def approved_since(connection: sa.Connection, cursor: dict | None, limit: int) -> list[sa.Row]:
    """Approved, not yet applied actions decided after ``cursor``, oldest decision first."""
    pa = proposed_actions.c
    query = sa.select(pa.action_id, pa.decided_at).where(
        pa.status == "approved", pa.action_type.not_in(NEVER_APPLIED_TYPES)
    )
    if cursor:
        decided_at = sa.bindparam("cursor_at", cursor["decided_at"], type_=pa.decided_at.type)
        query = query.where(
            sa.or_(
                pa.decided_at > decided_at,
                sa.and_(pa.decided_at == decided_at, pa.action_id > cursor["action_id"]),
            )
        )
    return list(connection.execute(query.order_by(pa.decided_at, pa.action_id).limit(limit)))


def _parse_cursor(raw: str | None) -> dict | None:
    if not raw:
        return None
    data = json.loads(raw)
    return {"decided_at": dt.datetime.fromisoformat(data["decided_at"]),
            "action_id": int(data["action_id"])}  # fmt: skip


@dg.sensor(
    job_name=APPLY_JOB,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def approved_actions_sensor(
    context: dg.SensorEvaluationContext, ar_db: ArDatabase
) -> dg.SensorResult | dg.SkipReason:
    """Launch apply runs for newly approved actions, in batches. Publishes this code
    location's AR_APPROVERS first, so the page and the CLI refuse a decision the apply job
    would refuse (``ar_pipeline.actions.approvals``)."""
    cursor = _parse_cursor(context.cursor)
    now = utc_now()
    with ar_db.engine.begin() as connection:
        if publish_approvers(connection, ar_db.approvers, "approved_actions_sensor", now):
            context.log.info(f"published AR_APPROVERS: {', '.join(sorted(ar_db.approvers))}")
    with ar_db.engine.connect() as connection:
        rows = approved_since(connection, cursor, MAX_PER_TICK)
        stranded = approved_before(connection, now - STRANDED_AFTER, cursor, BATCH_SIZE)
    if not rows and not stranded:
        return dg.SkipReason("No newly approved actions waiting to be applied.")
    requests = [
        _apply_request("apply", rows[start : start + BATCH_SIZE])
        for start in range(0, len(rows), BATCH_SIZE)
    ]
    if stranded:
        # once per window, in case their run never claimed them (a claimed row is not sent
        # twice: a second run finds nothing to claim)
        window = int(now.timestamp() // STRANDED_AFTER.total_seconds())
        requests.append(_apply_request(f"apply-again-{window}", stranded))
    if rows:
        last = rows[-1]
        cursor_text = json.dumps(
            {"decided_at": last.decided_at.isoformat(), "action_id": last.action_id}
        )
    else:
        cursor_text = context.cursor
    return dg.SensorResult(run_requests=requests, cursor=cursor_text)


def _apply_request(prefix: str, batch: list[sa.Row]) -> dg.RunRequest:
    ids = [r.action_id for r in batch]
    identity = json.dumps([[r.action_id, r.decided_at.isoformat()] for r in batch])
    return dg.RunRequest(
        run_key=f"{prefix}:" + hashlib.sha256(identity.encode()).hexdigest()[:32],
        run_config={"ops": {"apply_approved": {"config": {"action_ids": ids}}}},
        tags={ACTION_IDS_TAG: ",".join(map(str, ids))[:200]},
    )


def approved_before(
    connection: sa.Connection, decided_before: dt.datetime, cursor: dict | None, limit: int
) -> list[sa.Row]:
    """Actions still ``approved`` long after their decision and already behind the cursor:
    their apply run was requested but never claimed them (it failed to start, or crashed)."""
    if not cursor:
        return []
    pa = proposed_actions.c
    decided = sa.bindparam("cursor_at", cursor["decided_at"], type_=pa.decided_at.type)
    return list(
        connection.execute(
            sa.select(pa.action_id, pa.decided_at)
            .where(
                pa.status == "approved",
                pa.action_type.not_in(NEVER_APPLIED_TYPES),
                pa.decided_at < decided_before,
                pa.decided_at <= decided,
            )
            .order_by(pa.decided_at, pa.action_id)
            .limit(limit)
        )
    )


def build_run_status_sensors(
    summary_job: Any, worklist_job: Any, partitions: dg.DailyPartitionsDefinition
) -> list[dg.SensorDefinition]:
    """Bookkeeping of the daily job; a successful run also requests the trend partition and the
    worklist partition of its as-of date (so the daily run fills that day's
    ``ar_aging_summary`` and ``collection_worklist``), once per daily run."""

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitor_all_code_locations=True,  # also sees runs started in-process by the CLI
        default_status=dg.DefaultSensorStatus.RUNNING,
        name=DAILY_SUCCEEDED_SENSOR,
        request_jobs=[summary_job, worklist_job],
    )
    def daily_run_succeeded(context: dg.RunStatusSensorContext, ar_db: ArDatabase):
        """Write workflow_run_log, reflexion_log and workflow.completed for the daily job, and
        request the ar_aging_summary and collection_worklist partitions of the run's as-of
        date: its tag, or, for a run started from the UI without one, the day it started (the
        date its steps used). The trend partition of the day before is rebuilt too: its day is
        over, and its row then counts the letters sent and the payments received after its
        own morning run (``actions_applied`` counts a day's sends on that day)."""
        run = context.dagster_run
        if run.job_name != DAILY_JOB:
            return dg.SkipReason(f"not {DAILY_JOB}")
        record_dagster_run(context.instance, run, ar_db, succeeded=True)
        as_of = run.tags.get(AS_OF_TAG)
        if as_of is None:
            started = untagged_run_start(context.instance, run)
            as_of = untagged_run_date(started, ar_db.zone).isoformat()
        keys = partitions.get_partition_keys(dynamic_partitions_store=context.instance)
        if as_of in keys:
            previous = (dt.date.fromisoformat(as_of) - dt.timedelta(days=1)).isoformat()
            final = [
                dg.RunRequest(
                    run_key=previous_day_run_key(run.run_id), partition_key=previous,
                    job_name=summary_job.name,
                )
            ] if previous in keys else []  # fmt: skip
            return final + [
                dg.RunRequest(
                    run_key=trend_run_key(run.run_id), partition_key=as_of,
                    job_name=summary_job.name,
                ),
                dg.RunRequest(
                    run_key=worklist_run_key(run.run_id), partition_key=as_of,
                    job_name=worklist_job.name,
                ),
            ]  # fmt: skip
        return dg.SkipReason(f"as-of date {as_of} has no ar_aging_summary partition")

    @dg.run_failure_sensor(
        monitor_all_code_locations=True,
        default_status=dg.DefaultSensorStatus.RUNNING,
        name="ar_aging_daily_failed",
    )
    def daily_run_failed(context: dg.RunFailureSensorContext, ar_db: ArDatabase):
        """Write workflow_run_log, reflexion_log and workflow.failed for the daily job."""
        if context.dagster_run.job_name != DAILY_JOB:
            return dg.SkipReason(f"not {DAILY_JOB}")
        error = context.failure_event.message if context.failure_event else None
        record_dagster_run(
            context.instance, context.dagster_run, ar_db, succeeded=False, error=error
        )
        return None

    return [daily_run_succeeded, daily_run_failed]
