"""The Dagster ``Definitions`` of the project, loaded by ``workspace.yaml`` and ``dg``."""

from __future__ import annotations

import dagster as dg

from ar_pipeline.actions.mail import Mailer
from ar_pipeline.defs.assets import (
    build_ar_aging,
    build_summary_asset,
    build_worklist_asset,
    ledger_specs,
    prior_actions,
    proposed_actions,
    tier_assignments,
)
from ar_pipeline.defs.checks import actions_staged, aging_data_fresh, ledger_sane
from ar_pipeline.defs.jobs import (
    apply_approved_actions,
    ar_aging_daily,
    build_daily_schedule,
    build_summary_job,
    build_worklist_job,
    trend_partitions,
)
from ar_pipeline.defs.resources import AlgaPsa, ArDatabase
from ar_pipeline.defs.sensors import approved_actions_sensor, build_run_status_sensors
from ar_pipeline.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """The project's definitions for ``settings``. The ledger tables are external assets
    upstream of ``ar_aging`` and the trend. With ``AR_SOURCE=alga_psa`` the asset ``alga_ledger``
    writes them (so it is their upstream) and runs before ``ar_aging``, the service-period
    assets join the daily job and feed the trend's unbilled columns."""
    partitions = trend_partitions(settings.trend_start_date, settings.timezone_name)
    source_assets: list = []
    source_checks: list = []
    source_resources: dict = {}
    staging = proposed_actions
    apply_job = apply_approved_actions
    aging_deps: list = []
    trend_deps: list = []
    if settings.alga is not None:
        from ar_pipeline.defs.alga_assets import (
            ALGA_ASSETS,
            ALGA_CHECKS,
            COVERAGE,
            UNBILLED,
            alga_ledger,
            apply_approved_actions_on_alga,
            proposed_actions_on_alga,
        )

        source_assets, source_checks = ALGA_ASSETS, ALGA_CHECKS
        source_resources = {"alga": AlgaPsa.from_settings(settings.alga)}
        apply_job = apply_approved_actions_on_alga  # copies the ledger again, then applies
        staging = proposed_actions_on_alga  # letters say which Alga recipient they go to
        aging_deps, trend_deps = [alga_ledger], [COVERAGE, UNBILLED]
    ledger = ledger_specs(written_by=aging_deps[0].key if aging_deps else None)
    summary = build_summary_asset(partitions, deps=trend_deps)
    summary_job = build_summary_job(summary)
    worklist = build_worklist_asset(partitions)
    worklist_job = build_worklist_job(worklist)
    ar_aging = build_ar_aging(deps=aging_deps)
    return dg.Definitions(
        assets=[
            *ledger,
            ar_aging,
            prior_actions,
            tier_assignments,
            staging,
            summary,
            worklist,
            *source_assets,
        ],  # fmt: skip
        asset_checks=[aging_data_fresh, ledger_sane, actions_staged, *source_checks],
        jobs=[ar_aging_daily, apply_job, summary_job, worklist_job],
        schedules=[build_daily_schedule(settings.timezone_name)],
        sensors=[
            approved_actions_sensor,
            *build_run_status_sensors(summary_job, worklist_job, partitions),
        ],
        resources={
            "ar_db": ArDatabase.from_settings(settings),
            "mailer": Mailer.from_settings(settings),
            **source_resources,
        },
    )


defs = build_definitions(load_settings())
