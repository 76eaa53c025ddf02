"""The Dagster ``Definitions`` of the project, loaded by ``workspace.yaml`` and ``dg``."""

from __future__ import annotations

import dagster as dg

from ar_pipeline.assets import (
    ar_aging,
    build_summary_asset,
    prior_actions,
    proposed_actions,
    tier_assignments,
)
from ar_pipeline.checks import actions_staged, aging_data_fresh
from ar_pipeline.jobs import (
    apply_approved_actions,
    ar_aging_daily,
    build_daily_schedule,
    build_summary_job,
    trend_partitions,
)
from ar_pipeline.mail import Mailer
from ar_pipeline.resources import ArDatabase
from ar_pipeline.sensors import approved_actions_sensor, build_run_status_sensors
from ar_pipeline.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = trend_partitions(settings.trend_start_date, settings.timezone_name)
    summary = build_summary_asset(partitions)
    summary_job = build_summary_job(summary)
    return dg.Definitions(
        assets=[ar_aging, prior_actions, tier_assignments, proposed_actions, summary],
        asset_checks=[aging_data_fresh, actions_staged],
        jobs=[ar_aging_daily, apply_approved_actions, summary_job],
        schedules=[build_daily_schedule(settings.timezone_name)],
        sensors=[approved_actions_sensor, *build_run_status_sensors(summary_job, partitions)],
        resources={
            "ar_db": ArDatabase.from_settings(settings),
            "mailer": Mailer.from_settings(settings),
        },
    )


defs = build_definitions(load_settings())
