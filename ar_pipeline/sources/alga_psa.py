"""Alga PSA as a source: its tenant's clients, invoices and settlements mapped onto the ledger
contract by the SQL in ``sql/alga_psa/``, read-only.

Why a mirror: the pipeline's tables live in the pipeline's own database (SQLite or PostgreSQL),
never in Alga's, and a SQL statement cannot join across two databases. So each run first copies
the *mapped* ledger of one tenant into the pipeline's ``customers``, ``invoices`` and
``payments`` tables (:func:`sync_ledger`), and every rule downstream (aging, trend backfill,
tiering, the apply job's re-check) works on it unchanged. Nothing else is copied; the mapping
itself is the SQL files, which an analyst can also run on Alga directly.

The copy is consistent and safe:

* the three queries run in one ``REPEATABLE READ, READ ONLY`` transaction on Alga, so they see
  one snapshot, and every session on the Alga engine is read-only besides
  (``default_transaction_read_only``): the adapter cannot write to Alga even by mistake;
* rows stream in chunks (server-side cursor) into one pipeline transaction that upserts the
  customers and brings the invoices and payments up to date: a failure leaves the previous
  mirror whole;
* only what changed is written (:func:`_write_differences`): the copy is streamed into a
  temporary table and compared with the mirror; changed rows are updated in place, new ones
  inserted, and rows gone from Alga deleted (an invoice that a hold or promise of the
  pipeline names is kept as ``void`` instead), so the database's journal names just those
  settlement keys and the next morning's incremental balances refresh just those. The
  tenant's first copy goes straight into the empty tables, journaled as a bulk load;
* customers keep what belongs to the pipeline (``dunning_paused_until``, the service hold);
  a client deleted in Alga stays as a customer with nothing open;
* the sync is logged in ``sync_log`` as ``scheduled_hot_customer_payments``, the sync that the
  ``aging_data_fresh`` check watches: with this source, the age of the data is the age of the
  last copy.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ar_pipeline.settings import PROJECT_ROOT
from ar_pipeline.sources.ledger_generator import HOT_SYNC_TYPE
from ar_pipeline.store.database import bulk_insert, create_afresh, temporary_table
from ar_pipeline.store.journal import record_ledger_changes
from ar_pipeline.store.schema import ar_aging, customers, invoices, payments, sync_log

SQL_DIR = PROJECT_ROOT / "sql" / "alga_psa"
CHUNK_ROWS = 10_000
RECHECK_SYNC_TYPE = "alga_psa_apply_recheck"


class AlgaSourceError(RuntimeError):
    """The Alga database cannot be read as the mapping expects; the message says what."""


def load_sql(name: str, *ctes: str) -> sa.TextClause:
    """One of the queries in ``sql/alga_psa/`` (bound parameters only), with the queries named
    in ``ctes`` (files of the same folder) put in front as common table expressions."""
    query = (SQL_DIR / f"{name}.sql").read_text()
    if ctes:
        parts = [f"{cte} AS (\n{(SQL_DIR / f'{cte}.sql').read_text()}\n)" for cte in ctes]
        query = "WITH " + ",\n".join(parts) + "\n" + query
    return sa.text(query)


@functools.cache
def alga_engine(url: str) -> Engine:
    """An engine whose every session is read-only: Alga is never written to."""
    engine = sa.create_engine(url, pool_pre_ping=True)

    @sa.event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET default_transaction_read_only = on")
        # every query is read to its end through a server-side cursor: plan for all the
        # rows, not for the first tenth (PostgreSQL's default for cursors), which picks
        # nested loops that re-run the recipient lookup per client
        cursor.execute("SET cursor_tuple_fraction = 1.0")
        cursor.close()
        dbapi_connection.commit()

    return engine


def snapshot(engine: Engine) -> Connection:
    """A connection to Alga in one read-only, repeatable-read transaction (one snapshot)."""
    return engine.connect().execution_options(
        isolation_level="REPEATABLE READ", postgresql_readonly=True
    )


def stream(
    connection: Connection, query: sa.TextClause, params: dict[str, Any]
) -> Iterator[tuple[list[str], list[tuple]]]:
    """The rows of ``query`` in chunks of ``CHUNK_ROWS`` through a server-side cursor, so that
    memory does not grow with the number of rows; each chunk comes with the query's column
    names, which name the columns of the table it goes into."""
    result = connection.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(
        query, params
    )
    columns = list(result.keys())
    for chunk in result.partitions(CHUNK_ROWS):  # without a size it returns everything at once
        yield columns, [tuple(row) for row in chunk]


@dataclass(frozen=True)
class UnmappedRow:
    """A row of Alga that the mapping cannot take: skipped, and named by the check
    ``alga_rows_mapped``."""

    alga_table: str
    row_id: str
    label: str | None
    reason: str

    def describe(self) -> str:
        label = f" {self.label}" if self.label else ""
        return f"{self.alga_table}{label} ({self.row_id}): {self.reason}"


UNMAPPED_KEPT = 1000  # rows kept for the check's listing; all of them are counted


@dataclass(frozen=True)
class SyncCounts:
    customers: int
    invoices: int
    payments: int
    unmapped_total: int = 0
    unmapped: tuple[UnmappedRow, ...] = ()
    recipient_sources: tuple[tuple[str, int], ...] = ()  # (source, customers), by source
    # customer id -> where its billing e-mail came from (recipients.sql), for the letters
    recipient_of: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def rows(self) -> int:
        return self.customers + self.invoices + self.payments


def _upsert_customers(connection: Connection, columns: list[str], rows: list[tuple]) -> None:
    """Insert new customers, update the Alga-owned columns of known ones (the pipeline's own,
    such as the pause and the hold, are left alone)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(customers)
    statement = statement.on_conflict_do_update(
        index_elements=[customers.c.customer_id],
        set_={name: statement.excluded[name] for name in columns if name != "customer_id"},
    )
    connection.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])


