"""Staging proposals (docs/design.md, Statuses): the pipeline only proposes, nothing is sent here.

For a run as of D, in one transaction:

* one ``workflow_envelope`` (key ``workflow:ar_aging_action_plan:<D>``) with the run id and counts;
* fan-out 1: a ``collection_action`` per customer with a proposed tier, drafted from the tier's
  template, listing the customer's undisputed open items at least ``threshold_days`` overdue and
  not held (``ar_pipeline.rules.levers``); when a broken promise called for the step, the letter
  states it (amount, promised date, what arrived) and its payload carries it
  (``broken_promise``);
* fan-out 2: a ``customer_program`` / ``service_hold`` for a customer with, in some currency,
  more than ``AR_HOLD_MIN_DAYS_OVERDUE`` days overdue and more than ``AR_HOLD_MIN_OPEN`` open,
  unless already on hold;
* fan-out 3: an ``email_to_customer`` on the sales rep's behalf (rep in copy) for tiers that
  involve the rep, when the customer has a rep.

A customer without a billing email gets no draft; the envelope lists it under ``cannot_contact``.
A customer **held back** by the ledger check (``ar_pipeline.rules.ledger_sanity``: a row of its
ledger cannot be right) gets nothing that day, neither letter, nor e-mail, nor hold; its proposals
that are still ``proposed`` (of this day or earlier ones) are superseded, and the envelope lists it
under ``held_back`` with the reasons.

Every row starts ``proposed``. Idempotency keys make a rerun of the same day stage nothing twice,
and a newer proposal for the same customer and action type supersedes an older one that is still
``proposed``, so nobody approves a stale draft.

**Only what is new is drafted.** A letter or rep e-mail still ``proposed`` from an earlier day
whose inputs are unchanged (same :func:`letter_fingerprint`: tier, template, recipients, the
customer's name, the listed invoices with their due dates and open amounts, the unapplied
credit, the tier rule) is not drafted again: it stays pending as it is, so an approver looking
at it (or who edited it) is not pulled from under, and nothing new is rendered or written.
Days overdue are not part of it: they grow by one every day, and no letter prints them. Any
change of those inputs drafts a new letter, which supersedes the pending one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import Select

from ar_pipeline.rules.aging import aging_by_customer, as_of_dates, source_for
from ar_pipeline.rules.drafts import (
    SALES_REP_TEMPLATE,
    Drafter,
    LetterLine,
    OverdueInvoice,
    letter_lines,
    totals_by_currency,
)
from ar_pipeline.rules.ledger_sanity import HeldBack
from ar_pipeline.rules.levers import held_invoice_ids, open_promises, promise_outcomes
from ar_pipeline.rules.money import format_money, to_minor_units
from ar_pipeline.rules.tiering import TierDefinition
from ar_pipeline.store.database import bulk_insert
from ar_pipeline.store.schema import ar_aging, customers, proposed_actions, tier_assignments

WORKFLOW_TYPE = "ar_aging_action_plan"
CHILD_TYPES = ("collection_action", "customer_program", "email_to_customer")
CANNOT_CONTACT_LISTED = 500  # the envelope lists this many by name, and counts all
HELD_BACK_LISTED = 500  # the same for customers held back by the ledger check


def envelope_key(as_of: dt.date) -> str:
    return f"workflow:{WORKFLOW_TYPE}:{as_of.isoformat()}"


def action_key(action_type: str, as_of: dt.date, customer_id: str, tier: int | None) -> str:
    suffix = f":tier{tier}" if tier is not None else ""
    return f"{action_type}:{as_of.isoformat()}:{customer_id}{suffix}"


@dataclass(frozen=True)
class HoldPolicy:
    min_days_overdue: int
    min_open: Decimal  # major units of each currency

    def calls_for_hold(
        self, currency: str, owed_cents: int, max_days_overdue: int | None
    ) -> bool:
        """The service-hold rule for one currency of a customer: more than ``min_days_overdue``
        days overdue (the oldest open item, held or disputed or not: a dispute does not make an
        old debt young) and more than ``min_open`` owed: ``owed_cents`` (:func:`owed`), the
        open cents not disputed and not held that day (an invoice hold or an open promise),
        less the customer's unapplied credit in that currency. Service is not cut over an
        invoice the customer contests, nor over a debt its own money on account covers. The
        caller leaves out customers with an open promise to pay (:func:`service_hold_exempt`)."""
        return (max_days_overdue or 0) > self.min_days_overdue and (
            owed_cents > to_minor_units(self.min_open, currency)
        )


def owed(uncontested_cents: int | None, unapplied_credit_cents: int | None) -> int:
    """What the service-hold rule weighs (:meth:`HoldPolicy.calls_for_hold`): open cents
    neither disputed nor held (``aging_by_customer``'s ``uncontested_cents``) less unapplied
    credit, never below 0."""
    return max(0, int(uncontested_cents or 0) - int(unapplied_credit_cents or 0))


def service_hold_exempt(as_of: dt.date) -> Select:
    """Customers no service hold is proposed for, or set, on ``as_of``: those with a promise to
    pay open that day. A promise is an agreement about the customer's debt; cutting its service
    before the promised date would break our side of it."""
    promises = open_promises(as_of_dates([as_of])).subquery("open_promises")
    return sa.select(promises.c.customer_id).distinct()


@dataclass
class StagingResult:
    envelope_id: int
    staged: dict[str, int] = field(default_factory=dict)  # new rows by action type / tier
    already_staged: int = 0
    superseded: int = 0
    cannot_contact: dict[int, int] = field(default_factory=dict)  # by tier
    held_back: int = 0  # customers held back by the ledger check
    carried_over: int = 0  # letters still pending from an earlier day, unchanged: not redrafted

    def count(self, key: str) -> None:
        self.staged[key] = self.staged.get(key, 0) + 1


@dataclass
class _Candidate:
    customer_id: str
    customer_name: str
    billing_email: str | None
    sales_rep_email: str | None
    tier: int
    invoices: list[OverdueInvoice]
    broken_promise: dict[str, Any] | None = None


def _candidates(
    connection: sa.Connection, as_of: dt.date, threshold_days: int, batch_size: int
) -> Iterator[_Candidate]:
    """Customers with a proposed tier as of ``as_of`` and their undisputed overdue items."""
    called_for = sa.select(tier_assignments.c.customer_id).where(
        tier_assignments.c.as_of == as_of, tier_assignments.c.proposed_tier.is_not(None)
    )
    items = source_for(connection, as_of, only=called_for).open_items().subquery("items")
    held = held_invoice_ids(as_of_dates([as_of])).subquery("held")
    broken = promise_outcomes(as_of).subquery("broken")
    query = (
        sa.select(
            tier_assignments.c.customer_id,
            tier_assignments.c.proposed_tier,
            customers.c.customer_name,
            customers.c.billing_email,
            customers.c.sales_rep_email,
            items.c.invoice_id,
            items.c.invoice_number,
            items.c.due_date,
            items.c.currency,
            items.c.open_cents,
            items.c.days_overdue,
            broken.c.promise_id.label("broken_promise_id"),
            broken.c.currency.label("broken_currency"),
            broken.c.amount_cents.label("broken_amount_cents"),
            broken.c.promised_date.label("broken_promised_date"),
            broken.c.arrived_cents.label("broken_arrived_cents"),
            broken.c.recorded_on.label("broken_recorded_on"),
            broken.c.recorded_by.label("broken_recorded_by"),
        )
        .select_from(
            tier_assignments.join(
                customers, customers.c.customer_id == tier_assignments.c.customer_id
            )
            .outerjoin(broken, broken.c.promise_id == tier_assignments.c.broken_promise_id)
            .outerjoin(
                items.outerjoin(
                    held,
                    sa.and_(held.c.as_of == items.c.as_of, held.c.invoice_id == items.c.invoice_id),
                ),
                sa.and_(
                    items.c.customer_id == tier_assignments.c.customer_id,
                    ~items.c.disputed,
                    held.c.invoice_id.is_(None),
                    items.c.days_overdue >= max(threshold_days, 1),
                ),
            )
        )
        .where(tier_assignments.c.as_of == as_of, tier_assignments.c.proposed_tier.is_not(None))
        .order_by(tier_assignments.c.customer_id, items.c.due_date, items.c.invoice_id)
    )
    current: _Candidate | None = None
    # unpacked by position: a hundred thousand rows per million invoices, and a Row's
    # attribute look-up costs more than the rest of the loop
    for (
        customer_id, tier, name, email, rep, invoice_id, number, due_date, currency, open_cents,
        days_overdue, *broken,
    ) in connection.execute(query, execution_options={"yield_per": batch_size}):  # fmt: skip
        if current is None or current.customer_id != customer_id:
            if current is not None:
                yield current
            current = _Candidate(customer_id, name, email, rep, tier, [], _broken_promise(broken))
        if invoice_id is not None:
            current.invoices.append(
                OverdueInvoice(
                    invoice_id, number, due_date, currency, int(open_cents), int(days_overdue)
                )
            )
    if current is not None:
        yield current


def _broken_promise(broken: Sequence[Any]) -> dict[str, Any] | None:
    """The broken promise behind a step, as the letter's payload carries it (``broken``: the
    ``broken_*`` columns of :func:`_candidates`, in their order)."""
    promise_id, currency, amount_cents, promised_date, arrived_cents, recorded_on, by = broken
    if promise_id is None:
        return None
    return {
        "promise_id": int(promise_id),
        "currency": currency,
        "amount_cents": int(amount_cents),
        "promised_date": promised_date.isoformat(),
        "arrived_cents": int(arrived_cents),
        "recorded_on": recorded_on.isoformat(),
        "recorded_by": by,
    }


def _credits(connection: sa.Connection, as_of: dt.date) -> dict[str, dict[str, int]]:
    """Unapplied credit per customer and currency, as ``ar_aging`` (upstream) computed it."""
    credits: dict[str, dict[str, int]] = {}
    for customer_id, currency, cents in connection.execute(
        sa.select(ar_aging.c.customer_id, ar_aging.c.currency, ar_aging.c.unapplied_credit_cents)
        .join(tier_assignments, tier_assignments.c.customer_id == ar_aging.c.customer_id)
        .where(
            ar_aging.c.as_of == as_of,
            tier_assignments.c.as_of == as_of,
            tier_assignments.c.proposed_tier.is_not(None),
            ar_aging.c.unapplied_credit_cents != 0,
        )
    ):
        credits.setdefault(customer_id, {})[currency] = int(cents)
    return credits


def hold_candidates(
    connection: sa.Connection,
    as_of: dt.date,
    policy: HoldPolicy,
    held_back: Iterable[str] = (),
) -> dict[str, list[dict[str, Any]]]:
    """Customers not on hold for which, in some currency, :meth:`HoldPolicy.calls_for_hold`,
    with the qualifying currencies; never a customer in ``held_back`` (the ledger check found a
    row of its ledger that cannot be right), one with an open promise to pay
    (:func:`service_hold_exempt`), nor one whose hold is already approved and not yet set (in
    flight)."""
    excluded = set(held_back)
    hold_in_flight = (
        sa.select(proposed_actions.c.action_id)
        .where(
            proposed_actions.c.customer_id == ar_aging.c.customer_id,
            proposed_actions.c.action_type == "customer_program",
            proposed_actions.c.status.in_(("approved", "applying")),
        )
        .exists()
    )
    # the day's ar_aging names the few customers that may qualify (old enough, and more open
    # and not held than the minimum: what is owed is never more); their amounts are aggregated
    # again from the day's balances, for the uncontested part ar_aging does not keep
    currencies = connection.execute(
        sa.select(ar_aging.c.currency).where(ar_aging.c.as_of == as_of).distinct()
    ).scalars().all()
    if not currencies:
        return {}
    minimum = sa.case(
        {c: to_minor_units(policy.min_open, c) for c in currencies}, value=ar_aging.c.currency,
        else_=0,
    )  # fmt: skip
    old_enough = (
        sa.select(ar_aging.c.customer_id)
        .join(customers, customers.c.customer_id == ar_aging.c.customer_id)
        .where(
            ar_aging.c.as_of == as_of,
            ar_aging.c.max_days_overdue > policy.min_days_overdue,
            ar_aging.c.total_open_cents - ar_aging.c.held_cents > minimum,
            customers.c.service_hold.is_(False),
            ~hold_in_flight,
            ar_aging.c.customer_id.not_in(service_hold_exempt(as_of)),
        )
        .distinct()
    )
    aged = aging_by_customer(
        as_of_dates([as_of]), source=source_for(connection, as_of, only=old_enough),
        full_join=connection.dialect.name != "sqlite",
    ).subquery("hold_aging")  # fmt: skip
    rows = connection.execute(
        sa.select(
            aged.c.customer_id, aged.c.currency, aged.c.uncontested_cents,
            aged.c.unapplied_credit_cents, aged.c.max_days_overdue,
        ).order_by(aged.c.customer_id, aged.c.currency)
    )  # fmt: skip
    holds: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.customer_id in excluded:
            continue
        amount = owed(row.uncontested_cents, row.unapplied_credit_cents)
        if policy.calls_for_hold(row.currency, amount, row.max_days_overdue):
            holds.setdefault(row.customer_id, []).append(
                {
                    "currency": row.currency,
                    "open_cents": amount,
                    "max_days_overdue": int(row.max_days_overdue),
                }
            )
    return holds


def _ensure_envelope(
    connection: sa.Connection, as_of: dt.date, run_id: str, now: dt.datetime
) -> int:
    key = envelope_key(as_of)
    existing = connection.execute(
        sa.select(proposed_actions.c.action_id).where(proposed_actions.c.idempotency_key == key)
    ).scalar_one_or_none()
    if existing is not None:
        return int(existing)
    return int(
        connection.execute(
            proposed_actions.insert()
            .values(
                idempotency_key=key,
                run_id=run_id,
                as_of=as_of,
                action_type="workflow_envelope",
                status="proposed",
                proposed_at=now,
                payload_json={},
            )  # fmt: skip
            .returning(proposed_actions.c.action_id)
        ).scalar_one()
    )


REPLACED_KEY_SUFFIX = ":replaced:"


def _insert_new(
    connection: sa.Connection, rows: list[dict[str, Any]], known: set[str], result: StagingResult
) -> None:
    # A letter drafted again on a rerun of the same day differs from the day's earlier draft
    # (its figures moved: carried-over letters never get here): the earlier draft, if still
    # waiting for a decision, stands down and its key moves aside for the new one. A decided
    # one keeps its key, and the new draft is not staged.
    redrafted = [r["idempotency_key"] for r in rows
                 if r["idempotency_key"] in known and r["action_type"] in LETTER_TYPES]  # fmt: skip
    if redrafted:
        pa = proposed_actions.c
        waiting = sa.and_(pa.idempotency_key.in_(redrafted), pa.status == "proposed")
        moved = connection.execute(sa.select(pa.idempotency_key).where(waiting)).scalars().all()
        connection.execute(
            proposed_actions.update()
            .where(waiting)
            .values(
                status="superseded",
                superseded_reason="redrafted: its figures changed before a rerun of the day",
                idempotency_key=pa.idempotency_key
                + REPLACED_KEY_SUFFIX
                + sa.cast(pa.action_id, sa.Text),
            )
        )
        known.difference_update(moved)
        result.superseded += len(moved)
    fresh = [r for r in rows if r["idempotency_key"] not in known]
    result.already_staged += len(rows) - len(fresh)
    if fresh:
        columns = list(fresh[0])
        bulk_insert(
            connection, proposed_actions, columns, [[r[c] for c in columns] for r in fresh],
            json_text=("payload_json",),
        )  # fmt: skip
        known.update(r["idempotency_key"] for r in fresh)
        for r in fresh:
            result.count(r["action_type"] if r["tier"] is None else f"tier_{r['tier']}")
            if r["action_type"] == "email_to_customer":
                result.count("email_to_customer")


def supersede_older(connection: sa.Connection, as_of: dt.date, run_id: str) -> int:
    """Mark ``proposed`` rows superseded when a newer row of the same action type stands for the
    same customer (envelopes: any newer envelope), staged as of ``as_of``. Two UPDATEs, each a
    semi-join the indexes serve."""
    newer = proposed_actions.alias("newer")
    pa = proposed_actions.c
    is_newer = sa.or_(pa.as_of < newer.c.as_of, pa.action_id < newer.c.action_id)
    same_customer = (
        sa.select(newer.c.action_id)
        .where(
            newer.c.customer_id == pa.customer_id,
            newer.c.action_type == pa.action_type,
            newer.c.as_of == as_of,
            newer.c.action_id != pa.action_id,
            is_newer,
        )
        .exists()
    )
    newer_envelope = (
        sa.select(newer.c.action_id)
        .where(
            newer.c.action_type == "workflow_envelope",
            newer.c.as_of == as_of,
            newer.c.action_id != pa.action_id,
            is_newer,
        )
        .exists()
    )
    values = {
        "status": "superseded",
        "superseded_reason": f"replaced by a newer proposal (run {run_id}, as of {as_of})",
    }
    pending = sa.and_(pa.status == "proposed", pa.as_of <= as_of)
    children = connection.execute(
        proposed_actions.update()
        .where(pending, pa.action_type != "workflow_envelope", same_customer)
        .values(**values)
    ).rowcount
    envelopes = connection.execute(
        proposed_actions.update()
        .where(pending, pa.action_type == "workflow_envelope", newer_envelope)
        .values(**values)
    ).rowcount
    return children + envelopes


def supersede_settled(connection: sa.Connection, as_of: dt.date) -> int:
    """Mark ``proposed`` letters and rep e-mails (of earlier days, or of an earlier run of this
    day) superseded when, by ``as_of``'s
    aging, their customer has nothing dunnable in any currency: paid, credited, or its overdue
    invoices held by a hold or a promise to pay since the letter was drafted. An approver's
    queue then holds no letter that the apply job's re-check would stand down anyway."""
    pa = proposed_actions.c
    dunnable = sa.select(ar_aging.c.customer_id).where(
        ar_aging.c.as_of == as_of, ar_aging.c.dunnable_cents > 0
    )
    aged = sa.select(ar_aging.c.as_of).where(ar_aging.c.as_of == as_of).exists()
    return connection.execute(
        proposed_actions.update()
        .where(
            pa.status == "proposed",
            pa.as_of <= as_of,  # a rerun of the day after a payment too
            pa.action_type.in_(LETTER_TYPES),
            pa.customer_id.not_in(dunnable),
            aged,  # only against a day the aging has figures for
        )
        .values(
            status="superseded",
            superseded_reason=f"nothing dunnable as of {as_of} (paid, credited or held)",
        )
    ).rowcount


