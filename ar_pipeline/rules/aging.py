"""The aging rules (docs/design.md, Aging) as SQL builders: the one definition of open items.

As of a date D:

* an invoice counts when ``kind = 'invoice'``, ``status = 'issued'`` and ``issue_date <= D``;
  drafts and voids never count;
* a settlement counts when it is a payment with ``received_date <= D`` (a reversal is a negative
  payment) or an issued credit note with ``issue_date <= D``;
* a settlement is *applied* to an invoice when it names that invoice, the invoice counts as of D
  and both belong to the same customer and currency; every other settlement (cash on account, an
  unapplied credit note, a payment naming an invoice that does not count yet, is void, or is in
  another currency) is unapplied credit of the settlement's customer in its currency;
* open balance = ``amount_cents`` - applied settlements, but never more than ``amount_cents``:
  when the applied settlements net below zero (more reversed than paid), the excess is ignored,
  neither owed nor credit, and the check ``ledger_sane`` names the rows
  (:mod:`ar_pipeline.rules.ledger_sanity`). Balance > 0 is an **open item**; balance < 0 (an
  overpayment) is unapplied credit too;
* a row whose amount is beyond :data:`ar_pipeline.store.schema.AMOUNT_BOUND_CENTS` (either
  sign) is left out: no real receivable is that large, and a few such rows would overflow the
  64-bit sums; the check names it and holds its customer back;
* ``days_overdue = D - due_date``; buckets ``current`` (<= 0), ``1_30``, ``31_60``, ``61_90``,
  ``91_120`` and ``over_120`` (>= 121), the split of ERPNext's, Odoo's and OCA's aged
  receivables; ``days_over_90_cents`` stays, as the sum of the last two;
* disputed open items are aged and counted in ``total_open`` but never in the dunnable amount;
* so are **held** open items (an invoice hold in force or an open promise to pay on D,
  :mod:`ar_pipeline.rules.levers`), summed in ``held_cents``; the join is made in the
  aggregation (:func:`aging_by_customer`), the balances know nothing of holds;
* dunnable amount per customer and currency =
  max(0, undisputed, unheld open items with ``days_overdue >= threshold_days`` - unapplied
  credit);
* **net balance** per customer and currency = open items - unapplied credit, which is invoices -
  credit notes - payments counted as of D (negative: the customer is in credit). It ties to
  the ledger except for what the rules above leave out: rows beyond the amount bound, and the
  excess of an invoice whose settlements net below zero (both named by ``ledger_sane``).

Every builder takes ``dates``: a selectable with one column ``as_of``. One row makes the daily
aging, a series of rows rebuilds a range of days in one statement, and ``latest_aging_date()``
makes the analyst view. ``only`` restricts a builder to a few customers (the apply job's
re-check). Nothing here loads invoices into Python.

The daily run of one date evaluates the same rules as one pass instead
(:meth:`AgingSource.one_pass`: settlements summed per invoice named and joined once with the
invoices that count); the event segments serve ranges of dates. Both are the rules above, and
the tests compare them on hand-worked ledgers.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import CompoundSelect, FromClause, Select

from ar_pipeline.rules.ledger_sanity import within_bound
from ar_pipeline.rules.levers import held_invoice_ids
from ar_pipeline.rules.settlement_keys import SettlementKeys, restrict
from ar_pipeline.store.database import create_afresh, temporary_table
from ar_pipeline.store.schema import ar_aging, customers, invoices, payments
from ar_pipeline.store.sql_functions import (
    bound_date,
    dated_key,
    days_between,
    full_join_rows,
    id_of_dated_key,
    next_day,
    non_negative,
)

BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    # (bucket, lowest days_overdue, highest days_overdue), bounds inclusive
    ("current", None, 0),
    ("1_30", 1, 30),
    ("31_60", 31, 60),
    ("61_90", 61, 90),
    ("91_120", 91, 120),
    ("over_120", 121, None),
)
BUCKET_COLUMNS = {
    "current": "current_cents",
    "1_30": "days_1_30_cents",
    "31_60": "days_31_60_cents",
    "61_90": "days_61_90_cents",
    "91_120": "days_91_120_cents",
    "over_120": "days_over_120_cents",
}
# Over 90 days overdue: kept as a column of its own (the sum of these buckets) so that queries
# written before the split still work.
OVER_90_BUCKETS = ("91_120", "over_120")
OVER_90_COLUMN = "days_over_90_cents"
DEFAULT_THRESHOLD_DAYS = 1
AGING_VIEW = "v_ar_aging"


def in_buckets(days_overdue: sa.ColumnElement[int], *names: str) -> sa.ColumnElement[bool]:
    """Whether ``days_overdue`` falls in one of the buckets ``names`` (adjacent ones), from
    their bounds in :data:`BUCKETS`: the same rule as the ``bucket`` column, as a range of
    days, so that an aggregation filters on the integer instead of the bucket's CASE."""
    bounds = [(low, high) for name, low, high in BUCKETS if name in names]
    if len(bounds) != len(names):
        raise ValueError(f"unknown bucket in {names}")
    low, high = bounds[0][0], bounds[-1][1]
    conditions = [days_overdue >= low] if low is not None else []
    conditions += [days_overdue <= high] if high is not None else []
    return sa.and_(*conditions)


# Restricts a builder to some customers: a list of ids, or a SELECT of one column of ids.
Customers = Sequence[str] | Select | None


def _only(query: Select, customer_id: sa.ColumnElement, only: Customers) -> Select:
    if only is None:
        return query
    return query.where(customer_id.in_(only if isinstance(only, Select) else list(only)))