def _mirrored(connection: Connection) -> bool:
    """Whether the mirror holds any invoice or payment."""
    return any(
        connection.execute(sa.select(table.c.customer_id).limit(1)).first() is not None
        for table in (invoices, payments)
    )


def _check_columns(name: str, table: sa.Table, columns: Sequence[str]) -> None:
    """The mapping's query must select every column of its table, no more: a column left out
    would be NULL in the copy rather than the column's default."""
    expected = {c.name for c in table.columns}
    if set(columns) != expected:
        missing = ", ".join(sorted(expected - set(columns))) or "none"
        extra = ", ".join(sorted(set(columns) - expected)) or "none"
        raise AlgaSourceError(
            f"sql/alga_psa/{name}.sql must select the columns of {table.name}: "
            f"missing {missing}; not columns of it: {extra}"
        )


def _fresh_copy_of(table: sa.Table) -> sa.Table:
    """A temporary table with ``table``'s columns and types, no keys: the copy is streamed into
    it, then compared with the mirror."""
    return temporary_table(
        f"alga_fresh_{table.name}", *[sa.Column(c.name, c.type) for c in table.columns]
    )


def _write_differences(
    connection: Connection, table: sa.Table, fresh: sa.Table, clients: Sequence[str] | None
) -> None:
    """Make the mirror's ``table`` match ``fresh`` (the copy, of ``clients`` only when given),
    writing only what differs, so that the database's journal (revision 0016) names only the
    settlement keys that changed and the next morning refreshes only those:

    * a row whose key is in both but whose columns differ (``IS DISTINCT FROM``, so two NULLs
      are equal) is updated in place, whichever customer it belonged to before: an invoice
      moved to a client being re-checked does not collide with its old row;
    * a row of the copy whose key the mirror lacks is inserted;
    * a row gone from Alga (of ``clients``, when given) is deleted, unless a row of the
      pipeline's own names it (an invoice hold or a promise): such an invoice is kept as
      ``void``, which the aging never counts, so the collector's record of it stays whole.

    The mapping selects every column of the table (``sync_ledger`` checks)."""
    (key,) = table.primary_key.columns
    fresh_key = fresh.c[key.name]
    columns = [c.name for c in table.columns]
    values = [c for c in columns if c != key.name]
    changed = sa.or_(*[table.c[c].is_distinct_from(fresh.c[c]) for c in values])
    connection.execute(
        table.update()
        .where(key == fresh_key, changed)
        .values({c: fresh.c[c] for c in values})
    )
    connection.execute(
        table.insert().from_select(
            columns,
            sa.select(*[fresh.c[c] for c in columns]).where(
                ~sa.exists().where(key == fresh_key)
            ),
        )
    )
    gone = ~sa.exists().where(fresh_key == key)
    if clients is not None:
        gone = sa.and_(gone, table.c.customer_id.in_(clients))
    naming = [
        fk.parent for other in table.metadata.tables.values() for fk in other.foreign_keys
        if fk.column is key
    ]  # fmt: skip
    if naming:
        named = sa.or_(*[key.in_(sa.select(column)) for column in naming])
        connection.execute(
            table.update().where(gone, named, table.c.status != "void").values(status="void")
        )
        gone = sa.and_(gone, ~named)
    connection.execute(table.delete().where(gone))


def _log_sync(
    connection: Connection,
    sync_type: str,
    started: dt.datetime,
    completed: dt.datetime,
    status: str,
    rows: int,
) -> None:
    connection.execute(
        sync_log.insert().values(
            sync_type=sync_type, started_at=started, completed_at=completed, status=status,
            rows_synced=rows,
        )
    )  # fmt: skip


