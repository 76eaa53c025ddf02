"""The single schema definition of the business database (SQLAlchemy Core).

Alembic migrations in ``ar_pipeline/store/migrations`` are generated from this ``metadata`` and a
test checks that the migrated database and this module agree. Money is integer minor units with its
ISO 4217 currency; calendar dates are ``Date`` in ``AR_TIMEZONE``; timestamps are UTC.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(sa.TypeDecorator):
    """A timestamp stored and returned in UTC, always timezone-aware.

    SQLite keeps no zone, so naive values read back are UTC by construction; PostgreSQL's
    ``timestamptz`` comes back in the session zone and is converted.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants a BIGINT identity.
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Money = sa.BigInteger
Timestamp = UtcDateTime()

AMOUNT_BOUND_CENTS = 10**13
"""The largest amount (minor units, either sign) a ledger row may have: 100,000,000,000.00 in a
2-decimal currency. The one place the bound is set: the aging and the ledger check
(``ar_pipeline.rules.ledger_sanity``) read it, and so do the partial indexes below."""
# The rows the ledger check looks for are rare (none, usually, beyond the bound; a few reversals
# in a thousand payments): indexed by themselves, the check finds them without scanning the
# ledger (0.36 s -> 0.10 s at 1M invoices; the incremental balances' keyed check 0.34 s ->
# 0.01 s). The predicate is spelled as the check's NOT (within the bound) simplifies to.
BEYOND_BOUND = sa.text(
    f"amount_cents < -{AMOUNT_BOUND_CENTS} OR amount_cents > {AMOUNT_BOUND_CENTS}"
)
REVERSAL = sa.text("amount_cents < 0")

