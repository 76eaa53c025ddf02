"""Asset checks. ``aging_data_fresh`` reads the ledger's own sync log (DESIGN.md section 8:
Dagster's FreshnessPolicy only sees Dagster materializations, not the source's syncs).
``actions_staged`` verifies that what was staged is what the tiering called for."""

import datetime as dt
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from ar_pipeline.assets import DB_RETRY, ar_aging, proposed_actions
from ar_pipeline.ledger_generator import HOT_SYNC_TYPE
from ar_pipeline.proposals import verify_staging
from ar_pipeline.resources import ArDatabase, run_as_of
from ar_pipeline.schema import sync_log, workflow_verify_results


@dataclass(frozen=True)
class Freshness:
    fresh: bool
    last_completed_at: dt.datetime | None
    age_hours: float | None
    description: str


def assess_freshness(
    connection: sa.Connection,
    now: dt.datetime,
    max_age_hours: float,
    sync_type: str = HOT_SYNC_TYPE,
) -> Freshness:
    """Fresh when the latest ``ok`` sync of ``sync_type`` completed at most ``max_age_hours``
    before ``now``. Running syncs (no ``completed_at``) and failed ones do not count."""
    last = connection.execute(
        sa.select(sa.func.max(sync_log.c.completed_at)).where(
            sync_log.c.sync_type == sync_type,
            sync_log.c.status == "ok",
            sync_log.c.completed_at.is_not(None),
        )
    ).scalar_one()
    if last is None:
        return Freshness(False, None, None, f"no completed {sync_type} sync")
    age_hours = (now - last).total_seconds() / 3600
    fresh = age_hours <= max_age_hours
    description = (
        f"last {sync_type} sync completed {age_hours:.1f} h ago "
        f"({'within' if fresh else 'older than'} the {max_age_hours:g} h limit)"
    )
    return Freshness(fresh, last, age_hours, description)


@dg.asset_check(asset=ar_aging, blocking=False, retry_policy=DB_RETRY)
def aging_data_fresh(ar_db: ArDatabase) -> dg.AssetCheckResult:
    """WARN when the ledger's payments were last synced more than AR_FRESHNESS_MAX_AGE_HOURS
    before this run, or never: the aging may miss recent payments. Never blocks the run."""
    with ar_db.engine.connect() as connection:
        result = assess_freshness(
            connection, dt.datetime.now(dt.UTC), ar_db.freshness_max_age_hours
        )
    metadata: dict[str, float | str] = {"max_age_hours": ar_db.freshness_max_age_hours}
    if result.age_hours is not None:
        metadata["age_hours"] = round(result.age_hours, 2)
        metadata["last_completed_at"] = result.last_completed_at.isoformat()
    return dg.AssetCheckResult(
        passed=result.fresh,
        severity=dg.AssetCheckSeverity.WARN,
        description=result.description,
        metadata=metadata,
    )


@dg.asset_check(asset=proposed_actions, blocking=False, retry_policy=DB_RETRY)
def actions_staged(
    context: dg.AssetCheckExecutionContext, ar_db: ArDatabase
) -> dg.AssetCheckResult:
    """ERROR when the staged letters differ from what tier_assignments called for (per tier,
    counting customers that cannot be contacted); the comparison is kept in
    workflow_verify_results."""
    as_of = run_as_of(context, ar_db)
    with ar_db.engine.begin() as connection:
        result = verify_staging(connection, as_of)
        connection.execute(
            workflow_verify_results.insert().values(
                run_id=context.run.run_id,
                check_name="actions_staged",
                expected=result.expected,
                observed={**result.observed, "unexpected": result.unexpected},
                passed=result.passed,
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            "staged letters match the tier assignments"
            if result.passed
            else f"expected {result.expected}, staged {result.observed}, "
            f"unexpected {result.unexpected}"
        ),
        metadata={
            "as_of": as_of.isoformat(),
            "expected": sum(result.expected.values()),
            "observed": sum(result.observed.values()),
            "unexpected": result.unexpected,
        },
    )
