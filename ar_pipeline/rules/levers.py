"""The collector's levers as SQL builders: invoice holds and promises to pay (docs/design.md,
The collector's levers: promises and holds).

Everything is as of a date D and reads only rows recorded on or before D, so a past date (a
trend backfill, a rerun) sees exactly the holds and promises that existed then:

* a **hold** holds its invoice on D when ``max(held_from, recorded_on) <= D <= held_until`` and
  it was not released by then (``released_on`` is null or later than D);
* a **promise** is *open* on D when ``recorded_on <= D <= promised_date`` and it was not
  cancelled by then; an open promise holds every invoice it covers (``promise_invoices``);
* the morning after the promised date a promise is judged: **kept** when the money that arrived
  reaches its amount, **partly_kept** when some arrived, **broken** when none did; ``cancelled``
  from its ``cancelled_on``. Money that arrived = payments in the promise's currency dated from
  ``recorded_on`` through ``promised_date`` (and not after D) that name a covered invoice, plus
  the customer's cash on account in that currency (payments naming no invoice) in the same
  window. A payment counts by its ``received_date``: one loaded into the ledger later but dated
  on or before the promised date is money that arrived by then, and the outcome computed on a
  later day says so (the outcome is computed, never stored). Credit notes are not money.

Builders take ``dates``: a selectable with one column ``as_of`` (``ar_pipeline.rules.aging``'s
``as_of_dates`` / ``as_of_range``), or one date for the outcome of promises.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.sql import FromClause, Select

from ar_pipeline.store.schema import (
    invoice_holds,
    payments,
    promise_invoices,
    promises_to_pay,
    proposed_actions,
    tier_assignments,
)
from ar_pipeline.store.sql_functions import bound_date, non_negative

PROMISE_OUTCOMES = ("open", "kept", "partly_kept", "broken", "cancelled")
HOLD_STATES = ("scheduled", "in_force", "ended", "released")
# a broken promise calls for the next step during this many days after the promised date, until
# a person decides on the letter it called for (broken_promises_calling)
BROKEN_CALLS_FOR_DAYS = 7


def holds_in_force(dates: FromClause) -> Select:
    """Invoice holds in force on each date: (as_of, invoice_id, customer_id, hold_id, reason,
    held_until)."""
    h = invoice_holds.c
    as_of = dates.c.as_of
    in_force = sa.and_(
        h.held_from <= as_of,
        h.recorded_on <= as_of,
        as_of <= h.held_until,
        sa.or_(h.released_on.is_(None), as_of < h.released_on),
    )
    return sa.select(
        as_of, h.invoice_id, h.customer_id, h.hold_id, h.reason, h.held_until
    ).select_from(invoice_holds.join(dates, in_force))


def open_promises(dates: FromClause) -> Select:
    """Promises open on each date: (as_of, promise_id, customer_id, promised_date)."""
    p = promises_to_pay.c
    as_of = dates.c.as_of
    is_open = sa.and_(
        p.recorded_on <= as_of,
        as_of <= p.promised_date,
        sa.or_(p.cancelled_on.is_(None), as_of < p.cancelled_on),
    )
    return sa.select(as_of, p.promise_id, p.customer_id, p.promised_date).select_from(
        promises_to_pay.join(dates, is_open)
    )


def held_invoices(dates: FromClause) -> Select:
    """Every reason an invoice is held on each date: (as_of, invoice_id, lever, lever_id,
    reason, held_until). ``lever`` is ``hold`` (``lever_id`` a hold_id, ``reason`` the hold's)
    or ``promise`` (a promise_id, reason ``promise``, held until the promised date). An invoice
    held for two reasons has two rows; :func:`held_invoice_ids` has one."""
    holds = holds_in_force(dates).subquery("holds")
    promises = open_promises(dates).subquery("promises")
    pi = promise_invoices.c
    return sa.union_all(
        sa.select(
            holds.c.as_of,
            holds.c.invoice_id,
            sa.literal("hold").label("lever"),
            holds.c.hold_id.label("lever_id"),
            holds.c.reason,
            holds.c.held_until,
        ),
        sa.select(
            promises.c.as_of,
            pi.invoice_id,
            sa.literal("promise"),
            promises.c.promise_id,
            sa.literal("promise"),
            promises.c.promised_date,
        ).select_from(promises.join(promise_invoices, pi.promise_id == promises.c.promise_id)),
    )


def held_invoice_ids(dates: FromClause) -> Select:
    """(as_of, invoice_id), once per invoice held on each date: what the aging joins."""
    held = held_invoices(dates).subquery("held_reasons")
    return sa.select(held.c.as_of, held.c.invoice_id).distinct()


def promise_outcomes(as_of: dt.date) -> Select:
    """Every promise recorded on or before ``as_of`` with the money that arrived for it by then
    (``arrived_cents``, never below 0) and its ``outcome`` (:data:`PROMISE_OUTCOMES`, see the
    module docstring), newest promised date first."""
    p = promises_to_pay.c
    day = bound_date(as_of)
    covered = sa.select(promise_invoices.c.invoice_id).where(
        promise_invoices.c.promise_id == p.promise_id
    )
    arrived = (
        sa.select(sa.func.coalesce(sa.func.sum(payments.c.amount_cents), 0))
        .where(
            payments.c.customer_id == p.customer_id,
            payments.c.currency == p.currency,
            payments.c.received_date >= p.recorded_on,
            payments.c.received_date <= p.promised_date,
            payments.c.received_date <= day,
            sa.or_(payments.c.invoice_id.is_(None), payments.c.invoice_id.in_(covered)),
        )
        .correlate(promises_to_pay)
        .scalar_subquery()
    )
    # the sum once per promise, in a subquery; the outcome reads it
    summed = (
        sa.select(*promises_to_pay.c, arrived.label("arrived_raw"))
        .where(p.recorded_on <= day)
        .subquery("promise_money")
    )
    s = summed.c
    arrived_cents = non_negative(s.arrived_raw)
    outcome = sa.case(
        (sa.and_(s.cancelled_on.is_not(None), s.cancelled_on <= day), "cancelled"),
        (day <= s.promised_date, "open"),
        (s.arrived_raw >= s.amount_cents, "kept"),
        (s.arrived_raw > 0, "partly_kept"),
        else_="broken",
    )
    return sa.select(
        s.promise_id,
        s.customer_id,
        s.currency,
        s.amount_cents,
        s.promised_date,
        s.covers_all_overdue,
        s.note,
        s.recorded_on,
        s.recorded_by,
        s.recorded_at,
        s.cancelled_on,
        s.cancelled_by,
        s.cancelled_at,
        arrived_cents.label("arrived_cents"),
        outcome.label("outcome"),
    ).order_by(s.promised_date.desc(), s.promise_id.desc())


def broken_promises_calling(as_of: dt.date) -> Select:
    """Per customer, the broken promise that calls for its next step on ``as_of``: broken as of
    that day, its promised date at most :data:`BROKEN_CALLS_FOR_DAYS` days back, and no letter
    it called for on an earlier day has been decided yet (approved, rejected, sent: anything
    but still ``proposed`` or ``superseded``). So the next morning proposes the step; while
    nobody decides, each run decides it again (the pending letter stays as it is while its
    inputs are the same; a changed one is drafted anew, superseding it and still stating the
    promise), a missed run or a weekend does not lose it, and once a person
    has decided on such a letter the normal rules take over. A same-day rerun decides the same.
    Several broken promises: the latest recorded, and only while its own letter is undecided
    (an earlier one never calls after a later one's letter was decided). Columns:
    customer_id, broken_promise_id."""
    outcomes = promise_outcomes(as_of).subquery("outcomes")
    day = bound_date(as_of)
    earliest = bound_date(as_of - dt.timedelta(days=BROKEN_CALLS_FOR_DAYS))
    # the latest broken promise of each customer first, then whether its letter was decided:
    # once a person decided on the letter of a later promise, an earlier one calls no more
    latest = (
        sa.select(
            outcomes.c.customer_id, sa.func.max(outcomes.c.promise_id).label("promise_id")
        )
        .where(outcomes.c.outcome == "broken", outcomes.c.promised_date >= earliest)
        .group_by(outcomes.c.customer_id)
        .subquery("latest_broken")
    )
    ta, pa = tier_assignments.c, proposed_actions.c
    decided = (
        sa.select(ta.customer_id)
        .select_from(
            tier_assignments.join(
                proposed_actions,
                sa.and_(
                    pa.customer_id == ta.customer_id,
                    pa.as_of == ta.as_of,
                    pa.tier == ta.proposed_tier,
                    pa.action_type == "collection_action",
                ),
            )
        )
        .where(
            ta.broken_promise_id == latest.c.promise_id,
            ta.as_of < day,
            pa.status.not_in(("proposed", "superseded")),
        )
        .exists()
    )
    return sa.select(
        latest.c.customer_id, latest.c.promise_id.label("broken_promise_id")
    ).where(~decided)


def hold_history(as_of: dt.date) -> Select:
    """Every hold recorded on or before ``as_of`` with its ``state`` that day
    (:data:`HOLD_STATES`), latest first."""
    h = invoice_holds.c
    day = bound_date(as_of)
    state = sa.case(
        (sa.and_(h.released_on.is_not(None), h.released_on <= day), "released"),
        (day > h.held_until, "ended"),
        (day < h.held_from, "scheduled"),
        else_="in_force",
    )
    return (
        sa.select(*invoice_holds.c, state.label("state"))
        .where(h.recorded_on <= day)
        .order_by(h.recorded_at.desc(), h.hold_id.desc())
    )
