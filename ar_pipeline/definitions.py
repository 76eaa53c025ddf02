"""The Dagster ``Definitions`` of the project, loaded by ``workspace.yaml`` and ``dg``."""

from __future__ import annotations

import dagster as dg

from ar_pipeline.assets import ar_aging, prior_actions, tier_assignments
from ar_pipeline.checks import aging_data_fresh
from ar_pipeline.jobs import ar_aging_daily, build_daily_schedule
from ar_pipeline.resources import ArDatabase
from ar_pipeline.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[ar_aging, prior_actions, tier_assignments],
        asset_checks=[aging_data_fresh],
        jobs=[ar_aging_daily],
        schedules=[build_daily_schedule(settings.timezone_name)],
        resources={"ar_db": ArDatabase.from_settings(settings)},
    )


defs = build_definitions(load_settings())
