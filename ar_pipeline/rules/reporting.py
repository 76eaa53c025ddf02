"""Read-side summaries of a run, per currency (amounts of different currencies are never
added): used for Dagster metadata and for what the CLI prints."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from ar_pipeline.rules.money import format_money
from ar_pipeline.store.schema import AGING_MONEY, ar_aging, tier_assignments

TOTAL_COLUMNS = AGING_MONEY


@dataclass(frozen=True)
class CurrencyTotals:
    currency: str
    customers: int
    customers_overdue: int
    cents: dict[str, int]


def aging_totals(connection: sa.Connection, as_of: dt.date) -> list[CurrencyTotals]:
    """Sums of every money column of ``ar_aging`` per currency, as of ``as_of``."""
    query = (
        sa.select(
            ar_aging.c.currency,
            sa.func.count().label("customers"),
            sa.func.sum(sa.case((ar_aging.c.overdue_cents > 0, 1), else_=0)).label("overdue"),
            *[sa.func.sum(ar_aging.c[name]).label(name) for name in TOTAL_COLUMNS],
        )
        .where(ar_aging.c.as_of == as_of)
        .group_by(ar_aging.c.currency)
        .order_by(ar_aging.c.currency)
    )
    return [
        CurrencyTotals(
            row.currency,
            int(row.customers),
            int(row.overdue),
            {name: int(row._mapping[name] or 0) for name in TOTAL_COLUMNS},
        )
        for row in connection.execute(query)
    ]


def largest_overdue(connection: sa.Connection, as_of: dt.date, limit: int = 10) -> list[sa.Row]:
    """The ``limit`` largest overdue balances of each currency (ties: customer id), currency by
    currency: minor units of two currencies are never compared, so 600,000 JPY never outranks
    5,000.00 EUR, and no currency drops out of the list."""
    a = ar_aging.c
    rank = sa.func.row_number().over(
        partition_by=a.currency, order_by=(a.overdue_cents.desc(), a.customer_id)
    )
    ranked = (
        sa.select(
            a.customer_id, a.customer_name, a.currency, a.overdue_cents, a.days_over_90_cents,
            a.days_over_120_cents, a.max_days_overdue, rank.label("rank_in_currency"),
        )  # fmt: skip
        .where(a.as_of == as_of, a.overdue_cents > 0)
        .subquery("ranked")
    )
    r = ranked.c
    query = (
        sa.select(*[c for c in r if c.name != "rank_in_currency"])
        .where(r.rank_in_currency <= limit)
        .order_by(r.currency, r.rank_in_currency)
    )
    return list(connection.execute(query))


def largest_overdue_markdown(rows: list[sa.Row]) -> str:
    lines = [
        "| customer | currency | overdue | over 90 days | of which over 120 | max days overdue |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        over_120 = r.days_over_120_cents  # null on rows written before the split
        lines.append(
            f"| {r.customer_name} ({r.customer_id}) | {r.currency} | "
            f"{format_money(r.overdue_cents, r.currency)} | "
            f"{format_money(r.days_over_90_cents, r.currency)} | "
            f"{'-' if over_120 is None else format_money(over_120, r.currency)} | "
            f"{r.max_days_overdue} |"
        )
    return "\n".join(lines)


def tier_outcomes(connection: sa.Connection, as_of: dt.date) -> dict[str, int]:
    """Customers per proposed tier (``tier_<n>``) and per skip reason, as of ``as_of``."""
    outcome = sa.case(
        (tier_assignments.c.proposed_tier.is_not(None),
         sa.literal("tier_") + sa.cast(tier_assignments.c.proposed_tier, sa.Text)),
        else_=tier_assignments.c.skip_reason,
    )  # fmt: skip
    query = (
        sa.select(outcome.label("outcome"), sa.func.count().label("n"))
        .where(tier_assignments.c.as_of == as_of)
        .group_by(outcome)
        .order_by(outcome)
    )
    return {row.outcome: int(row.n) for row in connection.execute(query)}
