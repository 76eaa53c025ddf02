"""Benchmark of the Alga PSA source: how long the read-only copy of a tenant's ledger takes,
and how much memory it needs, for a large generated tenant (``ar-pipeline bench --alga``).

The tenant is generated in SQL on a scratch PostgreSQL database built from the package's Alga
DDL (``ar_pipeline.sources.alga_fixture``, Alga's real constraints), rows shaped the way Alga
writes them: one client per ten invoices, a fifth of them in USD, all finalized, 2 % voided
(cancelled), dates at midnight UTC; seven in ten paid (one of those in part) a few weeks after
the invoice date, one in fifty of those partly refunded (a negative ``refunded`` row); each
client holds one credit (``credit_tracking``) from which one invoice in twenty had 10.00
applied (``credit_allocations``). The copy and the aging then run in a fresh interpreter on a
second scratch database, so that the peak RSS is theirs alone.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from ar_pipeline.bench.scratch import AS_OF, ScratchDatabase, in_child, peak_rss_mb

TENANT = "33333333-3333-3333-3333-333333333333"

GENERATE = [
    """INSERT INTO clients (tenant, client_id, client_name, billing_email)
       SELECT CAST(:tenant AS uuid), md5('client' || g)::uuid, 'Client ' || g,
              'ap' || g || '@example.com'
       FROM generate_series(1, :clients) AS g""",
    """INSERT INTO invoices (tenant, invoice_id, client_id, invoice_number, invoice_date,
                             due_date, total_amount, subtotal, credit_applied, currency_code,
                             status, finalized_at, invoice_type)
       SELECT CAST(:tenant AS uuid), md5('invoice' || g)::uuid,
              md5('client' || (g % :clients + 1))::uuid, 'INV-' || g,
              timestamptz '2025-01-01 00:00+00' + (g % 450) * interval '1 day',
              timestamptz '2025-01-31 00:00+00' + (g % 450) * interval '1 day',
              1000 + (g::bigint * 7919) % 500000, 1000 + ((g::bigint * 7919) % 500000)::int,
              CASE WHEN g % 20 = 3 THEN 1000 ELSE NULL END,
              CASE WHEN g % 5 = 0 THEN 'USD' ELSE 'EUR' END,
              CASE WHEN g % 50 = 0 THEN 'cancelled' ELSE 'sent' END,
              timestamptz '2025-01-01 00:00+00' + (g % 450) * interval '1 day', 'standard'
       FROM generate_series(1, :invoices) AS g""",
    """INSERT INTO invoice_payments (tenant, payment_id, invoice_id, amount, payment_date,
                                     status)
       SELECT CAST(:tenant AS uuid), md5('payment' || g)::uuid, md5('invoice' || g)::uuid,
              CASE WHEN g % 10 = 6 THEN (1000 + (g::bigint * 7919) % 500000) / 2
                   ELSE 1000 + (g::bigint * 7919) % 500000 END
              - CASE WHEN g % 20 = 3 THEN 1000 ELSE 0 END,
              timestamptz '2025-01-20 00:00+00' + (g % 450 + g % 60) * interval '1 day',
              'completed'
       FROM generate_series(1, :invoices) AS g
       WHERE g % 10 < 7 AND g % 50 <> 0""",
    """INSERT INTO invoice_payments (tenant, payment_id, invoice_id, amount, payment_date,
                                     status)
       SELECT CAST(:tenant AS uuid), md5('refund' || g)::uuid, md5('invoice' || g)::uuid,
              -500, timestamptz '2025-03-01 00:00+00' + (g % 450 + g % 60) * interval '1 day',
              'refunded'
       FROM generate_series(1, :invoices) AS g
       WHERE g % 10 < 7 AND g % 50 = 1""",
    """INSERT INTO transactions (tenant, transaction_id, client_id, type, amount, currency_code,
                                 created_at)
       SELECT CAST(:tenant AS uuid), md5('issued' || g)::uuid, md5('client' || g)::uuid,
              'credit_issuance', 100000, CASE WHEN g % 5 = 0 THEN 'USD' ELSE 'EUR' END,
              timestamptz '2024-12-01 10:00+00'
       FROM generate_series(1, :clients) AS g""",
    """INSERT INTO credit_tracking (tenant, credit_id, client_id, transaction_id, amount,
                                    remaining_amount, created_at, updated_at, currency_code)
       SELECT CAST(:tenant AS uuid), md5('credit' || g)::uuid, md5('client' || g)::uuid,
              md5('issued' || g)::uuid, 100000, 100000, timestamptz '2024-12-01 10:00+00',
              timestamptz '2024-12-01 10:00+00', CASE WHEN g % 5 = 0 THEN 'USD' ELSE 'EUR' END
       FROM generate_series(1, :clients) AS g""",
    """INSERT INTO transactions (tenant, transaction_id, client_id, invoice_id, type, amount,
                                 currency_code, created_at)
       SELECT CAST(:tenant AS uuid), md5('applied' || g)::uuid,
              md5('client' || (g % :clients + 1))::uuid, md5('invoice' || g)::uuid,
              'credit_application', -1000, CASE WHEN g % 5 = 0 THEN 'USD' ELSE 'EUR' END,
              timestamptz '2025-01-01 10:00+00' + (g % 450) * interval '1 day'
       FROM generate_series(1, :invoices) AS g
       WHERE g % 20 = 3""",
    """INSERT INTO credit_allocations (tenant, allocation_id, transaction_id, invoice_id,
                                       amount, created_at)
       SELECT CAST(:tenant AS uuid), md5('allocation' || g)::uuid, md5('applied' || g)::uuid,
              md5('invoice' || g)::uuid, 1000,
              timestamptz '2025-01-01 10:00+00' + (g % 450) * interval '1 day'
       FROM generate_series(1, :invoices) AS g
       WHERE g % 20 = 3""",
    # the credit rows say what remains after those applications (Alga draws them down)
    """UPDATE credit_tracking AS t SET remaining_amount = t.amount - d.drawn
       FROM (SELECT i.client_id, upper(i.currency_code) AS currency, sum(a.amount) AS drawn
             FROM credit_allocations AS a JOIN invoices AS i ON i.invoice_id = a.invoice_id
             GROUP BY 1, 2) AS d
       WHERE t.client_id = d.client_id AND t.currency_code = d.currency""",
]


def generate_alga_tenant(url: str, invoices: int) -> dict[str, Any]:
    from ar_pipeline.sources.alga_fixture import create_alga_schema

    engine = sa.create_engine(url)
    started = time.perf_counter()
    create_alga_schema(engine)
    params = {"tenant": TENANT, "invoices": invoices, "clients": max(1, invoices // 10)}
    with engine.begin() as connection:
        for statement in GENERATE:
            connection.execute(sa.text(statement), params)
        connection.execute(sa.text("ANALYZE"))
    engine.dispose()
    return {"seconds": time.perf_counter() - started}


def step_alga_copy(alga_url: str, pipeline_url: str) -> dict[str, Any]:
    """Copy the tenant into a fresh pipeline database, then age it (in this process)."""
    from ar_pipeline.rules.aging import write_ar_aging
    from ar_pipeline.rules.views import upgrade_database
    from ar_pipeline.sources.alga_psa import alga_engine, sync_ledger
    from ar_pipeline.store.database import analyze, get_engine
    from ar_pipeline.store.schema import customers, invoices, ledger_changes, payments

    engine = get_engine(pipeline_url)
    upgrade_database(engine)
    started = time.perf_counter()
    counts = sync_ledger(alga_engine(alga_url), engine, TENANT, "Europe/Berlin")
    copied = time.perf_counter()
    analyze(engine, [customers, invoices, payments])
    with engine.begin() as connection:
        rows = write_ar_aging(connection, AS_OF)
    aged = time.perf_counter()
    # the next morning's copy, nothing changed in Alga: only differences are written
    journaled = sa.select(sa.func.count()).select_from(ledger_changes)
    with engine.connect() as connection:
        entries = connection.execute(journaled).scalar_one()
    sync_ledger(alga_engine(alga_url), engine, TENANT, "Europe/Berlin")
    recopied = time.perf_counter()
    with engine.connect() as connection:
        entries = connection.execute(journaled).scalar_one() - entries
    return {
        "copy_s": copied - started,
        "aging_s": aged - copied,
        "recopy_s": recopied - aged,
        "recopy_journaled": entries,
        "customers": counts.customers,
        "invoices": counts.invoices,
        "payments": counts.payments,
        "ar_aging_rows": rows,
        "peak_rss_mb": peak_rss_mb(),
    }


def measure_alga_copy(base_url: str, invoices: int) -> dict[str, Any]:
    if not base_url.startswith("postgresql"):
        raise SystemExit("--alga needs AR_DATABASE_URL on PostgreSQL (Alga PSA is PostgreSQL)")
    with (
        ScratchDatabase(base_url, "alga") as alga_url,
        ScratchDatabase(base_url, "pipe") as pipeline_url,
    ):
        generated = generate_alga_tenant(alga_url, invoices)
        result = in_child("alga_copy", alga_url, pipeline_url)
    rate = result["invoices"] + result["payments"]
    return {
        "invoices_generated": invoices,
        "generate_s": round(generated["seconds"], 2),
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()},
        "copied_rows_per_s": round(rate / result["copy_s"]),
    }
