"""The KPI formulas pinned at their edges: half-up rounding ties, the denominators' edges, the
countback's boundaries and the periods. Plain functions, no database; every expected value is
worked out by hand in the comments, none computed by the code under test."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest

from ar_pipeline.rules.kpis import (
    Kpis,
    MonthSales,
    beginning_of_period,
    compute_kpis,
    countback_dso,
    is_month_end,
    month_end,
    period_ends,
    sales_periods,
)

d = dt.date
THREE = [MonthSales(31, 1_000), MonthSales(28, 2_000), MonthSales(31, 600)]


def shown(k: Kpis) -> tuple:
    """The KPIs as text, so that '10.0' and '10' or '10.00' differ."""
    return tuple(None if v is None else str(v) for v in (
        k.dso_days, k.best_possible_dso_days, k.average_days_delinquent, k.cei_pct, k.over_90_pct,
    ))  # fmt: skip


def test_all_kpis_of_one_day():
    # net AR 34.00, current 5.00, over 90 3.40, beginning AR 30.00; sales 10.00, 20.00, 6.00
    # DSO: 31 + 28 + 31 x 400 / 600 = 79.666.. -> 79.7; best: 31 x 500 / 1000 = 15.5
    # ADD: 64.166.. -> 64.2; CEI: (3000 + 1000 - 3400) / (3000 + 1000 - 500) = 600 / 3500
    # = 17.142..% -> 17.1; over 90: 340 / 3400 = 10.0%
    k = compute_kpis(3_400, 500, 340, 3_000, THREE)
    assert shown(k) == ("79.7", "15.5", "64.2", "17.1", "10.0")


@pytest.mark.parametrize(
    ("over_90", "total", "pct"),
    [
        (1, 16, "6.3"),  # 6.25 -> 6.3 (half-even or half-down would say 6.2)
        (1, 400, "0.3"),  # 0.25 -> 0.3
        (1, 2_000, "0.1"),  # 0.05 -> 0.1
        (1, 2_001, "0.0"),  # 0.04997..
        (3, 8, "37.5"),
        (1, 3, "33.3"),
        (2, 3, "66.7"),
        (1, 1, "100.0"),  # one cent of AR, all of it over 90
        (0, 500, "0.0"),
    ],
)
def test_share_over_90_rounds_half_up(over_90, total, pct):
    assert str(compute_kpis(total, 0, over_90, 0, THREE).over_90_pct) == pct


def test_dso_ties_round_half_up_and_add_is_rounded_from_the_unrounded_figures():
    # 30 days x 1 / 600 = 0.05 days -> 0.1; best 0; ADD 0.05 -> 0.1
    assert shown(compute_kpis(1, 0, 0, 0, [MonthSales(30, 600)]))[:3] == ("0.1", "0.0", "0.1")
    # 100 days x AR / 10000: DSO 10.04 -> 10.0, best 5.05 -> 5.1, ADD 4.99 -> 5.0 (not 4.9)
    k = compute_kpis(1_004, 505, 0, 0, [MonthSales(100, 10_000)])
    assert shown(k)[:3] == ("10.0", "5.1", "5.0")


def test_cei_ties_round_half_up_on_both_sides_of_zero():
    # beginning 0, sales 16, ending 15, current 0: 1 / 16 = 6.25% -> 6.3
    # DSO 31 x 15 / 16 = 29.0625 -> 29.1
    assert shown(compute_kpis(15, 0, 0, 0, [MonthSales(31, 16)])) == (
        "29.1", "0.0", "29.1", "6.3", "0.0",
    )  # fmt: skip
    # ending 17 > beginning + sales: -1 / 16 = -6.25% -> -6.3 (away from zero, half up)
    assert str(compute_kpis(17, 0, 0, 0, [MonthSales(31, 16)]).cei_pct) == "-6.3"
    # beginning 10.00, sales 5.00, ending 20.00: -500 / 1500 = -33.33..% -> -33.3
    assert str(compute_kpis(2_000, 0, 0, 1_000, [MonthSales(31, 500)]).cei_pct) == "-33.3"


def test_cei_uses_the_latest_periods_sales_only():
    # beginning 0, latest period's sales 4, ending AR 1, current 0: (4 - 1) / 4 = 75%
    # (the previous period's 999 would give 998 / 999 = 99.9%)
    k = compute_kpis(1, 0, 0, 0, [MonthSales(31, 4), MonthSales(28, 999)])
    assert str(k.cei_pct) == "75.0"


def test_cei_without_a_positive_denominator_is_none():
    # beginning + sales - current = 0 + 0 - 0
    assert compute_kpis(0, 0, 0, 0, [MonthSales(31, 0), MonthSales(28, 500)]).cei_pct is None
    # 0 + 0 - 5 < 0
    assert compute_kpis(5, 5, 0, 0, [MonthSales(31, 0)]).cei_pct is None
    # 0 + 1 - 0 = 1: defined
    assert compute_kpis(0, 0, 0, 0, [MonthSales(31, 1)]).cei_pct == Decimal("100.0")


def test_without_periods():
    # no periods: no sales; nothing owed -> DSO 0; CEI (100 + 0 - 0) / (100 + 0 - 0) = 100%
    assert shown(compute_kpis(0, 0, 0, 100, [])) == ("0.0", "0.0", "0.0", "100.0", None)
    # owed but no sales: no DSO; CEI (1000 - 500) / (1000 - 0) = 50%; over 90: 0 / 500
    assert shown(compute_kpis(500, 0, 0, 1_000, [])) == (None, None, None, "50.0", "0.0")


def test_one_cent_edges_of_sales_and_ar():
    # one cent of sales in the latest period defines DSO: 31 x 1 / 1 = 31 days
    assert str(compute_kpis(1, 0, 0, 0, [MonthSales(31, 1)]).dso_days) == "31.0"
    # one cent owed and no sales in three periods: no DSO
    assert compute_kpis(1, 0, 0, 0, [MonthSales(31, 0)] * 3).dso_days is None
    # no periods, beginning 0.02, ending 0.01: CEI (2 - 1) / (2 - 0) = 50%
    assert str(compute_kpis(1, 0, 0, 2, []).cei_pct) == "50.0"


def test_net_credit_has_no_dso_to_speak_of_and_no_share():
    # customers are owed 1.00 more than they owe: DSO 0, share over 90 undefined
    k = compute_kpis(-100, 0, 0, 0, [MonthSales(31, 0)] * 3)
    assert shown(k) == ("0.0", "0.0", "0.0", None, None)


def test_sales_in_any_one_period_define_dso():
    # only the oldest period sold: 31 + 28 + 31 x 300 / 600 = 74.5 days
    months = [MonthSales(31, 0), MonthSales(28, 0), MonthSales(31, 600)]
    assert shown(compute_kpis(300, 300, 0, 0, months)) == ("74.5", "74.5", "0.0", None, "0.0")
    # negative "sales" are no sales
    assert shown(compute_kpis(500, 0, 0, 0, [MonthSales(31, -200)])) == (
        None, None, None, None, "0.0",
    )  # fmt: skip


def test_countback_edges():
    # AR exactly the latest period's sales: that period's days
    assert countback_dso(1_000, THREE) == 31
    # one cent more: 31 + 28 x 1 / 2000 = 31 + 7/500
    assert countback_dso(1_001, THREE) == Fraction(15_507, 500)
    # exactly all three periods' sales (3,600): 90 days; one cent more: still 90 (a floor)
    assert countback_dso(3_600, THREE) == 90
    assert countback_dso(3_601, THREE) == 90
    # exact fractions, not floats: 31 x 1 / 3
    assert countback_dso(1, [MonthSales(31, 3)]) == Fraction(31, 3)
    assert countback_dso(500, []) == 0


def test_countback_without_ar_adds_no_days_even_past_periods_without_sales():
    assert countback_dso(0, [MonthSales(30, 0), MonthSales(31, 1_000)]) == 0
    assert countback_dso(-500, [MonthSales(30, 0), MonthSales(31, 1_000)]) == 0


def test_countback_passes_negative_sales_through_whole():
    # a period with -5.00 of sales: its 30 days, and AR stays 500; then 31 x 500 / 1000
    assert countback_dso(500, [MonthSales(30, -500), MonthSales(31, 1_000)]) == Fraction(91, 2)
    assert countback_dso(500, [MonthSales(30, 0)] * 3) == 90


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (d(2026, 2, 28), True),
        (d(2028, 2, 28), False),  # leap year
        (d(2028, 2, 29), True),
        (d(2026, 4, 30), True),
        (d(2026, 3, 30), False),
        (d(2026, 12, 31), True),
        (d(2026, 1, 1), False),
    ],
)
def test_is_month_end(day, expected):
    assert is_month_end(day) is expected


def test_month_end():
    assert month_end(d(2026, 2, 10)) == d(2026, 2, 28)
    assert month_end(d(2028, 2, 1)) == d(2028, 2, 29)
    assert month_end(d(2026, 4, 1)) == d(2026, 4, 30)
    assert month_end(d(2026, 12, 31)) == d(2026, 12, 31)


def test_period_ends():
    # a month-end: the month-ends before it
    assert period_ends(d(2026, 5, 31)) == [
        d(2026, 5, 31),
        d(2026, 4, 30),
        d(2026, 3, 31),
        d(2026, 2, 28),
    ]
    # the 30th of a 31-day month: the 30th back, February's last day where it has none
    assert period_ends(d(2026, 5, 30)) == [
        d(2026, 5, 30),
        d(2026, 4, 30),
        d(2026, 3, 30),
        d(2026, 2, 28),
    ]
    # over the year's turn
    assert period_ends(d(2026, 1, 15)) == [
        d(2026, 1, 15),
        d(2025, 12, 15),
        d(2025, 11, 15),
        d(2025, 10, 15),
    ]
    assert period_ends(d(2026, 3, 31), 1) == [d(2026, 3, 31), d(2026, 2, 28)]
    assert period_ends(d(2026, 3, 31), 0) == [d(2026, 3, 31)]


def test_sales_periods_take_a_number_of_months():
    assert sales_periods(d(2026, 5, 31), 2) == [
        (d(2026, 4, 30), d(2026, 5, 31)),
        (d(2026, 3, 31), d(2026, 4, 30)),
    ]
    assert len(sales_periods(d(2026, 5, 31))) == 3


def test_beginning_of_period():
    assert beginning_of_period(d(2026, 3, 30)) == d(2026, 2, 28)
    assert beginning_of_period(d(2026, 1, 31)) == d(2025, 12, 31)
    assert beginning_of_period(d(2026, 3, 1)) == d(2026, 2, 1)
