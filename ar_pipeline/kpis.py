"""Accounts-receivable KPIs, as plain functions over per-currency figures in minor units.

Formulas (D is the as-of date, months are calendar months counted back from D):

* **DSO, countback method** over the trailing 3 months of credit sales: start from total AR on
  D; walk back month by month (most recent first); while AR exceeds the month's credit sales,
  subtract them and add the month's days; in the month where it no longer does, add
  ``days x remaining AR / sales`` and stop. When AR exceeds all three months of sales, DSO is
  the three months' days (a floor: the true figure is higher).
* **Best possible DSO**: the same countback applied to current (not yet due) AR.
* **Average days delinquent (ADD)** = DSO - best possible DSO.
* **CEI** for the month ending on D =
  (beginning AR + credit sales - ending total AR) / (beginning AR + credit sales - ending current
  AR) x 100, where beginning AR is total AR one month before D and credit sales are the month's.
* **Share of open AR over 90 days** = AR more than 90 days overdue / total AR x 100.

Credit sales are the amounts of invoices issued (status ``issued``) in the period. Results are
``Decimal`` rounded half up to one place; ``None`` where a ratio has no denominator.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from dateutil.relativedelta import relativedelta

DSO_MONTHS = 3
ONE_PLACE = Decimal("0.1")


def _rounded(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        ONE_PLACE, rounding=ROUND_HALF_UP
    )


def month_before(day: dt.date, months: int = 1) -> dt.date:
    """``day`` minus whole calendar months (2026-03-31 -> 2026-02-28)."""
    return day - relativedelta(months=months)


def sales_periods(as_of: dt.date, months: int = DSO_MONTHS) -> list[tuple[dt.date, dt.date]]:
    """The trailing months as half-open (after, through] date pairs, most recent first."""
    ends = [month_before(as_of, k) for k in range(months + 1)]
    return [(ends[k + 1], ends[k]) for k in range(months)]


@dataclass(frozen=True)
class MonthSales:
    days: int
    sales_cents: int


def countback_dso(ar_cents: int, months: Sequence[MonthSales]) -> Fraction:
    """Days of sales in ``ar_cents``, counting back through ``months`` (most recent first)."""
    remaining = Fraction(max(ar_cents, 0))
    days = Fraction(0)
    for month in months:
        if remaining <= 0:
            break
        if month.sales_cents > 0 and remaining <= month.sales_cents:
            return days + month.days * remaining / month.sales_cents
        days += month.days
        remaining -= max(month.sales_cents, 0)
    return days


@dataclass(frozen=True)
class Kpis:
    dso_days: Decimal | None
    best_possible_dso_days: Decimal | None
    average_days_delinquent: Decimal | None
    cei_pct: Decimal | None
    over_90_pct: Decimal | None


def compute_kpis(
    total_ar_cents: int,
    current_ar_cents: int,
    over_90_cents: int,
    beginning_ar_cents: int,
    months: Sequence[MonthSales],
) -> Kpis:
    """All KPIs of this module's docstring for one currency on one day."""
    if any(m.sales_cents > 0 for m in months) or total_ar_cents <= 0:
        dso = countback_dso(total_ar_cents, months)
        best = countback_dso(current_ar_cents, months)
        dso_kpis = (_rounded(dso), _rounded(best), _rounded(dso - best))
    else:
        dso_kpis = (None, None, None)  # AR but no sales in three months: DSO is undefined
    month_sales = months[0].sales_cents if months else 0
    denominator = beginning_ar_cents + month_sales - current_ar_cents
    cei = (
        _rounded(Fraction(beginning_ar_cents + month_sales - total_ar_cents, denominator) * 100)
        if denominator > 0
        else None
    )
    over_90 = (
        _rounded(Fraction(over_90_cents, total_ar_cents) * 100) if total_ar_cents > 0 else None
    )
    return Kpis(*dso_kpis, cei, over_90)
