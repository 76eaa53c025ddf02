"""Incremental balances (docs/design.md, Aging: incremental balances): the day's invoice
balances and on-account credit kept up to date from what arrived since the last run, instead
of recomputed from the whole ledger every morning.

The state (``ledger_balances``, ``ledger_credits``, ``ledger_findings``, one ``balance_state``
row) is exactly the day's aging pass (:meth:`~ar_pipeline.rules.aging.AgingSource.one_pass`)
and ledger check for ``balance_state.as_of``: every non-zero invoice balance, every unapplied
group of settlements and every finding, each belonging to one **settlement key**
(:mod:`ar_pipeline.rules.settlement_keys`: an invoice id, or a customer's account). Bringing it
from date S to the run date D (D >= S) recomputes, with that same pass restricted to them, the
keys whose figures may have moved:

* every key journaled (``ledger_changes``) after the watermark: the rows that arrived, changed
  or were deleted since the last run, in the order they arrived, whatever their business dates
  (a back-dated payment is just another arrival). A journal entry for a whole customer (a
  writer that replaces a customer's rows) stands for every key of that customer's rows, in the
  ledger now and in the state;
* every key with an event that *takes effect* in (S, D]: an invoice or credit note issued, or
  a payment received, in that window. This is what makes rows dated in the future right: a
  payment dated tomorrow that arrived today does not count today and its key is recomputed on
  the morning it takes effect.

What a row contributes depends on its key's rows alone, so deleting and re-inserting a key's
state rows is exact, whatever changed; a payment recomputes the one invoice it names (index
look-ups), not its customer's whole ledger. Everything is set-based (INSERT ... SELECT,
DELETE ... IN).

Full recomputation instead, when the state cannot be trusted: no state; a different
:data:`RULES_VERSION`; a watermark ahead of the journal (restored or truncated journal); a
journal entry for "anything" (a bulk load or a replacement of the ledger); ledger row counts
that moved with no journal entry at all (a writer that skipped the journal). As-of dates before
the state's date (backfills) never touch the state: they use ``AgingSource``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import CompoundSelect, Select

from ar_pipeline.rules import aging, ledger_sanity
from ar_pipeline.rules.aging import AgingSource, as_of_dates
from ar_pipeline.rules.settlement_keys import SettlementKeys
from ar_pipeline.settings import parse_balances_setting
from ar_pipeline.store.database import (
    bulk_insert,
    create_afresh,
    prefer_index_lookups,
    temporary_table,
)
from ar_pipeline.store.journal import hold_journal_lock
from ar_pipeline.store.schema import (
    balance_state,
    customers,
    invoices,
    ledger_balances,
    ledger_changes,
    ledger_credits,
    ledger_findings,
    payments,
)

# Bump whenever the aging rules change what a balance is: the next run recomputes everything.
RULES_VERSION = 2  # 2: credit and findings kept per settlement key
BALANCE_COLUMNS = (
    "invoice_id", "customer_id", "invoice_number", "currency", "due_date", "disputed",
    "balance_cents",
)  # fmt: skip
CREDIT_COLUMNS = ("customer_id", "currency", "unapplied_credit_cents")  # per customer
# Customers compared with a full recomputation each run (sample_customers, write_ar_aging).
SAMPLE_CUSTOMERS = 1000
# The state's rows, all as of balance_state.as_of: emptied together before a full recomputation
# and when the state is forgotten.
STATE_ROWS = (ledger_balances, ledger_credits, ledger_findings)
# AR_INCREMENTAL_BALANCES=auto keeps the state from this many `invoices` rows on: below it the
# morning's fixed costs (the comparison, the bookkeeping) are more than a full pass. The
# benchmark's mornings with and without the state: 1.38 s and 1.13 s at 100k invoices, 2.71 s
# and 2.79 s at 300k, 3.24 s and 4.35 s at 500k (docs/benchmarks.md); about even near 250k
AUTO_FROM_INVOICES = 250_000
# A journal that names this share of the state's invoices in settlement keys or more (and at
# least FULL_FROM_CHANGES) is not refreshed key by key but recomputed in full: each key costs
# its own look-ups. At 1M invoices the morning's `ar_aging` took 4.5 s with a quarter of the keys
# journaled, 6.8 s with 40 %, 16.0 s with all of them, against 5.0 s recomputing everything
# (docs/benchmarks.md). Below FULL_FROM_CHANGES either way is quick.
FULL_FROM_SHARE = 0.25
FULL_FROM_CHANGES = 10_000


@dataclass(frozen=True)
class Refresh:
    """What bringing the state up to date did."""

    as_of: dt.date
    # 'full', 'incremental', 'past' (an earlier date: the state was not used) or 'off'
    # (AR_INCREMENTAL_BALANCES is off, or auto on a small ledger: every balance from the
    # ledger, the state forgotten)
    mode: str
    reason: str
    keys_recomputed: int | None = None  # incremental only: invoices and accounts


def _ledger_counts(connection: Connection) -> tuple[int, int]:
    count = sa.func.count()
    return (
        connection.execute(sa.select(count).select_from(invoices)).scalar_one(),
        connection.execute(sa.select(count).select_from(payments)).scalar_one(),
    )


def _why_full(connection: Connection, as_of: dt.date, head: int) -> str | None:
    """Why the state cannot be brought forward (None: it can)."""
    state = connection.execute(sa.select(balance_state)).first()
    if state is None:
        return "no incremental state yet"
    if state.rules_version != RULES_VERSION:
        return f"rules version {state.rules_version} -> {RULES_VERSION}"
    if state.watermark > head:
        return f"watermark {state.watermark} ahead of the journal ({head})"
    if as_of < state.as_of:
        raise ValueError("an earlier date never uses the state")  # the caller checks first
    j = ledger_changes.c
    # the keys journaled, each once (SQLite's row triggers journal an update's key twice), a
    # customer journaled whole counted as one
    invoice_keys, customer_keys, bulk = connection.execute(
        sa.select(
            sa.func.count(sa.distinct(j.invoice_id)),
            sa.func.count(sa.distinct(j.customer_id)).filter(j.scope != "invoice"),
            sa.func.count().filter(j.scope == "all"),
        ).where(j.seq > state.watermark, j.seq <= head)
    ).one()
    if bulk:
        return "a bulk change of the ledger was journaled"
    changes = invoice_keys + customer_keys
    if changes >= max(FULL_FROM_CHANGES, state.invoice_rows * FULL_FROM_SHARE):
        return (
            f"the journal names {changes:,} keys, {FULL_FROM_SHARE:.0%} or more of the "
            f"ledger's {state.invoice_rows:,} invoices: recomputing everything is quicker"
        )
    if head == state.watermark and _ledger_counts(connection) != (
        state.invoice_rows,
        state.payment_rows,
    ):
        return "ledger row counts changed without a journal entry"
    return None


def state_date(connection: Connection) -> dt.date | None:
    return connection.execute(sa.select(balance_state.c.as_of)).scalar_one_or_none()


def refresh_balances(connection: Connection, as_of: dt.date, force_full: bool = False) -> Refresh:
    """Bring the incremental state to ``as_of``, inside the caller's transaction. An as-of date
    before the state's leaves it alone (mode 'past')."""
    stored = state_date(connection)
    if stored is not None and as_of < stored and not force_full:
        return Refresh(as_of, "past", f"state is as of {stored}")
    # exclusive: no writer is between its journal entry and its commit while the journal's head
    # is read (see hold_journal_lock), and two refreshes do not interleave; then look again,
    # another refresh may have moved the state on meanwhile
    hold_journal_lock(connection, exclusive=True)
    stored = state_date(connection)
    if stored is not None and as_of < stored and not force_full:
        return Refresh(as_of, "past", f"state is as of {stored}")
    head = connection.execute(sa.select(sa.func.max(ledger_changes.c.seq))).scalar_one() or 0
    reason = "forced" if force_full else _why_full(connection, as_of, head)
    if reason is not None:
        _recompute_all(connection, as_of)
        _save_state(connection, as_of, head, "full")
        return Refresh(as_of, "full", reason)
    state = connection.execute(sa.select(balance_state)).one()
    recomputed = _recompute_changed(connection, state.as_of, as_of, state.watermark, head)
    _save_state(connection, as_of, head, "incremental")
    return Refresh(as_of, "incremental", f"journal {state.watermark}..{head}", recomputed)


