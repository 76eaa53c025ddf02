"""Assets and checks of the Alga PSA source (``AR_SOURCE=alga_psa``), thin wrappers around
``ar_pipeline.sources``: the copy of the tenant's ledger that ``ar_aging`` reads, the health of
the recurring service periods (group ``alga_psa``) with two WARN checks, and the repair plans
staged for a human (group ``ar_actions``)."""

import datetime as dt
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ar_pipeline.defs.assets import (
    ACTIONS_GROUP,
    ALGA_GROUP,
    DB_RETRY,
    GROUP,
    OWNERS,
    PROPOSED_ACTIONS_INS,
    PROPOSED_ACTIONS_SPEC,
    stage_day,
    table_schema,
)
from ar_pipeline.defs.jobs import APPLY_JOB, apply_approved
from ar_pipeline.defs.resources import AlgaPsa, ArDatabase, run_as_of
from ar_pipeline.rules import ledger_sanity, tiering
from ar_pipeline.rules.money import format_money
from ar_pipeline.sources import alga_psa, service_periods
from ar_pipeline.store.database import analyze
from ar_pipeline.store.schema import (
    customers,
    invoices,
    payments,
    proposed_actions,
    service_period_continuity,
    service_period_coverage,
    sync_log,
    unbilled_service_periods,
)

ALGA_KINDS = {"postgres", "sql"}
COVERAGE = dg.AssetKey("service_period_coverage")
CONTINUITY = dg.AssetKey("service_period_continuity")
UNBILLED = dg.AssetKey("unbilled_service_periods")
LISTED = 50  # schedules named in a check's description


def _copy_ledger(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    ar_db: ArDatabase,
    alga: AlgaPsa,
    only: list[str] | None = None,
) -> alga_psa.SyncCounts:
    try:
        counts = alga_psa.sync_ledger(
            alga.engine, ar_db.engine, alga.tenant, ar_db.timezone, only=only
        )
    except alga_psa.AlgaSourceError as error:
        raise dg.Failure(str(error)) from error
    if only is None:
        analyze(ar_db.engine, [customers, invoices, payments, sync_log])
    scope = "" if only is None else f" for {len(only)} client(s)"
    context.log.info(f"copied the Alga PSA ledger of tenant {alga.tenant}{scope}: {counts}")
    return counts


ROWS_MAPPED = "alga_rows_mapped"


def rows_mapped_result(counts: alga_psa.SyncCounts) -> dg.AssetCheckResult:
    """WARN naming the Alga rows the copy skipped because the mapping cannot take them."""
    lines = [f"- {row.describe()}" for row in counts.unmapped[:LISTED]]
    more = counts.unmapped_total - len(lines)
    if more > 0:
        lines.append(f"- ... and {more} more")
    names = [row.describe() for row in counts.unmapped[:LISTED]]
    return dg.AssetCheckResult(
        check_name=ROWS_MAPPED,
        passed=counts.unmapped_total == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            "every Alga row the source reads was mapped"
            if not counts.unmapped_total
            else f"{counts.unmapped_total} Alga row(s) skipped, not mapped: "
            + "; ".join(names[:5]) + (" ..." if counts.unmapped_total > 5 else "")
        ),
        metadata={
            "skipped_rows": counts.unmapped_total,
            "details": dg.MetadataValue.md("\n".join(lines) or "-"),
        },
    )


@dg.asset(
    group_name=GROUP,
    kinds=ALGA_KINDS,
    owners=OWNERS,
    retry_policy=DB_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            ROWS_MAPPED,
            asset="alga_ledger",
            blocking=False,
            description="WARN when Alga rows could not be mapped onto the ledger (a payment "
            "of an invoice that is not finalized, a credit with no client, ...): they are "
            "skipped, the copy goes on, and the check names each one.",
        )
    ],
)
def alga_ledger(context: dg.AssetExecutionContext, ar_db: ArDatabase, alga: AlgaPsa) -> Any:
    """The Alga PSA tenant's clients, invoices and money movements mapped onto the ledger
    contract (``sql/alga_psa/``) and copied, read-only, into the pipeline's ledger tables for
    the aging (``ar_pipeline.sources.alga_psa``). Its value, for ``proposed_actions``: where
    each customer's billing e-mail came from in Alga's recipient order."""
    counts = _copy_ledger(context, ar_db, alga)
    yield dg.Output(
        counts.recipient_of,
        metadata={
            "tenant": alga.tenant,
            "customers": counts.customers,
            "invoices": counts.invoices,
            "payments": counts.payments,
            "skipped_rows": counts.unmapped_total,
            **{f"recipients_{source}": n for source, n in counts.recipient_sources},
            "dagster/row_count": counts.rows,
        },
    )
    yield rows_mapped_result(counts)


