"""The benchmark's pandas baseline gives the job's ``ar_aging`` rows, every column, on both
databases: the hand-built reference ledger (every rule of the aging in a few rows) and a
generated one. A baseline that computes less would be no baseline."""

import datetime as dt

from ar_pipeline.bench.naive import differences, job_ar_aging, naive_ar_aging
from ar_pipeline.rules.aging import write_ar_aging
from ar_pipeline.sources.ledger_generator import generate_ledger
from ar_pipeline_tests.ledger_builder import build_reference_ledger

AS_OF = dt.date(2026, 3, 31)


def _same(engine) -> None:
    with engine.begin() as connection:
        write_ar_aging(connection, AS_OF)
    with engine.connect() as connection:
        naive, job = naive_ar_aging(connection, AS_OF), job_ar_aging(connection, AS_OF)
    assert len(job) > 0
    assert differences(naive, job) == []


def test_reference_ledger(engine):
    with engine.begin() as connection:
        build_reference_ledger(connection)
    _same(engine)


def test_reference_ledger_with_a_hold_and_a_promise(engine):
    """Held invoices: out of the dunnable amount in both (a hold on A1, a promise on A3)."""
    from ar_pipeline.actions.levers import record_hold, record_promise

    now = dt.datetime(2026, 3, 20, 9, tzinfo=dt.UTC)
    with engine.begin() as connection:
        build_reference_ledger(connection)
        record_hold(connection, invoice_id="A1", reason="audit", held_until=dt.date(2026, 4, 30),
                    recorded_by="carol", today=dt.date(2026, 3, 20), now=now)  # fmt: skip
        record_promise(connection, customer_id="A", amount="150.00", currency="EUR",
                       promised_date=dt.date(2026, 4, 15), recorded_by="carol",
                       today=dt.date(2026, 3, 20), now=now, invoice_ids=["A3"])  # fmt: skip
    _same(engine)
    with engine.connect() as connection:
        job = job_ar_aging(connection, AS_OF)
    assert job.loc[(job.customer_id == "A") & (job.currency == "EUR"), "held_cents"].item() > 0


def test_generated_ledger(engine):
    with engine.begin() as connection:
        generate_ledger(
            connection, customer_count=200, months=8, seed=3, end_date=AS_OF,
            synced_until=dt.datetime(2026, 3, 31, 5, tzinfo=dt.UTC),
        )  # fmt: skip
    _same(engine)


def test_a_difference_is_named(engine):
    with engine.begin() as connection:
        build_reference_ledger(connection)
        write_ar_aging(connection, AS_OF)
    with engine.connect() as connection:
        naive, job = naive_ar_aging(connection, AS_OF), job_ar_aging(connection, AS_OF)
    naive.loc[0, "dunnable_cents"] += 1
    assert [d.split(":")[0] for d in differences(naive, job)] == ["dunnable_cents"]