def as_of_dates(dates: Sequence[dt.date]) -> FromClause:
    """A selectable ``(as_of)`` holding the given dates, one row each."""
    if not dates:
        raise ValueError("as_of_dates needs at least one date")
    rows = [sa.select(bound_date(d).label("as_of")) for d in dates]
    selectable = (rows[0] if len(rows) == 1 else sa.union_all(*rows)).subquery("as_of_dates")
    if len(set(dates)) == 1:
        selectable.ar_point_date = dates[0]  # lets AgingSource sum instead of segmenting
    return selectable


def as_of_range(first: dt.date, last: dt.date) -> FromClause:
    """A selectable ``(as_of)`` with every day from ``first`` to ``last``, generated in SQL (a
    recursive CTE), for ranges too long for :func:`as_of_dates`."""
    series = sa.select(bound_date(first).label("as_of")).cte("as_of_series", recursive=True)
    series = series.union_all(
        sa.select(next_day(series.c.as_of)).where(series.c.as_of < bound_date(last))
    )
    return sa.select(series.c.as_of).subquery("as_of_dates")


def latest_aging_date() -> FromClause:
    """The latest run date of the ``ar_aging`` table, as a one-row ``(as_of)`` selectable."""
    return sa.select(sa.func.max(ar_aging.c.as_of).label("as_of")).subquery("as_of_dates")


def _later(a: sa.ColumnElement, b: sa.ColumnElement) -> sa.ColumnElement:
    return sa.case((a > b, a), else_=b)


def _capped(balance: sa.ColumnElement, amount: sa.ColumnElement) -> sa.ColumnElement:
    """An invoice's balance, never above its amount: settlements that net below zero (more
    reversed than paid) do not make the customer owe more than was invoiced."""
    return sa.case((balance > amount, amount), else_=balance)


def _counts(
    table: FromClause, kind: str, upto: sa.ColumnElement | None = None
) -> sa.ColumnElement[bool]:
    """A row of ``invoices`` (or an alias) that counts as a ``kind`` ('invoice' or
    'credit_note'): issued, within the amount bound and, given ``upto``, issued by then."""
    by_then = sa.true() if upto is None else table.c.issue_date <= upto
    return sa.and_(
        table.c.kind == kind,
        table.c.status == "issued",
        by_then,
        within_bound(table.c.amount_cents),
    )


