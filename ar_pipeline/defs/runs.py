"""Starting the daily job from the command line as a Dagster run recorded in the instance.

The instance lives in ``DAGSTER_HOME`` (default ``AR_DATA_DIR/dagster_home``). The first use
creates it, copies the project's ``dagster.yaml`` template into it and records ``DAGSTER_HOME``
in the project's ``.env``, which ``dg dev`` reads, so the UI and the CLI share one instance.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from ar_pipeline.defs.resources import AS_OF_TAG, untagged_run_date, untagged_run_start
from ar_pipeline.settings import PROJECT_ROOT, Settings, SettingsError

QUIET_LOGGING = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".ar_data" / "dagster_home"


def ensure_dagster_home(settings: Settings) -> Path:
    """Create the instance folder once, before any parallel use (docs/design.md, Decisions about
    Dagster).

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
    """Bookkeeping for one finished daily run (idempotent; see
    ``ar_pipeline.actions.bookkeeping``)."""
    from ar_pipeline.actions.bookkeeping import RunFacts, record_run

    record = instance.get_run_record_by_id(run.run_id)
    started = record.start_time if record else None
    ended = record.end_time if record else None

    def stamp(seconds: float | None) -> dt.datetime | None:
        return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds else None

    tag = run.tags.get(AS_OF_TAG)
    as_of = dt.date.fromisoformat(tag) if tag else None
    first_started = untagged_run_start(instance, run)
    if as_of is None and first_started:
        as_of = untagged_run_date(first_started, ar_db.zone)
    facts = RunFacts(run.run_id, succeeded, as_of, stamp(started), stamp(ended), error)
    return record_run(ar_db.engine, facts, dt.datetime.now(dt.UTC))


class RunConfigError(ValueError):
    """Run config that the job would refuse; the message is one line naming the field path."""


_EXPECTED = {
    "INT": "a whole number",
    "STRING": "text in quotes",
    "BOOL": "true or false",
    "FLOAT": "a number",
    "ARRAY": "a list",
    "ENUM": "one of the allowed words",
    "MAP": "a mapping",
    "SELECTOR": "a mapping",
    "STRICT_SHAPE": "a mapping",
    "PERMISSIVE_SHAPE": "a mapping",
}


def check_run_config(job: dg.JobDefinition, run_config: Mapping[str, Any]) -> Mapping[str, Any]:
    """Validate ``run_config`` as Dagster would when the run starts, before anything is written;
    returns the resolved config. The first problem raises :class:`RunConfigError`, e.g.
    ``ops.tier_assignments.config: must be a mapping, got 5``."""
    try:
        return dg.validate_run_config(job, run_config)
    except dg.DagsterInvalidConfigError as invalid:
        raise RunConfigError(_describe(job, invalid.errors[0])) from None


def _config_path(entries: Any) -> str:
    """``ops.tier_assignments.config.tier_definitions[0]`` from Dagster's evaluation stack."""
    path = ""
    for entry in entries:
        if getattr(entry, "list_index", None) is not None:
            path += f"[{entry.list_index}]"
        elif getattr(entry, "field_name", None) is not None:
            path += f".{entry.field_name}"
        elif hasattr(entry, "map_key"):
            path += f"[{entry.map_key!r}]"
    return path.lstrip(".")


def _describe(job: dg.JobDefinition, error: Any) -> str:
    path, data, reason = _config_path(error.stack.entries), error.error_data, error.reason.name
    where = path or "the run config"
    if reason in ("FIELD_NOT_DEFINED", "FIELDS_NOT_DEFINED", "MISSING_REQUIRED_FIELD",
                  "MISSING_REQUIRED_FIELDS"):  # fmt: skip
        names = [data.field_name] if hasattr(data, "field_name") else data.field_names
        field = f"{path}.{sorted(map(str, names))[0]}".lstrip(".")
        if reason.startswith("MISSING"):
            return f"{field}: is required"
        if path == "ops":
            return f"{field}: unknown op; known: {', '.join(sorted(job.graph.node_dict))}"
        if not path:
            return f"{field}: unknown field; run config has ops, loggers and execution"
        return f"{field}: unknown field"
    if reason == "RUNTIME_TYPE_MISMATCH":
        snap = data.config_type_snap
        kind = snap.scalar_kind.name if snap.scalar_kind is not None else snap.kind.name
        expected = _EXPECTED.get(kind, snap.given_name or kind.lower())
        value = "nothing" if data.value_rep == "None" else data.value_rep
        value = value if len(value) <= 60 else f"{value[:57]}..."
        return f"{where}: must be {expected}, got {value}"
    # anything else (a selector given two choices, ...): Dagster's own sentence, on one line
    return f"{where}: " + " ".join(error.message.split()).split(". Expected")[0]
