"""The tier rule in SQL (``first_step_decisions_sql``, customers with no applied step) decides
exactly as the Python rule ``assign_tier`` (the specification), on SQLite and PostgreSQL: hand-
worked cases, then a generated ledger."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ar_pipeline.rules.aging import write_ar_aging
from ar_pipeline.rules.tiering import (
    DEFAULT_TIERS,
    TierDefinition,
    decide_tiers,
    write_prior_actions,
    write_tier_assignments,
)
from ar_pipeline.store.schema import proposed_actions, tier_assignments
from ar_pipeline_tests.ledger_builder import add_customer, add_invoice, add_payment

AS_OF = dt.date(2026, 3, 31)
BERLIN = ZoneInfo("Europe/Berlin")


def _both(engine, tiers=DEFAULT_TIERS, threshold=1):
    """(rows written, SQL and Python mixed; the Python rule's decisions for everyone)."""
    with engine.begin() as connection:
        write_ar_aging(connection, AS_OF)
        write_prior_actions(connection, AS_OF, BERLIN)
        write_tier_assignments(connection, AS_OF, tiers, threshold, BERLIN)
        t = tier_assignments.c
        written = {
            r.customer_id: (r.target_tier, r.last_applied_tier, r.proposed_tier, r.skip_reason)
            for r in connection.execute(sa.select(tier_assignments).where(t.as_of == AS_OF))
        }
        python = {
            d.customer_id: (d.target_tier, d.last_applied_tier, d.proposed_tier, d.skip_reason)
            for d in decide_tiers(connection, AS_OF, tiers, threshold, BERLIN)
        }
    return written, python


def _in_flight(connection, customer_id: str, tier: int) -> None:
    at = dt.datetime(2026, 3, 30, 9, tzinfo=dt.UTC)
    connection.execute(
        proposed_actions.insert().values(
            idempotency_key=f"flight-{customer_id}", as_of=at.date(),
            action_type="collection_action", customer_id=customer_id, tier=tier,
            status="approved", proposed_at=at, decided_by="alice", decided_at=at,
        )
    )  # fmt: skip


def test_hand_worked_cases(engine):
    with engine.begin() as connection:
        # M: EUR 80.00 at 40 days (tier 2: >= 10.00 from day 15; tier 3 needs 100.00) and
        #    JPY 600 at 70 days (exponent 0: tier 4's 500.00 is 500 yen) -> target 4, step 1
        add_customer(connection, "M")
        add_invoice(connection, "M1", "M", 8_000, "2026-01-20", "2026-02-19")
        add_invoice(connection, "M2", "M", 600, "2026-01-01", "2026-01-20", currency="JPY")
        # N: 300.00 at 40 days, 250.00 on account -> tier amount 50.00: tier 2 (not 3)
        add_customer(connection, "N")
        add_invoice(connection, "N1", "N", 30_000, "2026-01-20", "2026-02-19")
        add_payment(connection, "PN", "N", 25_000, "2026-03-01")
        # O: 5.00 at 40 days: dunnable, below every minimum
        add_customer(connection, "O")
        add_invoice(connection, "O1", "O", 500, "2026-01-20", "2026-02-19")
        # V: 200.00 at 40 days, paused until 04-15
        add_customer(connection, "V", paused_until="2026-04-15")
        add_invoice(connection, "V1", "V", 20_000, "2026-01-20", "2026-02-19")
        # W: 200.00 at 40 days, a reminder approved and not yet sent -> in flight
        add_customer(connection, "W")
        add_invoice(connection, "W1", "W", 20_000, "2026-01-20", "2026-02-19")
        _in_flight(connection, "W", 1)
        # X: 100.00 at 40 days, 150.00 on account -> nothing dunnable: no row
        add_customer(connection, "X")
        add_invoice(connection, "X1", "X", 10_000, "2026-01-20", "2026-02-19")
        add_payment(connection, "PX", "X", 15_000, "2026-03-01")
    written, python = _both(engine)
    assert written == python == {
        "M": (4, None, 1, None),
        "N": (2, None, 1, None),
        "O": (None, None, None, "below_minimum"),
        "V": (3, None, None, "paused"),
        "W": (3, None, None, "in_flight"),
    }
    # a tier with a minimum of 0.00 is met by any dunnable amount, O's 5.00 too
    free = (TierDefinition(1, "reminder", 1, Decimal("0.00"), 7, "reminder", False),)
    written, python = _both(engine, tiers=free)
    assert written["O"] == python["O"] == (1, None, 1, None)
    assert written == python


def test_generated_ledger(engine):
    from ar_pipeline.sources.ledger_generator import generate_ledger

    with engine.begin() as connection:
        generate_ledger(
            connection, customer_count=300, months=8, seed=5, end_date=AS_OF,
            synced_until=dt.datetime(2026, 3, 31, 5, tzinfo=dt.UTC),
        )  # fmt: skip
        ids = connection.execute(sa.text("SELECT customer_id FROM customers ORDER BY 1")).scalars()
        for n, customer_id in enumerate(ids):
            if n % 17 == 0:
                _in_flight(connection, customer_id, 1 + n % 3)
    for threshold in (1, 20):
        written, python = _both(engine, threshold=threshold)
        assert written == python
        assert len(python) > 50
        assert {v[3] for v in python.values()} >= {None, "paused", "in_flight"}
