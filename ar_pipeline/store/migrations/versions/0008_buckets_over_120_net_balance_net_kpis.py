"""aging buckets 91-120 and over 120, net balance, KPIs on net receivables

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 13:05:43.184716

Generated from schema.py, then by hand: autogenerate sees neither CHECK constraints nor that a
NOT NULL column cannot be added to a table that has rows. So ``net_balance_cents`` is added
nullable, filled from the row's own figures (open items less unapplied credit, exact), and then
made NOT NULL. Rows written before this revision cannot be split into 91-120 and over 120 (the
open items of past days are not kept), so their two new buckets stay null; over 90 keeps its
figure. The same goes for the trend's net KPI bases: rebuild the trend (one backfill) to fill
them and to recompute its KPIs on net receivables and calendar months.
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TABLES = ('ar_aging', 'ar_aging_summary')
OVER_90_SPLIT = (
    "(days_91_120_cents IS NULL AND days_over_120_cents IS NULL) OR "
    "(days_91_120_cents IS NOT NULL AND days_over_120_cents IS NOT NULL AND "
    "days_91_120_cents + days_over_120_cents = days_over_90_cents)"
)
NET_BALANCE = "net_balance_cents = total_open_cents - unapplied_credit_cents"


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('days_91_120_cents', sa.BigInteger(), nullable=True))
            batch_op.add_column(sa.Column('days_over_120_cents', sa.BigInteger(), nullable=True))
            batch_op.add_column(sa.Column('net_balance_cents', sa.BigInteger(), nullable=True))
        op.execute(
            f"UPDATE {table} SET net_balance_cents = total_open_cents - unapplied_credit_cents"
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                'net_balance_cents', existing_type=sa.BigInteger(), nullable=False
            )
            # by hand: autogenerate does not see CHECK constraints
            batch_op.create_check_constraint('over_90_split', OVER_90_SPLIT)
            batch_op.create_check_constraint('net_balance', NET_BALANCE)

    with op.batch_alter_table('ar_aging_summary', schema=None) as batch_op:
        batch_op.add_column(sa.Column('net_current_cents', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('net_over_90_cents', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('dso_gross_days', sa.Numeric(precision=9, scale=1), nullable=True))
        batch_op.add_column(sa.Column('cei_gross_pct', sa.Numeric(precision=9, scale=1), nullable=True))
        batch_op.add_column(sa.Column('over_90_gross_pct', sa.Numeric(precision=9, scale=1), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ar_aging_summary', schema=None) as batch_op:
        batch_op.drop_column('over_90_gross_pct')
        batch_op.drop_column('cei_gross_pct')
        batch_op.drop_column('dso_gross_days')
        batch_op.drop_column('net_over_90_cents')
        batch_op.drop_column('net_current_cents')

    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f'ck_{table}_net_balance'), type_='check')
            batch_op.drop_constraint(op.f(f'ck_{table}_over_90_split'), type_='check')
            batch_op.drop_column('net_balance_cents')
            batch_op.drop_column('days_over_120_cents')
            batch_op.drop_column('days_91_120_cents')
