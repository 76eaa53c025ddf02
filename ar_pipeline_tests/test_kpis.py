"""KPIs: the formulas as plain functions, and on a small ledger on both databases.
Every expected value is worked out by hand below."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from ar_pipeline.kpis import MonthSales, compute_kpis, countback_dso, sales_periods
from ar_pipeline.trend import summary_rows
from ar_pipeline_tests.ledger_builder import add_customer, add_invoice, add_payment

AS_OF = dt.date(2026, 3, 31)


def test_sales_periods_are_calendar_months_back_from_the_day():
    assert sales_periods(AS_OF) == [
        (dt.date(2026, 2, 28), dt.date(2026, 3, 31)),  # 31 days
        (dt.date(2026, 1, 31), dt.date(2026, 2, 28)),  # 28 days
        (dt.date(2025, 12, 31), dt.date(2026, 1, 31)),  # 31 days
    ]


def test_countback():
    months = [MonthSales(31, 1_000), MonthSales(28, 2_000), MonthSales(31, 600)]
    # AR 500 lies within the latest month: 31 x 500 / 1000 = 15.5 days
    assert countback_dso(500, months) == Fraction(31, 2)
    # AR 3,400: 31 days (1,000), 28 days (2,000), then 31 x 400 / 600 = 20 2/3 -> 79 2/3
    assert countback_dso(3_400, months) == Fraction(239, 3)
    # AR beyond three months of sales: the three months' days, a floor
    assert countback_dso(10_000, months) == 90
    assert countback_dso(0, months) == 0
    # a month without sales is passed through whole
    assert countback_dso(500, [MonthSales(30, 0), MonthSales(31, 1_000)]) == Fraction(91, 2)


def test_ratios_without_denominator_are_none():
    k = compute_kpis(0, 0, 0, 0, [MonthSales(31, 0)] * 3)
    assert (k.cei_pct, k.over_90_pct, k.dso_days) == (None, None, Decimal("0.0"))
    k = compute_kpis(1_000, 0, 0, 0, [MonthSales(31, 0)] * 3)  # AR, but no sales: no DSO
    assert k.dso_days is None and k.over_90_pct == Decimal("0.0")


def test_kpis_on_a_ledger(engine):
    """As of 2026-03-31, EUR:
    X1 1,000.00 issued 03-10, due 04-09: current
    X2 2,000.00 issued 02-10, due 03-12, 500.00 paid 03-20: 1,500.00 open, 19 days overdue
    X3   600.00 issued 01-15, due 02-14: 45 days overdue
    X4   400.00 issued 2025-11-15, paid in full 03-05
    X5   300.00 issued 2025-11-01, due 2025-12-01: 120 days overdue

    total AR 3,400.00, current 1,000.00, over 90: 300.00
    credit sales: (02-28, 03-31] 1,000; (01-31, 02-28] 2,000; (12-31, 01-31] 600
    DSO = 31 + 28 + 31 x 400/600 = 79.67 -> 79.7; best possible = 31 x 1000/1000 = 31.0;
    ADD = 48.67 -> 48.7
    beginning AR (02-28) = 2,000 + 600 + 400 + 300 = 3,300
    CEI = (3,300 + 1,000 - 3,400) / (3,300 + 1,000 - 1,000) = 900 / 3,300 = 27.27% -> 27.3
    over 90 = 300 / 3,400 = 8.82% -> 8.8
    """
    with engine.begin() as connection:
        add_customer(connection, "K")
        add_invoice(connection, "X1", "K", 100_000, "2026-03-10", "2026-04-09")
        add_invoice(connection, "X2", "K", 200_000, "2026-02-10", "2026-03-12")
        add_payment(connection, "PX2", "K", 50_000, "2026-03-20", "X2")
        add_invoice(connection, "X3", "K", 60_000, "2026-01-15", "2026-02-14")
        add_invoice(connection, "X4", "K", 40_000, "2025-11-15", "2025-12-15")
        add_payment(connection, "PX4", "K", 40_000, "2026-03-05", "X4")
        add_invoice(connection, "X5", "K", 30_000, "2025-11-01", "2025-12-01")
        (row,) = summary_rows(connection, [AS_OF], ZoneInfo("UTC"))
    assert row["total_open_cents"] == 340_000
    assert row["credit_sales_3m_cents"] == 360_000
    assert row["dso_days"] == Decimal("79.7")
    assert row["best_possible_dso_days"] == Decimal("31.0")
    assert row["average_days_delinquent"] == Decimal("48.7")
    assert row["cei_pct"] == Decimal("27.3")
    assert row["over_90_pct"] == Decimal("8.8")
    # tiers: 1,500 at 19 days, 600 at 45, 300 at 120 -> tier 4 needs 500.00 at 60+ days: 300
    # is short; tier 3 (100.00 at 30+): 600 + 300 = 900 -> target tier 3, dunnable 2,400.00
    assert (row["tier_3_customers"], row["tier_3_cents"]) == (1, 240_000)
    assert row["tier_4_customers"] == 0 and row["customers_overdue"] == 1
