"""Ledger sanity: the rows of the ledger that cannot be right as of a date (check
``ledger_sane``), and the customers they hold back from that day's proposals.

Only what counts as of D is read: payments with ``received_date <= D``, issued invoices and
issued credit notes with ``issue_date <= D`` (drafts and voids never count, later rows never
change the past). Each finding names one row, its customer and a reason:

* ``amount_out_of_bounds``: an issued invoice or credit note, or a payment, whose amount is
  beyond plus or minus :data:`AMOUNT_BOUND_CENTS` (10^13 minor units: 100 billion in a
  2-decimal currency, 10 trillion in yen). No real receivable is that large, and a few such
  rows would overflow the 64-bit sums of the aging. The aging leaves these rows out
  (:func:`within_bound`) and the other rules do not read them either.
* ``reversal_exceeds_paid``: a negative payment (a reversal) naming an invoice, when the
  payments of the same customer and currency naming that invoice add up to less than zero: more
  was reversed than was paid. Every reversal on that invoice is named. A negative payment that
  names no invoice (cash on account taken back, the Alga PSA source's "credit drawn") is not a
  reversal of a payment and is not judged here.
* ``open_above_amount``: an invoice whose settlements (payments and credit notes applied to it
  the way the aging applies them: same customer, same currency) add up to less than zero, so
  that amount less settlements would exceed what was invoiced. The aging caps such an invoice's
  open balance at its amount: the excess of the reversals is ignored, neither owed nor credit.
  Credit notes are positive (``ck_invoices_amount_positive``), so only a reversal can do this.
* ``currency_mismatch``: a payment or issued credit note naming an issued invoice in another
  currency. The aging makes it unapplied credit in its own currency, and the invoice stays open.
* ``customer_mismatch``: a payment or issued credit note naming an issued invoice of another
  customer. Named twice, once for each customer: the one whose credit it becomes and the one
  whose invoice it does not settle.

A customer with any finding is **held back** that day: no letter, no e-mail on the sales rep's
behalf, no service hold; ``tier_assignments`` writes no row for it, staging supersedes its
still-pending proposals and lists it in the day's envelope with the reasons. Everybody else is
aged and staged as usual. Every rule is one set-based SELECT with bound parameters, the same on
SQLite and PostgreSQL; nothing here loads the ledger into Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.sql import CompoundSelect, FromClause, Select

from ar_pipeline.rules.money import format_money
from ar_pipeline.rules.settlement_keys import SettlementKeys, restrict
from ar_pipeline.store.schema import AMOUNT_BOUND_CENTS, customers, invoices, payments
from ar_pipeline.store.sql_functions import bound_date

REASONS = (
    "amount_out_of_bounds",
    "reversal_exceeds_paid",
    "open_above_amount",
    "currency_mismatch",
    "customer_mismatch",
)
LISTED = 50  # findings shown by name in the check's metadata; all are counted


def within_bound(amount: sa.ColumnElement) -> sa.ColumnElement[bool]:
    """``amount`` is within plus or minus :data:`AMOUNT_BOUND_CENTS` (no arithmetic: it cannot
    overflow, even for the most negative 64-bit value)."""
    bound = sa.literal(AMOUNT_BOUND_CENTS, sa.BigInteger)
    low = sa.literal(-AMOUNT_BOUND_CENTS, sa.BigInteger)
    return sa.and_(amount >= low, amount <= bound)


def _text(value: str) -> sa.ColumnElement[str]:
    return sa.literal(value, sa.Text)


def _no_text() -> sa.ColumnElement[str]:
    return sa.cast(sa.null(), sa.Text)


def _no_cents() -> sa.ColumnElement[int]:
    return sa.cast(sa.null(), sa.BigInteger)


def _finding(
    customer_id, reason, row_kind, row_id, invoice_id, currency, amount_cents, net_cents, other
) -> list[sa.ColumnElement]:
    """The columns of a finding, in the order every rule's SELECT uses."""
    return [
        customer_id.label("customer_id"),
        reason.label("reason"),
        row_kind.label("row_kind"),
        row_id.label("row_id"),
        invoice_id.label("invoice_id"),
        currency.label("currency"),
        amount_cents.label("amount_cents"),
        net_cents.label("net_cents"),
        other.label("other"),
    ]