@dg.asset(
    name="proposed_actions",
    ins={**PROPOSED_ACTIONS_INS, "recipients": dg.AssetIn("alga_ledger")},
    **PROPOSED_ACTIONS_SPEC,
)
def proposed_actions_on_alga(
    context: dg.AssetExecutionContext,
    plan: tiering.TieringPlan,
    review: ledger_sanity.LedgerReview,
    recipients: dict[str, str],
    ar_db: ArDatabase,
) -> dg.MaterializeResult:
    """``proposed_actions`` on the Alga PSA source: the same drafts, each letter saying which
    of Alga's recipients its address is (``to_source``: billing_contact, billing_email,
    billing_location or default_location)."""
    return stage_day(context, plan, review, ar_db, recipient_sources=recipients)


def _table_metadata(table: Any) -> dict[str, Any]:
    return {"dagster/column_schema": table_schema(table), "dagster/table_name": table.name}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            COVERAGE, group_name=ALGA_GROUP, kinds=ALGA_KINDS, owners=OWNERS,
            metadata=_table_metadata(service_period_coverage),
            description="Per active recurring schedule: how far ahead its service periods are "
            "generated, against the target horizon and the replenishment threshold.",
        ),
        dg.AssetSpec(
            CONTINUITY, group_name=ALGA_GROUP, kinds=ALGA_KINDS, owners=OWNERS,
            metadata=_table_metadata(service_period_continuity),
            description="Gaps and overlaps between consecutive live service periods.",
        ),
        dg.AssetSpec(
            UNBILLED, group_name=ALGA_GROUP, kinds=ALGA_KINDS, owners=OWNERS,
            metadata=_table_metadata(unbilled_service_periods),
            description="Service periods due for invoicing (window closed) that no invoice "
            "links: receivable that no aging report shows. Kept apart from billed AR.",
        ),
    ],
    retry_policy=DB_RETRY,
)  # fmt: skip
def service_period_health(
    context: dg.AssetExecutionContext, ar_db: ArDatabase, alga: AlgaPsa
) -> Any:
    """Judge the tenant's recurring service periods as of the run date; the rules are in
    ``ar_pipeline.sources.service_periods``."""
    as_of = run_as_of(context, ar_db)
    with ar_db.engine.begin() as connection:
        counts = service_periods.write_service_period_health(
            alga.engine, connection, alga.tenant, as_of, alga.policy
        )
        short = service_periods.schedules_needing_replenishment(connection, as_of)
        issues = service_periods.continuity_issues(connection, as_of)
        unbilled = service_periods.unbilled_totals(connection, as_of)
        voided = service_periods.unbilled_totals(connection, as_of, voided=True)
    yield dg.MaterializeResult(
        asset_key=COVERAGE,
        metadata={
            "as_of": as_of.isoformat(),
            "dagster/row_count": counts.schedules,
            "needs_replenishment": len(short),
            "horizon_days": alga.horizon_days,
            "replenish_days": alga.replenish_days,
        },
    )
    yield dg.MaterializeResult(
        asset_key=CONTINUITY,
        metadata={
            "as_of": as_of.isoformat(),
            "dagster/row_count": counts.continuity_issues,
            "gaps": sum(1 for i in issues if i.issue == "gap"),
            "overlaps": sum(1 for i in issues if i.issue == "overlap"),
        },
    )
    unbilled_metadata: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "dagster/row_count": counts.unbilled_periods,
    }
    for total in unbilled:
        if total.currency is None:
            unbilled_metadata["periods_without_amount"] = total.periods
        else:
            unbilled_metadata[f"unbilled_base_fee_cents_{total.currency}"] = total.cents or 0
            unbilled_metadata[f"unbilled_periods_{total.currency}"] = total.periods
    for total in voided:
        key = total.currency or "without_amount"
        unbilled_metadata[f"billed_on_voided_invoice_periods_{key}"] = total.periods
        if total.currency is not None:
            unbilled_metadata[f"billed_on_voided_invoice_cents_{key}"] = total.cents or 0
    unbilled_metadata["amounts"] = BASE_FEE_NOTE
    yield dg.MaterializeResult(asset_key=UNBILLED, metadata=unbilled_metadata)


