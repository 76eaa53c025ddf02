"""The Alga PSA source: the mapping onto the ledger contract, the aging it gives, the health of
the recurring service periods, and ``ar-pipeline run`` on it.

Alga is always PostgreSQL (``alga_url``); the pipeline's own database runs on SQLite and on
PostgreSQL (``database_url``). Every expected figure is worked out by hand from
``alga_fixture`` (as of 2026-03-31, business time zone Europe/Berlin).
"""

import datetime as dt
import re
import uuid

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ar_pipeline import aging
from ar_pipeline.approvals import approve
from ar_pipeline.cli import main
from ar_pipeline.database import get_engine, upgrade_database
from ar_pipeline.definitions import build_definitions
from ar_pipeline.schema import (
    ar_aging,
    customers,
    invoices,
    payments,
    proposed_actions,
    service_period_continuity,
    service_period_coverage,
    sync_log,
    unbilled_service_periods,
)
from ar_pipeline.sensors import approved_since
from ar_pipeline.settings import SettingsError, load_settings
from ar_pipeline.sources.alga_psa import AlgaSourceError, alga_engine, sync_ledger
from ar_pipeline.sources.service_periods import (
    CoveragePolicy,
    stage_repair_plans,
    write_service_period_health,
)
from ar_pipeline_tests.alga_fixture import (
    ACME,
    AS_OF,
    BETA,
    GAMMA,
    TENANT,
    TIMEZONE,
    invoice_uuid,
)

D = dt.date


@pytest.fixture
def mirrored(alga_url, database_url):
    """The pipeline's database with a fresh copy of the fixture tenant's ledger."""
    engine = get_engine(database_url)
    upgrade_database(engine)
    counts = sync_ledger(alga_engine(alga_url), engine, TENANT, TIMEZONE)
    return engine, counts


def test_the_tenant_ledger_is_mapped_onto_the_contract(mirrored):
    engine, counts = mirrored
    assert (counts.customers, counts.invoices, counts.payments) == (3, 8, 7)
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
    assert people == {
        ACME: ("Acme GmbH", "ap@acme.example", "rita.rep@vendor.example"),
        BETA: ("Beta AG", "billing@beta.example", None),
        GAMMA: ("Gamma Ltd", None, None),
    }
    # no cancelled A-1004, prepayment A-P1, draft A-1007, nor the other tenant's B-1
    assert bills == {
        "A-1001": ("invoice", D(2025, 12, 1), D(2025, 12, 31), "EUR", 500000),
        "A-1002": ("invoice", D(2026, 2, 1), D(2026, 3, 1), "EUR", 120000),
        "A-CN1": ("credit_note", D(2026, 1, 20), D(2026, 1, 20), "EUR", 20000),
        "A-1003": ("invoice", D(2026, 2, 10), D(2026, 3, 12), "EUR", 80000),
        "A-1005": ("invoice", D(2026, 3, 1), D(2026, 3, 16), "EUR", 150000),
        "A-1006": ("invoice", D(2025, 10, 1), D(2025, 10, 31), "USD", 3000000),
        "A-1008": ("invoice", D(2026, 4, 1), D(2026, 5, 1), "EUR", 45000),
        "A-1009": ("credit_note", D(2026, 3, 10), D(2026, 4, 9), "EUR", 5000),
    }
    p = "20000000-0000-0000-0000-00000000000"
    i2 = invoice_uuid(2)
    # no failed, pending or other-tenant payments
    assert paid == {
        f"{p}1": (ACME, invoice_uuid(1), D(2026, 1, 15), "EUR", 200000),
        f"{p}2": (ACME, i2, D(2026, 3, 31), "EUR", 30000),
        f"{p}3": (ACME, i2, D(2026, 4, 1), "EUR", 10000),
        f"{p}6": (BETA, invoice_uuid(4), D(2026, 3, 20), "EUR", 80000),
        f"{p}7": (BETA, invoice_uuid(6), D(2026, 2, 1), "EUR", 40000),
        f"credit-applied:{i2}": (ACME, i2, D(2026, 2, 1), "EUR", 20000),
        f"credit-drawn:{i2}": (ACME, None, D(2026, 2, 1), "EUR", -20000),
    }
    assert (synced.sync_type, synced.status, synced.rows_synced) == (
        "scheduled_hot_customer_payments", "ok", 18,
    )  # fmt: skip


