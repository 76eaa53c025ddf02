"""the database journals every ledger write: triggers on invoices and payments

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 05:00:00.000000

Until now every writer of ``invoices`` and ``payments`` had to journal its own changes
(``ar_pipeline.store.journal``); a writer outside the package that forgot (a payment sync, a
hand-made correction in psql) left the incremental balances stale until the daily sample or a
full recomputation caught it. From this revision the database journals every inserted, changed
or deleted row itself, in the writer's transaction, by the row's settlement keys (a payment:
the invoice it names, else its customer's account; an ``invoices`` row: its own id and, a
credit note, what it applies to; a changed row: its keys before and after):

* PostgreSQL: one statement-level trigger per operation with transition tables, so a bulk
  write journals with one INSERT ... SELECT DISTINCT; it takes the journal's advisory lock
  shared, as a writer must (``JOURNAL_LOCK``). TRUNCATE journals "anything". The triggers fire
  under ``session_replication_role = replica`` too (ENABLE ALWAYS), so rows that arrive by
  logical replication are journaled. A transaction that journaled "anything" itself
  (``record_ledger_changes(None)``, a bulk load) sets ``ar_pipeline.journaled_all`` locally and
  the triggers add nothing more.
* SQLite: row-level triggers. They add nothing while an entry for "anything" is pending after
  the state's watermark (the next run recomputes everything anyway), read through a partial
  index of those entries; SQLite has one writer at a time, so that test cannot read a stale
  state.

Alembic's batch mode recreates a SQLite table and drops its triggers: a later revision that
alters ``invoices`` or ``payments`` in batch mode must create these triggers again.
"""

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

JOURNAL_LOCK = 160_001  # ar_pipeline.store.journal.JOURNAL_LOCK, frozen here
SCOPE = "CASE WHEN k.invoice_id IS NULL THEN 'account' ELSE 'invoice' END"


def _keys(table: str, rows: str) -> str:
    """The settlement keys (customer_id, invoice_id) of the rows ``rows`` of ``table``."""
    if table == 'payments':
        return f"SELECT customer_id, invoice_id FROM {rows}"
    return (
        f"SELECT customer_id, invoice_id FROM {rows} UNION ALL "
        f"SELECT customer_id, applies_to_invoice_id FROM {rows} WHERE kind = 'credit_note'"
    )


def _postgresql_function(table: str) -> str:
    insert = (
        "INSERT INTO ledger_changes (customer_id, invoice_id, scope, recorded_at) "
        f"SELECT DISTINCT k.customer_id, k.invoice_id, {SCOPE}, now() FROM ({{keys}}) AS k"
    )
    both = f"{_keys(table, 'old_rows')} UNION ALL {_keys(table, 'new_rows')}"
    return f"""
CREATE FUNCTION ar_journal_{table}() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    IF current_setting('ar_pipeline.journaled_all', true) = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock_shared({JOURNAL_LOCK});
    IF TG_OP = 'INSERT' THEN
        {insert.format(keys=_keys(table, 'new_rows'))};
    ELSIF TG_OP = 'UPDATE' THEN
        {insert.format(keys=both)};
    ELSIF TG_OP = 'DELETE' THEN
        {insert.format(keys=_keys(table, 'old_rows'))};
    ELSE
        INSERT INTO ledger_changes (customer_id, invoice_id, scope, recorded_at)
        VALUES (NULL, NULL, 'all', now());
    END IF;
    RETURN NULL;
END
$body$"""


POSTGRESQL_TRIGGERS = {
    'insert': "AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT",
    'update': (
        "AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT"
    ),
    'delete': "AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT",
    'truncate': "AFTER TRUNCATE ON {table} FOR EACH STATEMENT",
}

# nothing to add while "anything" is pending after the watermark (no state: watermark 0)
SQLITE_UNLESS_ALL_PENDING = (
    "NOT EXISTS (SELECT 1 FROM ledger_changes WHERE scope = 'all' AND seq > "
    "coalesce((SELECT watermark FROM balance_state), 0))"
)


def _sqlite_keys(table: str, row: str) -> list[tuple[str, str]]:
    """(customer_id, invoice_id) expressions of the keys of the row ``row`` (NEW or OLD)."""
    keys = [(f"{row}.customer_id", f"{row}.invoice_id")]
    if table == 'invoices':  # a credit note's second key: what it applies to
        keys.append((f"{row}.customer_id", f"{row}.applies_to_invoice_id"))
    return keys


def _sqlite_trigger(table: str, operation: str) -> str:
    rows = {'insert': ['NEW'], 'update': ['OLD', 'NEW'], 'delete': ['OLD']}[operation]
    inserts = []
    for row in rows:
        for number, (customer, invoice) in enumerate(_sqlite_keys(table, row)):
            only = f" WHERE {row}.kind = 'credit_note'" if number == 1 else ""
            inserts.append(
                "INSERT INTO ledger_changes (customer_id, invoice_id, scope, recorded_at) "
                f"SELECT {customer}, {invoice}, CASE WHEN {invoice} IS NULL THEN 'account' "
                f"ELSE 'invoice' END, strftime('%Y-%m-%d %H:%M:%S', 'now'){only};"
            )
    body = "\n    ".join(inserts)
    return (
        f"CREATE TRIGGER ar_journal_{table}_{operation} AFTER {operation.upper()} ON {table} "
        f"FOR EACH ROW WHEN {SQLITE_UNLESS_ALL_PENDING}\nBEGIN\n    {body}\nEND"
    )


def upgrade() -> None:
    op.create_index(
        'ix_ledger_changes_all', 'ledger_changes', ['seq'], unique=False,
        sqlite_where=sa.text("scope = 'all'"), postgresql_where=sa.text("scope = 'all'"),
    )
    if op.get_bind().dialect.name == 'postgresql':
        for table in ('payments', 'invoices'):
            op.execute(_postgresql_function(table))
            for operation, when in POSTGRESQL_TRIGGERS.items():
                name = f"ar_journal_{table}_{operation}"
                op.execute(
                    f"CREATE TRIGGER {name} {when.format(table=table)} "
                    f"EXECUTE FUNCTION ar_journal_{table}()"
                )
                op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {name}")
    else:
        for table in ('payments', 'invoices'):
            for operation in ('insert', 'update', 'delete'):
                op.execute(_sqlite_trigger(table, operation))


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in ('payments', 'invoices'):
            for operation in POSTGRESQL_TRIGGERS:
                op.execute(f"DROP TRIGGER ar_journal_{table}_{operation} ON {table}")
            op.execute(f"DROP FUNCTION ar_journal_{table}()")
    else:
        for table in ('payments', 'invoices'):
            for operation in ('insert', 'update', 'delete'):
                op.execute(f"DROP TRIGGER ar_journal_{table}_{operation}")
    op.drop_index('ix_ledger_changes_all', table_name='ledger_changes')
