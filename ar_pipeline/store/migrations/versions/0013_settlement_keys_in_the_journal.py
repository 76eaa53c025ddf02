"""settlement keys: the journal names the invoice or account a row belongs to, and the
incremental state keeps unapplied credit per key

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 21:05:00.000000

The state is forgotten (``balance_state`` emptied): the first daily run after this revision
recomputes every balance, then brings them forward key by key.
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

SCOPES = "scope IN ('invoice', 'account', 'customer', 'all')"


def upgrade() -> None:
    op.execute("DELETE FROM balance_state")
    with op.batch_alter_table('ledger_changes') as batch:
        batch.add_column(
            sa.Column('scope', sa.Text(), nullable=False, server_default='customer')
        )
        batch.add_column(sa.Column('invoice_id', sa.Text(), nullable=True))
        batch.create_check_constraint(op.f('ck_ledger_changes_scope'), SCOPES)
    # an entry for no customer was "anything changed"
    op.execute("UPDATE ledger_changes SET scope = 'all' WHERE customer_id IS NULL")
    op.drop_table('ledger_credits')
    op.create_table(
        'ledger_credits',
        sa.Column('customer_id', sa.Text(), nullable=False),
        sa.Column('currency', sa.CHAR(length=3), nullable=False),
        sa.Column('names', sa.Text(), nullable=True),
        sa.Column('unapplied_credit_cents', sa.BigInteger(), nullable=False),
    )
    op.create_index(
        op.f('ix_ledger_credits_customer_id'), 'ledger_credits', ['customer_id'], unique=False
    )
    op.create_index(op.f('ix_ledger_credits_names'), 'ledger_credits', ['names'], unique=False)
    op.create_index(
        op.f('ix_ledger_findings_invoice_id'), 'ledger_findings', ['invoice_id'], unique=False
    )


def downgrade() -> None:
    op.execute("DELETE FROM balance_state")
    op.drop_index(op.f('ix_ledger_findings_invoice_id'), table_name='ledger_findings')
    op.drop_index(op.f('ix_ledger_credits_names'), table_name='ledger_credits')
    op.drop_index(op.f('ix_ledger_credits_customer_id'), table_name='ledger_credits')
    op.drop_table('ledger_credits')
    op.create_table(
        'ledger_credits',
        sa.Column('customer_id', sa.Text(), nullable=False),
        sa.Column('currency', sa.CHAR(length=3), nullable=False),
        sa.Column('unapplied_credit_cents', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('customer_id', 'currency', name=op.f('pk_ledger_credits')),
    )
    op.execute("DELETE FROM ledger_changes WHERE scope IN ('invoice', 'account')")
    with op.batch_alter_table('ledger_changes') as batch:
        batch.drop_constraint(op.f('ck_ledger_changes_scope'), type_='check')
        batch.drop_column('invoice_id')
        batch.drop_column('scope')
