"""tier_assignments through SQL (positions, prior actions, episodes) on both databases."""

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ar_pipeline.rules.tiering import DEFAULT_TIERS, write_prior_actions, write_tier_assignments
from ar_pipeline.store.schema import prior_actions, tier_assignments
from ar_pipeline_tests.ledger_builder import (
    add_applied_action,
    add_customer,
    add_invoice,
    add_payment,
    build_reference_ledger,
)

AS_OF = dt.date(2026, 3, 31)
BERLIN = ZoneInfo("Europe/Berlin")


def _run(engine, as_of=AS_OF, zone=BERLIN, threshold=1):
    with engine.begin() as connection:
        write_prior_actions(connection, as_of, zone)
        counts = write_tier_assignments(connection, as_of, DEFAULT_TIERS, threshold, zone)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                tier_assignments.c.customer_id,
                tier_assignments.c.target_tier,
                tier_assignments.c.last_applied_tier,
                tier_assignments.c.proposed_tier,
                tier_assignments.c.skip_reason,
            )
            .where(tier_assignments.c.as_of == as_of)
            .order_by(tier_assignments.c.customer_id)
        ).all()
    return counts, [tuple(r) for r in rows]


def test_reference_ledger_tiers(engine):
    with engine.begin() as connection:
        build_reference_ledger(connection)
    counts, rows = _run(engine)
    # Alpha EUR: A1 700.00 at 50 days, A3 150.00 at 120 days, minus 30.00 credit:
    #   from day 60: 150 - 30 = 120.00 < 500.00 (tier 4); from day 30: 850 - 30 = 820.00
    #   >= 100.00 -> target tier 3. No action applied yet -> propose tier 1.
    # Beta and Gamma owe nothing: no row.
    assert rows == [("A", 3, None, 1, None)]
    assert counts == {"tier_1": 1}


def test_prior_actions_episodes_and_cooldown(engine):
    utc = dt.UTC
    with engine.begin() as connection:
        for customer in ("P", "Q", "R", "S"):
            add_customer(connection, customer)
            # 200.00 due 2026-02-19: 40 days overdue -> target tier 3
            add_invoice(connection, f"{customer}1", customer, 20_000, "2026-01-20", "2026-02-19")
        add_customer(connection, "T", paused_until="2026-04-15")
        add_invoice(connection, "T1", "T", 20_000, "2026-01-20", "2026-02-19")
        add_customer(connection, "U")
        add_invoice(connection, "U1", "U", 500, "2026-01-20", "2026-02-19")  # 5.00: too small
        add_payment(connection, "PU", "U", 100, "2026-03-01", "U1")
        # P: reminder applied 2026-03-10 -> firm reminder now (20 days later, cooldown 7)
        add_applied_action(connection, "P", 1, dt.datetime(2026, 3, 10, 9, 0, tzinfo=utc), "p1")
        # Q: firm reminder applied 2026-03-27 -> cooldown until 04-03
        add_applied_action(connection, "Q", 1, dt.datetime(2026, 3, 1, 9, 0, tzinfo=utc), "q1")
        add_applied_action(connection, "Q", 2, dt.datetime(2026, 3, 27, 9, 0, tzinfo=utc), "q2")
        # R: a final notice from 2026-01-05, before the 02-19 due date: earlier episode
        add_applied_action(connection, "R", 3, dt.datetime(2026, 1, 5, 9, 0, tzinfo=utc), "r1")
        # S: 22:30 UTC on 03-31 is 00:30 on 04-01 in Berlin, after the as-of day: ignored;
        #    its earlier reminder of 03-20 counts -> firm reminder
        add_applied_action(connection, "S", 1, dt.datetime(2026, 3, 20, 9, 0, tzinfo=utc), "s1")
        add_applied_action(connection, "S", 3, dt.datetime(2026, 3, 31, 22, 30, tzinfo=utc), "s2")
    counts, rows = _run(engine)
    assert rows == [
        ("P", 3, 1, 2, None),
        ("Q", 3, 2, None, "cooldown"),
        ("R", 3, None, 1, None),
        ("S", 3, 1, 2, None),
        ("T", 3, None, None, "paused"),
        ("U", None, None, None, "below_minimum"),
    ]
    assert counts == {"tier_1": 1, "tier_2": 2, "cooldown": 1, "paused": 1, "below_minimum": 1}
    with engine.connect() as connection:
        snapshot = connection.execute(
            sa.select(prior_actions.c.customer_id, prior_actions.c.tier)
            .where(prior_actions.c.as_of == AS_OF)
            .order_by(prior_actions.c.customer_id)
        ).all()
    assert [tuple(r) for r in snapshot] == [("P", 1), ("Q", 2), ("R", 3), ("S", 1)]


def test_rerun_replaces_tier_rows(engine):
    with engine.begin() as connection:
        build_reference_ledger(connection)
    _run(engine)
    _, rows = _run(engine)
    assert rows == [("A", 3, None, 1, None)]


def test_snapshot_and_ledger_give_the_same_tiers(engine):
    """Tiering reads the snapshot ar_aging stored when there is one, else the ledger itself:
    both must decide alike. Snapshots older than a week before the newest are dropped."""
    from ar_pipeline.rules.aging import write_ar_aging
    from ar_pipeline.sources.ledger_generator import generate_ledger
    from ar_pipeline.store.schema import aging_snapshots

    with engine.begin() as connection:
        generate_ledger(
            connection, customer_count=120, months=8, seed=11, end_date=AS_OF,
            synced_until=dt.datetime(2026, 3, 31, 5, tzinfo=dt.UTC),
        )  # fmt: skip
    _, from_ledger = _run(engine)
    with engine.begin() as connection:
        write_ar_aging(connection, AS_OF - dt.timedelta(days=9))
        write_ar_aging(connection, AS_OF)
        snapshots = connection.execute(sa.select(aging_snapshots.c.as_of)).scalars().all()
    assert [str(d) for d in snapshots] == ["2026-03-31"]  # the one from 03-22 is dropped
    _, from_snapshot = _run(engine)
    assert from_snapshot == from_ledger
    assert len(from_ledger) > 20  # the comparison covers a real set of customers
