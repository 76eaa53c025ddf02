"""Dunning tiers: which customers need a step, and at which tier (docs/design.md, Aging).

The rules, for a customer as of date D with a dunnable amount > 0 in some currency:

* **Tier amount.** For tier t, the customer's *tier amount* in a currency is
  max(0, undisputed open items with ``days_overdue >= max(threshold_days, t.min_days_overdue)``
  - unapplied credit). The customer meets tier t when the tier amount of *any* currency reaches
  t's minimum (major units, converted with the currency's ISO 4217 exponent). Amounts of
  different currencies are never added.
* **Target tier** = the highest tier the customer meets; none means ``below_minimum``.
* **Episode.** The last applied ``collection_action`` counts only when it was applied (date in
  ``AR_TIMEZONE``) on or after the due date of the customer's oldest undisputed overdue item;
  an older one belongs to an earlier episode of debt.
* **In flight.** A ``collection_action`` approved by the end of D and not yet confirmed sent
  (``approved``, ``applying``, ``unconfirmed``; or ``applied`` only after D) is the customer's
  current step: no step at that tier or below is proposed while it is in flight.
* **Skips**, checked in this order: ``below_minimum``; ``paused`` (``dunning_paused_until >= D``);
  ``in_flight`` (the next step would not go beyond the tier in flight); ``already_at_tier``
  (the next step would not go beyond the last applied tier); ``cooldown`` (fewer than the last
  applied tier's ``cooldown_days`` since it was applied).
* **One step at a time.** proposed tier = min(target tier, last applied tier + 1).
* **Broken promise.** When a promise to pay was broken (judged the morning after its date,
  ``ar_pipeline.rules.levers.broken_promises_calling``: until a person has decided on the letter
  it called for, for at most a week), the step is the next
  one after the last applied tier, at least the target tier, at most the highest tier:
  min(highest tier, max(target, last applied + 1)). ``below_minimum``, ``paused`` and
  ``in_flight`` still apply; ``already_at_tier`` and ``cooldown`` do not (the customer broke
  its word since the last letter). The decision names the promise (``broken_promise_id``).
* **Held** invoices (a hold in force, an open promise) are out of every amount here, as
  disputed ones are: a customer whose overdue items are all held has nothing dunnable and so
  no decision that day.
* **Held back.** A customer that the ledger check holds back (``ar_pipeline.rules.ledger_sanity``)
  gets no decision and no row that day.

:func:`assign_tier` is the rule as a plain function, the specification. ``tier_assignments`` is
written by the same rule in SQL (:func:`tier_decisions_sql`), for every customer in one
INSERT ... SELECT, on SQLite and PostgreSQL alike. The episode and the cooldown compare the date
of the last step in ``AR_TIMEZONE`` with dates; SQLite cannot convert time zones, so the SQL
compares the step's UTC instant with day starts computed in Python instead (the day starts of
due dates in a small temporary calendar, the cooldown's first day as one bound instant per
tier), which decides the same: a date is before day D exactly when its instant is before the
start of D.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql import CompoundSelect, FromClause, Select

from ar_pipeline.rules.aging import (
    AgingSource,
    Customers,
    aging_by_customer,
    as_of_dates,
    source_for,
)
from ar_pipeline.rules.levers import broken_promises_calling, held_invoice_ids
from ar_pipeline.rules.money import CURRENCY_EXPONENTS, to_minor_units
from ar_pipeline.settings import MAX_DAYS, parse_amount
from ar_pipeline.store.database import bulk_insert, create_afresh, temporary_table
from ar_pipeline.store.schema import (
    IN_FLIGHT_STATUSES,
    Timestamp,
    ar_aging,
    customers,
    prior_actions,
    proposed_actions,
    tier_assignments,
)
from ar_pipeline.store.sql_functions import bound_date, full_join_rows, non_negative

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
TEMPLATE_SUFFIX = ".txt.j2"

class TierConfigError(ValueError):
    """Invalid tier configuration; the message names the offending field."""


@dataclass(frozen=True)
class TierDefinition:
    tier: int
    name: str
    min_days_overdue: int
    min_dunnable: Decimal  # major units of each currency
    cooldown_days: int
    template: str
    involves_sales_rep: bool


DEFAULT_TIERS: tuple[TierDefinition, ...] = (
    TierDefinition(1, "reminder", 1, Decimal("10.00"), 7, "reminder", False),
    TierDefinition(2, "firm_reminder", 15, Decimal("10.00"), 7, "firm_reminder", False),
    TierDefinition(3, "final_notice", 30, Decimal("100.00"), 10, "final_notice", True),
    TierDefinition(4, "escalation", 60, Decimal("500.00"), 14, "escalation", True),
)


def available_templates() -> set[str]:
    return {p.name.removesuffix(TEMPLATE_SUFFIX) for p in TEMPLATES_DIR.glob(f"*{TEMPLATE_SUFFIX}")}


def _whole_number(field_name: str, value: Any, minimum: int, maximum: int = MAX_DAYS) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TierConfigError(f"{field_name}: must be a whole number, got {value!r}")
    if value < minimum:
        raise TierConfigError(f"{field_name}: must be at least {minimum}, got {value}")
    if value > maximum:
        raise TierConfigError(f"{field_name}: must be at most {maximum}, got {value}")
    return value


def validate_threshold_days(value: Any) -> int:
    return _whole_number("threshold_days", value, minimum=0)


def validate_tier_definitions(
    raw: Sequence[Mapping[str, Any]] | None, templates: Iterable[str] | None = None
) -> tuple[TierDefinition, ...]:
    """Parse tier definitions from config, or return the defaults for ``None``.

    Tiers must be numbered 1, 2, 3, ... in order, with strictly increasing minimum days overdue
    (otherwise two tiers overlap), non-negative amounts and cooldowns, unique names, and a
    template that exists. Every error names the field, e.g. ``tier_definitions[2].template``.
    """
    if raw is None:
        return DEFAULT_TIERS
    known_templates = set(available_templates() if templates is None else templates)
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise TierConfigError("tier_definitions: must be a non-empty list of tiers")
    tiers: list[TierDefinition] = []
    for index, entry in enumerate(raw):
        where = f"tier_definitions[{index}]"
        if not isinstance(entry, Mapping):
            raise TierConfigError(f"{where}: must be a mapping, got {entry!r}")
        expected = {
            "tier", "name", "min_days_overdue", "min_dunnable", "cooldown_days", "template",
            "involves_sales_rep",
        }  # fmt: skip
        unknown = set(entry) - expected
        if unknown:
            raise TierConfigError(f"{where}.{sorted(unknown)[0]}: unknown field")
        missing = expected - {"involves_sales_rep"} - set(entry)
        if missing:
            raise TierConfigError(f"{where}.{sorted(missing)[0]}: is required")
        tier = _whole_number(f"{where}.tier", entry["tier"], minimum=1)
        if tier != index + 1:
            raise TierConfigError(
                f"{where}.tier: tiers must be numbered 1, 2, 3, ... in order; expected "
                f"{index + 1}, got {tier}"
            )
        name = entry["name"]
        if not isinstance(name, str) or not name.strip():
            raise TierConfigError(f"{where}.name: must be a non-empty text, got {name!r}")
        if any(t.name == name for t in tiers):
            raise TierConfigError(f"{where}.name: {name!r} is used by an earlier tier")
        min_days = _whole_number(f"{where}.min_days_overdue", entry["min_days_overdue"], 1)
        if tiers and min_days <= tiers[-1].min_days_overdue:
            raise TierConfigError(
                f"{where}.min_days_overdue: must be greater than the previous tier's "
                f"({tiers[-1].min_days_overdue}), got {min_days}; tiers overlap or are unordered"
            )
        raw_amount = entry["min_dunnable"]
        if isinstance(raw_amount, bool | float):
            raise TierConfigError(
                f"{where}.min_dunnable: must be an amount written as text like '10.00' "
                f"(no floating point for money), got {raw_amount!r}"
            )
        try:  # the amount rule of the settings: plain digits, finite, not negative
            min_dunnable = parse_amount(
                str(raw_amount) if isinstance(raw_amount, int | Decimal) else raw_amount
            )
        except ValueError as error:
            raise TierConfigError(f"{where}.min_dunnable: {error}") from None
        cooldown = _whole_number(f"{where}.cooldown_days", entry["cooldown_days"], minimum=0)
        template = entry["template"]
        if template not in known_templates:
            raise TierConfigError(
                f"{where}.template: unknown template {template!r}; "
                f"known: {', '.join(sorted(known_templates))}"
            )
        involves_rep = entry.get("involves_sales_rep", False)
        if not isinstance(involves_rep, bool):
            raise TierConfigError(f"{where}.involves_sales_rep: must be true or false")
        tiers.append(
            TierDefinition(tier, name, min_days, min_dunnable, cooldown, template, involves_rep)
        )
    return tuple(tiers)


# --- the rule, as a plain function ------------------------------------------------------------


@dataclass(frozen=True)
class CurrencyPosition:
    """What one customer owes in one currency, as needed for tiering."""

    currency: str
    unapplied_credit_cents: int
    # undisputed open cents with days_overdue >= key, for each boundary key
    due_cents_from_day: Mapping[int, int]

    def tier_amount(self, from_day: int) -> int:
        return max(0, self.due_cents_from_day[from_day] - self.unapplied_credit_cents)


@dataclass(frozen=True)
class CustomerPosition:
    customer_id: str
    currencies: Sequence[CurrencyPosition]
    oldest_overdue_due_date: dt.date | None = None
    dunning_paused_until: dt.date | None = None
    in_flight_tier: int | None = None  # highest tier approved and not yet confirmed sent
    broken_promise_id: int | None = None  # a broken promise calling for the next step


@dataclass(frozen=True)
class LastApplied:
    tier: int
    applied_on: dt.date  # date in AR_TIMEZONE


@dataclass(frozen=True)
class TierDecision:
    customer_id: str
    target_tier: int | None
    last_applied_tier: int | None
    proposed_tier: int | None
    skip_reason: str | None = field(default=None)
    broken_promise_id: int | None = None


def boundaries(tiers: Sequence[TierDefinition], threshold_days: int) -> list[int]:
    """The days-overdue lower bounds the SQL must sum at: the threshold and each tier's."""
    return sorted({threshold_days} | {max(threshold_days, t.min_days_overdue) for t in tiers})