def _recompute_all(connection: Connection, as_of: dt.date) -> None:
    for table in STATE_ROWS:
        connection.execute(table.delete())
    _insert_for(connection, as_of, None)


def _insert_for(connection: Connection, as_of: dt.date, keys: SettlementKeys | None) -> None:
    # one pass over the ledger (AgingSource.one_pass) gives the balances and the credit groups;
    # the ledger check reads its unapplied settlements instead of joining the ledger again
    aging.fill_pass(connection, as_of, keys)
    balances = aging.pass_balances().subquery("balances")
    connection.execute(
        ledger_balances.insert().from_select(
            list(BALANCE_COLUMNS), sa.select(*[balances.c[c] for c in BALANCE_COLUMNS])
        )
    )
    groups = aging.pass_credit_groups().subquery("credit_groups")
    columns = [c.name for c in ledger_credits.columns]
    connection.execute(
        ledger_credits.insert().from_select(columns, sa.select(*[groups.c[c] for c in columns]))
    )
    # the ledger check's findings: each belongs to its row's key, like a balance
    unapplied = aging.unapplied_settlements(as_of)
    found = ledger_sanity.findings(as_of, None, unapplied, keys=keys).subquery("found")
    columns = [c.name for c in ledger_findings.columns]
    query = sa.select(*[found.c[c] for c in columns])
    connection.execute(ledger_findings.insert().from_select(columns, query))
    aging.drop_pass(connection)


