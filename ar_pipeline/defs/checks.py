"""Asset checks. ``aging_data_fresh`` reads the ledger's own sync log (docs/design.md,
Decisions about Dagster: Dagster's FreshnessPolicy only sees Dagster materializations, not the
source's syncs).
``ledger_sane`` names the ledger rows that cannot be right (``ar_pipeline.rules.ledger_sanity``).
``actions_staged`` verifies that what was staged is what the tiering called for."""

import datetime as dt
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from ar_pipeline.defs.assets import DB_RETRY, ar_aging, proposed_actions
from ar_pipeline.defs.resources import ArDatabase, run_as_of
from ar_pipeline.rules.ledger_sanity import AMOUNT_BOUND_CENTS, LISTED, REASONS, LedgerReview
from ar_pipeline.rules.proposals import verify_staging
from ar_pipeline.sources.ledger_generator import HOT_SYNC_TYPE
from ar_pipeline.store.schema import sync_log, workflow_verify_results


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


def findings_markdown(review: LedgerReview) -> str:
    """The first findings as a table: customer, row, reason, what is wrong."""
    lines = ["| customer | row | reason | what is wrong |", "|---|---|---|---|"]
    for f in review.listed:
        lines.append(
            f"| {f.customer_name} ({f.customer_id}) | {f.row_kind} {f.row_id} | {f.reason} "
            f"| {f.describe()} |"
        )
    if review.total > len(review.listed):
        lines.append(f"| ... | | | and {review.total - len(review.listed)} more |")
    return "\n".join(lines)


@dg.asset_check(asset=ar_aging, blocking=False, retry_policy=DB_RETRY)
def ledger_sane(ar_aging: LedgerReview) -> dg.AssetCheckResult:
    """ERROR when a ledger row cannot be right as of the run date: a reversal beyond what was
    paid on its invoice, an invoice with more open than its amount, a payment or credit note
    naming an invoice of another currency or customer, an amount beyond +/- 10^13 minor units
    (the rules: ``ar_pipeline.rules.ledger_sanity``). Names each row; its customers are held back
    from the day's proposals (no letter, e-mail or hold; listed in the envelope) while everyone
    else is staged as usual, so the check does not block the run."""
    review = ar_aging  # the output of ar_aging: its review of the day's ledger
    held = sorted(review.held_back)
    return dg.AssetCheckResult(
        passed=review.total == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            "no ledger row that cannot be right"
            if review.total == 0
            else f"{review.total} ledger row(s) cannot be right; {len(held)} customer(s) held "
            f"back from the day's proposals: {', '.join(held[:LISTED])}"
            + (" ..." if len(held) > LISTED else "")
        ),
        metadata={
            "as_of": review.as_of.isoformat(),
            "rows_named": review.total,
            "customers_held_back": len(held),
            **{f"rows_{reason}": review.counts.get(reason, 0) for reason in REASONS},
            "amount_bound_minor_units": AMOUNT_BOUND_CENTS,
            "findings": dg.MetadataValue.md(findings_markdown(review) if review.total else "-"),
        },
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