def assign_tier(
    position: CustomerPosition,
    last_applied: LastApplied | None,
    tiers: Sequence[TierDefinition],
    as_of: dt.date,
    threshold_days: int = 1,
) -> TierDecision:
    """Apply the tiering rules of this module's docstring to one customer."""
    target = None
    for tier in tiers:
        from_day = max(threshold_days, tier.min_days_overdue)
        if any(
            c.tier_amount(from_day) >= to_minor_units(tier.min_dunnable, c.currency)
            for c in position.currencies
        ):
            target = tier.tier
    oldest_due = position.oldest_overdue_due_date
    if last_applied is not None and oldest_due is not None and last_applied.applied_on < oldest_due:
        last_applied = None  # an earlier episode of debt
    last_tier = last_applied.tier if last_applied else None

    broken = position.broken_promise_id

    def decide(proposed: int | None, reason: str | None) -> TierDecision:
        return TierDecision(position.customer_id, target, last_tier, proposed, reason, broken)

    if target is None:
        return decide(None, "below_minimum")
    if position.dunning_paused_until is not None and position.dunning_paused_until >= as_of:
        return decide(None, "paused")
    if broken is not None:  # the next step, cooldown or not (module docstring)
        step = min(len(tiers), max(target, (last_tier or 0) + 1))
    else:
        step = min(target, (last_tier or 0) + 1)
    if position.in_flight_tier is not None and step <= position.in_flight_tier:
        return decide(None, "in_flight")
    if broken is not None:
        return decide(step, None)
    if last_applied is None:
        return decide(step, None)
    if step <= last_applied.tier:
        return decide(None, "already_at_tier")
    cooldown = tiers[last_applied.tier - 1].cooldown_days if last_applied.tier <= len(tiers) else 0
    if (as_of - last_applied.applied_on).days < cooldown:
        return decide(None, "cooldown")
    return decide(step, None)


