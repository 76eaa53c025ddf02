"""Accounts-receivable KPIs, as plain functions over per-currency figures in minor units.

**Receivables are net** (the Credit Research Foundation's definitions): what the customers owe
less what they paid or were credited without it being applied to an invoice. Per customer and
currency the net balance is open items - unapplied credit (cash on account, unapplied credit
notes, overpayments), which equals invoices - credit notes - payments as of the date
(``ar_aging.net_balance_cents``); a currency's net receivables are the sum over its customers.
The gross figures (open items only, credit left aside) are kept in their own columns.

Unapplied credit has no due date, so to say how much of the net balance is current or more than
90 days overdue it is taken to settle the customer's **oldest open items first** (the rule the
dunnable amount already uses): per customer and currency,

* net current = min(current, net balance): current AR, less the credit left after it settled
  every overdue item;
* net over 90 = max(0, over 90 - credit): AR more than 90 days overdue, less the credit.

**Months.** The countback and CEI walk back over three periods of one month each, most recent
first, ending on the as-of date D (:func:`period_ends`):

* when D is the last day of its month, the periods are **calendar months**: as of 30 April,
  April, March and February; as of 28 February, February, January and December;
* on any other day they are **trailing months** that end on D's day of the month, or on a
  shorter month's last day: as of 15 April, 16 March-15 April, 16 February-15 March and
  16 January-15 February; as of 30 March, 1-30 March, 31 January-28 February and
  31 December-30 January. Each period counts its own days.

Why not month-to-date on other days: a period that restarts on the 1st holds one day of sales on
the 1st and a whole month on the 31st, so the daily trend would saw up and down every month. A
trailing month holds exactly one billing day of a customer billed monthly, whichever day it is,
and on a month-end it is the calendar month the published definitions use.

Formulas, per currency (credit sales are the amounts of invoices issued, status ``issued``, in
a period; rows beyond the ledger's amount bound are left out as the aging leaves them out):

* **DSO, countback method** over the three periods: start from net AR on D; walk back period by
  period (most recent first); while AR exceeds the period's credit sales, subtract them and add
  the period's days; in the period where it no longer does, add ``days x remaining AR / sales``
  and stop. When AR exceeds all three periods' sales, DSO is their days (a floor: the true
  figure is higher).
* **Best possible DSO**: the same countback, over the same periods, of net current AR.
* **Average days delinquent (ADD)** = DSO - best possible DSO.
* **CEI** for the period ending on D =
  (beginning AR + credit sales - ending AR) / (beginning AR + credit sales - ending current AR)
  x 100, where beginning AR is net AR on the day before the period starts (as of 30 April: on
  31 March) and credit sales are the period's.
* **Share over 90 days** = net AR more than 90 days overdue / net AR x 100, the numerator at
  most the net AR: the credit of customers with nothing left to settle (a customer only in
  credit) lowers the currency's net AR, and it settles the currency's oldest items as a
  customer's own credit settles its own, so the share never exceeds 100 %. Without that, 1,000.00
  over 90 days at one customer and 900.00 on account at another read 1,000 %.

The gross variants (DSO, CEI, share over 90) are the same formulas on open items and current /
over-90 open items, credit left aside. Results are ``Decimal`` rounded half up to one place;
``None`` where a ratio has no denominator (no AR, or AR but no sales in three months).
"""

from __future__ import annotations

import calendar
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


def is_month_end(day: dt.date) -> bool:
    """Whether ``day`` is the last day of its month (28 February 2026, 29 February 2028)."""
    return day.day == calendar.monthrange(day.year, day.month)[1]


def month_end(day: dt.date) -> dt.date:
    """The last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def period_ends(as_of: dt.date, months: int = DSO_MONTHS) -> list[dt.date]:
    """``as_of`` and the ends of the ``months`` periods before it, most recent first (see the
    module docstring): month-ends when ``as_of`` is a month-end, else the same day of the
    month, or a shorter month's last day."""
    if is_month_end(as_of):
        return [month_end(as_of - relativedelta(months=k)) for k in range(months + 1)]
    return [as_of - relativedelta(months=k) for k in range(months + 1)]


def sales_periods(as_of: dt.date, months: int = DSO_MONTHS) -> list[tuple[dt.date, dt.date]]:
    """The periods as half-open (after, through] date pairs, most recent first."""
    ends = period_ends(as_of, months)
    return [(ends[k + 1], ends[k]) for k in range(months)]


def beginning_of_period(as_of: dt.date) -> dt.date:
    """The day whose AR is CEI's beginning AR for the period ending on ``as_of``: the day
    before the period starts (the previous month-end when ``as_of`` is a month-end)."""
    return period_ends(as_of, 1)[1]


@dataclass(frozen=True)
class MonthSales:
    """One period of :func:`sales_periods`: its length in days and its credit sales."""

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
    """All KPIs of this module's docstring for one currency on one day, from the receivables
    given: net figures for the KPIs, open items for their gross variants. ``months`` are the
    periods of :func:`sales_periods`, most recent first; ``beginning_ar_cents`` is AR on
    :func:`beginning_of_period`."""
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
        _rounded(Fraction(min(over_90_cents, total_ar_cents), total_ar_cents) * 100)
        if total_ar_cents > 0
        else None
    )
    return Kpis(*dso_kpis, cei, over_90)
