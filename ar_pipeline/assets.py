"""The assets: group ``ar_aging`` (aging and tiering) and group ``ar_actions`` (proposals),
thin wrappers around the rules in ``aging``, ``tiering`` and ``proposals``.

Each asset writes its table for the run's as-of date in one transaction (a rerun replaces that
date's rows) and publishes what the Dagster UI shows: row count, column schema, and numeric
totals per currency that the UI plots over time.
"""

import datetime as dt
from typing import Any

import dagster as dg

from ar_pipeline import aging, proposals, tiering
from ar_pipeline.reporting import aging_totals, largest_overdue, largest_overdue_markdown
from ar_pipeline.resources import ArDatabase, run_as_of
from ar_pipeline.schema import ar_aging as ar_aging_table
from ar_pipeline.schema import prior_actions as prior_actions_table
from ar_pipeline.schema import proposed_actions as proposed_actions_table
from ar_pipeline.schema import tier_assignments as tier_assignments_table

GROUP = "ar_aging"
ACTIONS_GROUP = "ar_actions"
OWNERS = ["team:finance-ops"]
KINDS = {"sql", "sqlalchemy"}
# Database steps retry twice, 5 s apart, growing linearly (a lock timeout, a dropped connection).
DB_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.LINEAR)

COLUMN_DESCRIPTIONS = {
    "as_of": "Run date the row describes (AR_TIMEZONE)",
    "customer_id": "Customer key",
    "customer_name": "Customer name",
    "currency": "ISO 4217 currency of the amounts in this row",
    "total_open_cents": "Open balance of all open items, disputed included (minor units)",
    "overdue_cents": "Open balance of items past their due date",
    "current_cents": "Open balance not yet due (days overdue <= 0)",
    "days_1_30_cents": "Open balance 1-30 days overdue",
    "days_31_60_cents": "Open balance 31-60 days overdue",
    "days_61_90_cents": "Open balance 61-90 days overdue",
    "days_over_90_cents": "Open balance 91 or more days overdue",
    "disputed_cents": "Open balance of disputed items (never dunned)",
    "unapplied_credit_cents": "Cash on account, unapplied credit notes and overpayments",
    "dunnable_cents": "max(0, undisputed overdue - unapplied credit)",
    "max_days_overdue": "Days overdue of the oldest overdue open item (0 if none)",
    "oldest_overdue_invoice_id": "The overdue open item with the earliest due date",
    "open_item_count": "Number of open items",
    "action_id": "The applied collection action",
    "tier": "Tier of that action",
    "applied_at": "When it was applied (UTC)",
    "target_tier": "Highest tier the customer qualifies for (null: below every minimum)",
    "last_applied_tier": "Tier of the last applied action in the current episode of debt",
    "proposed_tier": "Tier to propose now (null when skipped)",
    "skip_reason": "below_minimum, paused, cooldown or already_at_tier",
    "idempotency_key": "Makes a rerun of the same day stage nothing twice",
    "envelope_id": "The run's workflow_envelope row",
    "run_id": "Dagster run that staged the row",
    "action_type": "workflow_envelope, collection_action, customer_program or email_to_customer",
    "program_type": "service_hold for customer programs",
    "payload_json": "The draft: to, cc, subject, body, invoices",
    "edited_payload_json": "The approver's edit of the draft (what gets sent), original kept",
    "status": "proposed, approved, rejected, superseded, applying, applied or failed",
    "proposed_at": "When it was staged (UTC)",
    "decided_by": "Approver who decided",
    "decided_at": "When it was decided (UTC)",
    "decision_reason": "Why (required to reject)",
    "attempts": "Apply attempts",
    "last_error": "Error of the last failed apply",
    "superseded_reason": "Why it was superseded",
}


def table_schema(table: Any) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(c.name, str(c.type).lower(), COLUMN_DESCRIPTIONS.get(c.name))
            for c in table.columns
        ]
    )


class TierDefinitionConfig(dg.Config):
    tier: int
    name: str
    min_days_overdue: int
    min_dunnable: str
    cooldown_days: int
    template: str
    involves_sales_rep: bool = False


class TieringConfig(dg.Config):
    """Run config of ``tier_assignments``. ``tier_definitions`` left empty uses the defaults of
    DESIGN.md section 4; amounts are text in major units (``"10.00"``), never floats."""

    threshold_days: int = aging.DEFAULT_THRESHOLD_DAYS
    tier_definitions: list[TierDefinitionConfig] | None = None

    def resolve(self) -> tuple[int, tuple[tiering.TierDefinition, ...]]:
        """Validate both fields; raises TierConfigError naming the offending field."""
        raw = (
            None
            if self.tier_definitions is None
            else [t.model_dump() for t in self.tier_definitions]
        )
        return (
            tiering.validate_threshold_days(self.threshold_days),
            tiering.validate_tier_definitions(raw),
        )


