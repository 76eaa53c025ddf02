"""The demo ledger: deterministic from its seed, and it holds every case the pipeline handles."""

import datetime as dt

import sqlalchemy as sa

from ar_pipeline.rules.views import upgrade_database
from ar_pipeline.sources.ledger_generator import generate_ledger
from ar_pipeline.store.database import get_engine

END = dt.date(2026, 3, 31)
SYNCED = dt.datetime(2026, 3, 31, 5, 0, tzinfo=dt.UTC)

FINGERPRINT_SQL = {
    "invoices": "SELECT kind, status, currency, disputed, COUNT(*), SUM(amount_cents), "
    "MIN(issue_date), MAX(due_date) FROM invoices GROUP BY kind, status, currency, disputed "
    "ORDER BY kind, status, currency, disputed",
    "payments": "SELECT currency, invoice_id IS NULL, amount_cents < 0, COUNT(*), "
    "SUM(amount_cents) FROM payments GROUP BY currency, invoice_id IS NULL, amount_cents < 0 "
    "ORDER BY 1, 2, 3",
    "customers": "SELECT COUNT(*), COUNT(billing_email), COUNT(sales_rep_email), "
    "COUNT(dunning_paused_until) FROM customers",
}


def _seed(engine, customers=400):
    with engine.begin() as connection:
        return generate_ledger(
            connection, customer_count=customers, months=12, seed=7, end_date=END,
            synced_until=SYNCED, chunk_customers=150,
        )  # fmt: skip


def _fingerprint(engine):
    with engine.connect() as connection:
        return {
            # booleans come back as 0/1 from SQLite and as bool from PostgreSQL
            name: [
                tuple(str(int(v) if isinstance(v, bool) else v) for v in row)
                for row in connection.execute(sa.text(sql))
            ]
            for name, sql in FINGERPRINT_SQL.items()
        }


def test_same_seed_same_ledger_on_any_database(engine, tmp_path):
    summary = _seed(engine)
    reference = get_engine(f"sqlite:///{tmp_path / 'reference.sqlite3'}")
    upgrade_database(reference)
    assert _seed(reference) == summary
    assert _fingerprint(engine) == _fingerprint(reference)


def test_ledger_covers_every_case(engine):
    summary = _seed(engine)
    assert summary.customers == 400
    with engine.connect() as connection:

        def scalar(sql):
            return connection.execute(sa.text(sql)).scalar_one()

        assert scalar("SELECT COUNT(*) FROM invoices WHERE status = 'void'") > 0
        assert scalar("SELECT COUNT(*) FROM invoices WHERE status = 'draft'") > 0
        assert scalar("SELECT COUNT(*) FROM invoices WHERE disputed") > 0
        assert (
            scalar(
                "SELECT COUNT(*) FROM invoices WHERE kind = 'credit_note' "
                "AND applies_to_invoice_id IS NOT NULL"
            )
            > 0
        )
        assert (
            scalar(
                "SELECT COUNT(*) FROM invoices WHERE kind = 'credit_note' "
                "AND applies_to_invoice_id IS NULL"
            )
            > 0
        )
        assert scalar("SELECT COUNT(DISTINCT currency) FROM invoices") == 2
        assert scalar("SELECT COUNT(*) FROM payments WHERE invoice_id IS NULL") > 0
        assert scalar("SELECT COUNT(*) FROM payments WHERE amount_cents < 0") > 0
        # partial payments: an invoice with more than one positive payment
        assert (
            scalar(
                "SELECT COUNT(*) FROM (SELECT invoice_id FROM payments WHERE amount_cents > 0 "
                "AND invoice_id IS NOT NULL GROUP BY invoice_id HAVING COUNT(*) > 1) AS t"
            )
            > 0
        )
        assert scalar("SELECT COUNT(*) FROM customers WHERE dunning_paused_until IS NOT NULL") > 0
        assert scalar("SELECT COUNT(*) FROM customers WHERE billing_email IS NULL") > 0
        assert (
            scalar(
                "SELECT COUNT(*) FROM sync_log WHERE sync_type = 'scheduled_hot_customer_payments'"
            )
            == 72
        )
        # nothing is received after the ledger's last day
        assert str(scalar("SELECT MAX(received_date) FROM payments")) <= "2026-03-31"
        # a few large accounts far overdue: unpaid invoices of 10,000.00 or more issued
        # before 2025-12-31 (over 90 days before the end)
        assert (
            scalar(
                "SELECT COUNT(*) FROM invoices i WHERE i.kind = 'invoice' AND i.status = 'issued' "
                "AND i.amount_cents >= 1000000 AND i.due_date < '2025-12-31' AND NOT EXISTS "
                "(SELECT 1 FROM payments p WHERE p.invoice_id = i.invoice_id)"
            )
            > 0
        )
