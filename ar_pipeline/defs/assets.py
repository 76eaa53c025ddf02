"""The assets: group ``ledger`` (the ledger tables, external: written by the source's sync or,
with the Alga PSA source, by ``alga_ledger``), group ``ar_aging`` (aging and tiering), group
``ar_actions`` (proposals) and group ``ar_trend`` (the daily trend), thin wrappers around the
rules in ``aging``, ``tiering``, ``proposals``, ``trend`` and ``kpis``.

Each asset writes its table for the run's as-of date in one transaction (a rerun replaces that
date's rows) and publishes what the Dagster UI shows: row count, column schema, and numeric
totals per currency that the UI plots over time.

``ar_aging`` also reviews the ledger once per run (``ar_pipeline.rules.ledger_sanity``) and
hands the review on as its output: to the check ``ledger_sane``, and to ``tier_assignments`` and
``proposed_actions``, which hold back the customers it names.
"""

import datetime as dt
import warnings
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import dagster as dg

from ar_pipeline.defs.resources import ArDatabase, run_as_of
from ar_pipeline.rules import aging, incremental, ledger_sanity, proposals, tiering
from ar_pipeline.rules.reporting import aging_totals, largest_overdue, largest_overdue_markdown
from ar_pipeline.store.database import analyze
from ar_pipeline.store.schema import (
    SKIP_REASONS,
    aging_credits,
    aging_open_items,
    ledger_balances,
    ledger_credits,
)
from ar_pipeline.store.schema import ar_aging as ar_aging_table
from ar_pipeline.store.schema import prior_actions as prior_actions_table
from ar_pipeline.store.schema import proposed_actions as proposed_actions_table
from ar_pipeline.store.schema import tier_assignments as tier_assignments_table

GROUP = "ar_aging"
ACTIONS_GROUP = "ar_actions"
ALGA_GROUP = "alga_psa"  # the Alga PSA source's service periods (ar_pipeline.defs.alga_assets)
OWNERS = ["team:finance-ops"]
KINDS = {"sql", "sqlalchemy"}
# Database steps retry twice, 5 s apart, growing linearly (a lock timeout, a dropped connection).
DB_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.LINEAR)
# ar_aging's columns the steps after it filter and join on: the ones its statistics refresh
AR_AGING_PLANNED_ON = (
    "as_of", "customer_id", "currency", "overdue_cents", "max_days_overdue", "dunnable_cents",
)  # fmt: skip
# the same for the day's snapshot of open items (ar_pipeline.rules.aging.SnapshotSource)
OPEN_ITEMS_PLANNED_ON = (
    "as_of", "customer_id", "invoice_id", "balance_cents", "days_overdue", "disputed",
)  # fmt: skip

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
    "days_91_120_cents": "Open balance 91-120 days overdue (null on rows written before the "
    "split of over 90, revision 0008)",
    "days_over_120_cents": "Open balance 121 or more days overdue (null likewise)",
    "days_over_90_cents": "Open balance 91 or more days overdue: 91-120 plus over 120",
    "disputed_cents": "Open balance of disputed items (never dunned)",
    "unapplied_credit_cents": "Cash on account, unapplied credit notes and overpayments",
    "net_balance_cents": "Net receivable: open balance less unapplied credit, which equals "
    "invoices - credit notes - payments as of the date (negative: the customer is in credit)",
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
    "skip_reason": "below_minimum, paused, in_flight, already_at_tier or cooldown (customers held "
    "back by the ledger check have no row)",
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