def findings(
    as_of: dt.date,
    only: Select | CompoundSelect | Sequence[str] | None = None,
    unapplied: FromClause | None = None,
    keys: SettlementKeys | None = None,
) -> Select:
    """Every finding as of ``as_of`` (see the module docstring), one row per (row, reason,
    customer): customer_id, reason, row_kind (``invoice``, ``credit_note``, ``payment``),
    row_id, invoice_id (the invoice the row names, or the invoice itself), currency and
    amount_cents of the row, net_cents (``reversal_exceeds_paid``: the payments on that invoice
    net; ``open_above_amount``: its settlements net) and other (the named invoice's currency, or
    the other customer).

    ``only`` (a list or a SELECT of customer ids) reads only those customers' rows and returns
    only their findings. A customer-mismatch finding involves two customers: it is found when
    both are in ``only`` (:func:`counterpart_selects` lists the other side).

    ``unapplied``: the aging's unapplied settlements of ``as_of``
    (:func:`ar_pipeline.rules.aging.unapplied_settlements`, keys names, customer_id,
    currency). A settlement within the bound that names an invoice of its own customer and
    currency, eligible and issued by then, is applied to it: no mismatch. So the mismatch rules
    read only the rows of those keys and the rows beyond the bound, instead of joining every
    payment and credit note with the invoices.

    ``keys`` (:class:`~ar_pipeline.rules.settlement_keys.SettlementKeys`) reads only the rows of
    those settlement keys and returns exactly the findings whose ``invoice_id`` is one of the
    invoices, or which name no invoice and are of one of the accounts: a finding's
    ``invoice_id`` is its row's key (with ``unapplied``, pass the aging's pass of the same
    keys)."""
    day = bound_date(as_of, "ledger_as_of")
    p, inv = payments.c, invoices.c
    issued = sa.and_(inv.status == "issued", inv.issue_date <= day)
    if only is not None:
        only = only if isinstance(only, Select | CompoundSelect) else list(only)
        issued = sa.and_(issued, inv.customer_id.in_(only))
    paid_in_scope = sa.true() if only is None else p.customer_id.in_(only)
    document_key = sa.case((inv.kind == "invoice", inv.invoice_id), else_=inv.applies_to_invoice_id)
    names_key = sa.true() if keys is None else keys.named(p.invoice_id)
    note_names_key = sa.true() if keys is None else keys.named(inv.applies_to_invoice_id)

    # 1. amounts beyond the bound
    huge_document = sa.select(
        *_finding(
            inv.customer_id, _text("amount_out_of_bounds"), inv.kind, inv.invoice_id,
            document_key, inv.currency, inv.amount_cents, _no_cents(), _no_text(),
        )
    ).where(issued, ~within_bound(inv.amount_cents))  # fmt: skip
    if keys is None:
        huge_documents = [huge_document]
    else:  # by key: an invoice's own id, what a credit note applies to (or its account)
        huge_documents = [
            huge_document.where(inv.kind == "invoice", keys.named(inv.invoice_id)),
            *restrict(
                huge_document.where(inv.kind == "credit_note"), keys,
                inv.applies_to_invoice_id, inv.customer_id,
            ),
        ]  # fmt: skip
    huge_payments = restrict(
        sa.select(
            *_finding(
                p.customer_id, _text("amount_out_of_bounds"), _text("payment"), p.payment_id,
                p.invoice_id, p.currency, p.amount_cents, _no_cents(), _no_text(),
            )
        ).where(p.received_date <= day, ~within_bound(p.amount_cents), paid_in_scope),
        keys, p.invoice_id, p.customer_id,
    )  # fmt: skip

    # 2 and 3. Per (invoice, customer, currency) that a reversal names: what the payments of
    # that key net, and what they and the credit notes of that key net (the settlements the
    # aging applies to that invoice). Reversals are few, so this reads little.
    reversal = sa.and_(
        paid_in_scope,
        p.received_date <= day,
        within_bound(p.amount_cents),
        p.amount_cents < 0,
        p.invoice_id.is_not(None),
        names_key,
    )
    keys = (
        sa.select(p.invoice_id, p.customer_id, p.currency).where(reversal).distinct()
    ).subquery("reversed_keys")
    paid, note = payments.alias("paid"), invoices.alias("note")
    # per key, one lookup of its payments and of its credit notes (the indexes on invoice_id
    # and applies_to_invoice_id): a join would read every payment and invoice for a few keys
    net_paid = (
        sa.select(sa.func.sum(paid.c.amount_cents))
        .where(
            paid.c.invoice_id == keys.c.invoice_id,
            paid.c.customer_id == keys.c.customer_id,
            paid.c.currency == keys.c.currency,
            paid.c.received_date <= day,
            within_bound(paid.c.amount_cents),
        )
        .scalar_subquery()
    )
    credited = (
        sa.select(sa.func.coalesce(sa.func.sum(note.c.amount_cents), 0))
        .where(
            note.c.applies_to_invoice_id == keys.c.invoice_id,
            note.c.customer_id == keys.c.customer_id,
            note.c.currency == keys.c.currency,
            note.c.kind == "credit_note",
            note.c.status == "issued",
            note.c.issue_date <= day,
            within_bound(note.c.amount_cents),
        )
        .scalar_subquery()
    )
    # the payments of a key include its reversal: their sum is never NULL
    per_key = sa.select(
        keys.c.invoice_id, keys.c.customer_id, keys.c.currency,
        net_paid.label("net_paid_cents"), credited.label("credited_cents"),
    ).subquery("reversed_sums")  # fmt: skip
    net = sa.select(
        per_key.c.invoice_id,
        per_key.c.customer_id,
        per_key.c.currency,
        per_key.c.net_paid_cents,
        (per_key.c.net_paid_cents + per_key.c.credited_cents).label("net_settled_cents"),
    ).cte("reversed_nets")
    over_reversed = (
        sa.select(
            *_finding(
                p.customer_id, _text("reversal_exceeds_paid"), _text("payment"), p.payment_id,
                p.invoice_id, p.currency, p.amount_cents, net.c.net_paid_cents, _no_text(),
            )
        )
        .select_from(
            payments.join(
                net,
                sa.and_(
                    net.c.invoice_id == p.invoice_id,
                    net.c.customer_id == p.customer_id,
                    net.c.currency == p.currency,
                ),
            )
        )
        .where(reversal, net.c.net_paid_cents < 0)
    )  # fmt: skip
    over_open = (
        sa.select(
            *_finding(
                inv.customer_id, _text("open_above_amount"), _text("invoice"), inv.invoice_id,
                inv.invoice_id, inv.currency, inv.amount_cents, net.c.net_settled_cents,
                _no_text(),
            )
        )
        .select_from(
            invoices.join(
                net,
                sa.and_(
                    net.c.invoice_id == inv.invoice_id,
                    net.c.customer_id == inv.customer_id,
                    net.c.currency == inv.currency,
                ),
            )
        )
        .where(
            inv.kind == "invoice",
            issued,
            within_bound(inv.amount_cents),
            net.c.net_settled_cents < 0,
        )
    )  # fmt: skip

    # 4. settlements naming an invoice of another currency or another customer
    paying = sa.and_(
        p.received_date <= day, p.invoice_id.is_not(None), paid_in_scope, names_key
    )
    noting = sa.and_(
        inv.kind == "credit_note", issued, inv.applies_to_invoice_id.is_not(None), note_names_key
    )
    payment_columns = [
        p.customer_id, _text("payment").label("row_kind"), p.payment_id.label("row_id"),
        p.invoice_id, p.currency, p.amount_cents,
    ]  # fmt: skip
    note_columns = [
        inv.customer_id, _text("credit_note"), inv.invoice_id, inv.applies_to_invoice_id,
        inv.currency, inv.amount_cents,
    ]  # fmt: skip

    def naming_rows(
        table: sa.Table, names: sa.ColumnElement, columns: list, condition: sa.ColumnElement
    ) -> list[Select]:
        """The rows of ``table`` (payments or credit notes) that may name an invoice of another
        currency or customer: all of them, or with ``unapplied``, those of its keys and those
        beyond the bound (which the aging, and so the pass, leaves out)."""
        if unapplied is None:
            return [sa.select(*columns).where(condition)]
        u, amount = unapplied.c, table.c.amount_cents
        applied_to_none = table.join(
            unapplied,
            sa.and_(
                u.names == names,
                u.customer_id == table.c.customer_id,
                u.currency == table.c.currency,
            ),
        )
        return [
            sa.select(*columns).select_from(applied_to_none).where(condition, within_bound(amount)),
            sa.select(*columns).where(condition, ~within_bound(amount)),
        ]

    naming = sa.union_all(
        *naming_rows(payments, p.invoice_id, payment_columns, paying),
        *naming_rows(invoices, inv.applies_to_invoice_id, note_columns, noting),
    ).subquery("naming")
    named = invoices.alias("named")
    mismatched = (
        sa.select(
            naming,
            named.c.customer_id.label("named_customer"),
            named.c.currency.label("named_currency"),
        )
        .select_from(naming.join(named, named.c.invoice_id == naming.c.invoice_id))
        .where(
            named.c.kind == "invoice",
            named.c.status == "issued",
            named.c.issue_date <= day,
            sa.true() if only is None else named.c.customer_id.in_(only),
            sa.or_(
                named.c.customer_id != naming.c.customer_id,
                named.c.currency != naming.c.currency,
            ),
        )
        .cte("mismatched")
    )
    m = mismatched.c

    def mismatch(customer_id, reason: str, other, condition) -> Select:
        return sa.select(
            *_finding(
                customer_id, _text(reason), m.row_kind, m.row_id, m.invoice_id, m.currency,
                m.amount_cents, _no_cents(), other,
            )
        ).where(condition)  # fmt: skip

    every = sa.union_all(
        *huge_documents,
        *huge_payments,
        over_reversed,
        over_open,
        mismatch(m.customer_id, "currency_mismatch", m.named_currency,
                 m.named_currency != m.currency),
        # named once for the row's customer and once for the invoice's
        mismatch(m.customer_id, "customer_mismatch", m.named_customer,
                 m.named_customer != m.customer_id),
        mismatch(m.named_customer, "customer_mismatch", m.customer_id,
                 m.named_customer != m.customer_id),
    )  # fmt: skip
    if only is None:
        return every
    scoped = every.subquery("scoped_findings")
    return sa.select(scoped).where(scoped.c.customer_id.in_(only))


