"""The ``ar-pipeline`` console command (DESIGN.md section 2)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ar_pipeline.settings import Settings, SettingsError, load_settings


class CliError(Exception):
    """A user error: printed without a traceback, exit status 2."""


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date like 2026-03-31, got {value!r}"
        ) from None


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ar-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="business database")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="create or migrate the business database")

    seed = commands.add_parser("seed", help="generate a demo ledger in an empty database")
    seed.add_argument("--customers", type=_positive, default=500)
    seed.add_argument("--months", type=_positive, default=18)
    seed.add_argument("--seed", type=int, default=42)
    seed.add_argument("--end-date", type=_date, help="last ledger day (default: today)")

    commands.add_parser("demo", help="seed if empty, run the daily job, print a summary")

    run = commands.add_parser("run", help="run the daily job as a Dagster run")
    run.add_argument("--as-of", type=_date, help="as-of date (default: today in AR_TIMEZONE)")
    run.add_argument("--config", type=Path, help="YAML run config, e.g. tier definitions")
    return parser


def _today(settings: Settings) -> dt.date:
    return dt.datetime.now(settings.timezone).date()


def _prepare(settings: Settings) -> Any:
    from ar_pipeline.database import get_engine, upgrade_database
    from ar_pipeline.runs import ensure_dagster_home

    engine = get_engine(settings.database_url)
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
    from ar_pipeline.database import analyze
    from ar_pipeline.ledger_generator import generate_ledger, ledger_is_empty
    from ar_pipeline.schema import customers as customers_table
    from ar_pipeline.schema import invoices, payments, sync_log

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


def _load_run_config(path: Path | None) -> dict[str, Any]:
    from ar_pipeline.tiering import TierConfigError

    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as error:
        raise CliError(f"--config: cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise CliError(f"--config: {path} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise CliError(f"--config: {path} must hold a mapping of run config")
    tier_config = loaded.get("ops", {}).get("tier_assignments", {}).get("config", {})
    try:
        from ar_pipeline.assets import TieringConfig

        TieringConfig(**tier_config).resolve()
    except TierConfigError as error:
        raise CliError(f"--config: ops.tier_assignments.config.{error}") from None
    except (TypeError, ValueError) as error:
        raise CliError(f"--config: ops.tier_assignments.config: {error}") from None
    return loaded


def run_and_report(settings: Settings, as_of: dt.date, run_config: dict[str, Any]) -> bool:
    import dagster as dg

    from ar_pipeline.definitions import build_definitions
    from ar_pipeline.runs import run_daily_job

    _prepare(settings)
    with dg.DagsterInstance.get() as instance:
        result = run_daily_job(build_definitions(settings), as_of, instance, run_config)
    if not result.success:
        failures = [
            event.step_failure_data.error.message.strip()
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data.error
        ]
        print(f"Run {result.run_id} FAILED as of {as_of}:", file=sys.stderr)
        for message in failures:
            print(f"  {message}", file=sys.stderr)
        return False
    print_summary(settings, as_of, result)
    return True


def print_summary(settings: Settings, as_of: dt.date, result: Any) -> None:
    from ar_pipeline.aging import BUCKET_COLUMNS
    from ar_pipeline.database import get_engine
    from ar_pipeline.reporting import aging_totals, largest_overdue, tier_outcomes
    from ar_pipeline.tiering import DEFAULT_TIERS, format_money

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
        "days_over_90_cents": "Over 90 days overdue",
    }
    rows = [(labels[c], c) for c in BUCKET_COLUMNS.values()] + [
        ("Total open", "total_open_cents"),
        ("  of which disputed", "disputed_cents"),
        ("Unapplied credit", "unapplied_credit_cents"),
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

    print("\nDunning steps proposed today")
    for tier in DEFAULT_TIERS:
        count = outcomes.get(f"tier_{tier.tier}", 0)
        print(f"  Tier {tier.tier} {tier.name.replace('_', ' '):<16} {count:>6} customers")
    skip_labels = {
        "below_minimum": "below the minimum amount",
        "paused": "dunning paused",
        "cooldown": "waiting out the cooldown",
        "already_at_tier": "already at their tier",
    }
    for reason, label in skip_labels.items():
        print(f"  Skipped: {label:<28} {outcomes.get(reason, 0):>6} customers")

    if top:
        print("\nLargest overdue balances")
        for r in top:
            print(
                f"  {r.customer_name[:40]:<40} {format_money(r.overdue_cents, r.currency):>18}"
                f"   oldest {r.max_days_overdue} days overdue"
            )

    for evaluation in result.get_asset_check_evaluations():
        state = "OK" if evaluation.passed else "WARNING"
        print(f"\nPayment data freshness: {state}: {evaluation.description}")
    print(
        "\nThe run is recorded in the Dagster instance; `make dev` opens the UI at "
        "http://127.0.0.1:3000."
    )


def cmd_demo(settings: Settings) -> bool:
    from ar_pipeline.ledger_generator import ledger_is_empty

    started = time.perf_counter()
    engine = _prepare(settings)
    with engine.connect() as connection:
        empty = ledger_is_empty(connection)
    if empty:
        summary = seed_ledger(settings, 500, 18, 42, None)
        print(
            f"Generated a demo ledger: {summary.customers:,} customers, "
            f"{summary.invoices:,} invoices, {summary.credit_notes:,} credit notes, "
            f"{summary.payments:,} payments over 18 months."
        )
    ok = run_and_report(settings, _today(settings), {})
    print(f"(demo took {time.perf_counter() - started:.1f} s)")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "db":
            cmd_db_upgrade(settings)
        elif args.command == "seed":
            cmd_seed(settings, args)
        elif args.command == "demo":
            return 0 if cmd_demo(settings) else 1
        elif args.command == "run":
            run_config = _load_run_config(args.config)
            as_of = args.as_of or _today(settings)
            return 0 if run_and_report(settings, as_of, run_config) else 1
    except (SettingsError, CliError) as error:
        print(f"ar-pipeline: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
