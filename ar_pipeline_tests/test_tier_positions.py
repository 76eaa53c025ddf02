"""Tiering reads the day's balances directly (``tier_positions``), not the whole aging
aggregation, and sends only customers with an applied step or a broken promise through the
Python rule. Hand-worked cases where that reading could differ from the specification (the
Python rule over ``dunning_positions``): disputed and held items, a currency with nothing
overdue, credit alone, applied steps of this and of an earlier episode, a step applied just
after midnight in Berlin; on the ledger itself and on the day's snapshot, SQLite and
PostgreSQL."""

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ar_pipeline.rules.aging import write_ar_aging
from ar_pipeline.rules.tiering import (
    DEFAULT_TIERS,
    decide_tiers,
    write_prior_actions,
    write_tier_assignments,
)
from ar_pipeline.store.schema import invoice_holds, tier_assignments
from ar_pipeline_tests.ledger_builder import (
    add_applied_action,
    add_customer,
    add_invoice,
    add_payment,
)

AS_OF = dt.date(2026, 3, 31)
BERLIN = ZoneInfo("Europe/Berlin")

# (target_tier, last_applied_tier, proposed_tier, skip_reason), worked out by hand with the
# default tiers: 1 from day 1 >= 10.00, 2 from day 15 >= 10.00, 3 from day 30 >= 100.00,
# 4 from day 60 >= 500.00; cooldown 7 days after tier 1
EXPECTED = {
    # A: 200.00 at 40 days -> tier 3; the disputed 500.00 at 70 days never counts (no tier 4);
    #    USD 50.00 not yet due changes nothing
    "A": (3, None, 1, None),
    # B: a reversal on account, -30.00: tier amount max(0, 0 - (-30.00)) = 30.00 at every day
    #    -> tiers 1 and 2 (tier 3 needs 100.00)
    "B": (2, None, 1, None),
    # C: 300.00 at 40 days is held; 20.00 at 20 days -> tier 2
    "C": (2, None, 1, None),
    # D: 200.00 at 40 days, tier 1 applied 03-10 (this episode, 21 days ago >= 7) -> step 2
    "D": (3, 1, 2, None),
    # E: 200.00 at 40 days, tier 2 applied 01-05, before the due date 02-19: an earlier episode
    "E": (3, None, 1, None),
    # F: tier 1 applied, its invoice paid since: nothing dunnable, no row
    # G: 200.00 at 40 days, tier 1 applied 03-28, 3 days ago < 7 -> cooldown
    "G": (3, 1, None, "cooldown"),
    # H: EUR 100.00 due today (0 days), USD 20.00 at 15 days -> tier 2
    "H": (2, None, 1, None),
    # I: 200.00 due 02-19; tier 1 applied 02-18 23:30 UTC, which is 02-19 00:30 in Berlin:
    #    this episode, so step 2
    "I": (3, 1, 2, None),
    # J: 15.00 one day overdue -> tier 1 only
    "J": (1, None, 1, None),
    # K: KWD 15.000 (exponent 3: 15000 minor units) at 40 days -> tier 2; tier 3 needs 100.000
    "K": (2, None, 1, None),
}


def _ledger(connection) -> None:
    add_customer(connection, "A")
    add_invoice(connection, "A1", "A", 20_000, "2026-01-20", "2026-02-19")
    add_invoice(connection, "A2", "A", 50_000, "2025-12-21", "2026-01-20", disputed=True)
    add_invoice(connection, "A3", "A", 5_000, "2026-03-16", "2026-04-15", currency="USD")
    add_customer(connection, "B")
    add_payment(connection, "PB", "B", -3_000, "2026-03-01")
    add_customer(connection, "C")
    add_invoice(connection, "C1", "C", 30_000, "2026-01-20", "2026-02-19")
    add_invoice(connection, "C2", "C", 2_000, "2026-02-09", "2026-03-11")
    connection.execute(
        invoice_holds.insert().values(
            invoice_id="C1", customer_id="C", reason="audit",
            held_from=dt.date(2026, 3, 1), held_until=dt.date(2026, 4, 30),
            recorded_on=dt.date(2026, 3, 1), recorded_by="alice",
            recorded_at=dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC),
        )
    )  # fmt: skip
    for customer_id, tier, applied_at in (
        ("D", 1, dt.datetime(2026, 3, 10, 10, tzinfo=dt.UTC)),
        ("E", 2, dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)),
        ("F", 1, dt.datetime(2026, 3, 10, 10, tzinfo=dt.UTC)),
        ("G", 1, dt.datetime(2026, 3, 28, 10, tzinfo=dt.UTC)),
        ("I", 1, dt.datetime(2026, 2, 18, 23, 30, tzinfo=dt.UTC)),
    ):
        add_customer(connection, customer_id)
        add_invoice(connection, f"{customer_id}1", customer_id, 20_000, "2026-01-20", "2026-02-19")
        add_applied_action(connection, customer_id, tier, applied_at, f"applied-{customer_id}")
    add_payment(connection, "PF", "F", 20_000, "2026-03-20", invoice_id="F1")
    add_customer(connection, "H")
    add_invoice(connection, "H1", "H", 10_000, "2026-03-01", "2026-03-31")
    add_invoice(connection, "H2", "H", 2_000, "2026-02-14", "2026-03-16", currency="USD")
    add_customer(connection, "J")
    add_invoice(connection, "J1", "J", 1_500, "2026-02-28", "2026-03-30")
    add_customer(connection, "K")
    add_invoice(connection, "K1", "K", 15_000, "2026-01-20", "2026-02-19", currency="KWD")


def _decided(engine, with_aging: bool):
    """(rows written; the Python rule over the whole aging for everyone; the customers the
    Python rule decides within write_tier_assignments)."""
    with engine.begin() as connection:
        if with_aging:
            write_ar_aging(connection, AS_OF)
        write_prior_actions(connection, AS_OF, BERLIN)
        write_tier_assignments(connection, AS_OF, DEFAULT_TIERS, 1, BERLIN)
        t = tier_assignments.c
        written = {
            r.customer_id: (r.target_tier, r.last_applied_tier, r.proposed_tier, r.skip_reason)
            for r in connection.execute(sa.select(tier_assignments).where(t.as_of == AS_OF))
        }
        spec = {
            d.customer_id: (d.target_tier, d.last_applied_tier, d.proposed_tier, d.skip_reason)
            for d in decide_tiers(connection, AS_OF, DEFAULT_TIERS, 1, BERLIN)
        }
        stepped = {
            d.customer_id
            for d in decide_tiers(
                connection, AS_OF, DEFAULT_TIERS, 1, BERLIN, with_applied_step_only=True
            )
        }
    return written, spec, stepped


def test_from_the_ledger_then_from_the_snapshot(engine):
    with engine.begin() as connection:
        _ledger(connection)
    for with_aging in (False, True):
        written, spec, stepped = _decided(engine, with_aging)
        assert written == spec == EXPECTED
        assert stepped == {"D", "E", "G", "I"}  # F has nothing dunnable
