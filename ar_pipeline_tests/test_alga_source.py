"""The Alga PSA source: the mapping onto the ledger contract, the aging it gives, the health of
the recurring service periods, and ``ar-pipeline run`` on it.

Alga is always PostgreSQL (``alga_url``); the pipeline's own database runs on SQLite and on
PostgreSQL (``database_url``). Every expected figure is worked out by hand from
``ar_pipeline.sources.alga_fixture`` (as of 2026-03-31, business time zone America/New_York),
whose DDL carries Alga's real constraints and whose rows are shaped as Alga's code writes them.
"""

import datetime as dt
import re
import uuid

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ar_pipeline.actions.approvals import approve
from ar_pipeline.actions.levers import record_hold
from ar_pipeline.cli import main
from ar_pipeline.definitions import build_definitions
from ar_pipeline.defs.sensors import approved_since
from ar_pipeline.rules import aging, incremental
from ar_pipeline.rules.views import upgrade_database
from ar_pipeline.settings import SettingsError, load_settings
from ar_pipeline.sources.alga_fixture import (
    ACME,
    AS_OF,
    BETA,
    DELTA,
    EPSILON,
    GAMMA,
    LINE_BACKUP,
    LINE_OK,
    TENANT,
    TIMEZONE,
    allocation_uuid,
    credit_uuid,
    invoice_uuid,
    payment_uuid,
)
from ar_pipeline.sources.alga_psa import (
    AlgaSourceError,
    _check_columns,
    alga_engine,
    sync_ledger,
)
from ar_pipeline.sources.service_periods import (
    CoveragePolicy,
    stage_repair_plans,
    write_service_period_health,
)
from ar_pipeline.store.database import get_engine
from ar_pipeline.store.schema import (
    ar_aging,
    customers,
    invoice_holds,
    invoices,
    ledger_changes,
    payments,
    proposed_actions,
    service_period_continuity,
    service_period_coverage,
    sync_log,
    unbilled_service_periods,
)

D = dt.date
BACKFILL_KEY = f"schedule:{TENANT}:contract_line:{LINE_BACKUP}:contract:arrears"


@pytest.fixture
def mirrored(alga_url, database_url):
    """The pipeline's database with a fresh copy of the fixture tenant's ledger."""
    engine = get_engine(database_url)
    upgrade_database(engine)
    counts = sync_ledger(alga_engine(alga_url), engine, TENANT, TIMEZONE)
    return engine, counts


def test_the_tenant_ledger_is_mapped_onto_the_contract(mirrored):
    engine, counts = mirrored
    assert (counts.customers, counts.invoices, counts.payments) == (5, 7, 17)
    with engine.connect() as connection:
        people = {
            r.customer_id: (r.customer_name, r.billing_email, r.sales_rep_email)
            for r in connection.execute(sa.select(customers))
        }
        bills = {
            r.invoice_number: (r.kind, r.issue_date, r.due_date, r.currency, r.amount_cents)
            for r in connection.execute(sa.select(invoices))
        }
        paid = {
            r.payment_id: (r.customer_id, r.invoice_id, r.received_date, r.currency,
                           r.amount_cents)
            for r in connection.execute(sa.select(payments))
        }  # fmt: skip
        synced = connection.execute(sa.select(sync_log)).one()
    # Alga's recipient order: Acme's billing contact (not its billing e-mail), Beta's billing
    # e-mail (its contact is inactive), Delta's active billing location (its billing e-mail
    # "n/a" is no address, the older location is inactive), Epsilon's default location (its
    # billing location has no e-mail), Gamma nothing
    assert people == {
        ACME: ("Acme GmbH", "ada@acme.example", "rita.rep@vendor.example"),
        BETA: ("Beta AG", "billing@beta.example", None),
        GAMMA: ("Gamma Ltd", None, None),
        DELTA: ("Delta SARL", "invoices@delta.example", None),
        EPSILON: ("Epsilon Oy", "office@epsilon.example", None),
    }
    assert dict(counts.recipient_sources) == {
        "billing_contact": 1, "billing_email": 1, "billing_location": 1,
        "default_location": 1, "none": 1,
    }  # fmt: skip
    # receivables only: no voided A-1004, no prepayments A-P1 (paid) and A-P2 (unpaid), no
    # credit notes A-CN1 and A-1009, no draft A-1007, no A-1010 (never finalized), nothing of
    # the other tenant. Midnight-UTC dates are their UTC date although New York is 4-5 hours
    # behind (A-1008's 2026-04-01 would be 31 March there); A-1002's 23:30 UTC is an instant,
    # 18:30 on 31 January in New York.
    assert bills == {
        "A-1001": ("invoice", D(2025, 12, 1), D(2025, 12, 31), "EUR", 500000),
        "A-1002": ("invoice", D(2026, 1, 31), D(2026, 3, 2), "EUR", 120000),
        "A-1003": ("invoice", D(2026, 2, 10), D(2026, 3, 12), "EUR", 80000),
        "A-1005": ("invoice", D(2026, 3, 1), D(2026, 3, 16), "EUR", 150000),
        "A-1006": ("invoice", D(2025, 10, 1), D(2025, 10, 31), "USD", 3000000),
        "A-1008": ("invoice", D(2026, 4, 1), D(2026, 5, 1), "EUR", 45000),
        "D-1": ("invoice", D(2026, 2, 1), D(2026, 3, 3), "EUR", 60000),
    }
    i1, i2, i7 = invoice_uuid(1), invoice_uuid(2), invoice_uuid(7)
    a1, a2 = allocation_uuid(1), allocation_uuid(2)
    c = credit_uuid
    # every payment row but the failed and the pending one: the refund and the reversal are
    # negative rows; the prepayment's payment adds nothing (its credit C2 is the money); the
    # undated payment on D-1 is dated by created_at (16:00 UTC = 12:00 in New York). Stripe's
    # 02:30 UTC is 22:30 on 30 March in New York, the reversal's 15:00 UTC 11:00 on 31 March.
    assert paid == {
        payment_uuid(1): (ACME, i1, D(2026, 1, 15), "EUR", 200000),
        payment_uuid(9): (ACME, i1, D(2026, 2, 10), "EUR", -30000),
        payment_uuid(2): (ACME, i2, D(2026, 3, 30), "EUR", 30000),
        payment_uuid(10): (ACME, i2, D(2026, 3, 31), "EUR", -30000),
        payment_uuid(3): (ACME, i2, D(2026, 4, 1), "EUR", 10000),
        payment_uuid(6): (BETA, invoice_uuid(4), D(2026, 3, 20), "EUR", 80000),
        payment_uuid(11): (DELTA, invoice_uuid(15), D(2026, 3, 15), "EUR", 10000),
        # credit applied on the day of the allocation, not on the invoice date
        f"credit-applied:{a1}": (ACME, i2, D(2026, 2, 20), "EUR", 20000),
        f"credit-applied:{a2}": (BETA, i7, D(2026, 3, 25), "EUR", 15000),
        # the credit ledger: issued, drawn, expired (C5 on its expiration date)
        f"credit:{c(1)}": (ACME, None, D(2026, 1, 20), "EUR", 20000),
        f"credit-drawn:{a1}": (ACME, None, D(2026, 2, 20), "EUR", -20000),
        f"credit:{c(2)}": (BETA, None, D(2026, 1, 25), "EUR", 40000),
        f"credit:{c(3)}": (BETA, None, D(2026, 3, 5), "EUR", 25000),
        f"credit:{c(4)}": (BETA, None, D(2026, 3, 10), "EUR", 5000),
        f"credit:{c(5)}": (BETA, None, D(2025, 6, 1), "EUR", 10000),
        f"credit-expired:{c(5)}": (BETA, None, D(2026, 3, 1), "EUR", -10000),
        f"credit-drawn:{a2}": (BETA, None, D(2026, 3, 25), "EUR", -15000),
    }
    # the two rows the mapping cannot take are skipped and named, the copy went on
    assert counts.unmapped_total == 2
    assert [(u.alga_table, u.label, u.reason) for u in counts.unmapped] == [
        ("credit_tracking", "EUR 7700.00", "credit with no client"),
        ("invoices", "A-1010", "not finalized (finalized_at empty) but status sent"),
    ]
    assert (synced.sync_type, synced.status, synced.rows_synced) == (
        "scheduled_hot_customer_payments", "ok", 29,
    )  # fmt: skip


