"""The ``ar-pipeline`` console command (docs/design.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

from ar_pipeline.settings import Settings, SettingsError, load_settings, parse_date, parse_port


class CliError(Exception):
    """A user error: printed without a traceback, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """A malformed argument is a user error like any other: one line, exit status 2 (main)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see `{self.prog} -h`)")


def _date(value: str) -> dt.date:
    try:
        return parse_date(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _whole(minimum: int = 1, maximum: int = 2**63 - 1) -> Callable[[str], int]:
    """A whole-number argument from ``minimum`` to ``maximum`` (IDs are 64-bit integers)."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
        if number > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {number}")
        return number

    return parse


_positive = _whole(1)


def _port(value: str) -> int:
    try:
        return parse_port(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _status(value: str) -> str:
    from ar_pipeline.store.schema import ACTION_STATUSES

    if value not in ACTION_STATUSES:
        raise argparse.ArgumentTypeError(
            f"unknown status {value!r}; one of {', '.join(ACTION_STATUSES)}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ar-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="business database")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="create or migrate the business database")

    seed = commands.add_parser("seed", help="generate a demo ledger in an empty database")
    seed.add_argument("--customers", type=_whole(1, 1_000_000), default=500)
    seed.add_argument("--months", type=_whole(1, 1200), default=18)
    seed.add_argument("--seed", type=_whole(0), default=42)
    seed.add_argument("--end-date", type=_date, help="last ledger day (default: today)")

    commands.add_parser("demo", help="seed if empty, run the daily job, print a summary")

    run = commands.add_parser("run", help="run the daily job as a Dagster run")
    run.add_argument("--as-of", type=_date, help="as-of date (default: today in AR_TIMEZONE)")
    run.add_argument("--config", type=Path, help="YAML run config, e.g. tier definitions")

    approvals = commands.add_parser("approvals", help="list and decide proposals")
    approval_commands = approvals.add_subparsers(dest="approvals_command", required=True)
    listing = approval_commands.add_parser("list", help="proposals, newest first")
    listing.add_argument(
        "--status", type=_status, help="only this status (default: everything pending)"
    )
    listing.add_argument("--limit", type=_whole(1, 100_000), default=50)
    approve = approval_commands.add_parser("approve", help="approve proposals (or retry failed)")
    approve.add_argument("ids", nargs="+", type=_positive, metavar="ID")
    approve.add_argument("--by", required=True, help="your name, as listed in AR_APPROVERS")
    reject = approval_commands.add_parser("reject", help="reject proposals")
    reject.add_argument("ids", nargs="+", type=_positive, metavar="ID")
    reject.add_argument("--by", required=True, help="your name, as listed in AR_APPROVERS")
    reject.add_argument("--reason", required=True, help="why (required)")
    resolve = approval_commands.add_parser(
        "resolve", help="settle a send whose outcome is unknown (unconfirmed, or stuck applying)"
    )
    resolve.add_argument("ids", nargs="+", type=_positive, metavar="ID")
    resolve.add_argument("--by", required=True, help="your name, as listed in AR_APPROVERS")
    outcome = resolve.add_mutually_exclusive_group(required=True)
    for flag, resolution, meaning in [
        ("--delivered", "delivered", "it reached the customer: mark it applied"),
        ("--send-again", "send_again", "it did not: approve it again, to be sent once more"),
    ]:
        outcome.add_argument(
            flag, dest="resolution", action="store_const", const=resolution, help=meaning
        )
    resolve.add_argument("--note", help="how you know (recorded with the decision)")

    today_help = "the recording day (default: today in AR_TIMEZONE)"
    promises = commands.add_parser("promises", help="promises to pay taken on the phone")
    promise_commands = promises.add_subparsers(dest="promises_command", required=True)
    add = promise_commands.add_parser(
        "add", help="record a promise: its invoices are not dunned until the promised date"
    )
    add.add_argument("customer", metavar="CUSTOMER")
    add.add_argument("--amount", required=True, help="in major units, e.g. 1200.00")
    add.add_argument("--currency", required=True, help="ISO 4217, e.g. EUR")
    add.add_argument("--date", required=True, type=_date, help="the promised date, YYYY-MM-DD")
    add.add_argument("--by", required=True, help="your name (who took the call)")
    covers = add.add_mutually_exclusive_group(required=True)
    covers.add_argument("--invoice", action="append", metavar="ID", help="a covered invoice")
    covers.add_argument(
        "--all-overdue", action="store_true", help="every invoice in the currency overdue today"
    )
    add.add_argument("--note")
    add.add_argument("--today", type=_date, help=today_help)
    plist = promise_commands.add_parser("list", help="promises with their outcomes")
    plist.add_argument("customer", nargs="?", metavar="CUSTOMER")
    plist.add_argument("--as-of", type=_date, help="outcomes as of (default: today)")
    cancel = promise_commands.add_parser("cancel", help="withdraw a promise that is still open")
    cancel.add_argument("id", type=_positive, metavar="ID")
    cancel.add_argument("--by", required=True, help="your name")
    cancel.add_argument("--today", type=_date, help=today_help)

    holds = commands.add_parser("holds", help="invoice holds: dispute, audit, agreed delay")
    hold_commands = holds.add_subparsers(dest="holds_command", required=True)
    hold = hold_commands.add_parser("add", help="hold an invoice out of the letters until a date")
    hold.add_argument("invoice", metavar="INVOICE")
    hold.add_argument("--until", required=True, type=_date, help="the last day held")
    hold.add_argument("--reason", required=True, help="dispute, audit, agreed_delay or other")
    hold.add_argument("--by", required=True, help="your name")
    hold.add_argument(
        "--from", dest="held_from", type=_date, help="first day held (default: today)"
    )
    hold.add_argument("--note")
    hold.add_argument("--today", type=_date, help=today_help)
    hlist = hold_commands.add_parser("list", help="holds, latest first, with their state")
    hlist.add_argument("customer", nargs="?", metavar="CUSTOMER")
    hlist.add_argument("--as-of", type=_date, help="state as of (default: today)")
    release = hold_commands.add_parser("release", help="end a hold early")
    release.add_argument("id", type=_positive, metavar="ID")
    release.add_argument("--by", required=True, help="your name")
    release.add_argument("--note")
    release.add_argument("--today", type=_date, help=today_help)

    web = commands.add_parser("web", help="the approver's page")
    web.add_argument("--host", help="listen address (default AR_WEB_HOST, 127.0.0.1)")
    web.add_argument("--port", type=_port, help="port (default AR_WEB_PORT, 8080)")
    commands.add_parser(
        "hash-password", help="hash a password for AR_WEB_USERS / AR_WEB_USERS_FILE"
    )

    calls = commands.add_parser("worklist", help="today's calls: whom to phone first, and why")
    calls.add_argument("--as-of", type=_date, help="day of the list (default: today)")
    calls.add_argument("--limit", type=_whole(1, 100_000), default=20, help="rows per currency")
    calls.add_argument(
        "--backtest", action="store_true", help="also how the rule did on past mornings"
    )

    commands.add_parser("bench", help="the performance benchmark (see `ar-pipeline bench -h`)")

    alga = commands.add_parser("alga", help="Alga PSA source: service-period repair plans")
    alga_commands = alga.add_subparsers(dest="alga_command", required=True)
    plans = alga_commands.add_parser(
        "repair-plans",
        help="write each repair plan's service periods as JSON for Alga's cutover helpers",
    )
    plans.add_argument("--as-of", type=_date, help="the plans of this run date (default: latest)")
    plans.add_argument("--out", default="repair-plans", help="folder (default ./repair-plans)")

    apply = commands.add_parser("apply", help="apply one approved action now")
    apply.add_argument("id", type=_positive, metavar="ID")
    apply.add_argument("--as-of", type=_date, help="balance re-check date (default: today)")
    return parser


def _today(settings: Settings) -> dt.date:
    return dt.datetime.now(settings.timezone).date()


def _prepare(settings: Settings) -> Any:
    from ar_pipeline.defs.runs import ensure_dagster_home
    from ar_pipeline.rules.views import upgrade_database
    from ar_pipeline.store.database import open_database

    engine = open_database(settings.database_url, settings.database_setting)
    upgrade_database(engine)
    ensure_dagster_home(settings)
    return engine


def cmd_db_upgrade(settings: Settings) -> None:
    _prepare(settings)
    print(f"Business database is up to date: {_redacted(settings.database_url)}")
    print(f"Dagster instance: {settings.dagster_home}")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def seed_ledger(
    settings: Settings, customers: int, months: int, seed: int, end_date: dt.date | None
) -> Any:
    from ar_pipeline.sources.ledger_generator import generate_ledger, ledger_is_empty
    from ar_pipeline.store.database import analyze
    from ar_pipeline.store.schema import customers as customers_table
    from ar_pipeline.store.schema import invoices, payments, sync_log

    engine = _prepare(settings)
    today = _today(settings)
    end = end_date or today
    now = dt.datetime.now(dt.UTC)
    synced_until = now if end >= today else dt.datetime.combine(end, dt.time(6), settings.timezone)
    with engine.begin() as connection:
        if not ledger_is_empty(connection):
            raise CliError("the ledger already has customers; seed only writes an empty ledger")
        summary = generate_ledger(
            connection,
            customer_count=customers,
            months=months,
            seed=seed,
            end_date=end,
            synced_until=synced_until,
        )
    analyze(engine, [customers_table, invoices, payments, sync_log])
    return summary


def cmd_seed(settings: Settings, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    summary = seed_ledger(settings, args.customers, args.months, args.seed, args.end_date)
    print(
        f"Seeded {summary.customers:,} customers, {summary.invoices:,} invoices, "
        f"{summary.credit_notes:,} credit notes and {summary.payments:,} payments "
        f"in {time.perf_counter() - started:.1f} s."
    )


LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "WARN", "INFO", "DEBUG", "NOTSET")


def _refuse_what_dagster_would_ignore(job: Any, loaded: dict[str, Any]) -> None:
    """Config that Dagster's check lets through and then ignores or fails on at launch: config
    for a step that takes none (its schema is "anything": the values would be silently
    unused), and a logger's level, checked only when the run starts."""
    from dagster._config import ConfigTypeKind  # the kind of "anything"

    ops = loaded.get("ops")
    if isinstance(ops, dict):
        for name, node_config in ops.items():
            if not (isinstance(node_config, dict) and "config" in node_config):
                continue
            try:
                schema = job.graph.node_named(name).definition.config_schema
            except Exception:  # noqa: BLE001 - an unknown step: Dagster's check names it
                continue
            if schema is None or schema.config_type.kind == ConfigTypeKind.ANY:
                raise CliError(f"--config: ops.{name}.config: this step takes no config")
    loggers = loaded.get("loggers")
    if isinstance(loggers, dict):
        for name, logger in loggers.items():
            level = ((logger or {}).get("config") or {}).get("log_level") if isinstance(
                logger, dict) else None  # fmt: skip
            # a level of the wrong type is Dagster's check's to name ("must be text")
            if isinstance(level, str) and level.upper() not in LOG_LEVELS:
                raise CliError(
                    f"--config: loggers.{name}.config.log_level: must be one of "
                    f"{', '.join(LOG_LEVELS)}, got {level!r}"
                )


def _load_run_config(path: Path | None, settings: Settings) -> dict[str, Any]:
    """The ``--config`` file, checked before anything is written: its shape as Dagster checks
    it at launch, then the tier rules. Every problem is one line naming the field path."""
    from ar_pipeline.definitions import build_definitions
    from ar_pipeline.defs.runs import RunConfigError, check_run_config
    from ar_pipeline.rules.tiering import TierConfigError

    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as error:
        raise CliError(f"--config: cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"--config: {path} is not a text file (UTF-8 YAML)") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise CliError(f"--config: {path} is not valid YAML: {error.problem}{where}") from None
    except yaml.YAMLError as error:
        raise CliError(f"--config: {path} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        shown = "an empty file" if loaded is None else repr(loaded)
        shown = shown if len(shown) <= 60 else f"{shown[:57]}..."
        raise CliError(f"--config: must be a mapping of run config like 'ops: ...', got {shown}")
    if "resources" in loaded:
        raise CliError(
            "--config: resources: the database, mail and sources come from the AR_* settings, "
            "not from run config"
        )
    job = build_definitions(settings).resolve_job_def("ar_aging_daily")
    _refuse_what_dagster_would_ignore(job, loaded)
    try:
        resolved = check_run_config(job, loaded)
    except RunConfigError as error:
        raise CliError(f"--config: {error}") from None
    try:
        from ar_pipeline.defs.assets import TieringConfig

        tier_config = resolved.get("ops", {}).get("tier_assignments", {}).get("config")
        TieringConfig(**(tier_config or {})).resolve()
    except TierConfigError as error:
        raise CliError(f"--config: ops.tier_assignments.config.{error}") from None
    return loaded


def run_and_report(
    settings: Settings,
    as_of: dt.date,
    run_config: dict[str, Any],
    trend_from: dt.date | None = None,
) -> bool:
    """Run the daily job for ``as_of``, fill the trend (the day's partition, or every day from
    ``trend_from`` in one run) and print the summary."""
    import dagster as dg

    from ar_pipeline.definitions import build_definitions
    from ar_pipeline.defs.runs import run_daily_job

    _prepare(settings)
    from ar_pipeline.defs.resources import ArDatabase
    from ar_pipeline.defs.runs import record_dagster_run

    defs = build_definitions(settings)
    with dg.DagsterInstance.get() as instance:
        result = run_daily_job(defs, as_of, instance, run_config)
        # the run-status sensors do this too when a daemon runs; whichever is first writes
        error = None if result.success else "; ".join(_step_errors(result))
        record_dagster_run(
            instance, result.dagster_run, ArDatabase.from_settings(settings), result.success, error
        )
        if result.success:
            fill_trend(defs, trend_from or as_of, as_of, instance, result.run_id)
            fill_worklist(defs, as_of, instance, result.run_id)
    if not result.success:
        print(f"Run {result.run_id} FAILED as of {as_of}:", file=sys.stderr)
        for message in _step_errors(result):
            print(f"  {message}", file=sys.stderr)
        return False
    from ar_pipeline.defs.assets import TieringConfig

    tier_config = ((run_config or {}).get("ops", {}).get("tier_assignments") or {}).get("config")
    _, tiers = TieringConfig(**(tier_config or {})).resolve()  # checked before the run
    print_summary(settings, as_of, result, tiers)
    return True


def _run_after_daily(
    job: Any, keys: list[str], tags: dict[str, str], instance: Any
) -> tuple[str | None, Any]:
    """Run ``job`` for the partitions ``keys`` (a single-run backfill when there are several)
    under ``tags``, the run key the daemon's sensor would use after the same daily run, unless
    a run with those tags exists already: then its id and no outcome."""
    import dagster as dg
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from ar_pipeline.defs.runs import QUIET_LOGGING

    already = instance.get_runs(filters=dg.RunsFilter(tags=tags), limit=1)
    if already:
        return already[0].run_id, None
    if len(keys) == 1:
        partition = {"partition_key": keys[0]}
    else:
        partition = {}
        tags = {**tags, ASSET_PARTITION_RANGE_START_TAG: keys[0],
                ASSET_PARTITION_RANGE_END_TAG: keys[-1]}  # fmt: skip
    outcome = job.execute_in_process(
        instance=instance, run_config=QUIET_LOGGING, tags=tags, raise_on_error=False,
        **partition,
    )  # fmt: skip
    return None, outcome


def fill_trend(
    defs: Any, first: dt.date, last: dt.date, instance: Any, daily_run_id: str
) -> None:
    """Materialize the ``ar_aging_summary`` partitions ``first``..``last`` (those the trend
    has) in one run after the daily run ``daily_run_id``: a single-run backfill when there are
    several. After one day's run the day before is rebuilt first, in its own run, as the
    daemon's sensor does: its day is over, so its row becomes final. Each run carries the run
    key the daemon's sensor would use for that daily run, so with a daemon up no partition is
    materialized twice (``ar_pipeline.defs.sensors``)."""
    from ar_pipeline.defs.sensors import previous_day_run_tags, trend_run_tags

    job = defs.resolve_job_def("ar_aging_summary_job")
    keys = job.partitions_def.get_partition_keys()
    wanted = [k for k in keys if first.isoformat() <= k <= last.isoformat()]
    if not wanted:
        print(f"(no trend partition for {last}: AR_TREND_START_DATE is later)")
        return
    previous = (first - dt.timedelta(days=1)).isoformat()
    if first == last and previous in keys:  # the day before is over: its row made final
        _, before = _run_after_daily(job, [previous], previous_day_run_tags(daily_run_id),
                                     instance)  # fmt: skip
        if before is not None and not before.success:
            print(f"Trend {previous} FAILED: {'; '.join(_step_errors(before))}",
                  file=sys.stderr)  # fmt: skip
    already, outcome = _run_after_daily(job, wanted, trend_run_tags(daily_run_id), instance)
    if already:
        print(f"(the trend partition of {last} was requested by the daemon: run {already})")
    elif not outcome.success:
        print(f"Trend {wanted[0]}..{wanted[-1]} FAILED: {'; '.join(_step_errors(outcome))}",
              file=sys.stderr)  # fmt: skip


def fill_worklist(defs: Any, as_of: dt.date, instance: Any, daily_run_id: str) -> None:
    """Materialize the ``collection_worklist`` partition of ``as_of`` after the daily run
    ``daily_run_id``, under the run key the daemon's sensor would use (as :func:`fill_trend`)."""
    from ar_pipeline.defs.jobs import WORKLIST_JOB
    from ar_pipeline.defs.sensors import worklist_run_tags

    job = defs.resolve_job_def(WORKLIST_JOB)
    if as_of.isoformat() not in job.partitions_def.get_partition_keys():
        print(f"(no worklist partition for {as_of}: AR_TREND_START_DATE is later)")
        return
    tags = worklist_run_tags(daily_run_id)
    already, outcome = _run_after_daily(job, [as_of.isoformat()], tags, instance)
    if not already and not outcome.success:  # the daemon's sensor was first: nothing to say
        print(f"Worklist {as_of} FAILED: {'; '.join(_step_errors(outcome))}", file=sys.stderr)


def _step_errors(result: Any) -> list[str]:
    """Each failed step's error with its causes ("Exceeded max_retries" alone says little)."""
    messages = []
    for event in result.all_events:
        if not (event.is_step_failure and event.step_failure_data.error):
            continue
        error, chain = event.step_failure_data.error, []
        while error is not None:
            chain.append(error.message.strip())
            error = error.cause
        messages.append(f"{event.step_key}: " + " <- ".join(chain))
    return messages


CHECK_LABELS = {
    "aging_data_fresh": "Payment data freshness",
    "ledger_sane": "Ledger rows that cannot be right",
    "actions_staged": "Staging verified",
    "service_periods_replenished": "Service periods replenished",
    "service_periods_continuous": "Service period continuity",
    "unapplied_credit_not_negative": "Credit on account (Alga PSA)",
    "alga_rows_mapped": "Alga rows mapped",
    "service_periods_not_on_voided_invoices": "Service periods on voided invoices",
}


def print_summary(
    settings: Settings, as_of: dt.date, result: Any, tiers: Sequence[Any] | None = None
) -> None:
    """What a finance person reads after a run; ``tiers``: the run's tier definitions (the
    ``--config`` ones, else the defaults)."""
    from ar_pipeline.rules.aging import BUCKET_COLUMNS
    from ar_pipeline.rules.money import format_money
    from ar_pipeline.rules.reporting import aging_totals, largest_overdue, tier_outcomes
    from ar_pipeline.rules.tiering import DEFAULT_TIERS
    from ar_pipeline.store.database import get_engine

    engine = get_engine(settings.database_url)
    with engine.connect() as connection:
        totals = aging_totals(connection, as_of)
        outcomes = tier_outcomes(connection, as_of)
        top = largest_overdue(connection, as_of, limit=5)

    print(f"\nReceivables aged as of {as_of} (run {result.run_id})\n")
    if not totals:
        print("  No open receivables.")
    labels = {
        "current_cents": "Not yet due",
        "days_1_30_cents": "1-30 days overdue",
        "days_31_60_cents": "31-60 days overdue",
        "days_61_90_cents": "61-90 days overdue",
        "days_91_120_cents": "91-120 days overdue",
        "days_over_120_cents": "Over 120 days overdue",
    }
    rows = [(labels[c], c) for c in BUCKET_COLUMNS.values()] + [
        ("Total open", "total_open_cents"),
        ("  of which over 90 days", "days_over_90_cents"),
        ("  of which disputed", "disputed_cents"),
        ("  of which held (holds, promises)", "held_cents"),
        ("Unapplied credit", "unapplied_credit_cents"),
        ("Net receivables (open less credit)", "net_balance_cents"),
        ("Dunnable (overdue, undisputed, net)", "dunnable_cents"),
    ]
    width = 22
    print(f"  {'':38}" + "".join(f"{t.currency:>{width}}" for t in totals))
    for label, column in rows:
        cells = "".join(f"{format_money(t.cents[column], t.currency):>{width}}" for t in totals)
        print(f"  {label:38}{cells}")
    print(
        f"  {'Customers with a balance / overdue':38}"
        + "".join(f"{f'{t.customers} / {t.customers_overdue}':>{width}}" for t in totals)
    )

    if settings.alga is not None:
        from ar_pipeline.defs.alga_assets import BASE_FEE_NOTE, unbilled_lines

        with engine.connect() as connection:
            unbilled = unbilled_lines(connection, as_of)
            voided = unbilled_lines(connection, as_of, voided=True)
        print("\nUnbilled due work (Alga PSA service periods never invoiced; not in the AR above)")
        for line in unbilled or ["none"]:
            print(f"  {line}")
        if voided:
            print("  Billed on a voided invoice (the periods still say billed; invoiced nowhere):")
            for line in voided:
                print(f"    {line}")
        print(f"  ({BASE_FEE_NOTE})")

    print("\nDunning steps proposed today")
    for tier in tiers or DEFAULT_TIERS:
        count = outcomes.get(f"tier_{tier.tier}", 0)
        print(f"  Tier {tier.tier} {tier.name.replace('_', ' '):<16} {count:>6} customers")
    skip_labels = {
        "below_minimum": "below the minimum amount",
        "paused": "dunning paused",
        "cooldown": "waiting out the cooldown",
        "already_at_tier": "already at their tier",
        "in_flight": "step approved, not yet sent",
    }
    for reason, label in skip_labels.items():
        print(f"  Skipped: {label:<28} {outcomes.get(reason, 0):>6} customers")

    with engine.connect() as connection:
        from ar_pipeline.rules.trend import recent_rows

        trend_today = recent_rows(connection, as_of, 1)
    def shown(value: Any) -> str:
        return "-" if value is None else str(value)

    for row in trend_today:
        print(
            f"\nKPIs ({row['currency']}, net receivables): DSO {shown(row['dso_days'])} days, "
            f"best possible {shown(row['best_possible_dso_days'])}, average days delinquent "
            f"{shown(row['average_days_delinquent'])}, CEI {shown(row['cei_pct'])} %, "
            f"over 90 days {shown(row['over_90_pct'])} % of net AR"
            f"\n  on open items alone (gross): DSO {shown(row['dso_gross_days'])} days, "
            f"CEI {shown(row['cei_gross_pct'])} %, over 90 days {shown(row['over_90_gross_pct'])} %"
        )

    if top:
        print("\nLargest overdue balances (per currency)")
        for r in top:
            print(
                f"  {r.customer_name[:40]:<40} {format_money(r.overdue_cents, r.currency):>18}"
                f"   oldest {r.max_days_overdue} days overdue"
            )

    print_calls(engine, as_of, limit=3)

    for evaluation in result.get_asset_check_evaluations():
        state = "OK" if evaluation.passed else evaluation.severity.value
        label = CHECK_LABELS.get(evaluation.check_name)
        print(f"\n{label or evaluation.check_name}: {state}: {evaluation.description}")
    print_staged(settings, as_of)
    print(
        "\nThe run is recorded in the Dagster instance; `make dev` opens the UI at "
        "http://127.0.0.1:3000."
    )


RECIPIENTS_LISTED = 20


def print_calls(engine: Any, as_of: dt.date, limit: int, backtest: bool = False) -> None:
    """The first ``limit`` of today's calls per currency, with why; with ``backtest``, how the
    rule did on past mornings against ranking by amount alone."""
    from ar_pipeline.rules import worklist
    from ar_pipeline.rules.money import format_money

    with engine.connect() as connection:
        rows = worklist.top_of_list(connection, as_of, limit)
        tested = worklist.backtest(connection, as_of) if backtest else []
    if not rows:
        print(f"\nToday's calls: none ranked for {as_of} (no dunnable debt, or no worklist run)")
    else:
        print(f"\nToday's calls (first {limit} per currency, by what a call should recover)")
    for row in rows:
        print(
            f"  {row.currency} {row.rank:>3}. {row.customer_name[:36]:<36} expect "
            f"{format_money(row.expected_recovery_cents, row.currency):>16}\n"
            f"         {row.reason}"
        )
    for result in tested:
        print(f"  Backtest {result.summary()}")


def print_recipients(settings: Settings, as_of: dt.date) -> None:
    """Each letter staged for ``as_of`` still waiting for approval, with its address and where
    the address came from; one line when every letter goes to the customer's billing e-mail
    (the own ledger has no other source)."""
    import sqlalchemy as sa

    from ar_pipeline.rules.proposals import recipient_label
    from ar_pipeline.store.database import get_engine
    from ar_pipeline.store.schema import proposed_actions as pa

    with get_engine(settings.database_url).connect() as connection:
        letters = connection.execute(
            sa.select(pa.c.payload_json)
            .where(
                pa.c.as_of == as_of,
                pa.c.action_type == "collection_action",
                pa.c.status == "proposed",
            )
            .order_by(pa.c.action_id)
            .limit(RECIPIENTS_LISTED + 1)
        ).scalars().all()
        source = pa.c.payload_json["to_source"].as_string()
        other_sources = connection.execute(
            sa.select(sa.func.count()).where(
                pa.c.as_of == as_of,
                pa.c.action_type == "collection_action",
                pa.c.status == "proposed",
                source.is_not(None),
                source != "billing_email",
            )
        ).scalar_one()
    if not letters:
        return
    if not other_sources:
        print("  Letters go to each customer's billing e-mail.")
        return
    print("  Letters go to:")
    for payload in letters[:RECIPIENTS_LISTED]:
        to = ", ".join(payload.get("to") or [])
        label = recipient_label(payload.get("to_source"))
        print(f"    {payload.get('customer_name', '')[:40]}: {to} ({label})")
    if len(letters) > RECIPIENTS_LISTED:
        print("    ... (`approvals list` shows them all)")


def print_staged(settings: Settings, as_of: dt.date) -> None:
    """What waits for approval as of ``as_of``, and how to decide it."""
    import sqlalchemy as sa

    from ar_pipeline.rules.proposals import envelope_key
    from ar_pipeline.store.database import get_engine
    from ar_pipeline.store.schema import proposed_actions as pa

    with get_engine(settings.database_url).connect() as connection:
        envelope = connection.execute(
            sa.select(pa.c.action_id, pa.c.payload_json).where(
                pa.c.idempotency_key == envelope_key(as_of)
            )
        ).first()
        if envelope is None:
            return
        waiting = connection.execute(
            sa.select(pa.c.action_type, sa.func.count())
            .where(pa.c.envelope_id == envelope.action_id, pa.c.status == "proposed")
            .group_by(pa.c.action_type)
            .order_by(pa.c.action_type)
        ).all()
        repairs = connection.execute(
            sa.select(sa.func.count()).where(
                pa.c.as_of == as_of,
                pa.c.action_type == "service_period_repair",
                pa.c.status == "proposed",
            )
        ).scalar_one()
        first = connection.execute(
            sa.select(sa.func.min(pa.c.action_id)).where(
                pa.c.envelope_id == envelope.action_id, pa.c.status == "proposed"
            )
        ).scalar_one()
    labels = {"collection_action": "dunning letters", "customer_program": "service holds",
              "email_to_customer": "e-mails on the sales rep's behalf"}  # fmt: skip
    print(f"\nStaged for approval (envelope {envelope.action_id}); nothing has been sent:")
    for action_type, count in waiting:
        print(f"  {count:>6} {labels.get(action_type, action_type)}")
    if repairs:
        print(f"  {repairs:>6} service-period repair plans for Alga PSA (approving one records "
              "the decision; the pipeline changes nothing in Alga)")  # fmt: skip
    print_recipients(settings, as_of)
    cannot = (envelope.payload_json or {}).get("cannot_contact", {})
    cannot_count = sum(cannot.get("count_by_tier", {}).values())
    if cannot_count:
        print(f"  Cannot contact (no billing e-mail): {cannot_count} customers")
    held_back = (envelope.payload_json or {}).get("held_back", {})
    if held_back.get("count"):
        print(f"  Held back (a ledger row cannot be right; fix it first): {held_back['count']} "
              "customers")  # fmt: skip
        for customer in held_back.get("customers", [])[:5]:
            print(f"    {customer['customer_name']}: {customer['reason'][:100]}")
    who = next(iter(sorted(settings.approvers)), "YOUR_NAME")
    note = "" if settings.approvers else "  (set AR_APPROVERS=YOUR_NAME first)"
    prog = _program()
    print("\nReview and decide:")
    print(f"  {prog} approvals list")
    if first is not None:
        print(f"  {prog} approvals approve {first} --by {who}{note}")
        print(f"  {prog} approvals reject {first} --by {who} --reason '...'")
    print(f"  {prog} approvals approve {envelope.action_id} --by {who}   (the whole envelope)")
    print(f"  {prog} web   (the same in a browser)")
    print("Approved actions are sent by the apply job: the sensor in `make dev`, or "
          f"`{prog} apply ID`.")  # fmt: skip


def _program() -> str:
    """How the user called us (``.venv/bin/ar-pipeline`` from ``make demo``)."""
    called = sys.argv[0] if sys.argv else ""
    return called if called.endswith("ar-pipeline") else "ar-pipeline"


def cmd_approvals(settings: Settings, args: argparse.Namespace) -> None:
    from ar_pipeline.actions import approvals
    from ar_pipeline.store.database import get_engine

    engine = _prepare(settings)
    now = dt.datetime.now(dt.UTC)
    if args.approvals_command == "list":
        with engine.connect() as connection:
            rows = approvals.list_actions(connection, args.status, args.limit)
        print_actions(rows, now)
        return
    # one transaction: a refusal (DecisionRefused, an unknown ID) changes nothing (see main)
    with get_engine(settings.database_url).begin() as connection:
        if args.approvals_command == "approve":
            decisions = approvals.approve(connection, args.ids, args.by, settings.approvers, now)
        elif args.approvals_command == "resolve":
            decisions = approvals.resolve(
                connection, args.ids, args.resolution, args.by, settings.approvers, now,
                args.note,
            )  # fmt: skip
        else:
            decisions = approvals.reject(
                connection, args.ids, args.by, args.reason, settings.approvers, now
            )
    for d in decisions:
        extra = f" (and {d.children} proposals in this envelope)" if d.children else ""
        print(f"  {d.action_id}: {d.outcome}{extra}")


def cmd_promises(settings: Settings, args: argparse.Namespace) -> None:
    """``promises add|list|cancel``: one transaction; a refusal writes nothing (see main)."""
    import sqlalchemy as sa

    from ar_pipeline.actions import levers
    from ar_pipeline.rules.levers import promise_outcomes
    from ar_pipeline.rules.money import format_money
    from ar_pipeline.store.schema import promise_invoices

    engine = _prepare(settings)
    now = dt.datetime.now(dt.UTC)
    today = getattr(args, "today", None) or _today(settings)
    if args.promises_command == "list":
        as_of = args.as_of or today
        query = promise_outcomes(as_of).subquery("outcomes")
        select = sa.select(query)
        with engine.connect() as connection:
            if args.customer:  # an unknown customer is refused by name, not listed as empty
                customer = levers.require_customer(connection, args.customer)
                select = select.where(query.c.customer_id == customer)
            rows = connection.execute(select).all()
            covered: dict[int, list[str]] = {}
            for promise_id, invoice_id in connection.execute(
                sa.select(promise_invoices.c.promise_id, promise_invoices.c.invoice_id)
                .where(promise_invoices.c.promise_id.in_([r.promise_id for r in rows]))
                .order_by(promise_invoices.c.invoice_id)
            ):
                covered.setdefault(promise_id, []).append(invoice_id)
        if not rows:
            print("No promises.")
            return
        print(f"Promises as of {as_of}:")
        print(f"{'ID':>6}  {'CUSTOMER':<10} {'AMOUNT':>16} {'BY DATE':<10} {'OUTCOME':<11} "
              f"{'ARRIVED':>16}  RECORDED / INVOICES")  # fmt: skip
        for r in rows:
            print(
                f"{r.promise_id:>6}  {r.customer_id:<10} "
                f"{format_money(r.amount_cents, r.currency):>16} {r.promised_date!s:<10} "
                f"{r.outcome:<11} {format_money(r.arrived_cents, r.currency):>16}  "
                f"{r.recorded_on} by {r.recorded_by}"
                + (f", cancelled {r.cancelled_on} by {r.cancelled_by}" if r.cancelled_on else "")
                + f"; {', '.join(covered.get(r.promise_id, []))}"
                + (f" ({r.note})" if r.note else "")
            )
        return
    with engine.begin() as connection:
        if args.promises_command == "add":
            promise_id = levers.record_promise(
                connection, customer_id=args.customer, amount=args.amount,
                currency=args.currency, promised_date=args.date, recorded_by=args.by,
                today=today, now=now, invoice_ids=args.invoice or (),
                all_overdue=args.all_overdue, note=args.note,
            )  # fmt: skip
            print(f"Recorded promise {promise_id}: {args.customer} pays {args.amount} "
                  f"{args.currency.upper()} by {args.date}; its invoices are held until then.")
        else:
            levers.cancel_promise(connection, args.id, cancelled_by=args.by, today=today, now=now)
            print(f"Cancelled promise {args.id}: its invoices are dunnable again from {today}.")


def cmd_holds(settings: Settings, args: argparse.Namespace) -> None:
    """``holds add|list|release``: one transaction; a refusal writes nothing (see main)."""
    import sqlalchemy as sa

    from ar_pipeline.actions import levers
    from ar_pipeline.rules.levers import hold_history

    engine = _prepare(settings)
    now = dt.datetime.now(dt.UTC)
    today = getattr(args, "today", None) or _today(settings)
    if args.holds_command == "list":
        as_of = args.as_of or today
        query = hold_history(as_of).subquery("holds")
        select = sa.select(query)
        with engine.connect() as connection:
            if args.customer:  # an unknown customer is refused by name, not listed as empty
                customer = levers.require_customer(connection, args.customer)
                select = select.where(query.c.customer_id == customer)
            rows = connection.execute(select).all()
        if not rows:
            print("No holds.")
            return
        print(f"Holds as of {as_of}:")
        print(f"{'ID':>6}  {'INVOICE':<12} {'CUSTOMER':<10} {'REASON':<13} {'FROM':<10} "
              f"{'UNTIL':<10} {'STATE':<9} RECORDED")  # fmt: skip
        for r in rows:
            print(
                f"{r.hold_id:>6}  {r.invoice_id:<12} {r.customer_id:<10} {r.reason:<13} "
                f"{r.held_from!s:<10} {r.held_until!s:<10} {r.state:<9} "
                f"{r.recorded_on} by {r.recorded_by}"
                + (f"; released {r.released_on} by {r.released_by}" if r.released_on else "")
                + (f" ({r.note})" if r.note else "")
            )
        return
    with engine.begin() as connection:
        if args.holds_command == "add":
            hold_id = levers.record_hold(
                connection, invoice_id=args.invoice, reason=args.reason,
                held_until=args.until, recorded_by=args.by, today=today, now=now,
                held_from=args.held_from, note=args.note,
            )  # fmt: skip
            print(f"Recorded hold {hold_id}: invoice {args.invoice} is not dunned through "
                  f"{args.until} ({args.reason}).")  # fmt: skip
        else:
            levers.release_hold(
                connection, args.id, released_by=args.by, today=today, now=now, note=args.note
            )
            print(f"Released hold {args.id}: the invoice is dunnable again from {today}.")


def print_actions(rows: Sequence[Any], now: dt.datetime) -> None:
    from ar_pipeline.actions.approvals import is_stranded

    if not rows:
        print("No proposals with that status.")
        return
    print(f"{'ID':>7}  {'STATUS':<10} {'TYPE':<18} {'AS OF':<10} {'CUSTOMER':<10} TIER  DETAIL")
    for r in rows:
        payload = r.edited_payload_json or r.payload_json or {}
        if r.action_type == "workflow_envelope":
            cannot = sum(payload.get("cannot_contact", {}).get("count_by_tier", {}).values())
            detail = f"run {str(payload.get('run_id', ''))[:8]}; cannot contact: {cannot}"
        elif r.action_type == "customer_program":
            detail = f"SERVICE HOLD: {payload.get('reason', '')}"
        elif r.action_type == "service_period_repair":
            detail = f"REPAIR {payload.get('schedule_key')}: " + "; ".join(payload["problems"])
        else:
            detail = f"to {', '.join(payload.get('to', []))}: {payload.get('subject', '')}"
        if r.status == "failed" and r.last_error:
            detail = f"FAILED: {r.last_error} | {detail}"
        if r.status == "unconfirmed":
            detail = (
                f"UNCONFIRMED (check whether it arrived, then `approvals resolve {r.action_id} "
                f"--delivered` or `--send-again`): {r.last_error} | {detail}"
            )
        if is_stranded(r.status, r.claimed_at, now):
            since = r.claimed_at or r.decided_at
            detail = (
                f"STUCK in applying since {since:%Y-%m-%d %H:%M} UTC (a crash mid-send?); "
                f"check whether it went out, then `approvals resolve {r.action_id} "
                f"--delivered` or `--send-again` | {detail}"
            )
        tier = "" if r.tier is None else str(r.tier)
        print(
            f"{r.action_id:>7}  {r.status:<10} {r.action_type:<18} {r.as_of!s:<10} "
            f"{(r.customer_id or ''):<10} {tier:>4}  {detail[:110]}"
        )


def cmd_apply(settings: Settings, args: argparse.Namespace) -> bool:
    import dagster as dg
    import sqlalchemy as sa

    from ar_pipeline.actions.approvals import DecisionRefused, require_known
    from ar_pipeline.definitions import build_definitions
    from ar_pipeline.defs.runs import QUIET_LOGGING
    from ar_pipeline.store.schema import NEVER_APPLIED_TYPES, proposed_actions

    with _prepare(settings).connect() as connection:
        require_known(connection, [args.id])
        kind = connection.execute(
            sa.select(proposed_actions.c.action_type).where(
                proposed_actions.c.action_id == args.id
            )
        ).scalar_one()
    if kind in NEVER_APPLIED_TYPES:
        what = {"workflow_envelope": "a run's envelope: its proposals are applied one by one",
                "service_period_repair": "a repair plan: the repair is done in Alga PSA"}[kind]
        raise DecisionRefused(f"ID: {args.id} is {what}; nothing was changed")
    job = build_definitions(settings).resolve_job_def("apply_approved_actions")
    config: dict[str, Any] = {"action_ids": [args.id]}
    if args.as_of:
        config["as_of"] = args.as_of.isoformat()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            run_config={"ops": {"apply_approved": {"config": config}}, **QUIET_LOGGING},
            instance=instance,
            raise_on_error=False,
        )
    if not result.success:
        print(f"Apply run {result.run_id} FAILED: {'; '.join(_step_errors(result))}",
              file=sys.stderr)  # fmt: skip
        return False
    counts = result.output_for_node("apply_approved")
    print(f"Apply run {result.run_id}: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    if counts.get("not_claimed"):
        print(f"Action {args.id} was not applied: it is not approved, or another run has it. "
              "See `ar-pipeline approvals list --status approved`.")  # fmt: skip
    return counts.get("applied", 0) > 0 or counts.get("superseded", 0) > 0


def cmd_web(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    from ar_pipeline.rules.trend import recent_rows
    from ar_pipeline.web.accounts import load_accounts
    from ar_pipeline.web.app import create_app, session_secret

    engine = _prepare(settings)
    accounts = load_accounts(settings)
    if not accounts:
        raise CliError(
            "no accounts: set AR_WEB_USERS_FILE or AR_WEB_USERS (see `ar-pipeline hash-password`)"
        )

    def chart_rows() -> list[dict[str, Any]]:
        with engine.connect() as connection:
            return recent_rows(connection, _today(settings), 365)

    app = create_app(
        engine, accounts, settings.approvers, session_secret(settings), chart_rows=chart_rows,
        secure_cookie=settings.web_secure_cookie, timezone=settings.timezone,
    )
    host, port = args.host or settings.web_host, args.port or settings.web_port
    print(f"Approver's page on http://{host}:{port}/ (Ctrl+C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def cmd_hash_password() -> None:
    import getpass

    from ar_pipeline.web.accounts import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            raise CliError("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise CliError("password: use at least 8 characters")
    print(hash_password(password))


DEMO_TREND_DAYS = dt.timedelta(days=364)  # today and the 364 days before: a year of partitions


def cmd_demo(settings: Settings) -> bool:
    from ar_pipeline.sources.ledger_generator import ledger_is_empty

    started = time.perf_counter()
    engine = _prepare(settings)
    with engine.connect() as connection:
        empty = ledger_is_empty(connection)
    trend_from = None
    if empty:
        summary = seed_ledger(settings, 500, 18, 42, None)
        print(
            f"Generated a demo ledger: {summary.customers:,} customers, "
            f"{summary.invoices:,} invoices, {summary.credit_notes:,} credit notes, "
            f"{summary.payments:,} payments over 18 months."
        )
        # A new ledger has a history: fill the trend's last year in one run (one SQL
        # aggregation; Dagster records a materialization per day, about 30 ms each on SQLite).
        # The ledger's first months are its warm-up, AR building up from nothing.
        trend_from = max(settings.trend_start_date, _today(settings) - DEMO_TREND_DAYS)
        _seed_demo_levers(engine, _today(settings))
        print(f"Filling the aging trend from {trend_from} in one run...")
    ok = run_and_report(settings, _today(settings), {}, trend_from=trend_from)
    print(f"(demo took {time.perf_counter() - started:.1f} s)")
    return ok


def _seed_demo_levers(engine: Any, today: dt.date) -> None:
    """One promise to pay and one invoice hold in a new demo ledger, so that the customer
    screen and today's run show them: the two customers with the most overdue (in one
    currency), the first promising all of it in a week, the second's oldest overdue invoice held
    for a dispute for two weeks."""
    import sqlalchemy as sa

    from ar_pipeline.actions import levers
    from ar_pipeline.rules.aging import AgingSource, as_of_dates
    from ar_pipeline.rules.money import format_amount

    items = AgingSource(as_of_dates([today])).open_items().subquery("items")
    overdue = sa.func.sum(items.c.open_cents)
    with engine.begin() as connection:
        top = connection.execute(
            sa.select(items.c.customer_id, items.c.currency, overdue.label("cents"),
                      sa.func.min(items.c.invoice_id).label("first_invoice"))
            .where(items.c.days_overdue > 0, ~items.c.disputed)
            .group_by(items.c.customer_id, items.c.currency)
            .order_by(overdue.desc(), items.c.customer_id)
            .limit(2)
        ).all()  # fmt: skip
        if len(top) < 2:
            return
        now = dt.datetime.now(dt.UTC)
        promised = top[0]
        promise_id = levers.record_promise(
            connection, customer_id=promised.customer_id,
            amount=format_amount(int(promised.cents), promised.currency).replace(",", ""),
            currency=promised.currency, promised_date=today + dt.timedelta(days=7),
            recorded_by="demo", today=today, now=now, all_overdue=True,
            note="demo: promised on the phone",
        )  # fmt: skip
        hold_id = levers.record_hold(
            connection, invoice_id=top[1].first_invoice, reason="dispute",
            held_until=today + dt.timedelta(days=14), recorded_by="demo", today=today, now=now,
            note="demo: disputed on the phone",
        )  # fmt: skip
    print(
        f"Recorded for the demo: promise {promise_id} ({promised.customer_id} pays everything "
        f"overdue in {promised.currency} by {today + dt.timedelta(days=7)}) and hold {hold_id} "
        f"(invoice {top[1].first_invoice} of {top[1].customer_id}, a dispute, through "
        f"{today + dt.timedelta(days=14)}): `ar-pipeline promises list`, `ar-pipeline holds "
        f"list`, or the customer's screen on the approver's page."
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # the benchmark has its own options (ar_pipeline.bench.run)
        from ar_pipeline.bench.run import main as bench_main

        return bench_main(argv[1:])
    # Dagster's own beta/preview notices mean nothing to a finance user at a terminal.
    warnings.filterwarnings("ignore", module="dagster")
    try:
        args = build_parser().parse_args(argv)
        settings = load_settings()
        if args.command == "db":
            cmd_db_upgrade(settings)
        elif args.command == "seed":
            cmd_seed(settings, args)
        elif args.command == "demo":
            return 0 if cmd_demo(settings) else 1
        elif args.command == "approvals":
            cmd_approvals(settings, args)
        elif args.command == "promises":
            cmd_promises(settings, args)
        elif args.command == "holds":
            cmd_holds(settings, args)
        elif args.command == "web":
            cmd_web(settings, args)
        elif args.command == "hash-password":
            cmd_hash_password()
        elif args.command == "apply":
            return 0 if cmd_apply(settings, args) else 1
        elif args.command == "alga":
            cmd_alga_repair_plans(settings, args)
        elif args.command == "worklist":
            print_calls(
                _prepare(settings), args.as_of or _today(settings), args.limit, args.backtest
            )
        elif args.command == "run":
            run_config = _load_run_config(args.config, settings)
            as_of = args.as_of or _today(settings)
            return 0 if run_and_report(settings, as_of, run_config) else 1
    except Exception as error:
        message = _user_error(error)
        if message is None:
            raise
        print(f"ar-pipeline: error: {message}", file=sys.stderr)
        return 2
    return 0


def cmd_alga_repair_plans(settings: Settings, args: argparse.Namespace) -> None:
    """Write the service periods of each repair plan of a run date to
    ``<out>/<n>-<schedule>.existing.json``: a JSON array of Alga's
    ``IRecurringServicePeriodRecord``, the existing-rows file the cutover runbook's helpers
    (assessRecurringServicePeriodGenerationCoverage, backfillRecurringServicePeriods,
    regenerateRecurringServicePeriods) read; a backfill plan also gets
    ``<n>-<schedule>.obligation.json``. Nothing is written to Alga."""
    from pathlib import Path

    import sqlalchemy as sa

    from ar_pipeline.sources.service_periods import RUNBOOK_FILES, runbook_file
    from ar_pipeline.store.schema import proposed_actions as pa

    engine = _prepare(settings)
    with engine.connect() as connection:
        as_of = args.as_of or connection.execute(
            sa.select(sa.func.max(pa.c.as_of)).where(pa.c.action_type == "service_period_repair")
        ).scalar_one()
        plans = connection.execute(
            sa.select(pa.c.action_id, pa.c.status, pa.c.payload_json)
            .where(pa.c.action_type == "service_period_repair", pa.c.as_of == as_of)
            .order_by(pa.c.action_id)
        ).all()
    if not plans:
        print(f"No service-period repair plans{f' of {as_of}' if as_of else ''}.")
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"Repair plans of {as_of} ({len(plans)}), written to {out}/:")
    for action_id, status, payload in plans:
        files = [runbook_file(action_id, payload, part) for part in RUNBOOK_FILES]
        written = [name for name, _ in filter(None, files)]
        if not written:
            print(f"  {action_id} {payload['schedule_key']} ({status}): staged without rows")
            continue
        for name, text in filter(None, files):
            (out / name).write_text(text)
        print(
            f"  {action_id} {payload['schedule_key']} ({status}, "
            f"{payload.get('runbook_helper', '-')}): {', '.join(written)}"
        )


def _user_error(error: Exception) -> str | None:
    """The one line to print for a user error, or None for anything else (a bug: traceback).

    User errors are raised before anything is written: a bad argument or ``--config`` (CliError),
    a bad setting (SettingsError), a business database that cannot be opened, and a decision
    that is refused or names an unknown ID (nothing was changed). All exit with status 2."""
    from ar_pipeline.actions.approvals import DecisionRefused
    from ar_pipeline.actions.levers import LeverRefused
    from ar_pipeline.store.database import DatabaseUnavailable

    user_errors = CliError | SettingsError | DatabaseUnavailable | DecisionRefused | LeverRefused
    if isinstance(error, user_errors):
        return " ".join(str(error).split())  # one line, whatever the message held
    return None


if __name__ == "__main__":
    sys.exit(main())
