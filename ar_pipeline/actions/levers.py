"""Recording the collector's levers: promises to pay and invoice holds (docs/design.md, The
collector's levers: promises and holds). The CLI (``ar-pipeline promises|holds``) and the
customer screen of the page call these; the rules that read them are in
``ar_pipeline.rules.levers``.

Who may record: anyone with a name (the CLI's ``--by``) or a page account. Recording a promise
or a hold sends nothing; it only keeps invoices out of the letters for a while, and every row
says who recorded it and when, and who ended it early. ``AR_APPROVERS`` stays the list of who
decides on letters.

Every function works inside the caller's transaction and checks everything before it writes:
a refusal (:class:`LeverRefused`, its message naming the field) leaves nothing written when
the caller rolls back, and the writes themselves are few set-based statements. ``today`` is
the recording day in ``AR_TIMEZONE`` (passed in, so no rule reads the wall clock); ``now`` the
UTC timestamp.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa

from ar_pipeline.rules.aging import AgingSource, as_of_dates
from ar_pipeline.rules.money import currency_exponent, to_minor_units
from ar_pipeline.settings import parse_amount
from ar_pipeline.store.schema import (
    HOLD_REASONS,
    customers,
    invoice_holds,
    invoices,
    promise_invoices,
    promises_to_pay,
)

MAX_AHEAD_DAYS = 366  # a promise or hold further out than a year is no promise, it is a write-off
MAX_NOTE = 2000
_CURRENCY = re.compile(r"[A-Z]{3}")


class LeverRefused(ValueError):
    """A promise or hold that cannot be recorded, cancelled or released as asked; the message
    names the field. Nothing was written."""


def _who(value: str | None, field: str = "recorded_by") -> str:
    name = (value or "").strip()
    if not name:
        raise LeverRefused(f"{field}: required (who took the call)")
    if len(name) > 200:
        raise LeverRefused(f"{field}: at most 200 characters")
    return name


def _note(value: str | None) -> str | None:
    note = (value or "").strip()
    if len(note) > MAX_NOTE:
        raise LeverRefused(f"note: at most {MAX_NOTE} characters")
    return note or None


def parse_money(raw: str, currency: str) -> int:
    """``'1200.00'`` EUR -> 120000: plain digits, more than 0, no finer than the currency's
    minor unit (``'10.005'`` EUR is refused rather than rounded: it is what a person typed)."""
    try:
        value = parse_amount(raw, "1200.00")
    except ValueError as error:
        raise LeverRefused(f"amount: {error}") from None
    exponent = currency_exponent(currency)
    if value != value.quantize(Decimal(1).scaleb(-exponent)):
        raise LeverRefused(f"amount: {currency} has {exponent} decimal places, got {raw!r}")
    cents = to_minor_units(value, currency)
    if cents <= 0:
        raise LeverRefused(f"amount: must be more than 0, got {raw!r}")
    if cents >= 10**13:
        raise LeverRefused(f"amount: too large, got {raw!r}")
    return cents


def _not_too_far(field: str, day: dt.date, today: dt.date) -> None:
    if day > today + dt.timedelta(days=MAX_AHEAD_DAYS):
        raise LeverRefused(f"{field}: at most {MAX_AHEAD_DAYS} days ahead, got {day}")


def require_customer(connection: sa.Connection, customer_id: str | None) -> str:
    """``customer_id``, stripped, or :class:`LeverRefused` naming it when no customer has it."""
    customer_id = (customer_id or "").strip()
    known = connection.execute(
        sa.select(customers.c.customer_id).where(customers.c.customer_id == customer_id)
    ).first()
    if known is None:
        raise LeverRefused(f"customer: unknown customer {customer_id!r}")
    return customer_id


def record_promise(
    connection: sa.Connection,
    *,
    customer_id: str,
    amount: str,
    currency: str,
    promised_date: dt.date,
    recorded_by: str,
    today: dt.date,
    now: dt.datetime,
    invoice_ids: Sequence[str] = (),
    all_overdue: bool = False,
    note: str | None = None,
) -> int:
    """Record a promise to pay and the invoices it covers (named, or every invoice of the
    customer in that currency overdue ``today``); returns its id."""
    who = _who(recorded_by)
    customer_id = require_customer(connection, customer_id)
    currency = (currency or "").strip().upper()
    if not _CURRENCY.fullmatch(currency):
        raise LeverRefused(f"currency: a three-letter ISO 4217 code like EUR, got {currency!r}")
    cents = parse_money(amount, currency)
    if promised_date < today:
        raise LeverRefused(f"promised_date: {promised_date} is before today ({today})")
    _not_too_far("promised_date", promised_date, today)
    ids = list(dict.fromkeys(i.strip() for i in invoice_ids if i and i.strip()))
    if all_overdue and ids:
        raise LeverRefused("invoices: name invoices or choose all overdue, not both")
    if not all_overdue and not ids:
        raise LeverRefused("invoices: name at least one invoice, or choose all overdue")
    note = _note(note)
    if ids:
        found = {
            r.invoice_id: r
            for r in connection.execute(
                sa.select(
                    invoices.c.invoice_id, invoices.c.customer_id, invoices.c.currency,
                    invoices.c.kind, invoices.c.status,
                ).where(invoices.c.invoice_id.in_(ids))
            )
        }  # fmt: skip
        for invoice_id in ids:
            row = found.get(invoice_id)
            if row is None or row.kind != "invoice":
                raise LeverRefused(f"invoice: unknown invoice {invoice_id!r}")
            if row.customer_id != customer_id:
                raise LeverRefused(f"invoice: {invoice_id} is an invoice of another customer")
            if row.currency != currency:
                raise LeverRefused(
                    f"currency: invoice {invoice_id} is in {row.currency}, the promise in "
                    f"{currency}"
                )
            if row.status != "issued":
                raise LeverRefused(f"invoice: {invoice_id} is {row.status}, not issued")
        covered = sa.union_all(
            *[sa.select(sa.literal(i, sa.Text).label("invoice_id")) for i in ids]
        ).subquery("named")
    else:
        items = AgingSource(as_of_dates([today]), only=[customer_id]).open_items().subquery("items")
        covered = (
            sa.select(items.c.invoice_id)
            .where(items.c.currency == currency, items.c.days_overdue > 0)
            .subquery("overdue")
        )
        if connection.execute(sa.select(sa.func.count()).select_from(covered)).scalar_one() == 0:
            raise LeverRefused(
                f"invoices: {customer_id} has no invoice in {currency} overdue on {today}"
            )
    promise_id = connection.execute(
        promises_to_pay.insert()
        .values(
            customer_id=customer_id, currency=currency, amount_cents=cents,
            promised_date=promised_date, covers_all_overdue=all_overdue, note=note,
            recorded_on=today, recorded_by=who, recorded_at=now,
        )  # fmt: skip
        .returning(promises_to_pay.c.promise_id)
    ).scalar_one()
    connection.execute(
        promise_invoices.insert().from_select(
            ["promise_id", "invoice_id"],
            sa.select(sa.literal(promise_id, sa.BigInteger), covered.c.invoice_id),
        )
    )
    return int(promise_id)


def cancel_promise(
    connection: sa.Connection,
    promise_id: int,
    *,
    cancelled_by: str,
    today: dt.date,
    now: dt.datetime,
    customer_id: str | None = None,
) -> None:
    """Withdraw a promise that is still open: its invoices are not held from ``today`` on.
    A promise whose date has passed has been judged and stays as it was. ``customer_id``: only
    a promise of this customer (the page's customer screen)."""
    who = _who(cancelled_by, "cancelled_by")
    p = promises_to_pay.c
    row = connection.execute(
        sa.select(p.promised_date, p.cancelled_on, p.recorded_on, p.customer_id).where(
            p.promise_id == promise_id
        )
    ).first()
    if row is None or (customer_id is not None and row.customer_id != customer_id):
        raise LeverRefused(f"promise: no promise {promise_id}")
    if row.cancelled_on is not None:
        raise LeverRefused(f"promise: {promise_id} was already cancelled on {row.cancelled_on}")
    if row.promised_date < today:
        raise LeverRefused(
            f"promise: {promise_id} was due on {row.promised_date} and has been judged; it "
            "cannot be cancelled"
        )
    changed = connection.execute(
        promises_to_pay.update()
        .where(p.promise_id == promise_id, p.cancelled_on.is_(None))
        .values(cancelled_on=max(today, row.recorded_on), cancelled_by=who, cancelled_at=now)
    ).rowcount
    if changed != 1:
        raise LeverRefused(f"promise: {promise_id} was cancelled meanwhile")


def record_hold(
    connection: sa.Connection,
    *,
    invoice_id: str,
    reason: str,
    held_until: dt.date,
    recorded_by: str,
    today: dt.date,
    now: dt.datetime,
    held_from: dt.date | None = None,
    note: str | None = None,
    customer_id: str | None = None,
) -> int:
    """Hold one invoice from ``held_from`` (default ``today``; never before it was recorded)
    through ``held_until``; returns the hold's id. ``customer_id``: only an invoice of this
    customer (the page's customer screen)."""
    who = _who(recorded_by)
    invoice_id = (invoice_id or "").strip()
    row = connection.execute(
        sa.select(invoices.c.customer_id, invoices.c.kind, invoices.c.status).where(
            invoices.c.invoice_id == invoice_id
        )
    ).first()
    if row is None or row.kind != "invoice":
        raise LeverRefused(f"invoice: unknown invoice {invoice_id!r}")
    if row.status != "issued":  # as a promise refuses it: nothing is owed on it to hold
        raise LeverRefused(f"invoice: {invoice_id} is {row.status}, not issued")
    if customer_id is not None and row.customer_id != customer_id:
        raise LeverRefused(f"invoice: {invoice_id} is an invoice of another customer")
    if reason not in HOLD_REASONS:
        raise LeverRefused(f"reason: unknown reason {reason!r}; one of {', '.join(HOLD_REASONS)}")
    start = held_from or today
    if held_until < start:
        raise LeverRefused(f"held_until: {held_until} is before held_from ({start})")
    if held_until < today:
        raise LeverRefused(f"held_until: {held_until} is before today ({today})")
    _not_too_far("held_until", held_until, today)
    return int(
        connection.execute(
            invoice_holds.insert()
            .values(
                invoice_id=invoice_id, customer_id=row.customer_id, reason=reason,
                held_from=start, held_until=held_until, note=_note(note), recorded_on=today,
                recorded_by=who, recorded_at=now,
            )  # fmt: skip
            .returning(invoice_holds.c.hold_id)
        ).scalar_one()
    )


def release_hold(
    connection: sa.Connection,
    hold_id: int,
    *,
    released_by: str,
    today: dt.date,
    now: dt.datetime,
    note: str | None = None,
    customer_id: str | None = None,
) -> None:
    """End a hold early: its invoice is not held from ``today`` on (dunnable again in the next
    run). ``customer_id``: only a hold of this customer (the page's customer screen)."""
    who = _who(released_by, "released_by")
    h = invoice_holds.c
    row = connection.execute(
        sa.select(h.held_until, h.released_on, h.customer_id).where(h.hold_id == hold_id)
    ).first()
    if row is None or (customer_id is not None and row.customer_id != customer_id):
        raise LeverRefused(f"hold: no hold {hold_id}")
    if row.released_on is not None:
        raise LeverRefused(f"hold: {hold_id} was already released on {row.released_on}")
    if row.held_until < today:
        raise LeverRefused(f"hold: {hold_id} ended by itself on {row.held_until}")
    changed = connection.execute(
        invoice_holds.update()
        .where(h.hold_id == hold_id, h.released_on.is_(None))
        .values(released_on=today, released_by=who, released_at=now, release_note=_note(note))
    ).rowcount
    if changed != 1:
        raise LeverRefused(f"hold: {hold_id} was released meanwhile")
