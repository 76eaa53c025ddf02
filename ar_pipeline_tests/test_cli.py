"""The ar-pipeline command: run against a prepared ledger, and clear errors for bad input."""

import datetime as dt
import re

import dagster as dg
import pytest

from ar_pipeline.cli import main
from ar_pipeline.rules.views import upgrade_database
from ar_pipeline.store.database import get_engine
from ar_pipeline_tests.ledger_builder import build_reference_ledger


@pytest.fixture
def cli_env(monkeypatch, tmp_path, database_url):
    monkeypatch.setenv("AR_DATABASE_URL", database_url)
    monkeypatch.setenv("AR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("AR_TREND_START_DATE", "2026-01-01")
    return tmp_path


def test_run_as_of_prints_the_aging_and_records_the_run(cli_env, database_url, capsys):
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "upgrade"]) == 0  # idempotent
    with get_engine(database_url).begin() as connection:
        build_reference_ledger(connection)
    assert main(["run", "--as-of", "2026-03-31"]) == 0
    out = capsys.readouterr().out
    # test_aging.py's hand-worked figures, formatted
    assert "Receivables aged as of 2026-03-31" in out
    assert "1,750.00 EUR" in out  # Alpha's total open in EUR
    assert "250.00 USD" in out
    assert "820.00 EUR" in out  # dunnable EUR
    assert re.search(r"Tier 1 reminder\s+1 customers", out)
    assert re.search(r"Tier 2 firm reminder\s+0 customers", out)
    with dg.DagsterInstance.from_config(str(cli_env / "dagster_home")) as instance:
        records = instance.get_run_records()
    # the trend of the day before (its day is over: made final) comes first, then the day's
    trends = sorted(r.dagster_run.tags["dagster/partition"] for r in records
                    if r.dagster_run.job_name == "ar_aging_summary_job")  # fmt: skip
    assert trends == ["2026-03-30", "2026-03-31"]
    runs = {r.dagster_run.job_name: r.dagster_run for r in records
            if r.dagster_run.tags.get("dagster/partition") != "2026-03-30"}  # fmt: skip
    assert set(runs) == {"ar_aging_daily", "ar_aging_summary_job", "collection_worklist_job"}
    calls = runs["collection_worklist_job"]
    assert calls.tags["dagster/partition"] == "2026-03-31"
    assert calls.tags["dagster/run_key"] == f"worklist:{runs['ar_aging_daily'].run_id}"
    # Alpha is the only customer with dunnable debt, in both currencies (the rule's figures
    # are worked out by hand in test_worklist.py)
    assert "Today's calls" in out
    for money, dunnable in (("EUR", "820.00"), ("USD", "250.00")):
        line = rf"{money}\s+1\. Alpha GmbH\s+expect\s+\S+ {money}\s+expect \S+ {money} of "
        assert re.search(line + rf"{dunnable} {money} dunnable", out)
    assert runs["ar_aging_daily"].tags["ar_pipeline/as_of"] == "2026-03-31"
    trend = runs["ar_aging_summary_job"]
    assert trend.tags["dagster/partition"] == "2026-03-31"
    # The daemon's sensor would request this partition for the CLI's daily run too. It skips a
    # request whose run key an existing run carries with the sensor's name (and, for a run made
    # in-process, no code location): the trend run made here is that run.
    assert trend.tags["dagster/run_key"] == f"summary:{runs['ar_aging_daily'].run_id}"
    assert trend.tags["dagster/sensor_name"] == "ar_aging_daily_succeeded"
    assert trend.remote_job_origin is None


def test_the_trend_is_filled_once_per_daily_run(cli_env, database_url):
    """When the daemon already requested the trend run for a daily run, the CLI makes none."""
    from ar_pipeline.cli import fill_trend
    from ar_pipeline.definitions import build_definitions
    from ar_pipeline.settings import load_settings

    upgrade_database(get_engine(database_url))
    with get_engine(database_url).begin() as connection:
        build_reference_ledger(connection)
    defs = build_definitions(load_settings())
    day = dt.date(2026, 3, 31)
    with dg.DagsterInstance.ephemeral() as instance:
        fill_trend(defs, day, day, instance, "daily-run-1")
        fill_trend(defs, day, day, instance, "daily-run-1")  # as if the sensor was first
        fill_trend(defs, day, day, instance, "daily-run-2")  # another daily run: another fill
        keys = [r.dagster_run.tags["dagster/run_key"] for r in instance.get_run_records()]
    assert sorted(keys) == [
        "summary-previous-day:daily-run-1", "summary-previous-day:daily-run-2",
        "summary:daily-run-1", "summary:daily-run-2",
    ]  # fmt: skip