# --- SQL that feeds the rule --------------------------------------------------------------------


def day_start_utc(day: dt.date, timezone: ZoneInfo) -> dt.datetime:
    """The UTC instant at which ``day`` begins in ``timezone``."""
    return dt.datetime.combine(day, dt.time(0), timezone).astimezone(dt.UTC)


def latest_applied_actions(as_of: dt.date, timezone: ZoneInfo) -> Select:
    """Latest applied ``collection_action`` per customer, applied before the end of ``as_of``.

    Columns: as_of, customer_id, action_id, tier, applied_at. Actions applied after the as-of
    date do not change the past.
    """
    end_of_day = day_start_utc(as_of + dt.timedelta(days=1), timezone)
    rank = sa.func.row_number().over(
        partition_by=proposed_actions.c.customer_id,
        order_by=(proposed_actions.c.applied_at.desc(), proposed_actions.c.action_id.desc()),
    )
    ranked = (
        sa.select(
            proposed_actions.c.customer_id,
            proposed_actions.c.action_id,
            proposed_actions.c.tier,
            proposed_actions.c.applied_at,
            rank.label("recency"),
        )
        .where(
            proposed_actions.c.action_type == "collection_action",
            proposed_actions.c.status == "applied",
            proposed_actions.c.applied_at < end_of_day,
            proposed_actions.c.tier.is_not(None),
        )
        .subquery("ranked_actions")
    )
    return sa.select(
        sa.literal(as_of, sa.Date).label("as_of"),
        ranked.c.customer_id,
        ranked.c.action_id,
        ranked.c.tier,
        ranked.c.applied_at,
    ).where(ranked.c.recency == 1)


def in_flight_steps(as_of: dt.date, timezone: ZoneInfo) -> Select:
    """Per customer, the highest tier of a ``collection_action`` in flight as of ``as_of``:
    approved by the end of that day and not confirmed sent by then (now ``approved``,
    ``applying`` or ``unconfirmed``, or ``applied`` only after the day). Columns: customer_id,
    in_flight_tier."""
    pa = proposed_actions.c
    end_of_day = day_start_utc(as_of + dt.timedelta(days=1), timezone)
    return (
        sa.select(pa.customer_id, sa.func.max(pa.tier).label("in_flight_tier"))
        .where(
            pa.action_type == "collection_action",
            pa.tier.is_not(None),
            pa.decided_at < end_of_day,
            sa.or_(
                pa.status.in_(IN_FLIGHT_STATUSES),
                sa.and_(pa.status == "applied", pa.applied_at >= end_of_day),
            ),
        )
        .group_by(pa.customer_id)
    )