def counterpart_selects(only: Select) -> list[Select]:
    """Customers on the other side of a payment or credit note of ``only`` (a SELECT of ids)
    that names an invoice of another customer, either way: a customer-mismatch finding of one
    side is found only with the other side's rows (:func:`findings`). SELECTs of one column
    ``customer_id``, to be put in a UNION by the caller (SQLite cannot nest a UNION in a
    UNION)."""
    p, inv = payments.c, invoices.c
    named = invoices.alias("named_invoice")
    note = invoices.alias("naming_note")
    # implied by the joins; said outright, it lets PostgreSQL plan on the few credit notes
    # that name an invoice (their index) instead of every invoice
    naming = note.c.applies_to_invoice_id.is_not(None)
    return [
        # rows of ``only`` naming another customer's invoice
        sa.select(named.c.customer_id)
        .select_from(payments.join(named, named.c.invoice_id == p.invoice_id))
        .where(p.customer_id.in_(only), named.c.customer_id != p.customer_id),
        sa.select(named.c.customer_id)
        .select_from(note.join(named, named.c.invoice_id == note.c.applies_to_invoice_id))
        .where(naming, note.c.customer_id.in_(only), named.c.customer_id != note.c.customer_id),
        # rows of others naming an invoice of ``only``
        sa.select(p.customer_id)
        .select_from(invoices.join(payments, p.invoice_id == inv.invoice_id))
        .where(inv.customer_id.in_(only), p.customer_id != inv.customer_id),
        sa.select(note.c.customer_id)
        .select_from(invoices.join(note, note.c.applies_to_invoice_id == inv.invoice_id))
        .where(naming, inv.customer_id.in_(only), note.c.customer_id != inv.customer_id),
    ]