def paused_on(as_of: dt.date) -> Select:
    """Customers whose dunning is paused on ``as_of`` (``dunning_paused_until`` on or after
    it): tiering skips them (``paused``), and no letter of theirs is approved or sent."""
    return sa.select(customers.c.customer_id).where(
        customers.c.dunning_paused_until.is_not(None),
        customers.c.dunning_paused_until >= as_of,
    )


def supersede_paused(connection: sa.Connection, as_of: dt.date) -> int:
    """Mark ``proposed`` letters and rep e-mails (of any day up to ``as_of``) superseded when
    their customer's dunning is paused on ``as_of``: a pause is a person's decision, and a
    letter drafted before it must not wait in the approver's queue to be approved by mistake."""
    pa = proposed_actions.c
    return connection.execute(
        proposed_actions.update()
        .where(
            pa.status == "proposed",
            pa.as_of <= as_of,
            pa.action_type.in_(LETTER_TYPES),
            pa.customer_id.in_(paused_on(as_of)),
        )
        .values(status="superseded", superseded_reason=f"dunning paused as of {as_of}")
    ).rowcount


def supersede_uncalled_holds(connection: sa.Connection, as_of: dt.date) -> int:
    """Mark ``proposed`` service holds of earlier days superseded when ``as_of``'s run called
    for no hold of that customer (paid, credited, disputed, held, promised, or already on hold
    since): a proposal to cut service stays in the approver's queue only while it is called
    for. (One still called for was superseded by the day's newer proposal already.)"""
    pa = proposed_actions.c
    today = proposed_actions.alias("today")
    called_today = (
        sa.select(today.c.action_id)
        .where(
            today.c.customer_id == pa.customer_id,
            today.c.action_type == "customer_program",
            today.c.as_of == as_of,
        )
        .exists()
    )
    return connection.execute(
        proposed_actions.update()
        .where(
            pa.status == "proposed",
            pa.action_type == "customer_program",
            pa.as_of < as_of,
            ~called_today,
        )
        .values(
            status="superseded",
            superseded_reason=f"no service hold called for as of {as_of} (paid, credited, "
            "disputed, held, promised, or already on hold)",
        )
    ).rowcount


