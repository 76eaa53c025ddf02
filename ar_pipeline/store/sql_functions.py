"""Small SQL expressions that SQLite and PostgreSQL spell differently.

SQLite keeps dates as ISO text (``YYYY-MM-DD``), so date arithmetic goes through ``julianday``;
PostgreSQL subtracts dates natively. Everything else in the project is dialect-neutral Core.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement


class days_between(FunctionElement):  # noqa: N801 - reads like the SQL function it stands for
    """Whole days from ``earlier`` to ``later`` (``later - earlier``), both dates."""

    type = sa.Integer()
    inherit_cache = True
    name = "days_between"


@compiles(days_between)
def _days_between_default(element: days_between, compiler, **kw) -> str:
    later, earlier = list(element.clauses)
    return f"({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)})"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler, **kw) -> str:
    later, earlier = list(element.clauses)
    return (
        f"CAST(julianday({compiler.process(later, **kw)}) - "
        f"julianday({compiler.process(earlier, **kw)}) AS INTEGER)"
    )


class date_value(FunctionElement):  # noqa: N801
    """A bound Python date typed as a SQL date (PostgreSQL needs the cast, SQLite must not get
    it: ``CAST(... AS DATE)`` in SQLite turns ``'2026-03-31'`` into the number 2026)."""

    type = sa.Date()
    inherit_cache = True
    name = "date_value"


@compiles(date_value)
def _date_value_default(element: date_value, compiler, **kw) -> str:
    (value,) = list(element.clauses)
    return f"CAST({compiler.process(value, **kw)} AS DATE)"


@compiles(date_value, "sqlite")
def _date_value_sqlite(element: date_value, compiler, **kw) -> str:
    (value,) = list(element.clauses)
    return compiler.process(value, **kw)


def bound_date(value: dt.date, name: str | None = None) -> ColumnElement[dt.date]:
    """``value`` as a bound parameter of SQL type date."""
    return date_value(sa.bindparam(name, value, type_=sa.Date, unique=name is None))


def non_negative(expression: ColumnElement) -> ColumnElement:
    """``max(0, expression)`` written with CASE, which both dialects share."""
    return sa.case((expression > 0, expression), else_=sa.literal(0))


class next_day(FunctionElement):  # noqa: N801
    """The day after a date."""

    type = sa.Date()
    inherit_cache = True
    name = "next_day"


@compiles(next_day)
def _next_day_default(element: next_day, compiler, **kw) -> str:
    (value,) = list(element.clauses)
    return f"CAST({compiler.process(value, **kw)} + 1 AS DATE)"


@compiles(next_day, "sqlite")
def _next_day_sqlite(element: next_day, compiler, **kw) -> str:
    (value,) = list(element.clauses)
    return f"date({compiler.process(value, **kw)}, '+1 day')"


class dated_key(FunctionElement):  # noqa: N801
    """``'YYYY-MM-DD <id>'``: text that sorts by the date, then by the id in code-point order
    (byte order, whatever the database's collation), so that ``min`` of it names the row of the
    earliest date, ties to the lowest id, without a window and its sort. The id starts at
    character :data:`DATED_KEY_ID_START`."""

    type = sa.Text()
    inherit_cache = True
    name = "dated_key"


DATED_KEY_ID_START = 12  # after the ten characters of the date and a space (1-based, for substr)


@compiles(dated_key)
def _dated_key_default(element: dated_key, compiler, **kw) -> str:
    day, key = (compiler.process(c, **kw) for c in element.clauses)
    return f"((to_char({day}, 'YYYY-MM-DD') || ' ' || {key}) COLLATE \"C\")"


@compiles(dated_key, "sqlite")
def _dated_key_sqlite(element: dated_key, compiler, **kw) -> str:
    day, key = (compiler.process(c, **kw) for c in element.clauses)
    return f"({day} || ' ' || {key})"  # SQLite keeps dates as ISO text and compares bytes


def id_of_dated_key(key: ColumnElement) -> ColumnElement[str]:
    """The id of a :class:`dated_key` (NULL stays NULL)."""
    return sa.func.substr(key, DATED_KEY_ID_START)


def full_join_rows(
    left: sa.CTE,
    right: sa.CTE,
    on: ColumnElement[bool],
    left_key: ColumnElement,
    rows: Callable[[sa.FromClause], sa.Select],
) -> sa.CompoundSelect:
    """``rows(left FULL JOIN right ON on)`` for SQLite: ``rows(left LEFT JOIN right)`` and the
    rows of ``right`` that match no row of ``left`` (there ``left_key``, a column of ``left``
    that is never NULL, is NULL). SQLite plans a FULL JOIN as a scan of one side for each row
    of the other, which grows with the square of the rows; each half here gets an automatic
    index. ``left`` and ``right`` are CTEs, so each is computed once for both halves. On
    PostgreSQL a FULL JOIN is one hash join, and the CTEs would keep it from its parallel
    plan: builders keep the FULL JOIN there."""
    return sa.union_all(
        rows(left.outerjoin(right, on)),
        rows(right.outerjoin(left, on)).where(left_key.is_(None)),
    )
