"""The daily aging trend: ``ar_aging_summary``, one row per (as_of, currency).

Built for any set of past days with the same aging rules as the daily run
(:func:`ar_pipeline.rules.aging.aging_by_customer` over a selectable of dates), so the summary of
day D only sees what had happened by D. A range of days is one SQL aggregation, not a loop
over days.

Columns beyond the aging sums:

* ``customers_with_open`` / ``customers_overdue``: customers with an open balance / an overdue one
  in that currency;
* ``tier_<n>_customers`` / ``tier_<n>_cents``: customers whose position in that currency meets
  tier n of the default tiers (its target tier, before pauses and cooldowns) and their dunnable
  amount;
* ``actions_staged`` / ``actions_applied``: proposals staged as of that day and actions applied on
  that day (``AR_TIMEZONE``). These are day totals over all currencies, repeated on each
  currency's row: do not add them across currencies;
* ``net_balance_cents``: the currency's net receivables (open items - unapplied credit, summed
  over its customers, customers in credit included), which ties to invoices - credit notes -
  payments as of the day;
* ``net_current_cents`` / ``net_over_90_cents``: the net receivables that are current / more
  than 90 days overdue, with each customer's unapplied credit settling its oldest items first
  (:func:`net_current` and :func:`net_over_90`, per customer, then summed);
* the KPIs of :mod:`ar_pipeline.rules.kpis` on those net figures (``dso_days``, ``cei_pct``,
  ``over_90_pct``, ...) and on open items alone (``dso_gross_days``, ``cei_gross_pct``,
  ``over_90_gross_pct``), over the periods of :func:`ar_pipeline.rules.kpis.sales_periods`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql import FromClause, Select

from ar_pipeline.rules.aging import OVER_90_COLUMN, aging_by_customer, as_of_range
from ar_pipeline.rules.kpis import MonthSales, beginning_of_period, compute_kpis, sales_periods
from ar_pipeline.rules.ledger_sanity import within_bound
from ar_pipeline.rules.money import CURRENCY_EXPONENTS, to_minor_units
from ar_pipeline.rules.tiering import DEFAULT_TIERS, TierDefinition, boundaries, day_start_utc
from ar_pipeline.store.database import bulk_insert
from ar_pipeline.store.schema import (
    AGING_MONEY,
    SUMMARY_TIERS,
    ar_aging_summary,
    invoices,
    proposed_actions,
    service_period_coverage,
    unbilled_service_periods,
)
from ar_pipeline.store.sql_functions import non_negative

SUMMARY_COLUMNS = [c.name for c in ar_aging_summary.columns]
MONEY_SUMS = AGING_MONEY


def _minimum_minor(tier: TierDefinition, currency: sa.ColumnElement) -> sa.ColumnElement:
    """The tier's minimum in the minor units of the row's currency."""
    by_exponent: dict[int, list[str]] = defaultdict(list)
    for code, exponent in CURRENCY_EXPONENTS.items():
        by_exponent[exponent].append(code)
    return sa.case(
        *[
            (currency.in_(codes), to_minor_units(tier.min_dunnable, codes[0]))
            for codes in by_exponent.values()
        ],
        else_=to_minor_units(tier.min_dunnable, "EUR"),
    )


def net_current(aged: FromClause) -> sa.ColumnElement[int]:
    """A customer's net current AR in one currency: current AR less the unapplied credit left
    after it settled every overdue item, i.e. min(current, net balance). Negative when the
    customer is in credit."""
    return sa.case(
        (aged.c.current_cents < aged.c.net_balance_cents, aged.c.current_cents),
        else_=aged.c.net_balance_cents,
    )


def net_over_90(aged: FromClause) -> sa.ColumnElement[int]:
    """A customer's net AR more than 90 days overdue in one currency: over 90 less its unapplied
    credit (which settles the oldest items first), never below zero. Negative credit (Alga PSA:
    credit drawn beyond what the source sees) settles nothing."""
    credit = non_negative(aged.c.unapplied_credit_cents)
    return non_negative(aged.c[OVER_90_COLUMN] - credit)


def daily_totals(dates: FromClause, tiers: Sequence[TierDefinition] = DEFAULT_TIERS) -> Select:
    """Per (as_of, currency): customer counts, the money sums of ``ar_aging``, the net KPI bases
    and counts and amounts per target tier, in one aggregation over :func:`aging_by_customer`."""
    from_days = boundaries(tiers, 1)
    aged = aging_by_customer(dates, from_days=from_days).subquery("aged")
    credit = aged.c.unapplied_credit_cents
    target = sa.case(
        *[
            (
                non_negative(aged.c[f"due_from_{max(1, t.min_days_overdue)}"] - credit)
                >= _minimum_minor(t, aged.c.currency),
                t.tier,
            )
            for t in reversed(tiers)
        ],
        else_=sa.null(),
    )
    per = sa.select(aged, target.label("target_tier")).subquery("per_customer")

    def count_where(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    return sa.select(
        per.c.as_of,
        per.c.currency,
        count_where(per.c.total_open_cents > 0).label("customers_with_open"),
        count_where(per.c.overdue_cents > 0).label("customers_overdue"),
        *[sa.func.sum(per.c[name]).label(name) for name in MONEY_SUMS],
        sa.func.sum(net_current(per)).label("net_current_cents"),
        sa.func.sum(net_over_90(per)).label("net_over_90_cents"),
        *[
            column
            for t in SUMMARY_TIERS
            for column in (
                count_where(per.c.target_tier == t).label(f"tier_{t}_customers"),
                sa.func.sum(sa.case((per.c.target_tier == t, per.c.dunnable_cents), else_=0)).label(
                    f"tier_{t}_cents"
                ),
            )
        ],
    ).group_by(per.c.as_of, per.c.currency)


def _daily_sales(
    connection: sa.Connection, after: dt.date, through: dt.date
) -> dict[str, dict[dt.date, int]]:
    """Credit sales (issued invoices) per currency and issue date in (after, through]; an
    amount beyond the ledger bound is left out, as the aging leaves it out."""
    query = (
        sa.select(invoices.c.currency, invoices.c.issue_date, sa.func.sum(invoices.c.amount_cents))
        .where(
            invoices.c.kind == "invoice",
            invoices.c.status == "issued",
            invoices.c.issue_date > after,
            invoices.c.issue_date <= through,
            within_bound(invoices.c.amount_cents),
        )
        .group_by(invoices.c.currency, invoices.c.issue_date)
    )
    sales: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for currency, day, cents in connection.execute(query):
        sales[currency][day] = int(cents)
    return sales


def _actions_per_day(
    connection: sa.Connection, dates: Sequence[dt.date], timezone: ZoneInfo
) -> tuple[dict[dt.date, int], dict[dt.date, int]]:
    pa = proposed_actions.c
    staged = dict(
        connection.execute(
            sa.select(pa.as_of, sa.func.count())
            .where(
                pa.as_of >= min(dates),
                pa.as_of <= max(dates),
                pa.action_type != "workflow_envelope",
            )  # fmt: skip
            .group_by(pa.as_of)
        ).all()
    )
    applied: dict[dt.date, int] = defaultdict(int)
    for (applied_at,) in connection.execute(
        sa.select(pa.applied_at).where(
            pa.status == "applied",
            pa.applied_at >= day_start_utc(min(dates), timezone),
            pa.applied_at < day_start_utc(max(dates) + dt.timedelta(days=1), timezone),
        )
    ):
        applied[applied_at.astimezone(timezone).date()] += 1
    return staged, applied


def _unbilled_per_day(
    connection: sa.Connection, days: Sequence[dt.date]
) -> dict[dt.date, dict[str, tuple[int, int]]]:
    """Unbilled service periods with an amount, per day and currency, for the days that have
    a service-period assessment (Alga PSA source); other days are left out (unknown)."""
    assessed = connection.execute(
        sa.select(service_period_coverage.c.as_of)
        .where(service_period_coverage.c.as_of.in_(days))
        .distinct()
    ).scalars()
    per_day: dict[dt.date, dict[str, tuple[int, int]]] = {d: {} for d in assessed}
    u = unbilled_service_periods.c
    for as_of, currency, cents, periods in connection.execute(
        sa.select(u.as_of, u.currency, sa.func.sum(u.amount_cents), sa.func.count())
        .where(u.as_of.in_(days), u.currency.is_not(None), u.lifecycle_state != "billed")
        .group_by(u.as_of, u.currency)
    ):
        per_day.setdefault(as_of, {})[currency] = (int(cents), int(periods))
    return per_day


def summary_rows(
    connection: sa.Connection, dates: Sequence[dt.date], timezone: ZoneInfo
) -> list[dict[str, Any]]:
    """The ``ar_aging_summary`` rows of ``dates`` (computed, not written)."""
    wanted = sorted(set(dates))
    beginning = {d: beginning_of_period(d) for d in wanted}
    # One contiguous range covers the wanted days and each one's beginning of period (for CEI);
    # evaluating a few extra days costs little next to reading the ledger's events once.
    first_needed = min(beginning.values())
    totals: dict[tuple[dt.date, str], dict[str, Any]] = {}
    dates = as_of_range(first_needed, max(wanted))
    query = daily_totals(dates)
    for row in connection.execute(query).mappings():
        as_of = row["as_of"]
        as_of = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
        totals[(as_of, row["currency"])] = {k: v for k, v in row.items()}
    earliest = min(sales_periods(d)[-1][0] for d in wanted)
    sales = _daily_sales(connection, earliest, max(wanted))
    staged, applied = _actions_per_day(connection, wanted, timezone)
    unbilled = _unbilled_per_day(connection, wanted)

    # A currency whose receivables were all collected has no aging row that day, yet its DSO
    # (0) and CEI (what it collected) are the figures an analyst most wants to see: every
    # currency with sales in the day's periods, or receivables at their beginning, has a row.
    nothing = {c.name: 0 for c in query.selected_columns if c.name not in ("as_of", "currency")}
    for as_of in wanted:
        earliest_sale = sales_periods(as_of)[-1][0]
        active = {c for c, by_day in sales.items()
                  if any(earliest_sale < day <= as_of for day in by_day)}  # fmt: skip
        active |= {c for (day, c) in totals if day == beginning[as_of]}
        for currency in active:
            totals.setdefault((as_of, currency), dict(nothing))

    rows = []
    for (as_of, currency), total in sorted(totals.items()):
        if as_of not in beginning:
            continue  # a beginning-of-month date, computed only for CEI
        by_day = sales.get(currency, {})
        months = [
            MonthSales(
                (through - after).days,
                sum(c for day, c in by_day.items() if after < day <= through),
            )
            for after, through in sales_periods(as_of)
        ]
        start = totals.get((beginning[as_of], currency), {})
        net = compute_kpis(
            int(total["net_balance_cents"]),
            int(total["net_current_cents"]),
            int(total["net_over_90_cents"]),
            int(start.get("net_balance_cents") or 0),
            months,
        )
        gross = compute_kpis(
            int(total["total_open_cents"]),
            int(total["current_cents"]),
            int(total[OVER_90_COLUMN]),
            int(start.get("total_open_cents") or 0),
            months,
        )
        row = {name: int(total[name] or 0) for name in SUMMARY_COLUMNS if name in total
               and name not in ("as_of", "currency")}  # fmt: skip
        row.update(
            as_of=as_of,
            currency=currency,
            actions_staged=int(staged.get(as_of, 0)),
            actions_applied=int(applied.get(as_of, 0)),
            credit_sales_3m_cents=sum(m.sales_cents for m in months),
            dso_days=net.dso_days,
            best_possible_dso_days=net.best_possible_dso_days,
            average_days_delinquent=net.average_days_delinquent,
            cei_pct=net.cei_pct,
            over_90_pct=net.over_90_pct,
            dso_gross_days=gross.dso_days,
            cei_gross_pct=gross.cei_pct,
            over_90_gross_pct=gross.over_90_pct,
        )
        if as_of in unbilled:
            cents, periods = unbilled[as_of].get(currency, (0, 0))
            row.update(unbilled_cents=cents, unbilled_periods=periods)
        else:
            row.update(unbilled_cents=None, unbilled_periods=None)
        rows.append(row)
    return rows


def write_summary(
    connection: sa.Connection, first: dt.date, last: dt.date, timezone: ZoneInfo
) -> list[dict[str, Any]]:
    """Replace the summary rows of the days first..last (inclusive) inside the caller's
    transaction, so a rebuild is all or nothing. Returns the rows written."""
    days = [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]
    rows = summary_rows(connection, days, timezone)
    connection.execute(
        ar_aging_summary.delete().where(
            ar_aging_summary.c.as_of >= first, ar_aging_summary.c.as_of <= last
        )
    )
    bulk_insert(
        connection,
        ar_aging_summary,
        SUMMARY_COLUMNS,
        [tuple(row[c] for c in SUMMARY_COLUMNS) for row in rows],
    )
    return rows


def recent_rows(connection: sa.Connection, last: dt.date, days: int) -> list[dict[str, Any]]:
    """Summary rows of the ``days`` days up to ``last``, oldest first."""
    return [
        dict(r)
        for r in connection.execute(
            sa.select(ar_aging_summary)
            .where(
                ar_aging_summary.c.as_of > last - dt.timedelta(days=days),
                ar_aging_summary.c.as_of <= last,
            )
            .order_by(ar_aging_summary.c.as_of, ar_aging_summary.c.currency)
        ).mappings()
    ]
