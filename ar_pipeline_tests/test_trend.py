"""The trend rebuilt for a range of days in one run equals, day by day, the daily aging, and
each day's partition carries that day's figures."""

import contextlib
import datetime as dt

import dagster as dg
import sqlalchemy as sa

from ar_pipeline.definitions import build_definitions
from ar_pipeline.rules.aging import write_ar_aging
from ar_pipeline.settings import load_settings
from ar_pipeline.sources.ledger_generator import generate_ledger
from ar_pipeline.store.schema import ar_aging, ar_aging_summary

START, END = dt.date(2026, 1, 1), dt.date(2026, 3, 31)
COMPARED = ("total_open_cents", "overdue_cents", "current_cents", "days_1_30_cents",
            "days_31_60_cents", "days_61_90_cents", "days_91_120_cents", "days_over_120_cents",
            "days_over_90_cents", "disputed_cents", "unapplied_credit_cents", "net_balance_cents",
            "dunnable_cents")  # fmt: skip
SUMMARY = dg.AssetKey("ar_aging_summary")


def backfill(database_url, tmp_path, first=START, last=END, instance=None):
    """Materialize the partitions first..last of ar_aging_summary in one run, as a single-run
    backfill does."""
    settings = load_settings(
        {"AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path),
         "AR_TREND_START_DATE": START.isoformat()}
    )  # fmt: skip
    job = build_definitions(settings).resolve_job_def("ar_aging_summary_job")
    with contextlib.ExitStack() as stack:
        if instance is None:
            instance = stack.enter_context(dg.DagsterInstance.ephemeral())
        result = job.execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
        )
        assert result.success
        assert len(instance.get_run_records()) == 1  # the whole range in one run
    return result


def partition_metadata(instance, key: str) -> dict:
    """The metadata of the latest materialization of one partition, as the instance keeps it."""
    (record,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=SUMMARY, asset_partitions=[key]), limit=1
    ).records
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def summary(engine):
    with engine.connect() as connection:
        return {
            (r["as_of"], r["currency"]): dict(r)
            for r in connection.execute(sa.select(ar_aging_summary)).mappings()
        }


def test_backfill_equals_the_daily_aging_of_each_day(engine, database_url, tmp_path):
    with engine.begin() as connection:
        generate_ledger(
            connection, customer_count=60, months=6, seed=3, end_date=END,
            synced_until=dt.datetime(2026, 3, 31, 5, tzinfo=dt.UTC),
        )  # fmt: skip
    result = backfill(database_url, tmp_path)
    rows = summary(engine)
    assert {d for d, _ in rows} == {START + dt.timedelta(days=k) for k in range(90)}
    materialized = result.asset_materializations_for_node("ar_aging_summary")
    assert len(materialized) == 90  # one materialization per partition
    assert materialized[0].metadata["rebuilt_in_this_run"].value == (
        "2026-01-01 to 2026-03-31 (90 days)"
    )
    assert (tmp_path / "charts" / "ar_aging_trend.png").read_bytes()[:4] == b"\x89PNG"

    for day in (dt.date(2026, 1, 1), dt.date(2026, 2, 14), END):
        with engine.begin() as connection:
            write_ar_aging(connection, day)
            daily = (
                connection.execute(sa.select(ar_aging).where(ar_aging.c.as_of == day))
                .mappings()
                .all()
            )
        currencies = {r["currency"] for r in daily}
        assert currencies  # the generated ledger has open items on each of these days
        for currency in currencies:
            mine = [r for r in daily if r["currency"] == currency]
            row = rows[(day, currency)]
            for column in COMPARED:
                assert row[column] == sum(r[column] for r in mine), (day, currency, column)
            assert row["customers_with_open"] == sum(r["total_open_cents"] > 0 for r in mine)
            assert row["customers_overdue"] == sum(r["overdue_cents"] > 0 for r in mine)


def test_rebuilding_replaces_rows_identically(engine, database_url, tmp_path):
    with engine.begin() as connection:
        generate_ledger(
            connection, customer_count=30, months=4, seed=5, end_date=END,
            synced_until=dt.datetime(2026, 3, 31, 5, tzinfo=dt.UTC),
        )  # fmt: skip
    backfill(database_url, tmp_path, dt.date(2026, 3, 1), END)
    before = summary(engine)
    backfill(database_url, tmp_path, dt.date(2026, 3, 20), END)
    assert summary(engine) == before


