"""The Dagster definitions load and carry the schedule, job, check and retry policy."""

import dagster as dg

from ar_pipeline.definitions import build_definitions, defs
from ar_pipeline.settings import load_settings

LEDGER = {"customers", "invoices", "payments", "sync_log"}


def test_definitions_load():
    assert isinstance(defs, dg.Definitions)
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "ar_aging", "prior_actions", "tier_assignments", "proposed_actions", "ar_aging_summary",
        "collection_worklist", *LEDGER,
    }  # fmt: skip


def test_assets_are_grouped_described_and_owned():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        name = key.to_user_string()
        expected_group = {"proposed_actions": "ar_actions", "ar_aging_summary": "ar_trend",
                          "collection_worklist": "ar_worklist",
                          **dict.fromkeys(LEDGER, "ledger")}  # fmt: skip
        assert node.group_name == expected_group.get(name, "ar_aging")
        assert node.description
        assert node.owners == ["team:finance-ops"]
        assert node.kinds == ({"sql", "table"} if name in LEDGER else {"sql", "sqlalchemy"})
        assert "dagster/column_schema" in node.metadata
        described = [c for c in node.metadata["dagster/column_schema"].columns
                     if c.description]  # fmt: skip
        assert described, name


def test_lineage_runs_from_the_ledger_tables():
    """The ledger tables are external assets (nothing in Dagster writes them), upstream of the
    aging and of the trend; the trend also reads the staged actions."""
    graph = defs.resolve_asset_graph()
    ledger = {dg.AssetKey(name) for name in LEDGER}
    for key in ledger:
        assert not graph.get(key).is_executable
        assert graph.get(key).parent_keys == set()
    assert graph.get(dg.AssetKey("ar_aging")).parent_keys == ledger
    assert graph.get(dg.AssetKey("ar_aging_summary")).parent_keys == ledger | {
        dg.AssetKey("proposed_actions")
    }
    # the worklist reads the day's aging and its letters; it runs after the daily job
    assert graph.get(dg.AssetKey("collection_worklist")).parent_keys == ledger | {
        dg.AssetKey("ar_aging"), dg.AssetKey("proposed_actions")
    }
    worklist = defs.resolve_assets_def("collection_worklist")
    assert worklist.partitions_def == defs.resolve_assets_def("ar_aging_summary").partitions_def
    # the daily job materializes only what Dagster writes
    daily = {node.name for node in defs.resolve_job_def("ar_aging_daily").graph.node_defs}
    assert not daily & LEDGER


def test_trend_is_daily_partitioned_and_backfills_in_one_run():
    custom = build_definitions(
        load_settings({"AR_TREND_START_DATE": "2025-06-01", "AR_TIMEZONE": "Europe/Berlin"})
    )
    summary = custom.resolve_assets_def("ar_aging_summary")
    partitions = summary.partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition)
    assert partitions.get_first_partition_key() == "2025-06-01"
    assert partitions.timezone == "Europe/Berlin"
    assert partitions.end_offset == 1  # today's partition exists for the daily run
    assert summary.backfill_policy == dg.BackfillPolicy.single_run()


def test_jobs_run_in_process_with_db_retries():
    for name in ("ar_aging_daily", "apply_approved_actions", "ar_aging_summary_job",
                 "collection_worklist_job"):  # fmt: skip
        job = defs.resolve_job_def(name)
        assert job.executor_def.name == "in_process"
    for node in defs.resolve_job_def("ar_aging_daily").graph.node_defs:
        assert node.retry_policy == dg.RetryPolicy(
            max_retries=2, delay=5, backoff=dg.Backoff.LINEAR
        )
    # the op with side effects is never retried as a whole: its trouble is per action
    (apply_op,) = defs.resolve_job_def("apply_approved_actions").graph.node_defs
    assert apply_op.name == "apply_approved" and apply_op.retry_policy is None


def test_checks_never_block():
    check_keys = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert check_keys == {"aging_data_fresh", "ledger_sane", "actions_staged"}
    specs = {spec.name: spec for checks_def in defs.asset_checks for spec in checks_def.check_specs}
    assert specs["aging_data_fresh"].asset_key == dg.AssetKey("ar_aging")
    assert specs["ledger_sane"].asset_key == dg.AssetKey("ar_aging")
    assert specs["actions_staged"].asset_key == dg.AssetKey("proposed_actions")
    assert not any(spec.blocking for spec in specs.values())


def test_sensors_run_by_default():
    sensors = {s.name: s for s in defs.sensors}
    assert set(sensors) == {
        "approved_actions_sensor", "ar_aging_daily_succeeded", "ar_aging_daily_failed",
    }  # fmt: skip
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())
    assert sensors["approved_actions_sensor"].minimum_interval_seconds <= 30
    assert sensors["approved_actions_sensor"].job_name == "apply_approved_actions"


def test_schedule_at_six_in_the_business_timezone():
    custom = build_definitions(load_settings({"AR_TIMEZONE": "Europe/Berlin"}))
    schedule = custom.resolve_schedule_def("ar_aging_daily_schedule")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "Europe/Berlin"
    assert schedule.job_name == "ar_aging_daily"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert defs.resolve_schedule_def("ar_aging_daily_schedule").execution_timezone == "UTC"


def test_schedule_tags_the_run_with_its_local_date():
    import datetime as dt
    from zoneinfo import ZoneInfo

    custom = build_definitions(load_settings({"AR_TIMEZONE": "Europe/Berlin"}))
    schedule = custom.resolve_schedule_def("ar_aging_daily_schedule")
    tick = dt.datetime(2026, 3, 31, 6, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    with dg.build_schedule_context(scheduled_execution_time=tick) as context:
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.tags["ar_pipeline/as_of"] == "2026-03-31"
    assert request.run_key == "2026-03-31"
