"""Connecting to the business database and migrating it.

``AR_DATABASE_URL`` picks the database: the embedded SQLite file by default, PostgreSQL in
production. Both go through the same SQLAlchemy Core code; dialect differences are confined to
``ar_pipeline.store.sql_functions`` and the bulk loader here.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Connection, Engine, make_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
POSTGRES_WORK_MEM = "128MB"


class DatabaseUnavailable(Exception):
    """The business database cannot be opened; one line naming the setting, no traceback."""


def open_database(url: str, setting: str = "AR_DATABASE_URL") -> Engine:
    """:func:`get_engine` after one test connection, so that a database that does not exist, a
    server that refuses or an unwritable SQLite folder is one clear error naming ``setting``
    before anything else happens (a missing PostgreSQL database is not created)."""
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        engine = get_engine(url)
        with engine.connect():
            pass
    except OSError as error:  # the SQLite file's folder cannot be created
        where = error.filename or shown
        raise DatabaseUnavailable(f"{setting}: cannot create {where}: {error.strerror}") from None
    except sa.exc.DBAPIError as error:
        raise DatabaseUnavailable(
            f"{setting}: cannot connect to {shown}: {_connect_failure(error)}"
        ) from None
    return engine


def _connect_failure(error: sa.exc.DBAPIError) -> str:
    """The driver's reason on one line: 'database "x" does not exist', 'Connection refused'."""
    first = (str(error.orig).strip() or "no reason given").splitlines()[0]
    reason = first.rsplit("failed: ", 1)[-1].replace("FATAL:", "")
    return " ".join(reason.split())


@functools.cache
def get_engine(url: str) -> Engine:
    """One engine per URL per process. SQLite gets foreign keys, WAL and a busy timeout;
    PostgreSQL sessions get ``work_mem`` for the aging, full-result cursor plans and no JIT."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    # a server that does not answer is an error after 10 s, not a hang (unless the URL says)
    timeout = {} if "connect_timeout" in parsed.query else {"connect_timeout": 10}
    engine = sa.create_engine(url, pool_pre_ping=True, connect_args=timeout)

    @sa.event.listens_for(engine, "connect")
    def _postgres_session(dbapi_connection: Any, _record: Any) -> None:
        # The aging sorts and hashes a few hundred thousand events per million invoices: give
        # them memory instead of temporary files; and plan streamed (server-side cursor)
        # queries for all their rows, not for the first 10 % (PostgreSQL's default). No JIT:
        # the aging's and the ledger check's plans cost past its thresholds, and compiling them
        # took longer than running them (9 s of compilation for a 2 s check at 1M invoices).
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET work_mem = '{POSTGRES_WORK_MEM}'")
        cursor.execute("SET cursor_tuple_fraction = 1.0")
        cursor.execute("SET jit = off")
        cursor.close()
        dbapi_connection.commit()

    return engine


def temporary_table(name: str, *columns: sa.Column) -> sa.Table:
    """A temporary table for the statements of one transaction. On PostgreSQL it is dropped at
    commit, also after an error (which a DROP in a failed transaction could not do); on SQLite
    its user drops it when done, and drops any leftover before creating it again
    (:func:`create_afresh`)."""
    return sa.Table(
        name, sa.MetaData(), *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DROP"
    )


def create_afresh(connection: Connection, table: sa.Table) -> None:
    """Create ``table``, dropping a leftover of an earlier use first."""
    table.drop(connection, checkfirst=True)
    table.create(connection)


@contextlib.contextmanager
def prefer_index_lookups(connection: Connection) -> Iterator[None]:
    """Plan the statements inside for looking a few thousand rows up by index in tables of
    millions (PostgreSQL; nothing on SQLite): ``random_page_cost`` 1.1 instead of the default
    4, which is priced for spinning disks and makes the planner scan a whole table rather than
    look up a few thousand keys (0.48 s against 0.25 s for the incremental balances' 10,000
    keys at 1M invoices). Local to the transaction, and restored on the way out; after an
    error the rollback undoes it."""
    if not is_postgres(connection):
        yield
        return
    before = connection.execute(sa.select(sa.func.current_setting("random_page_cost"))).scalar()
    connection.execute(sa.select(sa.func.set_config("random_page_cost", "1.1", True)))
    yield
    connection.execute(sa.select(sa.func.set_config("random_page_cost", before, True)))


def alembic_config(connection: Connection) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def migrate(connection: Connection) -> None:
    """Migrate to the newest schema revision, inside the caller's transaction. The analyst
    views are the rules' (``ar_pipeline.rules.views.upgrade_database`` recreates them)."""
    command.upgrade(alembic_config(connection), "head")


def is_postgres(connection: Connection | Engine) -> bool:
    return connection.dialect.name == "postgresql"


def bulk_insert(
    connection: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    json_text: Collection[str] = (),
) -> None:
    """Insert many rows at once: COPY on PostgreSQL, one executemany elsewhere.

    ``rows`` are tuples in the order of ``columns``; ``None`` is NULL. The values of the JSON
    columns named in ``json_text`` are their JSON text already (``json.dumps``): stored as they
    are, not serialized again.
    """
    rows = list(rows)
    if not rows:
        return
    if json_text and not is_postgres(connection):
        _insert_json_text(connection, table, columns, rows, json_text)
        return
    if is_postgres(connection):
        raw = connection.connection.driver_connection
        column_list = ", ".join(columns)
        copy_sql = f"COPY {table.name} ({column_list}) FROM STDIN"
        if hasattr(raw, "pgconn"):  # psycopg 3
            with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row([_copy_value(v) for v in row])
        else:  # psycopg2
            buffer = io.StringIO()
            for row in rows:
                buffer.write("\t".join(_copy_text(v) for v in row) + "\n")
            buffer.seek(0)
            with raw.cursor() as cursor:
                cursor.copy_expert(copy_sql, buffer)
        return
    connection.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])


def _insert_json_text(
    connection: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: list[Sequence[Any]],
    json_text: Collection[str],
) -> None:
    # the JSON type would serialize a str again (as a JSON string): bind that text as Text
    names = {c: f"{c}_json_text" if c in json_text else c for c in columns}
    statement = table.insert().values(
        {c: sa.bindparam(names[c], type_=sa.Text()) for c in json_text}
    )
    connection.execute(
        statement, [{names[c]: v for c, v in zip(columns, row, strict=True)} for row in rows]
    )


def _copy_value(value: Any) -> Any:
    # JSON columns travel as their text through COPY
    return json.dumps(value) if isinstance(value, dict | list) else value


def _copy_text(value: Any) -> str:
    value = _copy_value(value)
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def analyze(engine: Engine, tables: Sequence[sa.Table | sa.Column]) -> None:
    """Refresh planner statistics after a bulk load; without them PostgreSQL estimates one row
    per table and picks nested loops that take seconds instead of milliseconds. A column
    instead of a table: that table's statistics for the columns given (the ones the next
    queries filter and join on; a fraction of the cost for a wide table). SQLite analyzes the
    whole table: it takes no column list."""
    whole = [t.name for t in tables if isinstance(t, sa.Table)]
    columns: dict[str, list[str]] = {}
    for column in tables:
        if isinstance(column, sa.Column):
            columns.setdefault(column.table.name, []).append(column.name)
    if engine.dialect.name != "postgresql":
        whole, columns = whole + sorted(columns), {}
    with engine.begin() as connection:
        for name in whole:
            connection.execute(sa.text(f"ANALYZE {name}"))
        for name, names in columns.items():
            connection.execute(sa.text(f"ANALYZE {name} ({', '.join(names)})"))
