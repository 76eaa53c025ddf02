"""Asset checks. ``aging_data_fresh`` reads the ledger's own sync log (DESIGN.md section 8:
Dagster's FreshnessPolicy only sees Dagster materializations, not the source's syncs)."""

import datetime as dt
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from ar_pipeline.assets import DB_RETRY, ar_aging
from ar_pipeline.ledger_generator import HOT_SYNC_TYPE
from ar_pipeline.resources import ArDatabase
from ar_pipeline.schema import sync_log


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
    if last.tzinfo is None:  # SQLite returns timestamps without zone; they are stored as UTC
        last = last.replace(tzinfo=dt.UTC)
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