def aging_table(connection, as_of):
    """The day's ``ar_aging`` rows as written, by customer and currency."""
    return {
        (r.customer_id, r.currency): (
            r.total_open_cents, r.overdue_cents, r.current_cents, r.days_1_30_cents,
            r.days_31_60_cents, r.days_61_90_cents, r.days_over_90_cents,
            r.unapplied_credit_cents, r.dunnable_cents, r.max_days_overdue,
            r.oldest_overdue_invoice_id, r.open_item_count,
        )
        for r in connection.execute(sa.select(ar_aging).where(ar_aging.c.as_of == as_of))
    }  # fmt: skip


def aging_rows(engine, as_of):
    with engine.begin() as connection:
        aging.write_ar_aging(connection, as_of)
        return aging_table(connection, as_of)


def test_aging_of_the_tenant_is_worked_out_by_hand(mirrored):
    engine, _ = mirrored
    assert aging_rows(engine, AS_OF) == {
        # A-1001: 5,000.00 - 2,000.00 paid + 300.00 refunded = 3,300.00, due 2025-12-31:
        # 90 days (61-90). A-1002: 1,200.00 - 200.00 credit - 300.00 paid + 300.00 reversed =
        # 1,000.00, due 03-02: 29 days (1-30); the 100.00 paid on 04-01 does not count yet, the
        # failed and pending payments never do. The credit note's 200.00 went to A-1002: no
        # credit left. A-1008 is dated 04-01: not yet.
        (ACME, "EUR"): (430000, 430000, 0, 100000, 0, 330000, 0, 0, 430000, 90,
                        invoice_uuid(1), 2),
        # A-1005: 1,500.00 - 150.00 credit = 1,350.00, due 03-16: 15 days; A-1003 paid. Credit:
        # 400.00 (A-P1) + 250.00 (A-P2, unpaid) + 50.00 (A-1009) + 100.00 (expired 03-01)
        # - 100.00 expired - 150.00 drawn = 550.00; dunnable 1,350.00 - 550.00 = 800.00
        (BETA, "EUR"): (135000, 135000, 0, 135000, 0, 0, 0, 55000, 80000, 15,
                        invoice_uuid(7), 1),
        # A-1006: 30,000.00 USD due 2025-10-31: 151 days
        (GAMMA, "USD"): (3000000, 3000000, 0, 0, 0, 0, 3000000, 0, 3000000, 151,
                         invoice_uuid(8), 1),
        # D-1: 600.00 - 100.00 (the undated payment, created 03-15) = 500.00, due 03-03: 28 days
        (DELTA, "EUR"): (50000, 50000, 0, 50000, 0, 0, 0, 0, 50000, 28, invoice_uuid(15), 1),
    }  # fmt: skip


def test_earlier_days_ignore_later_credit_expiry_and_applications(mirrored):
    engine, _ = mirrored
    beta = {k: v for k, v in aging_rows(engine, D(2026, 2, 28)).items() if k[0] == BETA}
    # 28 February: A-1003 (800.00, due 03-12) is not due yet, A-1005 not issued; the credit is
    # A-P1's 400.00 and the 100.00 that only expires on 1 March; A-P2, A-1009 and the
    # application to A-1005 come later
    assert beta == {
        (BETA, "EUR"): (80000, 0, 80000, 0, 0, 0, 0, 50000, 0, 0, None, 1),
    }
    beta = {k: v for k, v in aging_rows(engine, D(2026, 3, 20)).items() if k[0] == BETA}
    # 20 March: A-1003 paid that day; A-1005 still 1,500.00 (the credit is applied on 03-25),
    # 4 days overdue; credit 400.00 + 250.00 + 50.00 (the 100.00 expired) = 700.00
    assert beta == {
        (BETA, "EUR"): (150000, 150000, 0, 150000, 0, 0, 0, 70000, 80000, 4,
                        invoice_uuid(7), 1),
    }  # fmt: skip


def test_an_instant_is_dated_in_the_business_time_zone_and_a_date_in_utc(alga_url, database_url):
    """Berlin is ahead of UTC: A-1002's 23:30 UTC is 00:30 on 1 February there, while the
    midnight-UTC values keep their date in any zone."""
    engine = get_engine(database_url)
    upgrade_database(engine)
    sync_ledger(alga_engine(alga_url), engine, TENANT, "Europe/Berlin")
    with engine.connect() as connection:
        dates = dict(
            connection.execute(
                sa.select(invoices.c.invoice_number, invoices.c.issue_date).where(
                    invoices.c.invoice_number.in_(["A-1001", "A-1002", "A-1008"])
                )
            ).all()
        )
        stripe = connection.execute(
            sa.select(payments.c.received_date).where(payments.c.payment_id == payment_uuid(2))
        ).scalar_one()
    assert dates == {"A-1001": D(2025, 12, 1), "A-1002": D(2026, 2, 1), "A-1008": D(2026, 4, 1)}
    assert stripe == D(2026, 3, 31)  # 02:30 UTC is 04:30 in Berlin


