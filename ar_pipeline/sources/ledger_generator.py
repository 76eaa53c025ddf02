"""A deterministic demo ledger, generated in bulk.

Given the same seed, size and end date it writes the same ledger. Customers get a payment
behaviour (prompt, late, chronically late, partial payer, or one of a few large accounts far
overdue); the ledger also holds credit notes (applied and unapplied), voids, drafts, disputed
invoices, payment reversals, cash on account, two currencies (EUR and USD), customers on dunning
pause and the hourly ``scheduled_hot_customer_payments`` syncs that the freshness check reads.

Rows are generated with NumPy a chunk of customers at a time and written with one bulk insert
per table and chunk (COPY on PostgreSQL), all in a single transaction: a failed seed leaves
nothing behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from ar_pipeline.store.database import bulk_insert
from ar_pipeline.store.journal import record_ledger_changes
from ar_pipeline.store.schema import customers, invoices, payments, sync_log

HOT_SYNC_TYPE = "scheduled_hot_customer_payments"
PROFILES = np.array(["prompt", "late", "chronic", "partial", "large_overdue"])
PROFILE_WEIGHTS = [0.50, 0.30, 0.11, 0.08, 0.01]
_PREFIXES = [
    "Northwind", "Contoso", "Fabrikam", "Tailspin", "Adatum", "Litware", "Proseware", "Woodgrove",
    "Alpine", "Blue Yonder", "Coho", "Fourth Coffee", "Humongous", "Lucerne", "Margie's",
    "Nod", "Relecloud", "Trey", "Wide World", "Wingtip", "Graphic", "Southridge", "Lamna",
]  # fmt: skip
_SUFFIXES = [
    "Logistics", "Foods", "Systems", "Traders", "Consulting", "Pharma", "Media", "Energy",
    "Studios", "Holdings", "Engineering", "Retail", "Labs", "Partners", "Outfitters",
]  # fmt: skip
_LEGAL = ["GmbH", "Ltd", "Inc", "SA", "BV", "AG", "LLC", "Oy"]
_SALES_REPS = [f"{name}@sales.example.com" for name in ("anna", "ben", "chloe", "dev", "eva")]


@dataclass(frozen=True)
class SeedSummary:
    customers: int
    invoices: int
    credit_notes: int
    payments: int
    syncs: int


def _dates(base: dt.date, offsets: np.ndarray) -> list[dt.date]:
    days = np.datetime64(base, "D") + offsets.astype("timedelta64[D]")
    return days.astype(object).tolist()


def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(size, total - start)


def generate_ledger(
    connection: sa.Connection,
    *,
    customer_count: int = 500,
    months: int = 18,
    seed: int = 42,
    end_date: dt.date,
    synced_until: dt.datetime,
    chunk_customers: int = 20_000,
) -> SeedSummary:
    """Write a demo ledger ending on ``end_date`` into an empty database, inside the caller's
    transaction. The last hot-customer sync completes 20 minutes before ``synced_until``."""
    if customer_count < 1 or months < 1:
        raise ValueError("customers and months must be at least 1")
    rng = np.random.default_rng(seed)
    start_date = end_date - dt.timedelta(days=int(months * 30.44))
    span_days = (end_date - start_date).days
    totals = dict(customers=0, invoices=0, credit_notes=0, payments=0)
    invoice_seq = payment_seq = 0
    # a bulk load: the next run recomputes everything. Journaled first, so that the database's
    # journaling triggers leave the rows below alone.
    record_ledger_changes(connection, None)

    for first, count in _chunks(customer_count, chunk_customers):
        numbers = np.arange(first + 1, first + count + 1)
        profile = rng.choice(len(PROFILES), size=count, p=PROFILE_WEIGHTS)
        primary_usd = rng.random(count) < 0.25
        has_second_currency = rng.random(count) < 0.08
        terms = rng.choice([14, 30, 45], size=count, p=[0.3, 0.5, 0.2])
        cadence = rng.choice([1.0, 0.5, 1 / 3], size=count, p=[0.4, 0.35, 0.25])

        # customers
        ids = [f"C{n:07d}" for n in numbers.tolist()]
        prefix = rng.integers(0, len(_PREFIXES), count).tolist()
        suffix = rng.integers(0, len(_SUFFIXES), count).tolist()
        legal = rng.integers(0, len(_LEGAL), count).tolist()
        names = [
            f"{_PREFIXES[p]} {_SUFFIXES[s]} {_LEGAL[lg]} {n}"
            for p, s, lg, n in zip(prefix, suffix, legal, numbers.tolist(), strict=True)
        ]
        no_email = rng.random(count) < 0.04
        emails = [
            None if missing else f"ap@customer{n}.example.com"
            for missing, n in zip(no_email.tolist(), numbers.tolist(), strict=True)
        ]
        rep_index = rng.integers(0, len(_SALES_REPS), count)
        no_rep = rng.random(count) < 0.10
        reps = [
            None if missing else _SALES_REPS[i]
            for missing, i in zip(no_rep.tolist(), rep_index.tolist(), strict=True)
        ]
        paused = rng.random(count) < 0.03
        pause_offsets = rng.integers(-10, 45, count)
        paused_until = [
            end_date + dt.timedelta(days=o) if p else None
            for p, o in zip(paused.tolist(), pause_offsets.tolist(), strict=True)
        ]
        created_at = dt.datetime.combine(start_date, dt.time(9), dt.UTC)
        bulk_insert(
            connection,
            customers,
            ["customer_id", "customer_name", "billing_email", "sales_rep_email",
             "dunning_paused_until", "service_hold", "created_at"],
            zip(ids, names, emails, reps, paused_until, [False] * count, [created_at] * count,
                strict=True),
        )  # fmt: skip

        # invoices
        per_customer = rng.poisson(months * cadence)
        per_customer = np.maximum(per_customer, 1)
        owner = np.repeat(np.arange(count), per_customer)
        n_inv = len(owner)
        issue_offset = rng.integers(0, span_days + 1, n_inv)
        order = np.lexsort((issue_offset, owner))
        owner, issue_offset = owner[order], issue_offset[order]
        due_offset = issue_offset + terms[owner]
        inv_profile = profile[owner]
        amount = np.maximum(5_000, np.round(rng.lognormal(np.log(120_000), 0.9, n_inv))).astype(
            np.int64
        )
        amount = np.where(inv_profile == 4, amount * 10, amount)
        second = has_second_currency[owner] & (rng.random(n_inv) < 0.2)
        usd = primary_usd[owner] ^ second
        currency = np.where(usd, "USD", "EUR")
        roll = rng.random(n_inv)
        recent = issue_offset > span_days - 5
        status = np.where(recent & (roll < 0.5), "draft", np.where(roll > 0.98, "void", "issued"))
        issued = status == "issued"
        # disputes get settled within half a year: only recent invoices are still disputed
        disputed = issued & (issue_offset > span_days - 180) & (rng.random(n_inv) < 0.03)
        invoice_ids = [f"I{invoice_seq + k + 1:08d}" for k in range(n_inv)]
        invoice_numbers = [f"INV-{invoice_seq + k + 1:07d}" for k in range(n_inv)]
        invoice_seq += n_inv

        # credit notes: 3% of issued invoices get one applied to them, some customers an
        # unapplied one
        credited = issued & (rng.random(n_inv) < 0.03)
        credit_share = rng.uniform(0.1, 1.0, n_inv)
        credit_amount = np.maximum(100, (amount * credit_share).astype(np.int64))
        credit_amount = np.where(credited, np.minimum(credit_amount, amount), 0)
        credit_offset = issue_offset + rng.integers(3, 40, n_inv)
        credit_exists = credited & (credit_offset <= span_days)
        credit_amount = np.where(credit_exists, credit_amount, 0)
        cn_index = np.flatnonzero(credit_exists)
        loose_owner = np.flatnonzero(rng.random(count) < 0.01)
        n_cn = len(cn_index) + len(loose_owner)
        cn_ids = [f"CN{invoice_seq + k + 1:08d}" for k in range(n_cn)]
        cn_numbers = [f"CRN-{invoice_seq + k + 1:07d}" for k in range(n_cn)]
        invoice_seq += n_cn
        loose_offset = rng.integers(0, span_days + 1, len(loose_owner))
        loose_amount = rng.integers(2_000, 50_000, len(loose_owner))
        loose_currency = np.where(primary_usd[loose_owner], "USD", "EUR")

        inv_columns = ["invoice_id", "customer_id", "invoice_number", "kind", "status",
                       "issue_date", "due_date", "currency", "amount_cents", "disputed",
                       "applies_to_invoice_id"]  # fmt: skip
        customer_of = np.array(ids, dtype=object)
        bulk_insert(
            connection,
            invoices,
            inv_columns,
            zip(invoice_ids, customer_of[owner].tolist(), invoice_numbers, ["invoice"] * n_inv,
                status.tolist(), _dates(start_date, issue_offset), _dates(start_date, due_offset),
                currency.tolist(), amount.tolist(), disputed.tolist(), [None] * n_inv,
                strict=True),
        )  # fmt: skip
        cn_owner = np.concatenate([owner[cn_index], loose_owner]).astype(np.int64)
        cn_offsets = np.concatenate([credit_offset[cn_index], loose_offset])
        bulk_insert(
            connection,
            invoices,
            inv_columns,
            zip(cn_ids, customer_of[cn_owner].tolist(), cn_numbers, ["credit_note"] * n_cn,
                ["issued"] * n_cn, _dates(start_date, cn_offsets),
                _dates(start_date, cn_offsets),
                np.concatenate([currency[cn_index], loose_currency]).tolist(),
                np.concatenate([credit_amount[cn_index], loose_amount]).tolist(),
                [False] * n_cn,
                [invoice_ids[i] for i in cn_index.tolist()] + [None] * len(loose_owner),
                strict=True),
        )  # fmt: skip

        # payments: delay after the due date by behaviour; nothing received after end_date
        delay = np.select(
            [inv_profile == 0, inv_profile == 1, inv_profile == 2, inv_profile == 3],
            [
                rng.normal(-3, 4, n_inv),
                5 + rng.exponential(15, n_inv),
                30 + rng.exponential(60, n_inv),
                5 + rng.exponential(20, n_inv),
            ],
            default=45 + rng.exponential(120, n_inv),
        ).astype(np.int64)
        # chronic payers leave some invoices unpaid; the large accounts stopped paying in the
        # last half year or so
        never = (
            ((inv_profile == 2) & (rng.random(n_inv) < 0.12))
            | ((inv_profile == 4) & (issue_offset > span_days - 200) & (rng.random(n_inv) < 0.7))
            | disputed
        )
        payable = amount - credit_amount
        paid_offset = due_offset + delay
        pays = issued & ~never & (payable > 0) & (paid_offset <= span_days)
        partial = pays & (inv_profile == 3)
        first_share = np.where(partial, rng.uniform(0.4, 0.8, n_inv), 1.0)
        first_amount = np.maximum(1, (payable * first_share).astype(np.int64))
        rest_offset = paid_offset + rng.integers(30, 61, n_inv)
        pays_rest = partial & (rng.random(n_inv) < 0.5) & (rest_offset <= span_days)
        bounced = pays & ~partial & (rng.random(n_inv) < 0.005)
        bounce_offset = paid_offset + 3
        repay_offset = paid_offset + 10
        bounced &= bounce_offset <= span_days
        repaid = bounced & (repay_offset <= span_days)
        on_account_owner = np.flatnonzero(rng.random(count) < 0.01)
        on_account_offset = rng.integers(0, span_days + 1, len(on_account_owner))
        on_account_amount = rng.integers(1_000, 30_000, len(on_account_owner))

        parts = [  # (invoice index, offset, amount)
            (np.flatnonzero(pays), paid_offset[pays], first_amount[pays]),
            (np.flatnonzero(pays_rest), rest_offset[pays_rest],
             (payable - first_amount)[pays_rest]),
            (np.flatnonzero(bounced), bounce_offset[bounced], -first_amount[bounced]),
            (np.flatnonzero(repaid), repay_offset[repaid], first_amount[repaid]),
        ]  # fmt: skip
        pay_invoice = np.concatenate([p[0] for p in parts])
        pay_offset = np.concatenate([p[1] for p in parts] + [on_account_offset])
        pay_amount = np.concatenate([p[2] for p in parts] + [on_account_amount])
        pay_customer = np.concatenate([owner[pay_invoice], on_account_owner]).astype(np.int64)
        pay_currency = np.concatenate(
            [currency[pay_invoice], np.where(primary_usd[on_account_owner], "USD", "EUR")]
        )
        pay_invoice_ids = [invoice_ids[i] for i in pay_invoice.tolist()] + [None] * len(
            on_account_owner
        )
        n_pay = len(pay_amount)
        payment_ids = [f"P{payment_seq + k + 1:09d}" for k in range(n_pay)]
        payment_seq += n_pay
        bulk_insert(
            connection,
            payments,
            ["payment_id", "customer_id", "invoice_id", "received_date", "currency",
             "amount_cents"],
            zip(payment_ids, customer_of[pay_customer].tolist(), pay_invoice_ids,
                _dates(start_date, pay_offset), pay_currency.tolist(), pay_amount.tolist(),
                strict=True),
        )  # fmt: skip

        totals["customers"] += count
        totals["invoices"] += n_inv
        totals["credit_notes"] += n_cn
        totals["payments"] += n_pay

    syncs = _write_sync_log(connection, rng, synced_until)
    return SeedSummary(syncs=syncs, **totals)


def _write_sync_log(
    connection: sa.Connection, rng: np.random.Generator, synced_until: dt.datetime
) -> int:
    """Hourly hot-customer payment syncs over the three days before ``synced_until``."""
    last_start = synced_until - dt.timedelta(minutes=22)
    starts = [last_start - dt.timedelta(hours=h) for h in range(72)][::-1]
    failed = (rng.random(len(starts)) < 0.03).tolist()
    failed[-1] = False
    rows = [
        (HOT_SYNC_TYPE, start, start + dt.timedelta(minutes=2), "failed" if bad else "ok",
         0 if bad else int(n))
        for start, bad, n in zip(starts, failed, rng.integers(0, 400, len(starts)), strict=True)
    ]  # fmt: skip
    bulk_insert(
        connection,
        sync_log,
        ["sync_type", "started_at", "completed_at", "status", "rows_synced"],
        rows,
    )
    return len(rows)


def ledger_is_empty(connection: sa.Connection) -> bool:
    return connection.execute(sa.select(sa.func.count()).select_from(customers)).scalar_one() == 0