def _ids_table(name: str, column: str) -> sa.Table:
    return temporary_table(name, sa.Column(column, sa.Text, primary_key=True))


def changed_keys(
    since: dt.date, as_of: dt.date, watermark: int, head: int
) -> tuple[CompoundSelect, CompoundSelect]:
    """The settlement keys whose figures may differ between the state (as of ``since``,
    journal up to ``watermark``) and ``as_of`` (journal up to ``head``): a SELECT of invoice ids
    and a SELECT of customer ids (their accounts), each one column, duplicates removed."""
    j = ledger_changes.c
    window = sa.and_(j.seq > watermark, j.seq <= head)
    whole = sa.select(j.customer_id).where(window, j.scope == "customer")
    p, inv = payments.c, invoices.c
    b, c, f = ledger_balances.c, ledger_credits.c, ledger_findings.c
    invoice_ids = sa.union(
        sa.select(j.invoice_id).where(window, j.scope == "invoice"),
        # a customer journaled whole: every key of its rows, now and in the state
        sa.select(inv.invoice_id).where(inv.customer_id.in_(whole)),
        sa.select(inv.applies_to_invoice_id).where(
            inv.customer_id.in_(whole), inv.applies_to_invoice_id.is_not(None)
        ),
        sa.select(p.invoice_id).where(p.customer_id.in_(whole), p.invoice_id.is_not(None)),
        sa.select(b.invoice_id).where(b.customer_id.in_(whole)),
        sa.select(c.names).where(c.customer_id.in_(whole), c.names.is_not(None)),
        sa.select(f.invoice_id).where(f.customer_id.in_(whole), f.invoice_id.is_not(None)),
        # rows already known whose business date falls in (since, as_of]: they take effect now
        sa.select(inv.invoice_id).where(inv.issue_date > since, inv.issue_date <= as_of),
        sa.select(inv.applies_to_invoice_id).where(
            inv.issue_date > since, inv.issue_date <= as_of, inv.applies_to_invoice_id.is_not(None)
        ),
        sa.select(p.invoice_id).where(
            p.received_date > since, p.received_date <= as_of, p.invoice_id.is_not(None)
        ),
    )
    accounts = sa.union(
        sa.select(j.customer_id).where(window, j.scope.in_(("account", "customer"))),
        sa.select(inv.customer_id).where(
            inv.issue_date > since, inv.issue_date <= as_of, inv.kind == "credit_note",
            inv.applies_to_invoice_id.is_(None),
        ),
        sa.select(p.customer_id).where(
            p.received_date > since, p.received_date <= as_of, p.invoice_id.is_(None)
        ),
    )  # fmt: skip
    return invoice_ids, accounts