def test_a_resync_replaces_the_copy_and_keeps_what_the_pipeline_owns(mirrored, alga_url):
    engine, _ = mirrored
    with engine.begin() as connection:
        connection.execute(
            customers.update()
            .where(customers.c.customer_id == GAMMA)
            .values(service_hold=True, dunning_paused_until=D(2026, 4, 30))
        )
    counts = sync_ledger(alga_engine(alga_url), engine, TENANT, TIMEZONE)
    with engine.connect() as connection:
        gamma = connection.execute(
            sa.select(customers).where(customers.c.customer_id == GAMMA)
        ).one()
        assert connection.execute(sa.select(sa.func.count()).select_from(invoices)).scalar() == 7
    assert counts.invoices == 7
    assert (gamma.service_hold, gamma.dunning_paused_until) == (True, D(2026, 4, 30))


def beta_pays_a1005_in_alga(connection, evening: bool = False):
    """Beta pays what is left of A-1005 (1,350.00) on 03-31, recorded in Alga. ``evening``: at
    21:30 New York time, recorded by hand without a date: Alga's InvoiceService.recordPayment
    writes the UTC date of the moment, 04-01 (it is 01:30 UTC), as ``payment_date``."""
    payment_date, created_at = (
        ("2026-04-01 00:00+00", "2026-04-01 01:30+00") if evening
        else ("2026-03-31 00:00+00", "2026-03-31 15:00+00")
    )  # fmt: skip
    connection.execute(
        sa.text(
            "INSERT INTO invoice_payments (tenant, payment_id, invoice_id, amount, "
            "payment_date, created_at) VALUES (:t, :p, :i, 135000, :d, :c)"
        ),
        {"t": TENANT, "p": "20000000-0000-0000-0000-000000000099", "i": invoice_uuid(7),
         "d": payment_date, "c": created_at},
    )  # fmt: skip


def test_a_payment_recorded_in_the_evening_counts_on_the_day_it_was_recorded(
    alga_url, database_url
):
    """Alga counts a payment in the balance due the moment it is recorded; a payment recorded
    at 21:30 in New York on 03-31 carries Alga's UTC date 04-01, yet it was received on 03-31
    there: a payment is never dated after the day it was recorded (business time zone)."""
    writer = sa.create_engine(alga_url)
    with writer.begin() as connection:
        beta_pays_a1005_in_alga(connection, evening=True)
    writer.dispose()
    engine = get_engine(database_url)
    upgrade_database(engine)
    sync_ledger(alga_engine(alga_url), engine, TENANT, TIMEZONE)
    with engine.connect() as connection:
        received = connection.execute(
            sa.select(payments.c.received_date).where(
                payments.c.payment_id == "20000000-0000-0000-0000-000000000099"
            )
        ).scalar_one()
    assert received == D(2026, 3, 31)


def journal(engine):
    c = ledger_changes.c
    with engine.connect() as connection:
        return [
            (r.scope, r.customer_id, r.invoice_id)
            for r in connection.execute(
                sa.select(c.scope, c.customer_id, c.invoice_id).order_by(c.seq)
            )
        ]


def mirror_rows(engine):
    with engine.connect() as connection:
        return {
            table.name: sorted(tuple(r) for r in connection.execute(sa.select(table)))
            for table in (invoices, payments)
        }


def test_a_resync_writes_only_what_changed_and_the_balances_follow_incrementally(
    mirrored, alga_url
):
    """The first copy is journaled as a bulk load. A copy of an Alga that did not change writes
    nothing, so nothing is journaled. After Beta pays A-1005 and Gamma's A-1006 is voided in
    Alga, the copy inserts that one payment row and deletes that one invoice, and the
    database's journal names those two keys alone: the next aging refreshes them and its
    figures are the full recomputation's."""
    engine, _ = mirrored
    assert journal(engine) == [("all", None, None)]
    with engine.begin() as connection:
        _, first = incremental.write_ar_aging(connection, AS_OF, setting="on")
    assert first.mode == "full"
    before = mirror_rows(engine)

    sync_ledger(alga_engine(alga_url), engine, TENANT, TIMEZONE)
    assert journal(engine) == [("all", None, None)]
    assert mirror_rows(engine) == before

    writer = sa.create_engine(alga_url)
    with writer.begin() as connection:  # Beta pays what is left of A-1005, in Alga
        beta_pays_a1005_in_alga(connection)
        # and Gamma's A-1006 is voided, as A-1004 was: it leaves the receivables
        connection.execute(
            sa.text("UPDATE invoices SET status = 'cancelled' WHERE invoice_id = :i"),
            {"i": invoice_uuid(8)},
        )
    writer.dispose()
    sync_ledger(alga_engine(alga_url), engine, TENANT, TIMEZONE)
    assert sorted(journal(engine)[1:]) == [
        ("invoice", BETA, invoice_uuid(7)), ("invoice", GAMMA, invoice_uuid(8))
    ]
    after = mirror_rows(engine)
    assert [r[0] for r in before["invoices"] if r not in after["invoices"]] == [invoice_uuid(8)]
    assert set(after["invoices"]) < set(before["invoices"])
    (new_payment,) = set(after["payments"]) - set(before["payments"])
    assert set(before["payments"]) <= set(after["payments"])
    assert new_payment[1:] == (BETA, invoice_uuid(7), D(2026, 3, 31), "EUR", 135000)

    with engine.begin() as connection:
        _, refresh = incremental.write_ar_aging(connection, AS_OF, setting="on")
        from_state = aging_table(connection, AS_OF)
        aging.write_ar_aging(connection, AS_OF)  # every balance from the ledger's events
        assert aging_table(connection, AS_OF) == from_state
    assert (refresh.mode, refresh.keys_recomputed) == ("incremental", 2)
    # Beta: A-1005's 1,350.00 paid; the 550.00 of credit is left, nothing open or dunnable.
    # Gamma: nothing left at all. Acme and Delta as before.
    assert from_state[(BETA, "EUR")][:3] == (0, 0, 0)
    assert from_state[(BETA, "EUR")][7:9] == (55000, 0)
    assert (GAMMA, "USD") not in from_state
    assert from_state[(ACME, "EUR")][:2] == (430000, 430000)
    assert from_state[(DELTA, "EUR")][:2] == (50000, 50000)


