"""Incremental balances (``ar_pipeline.rules.incremental``) equal a full recomputation after
each kind of change, on SQLite and PostgreSQL. Every expected balance is worked out by hand.

The base ledger, state brought to 2026-03-10 by a full recomputation:

* Alpha (A, EUR): I1 1000.00 issued 02-01 due 03-01, nothing paid -> 1000.00;
  I2 500.00 issued 02-15 due 03-15, P0 200.00 received 03-05 -> 300.00.
* Beta (B, EUR): J1 700.00 issued 02-01 due 03-03 -> 700.00; PB 50.00 cash on account
  received 03-01 -> 50.00 unapplied credit.

Then one change arrives (journaled by its settlement keys by the database's triggers, whoever
writes it) and the state
is brought to 03-11. Nothing of the base takes effect on 03-11, so only the keys of the changed
rows are recomputed: the invoice a payment names, an invoice's own id, a credit note's own id
and the invoice it applies to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from ar_pipeline.rules import incremental
from ar_pipeline.rules.aging import write_ar_aging as write_full_aging
from ar_pipeline.rules.views import upgrade_database
from ar_pipeline.store.journal import record_ledger_changes, record_settlement_keys
from ar_pipeline.store.schema import (
    ar_aging,
    balance_state,
    invoices,
    ledger_balances,
    ledger_credits,
    payments,
)
from ar_pipeline_tests.ledger_builder import add_credit_note, add_customer, add_invoice, add_payment

BASE_DAY = dt.date(2026, 3, 10)
NEXT_DAY = dt.date(2026, 3, 11)
BASE_BALANCES = {"I1": 100_000, "I2": 30_000, "J1": 70_000}
BASE_CREDITS = {("B", "EUR"): 5_000}


def _base(connection: sa.Connection) -> None:
    add_customer(connection, "A", "Alpha")
    add_customer(connection, "B", "Beta")
    add_invoice(connection, "I1", "A", 100_000, "2026-02-01", "2026-03-01")
    add_invoice(connection, "I2", "A", 50_000, "2026-02-15", "2026-03-15")
    add_payment(connection, "P0", "A", 20_000, "2026-03-05", invoice_id="I2")
    add_invoice(connection, "J1", "B", 70_000, "2026-02-01", "2026-03-03")
    add_payment(connection, "PB", "B", 5_000, "2026-03-01")


@pytest.fixture
def ledger(engine):
    upgrade_database(engine)
    with engine.begin() as connection:
        _base(connection)
        refresh = incremental.refresh_balances(connection, BASE_DAY)
    assert refresh.mode == "full" and refresh.reason == "no incremental state yet"
    with engine.connect() as connection:
        assert _balances(connection) == BASE_BALANCES
        assert _credits(connection) == BASE_CREDITS
    return engine


def _balances(connection: sa.Connection) -> dict[str, int]:
    rows = connection.execute(
        sa.select(ledger_balances.c.invoice_id, ledger_balances.c.balance_cents)
    )
    return dict(rows.all())


def _credits(connection: sa.Connection) -> dict[tuple[str, str], int]:
    """Unapplied credit per (customer, currency): the state keeps it per settlement key."""
    c = ledger_credits.c
    rows = connection.execute(sa.select(c.customer_id, c.currency, c.unapplied_credit_cents))
    totals: dict[tuple[str, str], int] = {}
    for r in rows:
        totals[(r.customer_id, r.currency)] = (
            totals.get((r.customer_id, r.currency), 0) + r.unapplied_credit_cents
        )
    return {key: cents for key, cents in totals.items() if cents}


def _edit(
    connection: sa.Connection,
    table: sa.Table,
    key: str,
    keys: list[tuple[str, str | None]],
    **values,
) -> None:
    """An in-place update as any writer makes it, journaling nothing itself: the database
    journals the row's settlement keys before and after the change (``keys``, for the
    reader)."""
    pk = next(iter(table.primary_key.columns))
    connection.execute(table.update().where(pk == key).values(**values))


def _drop_journal_triggers(connection: sa.Connection) -> None:
    """A database whose journaling triggers (revision 0016) are gone: what a writer that
    bypasses them (a restore without triggers, a superuser disabling them) leaves behind."""
    postgresql = connection.dialect.name == "postgresql"
    operations = ("insert", "update", "delete", "truncate") if postgresql else (
        "insert", "update", "delete"
    )  # fmt: skip
    for table in ("payments", "invoices"):
        for operation in operations:
            on = f" ON {table}" if postgresql else ""
            connection.execute(sa.text(f"DROP TRIGGER ar_journal_{table}_{operation}{on}"))


# (name, the change, balances as of 03-11, credits as of 03-11, keys recomputed)
CHANGES: list[tuple[str, Callable[[sa.Connection], None], dict[str, int], dict, int]] = [
    (
        # I3 300.00 issued today: a new open item
        "new_invoice",
        lambda c: add_invoice(c, "I3", "A", 30_000, "2026-03-11", "2026-04-10"),
        {**BASE_BALANCES, "I3": 30_000},
        BASE_CREDITS,
        1,  # I3
    ),
    (
        # 400.00 of I1's 1000.00 paid: 600.00 left
        "partial_payment",
        lambda c: add_payment(c, "P1", "A", 40_000, "2026-03-11", invoice_id="I1"),
        {**BASE_BALANCES, "I1": 60_000},
        BASE_CREDITS,
        1,  # I1
    ),
    (
        # P0 (200.00 on I2) reversed: I2 is owed in full again, 500.00
        "reversal",
        lambda c: add_payment(c, "P0R", "A", -20_000, "2026-03-11", invoice_id="I2"),
        {**BASE_BALANCES, "I2": 50_000},
        BASE_CREDITS,
        1,  # I2
    ),
    (
        # a 150.00 credit note on I1: 850.00 left
        "credit_note",
        lambda c: add_credit_note(c, "CN1", "A", 15_000, "2026-03-11", applies_to="I1"),
        {**BASE_BALANCES, "I1": 85_000},
        BASE_CREDITS,
        2,  # CN1 (its own id) and I1
    ),
    (
        # 250.00 on I2 dated 03-02, before the state's date, arriving today: it counts,
        # 300.00 - 250.00 = 50.00. No business date of it falls in (03-10, 03-11]: only the
        # journal, i.e. the order of arrival, can see it.
        "back_dated_payment",
        lambda c: add_payment(c, "P2", "A", 25_000, "2026-03-02", invoice_id="I2"),
        {**BASE_BALANCES, "I2": 5_000},
        BASE_CREDITS,
        1,  # I2
    ),
    (
        # I2 voided: it no longer counts, and P0's 200.00 that settled it becomes Alpha's
        # unapplied credit
        "void",
        lambda c: _edit(c, invoices, "I2", [("A", "I2")], status="void"),
        {"I1": 100_000, "J1": 70_000},
        {**BASE_CREDITS, ("A", "EUR"): 20_000},
        1,  # I2
    ),
    (
        # I1's amount corrected in place from 1000.00 to 900.00
        "amount_edit",
        lambda c: _edit(c, invoices, "I1", [("A", "I1")], amount_cents=90_000),
        {**BASE_BALANCES, "I1": 90_000},
        BASE_CREDITS,
        1,  # I1
    ),
    (
        # P0 corrected in place from 200.00 to 120.00: I2 500.00 - 120.00 = 380.00
        "payment_edit",
        lambda c: _edit(c, payments, "P0", [("A", "I2")], amount_cents=12_000),
        {**BASE_BALANCES, "I2": 38_000},
        BASE_CREDITS,
        1,  # I2
    ),
    (
        # P0 re-pointed from I2 to I1: I1 1000.00 - 200.00 = 800.00, I2 owed in full, 500.00.
        # Both keys are journaled, the old and the new.
        "payment_moved",
        lambda c: _edit(c, payments, "P0", [("A", "I2"), ("A", "I1")], invoice_id="I1"),
        {**BASE_BALANCES, "I1": 80_000, "I2": 50_000},
        BASE_CREDITS,
        2,  # I1 and I2
    ),
    (
        # 30.00 cash on account: Alpha's unapplied credit
        "cash_on_account",
        lambda c: add_payment(c, "P4", "A", 3_000, "2026-03-11"),
        BASE_BALANCES,
        {**BASE_CREDITS, ("A", "EUR"): 3_000},
        1,  # Alpha's account
    ),
    (
        # a 20.00 credit note applied to nothing: Alpha's unapplied credit
        "unapplied_credit_note",
        lambda c: add_credit_note(c, "CN2", "A", 2_000, "2026-03-11"),
        BASE_BALANCES,
        {**BASE_CREDITS, ("A", "EUR"): 2_000},
        2,  # CN2 (its own id) and Alpha's account
    ),
    (
        # 100.00 on I1 dated 03-20, in the future: it does not count on 03-11
        "future_dated_payment",
        lambda c: add_payment(c, "P3", "A", 10_000, "2026-03-20", invoice_id="I1"),
        BASE_BALANCES,
        BASE_CREDITS,
        1,  # I1
    ),
]


@pytest.mark.parametrize(
    ("change", "expected_balances", "expected_credits", "expected_keys"),
    [pytest.param(change, b, c, k, id=name) for name, change, b, c, k in CHANGES],
)
def test_incremental_equals_full_after_each_change(
    ledger, change, expected_balances, expected_credits, expected_keys
):
    with ledger.begin() as connection:
        change(connection)
        refresh = incremental.refresh_balances(connection, NEXT_DAY)
    assert (refresh.mode, refresh.keys_recomputed) == ("incremental", expected_keys)
    with ledger.connect() as connection:
        assert _balances(connection) == expected_balances
        assert _credits(connection) == expected_credits
        assert incremental.compare_with_full(connection, NEXT_DAY).agree


def test_a_future_dated_payment_counts_on_its_date(ledger):
    with ledger.begin() as connection:
        add_payment(connection, "P3", "A", 10_000, "2026-03-20", invoice_id="I1")
        incremental.refresh_balances(connection, NEXT_DAY)
    # 03-20: nothing new arrived, but P3 takes effect: I1 1000.00 - 100.00 = 900.00. I2 falls
    # due on 03-15 in between, which moves no balance.
    with ledger.begin() as connection:
        refresh = incremental.refresh_balances(connection, dt.date(2026, 3, 20))
        assert (refresh.mode, refresh.keys_recomputed) == ("incremental", 1)  # I1
        assert _balances(connection) == {**BASE_BALANCES, "I1": 90_000}
        assert incremental.compare_with_full(connection, dt.date(2026, 3, 20)).agree


def test_a_payment_before_its_invoice_applies_when_the_invoice_is_issued(ledger):
    # 60.00 naming I9 arrives 03-11, before I9 (issued 03-15) counts: Alpha's credit until
    # then; on 03-15 it settles I9 (80.00 - 60.00 = 20.00) and the credit is gone.
    with ledger.begin() as connection:
        add_invoice(connection, "I9", "A", 8_000, "2026-03-15", "2026-04-15")
        add_payment(connection, "P9", "A", 6_000, "2026-03-11", invoice_id="I9")
        incremental.refresh_balances(connection, NEXT_DAY)
        assert _credits(connection) == {**BASE_CREDITS, ("A", "EUR"): 6_000}
        assert "I9" not in _balances(connection)
        incremental.refresh_balances(connection, dt.date(2026, 3, 15))
        assert _balances(connection) == {**BASE_BALANCES, "I9": 2_000}
        assert _credits(connection) == BASE_CREDITS
        assert incremental.compare_with_full(connection, dt.date(2026, 3, 15)).agree


def test_a_past_date_leaves_the_state_alone(ledger):
    with ledger.begin() as connection:
        refresh = incremental.refresh_balances(connection, dt.date(2026, 3, 4))
        assert refresh.mode == "past"
        assert connection.execute(sa.select(balance_state.c.as_of)).scalar_one() == BASE_DAY
        assert _balances(connection) == BASE_BALANCES


@pytest.mark.parametrize("what", ["unjournaled_insert", "unjournaled_delete", "bulk", "rules"])
def test_what_cannot_be_seen_incrementally_recomputes_everything(ledger, monkeypatch, what):
    with ledger.begin() as connection:
        if what.startswith("unjournaled"):
            _drop_journal_triggers(connection)
        if what == "unjournaled_insert":
            connection.execute(
                payments.insert().values(
                    payment_id="PX", customer_id="B", invoice_id="J1",
                    received_date=dt.date(2026, 3, 9), currency="EUR", amount_cents=70_000,
                )
            )  # fmt: skip
        elif what == "unjournaled_delete":
            connection.execute(payments.delete().where(payments.c.payment_id == "P0"))
        elif what == "bulk":
            record_ledger_changes(connection, None)
        else:
            monkeypatch.setattr(incremental, "RULES_VERSION", incremental.RULES_VERSION + 1)
        refresh = incremental.refresh_balances(connection, NEXT_DAY)
        assert refresh.mode == "full"
        assert incremental.compare_with_full(connection, NEXT_DAY).agree


def _two_payments(connection: sa.Connection, suffix: str, cents: int) -> None:
    """Two payments, on I1 and on J1, dated 03-11: two settlement keys."""
    connection.execute(
        payments.insert(),
        [{"payment_id": f"{invoice}-{suffix}", "customer_id": customer, "invoice_id": invoice,
          "received_date": NEXT_DAY, "currency": "EUR", "amount_cents": cents}
         for invoice, customer in (("I1", "A"), ("J1", "B"))],
    )  # fmt: skip


def test_a_journal_naming_much_of_the_ledger_recomputes_everything(ledger, monkeypatch):
    """A journal with FULL_FROM_SHARE of the invoices' count in changes or more (and at least
    FULL_FROM_CHANGES) is recomputed in full, which is then quicker than key by key; fewer
    changes, key by key. The bound lowered to two changes for this ledger of three invoices:
    max(2, 3 x 25 %) = 2."""
    monkeypatch.setattr(incremental, "FULL_FROM_CHANGES", 2)
    with ledger.begin() as connection:
        # one key, although SQLite's row trigger journals an update's key twice (before, after)
        _edit(connection, payments, "P0", [("I2", None)], amount_cents=25_000)
        assert incremental.refresh_balances(connection, NEXT_DAY).mode == "incremental"
        add_payment(connection, "P1", "A", 10_000, "2026-03-11", invoice_id="I1")  # one change
        assert incremental.refresh_balances(connection, NEXT_DAY).mode == "incremental"
        _two_payments(connection, "a", 5_000)  # two changes
        refresh = incremental.refresh_balances(connection, NEXT_DAY)
        assert (refresh.mode, refresh.reason) == (
            "full",
            "the journal names 2 keys, 25% or more of the ledger's 3 invoices: "
            "recomputing everything is quicker",
        )
        # I1 1,000.00 - 100.00 - 50.00; I2 500.00 - 250.00; J1 700.00 - 50.00
        assert _balances(connection) == {"I1": 85_000, "I2": 25_000, "J1": 65_000}
    monkeypatch.setattr(incremental, "FULL_FROM_SHARE", 1.0)  # max(2, 3 x 100 %) = 3 changes
    with ledger.begin() as connection:
        _two_payments(connection, "b", 1_000)
        refresh = incremental.refresh_balances(connection, NEXT_DAY)
        assert (refresh.mode, refresh.keys_recomputed) == ("incremental", 2)
        assert _balances(connection) == {"I1": 84_000, "I2": 25_000, "J1": 64_000}
        assert incremental.compare_with_full(connection, NEXT_DAY).agree


def test_an_unjournaled_edit_is_caught_by_the_sample_and_recomputed(ledger):
    # an in-place edit without a journal entry changes no row count: the daily aging's
    # comparison with a full recomputation (both customers are in the sample) catches it
    with ledger.begin() as connection:
        _drop_journal_triggers(connection)
        connection.execute(
            invoices.update().where(invoices.c.invoice_id == "J1").values(amount_cents=60_000)
        )
        rows, refresh = incremental.write_ar_aging(connection, NEXT_DAY)
        assert refresh.mode == "full" and refresh.reason.startswith("sample disagreed")
        assert _balances(connection)["J1"] == 60_000


def test_daily_aging_from_the_state_equals_the_ledger_evaluation(ledger):
    """The ar_aging rows written from the incremental state are those of the one definition."""
    with ledger.begin() as connection:
        add_payment(connection, "P2", "A", 25_000, "2026-03-02", invoice_id="I2")
        add_credit_note(connection, "CN1", "A", 15_000, "2026-03-11", applies_to="I1")
        add_payment(connection, "PB2", "B", 80_000, "2026-03-11", invoice_id="J1")  # overpaid
        _, refresh = incremental.write_ar_aging(connection, NEXT_DAY)
        assert refresh.mode == "incremental"
        from_state = _aging_rows(connection)
        write_full_aging(connection, NEXT_DAY)
        assert _aging_rows(connection) == from_state
    # Alpha: I1 1000 - 150 = 850.00 (10 days overdue), I2 500 - 200 - 250 = 50.00 (current);
    # Beta: J1 overpaid by 100.00, plus 50.00 on account: 150.00 credit
    assert {(r.customer_id, r.total_open_cents, r.unapplied_credit_cents) for r in from_state} == {
        ("A", 90_000, 0),
        ("B", 0, 15_000),
    }


def _aging_rows(connection: sa.Connection, day: dt.date = NEXT_DAY) -> list[sa.Row]:
    query = sa.select(ar_aging).where(ar_aging.c.as_of == day).order_by(ar_aging.c.customer_id)
    return connection.execute(query).all()


def test_a_customer_mismatch_is_found_for_both_customers_and_cleared_for_both(ledger):
    """Beta pays 100.00 naming Alpha's I1: no settlement (another customer's invoice), Beta's
    credit, and a finding of the ledger check for both customers. The payment's key is I1, so
    recomputing that one key finds both sides. Then a writer deletes the row and journals Beta
    whole (as a writer replacing a customer's rows does): Beta's keys now (J1, Beta's account)
    and in the state (I1, where the deleted row's credit and findings are kept) are recomputed,
    and both findings are cleared."""
    from ar_pipeline.store.schema import ledger_findings

    def found(connection):
        f = ledger_findings.c
        rows = connection.execute(sa.select(f.customer_id, f.reason, f.row_id, f.other))
        return sorted(tuple(r) for r in rows)

    with ledger.begin() as connection:
        add_payment(connection, "PM", "B", 10_000, "2026-03-11", invoice_id="I1")
        refresh = incremental.refresh_balances(connection, NEXT_DAY)
        assert (refresh.mode, refresh.keys_recomputed) == ("incremental", 1)  # I1
        assert found(connection) == [
            ("A", "customer_mismatch", "PM", "B"),
            ("B", "customer_mismatch", "PM", "A"),
        ]
        assert _credits(connection) == {("B", "EUR"): 15_000}
        assert incremental.compare_with_full(connection, NEXT_DAY).agree
        connection.execute(payments.delete().where(payments.c.payment_id == "PM"))
        record_ledger_changes(connection, ["B"])
        refresh = incremental.refresh_balances(connection, dt.date(2026, 3, 12))
        # I1 (from the state), J1 (Beta's invoice) and Beta's account
        assert (refresh.mode, refresh.keys_recomputed) == ("incremental", 3)
        assert found(connection) == []
        assert _credits(connection) == BASE_CREDITS
        assert incremental.compare_with_full(connection, dt.date(2026, 3, 12)).agree


def test_a_sample_of_one_side_of_a_mismatch_compares_it_with_the_other_side(ledger):
    """The daily comparison takes a slice of customers. Beta's payment naming Alpha's I1 is a
    finding for both, found only with both customers' rows: a slice of either one alone must
    still agree with the state (without the other side, the full recomputation would miss the
    finding, and a sound state would be thrown away every morning that slice comes round)."""
    with ledger.begin() as connection:
        add_payment(connection, "PM", "B", 10_000, "2026-03-11", invoice_id="I1")
        assert incremental.refresh_balances(connection, NEXT_DAY).mode == "incremental"
        for one_side in (["A"], ["B"]):
            compared = incremental.compare_with_full(connection, NEXT_DAY, one_side)
            assert (compared.customers, compared.agree) == (1, True), one_side
        # and a slice does compare findings: one dropped from the state is a difference
        from ar_pipeline.store.schema import ledger_findings

        connection.execute(ledger_findings.delete().where(ledger_findings.c.customer_id == "A"))
        compared = incremental.compare_with_full(connection, NEXT_DAY, ["A"])
        assert (compared.differing_findings, compared.agree) == (1, False)


def test_an_accounts_finding_is_replaced_when_the_account_changes_again(ledger):
    """Beta's payment beyond the amount bound names no invoice: a finding under Beta's account,
    and no credit (the aging leaves such rows out). A later 10.00 on the same account
    recomputes that key: the finding is there once, not twice; the credit is 50.00 + 10.00."""
    from ar_pipeline.rules.ledger_sanity import AMOUNT_BOUND_CENTS
    from ar_pipeline.store.schema import ledger_findings

    def found(connection):
        f = ledger_findings.c
        return connection.execute(sa.select(f.customer_id, f.reason, f.row_id)).all()

    with ledger.begin() as connection:
        add_payment(connection, "PH", "B", AMOUNT_BOUND_CENTS + 1, "2026-03-11")
        incremental.refresh_balances(connection, NEXT_DAY)
        assert found(connection) == [("B", "amount_out_of_bounds", "PH")]
        assert _credits(connection) == BASE_CREDITS
        add_payment(connection, "PB3", "B", 1_000, "2026-03-12")
        refresh = incremental.refresh_balances(connection, dt.date(2026, 3, 12))
        assert (refresh.mode, refresh.keys_recomputed) == ("incremental", 1)  # Beta's account
        assert found(connection) == [("B", "amount_out_of_bounds", "PH")]
        assert _credits(connection) == {("B", "EUR"): 6_000}
        assert incremental.compare_with_full(connection, dt.date(2026, 3, 12)).agree


def test_the_comparison_counts_a_row_kept_twice(ledger):
    """The full comparison compares rows with their multiplicity: a finding kept twice differs
    from the one the ledger gives (one row too many on the state's side, and the single row
    missing on the other: 2)."""
    from ar_pipeline.rules.ledger_sanity import AMOUNT_BOUND_CENTS
    from ar_pipeline.store.schema import ledger_findings

    with ledger.begin() as connection:
        add_payment(connection, "PH", "B", AMOUNT_BOUND_CENTS + 1, "2026-03-11")
        incremental.refresh_balances(connection, NEXT_DAY)
        assert incremental.compare_with_full(connection, NEXT_DAY).agree
        kept = connection.execute(sa.select(ledger_findings)).mappings().one()
        connection.execute(ledger_findings.insert().values(**kept))
        compared = incremental.compare_with_full(connection, NEXT_DAY)
        assert (compared.agree, compared.differing_findings) == (False, 2)


def test_an_invoice_issued_after_another_customer_named_it(ledger):
    """Beta's 40.00 names K1 before K1 exists: Beta's credit, no finding. Then K1 (90.00) is
    issued to Alpha, journaled by its own key only: recomputing K1 applies nothing (another
    customer's payment), K1 is open in full, Beta keeps its credit, and the customer mismatch
    appears for both customers."""
    from ar_pipeline.store.schema import ledger_findings

    with ledger.begin() as connection:
        add_payment(connection, "PK", "B", 4_000, "2026-03-11", invoice_id="K1")
        incremental.refresh_balances(connection, NEXT_DAY)
        assert _credits(connection) == {("B", "EUR"): 9_000}
        count = sa.select(sa.func.count()).select_from(ledger_findings)
        assert connection.execute(count).scalar_one() == 0
        add_invoice(connection, "K1", "A", 9_000, "2026-03-12", "2026-04-11")
        refresh = incremental.refresh_balances(connection, dt.date(2026, 3, 12))
        assert (refresh.mode, refresh.keys_recomputed) == ("incremental", 1)  # K1
        assert _balances(connection) == {**BASE_BALANCES, "K1": 9_000}
        assert _credits(connection) == {("B", "EUR"): 9_000}
        f = ledger_findings.c
        rows = connection.execute(sa.select(f.customer_id, f.reason, f.row_id, f.invoice_id))
        assert sorted(tuple(r) for r in rows) == [
            ("A", "customer_mismatch", "PK", "K1"),
            ("B", "customer_mismatch", "PK", "K1"),
        ]
        assert incremental.compare_with_full(connection, dt.date(2026, 3, 12)).agree


def test_the_journal_is_consumed_and_a_quiet_rerun_recomputes_nobody(ledger):
    from ar_pipeline.store.schema import ledger_changes

    with ledger.begin() as connection:
        add_payment(connection, "P1", "A", 40_000, "2026-03-11", invoice_id="I1")
        add_payment(connection, "P2", "B", 1_000, "2026-03-11")
        head = connection.execute(sa.select(sa.func.max(ledger_changes.c.seq))).scalar_one()
        first = incremental.refresh_balances(connection, NEXT_DAY)
        # the last entry stays: the head never falls behind the watermark
        assert connection.execute(sa.select(ledger_changes.c.seq)).scalars().all() == [head]
        again = incremental.refresh_balances(connection, NEXT_DAY)
    # I1 and Beta's account, then nothing
    assert (first.keys_recomputed, again.keys_recomputed) == (2, 0)
    assert again.mode == "incremental"


def test_the_daily_job_uses_the_state_only_when_the_setting_says_so(
    engine, database_url, tmp_path
):
    """AR_INCREMENTAL_BALANCES is auto by default, which on this three-invoice ledger keeps no
    state: the daily job ages from the ledger's events and forgets any state; on, its first run
    builds the state and the next morning refreshes only what changed. The figures are the
    same either way."""
    import dagster as dg

    from ar_pipeline.definitions import build_definitions
    from ar_pipeline.defs.runs import run_daily_job
    from ar_pipeline.settings import load_settings

    upgrade_database(engine)
    with engine.begin() as connection:
        _base(connection)

    def run(day: dt.date, setting: str | None) -> tuple[str, str]:
        environ = {"AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path)}
        if setting is not None:
            environ["AR_INCREMENTAL_BALANCES"] = setting
        with dg.DagsterInstance.ephemeral() as instance:
            result = run_daily_job(build_definitions(load_settings(environ)), day, instance)
            assert result.success
            (aged,) = [m for m in result.get_asset_materialization_events()
                       if m.asset_key == dg.AssetKey("ar_aging")]  # fmt: skip
        metadata = aged.materialization.metadata
        return metadata["balances"].value, metadata["balances_why"].value

    assert run(BASE_DAY, None) == (
        "off", "AR_INCREMENTAL_BALANCES is auto and the ledger has fewer than 250,000 invoices: "
        "from the ledger",
    )  # fmt: skip
    with engine.connect() as connection:
        off_rows = _aging_rows(connection)
        assert connection.execute(sa.select(balance_state)).first() is None
    assert run(BASE_DAY, "true") == ("full", "no incremental state yet")
    with engine.connect() as connection:
        assert _aging_rows(connection) == off_rows
    assert run(NEXT_DAY, "on")[0] == "incremental"
    # the state is forgotten: nothing reads it stale
    assert run(NEXT_DAY, "false") == ("off", "AR_INCREMENTAL_BALANCES is off: from the ledger")
    with engine.connect() as connection:
        assert connection.execute(sa.select(balance_state)).first() is None


def test_auto_keeps_the_state_from_the_bound_number_of_invoices(engine):
    """AR_INCREMENTAL_BALANCES=auto with a bound of 4 invoices rows: the base ledger's three
    are below it (aged from the ledger, no state kept); a credit note makes four, and the day's
    balances come from a state built by a full recomputation; the next morning refreshes the one
    key a payment touched. Every day's figures equal a recomputation from the ledger."""
    upgrade_database(engine)

    def age(connection: sa.Connection, day: dt.date, setting: str) -> incremental.Refresh:
        _, refresh = incremental.write_ar_aging(connection, day, setting, auto_from_invoices=4)
        return refresh

    with engine.begin() as connection:
        _base(connection)
        below = age(connection, BASE_DAY, "auto")
        assert (below.mode, below.reason) == (
            "off", "AR_INCREMENTAL_BALANCES is auto and the ledger has fewer than 4 invoices: "
            "from the ledger",
        )  # fmt: skip
        assert incremental.state_date(connection) is None
        # J1 credited 10,000 on 2026-03-09: the fourth row of invoices
        add_credit_note(connection, "CN1", "B", 10_000, "2026-03-09", applies_to="J1")
        at_bound = age(connection, BASE_DAY, "auto")
        assert (at_bound.mode, at_bound.reason) == (
            "full", "AR_INCREMENTAL_BALANCES is auto and the ledger has 4+ invoices; "
            "no incremental state yet",
        )  # fmt: skip
        assert _balances(connection) == {"I1": 100_000, "I2": 30_000, "J1": 60_000}
        auto_base_rows = _aging_rows(connection, BASE_DAY)
        add_payment(connection, "P1", "A", 40_000, "2026-03-11", invoice_id="I1")
        morning = age(connection, NEXT_DAY, "auto")
        assert (morning.mode, morning.keys_recomputed) == ("incremental", 1)
        assert _balances(connection) == {"I1": 60_000, "I2": 30_000, "J1": 60_000}
        auto_next_rows = _aging_rows(connection, NEXT_DAY)
        assert age(connection, BASE_DAY, "off").mode == "off"
        assert _aging_rows(connection, BASE_DAY) == auto_base_rows
        # a bound of 5: the ledger is below it again, the state and its rows are forgotten
        _, below_again = incremental.write_ar_aging(
            connection, NEXT_DAY, "auto", auto_from_invoices=5
        )
        assert below_again.mode == "off"
        assert incremental.state_date(connection) is None
        assert (_balances(connection), _credits(connection)) == ({}, {})
        assert _aging_rows(connection, NEXT_DAY) == auto_next_rows


def test_a_malformed_setting_is_named(engine):
    """From the environment, and as the daily job's resource passes it on (run config can set
    the resource's field directly): the same spellings, the same error."""
    from ar_pipeline.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="AR_INCREMENTAL_BALANCES: must be auto, true or fa"):
        load_settings({"AR_INCREMENTAL_BALANCES": "maybe"})
    upgrade_database(engine)
    with engine.connect() as connection:
        assert incremental.keeps_state(connection, "yes") == (True, "AR_INCREMENTAL_BALANCES is on")
        with pytest.raises(SettingsError, match="AR_INCREMENTAL_BALANCES: must be auto, true"):
            incremental.keeps_state(connection, "maybe")


@pytest.mark.parametrize(
    ("raw", "setting"),
    [(None, "auto"), ("", "auto"), (" Auto ", "auto"), ("true", "on"), ("on", "on"),
     ("1", "on"), ("yes", "on"), ("false", "off"), ("off", "off"), ("0", "off"),
     ("no", "off")],
)  # fmt: skip
def test_the_setting_reads_auto_or_a_boolean(raw, setting):
    from ar_pipeline.settings import load_settings

    environ = {} if raw is None else {"AR_INCREMENTAL_BALANCES": raw}
    assert load_settings(environ).incremental_balances == setting


@pytest.mark.parametrize("journal", ["by_the_database", "by_the_writer"])
def test_random_journaled_changes_keep_the_state_equal_to_a_full_recomputation(engine, journal):
    """Six mornings of a generated ledger changing at random in every way a writer can change
    it: payments, partial, full and over, back-dated and future-dated, naming another
    customer's invoice, another currency's or no invoice; reversals; credit notes; voids;
    amount fixes; payments re-pointed or deleted; new invoices; a row beyond the amount bound.
    Each change journaled either by the database's triggers alone (the writer journals
    nothing) or, the triggers dropped, by the writer alone with the rows' settlement keys (a
    changed row with its keys before and after). After each morning's refresh the whole state
    (balances, credit, the ledger check's findings) equals a full recomputation. The changes
    are seeded: every run makes the same."""
    import random

    from ar_pipeline.rules.ledger_sanity import AMOUNT_BOUND_CENTS
    from ar_pipeline.rules.settlement_keys import document_keys, payment_key
    from ar_pipeline.sources.ledger_generator import generate_ledger

    upgrade_database(engine)
    day = dt.date(2026, 3, 10)
    with engine.begin() as connection:
        generate_ledger(
            connection, customer_count=30, months=3, seed=5, end_date=day,
            synced_until=dt.datetime(2026, 3, 10, 5, tzinfo=dt.UTC),
        )  # fmt: skip
        assert incremental.refresh_balances(connection, day).mode == "full"
        if journal == "by_the_writer":
            _drop_journal_triggers(connection)

    def writer_journals(connection: sa.Connection, keys) -> None:
        if journal == "by_the_writer":
            record_settlement_keys(connection, keys)

    rng = random.Random(17)
    i, p = invoices.c, payments.c
    kinds = ["pay", "pay", "pay", "reverse", "on_account", "credit_note", "void", "amount_fix",
             "re_point", "delete", "new_invoice", "beyond_bound"]  # fmt: skip
    for morning in range(6):
        day += dt.timedelta(days=1)
        with engine.begin() as connection:
            docs = connection.execute(
                sa.select(i.invoice_id, i.customer_id, i.currency, i.amount_cents)
                .where(i.kind == "invoice").order_by(i.invoice_id)
            ).all()  # fmt: skip
            paid = connection.execute(
                sa.select(p.payment_id, p.customer_id, p.invoice_id).order_by(p.payment_id)
            ).all()
            customers_ = sorted({d.customer_id for d in docs})
            for n in range(15):
                kind, tag = rng.choice(kinds), f"R{morning}-{n}"
                doc = rng.choice(docs)
                payer = rng.choice(customers_) if rng.random() < 0.2 else doc.customer_id
                currency = "XYZ" if rng.random() < 0.1 else doc.currency
                when = day + dt.timedelta(days=rng.randint(-12, 3))
                if kind in ("pay", "reverse", "beyond_bound", "on_account"):
                    cents = {
                        "pay": rng.choice([doc.amount_cents, doc.amount_cents // 3,
                                           doc.amount_cents + 500]),
                        "reverse": -rng.randint(1, doc.amount_cents),
                        "beyond_bound": AMOUNT_BOUND_CENTS + 1,
                        "on_account": rng.randint(100, 50_000),
                    }[kind]  # fmt: skip
                    unnamed = kind == "on_account" or (kind == "beyond_bound" and n % 2)
                    named = None if unnamed else doc.invoice_id
                    connection.execute(payments.insert().values(
                        payment_id=tag, customer_id=payer, invoice_id=named,
                        received_date=when, currency=currency, amount_cents=cents,
                    ))  # fmt: skip
                    writer_journals(connection, [payment_key(payer, named)])
                elif kind in ("credit_note", "new_invoice"):
                    note = kind == "credit_note"
                    applies = (doc.invoice_id if rng.random() < 0.8 else None) if note else None
                    connection.execute(invoices.insert().values(
                        invoice_id=tag, customer_id=payer, invoice_number=f"N-{tag}",
                        kind="credit_note" if note else "invoice", status="issued",
                        issue_date=when, due_date=when + dt.timedelta(days=30),
                        currency=currency, amount_cents=rng.randint(100, 90_000),
                        applies_to_invoice_id=applies,
                    ))  # fmt: skip
                    writer_journals(
                        connection,
                        document_keys(payer, tag, "credit_note" if note else "invoice", applies),
                    )
                elif kind in ("void", "amount_fix"):
                    values = {"status": "void"} if kind == "void" else {
                        "amount_cents": max(1, doc.amount_cents + rng.randint(-5_000, 5_000))
                    }  # fmt: skip
                    connection.execute(
                        invoices.update().where(i.invoice_id == doc.invoice_id).values(**values)
                    )
                    writer_journals(
                        connection, document_keys(doc.customer_id, doc.invoice_id, "invoice", None)
                    )
                elif paid:  # re_point or delete an existing payment: its old key and new one
                    row = paid.pop(rng.randrange(len(paid)))
                    keys = [payment_key(row.customer_id, row.invoice_id)]
                    if kind == "delete":
                        connection.execute(payments.delete().where(p.payment_id == row.payment_id))
                    else:
                        target = rng.choice([doc.invoice_id, None])
                        connection.execute(
                            payments.update()
                            .where(p.payment_id == row.payment_id)
                            .values(invoice_id=target)
                        )
                        keys.append(payment_key(row.customer_id, target))
                    writer_journals(connection, keys)
            refresh = incremental.refresh_balances(connection, day)
            assert refresh.mode == "incremental", refresh
            compared = incremental.compare_with_full(connection, day)
            assert compared.agree, (morning, compared)
    with engine.connect() as connection:  # the changes did reach the checks' rules
        from ar_pipeline.store.schema import ledger_findings

        reasons = set(connection.execute(sa.select(ledger_findings.c.reason)).scalars())
    assert {"customer_mismatch", "currency_mismatch", "amount_out_of_bounds"} <= reasons


def _journal(connection: sa.Connection) -> list[tuple[str | None, str | None, str]]:
    from ar_pipeline.store.schema import ledger_changes

    c = ledger_changes.c
    watermark = connection.execute(sa.select(balance_state.c.watermark)).scalar_one()
    rows = connection.execute(
        sa.select(c.customer_id, c.invoice_id, c.scope).where(c.seq > watermark).order_by(c.seq)
    )
    return [tuple(r) for r in rows]


def test_the_database_journals_a_raw_write_by_its_keys(ledger):
    """Plain SQL, as a sync outside the package or a correction by hand would write it: a
    payment on I1 (key I1), a credit note on J1 (its own key CN9 and J1), then P0 moved from I2
    to nothing (keys I2 and Alpha's account), then PB deleted (Beta's account)."""
    with ledger.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO payments (payment_id, customer_id, invoice_id, received_date, currency,"
            " amount_cents) VALUES ('P9', 'A', 'I1', '2026-03-11', 'EUR', 10000)"
        ))  # fmt: skip
        connection.execute(sa.text(
            "INSERT INTO invoices (invoice_id, customer_id, invoice_number, kind, status,"
            " issue_date, due_date, currency, amount_cents, applies_to_invoice_id, disputed)"
            " VALUES ('CN9', 'B', 'CN-9', 'credit_note', 'issued', '2026-03-11', '2026-03-11',"
            " 'EUR', 5000, 'J1', false)"
        ))  # fmt: skip
        connection.execute(sa.text("UPDATE payments SET invoice_id = NULL WHERE payment_id = 'P0'"))
        connection.execute(sa.text("DELETE FROM payments WHERE payment_id = 'PB'"))
        journal = _journal(connection)
        refresh = incremental.refresh_balances(connection, NEXT_DAY)
    assert sorted(set(journal), key=str) == sorted(
        {("A", "I1", "invoice"), ("B", "CN9", "invoice"), ("B", "J1", "invoice"),
         ("A", "I2", "invoice"), ("A", None, "account"), ("B", None, "account")}, key=str
    )  # fmt: skip
    # I1 1000.00 - 100.00 = 900.00; J1 700.00 - 50.00 = 650.00; I2 owed in full, 500.00;
    # P0's 200.00 is Alpha's credit; Beta's 50.00 on account is gone
    assert (refresh.mode, refresh.keys_recomputed) == ("incremental", 6)
    with ledger.connect() as connection:
        assert _balances(connection) == {"I1": 90_000, "I2": 50_000, "J1": 65_000}
        assert _credits(connection) == {("A", "EUR"): 20_000}
        assert incremental.compare_with_full(connection, NEXT_DAY).agree


def test_a_bulk_load_journaled_as_anything_is_not_journaled_row_by_row(ledger):
    with ledger.begin() as connection:
        record_ledger_changes(connection, None)
        for n in range(3):
            add_payment(connection, f"PL{n}", "A", 1_000, "2026-03-11", invoice_id="I1")
        assert _journal(connection) == [(None, None, "all")]
        assert incremental.refresh_balances(connection, NEXT_DAY).mode == "full"
        # I1 1000.00 - 3 x 10.00
        assert _balances(connection) == {**BASE_BALANCES, "I1": 97_000}
    with ledger.begin() as connection:  # the next write is journaled again
        add_payment(connection, "PL9", "A", 1_000, "2026-03-11", invoice_id="I1")
        assert _journal(connection) == [("A", "I1", "invoice")]


def test_a_truncated_ledger_table_is_journaled_as_anything(ledger):
    if ledger.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    with ledger.begin() as connection:
        connection.execute(sa.text("TRUNCATE payments"))
        assert _journal(connection) == [(None, None, "all")]
        assert incremental.refresh_balances(connection, NEXT_DAY).mode == "full"
        # P0 and PB gone: I2 owed in full, no credit
        assert _balances(connection) == {**BASE_BALANCES, "I2": 50_000}
        assert _credits(connection) == {}


def test_a_raw_write_holds_the_refresh_off_until_it_commits(ledger):
    """PostgreSQL hands out journal numbers before commit: the trigger takes the journal's lock
    shared, as a writer must, so the refresh (exclusive) cannot read the journal's head while
    an uncommitted write sits under it; once the write commits, its key is picked up."""
    if ledger.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    from sqlalchemy.exc import OperationalError

    with ledger.connect() as writer:
        with writer.begin():
            writer.execute(sa.text(
                "INSERT INTO payments (payment_id, customer_id, invoice_id, received_date,"
                " currency, amount_cents) VALUES ('PW', 'A', 'I1', '2026-03-11', 'EUR', 30000)"
            ))  # fmt: skip
            with pytest.raises(OperationalError, match="lock timeout"), ledger.begin() as other:
                other.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
                incremental.refresh_balances(other, NEXT_DAY)
    with ledger.begin() as connection:
        refresh = incremental.refresh_balances(connection, NEXT_DAY)
        assert (refresh.mode, refresh.keys_recomputed) == ("incremental", 1)  # I1
        assert _balances(connection) == {**BASE_BALANCES, "I1": 70_000}  # 1000.00 - 300.00


def test_with_the_setting_off_the_journal_does_not_pile_up(ledger):
    """Off, the daily aging forgets the state every run; the journal goes too, but for its last
    entry (the triggers keep writing it)."""
    from ar_pipeline.store.schema import ledger_changes

    with ledger.begin() as connection:
        for n in range(3):
            add_payment(connection, f"PO{n}", "B", 100, "2026-03-11", invoice_id="J1")
        last = connection.execute(sa.select(sa.func.max(ledger_changes.c.seq))).scalar_one()
        incremental.write_ar_aging(connection, NEXT_DAY, setting="off")
        assert connection.execute(sa.select(ledger_changes.c.seq)).scalars().all() == [last]


def test_a_refresh_that_fails_half_way_leaves_the_state_as_it_was(ledger, monkeypatch):
    """The refresh deletes a key's rows of the state, then inserts them afresh. A failure in
    between (here: the ledger check's query, after the balances were deleted and re-inserted)
    rolls the whole transaction back: the state, its watermark and the journal are as before,
    and the next run brings them forward as if nothing had happened (I1 1000.00 - 400.00)."""
    from ar_pipeline.rules import ledger_sanity
    from ar_pipeline.store.schema import ledger_changes

    with ledger.begin() as connection:
        add_payment(connection, "P1", "A", 40_000, "2026-03-11", invoice_id="I1")
    with ledger.connect() as connection:
        before = connection.execute(sa.select(balance_state)).one()
        journal = connection.execute(sa.select(ledger_changes.c.seq)).scalars().all()

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    with monkeypatch.context() as patched:
        patched.setattr(ledger_sanity, "findings", broken)
        with pytest.raises(RuntimeError, match="went away"), ledger.begin() as connection:
            incremental.refresh_balances(connection, NEXT_DAY)
    with ledger.connect() as connection:
        assert connection.execute(sa.select(balance_state)).one() == before
        assert connection.execute(sa.select(ledger_changes.c.seq)).scalars().all() == journal
        assert _balances(connection) == BASE_BALANCES
    with ledger.begin() as connection:
        refresh = incremental.refresh_balances(connection, NEXT_DAY)
        assert (refresh.mode, refresh.keys_recomputed) == ("incremental", 1)  # I1
        assert _balances(connection) == {**BASE_BALANCES, "I1": 60_000}
        assert incremental.compare_with_full(connection, NEXT_DAY).agree


def test_the_journal_triggers_exist_at_the_head_revision(engine):
    """Every later revision must leave the journal's triggers in place: Alembic's batch mode
    recreates a SQLite table without them, and a missing trigger journals nothing, silently.
    On PostgreSQL they fire for replicated rows too (ENABLE ALWAYS: ``tgenabled`` 'A')."""
    upgrade_database(engine)
    operations = ["insert", "update", "delete"]
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            operations.append("truncate")
            found = connection.execute(sa.text(
                "SELECT tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal"
                " AND tgrelid IN ('invoices'::regclass, 'payments'::regclass)"
            )).all()  # fmt: skip
            assert {enabled for _, enabled in found} == {"A"}
        else:
            found = connection.execute(sa.text(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
                " AND tbl_name IN ('invoices', 'payments')"
            )).all()  # fmt: skip
    expected = {f"ar_journal_{t}_{o}" for t in ("invoices", "payments") for o in operations}
    assert {name for name, _ in found} == expected
