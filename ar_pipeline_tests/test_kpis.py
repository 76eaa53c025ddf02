"""KPIs: the formulas as plain functions, and on a small ledger on both databases.
Every expected value is worked out by hand below."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from ar_pipeline.rules.kpis import (
    MonthSales,
    beginning_of_period,
    compute_kpis,
    countback_dso,
    sales_periods,
)
from ar_pipeline.rules.trend import summary_rows
from ar_pipeline_tests.ledger_builder import (
    add_credit_note,
    add_customer,
    add_invoice,
    add_payment,
)

AS_OF = dt.date(2026, 3, 31)
d = dt.date


def test_sales_periods_are_calendar_months_back_from_the_day():
    assert sales_periods(AS_OF) == [
        (dt.date(2026, 2, 28), dt.date(2026, 3, 31)),  # 31 days
        (dt.date(2026, 1, 31), dt.date(2026, 2, 28)),  # 28 days
        (dt.date(2025, 12, 31), dt.date(2026, 1, 31)),  # 31 days
    ]


def test_at_a_month_end_the_periods_are_calendar_months():
    # 30 April: April, March, February (one month back from 04-30 is 03-30 by the calendar
    # arithmetic, which would let 31 March count as April's)
    assert sales_periods(d(2026, 4, 30)) == [
        (d(2026, 3, 31), d(2026, 4, 30)),
        (d(2026, 2, 28), d(2026, 3, 31)),
        (d(2026, 1, 31), d(2026, 2, 28)),
    ]
    assert beginning_of_period(d(2026, 4, 30)) == d(2026, 3, 31)
    # February's last day, in a common and in a leap year
    assert sales_periods(d(2026, 2, 28)) == [
        (d(2026, 1, 31), d(2026, 2, 28)),
        (d(2025, 12, 31), d(2026, 1, 31)),
        (d(2025, 11, 30), d(2025, 12, 31)),
    ]
    assert sales_periods(d(2028, 2, 29))[0] == (d(2028, 1, 31), d(2028, 2, 29))
    assert beginning_of_period(d(2028, 2, 29)) == d(2028, 1, 31)


def test_on_other_days_the_periods_end_on_the_same_date_each_month():
    assert sales_periods(d(2026, 4, 15)) == [
        (d(2026, 3, 15), d(2026, 4, 15)),
        (d(2026, 2, 15), d(2026, 3, 15)),
        (d(2026, 1, 15), d(2026, 2, 15)),
    ]
    # the 30th of a 31-day month is not a month-end; February has no 30th: its last day
    assert sales_periods(d(2026, 3, 30)) == [
        (d(2026, 2, 28), d(2026, 3, 30)),  # 30 days
        (d(2026, 1, 30), d(2026, 2, 28)),  # 29 days
        (d(2025, 12, 30), d(2026, 1, 30)),  # 31 days
    ]
    # 28 February of a leap year is not its month-end
    assert sales_periods(d(2028, 2, 28))[0] == (d(2028, 1, 28), d(2028, 2, 28))
    assert beginning_of_period(d(2026, 4, 15)) == d(2026, 3, 15)


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


def _billed_on_month_ends(connection, bills: list[tuple[str, str | None]]):
    """Customer M billed 1,000.00 EUR on each ``(month-end, paid on)``, due 14 days later."""
    add_customer(connection, "M")
    for n, (issued, paid) in enumerate(bills):
        issue = dt.date.fromisoformat(issued)
        add_invoice(connection, f"M{n}", "M", 100_000, issued,
                    (issue + dt.timedelta(days=14)).isoformat())  # fmt: skip
        if paid:
            add_payment(connection, f"PM{n}", "M", 100_000, paid, f"M{n}")


def test_month_end_ledger_counts_back_calendar_months(engine):
    """Billed 1,000.00 on the last day of each month, due 14 days later. As of 2026-04-30:
    31 Jan paid 02-20, 28 Feb paid 04-10; 31 Mar (due 04-14: 16 days overdue) and 30 Apr
    (due 05-14: current) open. AR 2,000.00, current 1,000.00.

    Calendar months: April sales 1,000 (30 Apr), March 1,000 (31 Mar), February 1,000 (28 Feb).
    DSO = 30 (April: AR 2,000 > 1,000) + 31 x 1,000 / 1,000 (March) = 61.0
    best possible = 30 x 1,000 / 1,000 = 30.0; ADD = 31.0
    CEI (April): beginning AR on 31 March = 28 Feb + 31 Mar = 2,000;
    (2,000 + 1,000 - 2,000) / (2,000 + 1,000 - 1,000) = 50.0
    A window from 30 March would hold two bills (31 Mar and 30 Apr, 2,000) and give
    31 x 2,000 / 2,000 = 31.0 days: about half.
    """
    with engine.begin() as connection:
        _billed_on_month_ends(connection, [
            ("2026-01-31", "2026-02-20"), ("2026-02-28", "2026-04-10"),
            ("2026-03-31", None), ("2026-04-30", None),
        ])  # fmt: skip
        (row,) = summary_rows(connection, [d(2026, 4, 30)], ZoneInfo("UTC"))
    assert row["total_open_cents"] == 200_000 and row["current_cents"] == 100_000
    assert row["credit_sales_3m_cents"] == 300_000  # February, March, April: one bill each
    assert row["dso_days"] == Decimal("61.0")
    assert row["best_possible_dso_days"] == Decimal("30.0")
    assert row["average_days_delinquent"] == Decimal("31.0")
    assert row["cei_pct"] == Decimal("50.0")
    assert row["dso_gross_days"] == Decimal("61.0")  # no unapplied credit: net = gross


def test_february_month_end(engine):
    """Billed 1,000.00 on 30 Nov, 31 Dec, 31 Jan and 28 Feb, due 14 days later; 30 Nov paid
    12-20, 31 Dec paid 02-10. As of 2026-02-28: 31 Jan (14 days overdue) and 28 Feb (current)
    open, AR 2,000.00.

    Periods: February (28 days, 1,000), January (31 days, 1,000), December (31 days, 1,000).
    DSO = 28 + 31 x 1,000 / 1,000 = 59.0; best possible = 28 x 1,000 / 1,000 = 28.0
    CEI (February): beginning AR on 31 January = 31 Dec + 31 Jan = 2,000;
    (2,000 + 1,000 - 2,000) / (2,000 + 1,000 - 1,000) = 50.0
    Stepping back one month from 28 February gives 28 January: that window (31 days) holds
    31 Jan and 28 Feb, 2,000, and would say 31.0 days; its three months would hold four bills.
    """
    with engine.begin() as connection:
        _billed_on_month_ends(connection, [
            ("2025-11-30", "2025-12-20"), ("2025-12-31", "2026-02-10"),
            ("2026-01-31", None), ("2026-02-28", None),
        ])  # fmt: skip
        (row,) = summary_rows(connection, [d(2026, 2, 28)], ZoneInfo("UTC"))
    assert row["total_open_cents"] == 200_000
    assert row["credit_sales_3m_cents"] == 300_000
    assert row["dso_days"] == Decimal("59.0")
    assert row["best_possible_dso_days"] == Decimal("28.0")
    assert row["average_days_delinquent"] == Decimal("31.0")
    assert row["cei_pct"] == Decimal("50.0")


def test_net_receivables_versus_gross(engine):
    """As of 2026-03-31, customer N, EUR:
    I1 300.00 issued 03-15, due 04-14: current
    I2 700.00 issued 2025-11-30, due 2025-12-30: 1 + 31 + 28 + 31 = 91 days overdue (91-120)
    I3 500.00 issued 02-10, due 03-12, paid in full 03-12
    400.00 paid on account 03-20; a 100.00 credit note naming no invoice 03-25

    gross: open items 1,000.00, current 300.00, over 90 700.00
    net balance = invoices 1,500 - credit notes 100 - payments 900 = 500.00
               = open items 1,000 - unapplied credit 500
    the credit settles the oldest items first: over 90 700 - 500 = 200.00 net over 90; nothing
    is left for the current item: net current = min(300, 500) = 300.00
    sales: March 300 (I1), February 500 (I3), January 0
    DSO (net 500): 31 (March) + 28 x 200 / 500 = 31 + 11.2 = 42.2
    DSO gross (1,000): 31 + 28 + 31 (January, no sales) = 90.0, the three periods' days
    best possible (net current 300): 31 x 300 / 300 = 31.0; ADD = 11.2
    beginning AR on 28 February: I2 700 + I3 500 = 1,200, no credit yet (net = gross)
    CEI = (1,200 + 300 - 500) / (1,200 + 300 - 300) = 1,000 / 1,200 = 83.3
    CEI gross = (1,200 + 300 - 1,000) / (1,200 + 300 - 300) = 500 / 1,200 = 41.7
    share over 90: net 200 / 500 = 40.0; gross 700 / 1,000 = 70.0
    """
    with engine.begin() as connection:
        add_customer(connection, "N")
        add_invoice(connection, "I1", "N", 30_000, "2026-03-15", "2026-04-14")
        add_invoice(connection, "I2", "N", 70_000, "2025-11-30", "2025-12-30")
        add_invoice(connection, "I3", "N", 50_000, "2026-02-10", "2026-03-12")
        add_payment(connection, "P3", "N", 50_000, "2026-03-12", "I3")
        add_payment(connection, "P-on-account", "N", 40_000, "2026-03-20")
        add_credit_note(connection, "CN-unapplied", "N", 10_000, "2026-03-25")
        (row,) = summary_rows(connection, [AS_OF], ZoneInfo("UTC"))
    assert (row["total_open_cents"], row["current_cents"], row["days_over_90_cents"]) == (
        100_000, 30_000, 70_000,
    )  # fmt: skip
    assert (row["days_91_120_cents"], row["days_over_120_cents"]) == (70_000, 0)
    assert row["unapplied_credit_cents"] == 50_000
    assert row["net_balance_cents"] == 50_000
    assert (row["net_current_cents"], row["net_over_90_cents"]) == (30_000, 20_000)
    assert row["credit_sales_3m_cents"] == 80_000
    assert row["dso_days"] == Decimal("42.2")
    assert row["best_possible_dso_days"] == Decimal("31.0")
    assert row["average_days_delinquent"] == Decimal("11.2")
    assert row["cei_pct"] == Decimal("83.3")
    assert row["over_90_pct"] == Decimal("40.0")
    assert row["dso_gross_days"] == Decimal("90.0")
    assert row["cei_gross_pct"] == Decimal("41.7")
    assert row["over_90_gross_pct"] == Decimal("70.0")


def test_credit_beyond_the_overdue_items_nets_the_current_ones(engine):
    """As of 2026-03-31, customer Q, EUR: J1 600.00 issued 03-10 due 04-09 (current), J2 100.00
    issued 2025-12-01 due 2025-12-31 (90 days overdue: 61-90); 400.00 on account 03-20.
    The credit settles J2 (100) first, then 300 of J1: net current = 600 - 300 = 300.00 =
    min(600, 700 - 400); nothing over 90. Sales: March 600, February 0, January 0.
    DSO (net 300) = 31 x 300 / 600 = 15.5 = best possible; ADD 0.0. Gross DSO (700):
    31 + 28 (no February sales) + 31 (no January sales) = 90.0."""
    with engine.begin() as connection:
        add_customer(connection, "Q")
        add_invoice(connection, "J1", "Q", 60_000, "2026-03-10", "2026-04-09")
        add_invoice(connection, "J2", "Q", 10_000, "2025-12-01", "2025-12-31")
        add_payment(connection, "PQ", "Q", 40_000, "2026-03-20")
        (row,) = summary_rows(connection, [AS_OF], ZoneInfo("UTC"))
    assert (row["days_61_90_cents"], row["days_over_90_cents"]) == (10_000, 0)
    assert (row["net_balance_cents"], row["net_current_cents"], row["net_over_90_cents"]) == (
        30_000, 30_000, 0,
    )  # fmt: skip
    assert row["dso_days"] == row["best_possible_dso_days"] == Decimal("15.5")
    assert row["average_days_delinquent"] == Decimal("0.0")
    assert row["dso_gross_days"] == Decimal("90.0")
    assert row["over_90_pct"] == Decimal("0.0")


def test_a_currency_whose_receivables_were_all_collected_keeps_its_row(engine):
    """EUR: Z1 100.00 issued 04-01, due 05-01, paid in full 04-20; USD: ZU 100.00 open. As of
    04-30 (a month end): EUR net AR 0, beginning AR (03-31) 0, April sales 100.00. The EUR row
    is there, all sums 0: DSO 0.0, CEI = (0 + 100 - 0) / (0 + 100 - 0) = 100.0. A currency
    with neither sales in the three months nor receivables at the period's beginning (GBP,
    all of it in January) has no row."""
    with engine.begin() as connection:
        add_customer(connection, "Z", "Zeta")
        add_invoice(connection, "Z1", "Z", 10_000, "2026-04-01", "2026-05-01")
        add_payment(connection, "PZ1", "Z", 10_000, "2026-04-20", "Z1")
        add_invoice(connection, "ZU", "Z", 10_000, "2026-04-01", "2026-05-01", currency="USD")
        add_invoice(connection, "ZG", "Z", 10_000, "2025-12-01", "2026-01-01", currency="GBP")
        add_payment(connection, "PZG", "Z", 10_000, "2026-01-10", "ZG", currency="GBP")
        rows = {r["currency"]: r for r in summary_rows(connection, [d(2026, 4, 30)],
                                                       ZoneInfo("UTC"))}  # fmt: skip
    assert sorted(rows) == ["EUR", "USD"]
    eur = rows["EUR"]
    assert (eur["total_open_cents"], eur["net_balance_cents"], eur["customers_with_open"]) == (
        0, 0, 0)  # fmt: skip
    assert (eur["dso_days"], eur["cei_pct"], eur["credit_sales_3m_cents"]) == (
        Decimal("0.0"), Decimal("100.0"), 10_000)  # fmt: skip


def test_the_share_over_90_never_exceeds_the_net_receivables(engine):
    """As of 2026-06-30, EUR: A owes A1 1,000.00, due 2026-03-01 (121 days overdue); B has
    900.00 on account and no invoice. Net AR = 1,000.00 - 900.00 = 100.00; A's net over 90 is
    1,000.00 (A has no credit of its own); B's credit settles the oldest items too, so the net
    over 90 counted is min(1,000.00, 100.00) = 100.00 and the share is 100.0 %, not 1,000 %."""
    with engine.begin() as connection:
        add_customer(connection, "A", "Alpha")
        add_customer(connection, "B", "Beta")
        add_invoice(connection, "A1", "A", 100_000, "2026-02-01", "2026-03-01")
        add_payment(connection, "PB", "B", 90_000, "2026-06-10")
        (row,) = summary_rows(connection, [d(2026, 6, 30)], ZoneInfo("UTC"))
    assert (row["net_balance_cents"], row["net_over_90_cents"]) == (10_000, 100_000)
    assert row["over_90_pct"] == Decimal("100.0")
    assert row["over_90_gross_pct"] == Decimal("100.0")  # open items alone: all of it