HELD_BACK_KEY_SUFFIX = ":held_back:"


def supersede_held_back(
    connection: sa.Connection, as_of: dt.date, customer_ids: Iterable[str], batch_size: int = 500
) -> int:
    """Mark superseded the still-``proposed`` proposals (as of ``as_of`` or earlier) of customers
    held back by the ledger check, so that nobody approves them. Their idempotency key gets
    ``:held_back:<action_id>`` appended: a rerun of the day after the ledger is put right stages
    that customer afresh. Decided proposals are left alone."""
    pa = proposed_actions.c
    ids = sorted(set(customer_ids))
    reason = f"held back on {as_of}: a row of the customer's ledger cannot be right (ledger_sane)"
    count = 0
    for start in range(0, len(ids), batch_size):
        count += connection.execute(
            proposed_actions.update()
            .where(
                pa.status == "proposed",
                pa.as_of <= as_of,
                pa.action_type.in_(CHILD_TYPES),
                pa.customer_id.in_(ids[start : start + batch_size]),
            )
            .values(
                status="superseded",
                superseded_reason=reason,
                idempotency_key=pa.idempotency_key
                + HELD_BACK_KEY_SUFFIX
                + sa.cast(pa.action_id, sa.Text),
            )
        ).rowcount
    return count


LETTER_TYPES = ("collection_action", "email_to_customer")