def _recompute_changed(
    connection: Connection, since: dt.date, as_of: dt.date, watermark: int, head: int
) -> int:
    # The keys are kept in two temporary tables: every statement below reads them.
    affected_invoices = _ids_table("affected_invoices", "invoice_id")
    affected_accounts = _ids_table("affected_accounts", "customer_id")
    invoice_ids, accounts = changed_keys(since, as_of, watermark, head)
    for table, query in ((affected_invoices, invoice_ids), (affected_accounts, accounts)):
        create_afresh(connection, table)
        column = next(iter(table.c))
        connection.execute(table.insert().from_select([column.name], query))
        _analyze(connection, table)
    count = sum(
        connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
        for t in (affected_invoices, affected_accounts)
    )
    if count:
        keys = SettlementKeys(
            sa.select(affected_invoices.c.invoice_id), sa.select(affected_accounts.c.customer_id)
        )
        c, f = ledger_credits.c, ledger_findings.c
        with prefer_index_lookups(connection):
            connection.execute(
                ledger_balances.delete().where(keys.named(ledger_balances.c.invoice_id))
            )
            connection.execute(
                ledger_credits.delete().where(keys.settlement(c.names, c.customer_id))
            )
            connection.execute(
                ledger_findings.delete().where(keys.settlement(f.invoice_id, f.customer_id))
            )
            _insert_for(connection, as_of, keys)
    for table in (affected_invoices, affected_accounts):
        table.drop(connection)
    return count


def _analyze(connection: Connection, table: sa.Table) -> None:
    """Statistics for a freshly filled temporary table: without them PostgreSQL guesses its
    size and plans the joins on it badly (autovacuum never analyzes temporary tables)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"ANALYZE {table.name}"))


def _save_state(connection: Connection, as_of: dt.date, head: int, mode: str) -> None:
    # the journal up to the watermark is consumed; its last entry stays, so that the journal's
    # head never falls behind the watermark (which would read as a truncated journal)
    connection.execute(ledger_changes.delete().where(ledger_changes.c.seq < head))
    invoice_rows, payment_rows = _ledger_counts(connection)
    connection.execute(balance_state.delete())
    connection.execute(
        balance_state.insert().values(
            state_id=1, as_of=as_of, watermark=head, rules_version=RULES_VERSION,
            invoice_rows=invoice_rows, payment_rows=payment_rows, mode=mode,
            updated_at=dt.datetime.now(dt.UTC),
        )
    )  # fmt: skip


def invalidate(connection: Connection) -> None:
    """Forget the state: the next run recomputes every balance. Its rows go (nothing reads them
    without ``balance_state``, and the next state is built afresh), and so does the journal, but
    for its last entry (as :func:`_save_state` keeps it): nothing reads the rest, and a run
    that keeps no state forgets it every time, so the triggers' entries would pile up."""
    for table in (balance_state, *STATE_ROWS):
        connection.execute(table.delete())
    head = sa.select(sa.func.max(ledger_changes.c.seq)).scalar_subquery()
    connection.execute(ledger_changes.delete().where(ledger_changes.c.seq < head))


# --- the check: the state against a full recomputation ------------------------------------------


def sample_customers(
    connection: Connection, as_of: dt.date, size: int = SAMPLE_CUSTOMERS
) -> list[str]:
    """A slice of ``size`` customers in id order that moves on with the date, so that every
    customer is compared within (customers / size) days at a cost independent of the ledger."""
    total = connection.execute(sa.select(sa.func.count()).select_from(customers)).scalar_one()
    offset = (as_of.toordinal() * size) % total if total > size else 0
    query = sa.select(customers.c.customer_id).order_by(customers.c.customer_id)
    return list(connection.execute(query.limit(size).offset(offset)).scalars())


@dataclass(frozen=True)
class Comparison:
    customers: int | None  # compared (None: all)
    differing_balances: int
    differing_credits: int
    differing_findings: int

    @property
    def agree(self) -> bool:
        return not (self.differing_balances or self.differing_credits or self.differing_findings)