def dunning_positions(
    dates: FromClause,
    from_days: Sequence[int],
    only: Customers = None,
    source: Any = None,
    in_flight: Select | None = None,
    broken: Select | None = None,
) -> Select:
    """Per (as_of, customer, currency) with an open item or credit: unapplied credit
    (``credit_cents``), undisputed open cents from each day in ``from_days`` on
    (``due_from_<n>``), the oldest undisputed overdue due date, the customer's pause, the
    ``prior_actions`` snapshot of the date and, given ``in_flight`` (:func:`in_flight_steps`),
    the tier in flight and, given ``broken`` (``levers.broken_promises_calling``), the broken
    promise calling for the next step. Ordered by customer."""
    aged = aging_by_customer(dates, only=only, from_days=from_days, source=source).subquery("aged")
    columns = [
        aged.c.as_of,
        aged.c.customer_id,
        aged.c.currency,
        *[aged.c[f"due_from_{n}"] for n in from_days],
        aged.c.unapplied_credit_cents.label("credit_cents"),
        aged.c.oldest_undisputed_due_date.label("oldest_overdue_due_date"),
        customers.c.dunning_paused_until,
        prior_actions.c.tier.label("last_tier"),
        prior_actions.c.applied_at.label("last_applied_at"),
    ]
    joined = aged.join(customers, customers.c.customer_id == aged.c.customer_id).outerjoin(
        prior_actions,
        sa.and_(
            prior_actions.c.customer_id == aged.c.customer_id,
            prior_actions.c.as_of == aged.c.as_of,
        ),
    )
    if in_flight is not None:
        flying = in_flight.subquery("flying")
        columns.append(flying.c.in_flight_tier)
        joined = joined.outerjoin(flying, flying.c.customer_id == aged.c.customer_id)
    if broken is not None:
        calling = broken.subquery("calling")
        columns.append(calling.c.broken_promise_id)
        joined = joined.outerjoin(calling, calling.c.customer_id == aged.c.customer_id)
    return sa.select(*columns).select_from(joined).order_by(aged.c.customer_id, aged.c.currency)


def tier_positions(
    as_of: dt.date,
    from_days: Sequence[int],
    source: Any,
    in_flight: Select,
    broken: Select,
    full_join: bool = True,
) -> Select:
    """The rows of :func:`dunning_positions` that tiering needs, read straight from the day's
    balances (``source``: the snapshot, the incremental balances or the ledger) instead of
    through the whole aging aggregation: per (customer, currency) with an undisputed, unheld
    item at least ``min(from_days[0], 1)`` days overdue or with unapplied credit.

    The other (customer, currency) rows of :func:`dunning_positions` have every ``due_from_<n>``
    0 and no credit: a tier amount of 0 in them meets only a tier whose minimum is 0, which the
    row that makes the customer dunnable (a tier amount > 0) meets as well, so no decision
    changes without them. ``dunning_paused_until`` is only a pause lasting until ``as_of`` or
    later (an earlier one is over and changes nothing). Not ordered. ``full_join`` False
    (SQLite): the amounts and the credit are paired by
    :func:`~ar_pipeline.store.sql_functions.full_join_rows` instead of a FULL JOIN."""
    dates = as_of_dates([as_of])
    lowest = min(min(from_days), 1)  # the oldest overdue due date needs days_overdue >= 1
    items = source.open_items().subquery("tier_items")
    held = held_invoice_ids(dates).subquery("held")
    i = items.c
    days = i.days_overdue

    def cents_from(day: int) -> sa.ColumnElement[int]:
        # cast: PostgreSQL sums BIGINT into NUMERIC, and the outer sums of NUMERIC are slow
        summed = sa.func.sum(i.open_cents).filter(days >= day) if day > lowest else sa.func.sum(
            i.open_cents
        )
        return sa.cast(sa.func.coalesce(summed, 0), sa.BigInteger)

    due = (
        sa.select(
            i.customer_id,
            i.currency,
            *[cents_from(n).label(f"due_from_{n}") for n in from_days],
            sa.func.min(sa.case((days > 0, i.due_date))).label("oldest_overdue_due_date"),
        )
        .select_from(items.outerjoin(held, held.c.invoice_id == i.invoice_id))
        .where(days >= lowest, ~i.disputed, held.c.invoice_id.is_(None))
        .group_by(i.customer_id, i.currency)
    )
    # each side has one row per (customer, currency): a full join pairs them, no second GROUP BY
    if full_join:
        due_by_currency = due.subquery("tier_due")
        credit = source.unapplied_credit().subquery("tier_credit")
    else:
        due_by_currency, credit = due.cte("tier_due"), source.unapplied_credit().cte("tier_credit")
    d, c = due_by_currency.c, credit.c
    matches = sa.and_(d.customer_id == c.customer_id, d.currency == c.currency)

    def amount_rows(both: sa.FromClause) -> Select:
        return sa.select(
            sa.func.coalesce(d.customer_id, c.customer_id).label("customer_id"),
            sa.func.coalesce(d.currency, c.currency).label("currency"),
            *[sa.func.coalesce(d[f"due_from_{n}"], 0).label(f"due_from_{n}") for n in from_days],
            sa.cast(sa.func.coalesce(c.unapplied_credit_cents, 0), sa.BigInteger).label(
                "credit_cents"
            ),
            d.oldest_overdue_due_date,
        ).select_from(both)

    if full_join:
        amounts: Select | CompoundSelect = amount_rows(
            due_by_currency.join(credit, matches, full=True)
        )
    else:
        amounts = full_join_rows(due_by_currency, credit, matches, d.customer_id, amount_rows)
    per_currency = amounts.subquery("tier_amounts")
    a = per_currency.c
    facts = _customer_facts(as_of, in_flight, broken)
    f = facts.c
    return sa.select(
        bound_date(as_of).label("as_of"),
        a.customer_id,
        a.currency,
        *[a[f"due_from_{n}"] for n in from_days],
        a.credit_cents,
        a.oldest_overdue_due_date,
        f.dunning_paused_until,
        f.last_tier,
        f.last_applied_at,
        f.in_flight_tier,
        f.broken_promise_id,
    ).select_from(per_currency.outerjoin(facts, f.customer_id == a.customer_id))