# json.dumps(material, sort_keys=True, separators=(",", ":"), default=str), its encoder made once
_FINGERPRINT_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def letter_fingerprint(action_type: str, tier: int, inputs: Mapping[str, Any]) -> str:
    """What makes two drafts of a letter the same letter (see the module docstring): a hash of
    its inputs, days overdue left out."""
    invoices = [
        {k: v for k, v in i.items() if k != "days_overdue"} for i in inputs.get("invoices", [])
    ]
    material = {**inputs, "invoices": invoices, "action_type": action_type, "tier": tier}
    return hashlib.sha256(_FINGERPRINT_JSON.encode(material).encode()).hexdigest()


def _fingerprint(material: Mapping[str, Any], invoices: Sequence[OverdueInvoice]) -> str:
    """:func:`letter_fingerprint` of ``material`` (a letter's inputs, its action type and tier)
    whose ``"invoices"`` is :data:`_INVOICES`, standing in for ``invoices``."""
    text = _FINGERPRINT_JSON.encode(material)
    text = _splice_invoices(text, ":", _fingerprint_invoices_json(invoices))
    return hashlib.sha256(text.encode()).hexdigest()


# The invoices are most of a letter's values: rather than a dict per invoice for the payload
# and another for the fingerprint, each serialized by the encoder, the encoder serializes the
# rest with this marker in their place, and the invoices' JSON, written directly, replaces it.
# Inside a JSON string every '"' is escaped, so '"invoices": <marker>' is found only as the key.
_INVOICES = "\x00invoices\x00"
_INVOICES_JSON = json.dumps(_INVOICES)
_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps does with a str


