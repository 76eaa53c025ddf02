"""The ready queries in sql/ run on both databases and give the hand-worked figures."""

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from ar_pipeline.aging import write_ar_aging
from ar_pipeline_tests.ledger_builder import build_reference_ledger

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def test_overdue_by_customer(engine):
    with engine.begin() as connection:
        build_reference_ledger(connection)
        write_ar_aging(connection, dt.date(2026, 3, 31))
    query = sa.text((SQL_DIR / "overdue_by_customer.sql").read_text())
    with engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(query, {"threshold_days": 30})]
    # items at 30+ days: A1 700.00 (50 d), A6 400.00 (40 d, disputed), A3 150.00 (120 d)
    assert rows == [("A", "Alpha GmbH", "EUR", 125_000, 120, 3)]
