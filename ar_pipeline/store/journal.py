"""The ledger's change journal (``ledger_changes``): its writers' side.

Every write to ``invoices`` or ``payments`` records, in the same transaction, the customers
whose rows it inserted, changed or deleted. The journal's ``seq`` gives the order rows arrived
in, whatever their business dates; the incremental balances (``ar_pipeline.rules.incremental``)
recompute exactly the customers journaled since their last run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from ar_pipeline.store.schema import ledger_changes

# PostgreSQL advisory lock of the journal: writers hold it shared until they commit, the refresh
# of the incremental balances exclusively. Without it a writer that took sequence number 100
# and committed after another writer's 101 had been read as the journal's head would be skipped
# for good (sequence numbers are handed out before commit, in no commit order).
JOURNAL_LOCK = 160_001


def hold_journal_lock(connection: Connection, exclusive: bool) -> None:
    """Take the journal's lock until the end of the transaction (PostgreSQL; SQLite has one
    writer at a time anyway)."""
    if connection.dialect.name == "postgresql":
        lock = sa.func.pg_advisory_xact_lock if exclusive else sa.func.pg_advisory_xact_lock_shared
        connection.execute(sa.select(lock(JOURNAL_LOCK)))


def record_ledger_changes(
    connection: Connection, customer_ids: Sequence[str] | Select | None
) -> None:
    """Journal a write to ``invoices`` or ``payments``, in the writer's transaction: one entry
    per customer whose rows were inserted, changed or deleted (a SELECT of one column of ids, or
    a list), or ``None`` for "any customer" (a bulk load: the next run recomputes everything).
    Every writer of the ledger calls this; a write without it is invisible to the incremental
    balances until a full recomputation."""
    hold_journal_lock(connection, exclusive=False)
    now = dt.datetime.now(dt.UTC)
    if customer_ids is None:
        connection.execute(ledger_changes.insert().values(customer_id=None, recorded_at=now))
        return
    if isinstance(customer_ids, Select):
        ids = customer_ids.subquery("changed")
        column = next(iter(ids.c))
        connection.execute(
            ledger_changes.insert().from_select(
                ["customer_id", "recorded_at"],
                sa.select(column, sa.literal(now, ledger_changes.c.recorded_at.type)).distinct(),
            )
        )
        return
    unique = sorted(set(customer_ids))
    if unique:
        connection.execute(
            ledger_changes.insert(), [{"customer_id": c, "recorded_at": now} for c in unique]
        )
