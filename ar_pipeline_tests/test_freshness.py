"""The aging_data_fresh rule on both databases, with the time passed in."""

import datetime as dt

from ar_pipeline.defs.checks import assess_freshness
from ar_pipeline.store.schema import sync_log

NOW = dt.datetime(2026, 3, 31, 6, 0, tzinfo=dt.UTC)
HOT = "scheduled_hot_customer_payments"


def _sync(connection, sync_type, completed_at, status="ok"):
    started = (completed_at or NOW) - dt.timedelta(minutes=3)
    connection.execute(
        sync_log.insert().values(
            sync_type=sync_type, started_at=started, completed_at=completed_at, status=status,
            rows_synced=10,
        )
    )  # fmt: skip


def test_fresh_sync_passes(engine):
    with engine.begin() as connection:
        _sync(connection, HOT, NOW - dt.timedelta(hours=5))
        _sync(connection, HOT, NOW - dt.timedelta(minutes=90))
        result = assess_freshness(connection, NOW, 2)
    assert result.fresh
    assert result.age_hours == 1.5
    assert "1.5 h ago" in result.description


def test_stale_sync_warns_with_its_age(engine):
    with engine.begin() as connection:
        _sync(connection, HOT, NOW - dt.timedelta(hours=3))
        # newer, but failed, still running, or of another type: none of them count
        _sync(connection, HOT, NOW - dt.timedelta(minutes=10), status="failed")
        _sync(connection, HOT, None, status=None)
        _sync(connection, "nightly_full_ledger", NOW - dt.timedelta(minutes=5))
        result = assess_freshness(connection, NOW, 2)
    assert not result.fresh
    assert result.age_hours == 3.0
    assert "3.0 h ago (older than the 2 h limit)" in result.description


def test_no_completed_sync_warns(engine):
    with engine.begin() as connection:
        _sync(connection, HOT, None, status=None)
        result = assess_freshness(connection, NOW, 2)
    assert not result.fresh
    assert result.age_hours is None
    assert result.description == f"no completed {HOT} sync"