def _json_str(value: Any) -> str:
    return _encode_str(value) if type(value) is str else json.dumps(value)


def _payload_invoices_json(invoices: Sequence[OverdueInvoice]) -> str:
    """``json.dumps([i.as_payload() for i in invoices])``, the same text, written directly."""
    return "[" + ", ".join(
        f'{{"invoice_id": {_json_str(i.invoice_id)}, '
        f'"invoice_number": {_json_str(i.invoice_number)}, '
        f'"due_date": "{i.due_date.isoformat()}", "currency": {_json_str(i.currency)}, '
        f'"open_cents": {int(i.open_cents)}, "days_overdue": {int(i.days_overdue)}}}'
        for i in invoices
    ) + "]"  # fmt: skip


def _fingerprint_invoices_json(invoices: Sequence[OverdueInvoice]) -> str:
    """The invoices as :func:`letter_fingerprint` serializes them (sorted keys, compact, no
    days overdue), the same text, written directly."""
    return "[" + ",".join(
        f'{{"currency":{_json_str(i.currency)},"due_date":"{i.due_date.isoformat()}",'
        f'"invoice_id":{_json_str(i.invoice_id)},'
        f'"invoice_number":{_json_str(i.invoice_number)},"open_cents":{int(i.open_cents)}}}'
        for i in invoices
    ) + "]"  # fmt: skip


