"""Aging of a hand-built ledger; every expected figure below is worked out by hand."""

import datetime as dt

import sqlalchemy as sa

from ar_pipeline.aging import write_ar_aging
from ar_pipeline.database import upgrade_database
from ar_pipeline.schema import ar_aging
from ar_pipeline_tests.ledger_builder import build_reference_ledger

AS_OF = dt.date(2026, 3, 31)

# Alpha EUR, as of 2026-03-31:
#   A1 1000.00 - 300.00 paid = 700.00 open, due 02-09: 19 + 31 = 50 days -> 31_60
#      (the credit note of 04-05 is after the as-of date)
#   A2 500.00, due 03-31: 0 days -> current (the payment of 04-02 is after the as-of date)
#   A3 200.00 - 50.00 credit note = 150.00, due 2025-12-01: 31 + 31 + 28 + 30 = 120 -> over_90
#   A4 void, A5 draft: never count
#   A6 400.00 disputed, due 02-19: 9 + 31 = 40 days -> 31_60
#   unapplied credit note 30.00
#   total 700 + 500 + 150 + 400 = 1750.00; overdue 700 + 150 + 400 = 1250.00
#   dunnable = undisputed overdue (700 + 150) - 30 = 820.00
# Alpha USD: A7 250.00 paid then reversed -> 250.00 open, due 03-17: 14 days -> 1_30
# Beta EUR: B1 paid exactly, B2 80.00 overpaid by 40.00 -> no open item, 40.00 credit
# Gamma EUR: 60.00 cash on account; C1 is issued after the as-of date
EXPECTED = {
    ("A", "EUR"): dict(
        customer_name="Alpha GmbH", total_open_cents=175_000, overdue_cents=125_000,
        current_cents=50_000, days_1_30_cents=0, days_31_60_cents=110_000,
        days_61_90_cents=0, days_over_90_cents=15_000, disputed_cents=40_000,
        unapplied_credit_cents=3_000, dunnable_cents=82_000, max_days_overdue=120,
        oldest_overdue_invoice_id="A3", open_item_count=4,
    ),
    ("A", "USD"): dict(
        customer_name="Alpha GmbH", total_open_cents=25_000, overdue_cents=25_000,
        current_cents=0, days_1_30_cents=25_000, days_31_60_cents=0, days_61_90_cents=0,
        days_over_90_cents=0, disputed_cents=0, unapplied_credit_cents=0,
        dunnable_cents=25_000, max_days_overdue=14, oldest_overdue_invoice_id="A7",
        open_item_count=1,
    ),
    ("B", "EUR"): dict(
        customer_name="Beta Ltd", total_open_cents=0, overdue_cents=0, current_cents=0,
        days_1_30_cents=0, days_31_60_cents=0, days_61_90_cents=0, days_over_90_cents=0,
        disputed_cents=0, unapplied_credit_cents=4_000, dunnable_cents=0,
        max_days_overdue=None, oldest_overdue_invoice_id=None, open_item_count=0,
    ),
    ("C", "EUR"): dict(
        customer_name="Gamma SA", total_open_cents=0, overdue_cents=0, current_cents=0,
        days_1_30_cents=0, days_31_60_cents=0, days_61_90_cents=0, days_over_90_cents=0,
        disputed_cents=0, unapplied_credit_cents=6_000, dunnable_cents=0,
        max_days_overdue=None, oldest_overdue_invoice_id=None, open_item_count=0,
    ),
}  # fmt: skip


def _aging_rows(connection: sa.Connection, as_of: dt.date) -> dict:
    rows = connection.execute(sa.select(ar_aging).where(ar_aging.c.as_of == as_of)).mappings()
    return {
        (r["customer_id"], r["currency"]): {
            k: (int(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
            for k, v in r.items()
            if k not in ("as_of", "customer_id", "currency")
        }
        for r in rows
    }


def test_reference_ledger_aging(engine):
    with engine.begin() as connection:
        build_reference_ledger(connection)
        assert write_ar_aging(connection, AS_OF) == 4
    with engine.connect() as connection:
        assert _aging_rows(connection, AS_OF) == EXPECTED


def test_rerun_replaces_the_rows_of_that_date_only(engine):
    earlier = dt.date(2026, 3, 1)
    with engine.begin() as connection:
        build_reference_ledger(connection)
        write_ar_aging(connection, earlier)
        write_ar_aging(connection, AS_OF)
        write_ar_aging(connection, AS_OF)
    with engine.connect() as connection:
        assert _aging_rows(connection, AS_OF) == EXPECTED
        # As of 03-01: A1 1000.00 open (paid 02-20: 300.00 -> 700.00), due 02-09: 20 days;
        # A2 issued 03-01, due 03-31 -> current 500.00; A3 150.00 at 31 + 31 + 28 = 90 days
        # -> 61_90; A6 400.00 disputed at 10 days; no loose credit yet
        # (03-10); A7 issued 02-15, due 03-17, not yet due -> USD current 250.00.
        alpha_eur = _aging_rows(connection, earlier)[("A", "EUR")]
        assert alpha_eur["total_open_cents"] == 70_000 + 50_000 + 15_000 + 40_000
        assert alpha_eur["days_1_30_cents"] == 70_000 + 40_000
        assert alpha_eur["days_61_90_cents"] == 15_000
        assert alpha_eur["current_cents"] == 50_000
        assert alpha_eur["unapplied_credit_cents"] == 0
        assert alpha_eur["dunnable_cents"] == 85_000
        alpha_usd = _aging_rows(connection, earlier)[("A", "USD")]
        assert alpha_usd["current_cents"] == 25_000 and alpha_usd["overdue_cents"] == 0


def test_view_lists_open_items_as_of_the_latest_run(engine):
    with engine.begin() as connection:
        build_reference_ledger(connection)
        write_ar_aging(connection, dt.date(2026, 3, 1))
        write_ar_aging(connection, AS_OF)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT invoice_id, open_cents, days_overdue, bucket, disputed "
                "FROM v_ar_aging ORDER BY invoice_id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("A1", 70_000, 50, "31_60", False),
        ("A2", 50_000, 0, "current", False),
        ("A3", 15_000, 120, "over_90", False),
        ("A6", 40_000, 40, "31_60", True),
        ("A7", 25_000, 14, "1_30", False),
    ]


def test_upgrade_is_idempotent(engine):
    upgrade_database(engine)
    upgrade_database(engine)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM v_ar_aging")).scalar_one() == 0
