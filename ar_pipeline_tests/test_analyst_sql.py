"""The ready queries in sql/ run on both databases and give the hand-worked figures."""

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from ar_pipeline.rules.aging import write_ar_aging
from ar_pipeline_tests.ledger_builder import build_reference_ledger

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def test_overdue_by_customer(engine):
    with engine.begin() as connection:
        build_reference_ledger(connection)
        write_ar_aging(connection, dt.date(2026, 3, 31))
    query = sa.text((SQL_DIR / "overdue_by_customer.sql").read_text())
    with engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(query, {"threshold_days": 30})]
    # items at 30+ days: A1 700.00 (50 d), A6 400.00 (40 d, disputed), A3 150.00 (120 d, the
    # only one beyond 90 days: 91-120)
    assert rows == [("A", "Alpha GmbH", "EUR", 125_000, 120, 3, 15_000, 0)]


def _aging_row(customer_id, as_of, over_90, over_120=0):
    money = ("total_open_cents", "overdue_cents", "current_cents", "days_1_30_cents",
             "days_31_60_cents", "days_61_90_cents", "disputed_cents", "unapplied_credit_cents",
             "net_balance_cents", "dunnable_cents")  # fmt: skip
    zero = dict.fromkeys(money, 0)
    return {**zero, "as_of": as_of, "customer_id": customer_id, "customer_name": customer_id,
            "currency": "EUR", "days_over_90_cents": over_90, "open_item_count": 1,
            "days_91_120_cents": over_90 - over_120, "days_over_120_cents": over_120}  # fmt: skip


def test_top_movers_into_90(engine):
    from ar_pipeline.store.schema import ar_aging

    d1, d2 = dt.date(2026, 3, 1), dt.date(2026, 3, 31)
    with engine.begin() as connection:
        connection.execute(
            ar_aging.insert(),
            [
                _aging_row("A", d1, 10_000), _aging_row("A", d2, 15_000, 6_000),  # +5,000
                _aging_row("B", d1, 0), _aging_row("B", d2, 40_000),  # +40,000
                _aging_row("C", d1, 9_000), _aging_row("C", d2, 9_000),  # unchanged
                _aging_row("D", d2, 1_000),  # new: +1,000
            ],
        )  # fmt: skip
    query = sa.text((SQL_DIR / "top_movers_into_90.sql").read_text())
    with engine.connect() as connection:
        rows = connection.execute(query, {"from_date": d1, "to_date": d2}).all()
    assert [(r.customer_id, r.moved_in_cents) for r in rows] == [
        ("B", 40_000), ("A", 5_000), ("D", 1_000),
    ]  # fmt: skip
    a = rows[1]
    assert (a.days_91_120_now_cents, a.over_120_now_cents) == (9_000, 6_000)


def test_tier_up_this_week(engine):
    from ar_pipeline.store.schema import tier_assignments
    from ar_pipeline_tests.ledger_builder import add_customer

    week_ago, today = dt.date(2026, 3, 24), dt.date(2026, 3, 31)
    with engine.begin() as connection:
        for c in "PQRS":
            add_customer(connection, c)

        def row(c, day, target):
            return {"as_of": day, "customer_id": c, "target_tier": target,
                    "last_applied_tier": None, "proposed_tier": 1, "skip_reason": None}  # fmt: skip

        connection.execute(
            tier_assignments.insert(),
            [row("P", week_ago, 1), row("P", today, 2),  # up
             row("Q", week_ago, 3), row("Q", today, 3),  # same
             row("R", today, 1),  # new: up from 0
             row("S", week_ago, 2), row("S", today, 1)],  # down
        )  # fmt: skip
    query = sa.text((SQL_DIR / "tier_up_this_week.sql").read_text())
    with engine.connect() as connection:
        rows = connection.execute(query, {"as_of": today, "week_ago": week_ago}).all()
    assert [(r.customer_id, r.tier_before, r.tier_now) for r in rows] == [
        ("P", 1, 2), ("R", 0, 1),
    ]  # fmt: skip


