"""The ledger's change journal (``ledger_changes``): its writers' side.

Every write to ``invoices`` or ``payments`` is journaled in the same transaction by its
settlement keys (a changed row's old and new keys). The database does it itself (revision
0016: statement-level triggers on PostgreSQL, row-level ones on SQLite), so a writer outside
the package, a hand-made correction or a replicated row cannot skip it. A writer may add what
the triggers cannot know: :func:`record_ledger_changes` journals customers whole (a writer
that replaces a customer's rows) or "anything" (a bulk load: the next run recomputes
everything, and the triggers add nothing more in that transaction); :func:`record_settlement_keys`
journals keys explicitly (redundant with the triggers; kept for writers of a database that has
not been upgraded). The journal's ``seq`` gives the order rows arrived in, whatever their
business dates; the incremental balances (``ar_pipeline.rules.incremental``) recompute exactly
the keys journaled since their last run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from ar_pipeline.store.schema import ledger_changes

# PostgreSQL advisory lock of the journal: writers hold it shared until they commit, the refresh
# of the incremental balances exclusively. Without it a writer that took sequence number 100
# and committed after another writer's 101 had been read as the journal's head would be skipped
# for good (sequence numbers are handed out before commit, in no commit order).
JOURNAL_LOCK = 160_001
# PostgreSQL setting, local to a transaction that journaled "anything": the triggers skip it
JOURNALED_ALL = "ar_pipeline.journaled_all"


def hold_journal_lock(connection: Connection, exclusive: bool) -> None:
    """Take the journal's lock until the end of the transaction (PostgreSQL; SQLite has one
    writer at a time anyway)."""
    if connection.dialect.name == "postgresql":
        lock = sa.func.pg_advisory_xact_lock if exclusive else sa.func.pg_advisory_xact_lock_shared
        connection.execute(sa.select(lock(JOURNAL_LOCK)))


def record_ledger_changes(
    connection: Connection, customer_ids: Sequence[str] | Select | None
) -> None:
    """Journal a write to ``invoices`` or ``payments`` by customer, in the writer's
    transaction: one entry per customer whose rows were inserted, changed or deleted (a SELECT
    of one column of ids, or a list; each stands for every settlement key of the customer's
    rows), or ``None`` for "anything" (a bulk load: the next run recomputes everything). For a
    writer that replaces customers' rows wholesale. Journal "anything" before the bulk write:
    the database's triggers then leave its rows alone instead of journaling each one."""
    hold_journal_lock(connection, exclusive=False)
    now = dt.datetime.now(dt.UTC)
    if customer_ids is None:
        connection.execute(
            ledger_changes.insert().values(customer_id=None, scope="all", recorded_at=now)
        )
        if connection.dialect.name == "postgresql":
            # the journaling triggers add nothing more in this transaction (SQLite's see the
            # pending entry for "anything" themselves)
            connection.execute(sa.select(sa.func.set_config(JOURNALED_ALL, "on", True)))
        return
    if isinstance(customer_ids, Select):
        ids = customer_ids.subquery("changed")
        column = next(iter(ids.c))
        connection.execute(
            ledger_changes.insert().from_select(
                ["customer_id", "scope", "recorded_at"],
                sa.select(
                    column,
                    sa.literal("customer"),
                    sa.literal(now, ledger_changes.c.recorded_at.type),
                ).distinct(),
            )
        )
        return
    unique = sorted(set(customer_ids))
    if unique:
        connection.execute(
            ledger_changes.insert(),
            [{"customer_id": c, "scope": "customer", "recorded_at": now} for c in unique],
        )


def record_settlement_keys(
    connection: Connection, keys: Iterable[tuple[str, str | None]] | Select
) -> None:
    """Journal a write to ``invoices`` or ``payments`` by the settlement keys of its rows
    (:mod:`ar_pipeline.rules.settlement_keys`), in the writer's transaction (the database's
    triggers do the same since revision 0016; this stays for explicit writers): pairs
    (customer_id, invoice_id), where invoice_id is the invoice the key is of and None means the
    customer's rows that name no invoice. A payment's key is the invoice it names; an
    ``invoices`` row has its own id as key and, a credit note, the key of what it applies to.
    A changed row is journaled with its keys before and after the change, a deleted row with
    its keys. ``keys`` may be a SELECT of the two columns, for a set-based writer."""
    hold_journal_lock(connection, exclusive=False)
    now = dt.datetime.now(dt.UTC)
    if isinstance(keys, Select):
        pairs = keys.subquery("changed_keys")
        customer_id, invoice_id = list(pairs.c)[:2]
        scope = sa.case((invoice_id.is_(None), "account"), else_="invoice")
        connection.execute(
            ledger_changes.insert().from_select(
                ["customer_id", "invoice_id", "scope", "recorded_at"],
                sa.select(
                    customer_id,
                    invoice_id,
                    scope,
                    sa.literal(now, ledger_changes.c.recorded_at.type),
                ).distinct(),
            )
        )
        return
    rows = [
        {"customer_id": c, "invoice_id": i, "recorded_at": now,
         "scope": "account" if i is None else "invoice"}
        for c, i in sorted(set(keys), key=lambda k: (k[0], k[1] or ""))
    ]  # fmt: skip
    if rows:
        connection.execute(ledger_changes.insert(), rows)
