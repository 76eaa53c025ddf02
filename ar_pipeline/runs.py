"""Starting the daily job from the command line as a Dagster run recorded in the instance.

The instance lives in ``DAGSTER_HOME`` (default ``AR_DATA_DIR/dagster_home``). The first use
creates it, copies the project's ``dagster.yaml`` template into it and records ``DAGSTER_HOME``
in the project's ``.env``, which ``dagster dev`` reads, so the UI and the CLI share one instance.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from ar_pipeline.resources import AS_OF_TAG
from ar_pipeline.settings import PROJECT_ROOT, Settings, SettingsError

QUIET_LOGGING = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".ar_data" / "dagster_home"


def ensure_dagster_home(settings: Settings) -> Path:
    """Create the instance folder once, before any parallel use (DESIGN.md section 8).

    Only the project's default instance is written into the project's ``.env``; an instance
    chosen with ``DAGSTER_HOME`` or ``AR_DATA_DIR`` is left to whoever chose it.
    """
    home = settings.dagster_home
    env_file = PROJECT_ROOT / ".env" if home == DEFAULT_DAGSTER_HOME else None
    try:
        home.mkdir(parents=True, exist_ok=True)
        template = PROJECT_ROOT / "dagster.yaml"
        if not (home / "dagster.yaml").exists() and template.exists():
            shutil.copyfile(template, home / "dagster.yaml")
    except OSError as error:
        raise SettingsError(
            f"DAGSTER_HOME: cannot create {error.filename or home}: {error.strerror}"
        ) from None
    os.environ["DAGSTER_HOME"] = str(home)
    if env_file is not None:
        existing = env_file.read_text() if env_file.exists() else ""
        if not any(line.startswith("DAGSTER_HOME=") for line in existing.splitlines()):
            separator = "" if not existing or existing.endswith("\n") else "\n"
            env_file.write_text(f"{existing}{separator}DAGSTER_HOME={home}\n")
    with dg.DagsterInstance.get():  # creates the storage now, not in the first parallel run
        pass
    return home


def run_daily_job(
    defs: dg.Definitions,
    as_of: dt.date,
    instance: dg.DagsterInstance,
    run_config: Mapping[str, Any] | None = None,
    quiet: bool = True,
) -> dg.ExecuteInProcessResult:
    """Run ``ar_aging_daily`` in this process for ``as_of``; the run is stored in ``instance``."""
    config: dict[str, Any] = dict(run_config or {})
    if quiet and "loggers" not in config:
        config.update(QUIET_LOGGING)
    job = defs.resolve_job_def("ar_aging_daily")
    return job.execute_in_process(
        run_config=config,
        instance=instance,
        tags={AS_OF_TAG: as_of.isoformat()},
        raise_on_error=False,
    )


def record_dagster_run(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    ar_db: Any,
    succeeded: bool,
    error: str | None = None,
) -> bool:
    """Bookkeeping for one finished daily run (idempotent; see ``ar_pipeline.bookkeeping``)."""
    from ar_pipeline.bookkeeping import RunFacts, record_run

    record = instance.get_run_record_by_id(run.run_id)
    started = record.start_time if record else None
    ended = record.end_time if record else None

    def stamp(seconds: float | None) -> dt.datetime | None:
        return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds else None

    tag = run.tags.get(AS_OF_TAG)
    as_of = dt.date.fromisoformat(tag) if tag else None
    if as_of is None and started:
        as_of = stamp(started).astimezone(ar_db.zone).date()
    facts = RunFacts(run.run_id, succeeded, as_of, stamp(started), stamp(ended), error)
    return record_run(ar_db.engine, facts, dt.datetime.now(dt.UTC))