def test_trend_by_bucket(engine, database_url, tmp_path):
    from ar_pipeline_tests.test_trend import backfill

    with engine.begin() as connection:
        build_reference_ledger(connection)
    backfill(database_url, tmp_path, dt.date(2026, 3, 30), dt.date(2026, 3, 31))
    query = sa.text((SQL_DIR / "trend_by_bucket.sql").read_text())
    with engine.connect() as connection:
        rows = (
            connection.execute(
                query, {"from_date": dt.date(2026, 3, 31), "to_date": dt.date(2026, 3, 31)}
            )
            .mappings()
            .all()
        )
    # test_aging.py's hand-worked figures for 2026-03-31 (Beta and Gamma hold only credit)
    eur = next(r for r in rows if r["currency"] == "EUR")
    assert (eur["current_cents"], eur["days_31_60_cents"], eur["days_91_120_cents"],
            eur["days_over_120_cents"], eur["days_over_90_cents"],
            eur["total_open_cents"]) == (50_000, 110_000, 15_000, 0, 15_000, 175_000)  # fmt: skip
    # credit: Alpha 30.00 + Beta 40.00 + Gamma 60.00 = 130.00; net 1,750.00 - 130.00
    assert (eur["unapplied_credit_cents"], eur["net_balance_cents"]) == (13_000, 162_000)
    assert [r["currency"] for r in rows] == ["EUR", "USD"]


def test_net_balance_tie(engine):
    """The reference ledger ties (no row), until a customer's reversal goes beyond what was
    paid: Z's invoice of 100.00 shows 100.00 open (the aging never shows more than invoiced),
    while the ledger says 100.00 - (-50.00) = 150.00."""
    from ar_pipeline_tests.ledger_builder import add_customer, add_invoice, add_payment

    as_of = dt.date(2026, 3, 31)
    query = sa.text((SQL_DIR / "net_balance_tie.sql").read_text())
    with engine.begin() as connection:
        build_reference_ledger(connection)
        write_ar_aging(connection, as_of)
        assert connection.execute(query, {"as_of": as_of}).all() == []
        add_customer(connection, "Z")
        add_invoice(connection, "Z1", "Z", 10_000, "2026-03-01", "2026-03-31")
        add_payment(connection, "PZ-reversed", "Z", -5_000, "2026-03-10", "Z1")
        write_ar_aging(connection, as_of)
        rows = [tuple(r) for r in connection.execute(query, {"as_of": as_of})]
    assert rows == [("Z", "EUR", 15_000, 10_000)]


def test_todays_calls_and_its_view(engine):
    """The ready query and the view give test_worklist.py's hand-worked ranking."""
    from zoneinfo import ZoneInfo

    from ar_pipeline.rules import worklist
    from ar_pipeline.rules.views import upgrade_database
    from ar_pipeline_tests.test_worklist import D, build_ledger

    upgrade_database(engine)  # the view
    with engine.begin() as connection:
        build_ledger(connection)
        worklist.write_worklist(connection, D, ZoneInfo("UTC"))
    query = sa.text((SQL_DIR / "todays_calls.sql").read_text())
    with engine.connect() as connection:
        rows = [tuple(r)[:5] for r in connection.execute(query, {"as_of": D})]
        view = [tuple(r) for r in connection.execute(sa.text(
            "SELECT currency, rank, customer_id FROM v_todays_calls ORDER BY currency, rank"
        ))]  # fmt: skip
    assert rows == [
        ("EUR", 1, "C", "C Ltd", 58_442),
        ("EUR", 2, "B", "B Ltd", 25_603),
        ("EUR", 3, "A", "A Ltd", 22_653),
        ("USD", 1, "U", "U Ltd", 50_000),
    ]
    assert view == [(currency, rank, customer) for currency, rank, customer, *_ in rows]
