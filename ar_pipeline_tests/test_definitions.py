"""The Dagster definitions load and carry the schedule, job, check and retry policy."""

import dagster as dg

from ar_pipeline.definitions import build_definitions, defs
from ar_pipeline.settings import load_settings


def test_definitions_load():
    assert isinstance(defs, dg.Definitions)
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"ar_aging", "prior_actions", "tier_assignments"}


def test_assets_are_grouped_described_and_owned():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name == "ar_aging"
        assert node.description
        assert node.owners == ["team:finance-ops"]
        assert node.kinds == {"sql", "sqlalchemy"}
        assert "dagster/column_schema" in node.metadata


def test_daily_job_runs_in_process_with_db_retries():
    job = defs.resolve_job_def("ar_aging_daily")
    assert job.executor_def.name == "in_process"
    for node in job.graph.node_defs:
        assert node.retry_policy == dg.RetryPolicy(
            max_retries=2, delay=5, backoff=dg.Backoff.LINEAR
        )


def test_freshness_check_warns_and_does_not_block():
    check_keys = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert check_keys == {"aging_data_fresh"}
    (checks_def,) = [c for c in defs.asset_checks if isinstance(c, dg.AssetChecksDefinition)]
    (spec,) = checks_def.check_specs
    assert spec.asset_key == dg.AssetKey("ar_aging")
    assert not spec.blocking


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