def _splice_invoices(text: str, key_separator: str, invoices_json: str) -> str:
    """``text`` with the :data:`_INVOICES` marker as the value of ``"invoices"`` replaced by
    ``invoices_json``."""
    key = f'"invoices"{key_separator}'
    head, found, tail = text.partition(key + _INVOICES_JSON)
    if not found:
        raise ValueError("no invoices marker in the serialized letter")
    return f"{head}{key}{invoices_json}{tail}"


def pending_fingerprints(connection: sa.Connection, as_of: dt.date) -> dict[tuple[str, str], str]:
    """(customer_id, action_type) -> fingerprint of each letter still ``proposed`` from
    ``as_of`` or a day before (an earlier run of the same day included; letters staged before
    fingerprints existed have none: redrafted)."""
    pa = proposed_actions.c
    rows = connection.execute(
        sa.select(pa.customer_id, pa.action_type, pa.payload_json["fingerprint"].as_string())
        .where(pa.status == "proposed", pa.as_of <= as_of, pa.action_type.in_(LETTER_TYPES))
        .order_by(pa.action_id)
    )
    return {(r[0], r[1]): r[2] for r in rows if r[2]}


def stage_proposals(
    connection: sa.Connection,
    *,
    as_of: dt.date,
    run_id: str,
    tiers: Sequence[TierDefinition],
    threshold_days: int,
    hold_policy: HoldPolicy,
    now: dt.datetime,
    batch_size: int = 1000,
    held_back: Mapping[str, HeldBack] | None = None,
    recipient_sources: Mapping[str, str] | None = None,
) -> StagingResult:
    """Stage the day's proposals inside the caller's transaction (see the module docstring).
    ``held_back``: the customers the ledger check holds back, by id. ``recipient_sources``:
    where each customer's billing e-mail came from in the source system (Alga PSA: its
    recipient order), put in the letter's payload as ``to_source``; without it the address is
    the ledger's ``billing_email``."""
    held_back = held_back or {}
    by_tier = {t.tier: t for t in tiers}
    envelope_id = _ensure_envelope(connection, as_of, run_id, now)
    result = StagingResult(envelope_id=envelope_id, held_back=len(held_back))
    held_back_superseded = supersede_held_back(connection, as_of, held_back)
    known = set(
        connection.execute(
            sa.select(proposed_actions.c.idempotency_key).where(proposed_actions.c.as_of == as_of)
        ).scalars()
    )
    credits = _credits(connection, as_of)
    pending = pending_fingerprints(connection, as_of)
    cannot_contact: list[dict[str, Any]] = []
    no_sales_rep: list[str] = []

    def row(
        action_type: str, customer_id: str, tier: int | None, **fields: Any
    ) -> dict[str, Any]:
        # the payload is serialized here, once: the text json.dumps makes, as the JSON column
        # would; a letter's invoices (``invoices``) are spliced in for their marker
        payload = json.dumps(fields.pop("payload"))
        if "invoices" in fields:
            payload = _splice_invoices(payload, ": ", _payload_invoices_json(fields["invoices"]))
        return {
            "idempotency_key": action_key(action_type, as_of, customer_id, tier),
            "envelope_id": envelope_id, "run_id": run_id, "as_of": as_of,
            "action_type": action_type, "customer_id": customer_id, "tier": tier,
            "program_type": fields.pop("program_type", None),
            "payload_json": payload, "status": "proposed", "proposed_at": now,
        }  # fmt: skip

    drafter = Drafter()  # each template loaded and compiled once for the run
    batch: list[dict[str, Any]] = []
    for candidate in _candidates(connection, as_of, threshold_days, batch_size):
        if candidate.customer_id in held_back:  # tier_assignments left it out already
            continue
        tier = by_tier[candidate.tier]
        if not candidate.billing_email:
            result.cannot_contact[tier.tier] = result.cannot_contact.get(tier.tier, 0) + 1
            if len(cannot_contact) < CANNOT_CONTACT_LISTED:
                cannot_contact.append(
                    {"customer_id": candidate.customer_id,
                     "customer_name": candidate.customer_name, "tier": tier.tier}
                )  # fmt: skip
            continue
        credit = credits.get(candidate.customer_id, {})
        to_source = (
            "billing_email"
            if recipient_sources is None
            else recipient_sources.get(candidate.customer_id, "unknown")
        )
        totals = totals_by_currency(candidate.invoices)
        common = {
            "customer_name": candidate.customer_name,
            "tier_name": tier.name,
            "to_source": to_source,
            "invoices": _INVOICES,  # spliced in when serialized
            "totals_cents": totals,
            "unapplied_credit_cents": {c: v for c, v in credit.items() if v},
            "tier_rule": {
                "min_days_overdue": max(tier.min_days_overdue, threshold_days),
                "min_dunnable": str(tier.min_dunnable),
            },
        }
        if candidate.broken_promise is not None:
            # the step was called for by the broken promise, not by the tier's days and amount:
            # the apply job's re-check asks only that something is still dunnable
            common["broken_promise"] = candidate.broken_promise
            common["tier_rule"] = {
                "min_days_overdue": max(threshold_days, 1), "min_dunnable": "0",
                "broken_promise_id": candidate.broken_promise["promise_id"],
            }  # fmt: skip
        # letter_fingerprint's material, the invoices spliced in when serialized
        material = {
            **common,
            "to": [candidate.billing_email], "template": tier.template,
            "action_type": "collection_action", "tier": tier.tier,
        }  # fmt: skip
        fingerprint = _fingerprint(material, candidate.invoices)
        lines: list[LetterLine] | None = None  # the invoice lines, made once a letter is drafted
        if pending.get((candidate.customer_id, "collection_action")) == fingerprint:
            result.carried_over += 1
        else:
            lines = letter_lines(candidate.invoices)
            subject, body = drafter.draft(
                tier.template, candidate.customer_name, tier.name, candidate.invoices, credit,
                broken_promise=candidate.broken_promise, lines=lines, totals=totals,
            )  # fmt: skip
            batch.append(
                row(
                    "collection_action", candidate.customer_id, tier.tier,
                    payload={"to": [candidate.billing_email], "cc": [], "reply_to": None,
                             "subject": subject, "body": body, "template": tier.template,
                             **common, "fingerprint": fingerprint},
                    invoices=candidate.invoices,
                )
            )  # fmt: skip
        if tier.involves_sales_rep:
            if not candidate.sales_rep_email:
                no_sales_rep.append(candidate.customer_id)
            else:
                rep_print = _fingerprint(
                    {**material, "cc": [candidate.sales_rep_email],
                     "template": SALES_REP_TEMPLATE, "action_type": "email_to_customer"},
                    candidate.invoices,
                )  # fmt: skip
                if pending.get((candidate.customer_id, "email_to_customer")) == rep_print:
                    result.carried_over += 1
                else:
                    subject, body = drafter.draft(
                        SALES_REP_TEMPLATE, candidate.customer_name, tier.name,
                        candidate.invoices, credit, candidate.sales_rep_email,
                        broken_promise=candidate.broken_promise,
                        lines=lines if lines is not None else letter_lines(candidate.invoices),
                        totals=totals,
                    )  # fmt: skip
                    batch.append(
                        row(
                            "email_to_customer", candidate.customer_id, tier.tier,
                            payload={"to": [candidate.billing_email],
                                     "cc": [candidate.sales_rep_email],
                                     "reply_to": candidate.sales_rep_email,
                                     "on_behalf_of": candidate.sales_rep_email,
                                     "subject": subject, "body": body,
                                     "template": SALES_REP_TEMPLATE, **common,
                                     "fingerprint": rep_print},
                            invoices=candidate.invoices,
                        )
                    )  # fmt: skip
        if len(batch) >= batch_size:
            _insert_new(connection, batch, known, result)
            batch = []
    _insert_new(connection, batch, known, result)

    holds = hold_candidates(connection, as_of, hold_policy, held_back)
    hold_rows = [
        row(
            "customer_program",
            customer_id,
            None,
            program_type="service_hold",
            payload={"reason": _hold_reason(currencies, hold_policy), "currencies": currencies},
        )  # fmt: skip
        for customer_id, currencies in holds.items()
    ]
    for start in range(0, len(hold_rows), batch_size):
        _insert_new(connection, hold_rows[start : start + batch_size], known, result)

    result.superseded += (
        held_back_superseded
        + supersede_older(connection, as_of, run_id)
        + supersede_settled(connection, as_of)
        + supersede_paused(connection, as_of)
        + supersede_uncalled_holds(connection, as_of)
    )
    _update_envelope(
        connection, envelope_id, as_of, run_id, result, cannot_contact, no_sales_rep, held_back
    )
    return result