# --- the source ledger (docs/design.md, The ledger contract) -------------------------------------

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("customer_name", sa.Text, nullable=False),
    sa.Column("billing_email", sa.Text),
    sa.Column("sales_rep_email", sa.Text),
    sa.Column("dunning_paused_until", sa.Date),
    sa.Column("service_hold", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("service_hold_at", Timestamp),
    sa.Column("service_hold_reason", sa.Text),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.current_timestamp()),
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, sa.ForeignKey("customers.customer_id"), nullable=False),
    sa.Column("invoice_number", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("amount_cents", Money, nullable=False),
    sa.Column("disputed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("applies_to_invoice_id", sa.Text),
    sa.CheckConstraint("kind IN ('invoice', 'credit_note')", name="kind"),
    sa.CheckConstraint("status IN ('draft', 'issued', 'void')", name="status"),
    sa.CheckConstraint("amount_cents > 0", name="amount_positive"),
    sa.CheckConstraint(
        "applies_to_invoice_id IS NULL OR kind = 'credit_note'", name="applies_to_credit_note"
    ),
    sa.Index(None, "customer_id", "due_date"),
    sa.Index(None, "applies_to_invoice_id"),
    sa.Index(None, "issue_date"),
    sa.Index(
        "ix_invoices_beyond_bound", "invoice_id",
        postgresql_where=BEYOND_BOUND, sqlite_where=BEYOND_BOUND,
    ),  # fmt: skip
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("payment_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, sa.ForeignKey("customers.customer_id"), nullable=False),
    sa.Column("invoice_id", sa.Text),
    sa.Column("received_date", sa.Date, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("amount_cents", Money, nullable=False),
    sa.Index(None, "invoice_id"),
    sa.Index(None, "customer_id", "received_date"),
    sa.Index(None, "received_date"),  # the events that fall due on a day (incremental balances)
    sa.Index(
        "ix_payments_beyond_bound", "invoice_id",
        postgresql_where=BEYOND_BOUND, sqlite_where=BEYOND_BOUND,
    ),  # fmt: skip
    sa.Index(
        "ix_payments_reversals", "invoice_id", postgresql_where=REVERSAL, sqlite_where=REVERSAL
    ),
)

sync_log = sa.Table(
    "sync_log",
    metadata,
    sa.Column("sync_id", AutoId, primary_key=True, autoincrement=True),
    sa.Column("sync_type", sa.Text, nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("completed_at", Timestamp),
    sa.Column("status", sa.Text),
    sa.Column("rows_synced", sa.Integer),
    sa.CheckConstraint("status IS NULL OR status IN ('ok', 'failed')", name="status"),
    sa.Index(None, "sync_type", "status", "completed_at"),
)

# --- what collectors record (docs/design.md, The collector's levers) ----------------------------
# Rows here are never updated except to end them early (released_*/cancelled_*), so every past
# as-of date can see exactly the holds and promises that were in force then. A hold or promise
# counts from the day it was recorded (``recorded_on``, a date in AR_TIMEZONE), never before.

HOLD_REASONS = ("dispute", "audit", "agreed_delay", "other")

invoice_holds = sa.Table(
    "invoice_holds",
    metadata,
    sa.Column("hold_id", AutoId, primary_key=True, autoincrement=True),
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoices.invoice_id"), nullable=False),
    sa.Column("customer_id", sa.Text, sa.ForeignKey("customers.customer_id"), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("held_from", sa.Date, nullable=False),  # first day held (not before recorded_on)
    sa.Column("held_until", sa.Date, nullable=False),  # last day held; dunnable again the day after
    sa.Column("note", sa.Text),
    sa.Column("recorded_on", sa.Date, nullable=False),
    sa.Column("recorded_by", sa.Text, nullable=False),
    sa.Column("recorded_at", Timestamp, nullable=False),
    sa.Column("released_on", sa.Date),  # ended early: not held from this day on
    sa.Column("released_by", sa.Text),
    sa.Column("released_at", Timestamp),
    sa.Column("release_note", sa.Text),
    sa.CheckConstraint(
        "reason IN ({})".format(", ".join(f"'{r}'" for r in HOLD_REASONS)), name="reason"
    ),
    sa.CheckConstraint("held_until >= held_from", name="ends_after_start"),
    sa.CheckConstraint(
        "(released_on IS NULL) = (released_by IS NULL) AND "
        "(released_on IS NULL) = (released_at IS NULL)",
        name="released_together",
    ),
    sa.Index(None, "invoice_id"),
    sa.Index(None, "customer_id"),
)

promises_to_pay = sa.Table(
    "promises_to_pay",
    metadata,
    sa.Column("promise_id", AutoId, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.Text, sa.ForeignKey("customers.customer_id"), nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("amount_cents", Money, nullable=False),
    sa.Column("promised_date", sa.Date, nullable=False),  # judged the morning after
    # recorded as "all overdue": the invoices overdue that day are listed in promise_invoices
    sa.Column("covers_all_overdue", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("note", sa.Text),
    sa.Column("recorded_on", sa.Date, nullable=False),
    sa.Column("recorded_by", sa.Text, nullable=False),
    sa.Column("recorded_at", Timestamp, nullable=False),
    sa.Column("cancelled_on", sa.Date),  # withdrawn: no longer holds from this day on
    sa.Column("cancelled_by", sa.Text),
    sa.Column("cancelled_at", Timestamp),
    sa.CheckConstraint("amount_cents > 0", name="amount_positive"),
    sa.CheckConstraint("promised_date >= recorded_on", name="promised_after_recorded"),
    sa.CheckConstraint(
        "(cancelled_on IS NULL) = (cancelled_by IS NULL) AND "
        "(cancelled_on IS NULL) = (cancelled_at IS NULL)",
        name="cancelled_together",
    ),
    sa.Index(None, "customer_id", "promised_date"),
)

promise_invoices = sa.Table(
    "promise_invoices",
    metadata,
    sa.Column(
        "promise_id", sa.BigInteger, sa.ForeignKey("promises_to_pay.promise_id"), primary_key=True
    ),
    sa.Column("invoice_id", sa.Text, sa.ForeignKey("invoices.invoice_id"), primary_key=True),
    sa.Index(None, "invoice_id"),
)

# --- what the pipeline writes (docs/design.md, Aging, Tiering and Statuses) ----------------------

AGING_MONEY = (
    "total_open_cents", "overdue_cents", "current_cents", "days_1_30_cents", "days_31_60_cents",
    "days_61_90_cents", "days_91_120_cents", "days_over_120_cents", "days_over_90_cents",
    "disputed_cents", "unapplied_credit_cents", "net_balance_cents", "dunnable_cents",
    "held_cents",
)  # fmt: skip
# Over 90 was split into 91-120 and over 120 in revision 0008; rows written before it cannot be
# split after the fact, so there these two are null (over 90 keeps its figure). Every row written
# since has both, and they add up to over 90.
SPLIT_OVER_90 = ("days_91_120_cents", "days_over_120_cents")


# Open items held on the day (an invoice hold in force or an open promise to pay, revision 0010):
# aged and in every total, never dunnable. Rows written before 0010 knew no holds: 0.
HELD_COLUMN = "held_cents"


def aging_money_columns() -> list[sa.Column]:
    """The money sums shared by ``ar_aging`` (per customer) and ``ar_aging_summary`` (per day)."""
    return [
        sa.Column(name, Money, nullable=name in SPLIT_OVER_90, server_default="0")
        if name == HELD_COLUMN
        else sa.Column(name, Money, nullable=name in SPLIT_OVER_90)
        for name in AGING_MONEY
    ]


def aging_money_checks() -> list[sa.CheckConstraint]:
    """What holds between those sums on every row: over 90 is 91-120 plus over 120, and the net
    balance is the open items less the unapplied credit."""
    return [
        sa.CheckConstraint(
            "(days_91_120_cents IS NULL AND days_over_120_cents IS NULL) OR "
            "(days_91_120_cents IS NOT NULL AND days_over_120_cents IS NOT NULL AND "
            "days_91_120_cents + days_over_120_cents = days_over_90_cents)",
            name="over_90_split",
        ),
        sa.CheckConstraint(
            "net_balance_cents = total_open_cents - unapplied_credit_cents", name="net_balance"
        ),
    ]


ar_aging = sa.Table(
    "ar_aging",
    metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("customer_name", sa.Text, nullable=False),
    sa.Column("currency", sa.CHAR(3), primary_key=True),
    *aging_money_columns(),
    sa.Column("max_days_overdue", sa.Integer),
    sa.Column("oldest_overdue_invoice_id", sa.Text),
    sa.Column("open_item_count", sa.Integer, nullable=False),
    *aging_money_checks(),
)

prior_actions = sa.Table(
    "prior_actions",
    metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("action_id", sa.BigInteger, nullable=False),
    sa.Column("tier", sa.Integer, nullable=False),
    sa.Column("applied_at", Timestamp, nullable=False),
)

# Why a customer with a dunnable amount gets no step today (``ar_pipeline.rules.tiering``).
SKIP_REASONS = (
    "below_minimum",
    "paused",
    "cooldown",
    "already_at_tier",
    "in_flight",  # a step approved and not yet confirmed sent is the customer's current step
)

tier_assignments = sa.Table(
    "tier_assignments",
    metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("target_tier", sa.Integer),
    sa.Column("last_applied_tier", sa.Integer),
    sa.Column("proposed_tier", sa.Integer),
    sa.Column("skip_reason", sa.Text),
    # the broken promise to pay that called for this step (revision 0010; docs/design.md, The
    # collector's levers): the next step beyond the last applied one, cooldown or not
    sa.Column("broken_promise_id", sa.BigInteger),
    sa.CheckConstraint(
        "skip_reason IS NULL OR skip_reason IN ({})".format(
            ", ".join(f"'{r}'" for r in SKIP_REASONS)
        ),
        name="skip_reason",
    ),
    sa.CheckConstraint(
        "(proposed_tier IS NULL) <> (skip_reason IS NULL)", name="proposed_xor_skipped"
    ),
)

ACTION_TYPES = (
    "workflow_envelope",
    "collection_action",
    "customer_program",
    "email_to_customer",
    "service_period_repair",  # Alga PSA source: a repair plan for a human, never applied
)
# Approving these records a decision; the apply job has nothing to do for them.
NEVER_APPLIED_TYPES = ("workflow_envelope", "service_period_repair")
ACTION_STATUSES = (
    "proposed",
    "approved",
    "rejected",
    "superseded",
    "applying",
    "applied",
    "failed",
    "unconfirmed",  # the mail server never answered the message data: a human decides
)
# A collection step in one of these is the customer's current step until it is resolved.
IN_FLIGHT_STATUSES = ("approved", "applying", "unconfirmed")

proposed_actions = sa.Table(
    "proposed_actions",
    metadata,
    sa.Column("action_id", AutoId, primary_key=True, autoincrement=True),
    sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
    sa.Column("envelope_id", sa.BigInteger),
    sa.Column("run_id", sa.Text),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("action_type", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text),
    sa.Column("tier", sa.Integer),
    sa.Column("program_type", sa.Text),
    sa.Column("payload_json", sa.JSON),
    sa.Column("edited_payload_json", sa.JSON),
    sa.Column("status", sa.Text, nullable=False, server_default="proposed"),
    sa.Column("proposed_at", Timestamp, nullable=False),
    sa.Column("decided_by", sa.Text),
    sa.Column("decided_at", Timestamp),
    sa.Column("decision_reason", sa.Text),
    sa.Column("applied_at", Timestamp),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("superseded_reason", sa.Text),
    sa.Column("claimed_at", Timestamp),  # when the apply job took it (approved -> applying)
    sa.Column("delivery_detail", sa.Text),  # the mail server's acceptance, or the hold set
    sa.Column("resolved_by", sa.Text),  # who settled an unconfirmed or stranded action
    sa.Column("resolved_at", Timestamp),
    sa.Column("resolution", sa.Text),
    sa.CheckConstraint(
        "resolution IS NULL OR resolution IN ('delivered', 'send_again')", name="resolution"
    ),
    sa.CheckConstraint(
        "action_type IN ({})".format(", ".join(f"'{t}'" for t in ACTION_TYPES)),
        name="action_type",
    ),
    sa.CheckConstraint(
        "status IN ({})".format(", ".join(f"'{s}'" for s in ACTION_STATUSES)), name="status"
    ),
    sa.CheckConstraint(
        "program_type IS NULL OR program_type = 'service_hold'", name="program_type"
    ),
    sa.Index(None, "customer_id", "action_type", "status"),
    sa.Index(None, "status"),
    sa.Index(None, "envelope_id"),
    # the proposals of one day, which staging and its check read (revision 0015): without it
    # every such read scans all the history
    sa.Index(None, "as_of", "customer_id", "action_type"),
)

# What the apply side (the Dagster code location that runs the apply job) says its settings are,
# so that a decision it would refuse is refused when it is made (``ar_pipeline.actions.approvals``).
published_settings = sa.Table(
    "published_settings",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),  # e.g. AR_APPROVERS
    sa.Column("value_json", sa.JSON, nullable=False),
    sa.Column("published_by", sa.Text, nullable=False),
    sa.Column("published_at", Timestamp, nullable=False),
)

# Signed-in sessions of the approver's page (``ar_pipeline.web.sessions``). The browser's cookie
# holds a random token; only its SHA-256 is kept here, so a copy of this table opens no session.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),  # hex SHA-256 of the cookie's token
    sa.Column("user_name", sa.Text, nullable=False),
    sa.Column("csrf_token", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_seen_at", Timestamp, nullable=False),  # for the idle timeout
    sa.Column("expires_at", Timestamp, nullable=False),  # absolute end, whatever the activity
    sa.Column("flash_json", sa.JSON),  # the outcome of the last decision, shown once
    # HMAC of the account's password hash at sign-in: a changed password ends the session
    sa.Column("credential", sa.Text),
    sa.Index(None, "expires_at"),
)

# --- run bookkeeping (docs/design.md, Statuses) --------------------------------------------------

RUN_STATUSES = ("running", "succeeded", "failed")

workflow_run_log = sa.Table(
    "workflow_run_log",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("workflow_type", sa.Text, nullable=False),
    sa.Column("as_of", sa.Date),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("started_at", Timestamp),
    sa.Column("completed_at", Timestamp),
    sa.Column("summary_json", sa.JSON),
    sa.CheckConstraint(
        "status IN ({})".format(", ".join(f"'{s}'" for s in RUN_STATUSES)), name="status"
    ),
)

reflexion_log = sa.Table(
    "reflexion_log",
    metadata,
    sa.Column("reflexion_id", AutoId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Text, nullable=False, unique=True),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("narrative", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

workflow_events = sa.Table(
    "workflow_events",
    metadata,
    sa.Column("event_id", AutoId, primary_key=True, autoincrement=True),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("payload_json", sa.JSON),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.CheckConstraint(
        "event_type IN ('workflow.completed', 'workflow.failed')", name="event_type"
    ),
    sa.UniqueConstraint("run_id", "event_type"),
)

workflow_verify_results = sa.Table(
    "workflow_verify_results",
    metadata,
    sa.Column("verify_id", AutoId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("check_name", sa.Text, nullable=False),
    sa.Column("expected", sa.JSON),
    sa.Column("observed", sa.JSON),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "run_id"),
)

# --- the trend (issue: backfillable daily summary) -----------------------------------------------

SUMMARY_TIERS = (1, 2, 3, 4)
Ratio = sa.Numeric(9, 1)  # KPI days and percentages, one decimal

ar_aging_summary = sa.Table(
    "ar_aging_summary",
    metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("currency", sa.CHAR(3), primary_key=True),
    sa.Column("customers_with_open", sa.Integer, nullable=False),
    sa.Column("customers_overdue", sa.Integer, nullable=False),
    *aging_money_columns(),
    *[
        column
        for tier in SUMMARY_TIERS
        for column in (
            sa.Column(f"tier_{tier}_customers", sa.Integer, nullable=False),
            sa.Column(f"tier_{tier}_cents", Money, nullable=False),
        )
    ],
    sa.Column("actions_staged", sa.Integer, nullable=False),
    sa.Column("actions_applied", sa.Integer, nullable=False),
    sa.Column("credit_sales_3m_cents", Money, nullable=False),
    # the KPIs on net receivables (ar_pipeline.rules.kpis); the two net bases below are null on rows
    # built before revision 0008
    sa.Column("net_current_cents", Money),
    sa.Column("net_over_90_cents", Money),
    sa.Column("dso_days", Ratio),
    sa.Column("best_possible_dso_days", Ratio),
    sa.Column("average_days_delinquent", Ratio),
    sa.Column("cei_pct", Ratio),
    sa.Column("over_90_pct", Ratio),
    # the same on open items alone, unapplied credit left aside
    sa.Column("dso_gross_days", Ratio),
    sa.Column("cei_gross_pct", Ratio),
    sa.Column("over_90_gross_pct", Ratio),
    # Alga PSA source: service periods due for invoicing and not invoiced, kept apart from AR
    # (null on days without a service-period assessment)
    sa.Column("unbilled_cents", Money),
    sa.Column("unbilled_periods", sa.Integer),
    *aging_money_checks(),
)

# --- the collector's worklist: whom to call first, per day and currency (rules/worklist.py) -----

collection_worklist = sa.Table(
    "collection_worklist",
    metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("currency", sa.CHAR(3), primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("rank", sa.Integer, nullable=False),  # 1 = call first, within the currency
    sa.Column("customer_name", sa.Text, nullable=False),
    sa.Column("expected_recovery_cents", Money, nullable=False),
    sa.Column("dunnable_cents", Money, nullable=False),
    sa.Column("overdue_cents", Money, nullable=False),  # undisputed, unheld overdue open items
    sa.Column("payer_factor", sa.Float, nullable=False),  # a ratio, not money
    sa.Column("promise_factor", sa.Float, nullable=False),  # promises kept: 1 = no broken one
    sa.Column("last_contact_at", Timestamp),  # last letter applied, promise or hold recorded
    sa.Column("reason", sa.Text, nullable=False),
    sa.CheckConstraint("expected_recovery_cents >= 0", name="expected_not_negative"),
    sa.CheckConstraint(
        "expected_recovery_cents <= dunnable_cents", name="expected_within_dunnable"
    ),
    sa.Index(None, "as_of", "currency", "rank"),
)

# --- the run's invoice balances, computed once per ar_aging run and read by tiering and staging;
# kept for the last few run dates only (ar_pipeline.rules.aging.write_snapshot) ---------------

aging_snapshots = sa.Table(
    "aging_snapshots",
    metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("written_at", Timestamp, nullable=False),
)

aging_open_items = sa.Table(
    "aging_open_items",
    metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("customer_name", sa.Text, nullable=False),
    sa.Column("invoice_number", sa.Text, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("balance_cents", Money, nullable=False),  # > 0 open item, < 0 overpaid
    sa.Column("days_overdue", sa.Integer, nullable=False),
    sa.Column("bucket", sa.Text, nullable=False),
    sa.Column("disputed", sa.Boolean, nullable=False),
    sa.Index(None, "as_of", "customer_id"),
)

aging_credits = sa.Table(
    "aging_credits",
    metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("currency", sa.CHAR(3), primary_key=True),
    sa.Column("unapplied_credit_cents", Money, nullable=False),
)


# --- incremental balances (docs/design.md, Aging: incremental balances) ---------------------------

# The ledger's arrival order: every write to invoices or payments adds, in the same transaction,
# the settlement keys of the rows it inserted, changed or deleted (written by the database's
# triggers, revision 0016), or a writer's entry for whole customers or for "anything" (a bulk
# load or a replacement of the whole ledger). ``seq`` only grows, so it orders arrivals
# whatever the rows' business dates (ar_pipeline.rules.incremental).
ledger_changes = sa.Table(
    "ledger_changes",
    metadata,
    sa.Column("seq", AutoId, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.Text),
    sa.Column("recorded_at", Timestamp, nullable=False),
    # what changed (ar_pipeline.store.journal): 'invoice' the settlement key of invoice_id,
    # 'account' customer_id's rows that name no invoice, 'customer' every row of customer_id,
    # 'all' anything (a bulk load: the next run recomputes everything)
    sa.Column("scope", sa.Text, nullable=False, server_default="customer"),
    sa.Column("invoice_id", sa.Text),
    sa.CheckConstraint("scope IN ('invoice', 'account', 'customer', 'all')", name="scope"),
)
# The entries for "anything": SQLite's journaling triggers (revision 0016) look for one pending
# on every row they journal.
sa.Index(
    "ix_ledger_changes_all",
    ledger_changes.c.seq,
    sqlite_where=ledger_changes.c.scope == "all",
    postgresql_where=ledger_changes.c.scope == "all",
)

# The incremental state: every non-zero invoice balance and on-account credit as of
# ``balance_state.as_of``, which covers the journal up to ``balance_state.watermark``.
ledger_balances = sa.Table(
    "ledger_balances",
    metadata,
    sa.Column("invoice_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("invoice_number", sa.Text, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("disputed", sa.Boolean, nullable=False),
    sa.Column("balance_cents", Money, nullable=False),  # > 0 open item, < 0 overpaid
    sa.Index(None, "customer_id"),
)

# Unapplied credit per settlement key (ar_pipeline.rules.settlement_keys): one row per group of
# a customer's settlements in one currency naming the invoice ``names`` (NULL: naming none) that
# applies to no invoice and does not net to zero. A customer's credit is the sum of its rows.
ledger_credits = sa.Table(
    "ledger_credits",
    metadata,
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("names", sa.Text),
    sa.Column("unapplied_credit_cents", Money, nullable=False),
    sa.Index(None, "customer_id"),
    sa.Index(None, "names"),
)

# The ledger check's findings as of ``balance_state.as_of`` (ar_pipeline.rules.ledger_sanity
# .findings), kept up to date with the balances, key by key: a finding's invoice_id (NULL: its
# customer's account) is its settlement key.
ledger_findings = sa.Table(
    "ledger_findings",
    metadata,
    sa.Column("customer_id", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("row_kind", sa.Text, nullable=False),
    sa.Column("row_id", sa.Text, nullable=False),
    sa.Column("invoice_id", sa.Text),
    sa.Column("currency", sa.Text),
    sa.Column("amount_cents", Money),
    sa.Column("net_cents", Money),
    sa.Column("other", sa.Text),
    sa.Index(None, "customer_id"),
    sa.Index(None, "invoice_id"),
)

balance_state = sa.Table(
    "balance_state",
    metadata,
    sa.Column("state_id", sa.Integer, primary_key=True),  # always 1: one state
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("watermark", sa.BigInteger, nullable=False),  # last ledger_changes.seq applied
    sa.Column("rules_version", sa.Integer, nullable=False),
    sa.Column("invoice_rows", sa.BigInteger, nullable=False),  # ledger row counts it saw
    sa.Column("payment_rows", sa.BigInteger, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),  # how it was last brought up to date
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.CheckConstraint("state_id = 1", name="single_row"),
    sa.CheckConstraint("mode IN ('full', 'incremental')", name="mode"),
)


# --- Alga PSA source: health of its recurring service periods, judged per run date ----------------

service_period_coverage = sa.Table(
    "service_period_coverage",
    metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("schedule_key", sa.Text, primary_key=True),
    sa.Column("live_periods", sa.Integer, nullable=False),
    sa.Column("future_periods", sa.Integer, nullable=False),
    sa.Column("furthest_end", sa.Date),
    sa.Column("target_horizon_end", sa.Date, nullable=False),
    sa.Column("replenish_before", sa.Date, nullable=False),
    sa.Column("meets_target_horizon", sa.Boolean, nullable=False),
    sa.Column("needs_replenishment", sa.Boolean, nullable=False),
)

service_period_continuity = sa.Table(
    "service_period_continuity",
    metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("schedule_key", sa.Text, nullable=False),
    sa.Column("issue", sa.Text, nullable=False),
    sa.Column("previous_record_id", sa.Text),
    sa.Column("previous_period_key", sa.Text),
    sa.Column("covered_until", sa.Date, nullable=False),
    sa.Column("record_id", sa.Text, primary_key=True),
    sa.Column("period_key", sa.Text, nullable=False),
    sa.Column("service_period_start", sa.Date, nullable=False),
    sa.Column("days", sa.Integer, nullable=False),
    sa.CheckConstraint("issue IN ('gap', 'overlap')", name="issue"),
)

unbilled_service_periods = sa.Table(
    "unbilled_service_periods",
    metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("record_id", sa.Text, primary_key=True),
    sa.Column("schedule_key", sa.Text, nullable=False),
    sa.Column("period_key", sa.Text, nullable=False),
    sa.Column("lifecycle_state", sa.Text, nullable=False),
    sa.Column("service_period_start", sa.Date, nullable=False),
    sa.Column("service_period_end", sa.Date, nullable=False),
    sa.Column("invoice_window_end", sa.Date, nullable=False),
    sa.Column("days_since_window_closed", sa.Integer, nullable=False),
    sa.Column("obligation_id", sa.Text),
    sa.Column("currency", sa.CHAR(3)),
    sa.Column("amount_cents", Money),  # null: the contract line gives no amount
)