def test_aging_of_the_tenant_is_worked_out_by_hand(mirrored):
    engine, _ = mirrored
    with engine.begin() as connection:
        assert aging.write_ar_aging(connection, AS_OF) == 3
        rows = {
            (r.customer_id, r.currency): (
                r.total_open_cents, r.overdue_cents, r.current_cents, r.days_1_30_cents,
                r.days_31_60_cents, r.days_61_90_cents, r.days_over_90_cents,
                r.unapplied_credit_cents, r.dunnable_cents, r.max_days_overdue,
                r.oldest_overdue_invoice_id, r.open_item_count,
            )
            for r in connection.execute(sa.select(ar_aging).where(ar_aging.c.as_of == AS_OF))
        }  # fmt: skip
    assert rows == {
        # A-1001: 5,000.00 - 2,000.00 paid = 3,000.00, due 2025-12-31: 90 days (61-90);
        # A-1002: 1,200.00 - 200.00 credit applied - 300.00 paid on 03-31 in Berlin = 700.00,
        # due 03-01 in Berlin: 30 days (1-30). The 100.00 paid 04-01 in Berlin does not count,
        # the failed and pending payments never do. The credit note was drawn by A-1002: no
        # credit left on account. A-1008 is issued 04-01 in Berlin: not yet.
        (ACME, "EUR"): (370000, 370000, 0, 70000, 0, 300000, 0, 0, 370000, 90,
                        invoice_uuid(1), 2),
        # A-1005: 1,500.00, 15 days; A-1003 paid in full; the paid prepayment is 400.00 of
        # cash on account and the negative invoice A-1009 a 50.00 credit: dunnable
        # 1,500.00 - 450.00 = 1,050.00
        (BETA, "EUR"): (150000, 150000, 0, 150000, 0, 0, 0, 45000, 105000, 15,
                        invoice_uuid(7), 1),
        # A-1006: 30,000.00 USD due 2025-10-31: 151 days
        (GAMMA, "USD"): (3000000, 3000000, 0, 0, 0, 0, 3000000, 0, 3000000, 151,
                         invoice_uuid(8), 1),
    }  # fmt: skip


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
        assert connection.execute(sa.select(sa.func.count()).select_from(invoices)).scalar() == 8
    assert counts.invoices == 8
    assert (gamma.service_hold, gamma.dunning_paused_until) == (True, D(2026, 4, 30))


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
    assert (counts.schedules, counts.continuity_issues, counts.unbilled_periods) == (5, 2, 3)
    # 2026-03-31 + 180 days = 2026-09-27; + 45 days = 2026-05-15
    assert horizons == {(D(2026, 9, 27), D(2026, 5, 15))}
    assert coverage == {
        # Jan-Oct; the superseded June revision and the archived row are not live
        "schedule:ok": (10, 8, D(2026, 11, 1), True, False),
        "schedule:low": (4, 2, D(2026, 5, 1), False, True),
        "schedule:gap": (11, 9, D(2027, 1, 1), True, False),
        "schedule:overlap": (12, 10, D(2027, 1, 1), True, False),
        "schedule:none": (3, 0, None, False, True),
    }  # the other tenant's schedule is not there
    assert continuity == [
        ("schedule:gap", "gap", "2026-02", D(2026, 3, 1), "2026-04", D(2026, 4, 1), 31),
        ("schedule:overlap", "overlap", "2026-02", D(2026, 3, 1), "2026-03", D(2026, 2, 15), 14),
    ]
    assert unbilled == {
        ("schedule:ok", "2026-02"): ("generated", D(2026, 3, 8), 23, "EUR", 25000),
        ("schedule:low", "2026-01"): ("locked", D(2026, 2, 8), 51, None, None),
        # the window [03-24, 03-31) has closed on the as-of date
        ("schedule:overlap", "2026-02"): ("edited", D(2026, 3, 31), 0, "EUR", 10000),
    }

    now = dt.datetime(2026, 3, 31, 6, tzinfo=dt.UTC)
    with engine.begin() as connection:
        assert stage_repair_plans(connection, AS_OF, "run-1", D(2026, 9, 27), now) == 4
        assert stage_repair_plans(connection, AS_OF, "run-2", D(2026, 9, 27), now) == 4
        plans = connection.execute(
            sa.select(proposed_actions.c.status, proposed_actions.c.payload_json)
            .where(proposed_actions.c.action_type == "service_period_repair")
            .order_by(proposed_actions.c.action_id)
        ).all()
    assert [(s, p["schedule_key"]) for s, p in plans] == [
        ("proposed", "schedule:gap"),
        ("proposed", "schedule:low"),
        ("proposed", "schedule:none"),
        ("proposed", "schedule:overlap"),
    ]  # fmt: skip (the rerun staged nothing twice)
    assert "nothing covers 2026-03-01 to 2026-04-01" in plans[0][1]["body"]


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
    assert "5,200.00 EUR" in out  # total open EUR: 3,700.00 + 1,500.00
    assert "4,750.00 EUR" in out  # dunnable EUR: 3,700.00 + 1,050.00
    assert "30,000.00 USD" in out
    assert re.search(r"Tier 1 reminder\s+3 customers", out)
    assert "Service periods replenished: WARN: 2 schedule(s) need replenishment: " \
        "schedule:low, schedule:none" in out  # fmt: skip
    assert "Service period continuity: WARN: 2 schedule(s) with gaps or overlaps: " \
        "schedule:gap, schedule:overlap" in out  # fmt: skip
    assert "Credit on account (Alga PSA): OK: no customer has negative unapplied credit" in out
    assert "350.00 EUR in 2 period(s)" in out  # unbilled, apart from the AR above
    assert "1 period(s) whose contract line gives no amount" in out

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
    # letters to Acme and Beta; Gamma has no billing e-mail (cannot contact) but 151 days and
    # 30,000.00 USD open earn it a service hold; four schedules need a repair plan
    assert staged == {
        "workflow_envelope": 1, "collection_action": 2, "customer_program": 1,
        "service_period_repair": 4,
    }  # fmt: skip
    assert [tuple(r) for r in summary] == [("EUR", 520000, 35000, 2), ("USD", 3000000, 0, 0)]