def _hold_reason(currencies: Iterable[dict[str, Any]], policy: HoldPolicy) -> str:
    parts = [
        f"{format_money(c['open_cents'], c['currency'])} open, oldest "
        f"{c['max_days_overdue']} days overdue"
        for c in currencies
    ]
    return (
        f"Over {policy.min_days_overdue} days overdue with more than {policy.min_open} open: "
        + "; ".join(parts)
    )


def _update_envelope(
    connection: sa.Connection,
    envelope_id: int,
    as_of: dt.date,
    run_id: str,
    result: StagingResult,
    cannot_contact: list[dict[str, Any]],
    no_sales_rep: list[str],
    held_back: Mapping[str, HeldBack],
) -> None:
    """Counts of everything staged as of ``as_of`` (this run and earlier reruns of the day),
    who cannot be contacted, and who is held back by the ledger check (this run's view)."""
    counts = connection.execute(
        sa.select(
            proposed_actions.c.action_type,
            proposed_actions.c.tier,
            sa.func.count().label("n"),
        )
        .where(
            proposed_actions.c.as_of == as_of,
            proposed_actions.c.action_type != "workflow_envelope",
            proposed_actions.c.status != "superseded",
        )
        .group_by(proposed_actions.c.action_type, proposed_actions.c.tier)
        .order_by(proposed_actions.c.action_type, proposed_actions.c.tier)
    )
    staged: dict[str, dict[str, int]] = {}
    for r in counts:
        key = "all" if r.tier is None else f"tier_{r.tier}"
        staged.setdefault(r.action_type, {})[key] = int(r.n)
    payload = {
        "as_of": as_of.isoformat(),
        "run_id": run_id,
        "staged": staged,
        "cannot_contact": {
            "heading": "Cannot contact: no billing e-mail address",
            "count_by_tier": {f"tier_{k}": v for k, v in sorted(result.cannot_contact.items())},
            "customers": cannot_contact,
        },
        "no_sales_rep": no_sales_rep[:CANNOT_CONTACT_LISTED],
        # letters of earlier days still pending and unchanged: kept, not drafted again
        "carried_over": result.carried_over,
        "held_back": {
            "heading": "Held back: a row of the customer's ledger cannot be right "
            "(check ledger_sane); no letter, e-mail or hold until it is put right",
            "count": len(held_back),
            "customers": [
                held_back[customer_id].as_payload()
                for customer_id in sorted(held_back)[:HELD_BACK_LISTED]
            ],
        },
    }
    connection.execute(
        proposed_actions.update()
        .where(proposed_actions.c.action_id == envelope_id)
        .values(payload_json=payload, run_id=run_id)
    )