class AgingSource:
    """The aging rules as effective-dated ledger events, evaluated for ``dates``.

    Each event changes one balance from its effective date on: an invoice's balance, or a
    customer's unapplied-credit balance in one currency. Consecutive events of a balance form
    *segments* (start, stop, balance) in which the balance is constant; a date sees the segment
    that contains it. So one day and a year of days cost about the same: the work grows with
    the number of events, not with days x invoices.

    Events (amounts in minor units, settlements are payments and issued credit notes; rows
    beyond the amount bound are no events at all):

    * an eligible invoice (issued, kind invoice): +amount on the invoice at ``issue_date``;
    * a settlement naming an eligible invoice of the same customer and currency: -amount on the
      invoice at the later of its own date and the invoice's issue date; if it came before the
      invoice was issued, it is the customer's unapplied credit until then;
    * any other settlement: unapplied credit from its own date on, for good.

    An invoice's balance is capped at its amount (:func:`_capped`): reversals beyond what was
    paid never make it owe more than was invoiced.

    Only events up to the latest requested date are read. The CTEs are shared by everything one
    statement builds from the same source, so build open items and credit from one instance.
    """

    def __init__(
        self, dates: FromClause, only: Customers = None, keys: SettlementKeys | None = None
    ) -> None:
        self.dates = dates
        self.only = only
        self.keys = keys  # one_pass only: the rows of these settlement keys
        self.point: dt.date | None = getattr(dates, "ar_point_date", None)
        self.upto = (
            bound_date(self.point)
            if self.point is not None
            else sa.select(sa.func.max(dates.c.as_of)).scalar_subquery()
        )

    @functools.cached_property
    def _settlements(self) -> FromClause:
        """Every settlement with the eligible invoice it applies to (if any)."""
        paid = _only(
            sa.select(
                payments.c.customer_id,
                payments.c.currency,
                payments.c.invoice_id.label("names"),
                payments.c.received_date.label("on_date"),
                payments.c.amount_cents,
            ).where(within_bound(payments.c.amount_cents)),
            payments.c.customer_id,
            self.only,
        )
        credited = _only(
            sa.select(
                invoices.c.customer_id,
                invoices.c.currency,
                invoices.c.applies_to_invoice_id,
                invoices.c.issue_date,
                invoices.c.amount_cents,
            ).where(_counts(invoices, "credit_note")),
            invoices.c.customer_id,
            self.only,
        )
        settled = sa.union_all(paid, credited).subquery("settled")
        target = invoices.alias("target")
        applies = sa.and_(
            target.c.invoice_id == settled.c.names,
            target.c.customer_id == settled.c.customer_id,
            target.c.currency == settled.c.currency,
            _counts(target, "invoice"),
        )
        if self.only is not None:
            # implied by the customer equality; said outright, it spares reading every invoice
            applies = sa.and_(applies, _only(sa.select(), target.c.customer_id, self.only)
                              .whereclause)  # fmt: skip
        return (
            sa.select(
                settled.c.customer_id,
                settled.c.currency,
                settled.c.on_date,
                settled.c.amount_cents,
                target.c.invoice_id.label("applies_to"),
                target.c.issue_date.label("applies_from"),
            )
            .select_from(settled.outerjoin(target, applies))
            .where(settled.c.on_date <= self.upto)
            .cte("settlements")
        )

    def _invoice_events(self) -> Select:
        """(invoice_id, effective, delta) of every eligible invoice."""
        st = self._settlements
        issued = _only(
            sa.select(
                invoices.c.invoice_id,
                invoices.c.issue_date.label("effective"),
                invoices.c.amount_cents.label("delta"),
            ).where(_counts(invoices, "invoice", self.upto)),
            invoices.c.customer_id,
            self.only,
        )
        settled = sa.select(
            st.c.applies_to,
            _later(st.c.on_date, st.c.applies_from),
            -st.c.amount_cents,
        ).where(st.c.applies_to.is_not(None), st.c.applies_from <= self.upto)
        return sa.union_all(issued, settled)

    def _credit_events(self) -> Select:
        """(customer_id, currency, effective, delta) of unapplied settlements."""
        st = self._settlements
        early = sa.and_(st.c.applies_to.is_not(None), st.c.on_date < st.c.applies_from)
        unapplied = sa.select(
            st.c.customer_id, st.c.currency, st.c.on_date.label("effective"),
            st.c.amount_cents.label("delta"),
        ).where(sa.or_(st.c.applies_to.is_(None), early))  # fmt: skip
        applied_later = sa.select(
            st.c.customer_id, st.c.currency, st.c.applies_from, -st.c.amount_cents
        ).where(early, st.c.applies_from <= self.upto)
        return sa.union_all(unapplied, applied_later)

    def _balances_on_dates(self, events: Select, keys: list[str], name: str) -> FromClause:
        """Non-zero balances per key on each date: (as_of, *keys, balance).

        One date sums the events up to it (a plain GROUP BY); several dates use the segments
        of constant balance, so that a year costs about as much as a day.
        """
        if self.point is not None:
            raw = events.subquery(f"{name}_events")
            total = sa.func.sum(raw.c.delta)
            per_key = (
                sa.select(*[raw.c[k] for k in keys], total.label("balance"))
                .where(raw.c.effective <= self.point)
                .group_by(*[raw.c[k] for k in keys])
                .having(total != 0)
                .subquery(f"{name}_balances")
            )
            return (
                sa.select(self.dates.c.as_of, *[per_key.c[k] for k in keys], per_key.c.balance)
                .select_from(per_key.join(self.dates, sa.true()))
                .cte(f"{name}_on_dates")  # a CTE: open items and overpayments share it
            )
        segments = _segments(events, keys, f"{name}_segments")
        covering = sa.and_(
            segments.c.start <= self.dates.c.as_of,
            sa.or_(segments.c.stop.is_(None), segments.c.stop > self.dates.c.as_of),
            segments.c.balance != 0,
        )
        return (
            sa.select(self.dates.c.as_of, *[segments.c[k] for k in keys], segments.c.balance)
            .select_from(segments.join(self.dates, covering))
            .cte(f"{name}_on_dates")
        )

    @functools.cached_property
    def invoice_balances(self) -> FromClause:
        return self._balances_on_dates(self._invoice_events(), ["invoice_id"], "invoice")

    @functools.cached_property
    def credit_balances(self) -> FromClause:
        return self._balances_on_dates(self._credit_events(), ["customer_id", "currency"], "credit")

    @functools.cached_property
    def _balances(self) -> FromClause:
        """Every eligible invoice with a non-zero balance on each date, with its attributes."""
        if self.point is not None:
            return self._balances_on_point()
        bal = self.invoice_balances
        balance = _capped(bal.c.balance, invoices.c.amount_cents)
        return (
            sa.select(*_invoice_balance_columns(bal.c.as_of, balance))
            .select_from(bal.join(invoices, invoices.c.invoice_id == bal.c.invoice_id))
            .subquery("balances")
        )

    def _balances_on_point(self) -> FromClause:
        """The same as the events summed up to one date, written as the invoice less what was
        applied to it by then: one join instead of a union of all events and a second join back
        to the invoices (the invoice's own event is effective from its issue date, the
        settlements' from theirs, and both are then on or before the date). Capped at the
        invoice's amount, as the segments are."""
        st = self._settlements
        applied = (
            sa.select(
                st.c.applies_to,
                sa.cast(sa.func.sum(st.c.amount_cents), sa.BigInteger).label("applied_cents"),
            )
            .where(st.c.applies_to.is_not(None), st.c.applies_from <= self.upto)
            .group_by(st.c.applies_to)
            .subquery("applied")
        )
        balance = _capped(
            invoices.c.amount_cents - sa.func.coalesce(applied.c.applied_cents, 0),
            invoices.c.amount_cents,
        )
        query = (
            sa.select(*_invoice_balance_columns(self.dates.c.as_of, balance))
            .select_from(
                invoices.join(self.dates, sa.true()).outerjoin(
                    applied, applied.c.applies_to == invoices.c.invoice_id
                )
            )
            .where(_counts(invoices, "invoice", self.upto), balance != 0)
        )
        return _only(query, invoices.c.customer_id, self.only).cte("balances")

    def one_pass(self, full_join: bool = True) -> Select | CompoundSelect:
        """For one date: every eligible invoice with a non-zero balance and every unapplied
        group of settlements, from one join of the settlements with the invoices.

        The settlements are summed per (named invoice, customer, currency) and joined in full
        with the eligible invoices issued by the date on those three keys. A matched group is
        what is applied to that invoice; a group that matches none (it names no invoice, or one
        that is not eligible, not yet issued, of another customer or in another currency) is
        the customer's on-account credit in its currency. That is the events summed up to the
        date (:meth:`_balances_on_dates`): a settlement that came before its invoice was issued
        is credit until then and applied from then on, so it is one or the other on any day.
        (A FULL JOIN: SQLite 3.39 or later.)

        Columns: as_of, invoice_id (NULL on a credit row), customer_id, invoice_number,
        currency, due_date, disputed, balance_cents (the invoice's, capped at its amount; NULL
        on a credit row), credit_cents (the group's sum; NULL on an invoice row) and names (the
        invoice a credit row's settlements name, if any).

        With ``keys`` (:class:`SettlementKeys`), only the rows of those keys are read and the
        rows returned are exactly the full pass's rows of those keys: an invoice row belongs
        to its invoice's key, a credit row to the key its group names.

        ``full_join`` False: the same rows from a LEFT JOIN of the invoices with the groups and
        the groups that match no invoice (NOT EXISTS). For SQLite, which plans its FULL JOIN as
        a scan of every group per invoice (no automatic index on that side: 3.6 s at 10,000
        invoices, growing with their square) and its LEFT JOIN with an automatic index
        (0.05 s)."""
        if self.point is None:
            raise ValueError("one_pass evaluates one date")
        day = bound_date(self.point)
        keys = self.keys
        paid = _only(
            sa.select(
                payments.c.invoice_id.label("names"), payments.c.customer_id,
                payments.c.currency, payments.c.amount_cents,
            ).where(payments.c.received_date <= day, within_bound(payments.c.amount_cents)),
            payments.c.customer_id,
            self.only,
        )  # fmt: skip
        credited = _only(
            sa.select(
                invoices.c.applies_to_invoice_id, invoices.c.customer_id, invoices.c.currency,
                invoices.c.amount_cents,
            ).where(_counts(invoices, "credit_note", day)),
            invoices.c.customer_id,
            self.only,
        )  # fmt: skip
        settled = sa.union_all(
            *restrict(paid, keys, payments.c.invoice_id, payments.c.customer_id),
            *restrict(credited, keys, invoices.c.applies_to_invoice_id, invoices.c.customer_id),
        ).subquery("settled")
        grouped = (
            sa.select(
                settled.c.names, settled.c.customer_id, settled.c.currency,
                # cast: PostgreSQL sums BIGINT into NUMERIC, slow in the join's arithmetic
                sa.cast(sa.func.sum(settled.c.amount_cents), sa.BigInteger).label("cents"),
            )
            .group_by(settled.c.names, settled.c.customer_id, settled.c.currency)
            .subquery("settled_groups")
        )  # fmt: skip
        eligible = _only(
            sa.select(
                invoices.c.invoice_id, invoices.c.customer_id, invoices.c.invoice_number,
                invoices.c.currency, invoices.c.due_date, invoices.c.disputed,
                invoices.c.amount_cents,
            ).where(_counts(invoices, "invoice", day)),
            invoices.c.customer_id,
            self.only,
        )  # fmt: skip
        if keys is not None:
            eligible = eligible.where(keys.named(invoices.c.invoice_id))
        eligible = eligible.subquery("eligible")
        if not full_join:  # read twice below: computed once
            grouped = grouped.element.cte("settled_groups")
        e, g = eligible.c, grouped.c
        balance = _capped(e.amount_cents - sa.func.coalesce(g.cents, 0), e.amount_cents)
        unapplied = e.invoice_id.is_(None)
        matches = sa.and_(
            g.names == e.invoice_id, g.customer_id == e.customer_id, g.currency == e.currency
        )
        if not full_join:
            return sa.union_all(
                sa.select(
                    bound_date(self.point).label("as_of"), e.invoice_id, e.customer_id,
                    e.invoice_number, e.currency, e.due_date, e.disputed,
                    balance.label("balance_cents"), sa.null().label("credit_cents"),
                    sa.null().label("names"),
                )
                .select_from(eligible.outerjoin(grouped, matches))
                .where(balance != 0),
                sa.select(
                    bound_date(self.point), sa.null(), g.customer_id, sa.null(), g.currency,
                    sa.null(), sa.null(), sa.null(), g.cents, g.names,
                ).where(~sa.select(e.invoice_id).where(matches).exists()),
            )  # fmt: skip
        return (
            sa.select(
                bound_date(self.point).label("as_of"),
                e.invoice_id,
                sa.case((unapplied, g.customer_id), else_=e.customer_id).label("customer_id"),
                e.invoice_number,
                sa.case((unapplied, g.currency), else_=e.currency).label("currency"),
                e.due_date,
                e.disputed,
                sa.case((unapplied, sa.null()), else_=balance).label("balance_cents"),
                sa.case((unapplied, g.cents)).label("credit_cents"),
                sa.case((unapplied, g.names)).label("names"),
            )
            .select_from(eligible.outerjoin(grouped, matches, full=True))
            .where(sa.or_(unapplied, balance != 0))
        )

    def balances(self) -> FromClause:
        """Every non-zero invoice balance on each date with the invoice's attributes: (as_of,
        customer_id, invoice_id, invoice_number, currency, due_date, disputed, balance_cents).
        The incremental balances (:mod:`ar_pipeline.rules.incremental`) store these."""
        return self._balances

    def aged_balances(self) -> Select:
        """Every non-zero invoice balance on each date with days overdue and bucket: > 0 is an
        open item, < 0 an overpayment. Columns: those of the ``aging_open_items`` table."""
        return aged_from(self._balances)

    def open_items(self) -> Select:
        """One row per open item (balance > 0) on each date, with days overdue and bucket."""
        return _open_items_of(self.aged_balances().subquery("aged_balances"))

    def on_account_credit(self) -> Select:
        """Unapplied settlements per (as_of, customer_id, currency), overpayments not included."""
        credit = self.credit_balances
        return sa.select(
            credit.c.as_of,
            credit.c.customer_id,
            credit.c.currency,
            credit.c.balance.label("unapplied_credit_cents"),
        )

    def unapplied_credit(self) -> Select:
        """Unapplied credit per (as_of, customer_id, currency): unapplied settlements and
        overpaid invoices."""
        return _unapplied_credit_of(
            self.on_account_credit().subquery("on_account"),
            self.aged_balances().subquery("overpaid_balances"),
        )