def compare_with_full(
    connection: Connection, as_of: dt.date, only: Sequence[str] | None = None
) -> Comparison:
    """Rows of the state that a full recomputation as of ``as_of`` does not give, and the
    reverse (balances, on-account credit, the ledger check's findings), for the customers
    ``only`` (all when None).

    A slice's ids go into a temporary table that the statements select from: as a thousand
    bound parameters in each of a dozen subqueries they cost more to compile and bind than the
    comparison costs to run (0.4 s of 0.5 s at 10k invoices)."""
    scope: Select | None = None
    if only is not None:
        compared = _ids_table("compared_customers", "customer_id")
        create_afresh(connection, compared)
        bulk_insert(connection, compared, ["customer_id"], [(c,) for c in sorted(set(only))])
        _analyze(connection, compared)
        scope = sa.select(compared.c.customer_id)
        # the sample and the other side of its customer mismatches, found once: as a UNION in
        # each of the ledger check's subqueries it was evaluated in every one of them, and
        # its misestimated size made PostgreSQL scan the ledger (0.65 s at 1M invoices)
        sides = _ids_table("compared_sides", "customer_id")
        create_afresh(connection, sides)
        both = sa.union(scope, *ledger_sanity.counterpart_selects(scope))
        connection.execute(sides.insert().from_select(["customer_id"], both))
        _analyze(connection, sides)

    def in_scope(table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.true() if scope is None else table.c.customer_id.in_(scope)

    def differing(a: Select, b: Select) -> int:
        if only is not None:
            # a slice: a few thousand rows at most, each side read once and compared here
            left, right = Counter(connection.execute(a).all()), Counter(connection.execute(b).all())
            return (left - right).total() + (right - left).total()
        # everything: counted in SQL (two counts: SQLite cannot parenthesize the operands of
        # a compound SELECT). EXCEPT compares sets, so each side is first grouped into its
        # distinct rows with their multiplicity: a row kept twice is a difference too.
        def with_multiplicity(query: Select, name: str) -> Select:
            rows = query.subquery(name)
            return sa.select(*rows.c, sa.func.count().label("times")).group_by(*rows.c)

        a, b = with_multiplicity(a, "left_rows"), with_multiplicity(b, "right_rows")
        return sum(
            connection.execute(
                sa.select(sa.func.count()).select_from(sa.except_(x, y).subquery("differing"))
            ).scalar_one()
            for x, y in ((a, b), (b, a))
        )

    source = AgingSource(as_of_dates([as_of]), scope)
    fresh = source.balances()
    balances = differing(
        sa.select(*[ledger_balances.c[c] for c in BALANCE_COLUMNS]).where(
            in_scope(ledger_balances)
        ),
        sa.select(*[fresh.c[c] for c in BALANCE_COLUMNS]),
    )
    credit = source.on_account_credit().subquery("credit")
    kept = ledger_credits.c
    kept_total = sa.func.sum(kept.unapplied_credit_cents)
    credits = differing(
        # kept per settlement key, compared per customer and currency
        sa.select(
            kept.customer_id, kept.currency, sa.cast(kept_total, sa.BigInteger)
        )
        .where(in_scope(ledger_credits))
        .group_by(kept.customer_id, kept.currency)
        .having(kept_total != 0),
        sa.select(*[credit.c[c] for c in CREDIT_COLUMNS]),
    )
    if scope is None:
        found = ledger_sanity.findings(as_of).subquery("found")
    else:  # the sample and the other side of its customer mismatches, kept to the sample
        found = ledger_sanity.findings(as_of, sa.select(sides.c.customer_id)).subquery("found")
    columns = [c.name for c in ledger_findings.columns]
    findings = differing(
        sa.select(*[ledger_findings.c[c] for c in columns]).where(in_scope(ledger_findings)),
        sa.select(*[found.c[c] for c in columns]).where(
            sa.true() if scope is None else found.c.customer_id.in_(scope)
        ),
    )
    if only is not None:
        sides.drop(connection)
        compared.drop(connection)
    return Comparison(None if only is None else len(only), balances, credits, findings)


def review_ledger(
    connection: Connection, as_of: dt.date, refresh: Refresh, with_pass: bool = False
) -> ledger_sanity.LedgerReview:
    """The ledger check's review of ``as_of``: from the state's findings when the state is as
    of that date, else from the ledger. ``with_pass``: :func:`write_ar_aging` kept the
    aging's pass (``keep_pass``), which the check reads then (and drops)."""
    if refresh.mode in ("past", "off"):
        if not with_pass:
            return ledger_sanity.review_ledger(connection, as_of)
        review = ledger_sanity.review_ledger(
            connection, as_of, unapplied=aging.unapplied_settlements(as_of)
        )
        aging.drop_pass(connection)
        return review
    return ledger_sanity.review_ledger(connection, as_of, stored=ledger_findings)


def keeps_state(
    connection: Connection, setting: str, auto_from_invoices: int | None = None
) -> tuple[bool, str]:
    """Whether the daily job keeps the incremental state under ``AR_INCREMENTAL_BALANCES``
    (``auto``, ``on`` or ``off``, or a boolean as the environment variable takes it), and why.
    ``auto`` keeps it once the ledger holds ``auto_from_invoices`` (default
    :data:`AUTO_FROM_INVOICES`) rows of ``invoices`` (credit notes count: the pass reads them
    too), counted no further than that, so the count costs the same on any larger ledger. A
    ledger that shrinks below the bound is aged from its events again and the state forgotten;
    one that grows past it starts with a full recomputation, as turning the setting on does."""
    setting = parse_balances_setting("AR_INCREMENTAL_BALANCES", setting)
    if setting != "auto":
        return setting == "on", f"AR_INCREMENTAL_BALANCES is {setting}"
    if auto_from_invoices is None:
        auto_from_invoices = AUTO_FROM_INVOICES  # read at the call: a test may lower it
    counted = sa.select(invoices.c.invoice_id).limit(auto_from_invoices).subquery()
    rows = connection.execute(sa.select(sa.func.count()).select_from(counted)).scalar_one()
    if rows >= auto_from_invoices:
        return True, f"AR_INCREMENTAL_BALANCES is auto and the ledger has {rows:,}+ invoices"
    return False, (
        f"AR_INCREMENTAL_BALANCES is auto and the ledger has fewer than "
        f"{auto_from_invoices:,} invoices"
    )


def write_ar_aging(
    connection: Connection,
    as_of: dt.date,
    setting: str = "on",
    keep_pass: bool = False,
    auto_from_invoices: int | None = None,
) -> tuple[int, Refresh]:
    """The daily aging of ``as_of`` (:func:`ar_pipeline.rules.aging.write_ar_aging`) from the
    incremental balances when ``as_of`` is on or after the state's date, else from the ledger.
    When the setting (``AR_INCREMENTAL_BALANCES``, :func:`keeps_state`) keeps no state: every
    balance from the ledger's events, and the state is forgotten, so that nothing reads a
    stale one and keeping it again starts with a full recomputation.

    After an incremental refresh a sample of customers is compared with a full recomputation;
    any difference (a writer that skipped the journal) recomputes everything at once, so the
    day's figures never come from a state known to be wrong.

    ``keep_pass``: when the day's balances come from the ledger, leave the aging's pass for
    :func:`review_ledger` (``with_pass``)."""
    setting = parse_balances_setting("AR_INCREMENTAL_BALANCES", setting)
    keep, why = keeps_state(connection, setting, auto_from_invoices)
    if not keep:
        invalidate(connection)
        refresh = Refresh(as_of, "off", f"{why}: from the ledger")
        return aging.write_ar_aging(connection, as_of, keep_pass=keep_pass), refresh
    refresh = refresh_balances(connection, as_of)
    if refresh.mode == "incremental":
        compared = compare_with_full(connection, as_of, sample_customers(connection, as_of))
        if not compared.agree:
            refresh = refresh_balances(connection, as_of, force_full=True)
            refresh = Refresh(as_of, "full", f"sample disagreed: {compared}")
    if setting == "auto":
        refresh = replace(refresh, reason=f"{why}; {refresh.reason}")
    if refresh.mode == "past":
        return aging.write_ar_aging(connection, as_of, keep_pass=keep_pass), refresh
    return aging.write_ar_aging(connection, as_of, from_state=True), refresh