def test_a_held_invoice_voided_in_alga_is_kept_void_and_a_changed_one_updated_in_place(
    mirrored, alga_url
):
    """A collector holds Gamma's A-1006; then, in Alga, A-1006 is voided and A-1005's due date
    moves from 03-16 to 03-26. The next copy updates A-1005 in place, and keeps A-1006 (the
    hold names it) as void instead of deleting it: the copy does not fail on the hold, the
    hold stays on record, and the aging no longer counts A-1006."""
    engine, _ = mirrored
    with engine.begin() as connection:
        hold = record_hold(
            connection, invoice_id=invoice_uuid(8), reason="dispute", held_until=D(2026, 4, 30),
            recorded_by="carol", today=AS_OF, now=dt.datetime(2026, 3, 31, 9, tzinfo=dt.UTC),
        )  # fmt: skip
        incremental.write_ar_aging(connection, AS_OF, setting="on")  # the first copy consumed
    before = mirror_rows(engine)
    writer = sa.create_engine(alga_url)
    with writer.begin() as connection:
        connection.execute(
            sa.text("UPDATE invoices SET status = 'cancelled' WHERE invoice_id = :i"),
            {"i": invoice_uuid(8)},
        )
        connection.execute(
            sa.text("UPDATE invoices SET due_date = '2026-03-26 00:00+00' WHERE invoice_id = :i"),
            {"i": invoice_uuid(7)},
        )
    writer.dispose()
    sync_ledger(alga_engine(alga_url), engine, TENANT, TIMEZONE)
    # (SQLite's row-level triggers journal an update's key before and after: the same key)
    assert sorted(set(journal(engine)[1:])) == [
        ("invoice", BETA, invoice_uuid(7)), ("invoice", GAMMA, invoice_uuid(8))
    ]
    after = {r[0]: r for r in mirror_rows(engine)["invoices"]}
    was = {r[0]: r for r in before["invoices"]}
    assert set(after) == set(was)
    changed = {k for k in after if after[k] != was[k]}
    assert changed == {invoice_uuid(7), invoice_uuid(8)}
    assert (after[invoice_uuid(8)][4], after[invoice_uuid(7)][6]) == ("void", D(2026, 3, 26))
    with engine.connect() as connection:
        held = connection.execute(
            sa.select(invoice_holds.c.invoice_id).where(invoice_holds.c.hold_id == hold)
        ).scalar_one()
    assert held == invoice_uuid(8)
    rows = aging_rows(engine, AS_OF)
    assert (GAMMA, "USD") not in rows
    # Beta's A-1005: 1,350.00 open, now due 03-26: 5 days overdue
    assert rows[(BETA, "EUR")] == (135000, 135000, 0, 135000, 0, 0, 0, 55000, 80000, 5,
                                   invoice_uuid(7), 1)  # fmt: skip

    # copied again, nothing changed: the void row stays as it is, nothing is journaled
    entries = len(journal(engine))
    sync_ledger(alga_engine(alga_url), engine, TENANT, TIMEZONE)
    assert len(journal(engine)) == entries
    assert {r[0]: r for r in mirror_rows(engine)["invoices"]} == after


def test_a_mapping_that_leaves_out_a_column_is_named():
    with pytest.raises(AlgaSourceError, match="missing disputed; not columns of it: none"):
        _check_columns("invoices", invoices, [c.name for c in invoices.c if c.name != "disputed"])


def test_the_alga_connection_cannot_write(alga_url):
    with pytest.raises(sa.exc.DBAPIError, match="read-only"):
        with alga_engine(alga_url).begin() as connection:
            connection.execute(sa.text("DELETE FROM invoice_payments"))


def test_alga_settings_are_checked_and_named():
    base = {"AR_SOURCE": "alga_psa", "AR_ALGA_TENANT": TENANT,
            "AR_ALGA_DATABASE_URL": "postgresql+psycopg://alga@db/alga"}  # fmt: skip
    assert load_settings(base).alga.horizon_days == 180
    for change, named in [
        ({"AR_SOURCE": "quickbooks"}, "AR_SOURCE"),
        ({"AR_ALGA_DATABASE_URL": ""}, "AR_ALGA_DATABASE_URL"),
        ({"AR_ALGA_DATABASE_URL": "sqlite:///x.db"}, "AR_ALGA_DATABASE_URL"),
        ({"AR_DATABASE_URL": "postgresql+psycopg2://ar:pw@db:5432/alga"}, "AR_ALGA_DATABASE_URL"),
        ({"AR_ALGA_TENANT": "acme"}, "AR_ALGA_TENANT"),
        ({"AR_ALGA_HORIZON_DAYS": "soon"}, "AR_ALGA_HORIZON_DAYS"),
        ({"AR_ALGA_REPLENISH_DAYS": "180"}, "AR_ALGA_REPLENISH_DAYS"),
    ]:
        with pytest.raises(SettingsError, match=named):
            load_settings({**base, **change})