def table_schema(table: Any, descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    described = {**COLUMN_DESCRIPTIONS, **(descriptions or {})}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(c.name, str(c.type).lower(), described.get(c.name))
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
    docs/design.md, Tiering; amounts are text in major units (``"10.00"``), never floats."""

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


LEDGER_GROUP = "ledger"
LEDGER_KINDS = {"sql", "table"}
LEDGER_DESCRIPTIONS = {
    "customers": "Customers: contact, sales rep, dunning pause and service hold.",
    "invoices": "Invoices and credit notes (kind), issued, draft or void, in integer minor units "
    "of their currency; a credit note may name the invoice it settles.",
    "payments": "Payments received, in minor units of their currency; a payment may name the "
    "invoice it settles (none: cash on account); a reversal is a negative payment.",
    "sync_log": "Each sync of the ledger from its source, with its status and time; the check "
    "aging_data_fresh reads it.",
}


LEDGER_COLUMNS = {
    "customers": {
        "billing_email": "Where letters go (none: the customer cannot be contacted)",
        "sales_rep_email": "The sales rep, in copy of escalations",
        "dunning_paused_until": "No dunning step up to and including this date",
        "service_hold": "The customer's service is on hold (set when an approved hold applies)",
        "service_hold_at": "When the hold was set (UTC)",
        "service_hold_reason": "Why",
        "created_at": "When the customer was added (UTC)",
    },
    "invoices": {
        "invoice_id": "Invoice or credit note key",
        "customer_id": "The customer billed or credited",
        "invoice_number": "The number printed on the document",
        "kind": "invoice or credit_note",
        "status": "issued, draft or void (only issued documents count)",
        "issue_date": "Counts from this date (a credit note settles from it)",
        "due_date": "Days overdue count from this date",
        "amount_cents": "Amount in minor units, positive",
        "disputed": "Aged and counted, never dunned",
        "applies_to_invoice_id": "The invoice a credit note settles (none: unapplied credit)",
    },
    "payments": {
        "payment_id": "Payment key",
        "invoice_id": "The invoice the payment settles (none: cash on account)",
        "received_date": "Counts from this date",
        "amount_cents": "Amount in minor units (a reversal is negative)",
    },
    "sync_log": {
        "sync_id": "Sync key",
        "sync_type": "Which sync (aging_data_fresh reads scheduled_hot_customer_payments)",
        "started_at": "When the sync started (UTC)",
        "completed_at": "When it completed (UTC)",
        "status": "ok or failed (none: still running)",
        "rows_synced": "Rows the sync wrote",
    },
}


def ledger_specs(written_by: dg.AssetKey | None = None) -> list[dg.AssetSpec]:
    """The ledger tables as external assets, upstream of ``ar_aging`` and the trend. Dagster
    never writes them: the source system's sync does, or, with the Alga PSA source, the asset
    ``written_by`` (``alga_ledger``), which is then their upstream."""
    from ar_pipeline.store.schema import customers, invoices, payments, sync_log

    writer = (
        f" Copied from Alga PSA by {written_by.to_user_string()}."
        if written_by is not None
        else " Written by the source system's sync, outside Dagster."
    )
    return [
        dg.AssetSpec(
            table.name,
            group_name=LEDGER_GROUP,
            kinds=LEDGER_KINDS,
            owners=OWNERS,
            deps=[written_by] if written_by is not None else [],
            description=LEDGER_DESCRIPTIONS[table.name] + writer,
            metadata={
                "dagster/column_schema": table_schema(table, LEDGER_COLUMNS.get(table.name)),
                "dagster/table_name": table.name,
            },
        )
        for table in (customers, invoices, payments, sync_log)
    ]


LEDGER_KEYS = [dg.AssetKey(name) for name in LEDGER_DESCRIPTIONS]


def build_ar_aging(deps: Sequence[Any] = ()) -> dg.AssetsDefinition:
    """The ``ar_aging`` asset, downstream of the ledger tables; ``deps`` are what must also run
    first (the Alga PSA source's copy of the ledger, when that is the source: Dagster orders
    steps by direct dependencies only, not through the external tables)."""

    @dg.asset(
        name="ar_aging",
        group_name=GROUP,
        kinds=KINDS,
        owners=OWNERS,
        retry_policy=DB_RETRY,
        deps=[*LEDGER_KEYS, *deps],
        metadata={
            "dagster/column_schema": table_schema(ar_aging_table),
            "dagster/table_name": "ar_aging",
        },
    )
    def ar_aging(
        context: dg.AssetExecutionContext, ar_db: ArDatabase
    ) -> dg.Output[ledger_sanity.LedgerReview]:
        """Open receivables aged per customer and currency as of the run date (docs/design.md,
        Aging).

        One row per (customer, currency) with an open item or unapplied credit; the aggregation
        runs in SQL and replaces the rows of the run date. Amounts are minor units. The output
        is the day's review of the ledger (rows that cannot be right, customers held back).
        """
        return _age_receivables(context, ar_db)

    return ar_aging


def _age_receivables(
    context: dg.AssetExecutionContext, ar_db: ArDatabase
) -> dg.Output[ledger_sanity.LedgerReview]:
    as_of = run_as_of(context, ar_db)
    with ar_db.engine.begin() as connection:
        # the ledger check reads the aging's pass over the ledger instead of joining it again
        row_count, refresh = incremental.write_ar_aging(
            connection, as_of, setting=ar_db.incremental_balances, keep_pass=True
        )
        review = incremental.review_ledger(connection, as_of, refresh, with_pass=True)
        totals = aging_totals(connection, as_of)
        top = largest_overdue(connection, as_of)
    # the next steps plan their joins on these; of ar_aging and of the snapshot, the columns
    # they filter and join on (a quarter of the cost of all 21 for ar_aging, half for the
    # snapshot's 11)
    planned_on = [ar_aging_table.c[name] for name in AR_AGING_PLANNED_ON]
    if refresh.mode in ("past", "off"):
        items_planned_on = [aging_open_items.c[name] for name in OPEN_ITEMS_PLANNED_ON]
        analyze(ar_db.engine, [*planned_on, *items_planned_on, aging_credits])
    elif refresh.mode == "full":
        analyze(ar_db.engine, [*planned_on, ledger_balances, ledger_credits])
    else:  # a small share of the state changed: its statistics still hold
        analyze(ar_db.engine, planned_on)
    if refresh.keys_recomputed is not None:
        metadata_recomputed = {"balances_keys_recomputed": refresh.keys_recomputed}
    else:
        metadata_recomputed = {}
    metadata: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "dagster/row_count": row_count,
        "balances": refresh.mode,
        "balances_why": refresh.reason,
        "largest_overdue": dg.MetadataValue.md(largest_overdue_markdown(top)),
        "ledger_rows_suspect": review.total,
        "customers_held_back": len(review.held_back),
        **metadata_recomputed,
    }
    for t in totals:
        metadata[f"customers_overdue_{t.currency}"] = t.customers_overdue
        for name, cents in t.cents.items():
            metadata[f"{name}_{t.currency}"] = cents
    context.log.info(f"ar_aging as of {as_of}: {row_count} rows")
    if review.held_back:
        context.log.warning(
            f"{review.total} ledger row(s) cannot be right; {len(review.held_back)} customer(s) "
            "held back from today's proposals (check ledger_sane)"
        )
    return dg.Output(review, metadata=metadata)


def review_for(
    context: dg.AssetExecutionContext,
    connection: Any,
    review: ledger_sanity.LedgerReview,
    as_of: dt.date,
) -> ledger_sanity.LedgerReview:
    """The ledger review ``ar_aging`` handed on, when it is of ``as_of``; otherwise (a step run
    on its own for another date) a fresh one."""
    if review.as_of == as_of:
        return review
    context.log.info(f"the stored ledger review is of {review.as_of}; reviewing {as_of} afresh")
    return ledger_sanity.review_ledger(connection, as_of)


ar_aging = build_ar_aging()


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
    analyze(ar_db.engine, [prior_actions_table])
    return dg.MaterializeResult(
        metadata={"as_of": as_of.isoformat(), "dagster/row_count": row_count}
    )


@dg.asset(
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    retry_policy=DB_RETRY,
    deps=[prior_actions],
    ins={"review": dg.AssetIn("ar_aging")},
    metadata={
        "dagster/column_schema": table_schema(tier_assignments_table),
        "dagster/table_name": "tier_assignments",
    },
)
def tier_assignments(
    context: dg.AssetExecutionContext,
    config: TieringConfig,
    ar_db: ArDatabase,
    review: ledger_sanity.LedgerReview,
) -> dg.Output[tiering.TieringPlan]:
    """Which customers need a dunning step and at which tier, one row per customer with a
    dunnable amount > 0; the rules are in ``ar_pipeline.rules.tiering``. Customers held back by the
    ledger check get no row."""
    try:
        threshold_days, tiers = config.resolve()
    except tiering.TierConfigError as error:
        # a config error does not heal by retrying
        raise dg.Failure(
            f"invalid tier_assignments config: {error}", allow_retries=False
        ) from error
    as_of = run_as_of(context, ar_db)
    with ar_db.engine.begin() as connection:
        held_back = review_for(context, connection, review, as_of).held_back
        counts = tiering.write_tier_assignments(
            connection, as_of, tiers, threshold_days, ar_db.zone, held_back=held_back
        )
    analyze(ar_db.engine, [tier_assignments_table])
    metadata: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "dagster/row_count": sum(counts.values()),
        "threshold_days": threshold_days,
    }
    for tier in tiers:
        metadata[f"proposed_tier_{tier.tier}_{tier.name}"] = counts.get(f"tier_{tier.tier}", 0)
    for reason in SKIP_REASONS:
        metadata[f"skipped_{reason}"] = counts.get(reason, 0)
    metadata["held_back_ledger_suspect"] = len(held_back)
    # the validated tiers travel to proposed_actions, so both use the same definitions
    return dg.Output(tiering.TieringPlan(threshold_days, tiers), metadata=metadata)


PROPOSED_ACTIONS_SPEC: dict[str, Any] = {
    "group_name": ACTIONS_GROUP,
    "kinds": KINDS,
    "owners": OWNERS,
    "retry_policy": DB_RETRY,
    "metadata": {
        "dagster/column_schema": table_schema(proposed_actions_table),
        "dagster/table_name": "proposed_actions",
    },
}
PROPOSED_ACTIONS_INS = {"plan": dg.AssetIn("tier_assignments"), "review": dg.AssetIn("ar_aging")}


@dg.asset(ins=PROPOSED_ACTIONS_INS, **PROPOSED_ACTIONS_SPEC)
def proposed_actions(
    context: dg.AssetExecutionContext,
    plan: tiering.TieringPlan,
    review: ledger_sanity.LedgerReview,
    ar_db: ArDatabase,
) -> dg.MaterializeResult:
    """Drafts for a human approver: one envelope per run, a letter per customer needing a step,
    service holds, and e-mails on the sales rep's behalf; nothing for a customer held back by
    the ledger check (the envelope lists it). Nothing is sent here; the rules are in
    ``ar_pipeline.rules.proposals``."""
    return stage_day(context, plan, review, ar_db)


def stage_day(
    context: dg.AssetExecutionContext,
    plan: tiering.TieringPlan,
    review: ledger_sanity.LedgerReview,
    ar_db: ArDatabase,
    recipient_sources: dict[str, str] | None = None,
) -> dg.MaterializeResult:
    """The body of ``proposed_actions`` (the Alga PSA source adds where addresses came from)."""
    as_of = run_as_of(context, ar_db)
    with ar_db.engine.begin() as connection:
        held_back = review_for(context, connection, review, as_of).held_back
        result = proposals.stage_proposals(
            connection,
            as_of=as_of,
            run_id=context.run.run_id,
            tiers=plan.tiers,
            threshold_days=plan.threshold_days,
            hold_policy=ar_db.hold_policy,
            now=dt.datetime.now(dt.UTC),
            held_back=held_back,
            recipient_sources=recipient_sources,
        )
    metadata: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "envelope_id": result.envelope_id,
        "already_staged": result.already_staged,
        "superseded_older": result.superseded,
        "cannot_contact": sum(result.cannot_contact.values()),
        "held_back": result.held_back,
    }
    for key in ("customer_program", "email_to_customer"):
        metadata[f"staged_{key}"] = result.staged.get(key, 0)
    for tier in plan.tiers:
        metadata[f"staged_tier_{tier.tier}_{tier.name}"] = result.staged.get(f"tier_{tier.tier}", 0)
    return dg.MaterializeResult(metadata=metadata)


TREND_GROUP = "ar_trend"
SUMMARY_DESCRIPTIONS = {
    "customers_with_open": "Customers with an open balance in this currency",
    "customers_overdue": "Customers with an overdue balance in this currency",
    "net_balance_cents": "Net receivables: open balance less unapplied credit, over all customers "
    "(those in credit included) = invoices - credit notes - payments as of this day",
    "actions_staged": "Proposals staged as of this day (all currencies; do not add across)",
    "actions_applied": "Actions applied on this day (all currencies; do not add across)",
    "credit_sales_3m_cents": "Invoices issued in the three periods of dso_days",
    "net_current_cents": "Net receivables not yet due: each customer's current AR less the "
    "unapplied credit left after it settled the overdue items (oldest first)",
    "net_over_90_cents": "Net receivables more than 90 days overdue: each customer's over 90 less "
    "its unapplied credit (oldest first), at least 0",
    "dso_days": "Days sales outstanding of net receivables, countback over three periods of "
    "credit sales: calendar months when this day is a month-end, else month-long periods ending "
    "on this day's date each month (a shorter month: on its last day)",
    "best_possible_dso_days": "Countback DSO of net current receivables, same periods",
    "average_days_delinquent": "DSO minus best possible DSO",
    "cei_pct": "Collection effectiveness index of the period ending this day (the calendar month "
    "at a month-end), on net receivables, %",
    "over_90_pct": "Net receivables more than 90 days overdue / net receivables, %",
    "dso_gross_days": "Countback DSO of open items alone (unapplied credit left aside)",
    "cei_gross_pct": "CEI on open items alone, %",
    "over_90_gross_pct": "Open balance over 90 days / total open balance, %",
    "unbilled_cents": "Alga PSA: base fee of the service periods due for invoicing and never "
    "invoiced (not AR, not the whole charge; null: not assessed that day)",
    "unbilled_periods": "Alga PSA: how many such periods have an amount in this currency",
    **{
        f"tier_{t}_{kind}": f"{'Customers' if kind == 'customers' else 'Dunnable amount'} "
        f"whose position in this currency meets tier {t}"
        for t in (1, 2, 3, 4)
        for kind in ("customers", "cents")
    },
}


def _major(cents: int, currency: str) -> float:
    """Minor units as a number in major units, for plotting (``86124706`` EUR -> 861247.06)."""
    from ar_pipeline.rules.money import currency_exponent

    return float(Decimal(int(cents)).scaleb(-currency_exponent(currency)))


def day_metadata(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The numeric metadata of one day's partition, which the asset's plots draw by partition:
    per currency, in major units with the currency in the label, the open balance, the net
    receivables, the balance over 90 days, DSO and CEI (on net receivables); and the number of
    rows (currencies) that day. A KPI without a value that day is left out."""
    metadata: dict[str, Any] = {"dagster/row_count": len(rows)}
    for row in rows:
        money = row["currency"]
        metadata[f"{money} total open"] = _major(row["total_open_cents"], money)
        metadata[f"{money} net receivables"] = _major(row["net_balance_cents"], money)
        metadata[f"{money} over 90 days"] = _major(row["days_over_90_cents"], money)
        if row["dso_days"] is not None:
            metadata[f"{money} DSO (days)"] = float(row["dso_days"])
        if row["cei_pct"] is not None:
            metadata[f"{money} CEI (%)"] = float(row["cei_pct"])
        if row.get("unbilled_cents") is not None:  # Alga PSA source only, apart from AR
            metadata[f"{money} unbilled (not AR)"] = _major(row["unbilled_cents"], money)
    return metadata


def _last_days_markdown(rows: list[dict[str, Any]]) -> str:
    from ar_pipeline.rules.money import format_money

    def shown(value: Any) -> str:
        return "-" if value is None else str(value)

    lines = [
        "| day | currency | open | net | over 90 | over 120 | DSO | CEI % |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reversed(rows):
        money = r["currency"]
        over_120 = r["days_over_120_cents"]
        lines.append(
            f"| {r['as_of']} | {money} | {format_money(r['total_open_cents'], money)}"
            f" | {format_money(r['net_balance_cents'], money)}"
            f" | {format_money(r['days_over_90_cents'], money)}"
            f" | {'-' if over_120 is None else format_money(over_120, money)}"
            f" | {shown(r['dso_days'])} | {shown(r['cei_pct'])} |"
        )
    return "\n".join(lines)


def build_summary_asset(
    partitions: dg.DailyPartitionsDefinition, deps: Sequence[Any] = ()
) -> dg.AssetsDefinition:
    """``ar_aging_summary``, daily partitions from ``AR_TREND_START_DATE`` (today included),
    downstream of the ledger tables, ``proposed_actions`` (its action counts) and ``deps``
    (the Alga PSA source's service-period assets, when that is the source)."""
    from ar_pipeline.store.schema import ar_aging_summary as summary_table

    schema = table_schema(summary_table, SUMMARY_DESCRIPTIONS)

    # a year of days rebuilds in one run, aggregated in one SQL statement: the backfill policy
    # is chosen on purpose, so Dagster's note that the parameter is in beta is not repeated at
    # every start of the code location
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Parameter `backfill_policy`", dg.BetaWarning)
        as_summary_asset = dg.asset(
            name="ar_aging_summary",
            group_name=TREND_GROUP,
            kinds=KINDS,
            owners=OWNERS,
            retry_policy=DB_RETRY,
            partitions_def=partitions,
            deps=[*LEDGER_KEYS, proposed_actions, *deps],
            backfill_policy=dg.BackfillPolicy.single_run(),
            metadata={"dagster/column_schema": schema, "dagster/table_name": "ar_aging_summary"},
        )

    @as_summary_asset
    def ar_aging_summary(
        context: dg.AssetExecutionContext, ar_db: ArDatabase
    ) -> dg.MaterializeResult:
        """The aging trend: per day and currency, AR by bucket, net receivables, customers per
        tier, actions, and DSO / best possible DSO / average days delinquent / CEI / share over
        90 days on net receivables (with gross DSO, CEI and share over 90 beside them), as of
        that day (``ar_pipeline.rules.trend`` and ``ar_pipeline.rules.kpis``). Rebuilding a range
        replaces its rows in one transaction; each day's partition carries that day's figures."""
        import base64
        from pathlib import Path

        from ar_pipeline.rules import charts, trend

        keys = list(context.partition_keys)
        first, last = dt.date.fromisoformat(keys[0]), dt.date.fromisoformat(keys[-1])
        with ar_db.engine.begin() as connection:
            rows = trend.write_summary(connection, first, last, ar_db.zone)
            recent = trend.recent_rows(connection, last, 365)
        by_day: dict[dt.date, list[dict[str, Any]]] = {}
        for row in rows:
            by_day.setdefault(row["as_of"], []).append(row)
        # each partition's materialization carries its own day's figures (a single-run backfill
        # records one materialization per partition)
        for key in keys:
            context.add_asset_metadata(
                day_metadata(by_day.get(dt.date.fromisoformat(key), [])), partition_key=key
            )
        png = charts.trend_png(recent)
        chart_path = Path(ar_db.charts_dir) / "ar_aging_trend.png"
        chart_path.parent.mkdir(parents=True, exist_ok=True)
        chart_path.write_bytes(png)
        # the chart and the table describe the year up to the last day: on that day's partition
        # only, not copied onto every partition of a long backfill
        context.add_asset_metadata(
            {
                "trend_chart": dg.MetadataValue.md(
                    "![aging trend](data:image/png;base64," + base64.b64encode(png).decode() + ")"
                ),
                "trend_chart_file": dg.MetadataValue.path(str(chart_path)),
                "last_30_days": dg.MetadataValue.md(
                    _last_days_markdown(
                        [r for r in recent if r["as_of"] > last - dt.timedelta(days=30)]
                    )
                ),
            },
            partition_key=keys[-1],
        )
        context.log.info(f"ar_aging_summary: {len(rows)} rows for {first}..{last}")
        # text, not a number: the same on every partition of the run, so nothing to plot
        return dg.MaterializeResult(
            metadata={"rebuilt_in_this_run": f"{first} to {last} ({len(keys)} days)"}
        )

    return ar_aging_summary


WORKLIST_GROUP = "ar_worklist"
WORKLIST_DESCRIPTIONS = {
    "currency": "ISO 4217 currency; each currency is its own list",
    "rank": "1 = call first, within the currency (ar_pipeline.rules.worklist)",
    "expected_recovery_cents": "What a contact today is expected to recover (minor units)",
    "dunnable_cents": "max(0, undisputed overdue - unapplied credit), as in ar_aging",
    "overdue_cents": "Undisputed overdue open items",
    "payer_factor": "The customer's 30-day settled share over the currency's (1 = average)",
    "promise_factor": "(kept + half the partly kept + 2) / (promises judged + 2): 1 with no "
    "broken promise",
    "last_contact_at": "The customer's last contact: a letter applied, a promise or hold "
    "recorded (UTC)",
    "reason": "The rank in words",
}


def build_worklist_asset(partitions: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    """``collection_worklist``, one partition per day like the trend (a past day sees only
    what existed then), downstream of ``ar_aging`` and the letters of ``proposed_actions``."""
    from ar_pipeline.store.schema import collection_worklist as worklist_table

    @dg.asset(
        name="collection_worklist",
        group_name=WORKLIST_GROUP,
        kinds=KINDS,
        owners=OWNERS,
        retry_policy=DB_RETRY,
        partitions_def=partitions,
        deps=[*LEDGER_KEYS, dg.AssetKey("ar_aging"), proposed_actions],
        metadata={
            "dagster/column_schema": table_schema(worklist_table, WORKLIST_DESCRIPTIONS),
            "dagster/table_name": "collection_worklist",
        },
    )
    def collection_worklist(
        context: dg.AssetExecutionContext, ar_db: ArDatabase
    ) -> dg.MaterializeResult:
        """Today's calls: every customer with dunnable debt, per currency, ranked by the amount
        a contact today is expected to recover, with the reason in words; and the rule's
        backtest on the ledger's history against ranking by amount alone
        (``ar_pipeline.rules.worklist``)."""
        from ar_pipeline.rules import worklist

        as_of = dt.date.fromisoformat(context.partition_key)
        with ar_db.engine.begin() as connection:
            count = worklist.write_worklist(connection, as_of, ar_db.zone)
            top = worklist.top_of_list(connection, as_of, 10)
            tested = worklist.backtest(connection, as_of)
        metadata: dict[str, Any] = {
            "dagster/row_count": count,
            "top_10": dg.MetadataValue.md(worklist_markdown(top)),
            "backtest": dg.MetadataValue.md(
                "\n".join(f"- {result.summary()}" for result in tested) or "no history yet"
            ),
        }
        for result in tested:
            money = result.currency
            metadata[f"{money} backtest: rule's top {result.top} recovered"] = _major(
                result.rule_recovered_cents, money
            )
            metadata[f"{money} backtest: top {result.top} by amount recovered"] = _major(
                result.amount_recovered_cents, money
            )
        return dg.MaterializeResult(metadata=metadata)

    return collection_worklist


def worklist_markdown(rows: Sequence[Any]) -> str:
    from ar_pipeline.rules.money import format_money

    lines = ["| # | customer | expected | dunnable | why |", "|---:|---|---:|---:|---|"]
    for row in rows:
        lines.append(
            f"| {row.rank} | {row.customer_name} | "
            f"{format_money(row.expected_recovery_cents, row.currency)} | "
            f"{format_money(row.dunnable_cents, row.currency)} | {row.reason} |"
        )
    return "\n".join(lines)