def _customer_facts(as_of: dt.date, in_flight: Select, broken: Select) -> FromClause:
    """Per customer with any: a pause lasting until ``as_of`` or later (an earlier one is over
    and changes nothing), the ``prior_actions`` row of ``as_of``, the tier in flight, the broken
    promise calling. A few customers, gathered in one small set so that the day's positions
    need one hash join rather than a look-up per customer."""
    flying, calling = in_flight.subquery("flying"), broken.subquery("calling")
    pa, cu = prior_actions.c, customers.c
    kinds = {
        "dunning_paused_until": sa.Date(), "last_tier": sa.Integer(),
        "last_applied_at": sa.DateTime(timezone=True), "in_flight_tier": sa.Integer(),
        "broken_promise_id": sa.BigInteger(),
    }  # fmt: skip

    def fact(customer_id: sa.ColumnElement, **values: sa.ColumnElement) -> Select:
        return sa.select(
            customer_id.label("customer_id"),
            *[values.get(n, sa.cast(sa.null(), kind)).label(n) for n, kind in kinds.items()],
        )

    rows = sa.union_all(
        fact(cu.customer_id, dunning_paused_until=cu.dunning_paused_until).where(
            cu.dunning_paused_until >= as_of
        ),
        fact(pa.customer_id, last_tier=pa.tier, last_applied_at=pa.applied_at).where(
            pa.as_of == as_of
        ),
        fact(flying.c.customer_id, in_flight_tier=flying.c.in_flight_tier),
        fact(calling.c.customer_id, broken_promise_id=calling.c.broken_promise_id),
    ).subquery("fact_rows")
    return (
        sa.select(rows.c.customer_id, *[sa.func.max(rows.c[n]).label(n) for n in kinds])
        .group_by(rows.c.customer_id)
        .subquery("customer_facts")
    )


def write_prior_actions(connection: sa.Connection, as_of: dt.date, timezone: ZoneInfo) -> int:
    """Replace the ``prior_actions`` snapshot of ``as_of`` in one INSERT ... SELECT."""
    connection.execute(prior_actions.delete().where(prior_actions.c.as_of == as_of))
    latest = latest_applied_actions(as_of, timezone).subquery("latest")
    columns = ["as_of", "customer_id", "action_id", "tier", "applied_at"]
    connection.execute(
        prior_actions.insert().from_select(columns, sa.select(*[latest.c[c] for c in columns]))
    )
    count = sa.select(sa.func.count()).where(prior_actions.c.as_of == as_of)
    return connection.execute(count).scalar_one()


def _owing(connection: sa.Connection, as_of: dt.date) -> Select | None:
    """Customers that ``ar_aging`` (upstream of tiering) found owing something undisputed on
    ``as_of``: only they can have a dunnable amount, so only their events need reading. None
    (everyone) when ``ar_aging`` has no rows for the day."""
    of_day = ar_aging.c.as_of == as_of
    if connection.execute(sa.select(ar_aging.c.as_of).where(of_day).limit(1)).first() is None:
        return None
    return sa.select(ar_aging.c.customer_id).where(
        of_day, ar_aging.c.total_open_cents > ar_aging.c.disputed_cents
    )