def test_service_period_health_finds_the_planted_problems_and_nothing_else(alga_url, database_url):
    engine = get_engine(database_url)
    upgrade_database(engine)
    with engine.begin() as connection:
        counts = write_service_period_health(
            alga_engine(alga_url), connection, TENANT, AS_OF, CoveragePolicy(180, 45)
        )
        coverage = {
            r.schedule_key: (r.live_periods, r.future_periods, r.furthest_end,
                             r.meets_target_horizon, r.needs_replenishment)
            for r in connection.execute(sa.select(service_period_coverage))
        }  # fmt: skip
        horizons = set(
            connection.execute(
                sa.select(
                    service_period_coverage.c.target_horizon_end,
                    service_period_coverage.c.replenish_before,
                )
            )
        )
        continuity = [
            (r.schedule_key, r.issue, r.previous_period_key, r.covered_until, r.period_key,
             r.service_period_start, r.days)
            for r in connection.execute(
                sa.select(service_period_continuity).order_by(
                    service_period_continuity.c.schedule_key
                )
            )
        ]  # fmt: skip
        unbilled = {
            (r.schedule_key, r.period_key): (r.lifecycle_state, r.invoice_window_end,
                                             r.days_since_window_closed, r.currency,
                                             r.amount_cents)
            for r in connection.execute(sa.select(unbilled_service_periods))
        }  # fmt: skip
    assert (counts.schedules, counts.continuity_issues, counts.unbilled_periods) == (6, 2, 4)
    # 2026-03-31 + 180 days = 2026-09-27; + 45 days = 2026-05-15
    assert horizons == {(D(2026, 9, 27), D(2026, 5, 15))}
    assert coverage == {
        # Jan-Oct; the superseded June revision and the archived row are not live
        "schedule:ok": (10, 8, D(2026, 11, 1), True, False),
        "schedule:low": (4, 2, D(2026, 5, 1), False, True),
        "schedule:gap": (11, 9, D(2027, 1, 1), True, False),
        "schedule:overlap": (12, 10, D(2027, 1, 1), True, False),
        "schedule:none": (3, 0, None, False, True),
        # Acme's active Backup contract: a recurring line with no service period at all, under
        # the key Alga would give its schedule
        BACKFILL_KEY: (0, 0, None, False, True),
    }  # the other tenant's schedule is not there
    assert continuity == [
        ("schedule:gap", "gap", "2026-02", D(2026, 3, 1), "2026-04", D(2026, 4, 1), 31),
        ("schedule:overlap", "overlap", "2026-02", D(2026, 3, 1), "2026-03", D(2026, 2, 15), 14),
    ]
    assert unbilled == {
        # the line's base fee, 250.00 a month
        ("schedule:ok", "2026-02"): ("generated", D(2026, 3, 8), 23, "EUR", 25000),
        # billed on A-1004, which was voided afterwards: still billed and linked, invoiced
        # nowhere (reported beside the unbilled work)
        ("schedule:ok", "2026-01"): ("billed", D(2026, 2, 8), 51, "EUR", 25000),
        ("schedule:low", "2026-01"): ("locked", D(2026, 2, 8), 51, None, None),
        # the window [03-24, 03-31) has closed on the as-of date; the line says 100.00, but
        # the contract's pricing schedule makes it 120.00 from 2026-02-01
        ("schedule:overlap", "2026-02"): ("edited", D(2026, 3, 31), 0, "EUR", 12000),
    }

    now = dt.datetime(2026, 3, 31, 6, tzinfo=dt.UTC)
    with engine.begin() as connection:
        assert stage_repair_plans(connection, AS_OF, "run-1", D(2026, 9, 27), now) == 6
        assert stage_repair_plans(connection, AS_OF, "run-2", D(2026, 9, 27), now) == 6
        plans = connection.execute(
            sa.select(proposed_actions.c.status, proposed_actions.c.payload_json)
            .where(proposed_actions.c.action_type == "service_period_repair")
            .order_by(proposed_actions.c.action_id)
        ).all()
    assert [(s, p["schedule_key"], p["kinds"]) for s, p in plans] == [
        ("proposed", BACKFILL_KEY, ["backfill"]),
        ("proposed", "schedule:gap", ["continuity"]),
        ("proposed", "schedule:low", ["replenish"]),
        ("proposed", "schedule:none", ["replenish"]),
        ("proposed", "schedule:ok", ["voided_invoice"]),
        ("proposed", "schedule:overlap", ["continuity"]),
    ]  # fmt: skip (the rerun staged nothing twice)
    assert "nothing covers 2026-03-01 to 2026-04-01" in plans[1][1]["body"]
    assert "no service periods at all: backfill it" in plans[0][1]["body"]
    assert "period 2026-01 (2026-01-01 to 2026-02-01) is billed and linked to an invoice " \
        "that was voided" in plans[4][1]["body"]  # fmt: skip


@pytest.fixture
def alga_env(alga_url, database_url, monkeypatch, tmp_path) -> dict[str, str]:
    env = {
        "AR_SOURCE": "alga_psa", "AR_ALGA_DATABASE_URL": alga_url, "AR_ALGA_TENANT": TENANT,
        "AR_TIMEZONE": TIMEZONE, "AR_DATABASE_URL": database_url,
        "AR_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "AR_TREND_START_DATE": "2026-03-01",
    }  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_run_on_the_alga_source(alga_env, database_url, capsys):
    """Done when: ``ar-pipeline run`` on the Alga source produces aging, tiers and proposals,
    and the service-period checks report the planted problems and nothing else."""
    assert main(["db", "upgrade"]) == 0
    assert main(["run", "--as-of", "2026-03-31"]) == 0
    out = capsys.readouterr().out
    assert "6,150.00 EUR" in out  # total open EUR: 4,300.00 + 1,350.00 + 500.00
    assert "5,600.00 EUR" in out  # dunnable EUR: 4,300.00 + 800.00 + 500.00
    assert "30,000.00 USD" in out
    assert re.search(r"Tier 1 reminder\s+4 customers", out)
    assert "Alga rows mapped: WARN: 2 Alga row(s) skipped, not mapped: credit_tracking" in out
    # where each letter's address came from, in Alga's recipient order
    assert "Acme GmbH: ada@acme.example (Alga: billing contact)" in out
    assert "Beta AG: billing@beta.example (billing e-mail)" in out
    assert "Delta SARL: invoices@delta.example (Alga: billing location)" in out
    assert "Service periods replenished: WARN: 3 schedule(s) need replenishment: " \
        f"{BACKFILL_KEY}, schedule:low, schedule:none" in out  # fmt: skip
    assert "Service periods on voided invoices: WARN: 1 schedule(s) with periods billed on a " \
        "voided invoice: schedule:ok" in out  # fmt: skip
    assert "Service period continuity: WARN: 2 schedule(s) with gaps or overlaps: " \
        "schedule:gap, schedule:overlap" in out  # fmt: skip
    assert "Credit on account (Alga PSA): OK: no customer has negative unapplied credit" in out
    # unbilled, apart from the AR above: base fees 250.00 + 120.00 (pricing schedule)
    assert "base fee 370.00 EUR in 2 period(s)" in out
    assert "1 period(s) whose contract line gives no base fee" in out
    assert "Billed on a voided invoice" in out
    assert "    base fee 250.00 EUR in 1 period(s)" in out
    assert "hourly, usage and product charges, proration and tax are not included" in out

    engine = get_engine(database_url)
    with engine.connect() as connection:
        staged = dict(
            connection.execute(
                sa.select(proposed_actions.c.action_type, sa.func.count())
                .where(proposed_actions.c.status == "proposed")
                .group_by(proposed_actions.c.action_type)
            ).all()
        )
        summary = connection.execute(
            sa.text(
                "SELECT currency, total_open_cents, unbilled_cents, unbilled_periods "
                "FROM ar_aging_summary WHERE as_of = :d ORDER BY currency"
            ),
            {"d": AS_OF},
        ).all()
    # letters to Acme, Beta and Delta; Gamma has no address (cannot contact) but 151 days
    # and 30,000.00 USD open earn it a service hold
    assert staged == {
        "workflow_envelope": 1, "collection_action": 3, "customer_program": 1,
        "service_period_repair": REPAIR_PLANS,
    }  # fmt: skip
    with engine.connect() as connection:
        sources = dict(
            connection.execute(
                sa.select(proposed_actions.c.customer_id, proposed_actions.c.payload_json).where(
                    proposed_actions.c.action_type == "collection_action"
                )
            ).all()
        )
    assert {k: (v["to"], v["to_source"]) for k, v in sources.items()} == {
        ACME: (["ada@acme.example"], "billing_contact"),
        BETA: (["billing@beta.example"], "billing_email"),
        DELTA: (["invoices@delta.example"], "billing_location"),
    }
    # the voided invoice's period is not in the trend's unbilled figure
    assert [tuple(r) for r in summary] == [("EUR", 615000, 37000, 2), ("USD", 3000000, 0, 0)]

    # the approver's page says where each address came from, too
    from ar_pipeline_tests.web_client import make_client, sign_in

    client = make_client(engine)
    sign_in(client, "alice")
    page = client.get("/proposals?type=collection_action").text
    assert "to ada@acme.example (Alga: billing contact)" in page
    assert "to billing@beta.example (billing e-mail)" in page
    assert "to invoices@delta.example (Alga: billing location)" in page


