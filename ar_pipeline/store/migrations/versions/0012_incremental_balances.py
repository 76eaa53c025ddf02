"""incremental balances: the ledger's change journal and the balances kept up to date from it

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 15:05:00.000000

Self-contained (tables and one index only), so that it can be re-parented onto another 0009.
The state starts empty: the first daily run after this revision recomputes every balance.
"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'ledger_changes',
        sa.Column('seq', AutoId, autoincrement=True, nullable=False),
        sa.Column('customer_id', sa.Text(), nullable=True),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('seq', name=op.f('pk_ledger_changes')),
    )
    op.create_table(
        'ledger_balances',
        sa.Column('invoice_id', sa.Text(), nullable=False),
        sa.Column('customer_id', sa.Text(), nullable=False),
        sa.Column('invoice_number', sa.Text(), nullable=False),
        sa.Column('currency', sa.CHAR(length=3), nullable=False),
        sa.Column('due_date', sa.Date(), nullable=False),
        sa.Column('disputed', sa.Boolean(), nullable=False),
        sa.Column('balance_cents', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('invoice_id', name=op.f('pk_ledger_balances')),
    )
    op.create_index(
        op.f('ix_ledger_balances_customer_id'), 'ledger_balances', ['customer_id'], unique=False
    )
    op.create_table(
        'ledger_credits',
        sa.Column('customer_id', sa.Text(), nullable=False),
        sa.Column('currency', sa.CHAR(length=3), nullable=False),
        sa.Column('unapplied_credit_cents', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('customer_id', 'currency', name=op.f('pk_ledger_credits')),
    )
    op.create_table(
        'ledger_findings',
        sa.Column('customer_id', sa.Text(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('row_kind', sa.Text(), nullable=False),
        sa.Column('row_id', sa.Text(), nullable=False),
        sa.Column('invoice_id', sa.Text(), nullable=True),
        sa.Column('currency', sa.Text(), nullable=True),
        sa.Column('amount_cents', sa.BigInteger(), nullable=True),
        sa.Column('net_cents', sa.BigInteger(), nullable=True),
        sa.Column('other', sa.Text(), nullable=True),
    )
    op.create_index(
        op.f('ix_ledger_findings_customer_id'), 'ledger_findings', ['customer_id'], unique=False
    )
    op.create_table(
        'balance_state',
        sa.Column('state_id', sa.Integer(), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('watermark', sa.BigInteger(), nullable=False),
        sa.Column('rules_version', sa.Integer(), nullable=False),
        sa.Column('invoice_rows', sa.BigInteger(), nullable=False),
        sa.Column('payment_rows', sa.BigInteger(), nullable=False),
        sa.Column('mode', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('state_id = 1', name=op.f('ck_balance_state_single_row')),
        sa.CheckConstraint("mode IN ('full', 'incremental')", name=op.f('ck_balance_state_mode')),
        sa.PrimaryKeyConstraint('state_id', name=op.f('pk_balance_state')),
    )
    op.create_index(
        op.f('ix_payments_received_date'), 'payments', ['received_date'], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_payments_received_date'), table_name='payments')
    op.drop_table('balance_state')
    op.drop_index(op.f('ix_ledger_findings_customer_id'), table_name='ledger_findings')
    op.drop_table('ledger_findings')
    op.drop_table('ledger_credits')
    op.drop_index(op.f('ix_ledger_balances_customer_id'), table_name='ledger_balances')
    op.drop_table('ledger_balances')
    op.drop_table('ledger_changes')
