"""What the customer screen of the approver's page shows (``GET /customers/{customer_id}``):
the customer's open invoices as of today (held ones with why and until when), its promises to
pay with their outcomes, its holds, and its last steps, newest first. All read as of the day
given, with the same SQL the daily run uses (``ar_pipeline.rules.aging``, ``rules.levers``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ar_pipeline.rules.aging import AgingSource, as_of_dates
from ar_pipeline.rules.drafts import broken_promise_in_words
from ar_pipeline.rules.levers import held_invoices, hold_history, promise_outcomes
from ar_pipeline.rules.money import format_money
from ar_pipeline.store.schema import HOLD_REASONS, customers, promise_invoices, proposed_actions

OUTCOME_WORDS = {
    "open": "open", "kept": "kept", "partly_kept": "partly kept", "broken": "broken",
    "cancelled": "cancelled",
}  # fmt: skip
HOLD_STATE_WORDS = {"scheduled": "starts later", "in_force": "in force", "ended": "ended",
                    "released": "released"}  # fmt: skip
REASON_WORDS = {"dispute": "dispute", "audit": "audit", "agreed_delay": "agreed delay",
                "other": "other", "promise": "promise to pay"}  # fmt: skip
LAST_STEPS = 20


@dataclass
class CustomerScreen:
    customer_id: str
    customer_name: str
    billing_email: str | None
    today: dt.date
    paused_until: dt.date | None
    invoices: list[dict[str, Any]] = field(default_factory=list)
    promises: list[dict[str, Any]] = field(default_factory=list)
    holds: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    currencies: list[str] = field(default_factory=list)
    reasons: tuple[str, ...] = HOLD_REASONS
    reason_words: dict[str, str] = field(default_factory=lambda: REASON_WORDS)


def customer_screen(
    connection: sa.Connection, customer_id: str, today: dt.date
) -> CustomerScreen | None:
    """The customer's screen as of ``today``, or None for an unknown customer."""
    row = connection.execute(
        sa.select(customers).where(customers.c.customer_id == customer_id)
    ).first()
    if row is None:
        return None
    screen = CustomerScreen(
        customer_id, row.customer_name, row.billing_email, today, row.dunning_paused_until
    )
    day = as_of_dates([today])
    items = AgingSource(day, only=[customer_id]).open_items().subquery("items")
    held_rows = held_invoices(day).subquery("held")
    why_held: dict[str, list[str]] = {}
    for h in connection.execute(
        sa.select(held_rows)
        .join(items, items.c.invoice_id == held_rows.c.invoice_id)
        .order_by(held_rows.c.invoice_id, held_rows.c.lever, held_rows.c.lever_id)
    ):
        label = "promise" if h.lever == "promise" else f"hold {h.lever_id}"
        why_held.setdefault(h.invoice_id, []).append(
            f"{REASON_WORDS.get(h.reason, h.reason)} until {h.held_until} ({label})"
        )
    for i in connection.execute(sa.select(items).order_by(items.c.due_date, items.c.invoice_id)):
        screen.invoices.append({
            "invoice_id": i.invoice_id, "invoice_number": i.invoice_number,
            "due_date": i.due_date, "days_overdue": int(i.days_overdue),
            "open": format_money(int(i.open_cents), i.currency), "currency": i.currency,
            "disputed": bool(i.disputed), "held": why_held.get(i.invoice_id, []),
        })  # fmt: skip
    screen.currencies = sorted({i["currency"] for i in screen.invoices}) or ["EUR"]

    outcomes = promise_outcomes(today).subquery("outcomes")
    promise_rows = connection.execute(
        sa.select(outcomes)
        .where(outcomes.c.customer_id == customer_id)
        .order_by(outcomes.c.promised_date.desc(), outcomes.c.promise_id.desc())
    ).all()
    covered: dict[int, list[str]] = {}
    for promise_id, invoice_id in connection.execute(
        sa.select(promise_invoices.c.promise_id, promise_invoices.c.invoice_id)
        .where(promise_invoices.c.promise_id.in_([p.promise_id for p in promise_rows]))
        .order_by(promise_invoices.c.invoice_id)
    ):
        covered.setdefault(int(promise_id), []).append(invoice_id)
    for p in promise_rows:
        screen.promises.append({
            "promise_id": int(p.promise_id), "amount": format_money(p.amount_cents, p.currency),
            "arrived": format_money(int(p.arrived_cents), p.currency),
            "promised_date": p.promised_date, "outcome": p.outcome,
            "outcome_words": OUTCOME_WORDS[p.outcome],
            "invoices": covered.get(int(p.promise_id), []), "all_overdue": p.covers_all_overdue,
            "recorded": f"{p.recorded_on} by {p.recorded_by}", "note": p.note,
            "cancelled": f"{p.cancelled_on} by {p.cancelled_by}" if p.cancelled_on else None,
            "statement": broken_promise_in_words({
                "currency": p.currency, "amount_cents": p.amount_cents,
                "promised_date": p.promised_date.isoformat(), "arrived_cents": p.arrived_cents,
            }) if p.outcome == "broken" else None,
        })  # fmt: skip

    holds = hold_history(today).subquery("holds")
    for h in connection.execute(sa.select(holds).where(holds.c.customer_id == customer_id)):
        screen.holds.append({
            "hold_id": int(h.hold_id), "invoice_id": h.invoice_id,
            "reason": REASON_WORDS.get(h.reason, h.reason), "held_from": h.held_from,
            "held_until": h.held_until, "state": h.state,
            "state_words": HOLD_STATE_WORDS[h.state], "note": h.note,
            "recorded": f"{h.recorded_on} by {h.recorded_by}",
            "released": f"{h.released_on} by {h.released_by}" if h.released_on else None,
            "release_note": h.release_note,
        })  # fmt: skip

    pa = proposed_actions.c
    for a in connection.execute(
        sa.select(pa.action_id, pa.as_of, pa.action_type, pa.tier, pa.status, pa.payload_json,
                  pa.decided_by, pa.applied_at)
        .where(pa.customer_id == customer_id, pa.action_type != "workflow_envelope")
        .order_by(pa.as_of.desc(), pa.action_id.desc())
        .limit(LAST_STEPS)
    ):  # fmt: skip
        payload = a.payload_json or {}
        broken = payload.get("broken_promise")
        screen.steps.append({
            "action_id": a.action_id, "as_of": a.as_of,
            "what": a.action_type.replace("_", " ")
            + (f", tier {a.tier} {payload.get('tier_name', '').replace('_', ' ')}"
               if a.tier else ""),
            "status": a.status, "decided_by": a.decided_by,
            "broken": f"Broken promise: {broken_promise_in_words(broken)}" if broken else None,
        })  # fmt: skip
    return screen