def aged_from(balances: FromClause) -> Select:
    """Balances (the columns of :meth:`AgingSource.balances`) with days overdue, bucket and
    customer name: the rows of ``aging_open_items``. Shared by the ledger's evaluation and the
    incremental balances, so both age alike."""
    days_overdue = days_between(balances.c.as_of, balances.c.due_date)
    # Buckets are tried in ascending order, so each needs only its upper bound.
    bucket = sa.case(
        *[(days_overdue <= high, name) for name, _, high in BUCKETS if high is not None],
        else_=sa.literal(BUCKETS[-1][0]),
    )
    return sa.select(
        balances.c.as_of,
        balances.c.customer_id,
        customers.c.customer_name,
        balances.c.invoice_id,
        balances.c.invoice_number,
        balances.c.currency,
        balances.c.due_date,
        balances.c.balance_cents,
        days_overdue.label("days_overdue"),
        bucket.label("bucket"),
        balances.c.disputed,
    ).select_from(
        # every balance has its customer (a foreign key); outer, so that PostgreSQL drops the
        # join where the name is not read (the per-customer aggregation names it once, at the
        # end: 0.1 s of 0.7 s at 1M invoices)
        balances.outerjoin(customers, customers.c.customer_id == balances.c.customer_id)
    )


def _invoice_balance_columns(
    as_of: sa.ColumnElement, balance: sa.ColumnElement
) -> list[sa.ColumnElement]:
    """An invoice balance with the invoice's attributes, as both evaluations return it."""
    return [
        as_of,
        invoices.c.customer_id,
        invoices.c.invoice_id,
        invoices.c.invoice_number,
        invoices.c.currency,
        invoices.c.due_date,
        invoices.c.disputed,
        balance.label("balance_cents"),
    ]


