"""invoice holds and promises to pay

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 15:20:00

Written from schema.py by hand (the CHECK constraints included, which autogenerate misses);
the schema test compares the migrated database with schema.py.
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('invoice_holds',
    sa.Column('hold_id', AutoId, autoincrement=True, nullable=False),
    sa.Column('invoice_id', sa.Text(), nullable=False),
    sa.Column('customer_id', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('held_from', sa.Date(), nullable=False),
    sa.Column('held_until', sa.Date(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('recorded_on', sa.Date(), nullable=False),
    sa.Column('recorded_by', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_on', sa.Date(), nullable=True),
    sa.Column('released_by', sa.Text(), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_note', sa.Text(), nullable=True),
    sa.CheckConstraint(
        "reason IN ('dispute', 'audit', 'agreed_delay', 'other')",
        name=op.f('ck_invoice_holds_reason'),
    ),
    sa.CheckConstraint('held_until >= held_from', name=op.f('ck_invoice_holds_ends_after_start')),
    sa.CheckConstraint(
        '(released_on IS NULL) = (released_by IS NULL) AND '
        '(released_on IS NULL) = (released_at IS NULL)',
        name=op.f('ck_invoice_holds_released_together'),
    ),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.customer_id'], name=op.f('fk_invoice_holds_customer_id_customers')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.invoice_id'], name=op.f('fk_invoice_holds_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('hold_id', name=op.f('pk_invoice_holds'))
    )
    op.create_index(op.f('ix_invoice_holds_customer_id'), 'invoice_holds', ['customer_id'], unique=False)
    op.create_index(op.f('ix_invoice_holds_invoice_id'), 'invoice_holds', ['invoice_id'], unique=False)
    op.create_table('promises_to_pay',
    sa.Column('promise_id', AutoId, autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.Text(), nullable=False),
    sa.Column('currency', sa.CHAR(length=3), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('promised_date', sa.Date(), nullable=False),
    sa.Column('covers_all_overdue', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('recorded_on', sa.Date(), nullable=False),
    sa.Column('recorded_by', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancelled_on', sa.Date(), nullable=True),
    sa.Column('cancelled_by', sa.Text(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_cents > 0', name=op.f('ck_promises_to_pay_amount_positive')),
    sa.CheckConstraint('promised_date >= recorded_on', name=op.f('ck_promises_to_pay_promised_after_recorded')),
    sa.CheckConstraint(
        '(cancelled_on IS NULL) = (cancelled_by IS NULL) AND '
        '(cancelled_on IS NULL) = (cancelled_at IS NULL)',
        name=op.f('ck_promises_to_pay_cancelled_together'),
    ),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.customer_id'], name=op.f('fk_promises_to_pay_customer_id_customers')),
    sa.PrimaryKeyConstraint('promise_id', name=op.f('pk_promises_to_pay'))
    )
    op.create_index(op.f('ix_promises_to_pay_customer_id_promised_date'), 'promises_to_pay', ['customer_id', 'promised_date'], unique=False)
    op.create_table('promise_invoices',
    sa.Column('promise_id', sa.BigInteger(), nullable=False),
    sa.Column('invoice_id', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.invoice_id'], name=op.f('fk_promise_invoices_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['promise_id'], ['promises_to_pay.promise_id'], name=op.f('fk_promise_invoices_promise_id_promises_to_pay')),
    sa.PrimaryKeyConstraint('promise_id', 'invoice_id', name=op.f('pk_promise_invoices'))
    )
    op.create_index(op.f('ix_promise_invoices_invoice_id'), 'promise_invoices', ['invoice_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_promise_invoices_invoice_id'), table_name='promise_invoices')
    op.drop_table('promise_invoices')
    op.drop_index(op.f('ix_promises_to_pay_customer_id_promised_date'), table_name='promises_to_pay')
    op.drop_table('promises_to_pay')
    op.drop_index(op.f('ix_invoice_holds_invoice_id'), table_name='invoice_holds')
    op.drop_index(op.f('ix_invoice_holds_customer_id'), table_name='invoice_holds')
    op.drop_table('invoice_holds')
