"""the collector's worklist

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 15:55:00

Written from schema.py by hand (with its CHECK constraints); the schema test compares the
migrated database with schema.py.
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('collection_worklist',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('currency', sa.CHAR(length=3), nullable=False),
    sa.Column('customer_id', sa.Text(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('customer_name', sa.Text(), nullable=False),
    sa.Column('expected_recovery_cents', sa.BigInteger(), nullable=False),
    sa.Column('dunnable_cents', sa.BigInteger(), nullable=False),
    sa.Column('overdue_cents', sa.BigInteger(), nullable=False),
    sa.Column('payer_factor', sa.Float(), nullable=False),
    sa.Column('promise_factor', sa.Float(), nullable=False),
    sa.Column('last_contact_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.CheckConstraint('expected_recovery_cents >= 0', name=op.f('ck_collection_worklist_expected_not_negative')),
    sa.CheckConstraint('expected_recovery_cents <= dunnable_cents', name=op.f('ck_collection_worklist_expected_within_dunnable')),
    sa.PrimaryKeyConstraint('as_of', 'currency', 'customer_id', name=op.f('pk_collection_worklist'))
    )
    op.create_index(op.f('ix_collection_worklist_as_of_currency_rank'), 'collection_worklist', ['as_of', 'currency', 'rank'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_collection_worklist_as_of_currency_rank'), table_name='collection_worklist')
    op.drop_table('collection_worklist')