def test_seed_refuses_a_ledger_that_is_not_empty(cli_env, database_url, capsys):
    upgrade_database(get_engine(database_url))
    with get_engine(database_url).begin() as connection:
        build_reference_ledger(connection)
    assert main(["seed", "--customers", "5"]) == 2
    assert "seed only writes an empty ledger" in capsys.readouterr().err


def test_bad_setting_is_named(monkeypatch, capsys):
    monkeypatch.setenv("AR_TIMEZONE", "Mars/Olympus_Mons")
    assert main(["db", "upgrade"]) == 2
    assert "AR_TIMEZONE" in capsys.readouterr().err


def test_bad_run_config_file_is_named(cli_env, tmp_path, capsys):
    config = tmp_path / "tiers.yaml"
    config.write_text(
        "ops:\n  tier_assignments:\n    config:\n      tier_definitions:\n"
        "        - {tier: 1, name: a, min_days_overdue: 1, min_dunnable: '1.00',"
        " cooldown_days: 1, template: nonexistent}\n"
    )
    assert main(["run", "--as-of", "2026-03-31", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "ops.tier_assignments.config.tier_definitions[0].template" in err
    config.write_text("ops: [unclosed\n")
    assert main(["run", "--config", str(config)]) == 2
    assert "is not valid YAML" in capsys.readouterr().err
    # config that Dagster's check lets through, then ignores or fails on when the run starts
    for text, message in (
        ("ops:\n  proposed_actions:\n    config:\n      threshold_days: -999\n",
         "--config: ops.proposed_actions.config: this step takes no config"),
        ("loggers:\n  console:\n    config:\n      log_level: BOGUS\n",
         "--config: loggers.console.config.log_level: must be one of CRITICAL, ERROR, WARNING, "
         "WARN, INFO, DEBUG, NOTSET, got 'BOGUS'"),
    ):
        config.write_text(text)
        assert main(["run", "--as-of", "2026-03-31", "--config", str(config)]) == 2
        assert capsys.readouterr().err.strip().endswith(message)


def test_demo_fills_a_year_of_the_trend_in_one_run(monkeypatch, tmp_path):
    """On first start (SQLite, the demo's default) the demo fills the trend's last year, today
    included, in one run: 365 partitions materialized and 365 days of rows."""
    import sqlalchemy as sa

    from ar_pipeline.store.schema import ar_aging_summary

    for name in ("AR_DATABASE_URL", "AR_TREND_START_DATE", "AR_SOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert main(["demo"]) == 0
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        runs = [r.dagster_run for r in instance.get_run_records()]
        (trend,) = [r for r in runs if r.job_name == "ar_aging_summary_job"]
        (daily,) = [r for r in runs if r.job_name == "ar_aging_daily"]
        materialized = instance.get_materialized_partitions(dg.AssetKey("ar_aging_summary"))
    first = dt.date.fromisoformat(trend.tags["dagster/asset_partition_range_start"])
    last = dt.date.fromisoformat(trend.tags["dagster/asset_partition_range_end"])
    assert last.isoformat() == daily.tags["ar_pipeline/as_of"]
    assert (last - first).days == 364 and len(materialized) == 365
    engine = get_engine(f"sqlite:///{tmp_path / 'data' / 'ar_pipeline.sqlite3'}")
    with engine.connect() as connection:
        days = connection.execute(
            sa.select(sa.func.count(sa.distinct(ar_aging_summary.c.as_of)))
        ).scalar_one()
    assert days == 365


def test_the_summary_names_the_tiers_of_the_run(cli_env, database_url, tmp_path, capsys):
    """With the README's two tiers, the summary lists those two under their names, not the four
    default ones (the reference ledger's one customer at tier 1, as in the default run)."""
    assert main(["db", "upgrade"]) == 0
    with get_engine(database_url).begin() as connection:
        build_reference_ledger(connection)
    config = tmp_path / "two_tiers.yaml"
    config.write_text(
        "ops:\n  tier_assignments:\n    config:\n      threshold_days: 1\n"
        "      tier_definitions:\n"
        "        - {tier: 1, name: courtesy_call, min_days_overdue: 1, min_dunnable: '10.00',"
        " cooldown_days: 7, template: reminder}\n"
        "        - {tier: 2, name: final_notice, min_days_overdue: 30, min_dunnable: '100.00',"
        " cooldown_days: 10, template: final_notice, involves_sales_rep: true}\n"
    )
    assert main(["run", "--as-of", "2026-03-31", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"Tier 1 courtesy call\s+1 customers", out)
    assert re.search(r"Tier 2 final notice\s+\d+ customers", out)
    assert "Tier 3" not in out and "Tier 4" not in out and "firm reminder" not in out
