"""aging summary trend table

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('ar_aging_summary',
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('currency', sa.CHAR(length=3), nullable=False),
    sa.Column('customers_with_open', sa.Integer(), nullable=False),
    sa.Column('customers_overdue', sa.Integer(), nullable=False),
    sa.Column('total_open_cents', sa.BigInteger(), nullable=False),
    sa.Column('overdue_cents', sa.BigInteger(), nullable=False),
    sa.Column('current_cents', sa.BigInteger(), nullable=False),
    sa.Column('days_1_30_cents', sa.BigInteger(), nullable=False),
    sa.Column('days_31_60_cents', sa.BigInteger(), nullable=False),
    sa.Column('days_61_90_cents', sa.BigInteger(), nullable=False),
    sa.Column('days_over_90_cents', sa.BigInteger(), nullable=False),
    sa.Column('disputed_cents', sa.BigInteger(), nullable=False),
    sa.Column('unapplied_credit_cents', sa.BigInteger(), nullable=False),
    sa.Column('dunnable_cents', sa.BigInteger(), nullable=False),
    sa.Column('tier_1_customers', sa.Integer(), nullable=False),
    sa.Column('tier_1_cents', sa.BigInteger(), nullable=False),
    sa.Column('tier_2_customers', sa.Integer(), nullable=False),
    sa.Column('tier_2_cents', sa.BigInteger(), nullable=False),
    sa.Column('tier_3_customers', sa.Integer(), nullable=False),
    sa.Column('tier_3_cents', sa.BigInteger(), nullable=False),
    sa.Column('tier_4_customers', sa.Integer(), nullable=False),
    sa.Column('tier_4_cents', sa.BigInteger(), nullable=False),
    sa.Column('actions_staged', sa.Integer(), nullable=False),
    sa.Column('actions_applied', sa.Integer(), nullable=False),
    sa.Column('credit_sales_3m_cents', sa.BigInteger(), nullable=False),
    sa.Column('dso_days', sa.Numeric(precision=9, scale=1), nullable=True),
    sa.Column('best_possible_dso_days', sa.Numeric(precision=9, scale=1), nullable=True),
    sa.Column('average_days_delinquent', sa.Numeric(precision=9, scale=1), nullable=True),
    sa.Column('cei_pct', sa.Numeric(precision=9, scale=1), nullable=True),
    sa.Column('over_90_pct', sa.Numeric(precision=9, scale=1), nullable=True),
    sa.PrimaryKeyConstraint('as_of', 'currency', name=op.f('pk_ar_aging_summary'))
    )



def downgrade() -> None:

    op.drop_table('ar_aging_summary')