STAGED_AT = dt.datetime(2026, 3, 31, 6, tzinfo=dt.UTC)
REPAIR_PLANS = 6  # backfill, gap, low, none, ok (voided invoice), overlap


@pytest.fixture
def repair_plans_staged(alga_url, database_url):
    """The pipeline's database with the fixture's service periods assessed as of 2026-03-31
    and their repair plans staged, with the schedules' rows from Alga."""
    engine = get_engine(database_url)
    upgrade_database(engine)
    with engine.begin() as connection:
        write_service_period_health(
            alga_engine(alga_url), connection, TENANT, AS_OF, CoveragePolicy()
        )
        stage_repair_plans(connection, AS_OF, "run-1", D(2026, 9, 27), STAGED_AT,
                           alga_engine(alga_url), TENANT)  # fmt: skip
    return engine


def test_an_approved_repair_plan_is_never_applied(repair_plans_staged, alga_url):
    engine, now = repair_plans_staged, STAGED_AT
    with engine.begin() as connection:
        ids = connection.execute(sa.select(proposed_actions.c.action_id)).scalars().all()
        decisions = approve(connection, ids[:3], "alice", {"alice"}, now)
        assert [d.outcome for d in decisions] == ["approved"] * 3
        # the apply sensor asks for nothing: there is nothing to do in the pipeline
        assert approved_since(connection, None, 100) == []
    # the next day's assessment supersedes what is still pending, not what was decided
    with engine.begin() as connection:
        write_service_period_health(
            alga_engine(alga_url), connection, TENANT, D(2026, 4, 1), CoveragePolicy()
        )
        stage_repair_plans(connection, D(2026, 4, 1), "run-2", D(2026, 9, 28), now)
        states = connection.execute(
            sa.select(proposed_actions.c.as_of, proposed_actions.c.status, sa.func.count())
            .group_by(proposed_actions.c.as_of, proposed_actions.c.status)
            .order_by(proposed_actions.c.as_of)
        ).all()
    assert sorted(tuple(s) for s in states) == [
        (AS_OF, "approved", 3), (AS_OF, "superseded", 3), (D(2026, 4, 1), "proposed", 6),
    ]  # fmt: skip


@pytest.mark.parametrize("evening", [False, True], ids=["afternoon", "evening"])
def test_apply_sees_a_payment_recorded_in_alga_after_the_run(
    alga_env, alga_url, database_url, smtp_server, monkeypatch, evening
):
    """The apply job copies the Alga ledger again first: Beta paid in Alga after the daily
    run, so its approved letter is superseded; Acme's goes out, once. In the evening too, when
    Alga dates the payment the next day in UTC."""
    mail = {"AR_APPROVERS": "alice", "AR_MAIL_FROM": "ar@vendor.example",
            "AR_SMTP_HOST": "127.0.0.1", "AR_SMTP_PORT": str(smtp_server.port)}  # fmt: skip
    for name, value in mail.items():
        monkeypatch.setenv(name, value)
    assert main(["db", "upgrade"]) == 0
    assert main(["run", "--as-of", "2026-03-31"]) == 0
    engine = get_engine(database_url)
    with engine.connect() as connection:
        letters = dict(
            connection.execute(
                sa.select(proposed_actions.c.customer_id, proposed_actions.c.action_id).where(
                    proposed_actions.c.action_type == "collection_action"
                )
            ).all()
        )
    ids = [letters[ACME], letters[BETA]]
    assert main(["approvals", "approve", *map(str, ids), "--by", "alice"]) == 0
    writer = sa.create_engine(alga_url)
    with writer.begin() as connection:  # Beta pays what is left of A-1005, in Alga
        beta_pays_a1005_in_alga(connection, evening)
    writer.dispose()

    defs = build_definitions(load_settings())
    config = {"ops": {"apply_approved": {"config": {
        "action_ids": ids, "as_of": "2026-03-31", "retry_delay_seconds": 0.01}}}}  # fmt: skip
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("apply_approved_actions").execute_in_process(
            run_config=config, instance=instance
        )
    assert result.output_for_node("apply_approved") == {"applied": 1, "superseded": 1}
    (received,) = smtp_server.handler.messages
    assert received["rcpt_tos"] == ["ada@acme.example"]
    # only Acme's and Beta's rows were copied again: 2 customers, 3 + 2 invoices, 8 + 9
    # payments (Acme: 5 payment rows, an application, its draw, a credit; Beta: 2 payments,
    # Beta's new one included, an application, its draw, 4 credits, an expiry); Gamma's
    # invoice is still there from the run
    with engine.connect() as connection:
        recheck = connection.execute(
            sa.select(sync_log.c.status, sync_log.c.rows_synced).where(
                sync_log.c.sync_type == "alga_psa_apply_recheck"
            )
        ).all()
        gamma = connection.execute(
            sa.select(sa.func.count()).where(invoices.c.customer_id == GAMMA)
        ).scalar_one()
    assert [tuple(r) for r in recheck] == [("ok", 24)]
    assert gamma == 1


