"""The tier rule in SQL (``tier_decisions_sql``, every customer) decides exactly as the Python
rule ``assign_tier`` (the specification), on SQLite and PostgreSQL: hand-worked cases, a
generated ledger, then customers with an applied step (episodes, cooldowns, day boundaries in
``AR_TIMEZONE`` and across a change to summer time, broken promises, a tier beyond the
configured ones), hand-worked and generated."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ar_pipeline.actions.levers import record_promise
from ar_pipeline.rules.aging import write_ar_aging
from ar_pipeline.rules.tiering import (
    DEFAULT_TIERS,
    TierDefinition,
    decide_tiers,
    write_prior_actions,
    write_tier_assignments,
)
from ar_pipeline.store.schema import proposed_actions, tier_assignments
from ar_pipeline_tests.ledger_builder import (
    add_applied_action,
    add_customer,
    add_invoice,
    add_payment,
)

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


# --- customers with an applied step (tier_decisions_sql decides them too) ----------------------


def _with_promises(engine, tiers=DEFAULT_TIERS):
    """As :func:`_both`, with the broken promise named: (target, last, proposed, skip, promise)."""
    with engine.begin() as connection:
        write_ar_aging(connection, AS_OF)
        write_prior_actions(connection, AS_OF, BERLIN)
        write_tier_assignments(connection, AS_OF, tiers, 1, BERLIN)
        t = tier_assignments.c
        written = {
            r.customer_id: (r.target_tier, r.last_applied_tier, r.proposed_tier, r.skip_reason,
                            r.broken_promise_id)
            for r in connection.execute(sa.select(tier_assignments).where(t.as_of == AS_OF))
        }  # fmt: skip
        python = {
            d.customer_id: (d.target_tier, d.last_applied_tier, d.proposed_tier, d.skip_reason,
                            d.broken_promise_id)
            for d in decide_tiers(connection, AS_OF, tiers, 1, BERLIN)
        }  # fmt: skip
    return written, python


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _owes_200_from_02_19(connection, customer_id: str, paused_until: str | None = None) -> None:
    """200.00 due 2026-02-19: 40 days overdue on 03-31, target tier 3 (>= 30 days, >= 100.00)."""
    add_customer(connection, customer_id, paused_until=paused_until)
    add_invoice(connection, f"{customer_id}1", customer_id, 20_000, "2026-01-20", "2026-02-19")


def _broken_promise(connection, customer_id: str) -> int:
    """A promise of 200.00 by 03-28, recorded 03-20, nothing paid: broken, calling on 03-31."""
    return record_promise(
        connection, customer_id=customer_id, amount="200.00", currency="EUR",
        promised_date=dt.date(2026, 3, 28), recorded_by="carol", today=dt.date(2026, 3, 20),
        now=_utc("2026-03-20 09:00"), invoice_ids=[f"{customer_id}1"],
    )  # fmt: skip


def test_stepped_customers_hand_worked(engine):
    # Every customer owes 200.00 due 02-19 (target 3) unless said otherwise. Berlin is UTC+1
    # until 2026-03-29 01:00 UTC, UTC+2 after. Default tiers: cooldown 7 after tiers 1 and 2.
    with engine.begin() as connection:
        # A: tier 1 applied 03-01, in this episode (on or after 02-19), 30 days ago: step 2
        _owes_200_from_02_19(connection, "A")
        add_applied_action(connection, "A", 1, _utc("2026-03-01 10:00"), "a-1")
        # B: tier 2 applied 01-10, before 02-19: an earlier episode, ignored: step 1
        _owes_200_from_02_19(connection, "B")
        add_applied_action(connection, "B", 2, _utc("2026-01-10 10:00"), "b-2")
        # C: tier 1 applied 02-18 23:30 UTC = 02-19 00:30 in Berlin, the due date: it counts
        _owes_200_from_02_19(connection, "C")
        add_applied_action(connection, "C", 1, _utc("2026-02-18 23:30"), "c-1")
        # D: tier 1 applied 02-18 22:30 UTC = 02-18 23:30 in Berlin, the day before: ignored
        _owes_200_from_02_19(connection, "D")
        add_applied_action(connection, "D", 1, _utc("2026-02-18 22:30"), "d-1")
        # E: tier 1 applied 03-24 23:30 UTC = 03-25 00:30 in Berlin: 6 days, one short of 7
        _owes_200_from_02_19(connection, "E")
        add_applied_action(connection, "E", 1, _utc("2026-03-24 23:30"), "e-1")
        # F: tier 1 applied 03-24 22:30 UTC = 03-24 23:30 in Berlin: 7 days, cooldown over
        _owes_200_from_02_19(connection, "F")
        add_applied_action(connection, "F", 1, _utc("2026-03-24 22:30"), "f-1")
        # N: tier 1 applied 02-18 23:00 UTC, the very start of 02-19 in Berlin: it counts
        _owes_200_from_02_19(connection, "N")
        add_applied_action(connection, "N", 1, _utc("2026-02-18 23:00"), "n-1")
        # O: tier 1 applied 03-24 23:00 UTC, the very start of 03-25 in Berlin: 6 days
        _owes_200_from_02_19(connection, "O")
        add_applied_action(connection, "O", 1, _utc("2026-03-24 23:00"), "o-1")
        # G: tier 3 applied 03-01: the next step (3) is not beyond it
        _owes_200_from_02_19(connection, "G")
        add_applied_action(connection, "G", 3, _utc("2026-03-01 10:00"), "g-3")
        # H: tier 1 applied 03-01, tier 2 approved and not sent: step 2 is in flight
        _owes_200_from_02_19(connection, "H")
        add_applied_action(connection, "H", 1, _utc("2026-03-01 10:00"), "h-1")
        _in_flight(connection, "H", 2)
        # I: tier 1 applied 03-29 (2 days: cooldown) and a broken promise: the next step
        #    min(4, max(3, 2)) = 3, cooldown or not
        _owes_200_from_02_19(connection, "I")
        add_applied_action(connection, "I", 1, _utc("2026-03-29 10:00"), "i-1")
        promise_i = _broken_promise(connection, "I")
        # J: tier 2 applied 03-01 (no cooldown) and a broken promise: max(3, 3) = 3
        _owes_200_from_02_19(connection, "J")
        add_applied_action(connection, "J", 2, _utc("2026-03-01 10:00"), "j-2")
        promise_j = _broken_promise(connection, "J")
        # K: tier 5, beyond the 4 configured, applied yesterday: step 3 is not beyond it
        _owes_200_from_02_19(connection, "K")
        add_applied_action(connection, "K", 5, _utc("2026-03-30 10:00"), "k-5")
        # L: as K, with a broken promise: min(4, max(3, 6)) = 4
        _owes_200_from_02_19(connection, "L")
        add_applied_action(connection, "L", 5, _utc("2026-03-30 10:00"), "l-5")
        promise_l = _broken_promise(connection, "L")
        # P: tier 1 applied 03-01, paused until 04-15
        _owes_200_from_02_19(connection, "P", paused_until="2026-04-15")
        add_applied_action(connection, "P", 1, _utc("2026-03-01 10:00"), "p-1")
    written, python = _with_promises(engine)
    assert written == python == {
        "A": (3, 1, 2, None, None),
        "B": (3, None, 1, None, None),
        "C": (3, 1, 2, None, None),
        "D": (3, None, 1, None, None),
        "E": (3, 1, None, "cooldown", None),
        "F": (3, 1, 2, None, None),
        "N": (3, 1, 2, None, None),
        "O": (3, 1, None, "cooldown", None),
        "G": (3, 3, None, "already_at_tier", None),
        "H": (3, 1, None, "in_flight", None),
        "I": (3, 1, 3, None, promise_i),
        "J": (3, 2, 3, None, promise_j),
        "K": (3, 5, None, "already_at_tier", None),
        "L": (3, 5, 4, None, promise_l),
        "P": (3, 1, None, "paused", None),
    }


def test_cooldown_across_the_change_to_summer_time(engine):
    # Berlin moves to UTC+2 on 2026-03-29 at 01:00 UTC. Tier 1 cools down 3 days, tier 2 2.
    tiers = (
        TierDefinition(1, "reminder", 1, Decimal("10.00"), 3, "reminder", False),
        TierDefinition(2, "firm_reminder", 15, Decimal("10.00"), 2, "firm_reminder", False),
        TierDefinition(3, "final_notice", 30, Decimal("100.00"), 10, "final_notice", True),
    )
    with engine.begin() as connection:
        # S: tier 1 applied 03-28 22:30 UTC = 03-28 23:30 in Berlin (winter time): 3 days
        _owes_200_from_02_19(connection, "S")
        add_applied_action(connection, "S", 1, _utc("2026-03-28 22:30"), "s-1")
        # T: tier 1 applied 03-28 23:30 UTC = 03-29 00:30 in Berlin: 2 days, one short
        _owes_200_from_02_19(connection, "T")
        add_applied_action(connection, "T", 1, _utc("2026-03-28 23:30"), "t-1")
        # U: tier 2 applied 03-29 21:30 UTC = 03-29 23:30 in Berlin (summer time): 2 days
        _owes_200_from_02_19(connection, "U")
        add_applied_action(connection, "U", 2, _utc("2026-03-29 21:30"), "u-2")
        # W: tier 2 applied 03-29 22:30 UTC = 03-30 00:30 in Berlin: 1 day, one short
        _owes_200_from_02_19(connection, "W")
        add_applied_action(connection, "W", 2, _utc("2026-03-29 22:30"), "w-2")
    written, python = _with_promises(engine, tiers)
    assert written == python == {
        "S": (3, 1, 2, None, None),
        "T": (3, 1, None, "cooldown", None),
        "U": (3, 2, 3, None, None),
        "W": (3, 2, None, "cooldown", None),
    }


def test_generated_ledger_with_applied_steps(engine):
    from ar_pipeline.sources.ledger_generator import generate_ledger

    with engine.begin() as connection:
        generate_ledger(
            connection, customer_count=300, months=8, seed=7, end_date=AS_OF,
            synced_until=dt.datetime(2026, 3, 31, 5, tzinfo=dt.UTC),
        )  # fmt: skip
        ids = connection.execute(sa.text("SELECT customer_id FROM customers ORDER BY 1")).scalars()
        for n, customer_id in enumerate(list(ids)):
            if n % 2 == 0:  # a step applied at some hour of the last 45 days, some tier 5
                at = _utc("2026-03-31 23:30") - dt.timedelta(days=n % 45, hours=n % 24)
                add_applied_action(connection, customer_id, 1 + n % 5, at, f"gen-{n}")
            if n % 17 == 0:
                _in_flight(connection, customer_id, 1 + n % 3)
    written, python = _with_promises(engine)
    assert written == python
    assert sum(1 for v in python.values() if v[1] is not None) > 25
    assert {v[3] for v in python.values()} >= {
        None, "in_flight", "already_at_tier", "cooldown",
    }  # fmt: skip