@dg.asset(
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    retry_policy=DB_RETRY,
    metadata={
        "dagster/column_schema": table_schema(ar_aging_table),
        "dagster/table_name": "ar_aging",
    },
)
def ar_aging(context: dg.AssetExecutionContext, ar_db: ArDatabase) -> dg.MaterializeResult:
    """Open receivables aged per customer and currency as of the run date (DESIGN.md section 4).

    One row per (customer, currency) with an open item or unapplied credit; the aggregation runs
    in SQL and replaces the rows of the run date. Amounts are minor units.
    """
    as_of = run_as_of(context, ar_db)
    with ar_db.engine.begin() as connection:
        row_count = aging.write_ar_aging(connection, as_of)
        totals = aging_totals(connection, as_of)
        top = largest_overdue(connection, as_of)
    metadata: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "dagster/row_count": row_count,
        "largest_overdue": dg.MetadataValue.md(largest_overdue_markdown(top)),
    }
    for t in totals:
        metadata[f"customers_overdue_{t.currency}"] = t.customers_overdue
        for name, cents in t.cents.items():
            metadata[f"{name}_{t.currency}"] = cents
    context.log.info(f"ar_aging as of {as_of}: {row_count} rows")
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    retry_policy=DB_RETRY,
    deps=[ar_aging],
    metadata={
        "dagster/column_schema": table_schema(prior_actions_table),
        "dagster/table_name": "prior_actions",
    },
)
def prior_actions(context: dg.AssetExecutionContext, ar_db: ArDatabase) -> dg.MaterializeResult:
    """Latest applied ``collection_action`` per customer_id as of the run date, with its tier
    and time, snapshotted from ``proposed_actions``; actions applied later do not count."""
    as_of = run_as_of(context, ar_db)
    with ar_db.engine.begin() as connection:
        row_count = tiering.write_prior_actions(connection, as_of, ar_db.zone)
    return dg.MaterializeResult(
        metadata={"as_of": as_of.isoformat(), "dagster/row_count": row_count}
    )


@dg.asset(
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    retry_policy=DB_RETRY,
    deps=[ar_aging, prior_actions],
    metadata={
        "dagster/column_schema": table_schema(tier_assignments_table),
        "dagster/table_name": "tier_assignments",
    },
)
def tier_assignments(
    context: dg.AssetExecutionContext, config: TieringConfig, ar_db: ArDatabase
) -> dg.Output[tiering.TieringPlan]:
    """Which customers need a dunning step and at which tier, one row per customer with a
    dunnable amount > 0; the rules are in ``ar_pipeline.tiering``."""
    try:
        threshold_days, tiers = config.resolve()
    except tiering.TierConfigError as error:
        # a config error does not heal by retrying
        raise dg.Failure(
            f"invalid tier_assignments config: {error}", allow_retries=False
        ) from error
    as_of = run_as_of(context, ar_db)
    with ar_db.engine.begin() as connection:
        counts = tiering.write_tier_assignments(
            connection, as_of, tiers, threshold_days, ar_db.zone
        )
    metadata: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "dagster/row_count": sum(counts.values()),
        "threshold_days": threshold_days,
    }
    for tier in tiers:
        metadata[f"proposed_tier_{tier.tier}_{tier.name}"] = counts.get(f"tier_{tier.tier}", 0)
    for reason in ("below_minimum", "paused", "cooldown", "already_at_tier"):
        metadata[f"skipped_{reason}"] = counts.get(reason, 0)
    # the validated tiers travel to proposed_actions, so both use the same definitions
    return dg.Output(tiering.TieringPlan(threshold_days, tiers), metadata=metadata)


@dg.asset(
    group_name=ACTIONS_GROUP,
    kinds=KINDS,
    owners=OWNERS,
    retry_policy=DB_RETRY,
    deps=[ar_aging],
    ins={"plan": dg.AssetIn("tier_assignments")},
    metadata={
        "dagster/column_schema": table_schema(proposed_actions_table),
        "dagster/table_name": "proposed_actions",
    },
)
def proposed_actions(
    context: dg.AssetExecutionContext, plan: tiering.TieringPlan, ar_db: ArDatabase
) -> dg.MaterializeResult:
    """Drafts for a human approver: one envelope per run, a letter per customer needing a step,
    service holds, and e-mails on the sales rep's behalf. Nothing is sent here; the rules are in
    ``ar_pipeline.proposals``."""
    as_of = run_as_of(context, ar_db)
    with ar_db.engine.begin() as connection:
        result = proposals.stage_proposals(
            connection,
            as_of=as_of,
            run_id=context.run.run_id,
            tiers=plan.tiers,
            threshold_days=plan.threshold_days,
            hold_policy=ar_db.hold_policy,
            now=dt.datetime.now(dt.UTC),
        )
    metadata: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "envelope_id": result.envelope_id,
        "already_staged": result.already_staged,
        "superseded_older": result.superseded,
        "cannot_contact": sum(result.cannot_contact.values()),
    }
    for key in ("customer_program", "email_to_customer"):
        metadata[f"staged_{key}"] = result.staged.get(key, 0)
    for tier in plan.tiers:
        metadata[f"staged_tier_{tier.tier}_{tier.name}"] = result.staged.get(f"tier_{tier.tier}", 0)
    return dg.MaterializeResult(metadata=metadata)
