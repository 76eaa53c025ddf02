"""Upgrading the business database: the store's migrations, then the analyst views the rules
define (``v_ar_aging``: open items as of the latest aging date; ``v_todays_calls``: the latest
worklist).

The store knows nothing of the rules; this module joins the two, so the imports run one way.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ar_pipeline.rules import aging, worklist
from ar_pipeline.store.database import migrate


def upgrade_database(engine: Engine) -> None:
    """Migrate to the newest schema revision and (re)create the analyst views. Idempotent.

    Views hold no data, so they are dropped and recreated from the current query builders on
    every upgrade: the view can never drift from the one SQL definition of open items.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            # Python's sqlite3 opens a transaction only before a row is written, so without
            # this each CREATE and ALTER of the migrations commits at once, and one that fails
            # halfway leaves its tables behind the old revision; begun here, all or nothing
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        for statement in aging.drop_views_sql() + worklist.drop_views_sql():
            connection.execute(sa.text(statement))
        migrate(connection)
        for statement in aging.create_views_sql(connection.dialect) + worklist.create_views_sql(
            connection.dialect
        ):
            connection.execute(sa.text(statement))