def sync_ledger(
    source: Engine,
    target: Engine,
    tenant: str,
    timezone: str,
    only: Sequence[str] | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> SyncCounts:
    """Replace the pipeline's mirror of the tenant's ledger with a fresh copy (see the module
    docstring) and log the sync; a failed copy is logged as ``failed`` and raises.

    ``only`` copies just those clients' rows (the apply job's re-check of the customers it is
    about to write to), logged as ``alga_psa_apply_recheck``: a partial copy says nothing about
    the freshness of the rest, so ``aging_data_fresh`` does not count it."""
    started = now()
    clients = None if only is None else sorted(set(only))
    if clients == []:
        return SyncCounts(0, 0, 0)
    sync_type = HOT_SYNC_TYPE if clients is None else RECHECK_SYNC_TYPE
    params = {"tenant": tenant, "timezone": timezone, "only_clients": clients}
    counted = {"customers": 0, "invoices": 0, "payments": 0}
    sources: dict[str, int] = {}
    recipient_of: dict[str, str] = {}
    unmapped: list[UnmappedRow] = []
    unmapped_total = 0
    try:
        with snapshot(source) as alga, alga.begin(), target.begin() as mirror:
            first = clients is None and not _mirrored(mirror)
            if first:
                # the tenant's first copy: written straight into the empty tables and journaled
                # as a bulk load (the next run recomputes everything), so that the database's
                # triggers leave its rows alone
                record_ledger_changes(mirror, None)
            customer_params = {"tenant": tenant, "only_clients": clients}
            customer_query = load_sql("customers", "recipients")
            for columns, chunk in stream(alga, customer_query, customer_params):
                at = columns.index("recipient_source")
                for row in chunk:
                    key = row[at] or "none"
                    sources[key] = sources.get(key, 0) + 1
                    if row[at]:
                        recipient_of[row[0]] = row[at]
                kept = [c for c in columns if c != "recipient_source"]
                _upsert_customers(mirror, kept, [row[:at] + row[at + 1 :] for row in chunk])
                counted["customers"] += len(chunk)
            if clients is None and not counted["customers"]:
                # a mistyped tenant would otherwise age an empty ledger and report all is well
                raise AlgaSourceError(
                    f"AR_ALGA_TENANT {tenant}: the Alga PSA database has no clients of this "
                    "tenant; nothing was copied"
                )
            for name, table in (("invoices", invoices), ("payments", payments)):
                fresh = table if first else _fresh_copy_of(table)
                if not first:
                    create_afresh(mirror, fresh)
                for columns, chunk in stream(alga, load_sql(name), params):
                    _check_columns(name, table, columns)
                    bulk_insert(mirror, fresh, columns, chunk)
                    counted[name] += len(chunk)
                if not first:
                    _write_differences(mirror, table, fresh, clients)
                    if mirror.dialect.name != "postgresql":
                        fresh.drop(mirror)  # PostgreSQL drops it at commit
            if clients is None:
                for _columns, chunk in stream(alga, load_sql("unmapped_rows"), {"tenant": tenant}):
                    unmapped_total += len(chunk)
                    room = UNMAPPED_KEPT - len(unmapped)
                    unmapped.extend(UnmappedRow(*row) for row in chunk[: max(room, 0)])
            counts = SyncCounts(
                **counted,
                unmapped_total=unmapped_total,
                unmapped=tuple(unmapped),
                recipient_sources=tuple(sorted(sources.items())),
                recipient_of=recipient_of,
            )
            _log_sync(mirror, sync_type, started, now(), "ok", counts.rows)
    except (sa.exc.DBAPIError, AlgaSourceError) as error:
        with target.begin() as log:
            _log_sync(log, sync_type, started, now(), "failed", 0)
        if isinstance(error, AlgaSourceError):
            raise
        raise AlgaSourceError(f"copying the Alga PSA ledger failed: {error.orig}") from error
    return counts


def negative_credit(connection: Connection, as_of: dt.date) -> list[sa.Row]:
    """Customers whose unapplied credit is below zero as of ``as_of``, per currency.

    The credit is rebuilt from Alga's own credit ledger, so on the run date it equals Alga's
    available credit and cannot be negative; below zero means the ledger contradicts itself
    (an allocation drawing on a credit row the copy skipped, such as one with no client) and
    the dunnable amount is overstated by as much."""
    a = ar_aging.c
    return list(
        connection.execute(
            sa.select(a.customer_id, a.customer_name, a.currency, a.unapplied_credit_cents)
            .where(a.as_of == as_of, a.unapplied_credit_cents < 0)
            .order_by(a.customer_name, a.currency)
        )
    )