def decide_tiers(
    connection: sa.Connection,
    as_of: dt.date,
    tiers: Sequence[TierDefinition],
    threshold_days: int,
    timezone: ZoneInfo,
    batch_size: int = 5000,
    held_back: Collection[str] = frozenset(),
    with_applied_step_only: bool = False,
) -> Iterable[TierDecision]:
    """Stream a decision for every customer with a dunnable amount > 0 as of ``as_of``, except
    the customers in ``held_back`` (the ledger check found a row of their ledger that cannot be
    right, ``ar_pipeline.rules.ledger_sanity``): they get no decision and so no row.

    Reads the ``prior_actions`` snapshot of ``as_of``, so write that first. The SQL result is
    streamed in batches, so memory stays flat however many customers there are.
    ``with_applied_step_only`` decides only customers with an applied step or a broken promise
    calling. This is the specification's reading; ``tier_assignments`` is written by
    :func:`tier_decisions_sql`.
    """
    from_days = boundaries(tiers, threshold_days)
    if with_applied_step_only:
        # read the balances of these customers only: on most days they are few
        stepped = sa.union(
            sa.select(prior_actions.c.customer_id).where(prior_actions.c.as_of == as_of),
            sa.select(broken_promises_calling(as_of).subquery("called").c.customer_id),
        )
        query = _positions_query(connection, as_of, from_days, timezone, only=sa.select(
            stepped.subquery("stepped").c.customer_id))  # fmt: skip
        by = query.selected_columns
        query = query.where(
            sa.or_(by.last_tier.is_not(None), by.broken_promise_id.is_not(None))
        ).order_by(by.customer_id, by.currency)
    else:  # the specification's own reading: every row of the whole aging aggregation
        query = _positions_query(connection, as_of, from_days, timezone, lean=False)
    result = connection.execute(query, execution_options={"yield_per": batch_size})

    current_id: str | None = None
    rows: list[Any] = []

    def decision_for(rows: list[Any]) -> TierDecision | None:
        currencies = [
            CurrencyPosition(
                r.currency,
                int(r.credit_cents or 0),
                {n: int(getattr(r, f"due_from_{n}") or 0) for n in from_days},
            )
            for r in rows
        ]
        if not any(c.tier_amount(threshold_days) > 0 for c in currencies):
            return None
        overdue_dates = [r.oldest_overdue_due_date for r in rows if r.oldest_overdue_due_date]
        first = rows[0]
        last = (
            LastApplied(first.last_tier, first.last_applied_at.astimezone(timezone).date())
            if first.last_tier is not None
            else None
        )
        position = CustomerPosition(
            first.customer_id, currencies, min(overdue_dates, default=None),
            first.dunning_paused_until, first.in_flight_tier, first.broken_promise_id,
        )  # fmt: skip
        return assign_tier(position, last, tiers, as_of, threshold_days)

    for row in result:
        if row.customer_id in held_back:
            continue
        if row.customer_id != current_id and rows:
            decision = decision_for(rows)
            if decision is not None:
                yield decision
            rows = []
        current_id = row.customer_id
        rows.append(row)
    if rows:
        decision = decision_for(rows)
        if decision is not None:
            yield decision


def _positions_query(
    connection: sa.Connection,
    as_of: dt.date,
    from_days: Sequence[int],
    timezone: ZoneInfo,
    only: Select | None = None,
    lean: bool = True,
) -> Select:
    """Positions of ``as_of`` (:func:`tier_positions`, or with ``lean=False`` the whole
    :func:`dunning_positions`), of the customers ``only`` selects (None: all)."""
    source = source_for(connection, as_of, only)
    if isinstance(source, AgingSource):  # no snapshot: read only the customers who owe
        owing = _owing(connection, as_of)
        if owing is None:
            owing = only
        elif only is not None:
            owing = owing.where(ar_aging.c.customer_id.in_(only))
        source = AgingSource(as_of_dates([as_of]), owing)
    in_flight, broken = in_flight_steps(as_of, timezone), broken_promises_calling(as_of)
    if lean:
        full_join = connection.dialect.name != "sqlite"
        return tier_positions(as_of, from_days, source, in_flight, broken, full_join)
    return dunning_positions(
        as_of_dates([as_of]), from_days, source=source, in_flight=in_flight, broken=broken
    )


