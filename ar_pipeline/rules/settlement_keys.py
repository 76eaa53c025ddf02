"""Settlement keys: the unit the incremental balances recompute (docs/design.md, Incremental
balances).

Every figure of one date's aging pass (:meth:`ar_pipeline.rules.aging.AgingSource.one_pass`)
and every finding of the ledger check (:func:`ar_pipeline.rules.ledger_sanity.findings`) depends
on the rows of exactly one key:

* **an invoice id X**: the invoice X itself, and every payment or credit note that names X,
  whichever customer's and in whichever currency. X's balance, the unapplied groups that name X
  (of another customer or currency, or X not eligible) and the findings about those rows are
  functions of these rows alone;
* **a customer's account**: the customer's payments and credit notes that name no invoice (its
  cash on account).

So when rows change, recomputing their keys is exact: what a row contributes is fixed by its key,
and no other key reads it. A row's key is :func:`payment_key` or :func:`document_keys`; a write
that moves a row to another key (another invoice named, another customer for a row that names
none) changes both keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql import Select


@dataclass(frozen=True)
class SettlementKeys:
    """A set of keys: ``invoices`` (a SELECT of one column of invoice ids) and ``accounts`` (a
    SELECT of one column of customer ids, whose rows naming no invoice are meant)."""

    invoices: Select
    accounts: Select

    def settlement(
        self, names: sa.ColumnElement, customer_id: sa.ColumnElement
    ) -> sa.ColumnElement[bool]:
        """A settlement (payment or credit note) of ``customer_id`` naming ``names`` (or
        nothing) is of one of these keys."""
        return sa.or_(self.named(names), self.unnamed(names, customer_id))

    def named(self, names: sa.ColumnElement) -> sa.ColumnElement[bool]:
        """The key of the invoice ``names`` (an invoice's own id, or what a row names)."""
        return names.in_(self.invoices)

    def unnamed(
        self, names: sa.ColumnElement, customer_id: sa.ColumnElement
    ) -> sa.ColumnElement[bool]:
        """A row naming no invoice, of one of these accounts."""
        return sa.and_(names.is_(None), customer_id.in_(self.accounts))


def payment_key(customer_id: str, invoice_id: str | None) -> tuple[str, str | None]:
    """The key of a payment: the invoice it names, else its customer's account, as the
    journal's (customer_id, invoice_id) pair (``invoice_id`` None: the account)."""
    return (customer_id, invoice_id)


def document_keys(
    customer_id: str, invoice_id: str, kind: str, applies_to: str | None
) -> list[tuple[str, str | None]]:
    """The keys of an ``invoices`` row: its own id (an invoice's balance, or what names it),
    and for a credit note the invoice it applies to, else its customer's account."""
    keys: list[tuple[str, str | None]] = [(customer_id, invoice_id)]
    if kind == "credit_note":
        keys.append((customer_id, applies_to))
    return keys


def restrict(
    query: Select, keys: SettlementKeys | None, names: sa.ColumnElement, customer_id
) -> list[Select]:
    """``query`` (over settlements naming ``names``, of ``customer_id``) kept to ``keys``, as
    the parts of a UNION ALL: the named rows and the unnamed ones apart, so that each can be
    looked up by its own index (an OR of the two would scan the table). All of it when
    ``keys`` is None."""
    if keys is None:
        return [query]
    return [query.where(keys.named(names)), query.where(keys.unnamed(names, customer_id))]