def _open_items_of(aged: FromClause) -> Select:
    columns = [c for c in aged.c if c.name != "balance_cents"]
    return sa.select(*columns[:7], aged.c.balance_cents.label("open_cents"), *columns[7:]).where(
        aged.c.balance_cents > 0
    )


def _unapplied_credit_of(on_account: FromClause, aged: FromClause) -> Select:
    overpaid = sa.select(
        aged.c.as_of,
        aged.c.customer_id,
        aged.c.currency,
        (-aged.c.balance_cents).label("credit_cents"),
    ).where(aged.c.balance_cents < 0)
    settled = sa.select(
        on_account.c.as_of,
        on_account.c.customer_id,
        on_account.c.currency,
        on_account.c.unapplied_credit_cents.label("credit_cents"),
    )
    credits = sa.union_all(settled, overpaid).subquery("credits")
    return sa.select(
        credits.c.as_of,
        credits.c.customer_id,
        credits.c.currency,
        sa.func.sum(credits.c.credit_cents).label("unapplied_credit_cents"),
    ).group_by(credits.c.as_of, credits.c.customer_id, credits.c.currency)


class SnapshotSource:
    """The balances ``ar_aging`` stored for one date (``write_snapshot``), offering the same
    ``open_items()`` and ``unapplied_credit()`` as :class:`AgingSource` without re-reading the
    ledger's events: the steps after ``ar_aging`` in a run read this.

    ``from_state``: read the incremental balances instead (``ledger_balances``,
    ``ledger_credits``; :mod:`ar_pipeline.rules.incremental`), which hold exactly these rows
    when ``balance_state.as_of`` is this date; days overdue and buckets are computed here."""

    def __init__(self, as_of: dt.date, only: Customers = None, from_state: bool = False) -> None:
        self.as_of = as_of
        self.only = only
        self.from_state = from_state

    def _aged(self) -> FromClause:
        from ar_pipeline.store.schema import aging_open_items as t
        from ar_pipeline.store.schema import ledger_balances as b

        if self.from_state:
            balances = _only(
                sa.select(
                    bound_date(self.as_of).label("as_of"), b.c.customer_id, b.c.invoice_id,
                    b.c.invoice_number, b.c.currency, b.c.due_date, b.c.disputed,
                    b.c.balance_cents,
                ),
                b.c.customer_id,
                self.only,
            ).subquery("state_balances")  # fmt: skip
            return aged_from(balances).subquery("snapshot_balances")
        query = sa.select(*[t.c[name] for name in SNAPSHOT_COLUMNS]).where(t.c.as_of == self.as_of)
        return _only(query, t.c.customer_id, self.only).subquery("snapshot_balances")

    def open_items(self) -> Select:
        return _open_items_of(self._aged())

    def on_account_credit(self) -> Select:
        from ar_pipeline.store.schema import aging_credits as t
        from ar_pipeline.store.schema import ledger_credits as c

        if self.from_state:
            # kept per settlement key: summed per customer and currency here
            credit = sa.func.sum(c.c.unapplied_credit_cents)
            query = sa.select(
                bound_date(self.as_of).label("as_of"), c.c.customer_id, c.c.currency,
                sa.cast(credit, sa.BigInteger).label("unapplied_credit_cents"),
            )  # fmt: skip
            query = _only(query, c.c.customer_id, self.only)
            return query.group_by(c.c.customer_id, c.c.currency).having(credit != 0)
        query = sa.select(t.c.as_of, t.c.customer_id, t.c.currency, t.c.unapplied_credit_cents)
        return _only(query.where(t.c.as_of == self.as_of), t.c.customer_id, self.only)

    def unapplied_credit(self) -> Select:
        return _unapplied_credit_of(
            self.on_account_credit().subquery("snapshot_credit"), self._aged()
        )