@dataclass(frozen=True)
class StagingVerification:
    expected: dict[str, int]
    observed: dict[str, int]
    unexpected: int

    @property
    def passed(self) -> bool:
        return self.expected == self.observed and self.unexpected == 0


def verify_staging(connection: sa.Connection, as_of: dt.date) -> StagingVerification:
    """Compare what ``tier_assignments`` called for as of ``as_of`` (customers per proposed
    tier) with what is staged: a live ``collection_action`` of that customer and tier (of the
    day, or still pending from an earlier day and carried over unchanged), or the customer
    counted under "cannot contact" in the envelope.

    ``unexpected`` counts the letters of the day still ``proposed`` that nothing called for.
    A letter of the day that was already decided (approved, applying, applied, failed,
    rejected) is a record of an earlier run of the day, not something this run staged: a rerun
    after decisions no longer calls for it (the customer is now at that tier, or its letter is
    still on its way) and that is right."""
    ta, pa = tier_assignments.c, proposed_actions.c
    letter = proposed_actions.alias("letter")

    def live_letter(*conditions: sa.ColumnElement[bool]) -> sa.Exists:
        return (
            sa.select(letter.c.action_id)
            .where(
                letter.c.action_type == "collection_action",
                letter.c.customer_id == ta.customer_id,
                letter.c.tier == ta.proposed_tier,
                *conditions,
            )
            .exists()
        )

    # two look-ups, each by an index (the day's letters; the pending ones), rather than one
    # that reads every letter the customer was ever sent
    matched = sa.or_(
        live_letter(letter.c.as_of == as_of, letter.c.status != "superseded"),
        # carried over: still pending from an earlier day, unchanged
        live_letter(letter.c.as_of < as_of, letter.c.status == "proposed"),
    )
    expected: dict[str, int] = {}
    observed: dict[str, int] = {}
    for r in connection.execute(
        sa.select(
            ta.proposed_tier,
            sa.func.count().label("called_for"),
            sa.func.sum(sa.case((matched, 1), else_=0)).label("staged"),
        )
        .where(ta.as_of == as_of, ta.proposed_tier.is_not(None))
        .group_by(ta.proposed_tier)
    ):
        expected[f"tier_{r.proposed_tier}"] = int(r.called_for)
        observed[f"tier_{r.proposed_tier}"] = int(r.staged or 0)
    envelope = (
        connection.execute(
            sa.select(pa.payload_json).where(pa.idempotency_key == envelope_key(as_of))
        ).scalar_one_or_none()
        or {}
    )
    for key, count in envelope.get("cannot_contact", {}).get("count_by_tier", {}).items():
        observed[key] = observed.get(key, 0) + int(count)
    assigned = (
        sa.select(tier_assignments.c.customer_id)
        .where(
            tier_assignments.c.as_of == as_of,
            tier_assignments.c.customer_id == pa.customer_id,
            tier_assignments.c.proposed_tier == pa.tier,
        )
        .exists()
    )
    unexpected = connection.execute(
        sa.select(sa.func.count()).where(
            pa.as_of == as_of,
            pa.action_type == "collection_action",
            pa.status == "proposed",
            ~assigned,
        )
    ).scalar_one()
    return StagingVerification(expected, observed, int(unexpected))


RECIPIENT_SOURCES = {
    "billing_email": "billing e-mail",
    "billing_contact": "Alga: billing contact",
    "unknown": "source not known",
}


def recipient_label(source: str | None) -> str:
    """Where a letter's address came from, in words (payload ``to_source``)."""
    if source is None:
        return RECIPIENT_SOURCES["billing_email"]
    if source in RECIPIENT_SOURCES:
        return RECIPIENT_SOURCES[source]
    return "Alga: " + source.replace("_", " ")
