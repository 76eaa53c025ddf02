"""The benchmark's naive baseline: the ``ar_aging`` rows of one date computed in pandas from the
ledger tables read whole, the way a one-off script would, following the rules of
docs/design.md (Aging) so that its output is the job's, column for column. The benchmark
compares the two and reports no time when they differ (a faster baseline that computes less is
no baseline).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ar_pipeline.rules.aging import AR_AGING_COLUMNS, BUCKET_COLUMNS, BUCKETS
from ar_pipeline.rules.ledger_sanity import AMOUNT_BOUND_CENTS
from ar_pipeline.store.schema import (
    ar_aging,
    customers,
    invoice_holds,
    invoices,
    payments,
    promise_invoices,
    promises_to_pay,
)


def naive_ar_aging(
    connection: sa.Connection, as_of: dt.date, threshold_days: int = 1
) -> pd.DataFrame:
    """The ``ar_aging`` rows of ``as_of``, computed in pandas."""
    bounded = lambda col: col.between(-AMOUNT_BOUND_CENTS, AMOUNT_BOUND_CENTS)  # noqa: E731
    docs = pd.read_sql(
        sa.select(
            invoices.c.invoice_id, invoices.c.customer_id, invoices.c.kind, invoices.c.due_date,
            invoices.c.currency, invoices.c.amount_cents, invoices.c.disputed,
            invoices.c.applies_to_invoice_id,
        ).where(
            invoices.c.status == "issued", invoices.c.issue_date <= as_of,
            bounded(invoices.c.amount_cents),
        ),
        connection,
    )  # fmt: skip
    paid = pd.read_sql(
        sa.select(
            payments.c.customer_id, payments.c.currency, payments.c.invoice_id.label("names"),
            payments.c.amount_cents,
        ).where(payments.c.received_date <= as_of, bounded(payments.c.amount_cents)),
        connection,
    )  # fmt: skip
    names = pd.read_sql(sa.select(customers.c.customer_id, customers.c.customer_name), connection)
    held_ids = _held_invoice_ids(connection, as_of)

    bills = docs[docs["kind"] == "invoice"].drop(columns=["kind", "applies_to_invoice_id"])
    credit_notes = docs[docs["kind"] == "credit_note"]
    settlements = pd.concat(
        [
            paid,
            credit_notes[["customer_id", "currency", "applies_to_invoice_id", "amount_cents"]]
            .rename(columns={"applies_to_invoice_id": "names"}),
        ],
        ignore_index=True,
    )  # fmt: skip
    # applied: names a counting invoice of the same customer and currency
    target = bills[["invoice_id", "customer_id", "currency"]].rename(
        columns={"invoice_id": "names", "customer_id": "t_customer", "currency": "t_currency"}
    )
    settlements = settlements.merge(target, on="names", how="left")
    applies = (settlements["t_customer"] == settlements["customer_id"]) & (
        settlements["t_currency"] == settlements["currency"]
    )
    applied = settlements[applies].groupby("names")["amount_cents"].sum()
    on_account = settlements[~applies].groupby(["customer_id", "currency"])["amount_cents"].sum()
    on_account = on_account[on_account != 0]

    bills = bills.assign(
        balance=bills["amount_cents"] - bills["invoice_id"].map(applied).fillna(0).astype("int64")
    )
    bills["balance"] = np.minimum(bills["balance"], bills["amount_cents"])
    bills = bills[bills["balance"] != 0]
    items = bills[bills["balance"] > 0].copy()
    overpaid = bills[bills["balance"] < 0]

    items["days"] = (pd.Timestamp(as_of) - pd.to_datetime(items["due_date"])).dt.days
    days, cents = items["days"], items["balance"]
    disputed = items["disputed"].astype(bool)
    held = items["invoice_id"].isin(held_ids)
    columns = {
        "total_open_cents": cents,
        "overdue_cents": cents.where(days > 0, 0),
        "disputed_cents": cents.where(disputed, 0),
        "held_cents": cents.where(held, 0),
        "undisputed_due": cents.where(~disputed & ~held & (days >= threshold_days), 0),
    }
    for name, low, high in BUCKETS:
        inside = (days >= low if low is not None else True) & (
            days <= high if high is not None else True
        )
        columns[BUCKET_COLUMNS[name]] = cents.where(inside, 0)
    columns["days_over_90_cents"] = cents.where(days > 90, 0)
    keys = ["customer_id", "currency"]
    per_item = items[keys].assign(**columns, overdue_days=days.where(days > 0, 0))
    grouped = per_item.groupby(keys)
    aged = grouped[list(columns)].sum()
    aged["max_days_overdue"] = grouped["overdue_days"].max()
    aged["open_item_count"] = grouped.size()
    oldest = items.sort_values(["due_date", "invoice_id"]).drop_duplicates(keys).set_index(keys)
    aged["oldest_overdue_invoice_id"] = oldest["invoice_id"].where(oldest["days"] > 0)

    credit = pd.concat(
        [
            on_account,
            (-overpaid["balance"]).groupby([overpaid["customer_id"], overpaid["currency"]]).sum(),
        ]
    )
    credit = credit.groupby(level=[0, 1]).sum().rename("unapplied_credit_cents")
    out = aged.join(credit, how="outer")
    has_items = out["open_item_count"].notna()
    money = [*columns]
    out[money] = out[money].fillna(0)
    out["open_item_count"] = out["open_item_count"].fillna(0)
    out["unapplied_credit_cents"] = out["unapplied_credit_cents"].fillna(0)
    out = out[has_items | (out["unapplied_credit_cents"] != 0)]
    out["net_balance_cents"] = out["total_open_cents"] - out["unapplied_credit_cents"]
    out["dunnable_cents"] = (out["undisputed_due"] - out["unapplied_credit_cents"]).clip(lower=0)
    out = out.reset_index().merge(names, on="customer_id")
    out["as_of"] = as_of
    return out[AR_AGING_COLUMNS]


def _held_invoice_ids(connection: sa.Connection, as_of: dt.date) -> set[str]:
    """Invoices held on ``as_of``: a hold in force, or covered by a promise open that day."""
    h = pd.read_sql(sa.select(invoice_holds), connection)
    day = pd.Timestamp(as_of)

    def on_or_before(column: pd.Series) -> pd.Series:
        return pd.to_datetime(column) <= day

    in_force = (
        on_or_before(h["held_from"]) & on_or_before(h["recorded_on"])
        & (pd.to_datetime(h["held_until"]) >= day)
        & (h["released_on"].isna() | (pd.to_datetime(h["released_on"]) > day))
    )  # fmt: skip
    p = pd.read_sql(sa.select(promises_to_pay), connection)
    is_open = (
        on_or_before(p["recorded_on"]) & (pd.to_datetime(p["promised_date"]) >= day)
        & (p["cancelled_on"].isna() | (pd.to_datetime(p["cancelled_on"]) > day))
    )  # fmt: skip
    covered = pd.read_sql(sa.select(promise_invoices), connection)
    promised = covered[covered["promise_id"].isin(p.loc[is_open, "promise_id"])]
    return set(h.loc[in_force, "invoice_id"]) | set(promised["invoice_id"])


def job_ar_aging(connection: sa.Connection, as_of: dt.date) -> pd.DataFrame:
    return pd.read_sql(sa.select(ar_aging).where(ar_aging.c.as_of == as_of), connection)


def differences(naive: pd.DataFrame, job: pd.DataFrame) -> list[str]:
    """What differs between the two outputs (empty: the same rows)."""
    keys = ["customer_id", "currency"]
    a = naive.sort_values(keys).reset_index(drop=True)
    b = job.sort_values(keys).reset_index(drop=True)
    if len(a) != len(b):
        return [f"{len(a)} rows in pandas, {len(b)} in the job"]
    found = []
    for column in AR_AGING_COLUMNS:
        left, right = a[column], b[column]
        if column == "as_of":
            left, right = pd.to_datetime(left), pd.to_datetime(right)
        elif column in ("customer_id", "customer_name", "currency", "oldest_overdue_invoice_id"):
            left, right = (
                left.astype(object).where(left.notna()),
                right.astype(object).where(right.notna()),
            )
        else:
            left, right = left.astype("float64"), right.astype("float64")
        same = (left == right) | (left.isna() & right.isna())
        if not same.all():
            at = int((~same).idxmax())
            found.append(f"{column}: {a.loc[at, keys].tolist()} pandas {left[at]} job {right[at]}")
    return found