def _warning(
    as_of: dt.date, names: list[str], lines: list[str], healthy: str, problem: str,
    counts: dict[str, int], subject: str = "schedules",
) -> dg.AssetCheckResult:  # fmt: skip
    """A WARN result that names what is wrong (the first ``LISTED``) and details each line."""
    more = len(lines) - LISTED
    shown = lines[:LISTED] + ([f"- ... and {more} more"] if more > 0 else [])
    return dg.AssetCheckResult(
        passed=not names,
        severity=dg.AssetCheckSeverity.WARN,
        description=healthy if not names else (
            f"{len(names)} {subject[:-1]}(s) {problem}: {', '.join(names[:LISTED])}"
        ),
        metadata={
            "as_of": as_of.isoformat(),
            **counts,  # numeric: the UI plots them
            subject: names,
            "details": dg.MetadataValue.md("\n".join(shown) or "-"),
        },
    )  # fmt: skip


@dg.asset_check(asset=COVERAGE, blocking=False, retry_policy=DB_RETRY)
def service_periods_replenished(
    context: dg.AssetCheckExecutionContext, ar_db: ArDatabase
) -> dg.AssetCheckResult:
    """WARN when an active schedule needs replenishment: its generated service periods end
    within the replenishment threshold (or there are none ahead), so billing will soon run out
    of periods to invoice. Lists the schedules."""
    as_of = run_as_of(context, ar_db)
    with ar_db.engine.connect() as connection:
        short = service_periods.schedules_needing_replenishment(connection, as_of)
    return _warning(
        as_of,
        [r.schedule_key for r in short],
        [f"- {r.schedule_key}: {service_periods.describe_replenishment(r)}" for r in short],
        "every active schedule is generated beyond the replenishment threshold",
        "need replenishment",
        {"schedules_needing_replenishment": len(short)},
    )


@dg.asset_check(asset=CONTINUITY, blocking=False, retry_policy=DB_RETRY)
def service_periods_continuous(
    context: dg.AssetCheckExecutionContext, ar_db: ArDatabase
) -> dg.AssetCheckResult:
    """WARN when a schedule has a gap (days no period covers: service never invoiced) or an
    overlap (days covered twice: service invoiced twice) between its live periods. Lists the
    schedules with the dates involved."""
    as_of = run_as_of(context, ar_db)
    with ar_db.engine.connect() as connection:
        issues = service_periods.continuity_issues(connection, as_of)
    return _warning(
        as_of,
        sorted({i.schedule_key for i in issues}),
        [f"- {i.schedule_key}: {service_periods.describe_issue(i)}" for i in issues],
        "no gaps or overlaps between live service periods",
        "with gaps or overlaps",
        {"gaps": sum(1 for i in issues if i.issue == "gap"),
         "overlaps": sum(1 for i in issues if i.issue == "overlap")},
    )  # fmt: skip


@dg.asset_check(asset=UNBILLED, blocking=False, retry_policy=DB_RETRY)
def service_periods_not_on_voided_invoices(
    context: dg.AssetCheckExecutionContext, ar_db: ArDatabase
) -> dg.AssetCheckResult:
    """WARN when a service period is still billed and linked to an invoice that was voided:
    voiding (unlike deleting) leaves the period billed, so the service it stands for is
    invoiced nowhere. Lists the schedules; each gets a repair plan."""
    as_of = run_as_of(context, ar_db)
    with ar_db.engine.connect() as connection:
        periods = service_periods.periods_on_voided_invoices(connection, as_of)
    return _warning(
        as_of,
        sorted({p.schedule_key for p in periods}),
        [f"- {p.schedule_key}: {service_periods.describe_voided(p)}" for p in periods],
        "no service period is billed on a voided invoice",
        "with periods billed on a voided invoice",
        {"periods_on_voided_invoices": len(periods)},
    )


