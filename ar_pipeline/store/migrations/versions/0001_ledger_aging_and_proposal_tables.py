"""ledger, aging and proposal tables

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "ar_aging",
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("customer_name", sa.Text(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("total_open_cents", sa.BigInteger(), nullable=False),
        sa.Column("overdue_cents", sa.BigInteger(), nullable=False),
        sa.Column("current_cents", sa.BigInteger(), nullable=False),
        sa.Column("days_1_30_cents", sa.BigInteger(), nullable=False),
        sa.Column("days_31_60_cents", sa.BigInteger(), nullable=False),
        sa.Column("days_61_90_cents", sa.BigInteger(), nullable=False),
        sa.Column("days_over_90_cents", sa.BigInteger(), nullable=False),
        sa.Column("disputed_cents", sa.BigInteger(), nullable=False),
        sa.Column("unapplied_credit_cents", sa.BigInteger(), nullable=False),
        sa.Column("dunnable_cents", sa.BigInteger(), nullable=False),
        sa.Column("max_days_overdue", sa.Integer(), nullable=True),
        sa.Column("oldest_overdue_invoice_id", sa.Text(), nullable=True),
        sa.Column("open_item_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("as_of", "customer_id", "currency", name=op.f("pk_ar_aging")),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("customer_name", sa.Text(), nullable=False),
        sa.Column("billing_email", sa.Text(), nullable=True),
        sa.Column("sales_rep_email", sa.Text(), nullable=True),
        sa.Column("dunning_paused_until", sa.Date(), nullable=True),
        sa.Column("service_hold", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("service_hold_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("service_hold_reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.current_timestamp(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
    )
    op.create_table(
        "prior_actions",
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("action_id", sa.BigInteger(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("as_of", "customer_id", name=op.f("pk_prior_actions")),
    )
    op.create_table(
        "proposed_actions",
        sa.Column(
            "action_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("envelope_id", sa.BigInteger(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("action_type", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=True),
        sa.Column("tier", sa.Integer(), nullable=True),
        sa.Column("program_type", sa.Text(), nullable=True),
        sa.Column("payload_json", sa.JSON(), nullable=True),
        sa.Column("edited_payload_json", sa.JSON(), nullable=True),
        sa.Column("status", sa.Text(), server_default="proposed", nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("superseded_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "action_type IN ('workflow_envelope', 'collection_action', 'customer_program', 'email_to_customer')",
            name=op.f("ck_proposed_actions_action_type"),
        ),
        sa.CheckConstraint(
            "program_type IS NULL OR program_type = 'service_hold'",
            name=op.f("ck_proposed_actions_program_type"),
        ),
        sa.CheckConstraint(
            "status IN ('proposed', 'approved', 'rejected', 'superseded', 'applying', 'applied', 'failed')",
            name=op.f("ck_proposed_actions_status"),
        ),
        sa.PrimaryKeyConstraint("action_id", name=op.f("pk_proposed_actions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_proposed_actions_idempotency_key")),
    )
    with op.batch_alter_table("proposed_actions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_proposed_actions_customer_id_action_type_status"),
            ["customer_id", "action_type", "status"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_proposed_actions_envelope_id"), ["envelope_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_proposed_actions_status"), ["status"], unique=False)

    op.create_table(
        "sync_log",
        sa.Column(
            "sync_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sync_type", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("rows_synced", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IS NULL OR status IN ('ok', 'failed')", name=op.f("ck_sync_log_status")
        ),
        sa.PrimaryKeyConstraint("sync_id", name=op.f("pk_sync_log")),
    )
    with op.batch_alter_table("sync_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sync_log_sync_type_status_completed_at"),
            ["sync_type", "status", "completed_at"],
            unique=False,
        )

    op.create_table(
        "tier_assignments",
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("target_tier", sa.Integer(), nullable=True),
        sa.Column("last_applied_tier", sa.Integer(), nullable=True),
        sa.Column("proposed_tier", sa.Integer(), nullable=True),
        sa.Column("skip_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "skip_reason IS NULL OR skip_reason IN ('below_minimum', 'paused', 'cooldown', 'already_at_tier')",
            name=op.f("ck_tier_assignments_skip_reason"),
        ),
        sa.CheckConstraint(
            "(proposed_tier IS NULL) <> (skip_reason IS NULL)",
            name=op.f("ck_tier_assignments_proposed_xor_skipped"),
        ),
        sa.PrimaryKeyConstraint("as_of", "customer_id", name=op.f("pk_tier_assignments")),
    )
    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("invoice_number", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("disputed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("applies_to_invoice_id", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "applies_to_invoice_id IS NULL OR kind = 'credit_note'",
            name=op.f("ck_invoices_applies_to_credit_note"),
        ),
        sa.CheckConstraint("kind IN ('invoice', 'credit_note')", name=op.f("ck_invoices_kind")),
        sa.CheckConstraint(
            "status IN ('draft', 'issued', 'void')", name=op.f("ck_invoices_status")
        ),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_invoices_amount_positive")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_invoices_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("invoice_id", name=op.f("pk_invoices")),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invoices_applies_to_invoice_id"), ["applies_to_invoice_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_invoices_customer_id_due_date"),
            ["customer_id", "due_date"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_invoices_issue_date"), ["issue_date"], unique=False)

    op.create_table(
        "payments",
        sa.Column("payment_id", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Text(), nullable=True),
        sa.Column("received_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_payments_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_payments")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payments_customer_id_received_date"),
            ["customer_id", "received_date"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_payments_invoice_id"), ["invoice_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_payments_customer_id_received_date"))

    op.drop_table("payments")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoices_issue_date"))
        batch_op.drop_index(batch_op.f("ix_invoices_customer_id_due_date"))
        batch_op.drop_index(batch_op.f("ix_invoices_applies_to_invoice_id"))

    op.drop_table("invoices")
    op.drop_table("tier_assignments")
    with op.batch_alter_table("sync_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_log_sync_type_status_completed_at"))

    op.drop_table("sync_log")
    with op.batch_alter_table("proposed_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposed_actions_status"))
        batch_op.drop_index(batch_op.f("ix_proposed_actions_envelope_id"))
        batch_op.drop_index(batch_op.f("ix_proposed_actions_customer_id_action_type_status"))

    op.drop_table("proposed_actions")
    op.drop_table("prior_actions")
    op.drop_table("customers")
    op.drop_table("ar_aging")
