"""aging snapshot of the run's open items

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('aging_credits',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('customer_id', sa.Text(), nullable=False),
    sa.Column('currency', sa.CHAR(length=3), nullable=False),
    sa.Column('unapplied_credit_cents', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('as_of', 'customer_id', 'currency', name=op.f('pk_aging_credits'))
    )
    op.create_table('aging_open_items',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('invoice_id', sa.Text(), nullable=False),
    sa.Column('customer_id', sa.Text(), nullable=False),
    sa.Column('customer_name', sa.Text(), nullable=False),
    sa.Column('invoice_number', sa.Text(), nullable=False),
    sa.Column('currency', sa.CHAR(length=3), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('balance_cents', sa.BigInteger(), nullable=False),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.Text(), nullable=False),
    sa.Column('disputed', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('as_of', 'invoice_id', name=op.f('pk_aging_open_items'))
    )
    with op.batch_alter_table('aging_open_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aging_open_items_as_of_customer_id'), ['as_of', 'customer_id'], unique=False)

    op.create_table('aging_snapshots',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('written_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('as_of', name=op.f('pk_aging_snapshots'))
    )



def downgrade() -> None:

    op.drop_table('aging_snapshots')
    with op.batch_alter_table('aging_open_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_aging_open_items_as_of_customer_id'))

    op.drop_table('aging_open_items')
    op.drop_table('aging_credits')