def test_the_documented_read_only_role_is_enough(alga_url, database_url):
    """``sql/alga_psa/read_only_role.sql`` (the README's grants) lets the source do all its
    reading, and nothing more."""
    from ar_pipeline.settings import PROJECT_ROOT

    role = f"ar_reader_{uuid.uuid4().hex[:10]}"
    script = (PROJECT_ROOT / "sql" / "alga_psa" / "read_only_role.sql").read_text()
    owner = sa.create_engine(alga_url)
    with owner.begin() as connection:
        connection.exec_driver_sql(script.replace("ar_pipeline_reader", role))
    reader_url = make_url(alga_url).set(username=role, password="change-me")
    reader_url = reader_url.render_as_string(hide_password=False)
    try:
        engine = get_engine(database_url)
        upgrade_database(engine)
        counts = sync_ledger(alga_engine(reader_url), engine, TENANT, TIMEZONE)
        assert (counts.customers, counts.invoices, counts.payments) == (5, 7, 17)
        assert counts.unmapped_total == 2
        with engine.begin() as connection:
            health = write_service_period_health(
                alga_engine(reader_url), connection, TENANT, AS_OF, CoveragePolicy()
            )
            # the repair plans read every column of the schedules' rows and the obligations
            staged = stage_repair_plans(
                connection, AS_OF, "run-1", D(2026, 9, 27), STAGED_AT,
                source=alga_engine(reader_url), tenant=TENANT,
            )  # fmt: skip
        assert (health.schedules, health.continuity_issues, health.unbilled_periods) == (6, 2, 4)
        assert staged == REPAIR_PLANS
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            with alga_engine(reader_url).connect() as connection:
                connection.execute(sa.text("SELECT * FROM clients"))  # is_inactive: not read
    finally:
        alga_engine(reader_url).dispose()
        with owner.begin() as connection:
            connection.exec_driver_sql(f'DROP OWNED BY "{role}"')
            connection.exec_driver_sql(f'DROP ROLE "{role}"')
        owner.dispose()


def test_alga_definitions_put_the_copy_first():
    settings = load_settings(
        {
            "AR_SOURCE": "alga_psa",
            "AR_ALGA_TENANT": TENANT,
            "AR_ALGA_DATABASE_URL": "postgresql+psycopg://alga@db/alga",
        }  # fmt: skip
    )
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    ledger = {dg.AssetKey(t) for t in ("customers", "invoices", "payments", "sync_log")}
    copy = dg.AssetKey("alga_ledger")
    # alga_ledger writes the ledger tables; ar_aging reads them and runs after the copy
    assert all(graph.get(key).parent_keys == {copy} for key in ledger)
    assert graph.get(dg.AssetKey("ar_aging")).parent_keys == ledger | {copy}
    assert {dg.AssetKey("unbilled_service_periods"), dg.AssetKey("service_period_coverage")} <= (
        graph.get(dg.AssetKey("ar_aging_summary")).parent_keys
    )
    daily = defs.resolve_job_def("ar_aging_daily")
    assert {"alga_ledger", "service_period_health", "service_period_repair_plans"} <= {
        node.name for node in daily.graph.node_defs
    }
    checks = {key.name for key in graph.asset_check_keys}
    assert {"service_periods_replenished", "service_periods_continuous"} <= checks
    apply_nodes = [n.name for n in defs.resolve_job_def("apply_approved_actions").graph.node_defs]
    assert apply_nodes == ["refresh_alga_ledger", "apply_approved"]
    # the own-ledger definitions have none of it
    plain = build_definitions(load_settings({})).resolve_asset_graph()
    assert plain.get(dg.AssetKey("ar_aging")).parent_keys == ledger
    assert dg.AssetKey("alga_ledger") not in plain.get_all_asset_keys()


def test_the_approver_sees_a_repair_plan_without_an_edit_form(repair_plans_staged):
    from ar_pipeline_tests.web_client import make_client, sign_in

    client = make_client(repair_plans_staged)
    sign_in(client, "alice")
    page = client.get("/proposals?type=service_period_repair").text
    assert page.count('<li class="line') == REPAIR_PLANS
    assert "Repair recurring service periods of schedule:gap" in page
    assert "gap of 31 days: nothing covers 2026-03-01 to 2026-04-01" in page
    assert "changes nothing in Alga" in page
    assert "/edit" not in page  # a plan is approved or rejected, not edited
    # the runbook's file, offered for download: the schedule's current rows as Alga's records
    with repair_plans_staged.connect() as connection:
        gap_plan = connection.execute(
            sa.select(proposed_actions.c.action_id).where(
                proposed_actions.c.action_type == "service_period_repair",
                proposed_actions.c.payload_json["schedule_key"].as_string() == "schedule:gap",
            )
        ).scalar_one()
    assert f'href="/proposals/{gap_plan}/existing.json"' in page
    download = client.get(f"/proposals/{gap_plan}/existing.json")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == (
        f'attachment; filename="{gap_plan}-schedule_gap.existing.json"'
    )
    records = download.json()
    assert {r["scheduleKey"] for r in records} == {"schedule:gap"}
    assert records[0]["kind"] == "persisted_service_period_record"
    assert records[0]["servicePeriod"]["semantics"] == "half_open"
    assert client.get(f"/proposals/{gap_plan}/obligation.json").status_code == 404  # no backfill
    assert client.get(f"/proposals/{gap_plan}/other.json").status_code == 404


def test_a_tenant_without_clients_is_refused_and_the_copy_kept(mirrored, alga_url):
    engine, _ = mirrored
    with pytest.raises(AlgaSourceError, match="AR_ALGA_TENANT 99999999-"):
        sync_ledger(alga_engine(alga_url), engine, "99999999-9999-9999-9999-999999999999",
                    TIMEZONE)  # fmt: skip
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(invoices)).scalar() == 7
        logged = (
            connection.execute(sa.select(sync_log.c.status).order_by(sync_log.c.sync_id))
            .scalars()
            .all()
        )
    assert logged == ["ok", "failed"]


def test_an_unreachable_alga_is_a_clear_error(database_url):
    engine = get_engine(database_url)
    upgrade_database(engine)
    nowhere = "postgresql+psycopg://nobody@127.0.0.1:1/alga"
    with pytest.raises(AlgaSourceError, match="copying the Alga PSA ledger failed"):
        sync_ledger(alga_engine(nowhere), engine, TENANT, TIMEZONE)


