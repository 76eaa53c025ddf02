"""Aging of a hand-built ledger; every expected figure below is worked out by hand."""

import datetime as dt

import sqlalchemy as sa

from ar_pipeline.rules.aging import write_ar_aging
from ar_pipeline.rules.views import upgrade_database
from ar_pipeline.store.schema import aging_credits, aging_open_items, ar_aging
from ar_pipeline_tests.ledger_builder import (
    add_customer,
    add_invoice,
    add_payment,
    build_reference_ledger,
)

AS_OF = dt.date(2026, 3, 31)

# Alpha EUR, as of 2026-03-31:
#   A1 1000.00 - 300.00 paid = 700.00 open, due 02-09: 19 + 31 = 50 days -> 31_60
#      (the credit note of 04-05 is after the as-of date)
#   A2 500.00, due 03-31: 0 days -> current (the payment of 04-02 is after the as-of date)
#   A3 200.00 - 50.00 credit note = 150.00, due 2025-12-01: 30 + 31 + 28 + 31 = 120 -> 91_120
#   A4 void, A5 draft: never count
#   A6 400.00 disputed, due 02-19: 9 + 31 = 40 days -> 31_60
#   unapplied credit note 30.00
#   total 700 + 500 + 150 + 400 = 1750.00; overdue 700 + 150 + 400 = 1250.00
#   dunnable = undisputed overdue (700 + 150) - 30 = 820.00
# Alpha USD: A7 250.00 paid then reversed -> 250.00 open, due 03-17: 14 days -> 1_30
# Beta EUR: B1 paid exactly, B2 80.00 overpaid by 40.00 -> no open item, 40.00 credit
# Gamma EUR: 60.00 cash on account; C1 is issued after the as-of date
#
# Net balance = invoices - credit notes - payments counted as of 03-31, worked from the ledger
# (not from the aging), and it equals open items - unapplied credit:
#   Alpha EUR: invoices A1 1000 + A2 500 + A3 200 + A6 400 = 2100.00 (A4 void, A5 draft);
#              credit notes CN-A3 50 + CN-loose 30 = 80.00 (CN-late is 04-05);
#              payments PA1 300.00 (PA2 is 04-02) -> 2100 - 80 - 300 = 1720.00 = 1750 - 30
#   Alpha USD: A7 250 - (PA7 250 + PA7R -250) = 250.00
#   Beta EUR:  B1 100 + B2 80 - (PB1 100 + PB2 120) = -40.00 (in credit)
#   Gamma EUR: no invoice yet - PC1 60 = -60.00
EXPECTED = {
    ("A", "EUR"): dict(
        customer_name="Alpha GmbH", total_open_cents=175_000, overdue_cents=125_000,
        current_cents=50_000, days_1_30_cents=0, days_31_60_cents=110_000,
        days_61_90_cents=0, days_91_120_cents=15_000, days_over_120_cents=0,
        days_over_90_cents=15_000, disputed_cents=40_000, unapplied_credit_cents=3_000,
        net_balance_cents=172_000, dunnable_cents=82_000, max_days_overdue=120,
        oldest_overdue_invoice_id="A3", open_item_count=4, held_cents=0,
    ),
    ("A", "USD"): dict(
        customer_name="Alpha GmbH", total_open_cents=25_000, overdue_cents=25_000,
        current_cents=0, days_1_30_cents=25_000, days_31_60_cents=0, days_61_90_cents=0,
        days_91_120_cents=0, days_over_120_cents=0, days_over_90_cents=0, disputed_cents=0,
        unapplied_credit_cents=0, net_balance_cents=25_000, dunnable_cents=25_000,
        max_days_overdue=14, oldest_overdue_invoice_id="A7", open_item_count=1, held_cents=0,
    ),
    ("B", "EUR"): dict(
        customer_name="Beta Ltd", total_open_cents=0, overdue_cents=0, current_cents=0,
        days_1_30_cents=0, days_31_60_cents=0, days_61_90_cents=0, days_91_120_cents=0,
        days_over_120_cents=0, days_over_90_cents=0, disputed_cents=0,
        unapplied_credit_cents=4_000, net_balance_cents=-4_000, dunnable_cents=0,
        max_days_overdue=None, oldest_overdue_invoice_id=None, open_item_count=0, held_cents=0,
    ),
    ("C", "EUR"): dict(
        customer_name="Gamma SA", total_open_cents=0, overdue_cents=0, current_cents=0,
        days_1_30_cents=0, days_31_60_cents=0, days_61_90_cents=0, days_91_120_cents=0,
        days_over_120_cents=0, days_over_90_cents=0, disputed_cents=0,
        unapplied_credit_cents=6_000, net_balance_cents=-6_000, dunnable_cents=0,
        max_days_overdue=None, oldest_overdue_invoice_id=None, open_item_count=0, held_cents=0,
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
        ("A3", 15_000, 120, "91_120", False),
        ("A6", 40_000, 40, "31_60", True),
        ("A7", 25_000, 14, "1_30", False),
    ]


def test_bucket_boundaries(engine):
    """As of 2026-03-31, one invoice each at 90, 91, 120 and 121 days overdue, amounts 1.00,
    10.00, 100.00 and 1,000.00 so that every sum names its members:
    due 2025-12-31: 31 + 28 + 31 = 90 days -> 61_90
    due 2025-12-30: 91 days -> 91_120
    due 2025-12-01: 30 + 90 = 120 days -> 91_120
    due 2025-11-30: 121 days -> over_120
    61-90 = 1.00; 91-120 = 10.00 + 100.00 = 110.00; over 120 = 1,000.00;
    over 90 = 110.00 + 1,000.00 = 1,110.00"""
    with engine.begin() as connection:
        add_customer(connection, "K")
        for invoice, cents, due in [("D90", 100, "2025-12-31"), ("D91", 1_000, "2025-12-30"),
                                    ("D120", 10_000, "2025-12-01"),
                                    ("D121", 100_000, "2025-11-30")]:  # fmt: skip
            add_invoice(connection, invoice, "K", cents, "2025-10-01", due)
        write_ar_aging(connection, AS_OF)
    with engine.connect() as connection:
        row = _aging_rows(connection, AS_OF)[("K", "EUR")]
        items = connection.execute(
            sa.text("SELECT invoice_id, days_overdue, bucket FROM v_ar_aging ORDER BY open_cents")
        ).all()
    assert (row["days_61_90_cents"], row["days_91_120_cents"], row["days_over_120_cents"],
            row["days_over_90_cents"]) == (100, 11_000, 100_000, 111_000)  # fmt: skip
    assert [tuple(i) for i in items] == [
        ("D90", 90, "61_90"), ("D91", 91, "91_120"), ("D120", 120, "91_120"),
        ("D121", 121, "over_120"),
    ]  # fmt: skip


def test_lower_bucket_boundaries_and_one_day_overdue(engine):
    """As of 2026-03-31, customer K has one invoice at each lower bucket edge, amounts 0.01,
    0.10, 1.00, 10.00, 100.00 and 1,000.00 so that every sum names its members:
    due 2026-03-31: 0 days -> current
    due 2026-03-30: 1 day -> 1_30
    due 2026-03-01: 30 days -> 1_30
    due 2026-02-28: 1 + 30 = 31 days -> 31_60
    due 2026-01-30: 1 + 28 + 31 = 60 days -> 31_60
    due 2026-01-29: 61 days -> 61_90
    current 0.01; 1-30 = 0.10 + 1.00 = 1.10; 31-60 = 10.00 + 100.00 = 110.00;
    61-90 = 1,000.00; overdue = 1,111.11 - 0.01 = 1,111.10; the most overdue 61 days.
    Customer L's only invoice is 1 day overdue: overdue 5.00, 1 day at most, and it is the
    oldest overdue item; M's only invoice is due today: nothing overdue, 0 days, no item."""
    with engine.begin() as connection:
        for customer in ("K", "L", "M"):
            add_customer(connection, customer)
        for invoice, cents, due in [("E0", 1, "2026-03-31"), ("E1", 10, "2026-03-30"),
                                    ("E30", 100, "2026-03-01"), ("E31", 1_000, "2026-02-28"),
                                    ("E60", 10_000, "2026-01-30"),
                                    ("E61", 100_000, "2026-01-29")]:  # fmt: skip
            add_invoice(connection, invoice, "K", cents, "2025-12-01", due)
        add_invoice(connection, "L1", "L", 500, "2026-03-01", "2026-03-30")
        add_invoice(connection, "M0", "M", 700, "2026-03-01", "2026-03-31")
        write_ar_aging(connection, AS_OF)
    with engine.connect() as connection:
        rows = _aging_rows(connection, AS_OF)
    k, lone, today = rows[("K", "EUR")], rows[("L", "EUR")], rows[("M", "EUR")]
    assert (k["current_cents"], k["days_1_30_cents"], k["days_31_60_cents"],
            k["days_61_90_cents"], k["days_91_120_cents"], k["days_over_120_cents"],
            k["overdue_cents"], k["max_days_overdue"], k["oldest_overdue_invoice_id"]) == (
        1, 110, 11_000, 100_000, 0, 0, 111_110, 61, "E61"
    )  # fmt: skip
    assert (lone["overdue_cents"], lone["days_1_30_cents"], lone["max_days_overdue"],
            lone["oldest_overdue_invoice_id"]) == (500, 500, 1, "L1")  # fmt: skip
    assert (today["current_cents"], today["overdue_cents"], today["max_days_overdue"],
            today["oldest_overdue_invoice_id"]) == (700, 0, 0, None)  # fmt: skip


def test_net_balance_ties_to_the_ledger_on_a_generated_ledger(engine):
    """On a generated ledger (cash on account, credit notes, overpayments, reversals), for
    several days: per customer and currency, the net balance equals invoices - credit notes -
    payments as of the day, summed here in Python from the ledger's rows; and a pair without an
    ``ar_aging`` row is one whose ledger balance is zero."""
    from ar_pipeline.sources.ledger_generator import generate_ledger
    from ar_pipeline.store.schema import invoices, payments

    with engine.begin() as connection:
        generate_ledger(
            connection, customer_count=80, months=8, seed=11, end_date=dt.date(2026, 3, 31),
            synced_until=dt.datetime(2026, 3, 31, 5, tzinfo=dt.UTC),
        )  # fmt: skip
    with engine.connect() as connection:
        documents = connection.execute(
            sa.select(invoices.c.customer_id, invoices.c.currency, invoices.c.kind,
                      invoices.c.issue_date, invoices.c.amount_cents)
            .where(invoices.c.status == "issued")
        ).all()  # fmt: skip
        paid = connection.execute(
            sa.select(payments.c.customer_id, payments.c.currency, payments.c.received_date,
                      payments.c.amount_cents)
        ).all()  # fmt: skip
    assert any(p.amount_cents < 0 for p in paid)  # reversals are part of the test
    for day in (dt.date(2025, 12, 31), dt.date(2026, 2, 14), AS_OF):
        ledger: dict[tuple[str, str], int] = {}
        for doc in documents:
            if doc.issue_date <= day:
                sign = 1 if doc.kind == "invoice" else -1
                key = (doc.customer_id, doc.currency)
                ledger[key] = ledger.get(key, 0) + sign * doc.amount_cents
        for p in paid:
            if p.received_date <= day:
                key = (p.customer_id, p.currency)
                ledger[key] = ledger.get(key, 0) - p.amount_cents
        with engine.begin() as connection:
            write_ar_aging(connection, day)
            aged = {
                (r.customer_id, r.currency): r.net_balance_cents
                for r in connection.execute(sa.select(ar_aging).where(ar_aging.c.as_of == day))
            }
        assert aged == {key: cents for key, cents in ledger.items() if cents != 0}, day


def test_upgrade_is_idempotent(engine):
    upgrade_database(engine)
    upgrade_database(engine)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM v_ar_aging")).scalar_one() == 0


def test_a_settlement_applies_only_to_an_eligible_invoice_of_its_customer_and_currency(engine):
    """The one pass of the daily run (settlements summed per named invoice, customer and
    currency, joined with the eligible invoices). As of 03-31, Delta EUR:
      D1 100.00 issued 03-10, due 04-09 (-9 days, current); PD1 40.00 of 03-01 names it, before
         it was issued: applied once D1 is issued -> 60.00 open
      D2 50.00 issued 04-05, after the as-of date; PD2 20.00 of 03-20 names it -> credit 20.00
      D3 30.00 issued 02-01, due 03-03: 28 days -> 1_30, 30.00 open; Echo's PE1 10.00 names it
         (another customer) -> Echo's credit 10.00 EUR, D3 stays open
      PD3 15.00 USD of 03-15 names D1 (another currency) -> Delta's credit 15.00 USD
    Delta EUR: total 90.00, overdue 30.00, credit 20.00, net 70.00 (invoices D1 + D3 = 130.00
    less payments PD1 + PD2 = 60.00), dunnable 30.00 - 20.00 = 10.00."""
    with engine.begin() as connection:
        add_customer(connection, "D", "Delta AB")
        add_customer(connection, "E", "Echo Srl")
        add_invoice(connection, "D1", "D", 10_000, "2026-03-10", "2026-04-09")
        add_payment(connection, "PD1", "D", 4_000, "2026-03-01", "D1")
        add_invoice(connection, "D2", "D", 5_000, "2026-04-05", "2026-05-05")
        add_payment(connection, "PD2", "D", 2_000, "2026-03-20", "D2")
        add_invoice(connection, "D3", "D", 3_000, "2026-02-01", "2026-03-03")
        add_payment(connection, "PE1", "E", 1_000, "2026-03-25", "D3")
        add_payment(connection, "PD3", "D", 1_500, "2026-03-15", "D1", currency="USD")
        assert write_ar_aging(connection, AS_OF) == 3
    with engine.connect() as connection:
        rows = _aging_rows(connection, AS_OF)
        items = connection.execute(
            sa.select(
                aging_open_items.c.invoice_id, aging_open_items.c.balance_cents,
                aging_open_items.c.days_overdue, aging_open_items.c.bucket,
            )
            .where(aging_open_items.c.as_of == AS_OF)
            .order_by(aging_open_items.c.invoice_id)
        ).all()  # fmt: skip
        credits = connection.execute(
            sa.select(
                aging_credits.c.customer_id, aging_credits.c.currency,
                aging_credits.c.unapplied_credit_cents,
            )
            .where(aging_credits.c.as_of == AS_OF)
            .order_by(aging_credits.c.customer_id, aging_credits.c.currency)
        ).all()  # fmt: skip
    assert [tuple(r) for r in items] == [("D1", 6_000, -9, "current"), ("D3", 3_000, 28, "1_30")]
    assert [tuple(r) for r in credits] == [("D", "EUR", 2_000), ("D", "USD", 1_500),
                                           ("E", "EUR", 1_000)]  # fmt: skip
    delta = rows[("D", "EUR")]
    assert (delta["total_open_cents"], delta["overdue_cents"], delta["current_cents"]) == (
        9_000,
        3_000,
        6_000,
    )
    assert delta["days_1_30_cents"] == 3_000 and delta["unapplied_credit_cents"] == 2_000
    assert (delta["net_balance_cents"], delta["dunnable_cents"]) == (7_000, 1_000)
    assert delta["oldest_overdue_invoice_id"] == "D3" and delta["open_item_count"] == 2
    assert rows[("D", "USD")]["net_balance_cents"] == -1_500
    assert rows[("E", "EUR")]["net_balance_cents"] == -1_000


def test_the_oldest_overdue_item_is_the_earliest_due_then_the_lowest_id(engine):
    """Ties on the due date go to the lowest invoice id in code-point order (digits, then
    capitals, then small letters; "T10" before "T9"), the same on every database whatever its
    collation; a lower id due later does not win, and an item not yet due never counts."""
    upgrade_database(engine)
    with engine.begin() as connection:
        add_customer(connection, "T", "Tie Ltd")
        add_invoice(connection, "T9", "T", 1_000, "2026-01-01", "2026-03-01")
        add_invoice(connection, "T10", "T", 1_000, "2026-01-01", "2026-03-01")
        add_invoice(connection, "t1", "T", 1_000, "2026-01-01", "2026-03-01")
        add_invoice(connection, "T0", "T", 1_000, "2026-01-01", "2026-03-02")  # due a day later
        add_invoice(connection, "S1", "T", 1_000, "2026-03-01", "2026-04-30")  # not yet due
        add_customer(connection, "U", "Undue Ltd")
        add_invoice(connection, "U1", "U", 1_000, "2026-03-01", "2026-04-30")
        write_ar_aging(connection, AS_OF)
        rows = _aging_rows(connection, AS_OF)
    # due 03-01: 30 days overdue on 03-31
    assert (
        rows[("T", "EUR")]["oldest_overdue_invoice_id"],
        rows[("T", "EUR")]["max_days_overdue"],
    ) == ("T10", 30)
    assert rows[("U", "EUR")]["oldest_overdue_invoice_id"] is None
