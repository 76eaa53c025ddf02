"""Terse helpers to write small hand-built ledgers in tests. They write the rows as any writer
would and journal nothing themselves: the database's triggers journal every ledger write
(revision 0016)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from ar_pipeline.store.schema import customers, invoices, payments, proposed_actions

d = dt.date.fromisoformat


def add_customer(
    connection: sa.Connection,
    customer_id: str,
    name: str | None = None,
    paused_until: str | None = None,
    email: str | None = "ap@example.com",
) -> None:
    connection.execute(
        customers.insert().values(
            customer_id=customer_id,
            customer_name=name or customer_id,
            billing_email=email,
            dunning_paused_until=d(paused_until) if paused_until else None,
        )
    )


def add_invoice(
    connection: sa.Connection,
    invoice_id: str,
    customer_id: str,
    cents: int,
    issued: str,
    due: str,
    currency: str = "EUR",
    status: str = "issued",
    disputed: bool = False,
) -> None:
    connection.execute(
        invoices.insert().values(
            invoice_id=invoice_id,
            customer_id=customer_id,
            invoice_number=f"N-{invoice_id}",
            kind="invoice",
            status=status,
            issue_date=d(issued),
            due_date=d(due),
            currency=currency,
            amount_cents=cents,
            disputed=disputed,
        )
    )


def add_credit_note(
    connection: sa.Connection,
    credit_id: str,
    customer_id: str,
    cents: int,
    issued: str,
    applies_to: str | None = None,
    currency: str = "EUR",
    status: str = "issued",
) -> None:
    connection.execute(
        invoices.insert().values(
            invoice_id=credit_id,
            customer_id=customer_id,
            invoice_number=f"CN-{credit_id}",
            kind="credit_note",
            status=status,
            issue_date=d(issued),
            due_date=d(issued),
            currency=currency,
            amount_cents=cents,
            applies_to_invoice_id=applies_to,
        )
    )


def add_payment(
    connection: sa.Connection,
    payment_id: str,
    customer_id: str,
    cents: int,
    received: str,
    invoice_id: str | None = None,
    currency: str = "EUR",
) -> None:
    connection.execute(
        payments.insert().values(
            payment_id=payment_id,
            customer_id=customer_id,
            invoice_id=invoice_id,
            received_date=d(received),
            currency=currency,
            amount_cents=cents,
        )
    )


def add_applied_action(
    connection: sa.Connection, customer_id: str, tier: int, applied_at: dt.datetime, key: str
) -> None:
    connection.execute(
        proposed_actions.insert().values(
            idempotency_key=key,
            as_of=applied_at.date(),
            action_type="collection_action",
            customer_id=customer_id,
            tier=tier,
            status="applied",
            proposed_at=applied_at,
            applied_at=applied_at,
        )
    )


def build_reference_ledger(connection: sa.Connection) -> None:
    """The ledger whose aging as of 2026-03-31 is worked out by hand in test_aging.py."""
    add_customer(connection, "A", "Alpha GmbH")
    add_customer(connection, "B", "Beta Ltd")
    add_customer(connection, "C", "Gamma SA")
    # Alpha, EUR
    add_invoice(connection, "A1", "A", 100_000, "2026-01-10", "2026-02-09")
    add_payment(connection, "PA1", "A", 30_000, "2026-02-20", "A1")  # partial
    add_credit_note(connection, "CN-late", "A", 10_000, "2026-04-05", applies_to="A1")  # after
    add_invoice(connection, "A2", "A", 50_000, "2026-03-01", "2026-03-31")
    add_payment(connection, "PA2", "A", 50_000, "2026-04-02", "A2")  # after the as-of date
    add_invoice(connection, "A3", "A", 20_000, "2025-11-01", "2025-12-01")
    add_credit_note(connection, "CN-A3", "A", 5_000, "2026-01-15", applies_to="A3")
    add_invoice(connection, "A4", "A", 99_900, "2026-01-01", "2026-01-31", status="void")
    add_invoice(connection, "A5", "A", 77_700, "2026-03-20", "2026-04-19", status="draft")
    add_invoice(connection, "A6", "A", 40_000, "2026-01-20", "2026-02-19", disputed=True)
    add_credit_note(connection, "CN-loose", "A", 3_000, "2026-03-10")  # unapplied
    # Alpha, USD: paid, then the payment bounced
    add_invoice(connection, "A7", "A", 25_000, "2026-02-15", "2026-03-17", currency="USD")
    add_payment(connection, "PA7", "A", 25_000, "2026-03-20", "A7", currency="USD")
    add_payment(connection, "PA7R", "A", -25_000, "2026-03-25", "A7", currency="USD")
    # Beta: one invoice paid, one overpaid
    add_invoice(connection, "B1", "B", 10_000, "2026-02-01", "2026-03-03")
    add_payment(connection, "PB1", "B", 10_000, "2026-03-10", "B1")
    add_invoice(connection, "B2", "B", 8_000, "2026-03-01", "2026-03-15")
    add_payment(connection, "PB2", "B", 12_000, "2026-03-20", "B2")
    # Gamma: cash on account, and an invoice issued after the as-of date
    add_payment(connection, "PC1", "C", 6_000, "2026-03-05")
    add_invoice(connection, "C1", "C", 9_000, "2026-04-10", "2026-05-10")


def build_dunning_ledger(connection: sa.Connection) -> None:
    """Customers whose proposals as of 2026-03-31 are worked out in test_proposals.py."""
    add_customer(connection, "A", "Alpha GmbH", email="ap@alpha.example.com")
    connection.execute(
        customers.update()
        .where(customers.c.customer_id == "A")
        .values(sales_rep_email="rep@sales.example.com")
    )
    add_invoice(connection, "A1", "A", 80_000, "2025-12-21", "2026-01-20")  # 70 days
    add_applied_action(connection, "A", 2, dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC), "a-t2")
    add_customer(connection, "B", "Beta Ltd", email=None)
    add_invoice(connection, "B1", "B", 5_000, "2026-02-01", "2026-03-01")  # 30 days
    add_customer(connection, "H", "Heavy Industries", email="ap@heavy.example.com")
    add_invoice(connection, "H1", "H", 3_000_000, "2025-11-01", "2025-12-01")  # 120 days
    add_customer(connection, "D", "Delta on hold", email="ap@delta.example.com")
    add_invoice(connection, "D1", "D", 3_000_000, "2025-11-01", "2025-12-01")
    connection.execute(
        customers.update().where(customers.c.customer_id == "D").values(service_hold=True)
    )