STAGED_AT = dt.datetime(2026, 3, 31, 6, tzinfo=dt.UTC)


@pytest.fixture
def repair_plans_staged(alga_url, database_url):
    """The pipeline's database with the fixture's service periods assessed as of 2026-03-31
    and their four repair plans staged."""
    engine = get_engine(database_url)
    upgrade_database(engine)
    with engine.begin() as connection:
        write_service_period_health(
            alga_engine(alga_url), connection, TENANT, AS_OF, CoveragePolicy()
        )
        stage_repair_plans(connection, AS_OF, "run-1", D(2026, 9, 27), STAGED_AT)
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
        (AS_OF, "approved", 3), (AS_OF, "superseded", 1), (D(2026, 4, 1), "proposed", 4),
    ]  # fmt: skip


def test_apply_sees_a_payment_recorded_in_alga_after_the_run(
    alga_env, alga_url, database_url, smtp_server, monkeypatch
):
    """The apply job copies the Alga ledger again first: Beta paid in Alga after the daily
    run, so its approved letter is superseded; Acme's goes out, once."""
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
    with writer.begin() as connection:  # Beta pays A-1005 in full, in Alga
        connection.execute(
            sa.text(
                "INSERT INTO invoice_payments (tenant, payment_id, invoice_id, amount, "
                "payment_date) VALUES (:t, :p, :i, 150000, '2026-03-31 09:00+00')"
            ),
            {"t": TENANT, "p": "20000000-0000-0000-0000-000000000099", "i": invoice_uuid(7)},
        )
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
    assert received["rcpt_tos"] == ["ap@acme.example"]
    # only Acme's and Beta's rows were copied again: 2 customers, 4 + 3 invoices, 5 + 3
    # payments (Beta's new one included); Gamma's invoice is still there from the run
    with engine.connect() as connection:
        recheck = connection.execute(
            sa.select(sync_log.c.status, sync_log.c.rows_synced).where(
                sync_log.c.sync_type == "alga_psa_apply_recheck"
            )
        ).all()
        gamma = connection.execute(
            sa.select(sa.func.count()).where(invoices.c.customer_id == GAMMA)
        ).scalar_one()
    assert [tuple(r) for r in recheck] == [("ok", 17)]
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
        assert (counts.customers, counts.invoices, counts.payments) == (3, 8, 7)
        with engine.begin() as connection:
            health = write_service_period_health(
                alga_engine(reader_url), connection, TENANT, AS_OF, CoveragePolicy()
            )
        assert (health.schedules, health.continuity_issues, health.unbilled_periods) == (5, 2, 3)
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
    assert page.count('<article class="action"') == 4
    assert "Repair recurring service periods of schedule:gap" in page
    assert "gap of 31 days: nothing covers 2026-03-01 to 2026-04-01" in page
    assert "changes nothing in Alga" in page
    assert "/edit" not in page  # a plan is approved or rejected, not edited


def test_a_tenant_without_clients_is_refused_and_the_copy_kept(mirrored, alga_url):
    engine, _ = mirrored
    with pytest.raises(AlgaSourceError, match="AR_ALGA_TENANT 99999999-"):
        sync_ledger(alga_engine(alga_url), engine, "99999999-9999-9999-9999-999999999999",
                    TIMEZONE)  # fmt: skip
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(invoices)).scalar() == 8
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


def test_credit_drawn_from_a_source_the_copy_cannot_see_is_flagged(alga_env, alga_url, capsys):
    """Beta's A-1005 gets 600.00 of credit applied in Alga, but the credit Beta has that the
    copy can see is 450.00 (the prepayment and A-1009): 150.00 came from elsewhere (a manual
    credit), so Beta's unapplied credit shows -150.00 and the check warns."""
    writer = sa.create_engine(alga_url)
    with writer.begin() as connection:
        connection.execute(
            sa.text("UPDATE invoices SET credit_applied = 60000 WHERE invoice_id = :i"),
            {"i": invoice_uuid(7)},
        )
    writer.dispose()
    assert main(["db", "upgrade"]) == 0
    assert main(["run", "--as-of", "2026-03-31"]) == 0
    out = capsys.readouterr().out
    assert (
        "Credit on account (Alga PSA): WARN: 1 customer(s) with negative unapplied credit "
        "(dunnable overstated): Beta AG"
    ) in out