@dataclass(frozen=True)
class Finding:
    """One row that cannot be right, as :func:`findings` returns it."""

    customer_id: str
    customer_name: str
    reason: str
    row_kind: str
    row_id: str
    invoice_id: str | None
    currency: str
    amount_cents: int
    net_cents: int | None
    other: str | None

    def describe(self) -> str:
        """The finding in words, for the check's list and the envelope."""
        row = f"{self.row_kind.replace('_', ' ')} {self.row_id}"
        amount = format_money(self.amount_cents, self.currency)
        if self.reason == "amount_out_of_bounds":
            bound = format_money(AMOUNT_BOUND_CENTS, self.currency)
            return f"{row}: {amount} is beyond the bound of +/- {bound}; left out of the aging"
        if self.reason == "reversal_exceeds_paid":
            net = format_money(self.net_cents or 0, self.currency)
            return (
                f"{row}: a reversal of {amount} on invoice {self.invoice_id}, where the "
                f"payments net {net}: more reversed than paid"
            )
        if self.reason == "open_above_amount":
            net = format_money(self.net_cents or 0, self.currency)
            would = format_money(self.amount_cents - (self.net_cents or 0), self.currency)
            return (
                f"{row}: settlements net {net}, which would leave {would} open on an invoice of "
                f"{amount}; aged as {amount} open"
            )
        if self.reason == "currency_mismatch":
            return f"{row}: {amount} names invoice {self.invoice_id}, which is in {self.other}"
        if self.reason == "customer_mismatch":
            return (
                f"{row}: {amount} names invoice {self.invoice_id}; the row and the invoice "
                f"belong to different customers ({self.customer_id} and {self.other})"
            )
        return f"{row}: {self.reason}"