@dg.asset_check(asset=dg.AssetKey("ar_aging"), blocking=False, retry_policy=DB_RETRY)
def unapplied_credit_not_negative(
    context: dg.AssetCheckExecutionContext, ar_db: ArDatabase
) -> dg.AssetCheckResult:
    """WARN when a customer's unapplied credit is below zero: Alga's credit ledger contradicts
    itself for that customer (credit drawn from a row the copy skipped, see
    ``alga_rows_mapped``), so its dunnable amount is overstated. Review those letters before
    approving them."""
    as_of = run_as_of(context, ar_db)
    with ar_db.engine.connect() as connection:
        rows = alga_psa.negative_credit(connection, as_of)
    return _warning(
        as_of,
        sorted({r.customer_name for r in rows}),
        [f"- {r.customer_name} ({r.customer_id}): unapplied credit "
         f"{format_money(r.unapplied_credit_cents, r.currency)}" for r in rows],
        "no customer has negative unapplied credit",
        "with negative unapplied credit (dunnable overstated)",
        {"customers_with_negative_credit": len(rows)},
        subject="customers",
    )  # fmt: skip


@dg.asset(
    group_name=ACTIONS_GROUP,
    kinds={"sql"},
    owners=OWNERS,
    retry_policy=DB_RETRY,
    deps=[COVERAGE, CONTINUITY, UNBILLED],
)
def service_period_repair_plans(
    context: dg.AssetExecutionContext, ar_db: ArDatabase, alga: AlgaPsa
) -> dg.MaterializeResult:
    """A repair plan per schedule that needs replenishment or a backfill, has a gap or overlap,
    or has periods billed on a voided invoice, staged in ``proposed_actions`` for a human
    (``service_period_repair``) with the schedule's rows as Alga's
    ``IRecurringServicePeriodRecord``; the pipeline never applies it and never writes to
    Alga PSA."""
    as_of = run_as_of(context, ar_db)
    horizon_end = as_of + dt.timedelta(days=alga.horizon_days)
    with ar_db.engine.begin() as connection:
        staged = service_periods.stage_repair_plans(
            connection, as_of, context.run.run_id, horizon_end, dt.datetime.now(dt.UTC),
            source=alga.engine, tenant=alga.tenant,
        )  # fmt: skip
    return dg.MaterializeResult(metadata={"as_of": as_of.isoformat(), "repair_plans": staged})


BASE_FEE_NOTE = (
    "base fee: the fixed recurring fee per period (pricing schedule applied); hourly, usage "
    "and product charges, proration and tax are not included"
)


def unbilled_lines(connection: Any, as_of: dt.date, voided: bool = False) -> list[str]:
    """The unbilled due work of ``as_of`` in words, per currency (``voided``: the periods
    billed on a voided invoice). Amounts are base fees, never the whole charge."""
    lines = []
    for total in service_periods.unbilled_totals(connection, as_of, voided):
        if total.currency is None:
            lines.append(f"{total.periods} period(s) whose contract line gives no base fee")
        else:
            lines.append(
                f"base fee {format_money(total.cents or 0, total.currency)} in "
                f"{total.periods} period(s)"
            )
    return lines


@dg.op(retry_policy=DB_RETRY)
def refresh_alga_ledger(context: dg.OpExecutionContext, ar_db: ArDatabase, alga: AlgaPsa) -> None:
    """Copy again, before applying, the Alga PSA ledger of the customers this run is about to
    write to (the actions in ``apply_approved``'s config), so that its re-check sees a payment
    recorded in Alga since the daily run and supersedes the letter instead of sending it."""
    action_ids = context.run_config["ops"]["apply_approved"]["config"]["action_ids"]
    pa = proposed_actions.c
    with ar_db.engine.connect() as connection:
        clients = (
            connection.execute(
                sa.select(pa.customer_id)
                .where(pa.action_id.in_(action_ids), pa.customer_id.is_not(None))
                .distinct()
            )
            .scalars()
            .all()
        )
    _copy_ledger(context, ar_db, alga, only=list(clients))


@dg.job(
    name=APPLY_JOB,
    executor_def=dg.in_process_executor,
    description="The only job with side effects: copies again the Alga PSA ledger of the "
    "customers concerned, then sends approved letters and sets approved holds.",
)
def apply_approved_actions_on_alga() -> None:
    apply_approved(after=refresh_alga_ledger())


ALGA_ASSETS = [alga_ledger, service_period_health, service_period_repair_plans]
ALGA_CHECKS = [
    service_periods_replenished,
    service_periods_continuous,
    service_periods_not_on_voided_invoices,
    unapplied_credit_not_negative,
]
