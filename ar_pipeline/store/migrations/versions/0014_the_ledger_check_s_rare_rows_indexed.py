"""the ledger check's rare rows indexed: amounts beyond the bound, reversals

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 21:30:00.000000

Partial indexes: each holds only the rows its predicate names (usually none beyond the bound,
a few reversals in a thousand payments), so the check finds them without scanning the ledger.
The bound is written out: a migration is a record of what was created then.
"""

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

BEYOND_BOUND = "amount_cents < -10000000000000 OR amount_cents > 10000000000000"
REVERSAL = "amount_cents < 0"


def upgrade() -> None:
    for name, table, predicate in (
        ('ix_invoices_beyond_bound', 'invoices', BEYOND_BOUND),
        ('ix_payments_beyond_bound', 'payments', BEYOND_BOUND),
        ('ix_payments_reversals', 'payments', REVERSAL),
    ):
        op.create_index(
            name, table, ['invoice_id'], unique=False,
            postgresql_where=sa.text(predicate), sqlite_where=sa.text(predicate),
        )


def downgrade() -> None:
    op.drop_index('ix_payments_reversals', table_name='payments')
    op.drop_index('ix_payments_beyond_bound', table_name='payments')
    op.drop_index('ix_invoices_beyond_bound', table_name='invoices')