def test_each_partition_of_a_backfill_carries_its_own_figures(engine, database_url, tmp_path):
    """Three days in one run; each partition's materialization, read back from the instance,
    holds that day's figures in major units, labelled with the currency.

    EUR: 1,000.00 billed on 31 Jan, 28 Feb, 31 Mar and 30 Apr, due 14 days later; 31 Jan paid
    02-20, 28 Feb paid 04-10, 400.00 of 31 Mar paid 05-01.
      04-29 (periods end on the 29th; February's on the 28th): open 31 Mar 1,000.00.
            (03-29, 04-29] has 31 days and 31 Mar's 1,000: DSO = 31 x 1,000 / 1,000 = 31.0.
            CEI: beginning AR on 03-29 = 28 Feb 1,000; nothing current at the end (31 Mar was
            due 04-14): (1,000 + 1,000 - 1,000) / (1,000 + 1,000 - 0) = 50.0
      04-30 (a month-end: April, March, February): open 31 Mar + 30 Apr = 2,000.00.
            DSO = 30 + 31 x 1,000 / 1,000 = 61.0. CEI: beginning AR on 03-31 = 28 Feb +
            31 Mar = 2,000; current 1,000: (2,000 + 1,000 - 2,000) / (2,000 + 1,000 - 1,000)
            = 50.0
      05-01 (periods end on the 1st): open 600.00 + 1,000.00 = 1,600.00. (04-01, 05-01]: 30
            days, 1,000 -> 30, 600 left; (03-01, 04-01]: 31 days, 1,000 -> 31 x 600 / 1,000
            = 18.6: DSO 48.6. CEI: beginning AR on 04-01 = 2,000:
            (2,000 + 1,000 - 1,600) / (2,000 + 1,000 - 1,000) = 1,400 / 2,000 = 70.0
    USD: 250.00 issued 2025-12-20, due 2026-01-19, never paid: 100, 101 and 102 days overdue,
      all of it over 90; no USD sales in any of the periods, so no DSO (left out); CEI =
      (250 + 0 - 250) / (250 + 0 - 0) = 0.0.
    """
    from ar_pipeline_tests.ledger_builder import add_customer, add_invoice, add_payment

    with engine.begin() as connection:
        add_customer(connection, "M")
        for n, issued, due in [(1, "2026-01-31", "2026-02-14"), (2, "2026-02-28", "2026-03-14"),
                               (3, "2026-03-31", "2026-04-14"), (4, "2026-04-30", "2026-05-14")]:
            add_invoice(connection, f"M{n}", "M", 100_000, issued, due)  # fmt: skip
        add_payment(connection, "PM1", "M", 100_000, "2026-02-20", "M1")
        add_payment(connection, "PM2", "M", 100_000, "2026-04-10", "M2")
        add_payment(connection, "PM3", "M", 40_000, "2026-05-01", "M3")
        add_invoice(connection, "U1", "M", 25_000, "2025-12-20", "2026-01-19", currency="USD")
    with dg.DagsterInstance.ephemeral() as instance:
        backfill(database_url, tmp_path, dt.date(2026, 4, 29), dt.date(2026, 5, 1), instance)
        got = {key: partition_metadata(instance, key)
               for key in ("2026-04-29", "2026-04-30", "2026-05-01")}  # fmt: skip
    usd = {"USD total open": 250.0, "USD net receivables": 250.0, "USD over 90 days": 250.0,
           "USD CEI (%)": 0.0}  # fmt: skip
    expected = {
        "2026-04-29": {"EUR total open": 1000.0, "EUR net receivables": 1000.0,
                       "EUR over 90 days": 0.0, "EUR DSO (days)": 31.0, "EUR CEI (%)": 50.0},
        "2026-04-30": {"EUR total open": 2000.0, "EUR net receivables": 2000.0,
                       "EUR over 90 days": 0.0, "EUR DSO (days)": 61.0, "EUR CEI (%)": 50.0},
        "2026-05-01": {"EUR total open": 1600.0, "EUR net receivables": 1600.0,
                       "EUR over 90 days": 0.0, "EUR DSO (days)": 48.6, "EUR CEI (%)": 70.0},
    }  # fmt: skip
    for key, figures in expected.items():
        numbers = {k: v for k, v in got[key].items() if isinstance(v, float)}
        assert numbers == {**figures, **usd}, key
        assert got[key]["dagster/row_count"] == 2  # EUR and USD
        assert got[key]["rebuilt_in_this_run"] == "2026-04-29 to 2026-05-01 (3 days)"
    # the chart and the last 30 days describe the year up to the last day: on its partition only
    assert "trend_chart" in got["2026-05-01"] and "last_30_days" in got["2026-05-01"]
    assert "trend_chart" not in got["2026-04-29"] and "trend_chart" not in got["2026-04-30"]
