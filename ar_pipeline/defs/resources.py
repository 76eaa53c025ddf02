"""Dagster resource: the business database and the settings the pipeline needs with it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import dagster as dg
from sqlalchemy.engine import Engine

from ar_pipeline.rules.proposals import HoldPolicy
from ar_pipeline.settings import (
    DEFAULT_HORIZON_DAYS,
    DEFAULT_REPLENISH_DAYS,
    AlgaSettings,
    Settings,
)
from ar_pipeline.store.database import get_engine

if TYPE_CHECKING:
    from ar_pipeline.sources.service_periods import CoveragePolicy

AS_OF_TAG = "ar_pipeline/as_of"


class ArDatabase(dg.ConfigurableResource):
    """The business database (``AR_DATABASE_URL``), the business time zone, the approvers and
    the service-hold thresholds."""

    url: str
    timezone: str = "UTC"
    freshness_max_age_hours: float = 2.0
    approvers: list[str] = []
    hold_min_days_overdue: int = 90
    hold_min_open: str = "25000.00"
    charts_dir: str = ".ar_data/charts"
    # AR_INCREMENTAL_BALANCES: auto, on or off (docs/design.md, Incremental balances)
    incremental_balances: str = "auto"

    @classmethod
    def from_settings(cls, settings: Settings) -> ArDatabase:
        return cls(
            url=settings.database_url,
            timezone=settings.timezone_name,
            freshness_max_age_hours=settings.freshness_max_age_hours,
            approvers=sorted(settings.approvers),
            hold_min_days_overdue=settings.hold_min_days_overdue,
            hold_min_open=str(settings.hold_min_open),
            charts_dir=str(settings.data_dir / "charts"),
            incremental_balances=settings.incremental_balances,
        )

    @property
    def hold_policy(self) -> HoldPolicy:
        return HoldPolicy(self.hold_min_days_overdue, Decimal(self.hold_min_open))

    @property
    def engine(self) -> Engine:
        return get_engine(self.url)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def today(self) -> dt.date:
        return dt.datetime.now(self.zone).date()


def untagged_run_date(start_time: float | None, zone: ZoneInfo) -> dt.date:
    """The as-of date of a run without the ``ar_pipeline/as_of`` tag (one started from the UI):
    the day it started in ``AR_TIMEZONE``, so that every step of the run, and the sensor that
    requests the run's trend partition afterwards, agree on it even across midnight. Today when
    the start time is not known."""
    if start_time is None:
        return dt.datetime.now(zone).date()
    return dt.datetime.fromtimestamp(start_time, zone).date()


def untagged_run_start(instance: dg.DagsterInstance, run: dg.DagsterRun) -> float | None:
    """When the run's first attempt started: a re-execution (from failure, or of chosen steps)
    is dated like the run it re-executes, so that its steps and the steps it does not run again
    agree on the day even when the re-execution starts after midnight."""
    record = instance.get_run_record_by_id(run.root_run_id or run.run_id)
    return record.start_time if record else None


def run_as_of(context: dg.OpExecutionContext | dg.AssetExecutionContext, db: ArDatabase) -> dt.date:
    """The as-of date of a run: the ``ar_pipeline/as_of`` tag (set by the schedule and the CLI),
    else the day the run (its first attempt, :func:`untagged_run_start`) started in
    ``AR_TIMEZONE`` (a run started from the UI)."""
    raw = context.run.tags.get(AS_OF_TAG)
    if raw is None:
        return untagged_run_date(untagged_run_start(context.instance, context.run), db.zone)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise dg.Failure(
            f"run tag {AS_OF_TAG} must be a date like 2026-03-31, got {raw!r}",
            allow_retries=False,
        ) from None


class AlgaPsa(dg.ConfigurableResource):
    """The Alga PSA billing database (``AR_ALGA_DATABASE_URL``), read-only, and the tenant
    and coverage policy of ``AR_ALGA_*`` (``ar_pipeline.sources``)."""

    url: str
    tenant: str
    horizon_days: int = DEFAULT_HORIZON_DAYS
    replenish_days: int = DEFAULT_REPLENISH_DAYS

    @classmethod
    def from_settings(cls, alga: AlgaSettings) -> AlgaPsa:
        return cls(
            url=alga.database_url,
            tenant=alga.tenant,
            horizon_days=alga.horizon_days,
            replenish_days=alga.replenish_days,
        )

    @property
    def engine(self) -> Engine:
        from ar_pipeline.sources.alga_psa import alga_engine

        return alga_engine(self.url)

    @property
    def policy(self) -> CoveragePolicy:
        from ar_pipeline.sources.service_periods import CoveragePolicy

        return CoveragePolicy(self.horizon_days, self.replenish_days)