def test_credit_applied_without_an_allocation_settles_on_the_invoice_date(mirrored, alga_url):
    """Alga applied credit before it kept credit_allocations: A-1005's credit_applied says
    600.00 but its allocations only 150.00 (on 03-25). Alga's balance due is 1,500.00 - 600.00
    = 900.00; the 450.00 without a date settles A-1005 on its invoice date (03-01). Beta's
    credit is what Alga's credit ledger says remains: 550.00, unchanged."""
    engine, _ = mirrored
    writer = sa.create_engine(alga_url)
    with writer.begin() as connection:
        connection.execute(
            sa.text("UPDATE invoices SET credit_applied = 60000 WHERE invoice_id = :i"),
            {"i": invoice_uuid(7)},
        )
    writer.dispose()
    sync_ledger(alga_engine(alga_url), engine, TENANT, TIMEZONE)
    on_invoice_day = aging_rows(engine, D(2026, 3, 1))[(BETA, "EUR")]
    at_month_end = aging_rows(engine, AS_OF)[(BETA, "EUR")]
    # 1 March: A-1005 1,500.00 - 450.00 = 1,050.00, not yet due; A-1003 800.00 not due;
    # credit 400.00 + 100.00 (expires that day: gone) = 400.00
    assert on_invoice_day[:3] == (185000, 0, 185000)
    assert on_invoice_day[7] == 40000
    # 31 March: 1,500.00 - 450.00 - 150.00 = 900.00, 15 days; credit 550.00; dunnable 350.00
    assert at_month_end == (90000, 90000, 0, 90000, 0, 0, 0, 55000, 35000, 15,
                            invoice_uuid(7), 1)  # fmt: skip


def test_a_repair_plan_carries_the_schedule_as_alga_records(
    alga_url, database_url, tmp_path, monkeypatch
):
    """Each plan carries the schedule's live rows in the shape of Alga's
    IRecurringServicePeriodRecord (packages/types recurringTiming.interfaces.ts, mapped as
    Alga's recurringServicePeriodActions.ts maps its rows); a backfill plan carries none and
    names the obligation; the CLI writes them as the runbook's JSON files."""
    writer = sa.create_engine(alga_url)
    with writer.begin() as connection:  # July gets an activity window and timing metadata
        connection.execute(
            sa.text(
                "UPDATE recurring_service_periods SET activity_window_start = '2026-07-05', "
                "activity_window_end = '2026-07-20', timing_metadata = '{\"anchorDay\": 1}' "
                "WHERE record_id = :r"
            ),
            {"r": "30000000-0000-0000-0000-000000000008"},
        )
    writer.dispose()
    engine = get_engine(database_url)
    upgrade_database(engine)
    source = alga_engine(alga_url)
    with engine.begin() as connection:
        write_service_period_health(source, connection, TENANT, AS_OF, CoveragePolicy())
        stage_repair_plans(connection, AS_OF, "run-1", D(2026, 9, 27), STAGED_AT,
                           source=source, tenant=TENANT)  # fmt: skip
        plans = {
            p["schedule_key"]: p
            for p in connection.execute(
                sa.select(proposed_actions.c.payload_json).where(
                    proposed_actions.c.action_type == "service_period_repair"
                )
            ).scalars()
        }
    ok = plans["schedule:ok"]
    assert ok["runbook_helper"] == "regenerateRecurringServicePeriods"
    # January to October, June as its second revision; not the superseded or archived rows
    assert [r["periodKey"] for r in ok["existing_records"]] == [
        f"2026-{m:02d}" for m in range(1, 11)
    ]
    january, june, july = (ok["existing_records"][i] for i in (0, 5, 6))
    assert january == {
        "kind": "persisted_service_period_record",
        "recordId": "30000000-0000-0000-0000-000000000001",
        "scheduleKey": "schedule:ok",
        "periodKey": "2026-01",
        "revision": 1,
        "sourceObligation": {
            "tenant": TENANT, "obligationId": LINE_OK, "obligationType": "contract_line",
            "chargeFamily": "fixed",
        },
        "cadenceOwner": "contract",
        "duePosition": "arrears",
        "lifecycleState": "billed",
        "servicePeriod": {"start": "2026-01-01", "end": "2026-02-01", "semantics": "half_open"},
        "invoiceWindow": {"start": "2026-02-01", "end": "2026-02-08", "semantics": "half_open"},
        "activityWindow": None,
        "provenance": {
            "kind": "generated", "sourceRuleVersion": "contract-cadence:v1",
            "reasonCode": "initial_materialization", "sourceRunKey": "materialize:2025-12-15",
            "supersedesRecordId": None,
        },
        # billed on A-1004, since voided
        "invoiceLinkage": {
            "invoiceId": invoice_uuid(5),
            "invoiceChargeId": "80000000-0000-0000-0000-000000000001",
            "invoiceChargeDetailId": "90000000-0000-0000-0000-000000000001",
            "linkedAt": "2026-02-01T06:00:00.000Z",
        },
        "createdAt": "2025-12-15T06:00:00.000Z",
        "updatedAt": "2025-12-15T06:00:00.000Z",
    }  # fmt: skip (no timingMetadata key: the row has none, Alga leaves it undefined)
    assert (june["revision"], june["provenance"]) == (2, {
        "kind": "regenerated", "sourceRuleVersion": "contract-cadence:v1",
        "reasonCode": "source_rule_changed", "sourceRunKey": "materialize:2025-12-15",
        "supersedesRecordId": "30000000-0000-0000-0000-000000000006",
    })  # fmt: skip
    assert (june["lifecycleState"], june["invoiceLinkage"]) == ("generated", None)
    assert july["activityWindow"] == {
        "start": "2026-07-05", "end": "2026-07-20", "semantics": "half_open",
    }  # fmt: skip
    assert july["timingMetadata"] == {"anchorDay": 1}
    assert ok["voided_invoice_periods"] == [
        {"record_id": "30000000-0000-0000-0000-000000000001", "period_key": "2026-01",
         "invoice_number": "A-1004"},
    ]  # fmt: skip
    backfill = plans[BACKFILL_KEY]
    assert backfill["runbook_helper"] == "backfillRecurringServicePeriods"
    assert backfill["existing_records"] == []
    assert backfill["obligation"] == {
        "obligation_id": LINE_BACKUP, "contract_line_name": "Backup",
        "contract_line_type": "Fixed", "billing_frequency": "monthly",
        "cadence_owner": "contract", "billing_timing": "arrears", "client_id": ACME,
        "client_contract_id": "60000000-0000-0000-0000-000000000903",
        "contract_id": "e0000000-0000-0000-0000-000000000003", "start_date": "2026-01-01",
        "end_date": None,
    }  # fmt: skip

    import json

    for name, value in {"AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path / "d"),
                        "DAGSTER_HOME": str(tmp_path / "dh")}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert main(["alga", "repair-plans", "--out", str(tmp_path / "plans")]) == 0
    files = sorted(p.name.split("-", 1)[1] for p in (tmp_path / "plans").iterdir())
    assert len(files) == 7  # six plans' existing rows, and the backfill's obligation
    written = next((tmp_path / "plans").glob("*-schedule_ok.existing.json"))
    assert json.loads(written.read_text()) == ok["existing_records"]