def _ordered_findings(
    as_of: dt.date,
    only: Collection[str] | None = None,
    stored: FromClause | None = None,
    unapplied: FromClause | None = None,
) -> Select:
    """The findings with the customer's name, in a stable order; ``only`` these customers.
    ``stored``: the findings of ``as_of`` already computed (the incremental state's table);
    ``unapplied``: see :func:`findings`."""
    found = findings(as_of, unapplied=unapplied).subquery("findings") if stored is None else stored
    query = sa.select(found, customers.c.customer_name).select_from(
        found.outerjoin(customers, customers.c.customer_id == found.c.customer_id)
    )
    if only is not None:
        query = query.where(found.c.customer_id.in_(sorted(only)))
    return query.order_by(found.c.customer_id, found.c.reason, found.c.row_kind, found.c.row_id)


def _finding_of(r: sa.Row) -> Finding:
    return Finding(
        r.customer_id, r.customer_name or r.customer_id, r.reason, r.row_kind, r.row_id,
        r.invoice_id, r.currency, int(r.amount_cents),
        None if r.net_cents is None else int(r.net_cents), r.other,
    )  # fmt: skip


def customers_with_findings(
    connection: sa.Connection, as_of: dt.date, customer_ids: Collection[str]
) -> dict[str, str]:
    """Of ``customer_ids``, those with a finding as of ``as_of``, each with its first finding in
    words (the apply job's last look before a side effect)."""
    if not customer_ids:
        return {}
    named: dict[str, str] = {}
    for row in connection.execute(_ordered_findings(as_of, customer_ids)):
        named.setdefault(row.customer_id, _finding_of(row).describe())
    return named


def list_findings(connection: sa.Connection, as_of: dt.date) -> list[Finding]:
    """Every finding as of ``as_of``, by customer, reason and row."""
    return [_finding_of(r) for r in connection.execute(_ordered_findings(as_of))]


@dataclass
class HeldBack:
    """A customer held back from the day's proposals, with its findings (the first
    ``PER_CUSTOMER`` of them; ``count`` counts all)."""

    customer_id: str
    customer_name: str
    findings: list[Finding] = field(default_factory=list)
    count: int = 0

    PER_CUSTOMER = 5

    @property
    def reasons(self) -> list[str]:
        return sorted({f.reason for f in self.findings})

    def as_payload(self) -> dict:
        """The envelope's entry: who, the reason codes, and the rows in words."""
        more = self.count - len(self.findings)
        return {
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "reasons": self.reasons,
            "reason": "; ".join(f.describe() for f in self.findings)
            + (f"; and {more} more" if more > 0 else ""),
        }


@dataclass
class LedgerReview:
    """What the check found as of ``as_of``: counts per reason, the first ``LISTED`` findings,
    and every customer held back. Built once per run by ``ar_aging`` and handed to the check,
    to ``tier_assignments`` and to ``proposed_actions``."""

    as_of: dt.date
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    listed: list[Finding] = field(default_factory=list)
    held_back: dict[str, HeldBack] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def review_ledger(
    connection: sa.Connection,
    as_of: dt.date,
    batch_size: int = 5000,
    stored: FromClause | None = None,
    unapplied: FromClause | None = None,
) -> LedgerReview:
    """Run every rule as of ``as_of`` in one statement, streaming the findings (memory stays
    small however many there are). ``stored``: read the findings of ``as_of`` kept by the
    incremental state (``ar_pipeline.rules.incremental``) instead. ``unapplied``: the aging's
    unapplied settlements of ``as_of``, which spare the mismatch rules a join of the whole
    ledger (:func:`findings`)."""
    review = LedgerReview(as_of)
    result = connection.execute(
        _ordered_findings(as_of, stored=stored, unapplied=unapplied),
        execution_options={"yield_per": batch_size},
    )
    for row in result:
        finding = _finding_of(row)
        review.counts[finding.reason] = review.counts.get(finding.reason, 0) + 1
        if len(review.listed) < LISTED:
            review.listed.append(finding)
        entry = review.held_back.get(finding.customer_id)
        if entry is None:
            entry = review.held_back[finding.customer_id] = HeldBack(
                finding.customer_id, finding.customer_name
            )
        entry.count += 1
        if len(entry.findings) < HeldBack.PER_CUSTOMER:
            entry.findings.append(finding)
    return review