SNAPSHOT_COLUMNS = (
    "as_of", "customer_id", "customer_name", "invoice_id", "invoice_number", "currency",
    "due_date", "balance_cents", "days_overdue", "bucket", "disputed",
)  # fmt: skip
SNAPSHOT_KEEP_DAYS = 7


# The day's pass over the ledger (AgingSource.one_pass), kept while the run's snapshot is written
# and, on request, for the ledger check (unapplied_settlements). Temporary: dropped at commit on
# PostgreSQL (also after an error), explicitly or before the next use on SQLite.
AGING_PASS = temporary_table(
    "aging_pass",
    sa.Column("as_of", sa.Date),
    sa.Column("invoice_id", sa.Text),
    sa.Column("customer_id", sa.Text),
    sa.Column("invoice_number", sa.Text),
    sa.Column("currency", sa.CHAR(3)),
    sa.Column("due_date", sa.Date),
    sa.Column("disputed", sa.Boolean),
    sa.Column("balance_cents", sa.BigInteger),
    sa.Column("credit_cents", sa.BigInteger),
    sa.Column("names", sa.Text),
)


def write_snapshot(connection: Connection, as_of: dt.date, keep_pass: bool = False) -> None:
    """Store the invoice balances and on-account credit of ``as_of`` (one pass over the
    ledger, :meth:`AgingSource.one_pass`), replacing that date; snapshots older than a week
    before it are dropped. ``keep_pass``: leave the pass for :func:`unapplied_settlements`
    until :func:`drop_pass` or (PostgreSQL) the end of the transaction."""
    from ar_pipeline.store.schema import aging_credits, aging_open_items, aging_snapshots

    tables = (aging_open_items, aging_credits, aging_snapshots)
    cutoff = as_of - dt.timedelta(days=SNAPSHOT_KEEP_DAYS)
    for table in tables:
        connection.execute(
            table.delete().where(sa.or_(table.c.as_of == as_of, table.c.as_of < cutoff))
        )
    # the pass (a row per non-zero balance or unapplied group) is read by both inserts, so
    # that the ledger is joined once
    fill_pass(connection, as_of)
    balances = pass_balances().subquery("balances")
    connection.execute(
        aging_open_items.insert().from_select(list(SNAPSHOT_COLUMNS), aged_from(balances))
    )
    connection.execute(
        aging_credits.insert().from_select(
            ["as_of", "customer_id", "currency", "unapplied_credit_cents"], pass_credit()
        )
    )
    if not keep_pass:
        drop_pass(connection)
    connection.execute(
        aging_snapshots.insert().values(as_of=as_of, written_at=dt.datetime.now(dt.UTC))
    )


def fill_pass(
    connection: Connection, as_of: dt.date, keys: SettlementKeys | None = None
) -> None:
    """(Re)create the temporary pass table with :meth:`AgingSource.one_pass` of ``as_of``
    (``keys``: only those settlement keys). Not analyzed: unanalyzed, PostgreSQL estimates few
    unapplied rows and looks their payments up by index, which is the plan the ledger check
    wants."""
    create_afresh(connection, AGING_PASS)
    source = AgingSource(as_of_dates([as_of]), keys=keys)
    one_pass = source.one_pass(full_join=connection.dialect.name != "sqlite")
    connection.execute(
        AGING_PASS.insert().from_select([c.name for c in AGING_PASS.columns], one_pass)
    )


def pass_balances() -> Select:
    """The pass's invoice balances: the columns of :meth:`AgingSource.balances`."""
    p = AGING_PASS.c
    return sa.select(
        p.as_of, p.customer_id, p.invoice_id, p.invoice_number, p.currency, p.due_date,
        p.disputed, p.balance_cents,
    ).where(p.invoice_id.is_not(None))  # fmt: skip


def pass_credit() -> Select:
    """The pass's on-account credit: the rows of :meth:`AgingSource.on_account_credit`."""
    p = AGING_PASS.c
    credit = sa.func.sum(p.credit_cents)
    return (
        sa.select(p.as_of, p.customer_id, p.currency, credit.label("unapplied_credit_cents"))
        .where(p.invoice_id.is_(None))
        .group_by(p.as_of, p.customer_id, p.currency)
        .having(credit != 0)
    )


def pass_credit_groups() -> Select:
    """The pass's unapplied groups that do not net to zero, one row per (customer_id,
    currency, names): the incremental state keeps credit per settlement key
    (:mod:`ar_pipeline.rules.settlement_keys`)."""
    p = AGING_PASS.c
    return sa.select(
        p.customer_id, p.currency, p.names, p.credit_cents.label("unapplied_credit_cents")
    ).where(p.invoice_id.is_(None), p.credit_cents != 0)


def unapplied_settlements(as_of: dt.date) -> FromClause:
    """Of the pass kept by ``write_snapshot(..., keep_pass=True)`` for ``as_of``: the keys
    (names, customer_id, currency) of the settlements within the amount bound that name an
    invoice and are applied to none (it is not eligible, not issued by then, or of another
    customer or currency). A settlement within the bound that names an invoice of another
    customer or currency has one of these keys
    (:func:`ar_pipeline.rules.ledger_sanity.findings`)."""
    p = AGING_PASS.c
    return (
        sa.select(p.names, p.customer_id, p.currency)
        .where(p.as_of == bound_date(as_of), p.invoice_id.is_(None), p.names.is_not(None))
        .subquery("unapplied_settlements")
    )


