"""The trend rebuilt for a range of days in one run equals, day by day, the daily aging."""

import datetime as dt

import dagster as dg
import sqlalchemy as sa

from ar_pipeline.aging import write_ar_aging
from ar_pipeline.definitions import build_definitions
from ar_pipeline.ledger_generator import generate_ledger
from ar_pipeline.schema import ar_aging, ar_aging_summary
from ar_pipeline.settings import load_settings

START, END = dt.date(2026, 1, 1), dt.date(2026, 3, 31)
COMPARED = ("total_open_cents", "overdue_cents", "current_cents", "days_1_30_cents",
            "days_31_60_cents", "days_61_90_cents", "days_over_90_cents", "disputed_cents",
            "unapplied_credit_cents", "dunnable_cents")  # fmt: skip


def backfill(database_url, tmp_path, first=START, last=END):
    settings = load_settings(
        {"AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path),
         "AR_TREND_START_DATE": START.isoformat()}
    )  # fmt: skip
    job = build_definitions(settings).resolve_job_def("ar_aging_summary_job")
    with dg.DagsterInstance.ephemeral() as instance:
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
    metadata = result.asset_materializations_for_node("ar_aging_summary")[0].metadata
    assert metadata["days_rebuilt"].value == 90
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
