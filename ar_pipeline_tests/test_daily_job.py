"""The daily job end to end through Dagster, on both business databases and on both kinds of
Dagster instance storage (SQLite files and PostgreSQL via dagster-postgres)."""

import datetime as dt

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ar_pipeline.definitions import build_definitions
from ar_pipeline.defs.runs import run_daily_job
from ar_pipeline.settings import load_settings
from ar_pipeline.store.schema import ar_aging, tier_assignments
from ar_pipeline_tests.ledger_builder import build_reference_ledger

AS_OF = dt.date(2026, 3, 31)


def _defs(database_url, tmp_path):
    return build_definitions(
        load_settings({"AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path)})
    )


def _materializations(result) -> dict[str, dict]:
    return {
        m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("ar_aging")
        + result.asset_materializations_for_node("tier_assignments")
    }


def test_daily_job_writes_aging_and_tiers(engine, database_url, tmp_path):
    with engine.begin() as connection:
        build_reference_ledger(connection)
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_daily_job(_defs(database_url, tmp_path), AS_OF, instance)
    assert result.success
    metadata = _materializations(result)
    # figures of test_aging.py's hand-worked ledger
    assert metadata["ar_aging"]["total_open_cents_EUR"] == 175_000
    assert metadata["ar_aging"]["days_over_90_cents_EUR"] == 15_000
    assert metadata["ar_aging"]["dunnable_cents_USD"] == 25_000
    assert metadata["ar_aging"]["dagster/row_count"] == 4
    assert "Alpha GmbH (A)" in metadata["ar_aging"]["largest_overdue"]
    # Alpha EUR: 1,250.00 overdue, of it A3's 150.00 at 120 days: over 90, not over 120
    assert "| Alpha GmbH (A) | EUR | 1,250.00 EUR | 150.00 EUR | 0.00 EUR | 120 |" in (
        metadata["ar_aging"]["largest_overdue"]
    )
    assert metadata["tier_assignments"]["proposed_tier_1_reminder"] == 1
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"aging_data_fresh", "ledger_sane", "actions_staged"}
    assert checks["actions_staged"].passed
    assert checks["ledger_sane"].passed  # the reference ledger has no row that cannot be right
    evaluation = checks["aging_data_fresh"]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.description == "no completed scheduled_hot_customer_payments sync"
    with engine.connect() as connection:
        assert (
            connection.execute(
                sa.select(sa.func.count()).select_from(ar_aging).where(ar_aging.c.as_of == AS_OF)
            ).scalar_one()
            == 4
        )


def test_invalid_tier_config_fails_before_writing_tiers(engine, database_url, tmp_path):
    with engine.begin() as connection:
        build_reference_ledger(connection)
    bad = {
        "ops": {
            "tier_assignments": {
                "config": {
                    "tier_definitions": [
                        {"tier": 1, "name": "a", "min_days_overdue": 10, "min_dunnable": "1",
                         "cooldown_days": 1, "template": "reminder"},
                        {"tier": 2, "name": "b", "min_days_overdue": 5, "min_dunnable": "1",
                         "cooldown_days": 1, "template": "reminder"},
                    ]
                }
            }
        }
    }  # fmt: skip
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_daily_job(_defs(database_url, tmp_path), AS_OF, instance, bad)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "tier_definitions[1].min_days_overdue" in failure.step_failure_data.error.message
    with engine.connect() as connection:
        assert (
            connection.execute(
                sa.select(sa.func.count()).select_from(tier_assignments)
            ).scalar_one()
            == 0
        )


def test_bad_config_type_is_refused_before_the_run(engine, database_url, tmp_path):
    bad = {"ops": {"tier_assignments": {"config": {"threshold_days": "soon"}}}}
    with (
        dg.DagsterInstance.ephemeral() as instance,
        pytest.raises(dg.DagsterInvalidConfigError, match="threshold_days"),
    ):
        run_daily_job(_defs(database_url, tmp_path), AS_OF, instance, bad)


@pytest.mark.parametrize("storage", ["sqlite", "postgres"])
def test_runs_are_recorded_in_the_instance(storage, tmp_path, request):
    """Both instance configurations: default SQLite files, and PostgreSQL (dagster-postgres)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    if storage == "postgres":
        postgres_url = request.getfixturevalue("postgres_url")
        instance_url = make_url(postgres_url).set(drivername="postgresql+psycopg2")
        (home / "dagster.yaml").write_text(
            "storage:\n  postgres:\n    postgres_url: "
            f'"{instance_url.render_as_string(hide_password=False)}"\n'
        )
    business_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    from ar_pipeline.rules.views import upgrade_database
    from ar_pipeline.store.database import get_engine

    upgrade_database(get_engine(business_url))
    with get_engine(business_url).begin() as connection:
        build_reference_ledger(connection)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = run_daily_job(_defs(business_url, tmp_path), AS_OF, instance)
        assert result.success
        assert type(instance.run_storage).__name__ == (
            "PostgresRunStorage" if storage == "postgres" else "SqliteRunStorage"
        )
        (record,) = instance.get_run_records()
        assert record.dagster_run.job_name == "ar_aging_daily"
        assert record.dagster_run.tags["ar_pipeline/as_of"] == "2026-03-31"
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        event = instance.get_latest_materialization_event(dg.AssetKey("tier_assignments"))
        assert event is not None


def test_the_largest_overdue_are_listed_per_currency(engine):
    """Eve owes 5,000.00 EUR (500,000 cents), Jun 600,000 JPY (600,000 minor units), Fay
    100.00 EUR, all overdue. In minor units Jun's would outrank Eve's; per currency, the top
    one of each is Eve and Jun, and Fay comes second in EUR."""
    from ar_pipeline.rules.aging import write_ar_aging
    from ar_pipeline.rules.reporting import largest_overdue
    from ar_pipeline_tests.ledger_builder import add_customer, add_invoice

    with engine.begin() as connection:
        for customer_id, name in (("E", "Eve"), ("J", "Jun"), ("F", "Fay")):
            add_customer(connection, customer_id, name, email=None)
        add_invoice(connection, "E1", "E", 500_000, "2026-01-01", "2026-02-01")
        add_invoice(connection, "J1", "J", 600_000, "2026-01-01", "2026-02-01", currency="JPY")
        add_invoice(connection, "F1", "F", 10_000, "2026-01-01", "2026-02-01")
        write_ar_aging(connection, dt.date(2026, 3, 31))
        top_one = largest_overdue(connection, dt.date(2026, 3, 31), limit=1)
        top_two = largest_overdue(connection, dt.date(2026, 3, 31), limit=2)
    assert [(r.customer_id, r.currency, r.overdue_cents) for r in top_one] == [
        ("E", "EUR", 500_000), ("J", "JPY", 600_000)]  # fmt: skip
    assert [r.customer_id for r in top_two] == ["E", "F", "J"]


def daily_job_from_the_environment():
    """The daily job as ``dg.reconstructable`` rebuilds it (settings from the environment)."""
    return build_definitions(load_settings()).resolve_job_def("ar_aging_daily")


def test_a_re_execution_after_midnight_keeps_the_day_of_the_run_it_re_executes(
    tmp_path, monkeypatch
):
    """A run started from the UI (no as-of tag) at 22:30 on 31 March in Berlin; at 00:30 on
    1 April someone re-executes its tiering and staging (from failure, or those steps chosen).
    The steps it runs again are dated 31 March, as ar_aging and prior_actions were: tiering a
    day without its prior_actions would step a customer backwards. The rule is the Dagster
    layer's, not the database's: one database (SQLite) here, because Dagster keeps one
    reconstructed job per process, with the resources of the first database it saw."""
    from zoneinfo import ZoneInfo

    from dagster._core.test_utils import freeze_time

    from ar_pipeline.rules.views import upgrade_database
    from ar_pipeline.store.database import get_engine
    from ar_pipeline_tests.ledger_builder import build_dunning_ledger

    database_url = f"sqlite:///{tmp_path / 'reexecuted.sqlite3'}"
    engine = get_engine(database_url)
    upgrade_database(engine)

    berlin = ZoneInfo("Europe/Berlin")
    for name, value in {"AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path),
                        "AR_TIMEZONE": "Europe/Berlin",
                        "AR_TREND_START_DATE": "2026-01-01"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    job = dg.reconstructable(daily_job_from_the_environment)
    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        with freeze_time(dt.datetime(2026, 3, 31, 22, 30, tzinfo=berlin)):
            first = dg.execute_job(job, instance=instance)
        with engine.begin() as connection:  # what the re-execution must write again
            connection.execute(tier_assignments.delete())
        with freeze_time(dt.datetime(2026, 4, 1, 0, 30, tzinfo=berlin)):
            again = dg.execute_job(
                job, instance=instance,
                reexecution_options=dg.ReexecutionOptions(
                    parent_run_id=first.run_id,
                    step_selection=["tier_assignments", "proposed_actions"],
                ),
            )  # fmt: skip
        assert first.success and again.success
    with engine.connect() as connection:
        days = {
            table.name: sorted(connection.execute(sa.select(table.c.as_of).distinct()).scalars())
            for table in (ar_aging, tier_assignments)
        }
    assert days == {"ar_aging": [dt.date(2026, 3, 31)],
                    "tier_assignments": [dt.date(2026, 3, 31)]}  # fmt: skip