def drop_pass(connection: Connection) -> None:
    """Drop the pass of :func:`write_snapshot`, if any."""
    AGING_PASS.drop(connection, checkfirst=True)


def source_for(connection: Connection, as_of: dt.date, only: Customers = None):
    """The incremental balances when they are as of ``as_of``, else the run's snapshot of
    ``as_of`` when ``ar_aging`` stored one, else the ledger itself."""
    from ar_pipeline.store.schema import aging_snapshots, balance_state

    state = connection.execute(sa.select(balance_state.c.as_of)).scalar_one_or_none()
    if state == as_of:
        return SnapshotSource(as_of, only, from_state=True)
    stored = connection.execute(
        sa.select(aging_snapshots.c.as_of).where(aging_snapshots.c.as_of == as_of)
    ).first()
    return SnapshotSource(as_of, only) if stored else AgingSource(as_of_dates([as_of]), only)


def _segments(events: Select, keys: list[str], name: str) -> FromClause:
    """Collapse events per key and day, then number the constant-balance stretches."""
    raw = events.subquery(f"{name}_events")
    key_columns = [raw.c[k] for k in keys]
    per_day = (
        sa.select(*key_columns, raw.c.effective, sa.func.sum(raw.c.delta).label("delta"))
        .group_by(*key_columns, raw.c.effective)
        .subquery(f"{name}_days")
    )
    day_keys = [per_day.c[k] for k in keys]
    window = {"partition_by": day_keys, "order_by": per_day.c.effective}
    return sa.select(
        *day_keys,
        per_day.c.effective.label("start"),
        sa.func.lead(per_day.c.effective).over(**window).label("stop"),
        sa.func.sum(per_day.c.delta).over(**window).label("balance"),
    ).cte(name)


def open_items(dates: FromClause, only: Customers = None) -> Select:
    """One row per open item as of each date (see :class:`AgingSource`)."""
    return AgingSource(dates, only).open_items()


def unapplied_credit(dates: FromClause, only: Customers = None) -> Select:
    """Unapplied credit per (as_of, customer_id, currency) (see :class:`AgingSource`)."""
    return AgingSource(dates, only).unapplied_credit()


