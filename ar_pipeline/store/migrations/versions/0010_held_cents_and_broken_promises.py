"""held open items in the aging and the trend; the broken promise behind a tier decision

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 15:10:00

Written from schema.py by hand; existing rows knew no holds, so their held_cents is 0.
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('ar_aging', 'ar_aging_summary'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column('held_cents', sa.BigInteger(), server_default='0', nullable=False)
            )
    with op.batch_alter_table('tier_assignments') as batch:
        batch.add_column(sa.Column('broken_promise_id', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tier_assignments') as batch:
        batch.drop_column('broken_promise_id')
    for table in ('ar_aging_summary', 'ar_aging'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('held_cents')
