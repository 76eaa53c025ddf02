"""The performance benchmark (``ar-pipeline bench``): figures, not assertions.

For each size (invoices / customers) on a fresh database next to ``AR_DATABASE_URL`` (a new
PostgreSQL database on the same server, or a temporary SQLite file), each step in its own
process so that its peak resident memory is its own:

1. generate the demo ledger in bulk;
2. run the daily job in-process (``ar_aging_daily``) and record the wall time per step, the whole
   run and the peak RSS of the process;
3. the floor, on the same database: the bare aging aggregation (the original workflow's
   ``GROUP BY customer_id`` over open items as of the same date) plus one bulk insert of as many
   rows as the job wrote;
4. a naive baseline: every issued invoice, payment and credit note up to the date read into
   pandas and aged there.

It prints a table and writes it as JSON. ``--apply-throughput`` instead measures how long 1,000
approved letters take to reach a loopback SMTP server with the Dagster daemon and the sensor
running.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ar_pipeline.bench.alga import measure_alga_copy, step_alga_copy
from ar_pipeline.bench.apply import measure_apply_throughput
from ar_pipeline.bench.scratch import AS_OF, ScratchDatabase, in_child, peak_rss_mb

SIZES = {
    "10k": (10_000, 1_000),
    "100k": (100_000, 10_000),
    "300k": (300_000, 30_000),  # just past where AR_INCREMENTAL_BALANCES=auto keeps the state
    "1m": (1_000_000, 100_000),
    "10m": (10_000_000, 1_000_000),
}
# The naive baseline reads the whole ledger into memory: at 10m that is several GiB, so it
# runs only up to this size.
NAIVE_MAX_INVOICES = 1_000_000
TOUCHED_SHARE = 0.01  # the steady-state morning: this share of invoices touched overnight
NEXT_DAY = AS_OF + dt.timedelta(days=1)
MONTHS = 15  # the generator makes about 0.66 invoices a month per customer: ~10 per customer


# --- the steps, each run in a child process ------------------------------------------------


def step_generate(url: str, customers: int) -> dict[str, Any]:
    from ar_pipeline.rules.views import upgrade_database
    from ar_pipeline.sources.ledger_generator import generate_ledger
    from ar_pipeline.store.database import analyze, get_engine
    from ar_pipeline.store.schema import customers as customers_table
    from ar_pipeline.store.schema import invoices, payments, sync_log

    engine = get_engine(url)
    upgrade_database(engine)
    started = time.perf_counter()
    with engine.begin() as connection:
        summary = generate_ledger(
            connection, customer_count=customers, months=MONTHS, seed=7, end_date=AS_OF,
            synced_until=dt.datetime.combine(AS_OF, dt.time(5), dt.UTC),
        )  # fmt: skip
    analyze(engine, [customers_table, invoices, payments, sync_log])
    return {
        "seconds": time.perf_counter() - started,
        "invoices": summary.invoices,
        "customers": summary.customers,
        "payments": summary.payments,
        "credit_notes": summary.credit_notes,
    }


def step_job(
    url: str, data_dir: str, as_of: str = AS_OF.isoformat(), balances: str = "auto"
) -> dict[str, Any]:
    import dagster as dg

    from ar_pipeline.definitions import build_definitions
    from ar_pipeline.defs.runs import run_daily_job
    from ar_pipeline.settings import load_settings
    from ar_pipeline.store.schema import ar_aging, prior_actions, proposed_actions, tier_assignments

    settings = load_settings({"AR_DATABASE_URL": url, "AR_DATA_DIR": data_dir,
                              "AR_INCREMENTAL_BALANCES": balances})
    defs = build_definitions(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        started = time.perf_counter()
        result = run_daily_job(defs, dt.date.fromisoformat(as_of), instance)
        total = time.perf_counter() - started
        if not result.success:
            raise RuntimeError(f"the daily job failed in run {result.run_id}")
        steps = {
            s.step_key: round(s.end_time - s.start_time, 3)
            for s in instance.get_run_step_stats(result.run_id)
            if s.end_time and s.start_time
        }
        (aged,) = [m.materialization for m in result.get_asset_materialization_events()
                   if m.asset_key == dg.AssetKey("ar_aging")]  # fmt: skip
    from ar_pipeline.store.database import get_engine

    day = dt.date.fromisoformat(as_of)
    with get_engine(url).connect() as connection:
        # rows this run wrote: the day's rows of each table
        written = sum(
            connection.execute(sa.select(sa.func.count()).where(t.c.as_of == day)).scalar_one()
            for t in (ar_aging, prior_actions, tier_assignments, proposed_actions)
        )
    return {"seconds": total, "steps": steps, "rows_written": written,
            "balances": aged.metadata["balances"].value, "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def step_touch(url: str, share: float) -> dict[str, Any]:
    """The night before the steady-state morning: ``share`` of the invoices get a payment (one
    in three back-dated into the last week, the rest dated the new day, half of them paying
    the invoice in full), and one new invoice per hundred touched is issued. Written as any
    writer of the ledger writes, journaling nothing itself: the database's triggers journal the
    rows' settlement keys (the invoice each payment names, each new invoice's own id)."""
    from ar_pipeline.store.database import analyze, bulk_insert, get_engine
    from ar_pipeline.store.schema import invoices, payments

    engine = get_engine(url)
    started = time.perf_counter()
    with engine.begin() as connection:
        total = connection.execute(sa.select(sa.func.count()).select_from(invoices)).scalar_one()
        n = max(1, int(total * share))
        picked = connection.execute(
            sa.select(invoices.c.invoice_id, invoices.c.customer_id, invoices.c.currency,
                      invoices.c.amount_cents, invoices.c.due_date)
            .where(invoices.c.kind == "invoice", invoices.c.status == "issued",
                   invoices.c.issue_date <= AS_OF)
            .order_by(sa.func.random())
            .limit(n)
        ).all()  # fmt: skip
        pays, new = [], []
        for k, row in enumerate(picked):
            received = NEXT_DAY if k % 3 else AS_OF - dt.timedelta(days=1 + k % 7)
            cents = row.amount_cents if k % 2 else max(1, row.amount_cents // 2)
            pays.append(
                (f"T{k:09d}", row.customer_id, row.invoice_id, received, row.currency, cents)
            )
            if k % 100 == 0:
                new.append((f"TI{k:09d}", row.customer_id, f"TN{k:09d}", "invoice", "issued",
                            NEXT_DAY, NEXT_DAY + dt.timedelta(days=30), row.currency,
                            10_000 + k, False))  # fmt: skip
        bulk_insert(connection, payments, ["payment_id", "customer_id", "invoice_id",
                    "received_date", "currency", "amount_cents"], pays)  # fmt: skip
        bulk_insert(connection, invoices, ["invoice_id", "customer_id", "invoice_number", "kind",
                    "status", "issue_date", "due_date", "currency", "amount_cents", "disputed"],
                    new)  # fmt: skip
    analyze(engine, [invoices, payments])
    return {"seconds": time.perf_counter() - started, "payments": len(pays),
            "invoices": len(new), "back_dated": sum(1 for p in pays if p[3] <= AS_OF)}  # fmt: skip


def step_history(url: str, days: int) -> dict[str, Any]:
    """A team's history of proposals: the first day's proposals again on each of the ``days``
    days before it, as ``superseded`` (what a day's letters become once a later day replaces
    them or they are decided), one INSERT ... SELECT per day. Staging and its check read the
    proposals of their own day among these."""
    from ar_pipeline.store.database import analyze, get_engine
    from ar_pipeline.store.schema import proposed_actions
    from ar_pipeline.store.sql_functions import bound_date

    engine = get_engine(url)
    pa = proposed_actions.c
    copied = [c.name for c in proposed_actions.columns if c.name != "action_id"]
    started = time.perf_counter()
    with engine.begin() as connection:
        for k in range(1, days + 1):
            values = {
                "idempotency_key": pa.idempotency_key + f":history:{k}",
                "as_of": bound_date(AS_OF - dt.timedelta(days=k)),
                "status": sa.literal("superseded"),
                "superseded_reason": sa.literal("benchmark history"),
            }
            connection.execute(
                proposed_actions.insert().from_select(
                    copied,
                    sa.select(*[values.get(c, pa[c]) for c in copied]).where(pa.as_of == AS_OF),
                )
            )
        rows = connection.execute(sa.select(sa.func.count()).select_from(proposed_actions))
        total = rows.scalar_one()
    analyze(engine, [proposed_actions])
    return {"seconds": time.perf_counter() - started, "days": days, "proposals": total}


def floor_query(as_of: dt.date) -> sa.Select:
    """The original workflow's aggregation, generalised to customer_id and the as-of date:
    open items (issued invoices less payments received by then), overdue ones summed per
    customer. The least any aging must do."""
    from ar_pipeline.store.schema import customers, invoices, payments
    from ar_pipeline.store.sql_functions import bound_date, days_between

    paid = (
        sa.select(payments.c.invoice_id, sa.func.sum(payments.c.amount_cents).label("paid"))
        .where(payments.c.received_date <= as_of, payments.c.invoice_id.is_not(None))
        .group_by(payments.c.invoice_id)
        .subquery("paid")
    )
    open_cents = invoices.c.amount_cents - sa.func.coalesce(paid.c.paid, 0)
    days_overdue = days_between(bound_date(as_of), invoices.c.due_date)
    items = (
        sa.select(
            invoices.c.customer_id,
            open_cents.label("open_cents"),
            days_overdue.label("days_overdue"),
        )
        .select_from(invoices.outerjoin(paid, paid.c.invoice_id == invoices.c.invoice_id))
        .where(
            invoices.c.kind == "invoice",
            invoices.c.status == "issued",
            invoices.c.issue_date <= as_of,
        )
        .subquery("open_items")
    )
    return (
        sa.select(
            items.c.customer_id,
            customers.c.customer_name,
            sa.func.sum(items.c.open_cents).label("total_open"),
            sa.func.max(items.c.days_overdue).label("max_overdue"),
        )
        .join(customers, customers.c.customer_id == items.c.customer_id)
        .where(items.c.open_cents > 0, items.c.days_overdue >= 1)
        .group_by(items.c.customer_id, customers.c.customer_name)
    )


def step_floor(url: str, rows: int, as_of: str = AS_OF.isoformat()) -> dict[str, Any]:
    from ar_pipeline.store.database import bulk_insert, get_engine

    engine = get_engine(url)
    scratch = sa.Table(
        f"bench_floor_{uuid.uuid4().hex[:8]}",
        sa.MetaData(),
        sa.Column("k", sa.BigInteger, primary_key=True),
        sa.Column("customer_id", sa.Text),
        sa.Column("payload", sa.Text),
    )
    scratch.create(engine)
    try:
        started = time.perf_counter()
        with engine.connect() as connection:
            aggregated = connection.execute(floor_query(dt.date.fromisoformat(as_of))).all()
        query_seconds = time.perf_counter() - started
        started = time.perf_counter()
        with engine.begin() as connection:
            bulk_insert(
                connection, scratch, ["k", "customer_id", "payload"],
                ((k, f"C{k:07d}", "x" * 200) for k in range(rows)),
            )  # fmt: skip
        insert_seconds = time.perf_counter() - started
    finally:
        scratch.drop(engine)
    return {
        "seconds": query_seconds + insert_seconds,
        "query_seconds": query_seconds,
        "insert_seconds": insert_seconds,
        "customers_overdue": len(aggregated),
    }


def step_naive(url: str, as_of: str = AS_OF.isoformat()) -> dict[str, Any]:
    """The equal-output pandas baseline (:mod:`ar_pipeline.bench.naive`), timed from reading
    the ledger to the finished rows; then compared with the job's rows of the same date, and
    no time is reported when they differ."""
    from ar_pipeline.bench.naive import differences, job_ar_aging, naive_ar_aging
    from ar_pipeline.store.database import get_engine

    day = dt.date.fromisoformat(as_of)
    engine = get_engine(url)
    started = time.perf_counter()
    with engine.connect() as connection:
        rows = naive_ar_aging(connection, day)
    seconds = time.perf_counter() - started
    with engine.connect() as connection:
        differ = differences(rows, job_ar_aging(connection, day))
    if differ:
        raise RuntimeError("pandas' rows differ from the job's: " + "; ".join(differ[:5]))
    return {"seconds": seconds, "rows": len(rows), "peak_rss_mb": peak_rss_mb()}


STEPS = {"generate": step_generate, "job": step_job, "floor": step_floor, "naive": step_naive,
         "touch": step_touch, "history": step_history, "alga_copy": step_alga_copy}  # fmt: skip


def run_size(
    base_url: str, label: str, balances: str = "auto", history_days: int = 0
) -> dict[str, Any]:
    """The first run on a fresh ledger (every balance computed), then a steady-state morning:
    1 % of invoices touched overnight and the job run for the next day. Each against the floor
    measured on the same database and day. ``balances``: AR_INCREMENTAL_BALANCES (``auto``, as
    shipped, ``on`` or ``off``). ``history_days``: before the morning, that many earlier days of
    proposals (:func:`step_history`), as a team that has run the job for a while has."""
    invoices, customers = SIZES[label]
    day2 = NEXT_DAY.isoformat()
    with ScratchDatabase(base_url, label) as url, tempfile.TemporaryDirectory() as data_dir:
        generated = in_child("generate", url, customers)
        job = in_child("job", url, data_dir, AS_OF.isoformat(), balances)
        floor = in_child("floor", url, job["rows_written"])
        naive = in_child("naive", url) if invoices <= NAIVE_MAX_INVOICES else None
        history = in_child("history", url, history_days) if history_days else None
        touched = in_child("touch", url, TOUCHED_SHARE)
        job2 = in_child("job", url, data_dir, day2, balances)
        floor2 = in_child("floor", url, job2["rows_written"], day2)
    result = {
        "size": label,
        "incremental_balances": balances,
        "balances": job["balances"],
        "steady_balances": job2["balances"],
        "backend": make_url(base_url).get_backend_name(),
        "invoices": generated["invoices"],
        "customers": generated["customers"],
        "generate_s": round(generated["seconds"], 2),
        "floor_s": round(floor["seconds"], 2),
        "floor_query_s": round(floor["query_seconds"], 2),
        "floor_insert_s": round(floor["insert_seconds"], 2),
        "pipeline_s": round(job["seconds"], 2),
        "pipeline_over_floor": round(job["seconds"] / floor["seconds"], 2),
        "naive_s": round(naive["seconds"], 2) if naive else None,
        "naive_over_pipeline": round(naive["seconds"] / job["seconds"], 2) if naive else None,
        "peak_rss_mb": round(job["peak_rss_mb"], 1),
        "naive_peak_rss_mb": round(naive["peak_rss_mb"], 1) if naive else None,
        "rows_written": job["rows_written"],
        "steps_s": job["steps"],
        "touched": touched,
        "history": history,
        "steady_floor_s": round(floor2["seconds"], 2),
        "steady_pipeline_s": round(job2["seconds"], 2),
        "steady_over_floor": round(job2["seconds"] / floor2["seconds"], 2),
        "steady_peak_rss_mb": round(job2["peak_rss_mb"], 1),
        "steady_steps_s": job2["steps"],
    }
    return result


def print_table(results: list[dict[str, Any]]) -> None:
    header = (f"{'size':>6} {'invoices':>10} {'floor s':>8} {'pipeline s':>11} {'pipe/floor':>10} "
              f"{'naive s':>8} {'naive/pipe':>10} {'peak RSS MB':>12} | {'floor2 s':>8} "
              f"{'morning s':>9} {'morn/floor':>10}")  # fmt: skip
    print(header)
    for r in results:
        naive = "-" if r["naive_s"] is None else f"{r['naive_s']:.2f}"
        ratio = "-" if r["naive_over_pipeline"] is None else f"{r['naive_over_pipeline']:.2f}"
        print(
            f"{r['size']:>6} {r['invoices']:>10,} {r['floor_s']:>8.2f} {r['pipeline_s']:>11.2f} "
            f"{r['pipeline_over_floor']:>10.2f} {naive:>8} {ratio:>10} {r['peak_rss_mb']:>12.1f} | "
            f"{r['steady_floor_s']:>8.2f} {r['steady_pipeline_s']:>9.2f} "
            f"{r['steady_over_floor']:>10.2f}"
        )
    for r in results:
        steps = ", ".join(f"{k} {v:.2f}s" for k, v in r["steps_s"].items())
        steady = ", ".join(f"{k} {v:.2f}s" for k, v in r["steady_steps_s"].items())
        floor = f"query {r['floor_query_s']:.2f}s + insert {r['floor_insert_s']:.2f}s"
        print(f"  {r['size']}: generate {r['generate_s']:.2f}s; floor = {floor}; "
              f"balances {r['balances']}; steps: {steps}")
        history = f", after {r['history']['days']} days of proposals" if r["history"] else ""
        print(f"  {r['size']} morning after ({r['touched']}{history}): "
              f"balances {r['steady_balances']}; steps: {steady}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ar-pipeline bench", description=__doc__)
    parser.add_argument(
        "--sizes", default="10k,100k,1m", help="comma-separated: 10k,100k,300k,1m,10m"
    )
    parser.add_argument("--output", type=Path, default=Path("bench/results/benchmark.json"))
    parser.add_argument("--apply-throughput", action="store_true")
    parser.add_argument(
        "--balances", choices=("auto", "on", "off"), default="auto",
        help="AR_INCREMENTAL_BALANCES for the job (default: auto, as shipped)",
    )  # fmt: skip
    parser.add_argument(
        "--incremental", action="store_const", const="on", dest="balances",
        help="the same as --balances on",
    )  # fmt: skip
    parser.add_argument(
        "--history-days", type=int, default=0, metavar="DAYS",
        help="before the morning, that many earlier days of proposals (default: none)",
    )  # fmt: skip
    parser.add_argument(
        "--alga", type=int, metavar="INVOICES",
        help="instead: time the Alga PSA source's copy of a generated tenant of this size",
    )  # fmt: skip
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("step_args", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        print(json.dumps(STEPS[args.step](*json.loads(args.step_args))))
        return 0
    from ar_pipeline.settings import load_settings

    base_url = load_settings().database_url
    if args.alga:
        result = measure_alga_copy(base_url, args.alga)
        print(json.dumps(result, indent=2))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        written = args.output.with_name(f"alga_copy_{args.alga}.json")
        written.write_text(json.dumps(result, indent=2))
        return 0
    if args.apply_throughput:
        result = measure_apply_throughput(base_url)
        print(json.dumps(result, indent=2))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.with_name("apply_throughput.json").write_text(json.dumps(result, indent=2))
        return 0
    labels = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in labels if s not in SIZES]
    if unknown:
        print(f"--sizes: unknown size {unknown[0]!r}; known: {', '.join(SIZES)}", file=sys.stderr)
        return 2
    results = []
    for label in labels:
        print(f"[{dt.datetime.now():%H:%M:%S}] benchmarking {label} ...", flush=True)
        results.append(run_size(base_url, label, args.balances, args.history_days))
    print_table(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"machine": {"cpus": os.cpu_count()},
                                       "results": results}, indent=2))  # fmt: skip
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