def aging_by_customer(
    dates: FromClause,
    threshold_days: int = DEFAULT_THRESHOLD_DAYS,
    only: Customers = None,
    from_days: Sequence[int] = (),
    source: AgingSource | SnapshotSource | None = None,
    full_join: bool = True,
) -> Select:
    """One row per (as_of, customer, currency) with an open item or unapplied credit.

    Columns are those of the ``ar_aging`` table, and ``uncontested_cents``: open cents neither
    disputed nor held, whatever their age (the service-hold rule's amount, before credit).
    ``max_days_overdue`` is 0 when nothing is
    overdue; ``oldest_overdue_invoice_id`` is the overdue open item with the earliest due date
    (ties: the lowest invoice id in code-point order, whatever the database's collation),
    disputed, held or not. For tiering there are also ``oldest_undisputed_due_date`` (of the
    undisputed, unheld overdue items) and, for each n in ``from_days``, ``due_from_<n>``:
    undisputed, unheld open cents at least n days overdue.

    ``full_join`` False (SQLite): the open items' figures and the credit are paired by
    :func:`~ar_pipeline.store.sql_functions.full_join_rows` instead of a FULL JOIN.
    """
    source = source or AgingSource(dates, only)
    open_items = source.open_items().subquery("open_items")
    # held on the day (an invoice hold or an open promise, ar_pipeline.rules.levers): aged and in
    # every total, shown as held, never dunnable (as disputed)
    held = held_invoice_ids(dates).subquery("held")
    items = (
        sa.select(*open_items.c, held.c.invoice_id.is_not(None).label("held"))
        .select_from(
            open_items.outerjoin(
                held,
                sa.and_(
                    held.c.as_of == open_items.c.as_of,
                    held.c.invoice_id == open_items.c.invoice_id,
                ),
            )
        )
        .subquery("open_items_held")
    )
    days, cents = items.c.days_overdue, items.c.open_cents
    dunnable_item = sa.and_(~items.c.disputed, ~items.c.held)

    def cents_where(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        # FILTER rather than a sum of CASE: the rows that do not match are skipped, not added
        # as zeros (a third less time for this aggregation on PostgreSQL). Every group has a
        # row, so only a condition that no row meets gives NULL: 0. The cast: PostgreSQL sums
        # BIGINT into NUMERIC, and the outer sums of NUMERIC are slow.
        return sa.func.coalesce(sa.cast(sa.func.sum(cents).filter(condition), sa.BigInteger), 0)

    buckets = {BUCKET_COLUMNS[name]: cents_where(in_buckets(days, name)) for name, _, _ in BUCKETS}
    buckets[OVER_90_COLUMN] = cents_where(in_buckets(days, *OVER_90_BUCKETS))
    per_item = sa.select(
        items.c.as_of,
        items.c.customer_id,
        items.c.currency,
        sa.cast(sa.func.sum(cents), sa.BigInteger).label("total_open_cents"),
        cents_where(days > 0).label("overdue_cents"),
        *[expression.label(name) for name, expression in buckets.items()],
        cents_where(items.c.disputed).label("disputed_cents"),
        cents_where(items.c.held).label("held_cents"),
        cents_where(dunnable_item).label("uncontested_cents"),
        cents_where(sa.and_(dunnable_item, days >= threshold_days)).label(
            "undisputed_due_cents"
        ),
        *[cents_where(sa.and_(dunnable_item, days >= n)).label(f"due_from_{n}") for n in from_days],
        sa.func.min(items.c.due_date)
        .filter(sa.and_(dunnable_item, days > 0))
        .label("oldest_undisputed_due_date"),
        sa.func.coalesce(sa.func.max(days).filter(days > 0), 0).label("max_days_overdue"),
        # the earliest due date, ties to the lowest id: min of a sortable text, not a window
        # (its sort of every open item was a third of this statement at 1M invoices)
        id_of_dated_key(
            sa.func.min(dated_key(items.c.due_date, items.c.invoice_id)).filter(days > 0)
        ).label("oldest_overdue_invoice_id"),
        sa.func.count().label("open_item_count"),
    ).group_by(items.c.as_of, items.c.customer_id, items.c.currency)

    # The open items' figures and the credit are grouped on the same keys and joined once:
    # a customer may have either or both. (A UNION ALL regrouped by an outer GROUP BY costs a
    # sort and a second set of sums, NUMERIC on PostgreSQL, for the same rows.)
    if full_join:
        item, credit = per_item.subquery("per_item"), source.unapplied_credit().subquery("credit")
    else:
        item, credit = per_item.cte("per_item"), source.unapplied_credit().cte("credit")
    on = ("as_of", "customer_id", "currency")
    matches = sa.and_(*[item.c[k] == credit.c[k] for k in on])
    key = {k: sa.func.coalesce(item.c[k], credit.c[k]) for k in on}

    def zero_if_none(column: sa.ColumnElement[int]) -> sa.ColumnElement[int]:
        return sa.func.coalesce(column, 0)

    total = zero_if_none(item.c.total_open_cents)
    credit_total = zero_if_none(credit.c.unapplied_credit_cents)
    def joined_rows(both: FromClause) -> Select:
        return (
            sa.select(
                key["as_of"].label("as_of"),
                key["customer_id"].label("customer_id"),
                key["currency"].label("currency"),
                *[
                    zero_if_none(item.c[name]).label(name)
                    for name in ("total_open_cents", "overdue_cents", *buckets)
                    + ("disputed_cents", "held_cents", "uncontested_cents")
                ],
                credit_total.label("unapplied_credit_cents"),
                (total - credit_total).label("net_balance_cents"),
                non_negative(zero_if_none(item.c.undisputed_due_cents) - credit_total).label(
                    "dunnable_cents"
                ),
                item.c.max_days_overdue,
                item.c.oldest_overdue_invoice_id,
                zero_if_none(item.c.open_item_count).label("open_item_count"),
                *[zero_if_none(item.c[f"due_from_{n}"]).label(f"due_from_{n}") for n in from_days],
                item.c.oldest_undisputed_due_date,
            )
            .select_from(both)
            # a customer with open items, or whose credit does not net to zero
            .where(sa.or_(item.c.customer_id.is_not(None), credit_total != 0))
        )

    if full_join:
        rows: Select | CompoundSelect = joined_rows(item.join(credit, matches, full=True))
    else:
        rows = full_join_rows(item, credit, matches, item.c.customer_id, joined_rows)
    joined = rows.subquery("joined")
    j = joined.c
    return sa.select(
        j.as_of, j.customer_id, customers.c.customer_name,
        *[c for c in j if c.name not in ("as_of", "customer_id")],
    ).select_from(joined.join(customers, customers.c.customer_id == j.customer_id))  # fmt: skip


AR_AGING_COLUMNS = [c.name for c in ar_aging.columns]


def write_ar_aging(
    connection: Connection, as_of: dt.date, from_state: bool = False, keep_pass: bool = False
) -> int:
    """Replace the ``ar_aging`` rows of ``as_of`` with a fresh aggregation, inside the caller's
    transaction, with one INSERT ... SELECT. The day's balances are either stored once
    (:func:`write_snapshot`, one pass over the ledger's events) or, ``from_state``, read from
    the incremental balances, which the caller brought to ``as_of`` (the day's snapshot is then
    dropped: they are the day's balances). ``keep_pass``: see :func:`write_snapshot`. Returns
    the number of rows written."""
    connection.execute(ar_aging.delete().where(ar_aging.c.as_of == as_of))
    if from_state:
        from ar_pipeline.store.schema import aging_credits, aging_open_items, aging_snapshots

        cutoff = as_of - dt.timedelta(days=SNAPSHOT_KEEP_DAYS)
        for table in (aging_open_items, aging_credits, aging_snapshots):
            connection.execute(
                table.delete().where(sa.or_(table.c.as_of == as_of, table.c.as_of < cutoff))
            )
    else:
        write_snapshot(connection, as_of, keep_pass=keep_pass)
    source = aging_by_customer(
        as_of_dates([as_of]),
        source=SnapshotSource(as_of, from_state=from_state),
        full_join=connection.dialect.name != "sqlite",
    ).subquery("aging")
    connection.execute(
        ar_aging.insert().from_select(
            AR_AGING_COLUMNS, sa.select(*[source.c[name] for name in AR_AGING_COLUMNS])
        )
    )
    # rowcount of INSERT ... SELECT is not reported by every driver
    count = sa.select(sa.func.count()).where(ar_aging.c.as_of == as_of)
    return connection.execute(count).scalar_one()


def create_views_sql(dialect: Dialect) -> list[str]:
    """CREATE VIEW statements for the analyst views, compiled for ``dialect``."""
    view_query = open_items(latest_aging_date())
    compiled = view_query.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return [f"CREATE VIEW {AGING_VIEW} AS {compiled}"]


def drop_views_sql() -> list[str]:
    return [f"DROP VIEW IF EXISTS {AGING_VIEW}"]