def _minimum_cents(amount: Decimal, currency: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
    """:func:`ar_pipeline.rules.money.to_minor_units` of ``amount`` in SQL, for the currency in
    the column ``currency``: one constant per ISO 4217 exponent, so no list of the day's
    currencies is needed."""
    by_exponent: dict[int, list[str]] = {}
    for code, exponent in CURRENCY_EXPONENTS.items():
        by_exponent.setdefault(exponent, []).append(code)
    code = sa.func.upper(currency)
    return sa.case(
        *[(code.in_(sorted(codes)), to_minor_units(amount, codes[0]))
          for _, codes in sorted(by_exponent.items())],
        # a currency not listed has the exponent 2 (money.currency_exponent), as EUR has
        else_=to_minor_units(amount, "EUR"),
    )  # fmt: skip


def tier_calendar_table() -> sa.Table:
    """A temporary table of day starts, ``(day, starts_at)``: the UTC instant at which each day
    begins in ``AR_TIMEZONE`` (:func:`day_start_utc`), written in Python because SQLite cannot
    convert time zones. One row per day, a few hundred to a few thousand rows."""
    return temporary_table(
        "tier_calendar",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("starts_at", Timestamp, nullable=False),
    )


def write_tier_calendar(connection: sa.Connection, as_of: dt.date, timezone: ZoneInfo) -> sa.Table:
    """Create (anew) and fill :func:`tier_calendar_table` for the decisions of ``as_of``: from
    the date in ``timezone`` of the earliest step in the ``prior_actions`` snapshot of ``as_of``
    to ``as_of``. A due date before that start is before every step's date, so no step is
    before it and the calendar needs no row for it (:func:`tier_decisions_sql`). Drop the table
    when done (``calendar.drop(connection)``)."""
    calendar = tier_calendar_table()
    create_afresh(connection, calendar)
    earliest = connection.execute(
        sa.select(sa.func.min(prior_actions.c.applied_at)).where(prior_actions.c.as_of == as_of)
    ).scalar_one()
    if earliest is not None:
        first = min(earliest.astimezone(timezone).date(), as_of)
        days = (as_of - first).days + 1
        bulk_insert(
            connection,
            calendar,
            ["day", "starts_at"],
            (
                (day, day_start_utc(day, timezone))
                for day in (first + dt.timedelta(days=n) for n in range(days))
            ),
        )
    return calendar


def tier_decisions_sql(
    positions: FromClause,
    calendar: FromClause,
    as_of: dt.date,
    tiers: Sequence[TierDefinition],
    threshold_days: int,
    timezone: ZoneInfo,
) -> Select:
    """:func:`assign_tier` in SQL for every customer: one row per customer with a dunnable
    amount > 0 (in any currency, its tier amount from ``threshold_days`` on is > 0), columns
    those of ``tier_assignments``. ``positions`` are :func:`tier_positions` (or
    :func:`dunning_positions`) rows, one per (customer, currency): the customer's facts are the
    same on each, its target is the highest tier met in any currency, its oldest overdue due
    date the earliest of its currencies'. Each tier's minimum is converted to the minor units of
    the row's currency here. ``calendar`` is :func:`write_tier_calendar`'s table.

    The rule compares the date of the last applied step in ``timezone`` (``applied_on``) with
    dates; SQLite cannot convert time zones, so the SQL compares instants instead, which is
    the same on both databases:

    * **Episode.** ``applied_on < oldest_due`` (an earlier episode: the step does not count)
      exactly when ``applied_at < day_start_utc(oldest_due)``, the start of the due date read
      from ``calendar``. A due date before the calendar's first day is before every step's
      date: the step counts.
    * **Cooldown.** ``(as_of - applied_on).days < cooldown`` exactly when
      ``applied_on >= as_of - cooldown + 1``, i.e. ``applied_at >= day_start_utc(as_of -
      cooldown + 1)``: one instant per tier, computed here and bound. A last tier beyond the
      configured tiers, or a cooldown of 0, never cools down.

    The rest as :func:`assign_tier`: step = min(target, last + 1), or with a broken promise
    min(highest tier, max(target, last + 1)); skips in the order ``below_minimum``, ``paused``,
    ``in_flight`` (step <= the tier in flight), then (no broken promise, a last tier counting)
    ``already_at_tier`` (step <= last tier) and ``cooldown``. ``last_applied_tier`` is the last
    tier only when it counts (the current episode).
    """
    p = positions.c
    credit = sa.func.coalesce(p.credit_cents, 0)

    def amount_from(day: int) -> sa.ColumnElement[int]:
        return sa.func.coalesce(p[f"due_from_{day}"], 0) - credit

    def minimum(tier: TierDefinition) -> sa.ColumnElement[int]:
        return _minimum_cents(tier.min_dunnable, p.currency)

    # the highest tier this currency meets; a tier amount is never below zero
    met_here = sa.case(
        *[
            (
                non_negative(amount_from(max(threshold_days, t.min_days_overdue))) >= minimum(t),
                t.tier,
            )
            for t in sorted(tiers, key=lambda t: -t.tier)
        ],
        else_=sa.null(),
    )
    per_customer = (
        sa.select(
            p.customer_id,
            sa.func.max(met_here).label("target_tier"),
            sa.func.max(p.dunning_paused_until).label("paused_until"),
            sa.func.max(p.in_flight_tier).label("in_flight_tier"),
            sa.func.max(p.last_tier).label("last_tier"),
            sa.func.max(p.last_applied_at).label("last_applied_at"),
            sa.func.max(p.broken_promise_id).label("broken_promise_id"),
            sa.func.min(p.oldest_overdue_due_date).label("oldest_due"),
        )
        .group_by(p.customer_id)
        .having(sa.func.max(amount_from(threshold_days)) > 0)
        .subquery("per_customer")
    )
    c, day = per_customer.c, calendar.c
    # the last step counts unless applied before the day of the oldest overdue due date began
    last = sa.case(
        (sa.and_(day.starts_at.is_not(None), c.last_applied_at < day.starts_at), sa.null()),
        else_=c.last_tier,
    )
    with_last = (
        sa.select(
            c.customer_id, c.target_tier, c.paused_until, c.in_flight_tier, c.last_applied_at,
            c.broken_promise_id, last.label("last_tier"),
        )  # fmt: skip
        .select_from(per_customer.outerjoin(calendar, day.day == c.oldest_due))
        .subquery("with_last")
    )
    w = with_last.c
    target, after_last = w.target_tier, sa.func.coalesce(w.last_tier, 0) + 1
    highest = len(tiers)
    step = sa.case(
        (  # broken promise: min(highest, max(target, last + 1)); target <= highest
            w.broken_promise_id.is_not(None),
            sa.case(
                (target >= after_last, target),
                (after_last >= highest, highest),
                else_=after_last,
            ),
        ),
        (target <= after_last, target),
        else_=after_last,
    )
    def cooling_from(tier: TierDefinition) -> sa.ColumnElement[dt.datetime]:
        # applied on or after as_of - cooldown + 1: fewer than cooldown_days since
        first_day = as_of - dt.timedelta(days=tier.cooldown_days - 1)
        return sa.literal(day_start_utc(first_day, timezone), Timestamp)

    cooling = [
        sa.and_(w.last_tier == t.tier, w.last_applied_at >= cooling_from(t))
        for t in tiers
        if t.cooldown_days > 0
    ]
    skip = sa.case(
        (target.is_(None), "below_minimum"),
        (w.paused_until >= as_of, "paused"),
        (w.in_flight_tier >= step, "in_flight"),
        (w.broken_promise_id.is_not(None), sa.null()),
        (w.last_tier.is_(None), sa.null()),
        (step <= w.last_tier, "already_at_tier"),
        (sa.or_(*cooling) if cooling else sa.false(), "cooldown"),
        else_=sa.null(),
    )
    return sa.select(
        sa.literal(as_of, sa.Date).label("as_of"),
        w.customer_id,
        target.label("target_tier"),
        w.last_tier.label("last_applied_tier"),
        sa.case((skip.is_(None), step), else_=sa.null()).label("proposed_tier"),
        skip.label("skip_reason"),
        w.broken_promise_id,
    )


def write_tier_assignments(
    connection: sa.Connection,
    as_of: dt.date,
    tiers: Sequence[TierDefinition],
    threshold_days: int,
    timezone: ZoneInfo,
    held_back: Collection[str] = frozenset(),
) -> dict[str, int]:
    """Replace the ``tier_assignments`` rows of ``as_of``; returns counts by outcome
    (``tier_<n>`` for proposed tiers, skip reasons otherwise). Customers in ``held_back`` get
    no row (see :func:`decide_tiers`).

    Every customer is decided in SQL (:func:`tier_decisions_sql`, one INSERT ... SELECT over
    the day's positions joined with a small temporary calendar of day starts,
    :func:`write_tier_calendar`); the Python rule :func:`assign_tier` stays the specification
    the SQL is tested against (``test_tiering_sql.py``)."""
    connection.execute(tier_assignments.delete().where(tier_assignments.c.as_of == as_of))
    columns = [
        "as_of", "customer_id", "target_tier", "last_applied_tier", "proposed_tier", "skip_reason",
        "broken_promise_id",
    ]  # fmt: skip
    from_days = boundaries(tiers, threshold_days)
    positions = _positions_query(connection, as_of, from_days, timezone).subquery("positions")
    calendar = write_tier_calendar(connection, as_of, timezone)
    decisions = tier_decisions_sql(positions, calendar, as_of, tiers, threshold_days, timezone)
    connection.execute(tier_assignments.insert().from_select(columns, decisions))
    calendar.drop(connection)
    held = sorted(held_back)
    for at in range(0, len(held), 1000):
        connection.execute(
            tier_assignments.delete().where(
                tier_assignments.c.as_of == as_of,
                tier_assignments.c.customer_id.in_(held[at : at + 1000]),
            )
        )
    t = tier_assignments.c
    outcomes = connection.execute(
        sa.select(t.proposed_tier, t.skip_reason, sa.func.count())
        .where(t.as_of == as_of)
        .group_by(t.proposed_tier, t.skip_reason)
    )
    return {
        (f"tier_{tier}" if tier else str(reason)): count for tier, reason, count in outcomes
    }


@dataclass(frozen=True)
class TieringPlan:
    """What ``tier_assignments`` hands to staging: the validated config it used."""

    threshold_days: int
    tiers: tuple[TierDefinition, ...]
