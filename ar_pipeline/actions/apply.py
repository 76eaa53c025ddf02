"""Applying approved actions: the only code that causes side effects (docs/design.md).

For each action id, on its own:

1. **Claim** it when its turn comes: ``approved`` -> ``applying`` (with ``claimed_at``) in one
   conditional UPDATE, committed at once. A second claimant updates nothing and does nothing.
   Before each attempt to send, the run checks the row is still its claim (a person may have
   settled it); every status it records afterwards is conditional on ``applying``, and finding
   the row changed is an ``error`` of that action, never a silent overwrite.
2. **Refuse** it (``failed``) when the approver is not in ``AR_APPROVERS`` (any more).
3. **Re-check** the customer as of today: a letter whose tier the customer no longer meets
   (paid or credited since approval), a letter stating an amount no longer true (an invoice it
   lists settled, disputed or held since it was drafted, or other unapplied credit), a letter
   to a customer whose dunning is paused that day, a hold whose conditions no longer hold, or
   any action of a customer whose ledger now has a row that cannot be right
   (``ar_pipeline.rules.ledger_sanity``) becomes ``superseded`` with the reason, and nothing
   is sent or set. So does a letter when the customer already has the same step or a higher
   one (same action type) that was sent since this one was proposed, whose delivery is
   unconfirmed, or that another run is sending right now: a customer never receives the same
   step twice (two runs racing on two copies of a step may both stand down; the next morning
   proposes it again).
4. **Act**: send the mail or set the service hold (in the same transaction as the status change).
   The mail's outcome decides the status (``ar_pipeline.actions.mail``): delivered -> ``applied``;
   refused with 5xx -> ``failed`` at once; not taken (4xx, connection trouble before the data
   was accepted) -> retried twice, 5 s then 10 s apart, then ``failed``; no answer after the
   data was written -> ``unconfirmed``, never retried automatically.
5. ``failed`` can be approved again (a retry). ``unconfirmed``, and ``applying`` left behind by a
   crash, wait for a human: ``approvals.resolve`` records "it was delivered" or "send it again".

The Message-ID is one per action (``<ar-action-<id>@domain>``) on every attempt, so a receiving
system can drop a duplicate.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ar_pipeline.actions.mail import (
    InvalidMessage,
    Mailer,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnknownDeliveryOutcome,
    build_message,
)
from ar_pipeline.rules.aging import AgingSource, aging_by_customer, as_of_dates
from ar_pipeline.rules.levers import held_invoice_ids
from ar_pipeline.rules.money import format_money, to_minor_units
from ar_pipeline.rules.proposals import HoldPolicy, owed, paused_on, service_hold_exempt
from ar_pipeline.rules.tiering import dunning_positions
from ar_pipeline.store.schema import NEVER_APPLIED_TYPES, customers, proposed_actions

SEND_RETRY_DELAYS = (5.0, 10.0)  # 2 retries, linear backoff from 5 s


@dataclass(frozen=True)
class ApplyOutcome:
    action_id: int
    outcome: str  # applied, superseded, failed, unconfirmed, not_claimed
    detail: str = ""


# outcomes that make the apply run fail; ``error``: an exception inside one action's turn
NEEDS_ATTENTION = ("failed", "unconfirmed", "error")
RESOLVE_HINT = (
    "Not sent again automatically: find out whether it arrived, then "
    "`ar-pipeline approvals resolve {0} --delivered` or `--send-again`"
)


def claim(engine: Engine, action_id: int, now: dt.datetime) -> bool:
    """``approved`` -> ``applying``; True for exactly one of any number of concurrent callers."""
    with engine.begin() as connection:
        claimed = connection.execute(
            proposed_actions.update()
            .where(
                proposed_actions.c.action_id == action_id, proposed_actions.c.status == "approved"
            )
            .values(status="applying", attempts=proposed_actions.c.attempts + 1, claimed_at=now)
        ).rowcount
    return claimed == 1


@dataclass
class Claim:
    """This run's claim on one action: the ``claimed_at`` it stamped, and whether a side effect
    was started (after that, an error leaves the row for a person: it may have happened)."""

    action_id: int
    stamp: dt.datetime
    acting: bool = False

    def ours(self) -> sa.ColumnElement[bool]:
        pa = proposed_actions.c
        return sa.and_(
            pa.action_id == self.action_id, pa.status == "applying", pa.claimed_at == self.stamp
        )


def _still_ours(engine: Engine, claim_: Claim) -> bool:
    with engine.connect() as connection:
        found = connection.execute(sa.select(sa.func.count()).where(claim_.ours())).scalar_one()
    return found == 1


class ClaimLost(RuntimeError):
    """The row left ``applying`` while this run had it: nothing is recorded over a person's
    decision."""


def _finish(connection: sa.Connection, claim_: Claim, status: str, **values: Any) -> bool:
    """``applying`` -> ``status`` under this run's claim; False when the row is not ``applying``
    under it any more (a person settled it, and perhaps another run claimed it since)."""
    return (
        connection.execute(
            proposed_actions.update().where(claim_.ours()).values(status=status, **values)
        ).rowcount
        == 1
    )


def _tiers_still_met(
    connection: sa.Connection, actions: Sequence[sa.Row], as_of: dt.date
) -> dict[int, str | None]:
    """For each dunning action: None when the customer still meets its tier as of ``as_of``,
    else why not."""
    rules = {a.action_id: (a.payload.get("tier_rule") or {}) for a in actions}
    from_days = sorted({int(r.get("min_days_overdue", 1)) for r in rules.values()})
    if not actions:
        return {}
    ids = sorted({a.customer_id for a in actions})
    by_customer: dict[str, list[sa.Row]] = {}
    for row in connection.execute(dunning_positions(as_of_dates([as_of]), from_days, only=ids)):
        by_customer.setdefault(row.customer_id, []).append(row)
    verdicts: dict[int, str | None] = {}
    for action in actions:
        rule = rules[action.action_id]
        day = int(rule.get("min_days_overdue", 1))
        minimum = Decimal(rule.get("min_dunnable", "0"))
        meets = any(
            max(0, int(getattr(r, f"due_from_{day}") or 0) - int(r.credit_cents or 0))
            >= max(1, to_minor_units(minimum, r.currency))
            for r in by_customer.get(action.customer_id, [])
        )
        verdicts[action.action_id] = (
            None
            if meets
            else f"customer no longer overdue at tier {action.tier} as of {as_of} "
            "(paid, credited, or its invoices held since approval)"
        )
    return verdicts


def _letters_still_right(
    connection: sa.Connection, actions: Sequence[sa.Row], as_of: dt.date
) -> dict[int, str]:
    """Letters whose amounts are no longer true as of ``as_of``, with why: an invoice the letter
    lists whose open amount moved (paid, credited, reversed), or that is disputed or held now,
    or unapplied credit in a currency the letter lists that is not what the letter states. Such a
    letter is superseded, not sent: the approved text is exactly what goes out, so a stale
    amount is never put in front of a customer; the next morning drafts the letter anew."""
    listed = {a.action_id: (a.payload or {}).get("invoices") or [] for a in actions}
    ids = sorted({a.customer_id for a in actions if listed[a.action_id]})
    if not ids:
        return {}
    dates = as_of_dates([as_of])
    source = AgingSource(dates, ids)
    items = source.open_items().subquery("open_now")
    held = held_invoice_ids(dates).subquery("held_now")
    open_now = {
        invoice_id: (int(cents), disputed, is_held)
        for invoice_id, cents, disputed, is_held in connection.execute(
            sa.select(
                items.c.invoice_id, items.c.open_cents, items.c.disputed,
                held.c.invoice_id.is_not(None),
            ).select_from(items.outerjoin(held, held.c.invoice_id == items.c.invoice_id))
        )
    }  # fmt: skip
    credit = source.unapplied_credit().subquery("credit_now")
    credit_now = {
        (customer_id, currency): int(cents)
        for customer_id, currency, cents in connection.execute(
            sa.select(credit.c.customer_id, credit.c.currency, credit.c.unapplied_credit_cents)
        )
    }
    verdicts: dict[int, str] = {}
    for action in actions:
        why = []
        for item in listed[action.action_id]:
            cents, disputed, is_held = open_now.get(item["invoice_id"], (0, False, False))
            number, currency = item.get("invoice_number") or item["invoice_id"], item["currency"]
            if cents != int(item["open_cents"]):
                why.append(f"{number}: {format_money(int(item['open_cents']), currency)} in the "
                           f"letter, {format_money(cents, currency)} open now")  # fmt: skip
            elif disputed or is_held:
                why.append(f"{number} is {'disputed' if disputed else 'held'} now")
        stated = (action.payload or {}).get("unapplied_credit_cents") or {}
        for currency in sorted((action.payload or {}).get("totals_cents") or {}):
            was = int(stated.get(currency, 0))
            now = credit_now.get((action.customer_id, currency), 0)
            if was != now:
                why.append(f"unapplied credit {format_money(was, currency)} in the letter, "
                           f"{format_money(now, currency)} now")  # fmt: skip
        if why:
            verdicts[action.action_id] = (
                f"the letter's amounts changed since it was drafted, as of {as_of}: "
                + "; ".join(why)
            )
    return verdicts


def _add_reasons(verdicts: dict[int, str | None], more: dict[int, str]) -> None:
    """Add to ``verdicts`` the reasons of ``more`` for actions that have none yet."""
    verdicts.update({i: why for i, why in more.items() if not verdicts.get(i)})


def _holds_still_due(
    connection: sa.Connection, actions: Sequence[sa.Row], as_of: dt.date, policy: HoldPolicy
) -> dict[int, str | None]:
    if not actions:
        return {}
    ids = sorted({a.customer_id for a in actions})
    due: set[str] = set()
    for row in connection.execute(aging_by_customer(as_of_dates([as_of]), only=ids)):
        if policy.calls_for_hold(
            row.currency, owed(row.uncontested_cents, row.unapplied_credit_cents),
            row.max_days_overdue,
        ):  # fmt: skip
            due.add(row.customer_id)
    due -= set(connection.execute(service_hold_exempt(as_of)).scalars())
    on_hold = set(
        connection.execute(
            sa.select(customers.c.customer_id).where(
                customers.c.customer_id.in_(ids), customers.c.service_hold.is_(True)
            )
        ).scalars()
    )
    verdicts: dict[int, str | None] = {}
    for action in actions:
        if action.customer_id in on_hold:
            verdicts[action.action_id] = "customer is already on service hold"
        elif action.customer_id not in due:
            verdicts[action.action_id] = (
                f"hold conditions no longer met as of {as_of} (paid, credited, held or promised "
                "since approval)"
            )
        else:
            verdicts[action.action_id] = None
    return verdicts


def _ledger_suspects(
    connection: sa.Connection,
    actions: Sequence[sa.Row],
    as_of: dt.date,
    verdicts: dict[int, str | None],
) -> dict[int, str | None]:
    """Actions of customers with a ledger row that cannot be right as of ``as_of`` (approved
    before the row appeared): superseded, naming the first such row. Others keep their verdict."""
    from ar_pipeline.rules.ledger_sanity import customers_with_findings

    suspects = customers_with_findings(connection, as_of, {a.customer_id for a in actions})
    return {
        a.action_id: f"a row of the customer's ledger cannot be right as of {as_of} (check "
        f"ledger_sane): {suspects[a.customer_id]}"
        for a in actions
        if a.customer_id in suspects and not verdicts.get(a.action_id)
    }


def already_stepped(
    connection: sa.Connection, action: sa.Row, batch: Collection[int] = ()
) -> str | None:
    """Why the customer must not get this step, or None: another action of the same type and
    customer with this tier or a higher one was applied since this one was proposed, is
    ``unconfirmed`` (it may have arrived), or is ``applying`` in another run (being sent, or
    stranded by a crash mid-send). Actions of this run's ``batch`` are taken one after the
    other, so of two copies of a step in one batch the first goes and the second stands down."""
    pa = proposed_actions.c
    other = connection.execute(
        sa.select(pa.action_id, pa.status, pa.tier)
        .where(
            pa.customer_id == action.customer_id,
            pa.action_type == action.action_type,
            pa.action_id != action.action_id,
            pa.tier >= action.tier,
            sa.or_(
                sa.and_(pa.status == "applied", pa.applied_at >= action.proposed_at),
                pa.status == "unconfirmed",
                sa.and_(pa.status == "applying", pa.action_id.not_in(list(batch))),
            ),
        )
        .order_by(pa.action_id)
        .limit(1)
    ).first()
    if other is None:
        return None
    state = {"applied": "was sent", "unconfirmed": "may have been delivered (unconfirmed)",
             "applying": "is being sent (or was stranded mid-send)"}[other.status]  # fmt: skip
    return (
        f"the customer's tier {other.tier} step (action {other.action_id}) {state} since this "
        "one was proposed"
    )


def apply_actions(
    engine: Engine,
    mailer: Mailer,
    action_ids: Sequence[int],
    *,
    approvers: Collection[str],
    as_of: dt.date,
    hold_policy: HoldPolicy,
    retry_delays: Sequence[float] = SEND_RETRY_DELAYS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> list[ApplyOutcome]:
    """Re-check, claim and apply each action, in ID order (see the module docstring).

    Each action is claimed just before its turn, not the whole batch up front: a batch of slow
    sends would otherwise age its last rows past :data:`~ar_pipeline.actions.approvals.
    STRANDED_AFTER` while they wait, and a person could "send it again" a letter this run is
    about to send. Before every attempt the run checks that the row is still its claim. An
    error inside one action (the database gone mid-batch) is that action's outcome
    (``error``); the others are still tried, and rows never claimed stay ``approved``."""
    requested = list(dict.fromkeys(action_ids))
    pa = proposed_actions.c
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                pa.action_id,
                pa.action_type,
                pa.customer_id,
                pa.tier,
                pa.program_type,
                pa.decided_by,
                pa.proposed_at,
                sa.func.coalesce(pa.edited_payload_json, pa.payload_json).label("payload"),
            )  # fmt: skip
            .where(
                pa.action_id.in_(requested),
                pa.status == "approved",
                pa.action_type.not_in(NEVER_APPLIED_TYPES),  # decided, never applied
            )
            .order_by(pa.action_id)
        ).all()
        mail_rows = [r for r in rows if r.action_type in ("collection_action", "email_to_customer")]
        hold_rows = [r for r in rows if r.action_type == "customer_program"]
        verdicts = _tiers_still_met(connection, mail_rows, as_of)
        # the first reason found stands: a customer no longer at the tier says so first
        _add_reasons(verdicts, _letters_still_right(connection, mail_rows, as_of))
        paused = set(connection.execute(paused_on(as_of)).scalars()) if mail_rows else set()
        _add_reasons(verdicts, {
            r.action_id: f"dunning paused as of {as_of} (a person paused this customer)"
            for r in mail_rows if r.customer_id in paused
        })  # fmt: skip
        verdicts |= _holds_still_due(connection, hold_rows, as_of, hold_policy)
        verdicts |= _ledger_suspects(connection, [*mail_rows, *hold_rows], as_of, verdicts)

    outcomes: list[ApplyOutcome] = []
    taken: list[int] = []  # claimed by this run so far
    for action in rows:
        stamp = clock()
        if not claim(engine, action.action_id, stamp):
            continue
        taken.append(action.action_id)
        claim_ = Claim(action.action_id, stamp)
        try:
            outcomes.append(
                _apply_one(engine, mailer, action, verdicts, approvers, retry_delays, sleep,
                           clock, taken, claim_)  # fmt: skip
            )
        except Exception as error:  # noqa: BLE001 - one action's trouble never stops the rest
            outcomes.append(_after_error(engine, claim_, error))
    done = {o.action_id for o in outcomes}
    return [ApplyOutcome(i, "not_claimed", "not approved, or claimed by another run")
            for i in requested if i not in done] + outcomes  # fmt: skip


def _after_error(engine: Engine, claim_: Claim, error: Exception) -> ApplyOutcome:
    what = f"{type(error).__name__}: {error}"[:1500]
    if claim_.acting:
        return ApplyOutcome(claim_.action_id, "error", f"error while acting ({what}); it may "
                            f"have happened. {RESOLVE_HINT.format(claim_.action_id)}")  # fmt: skip
    try:  # certainly not sent: failed, so that an approver decides whether to try again
        with engine.begin() as connection:
            _finish(connection, claim_, "failed", last_error=f"not sent: {what}")
    except Exception:  # noqa: BLE001 - the database is gone too: the row waits for a person
        return ApplyOutcome(claim_.action_id, "error", f"not sent ({what}); the row stays "
                            f"applying. {RESOLVE_HINT.format(claim_.action_id)}")  # fmt: skip
    return ApplyOutcome(claim_.action_id, "error", f"not sent ({what}); marked failed")


def _apply_one(
    engine: Engine,
    mailer: Mailer,
    action: sa.Row,
    verdicts: dict[int, str | None],
    approvers: Collection[str],
    retry_delays: Sequence[float],
    sleep: Callable[[float], None],
    clock: Callable[[], dt.datetime],
    batch: Collection[int],
    claim_: Claim,
) -> ApplyOutcome:
    action_id = action.action_id

    def record(connection: sa.Connection, status: str, **values: Any) -> None:
        if not _finish(connection, claim_, status, **values):
            raise ClaimLost(
                f"action {action_id} was changed by someone else while this run had it "
                f"(it is no longer applying under this run's claim); {status} not recorded"
            )

    def finish(status: str, error: str) -> ApplyOutcome:
        with engine.begin() as connection:
            record(connection, status, last_error=error[:2000])
        return ApplyOutcome(action_id, status, error)

    def fail(error: str) -> ApplyOutcome:
        return finish("failed", error)

    if action.decided_by not in approvers:
        return fail(f"approved by {action.decided_by!r}, who is not in AR_APPROVERS")
    if action.action_type not in ("collection_action", "email_to_customer", "customer_program"):
        return fail(f"action type {action.action_type} has nothing to apply")
    reason = verdicts.get(action_id)
    if not reason and action.action_type != "customer_program":
        with engine.connect() as connection:
            reason = already_stepped(connection, action, batch)
    if reason:
        with engine.begin() as connection:
            record(connection, "superseded", superseded_reason=reason)
        return ApplyOutcome(action_id, "superseded", reason)

    payload = action.payload or {}
    if action.action_type == "customer_program":
        now = clock()
        claim_.acting = True
        with engine.begin() as connection:
            held = connection.execute(
                customers.update()
                .where(
                    customers.c.customer_id == action.customer_id,
                    customers.c.service_hold.is_(False),
                )
                .values(
                    service_hold=True,
                    service_hold_at=now,
                    service_hold_reason=f"action {action_id}: {payload.get('reason', '')}"[:2000],
                )
            ).rowcount
            if held:
                record(connection, "applied", applied_at=now, last_error=None,
                       delivery_detail="service hold set")  # fmt: skip
            else:
                record(connection, "superseded",
                       superseded_reason="customer is already on service hold")  # fmt: skip
        return ApplyOutcome(action_id, "applied" if held else "superseded", "service hold")

    try:
        message = build_message(
            action_id,
            mailer.mail_from,
            payload.get("to") or [],
            payload.get("cc") or [],
            payload.get("subject", ""),
            payload.get("body", ""),
            payload.get("reply_to"),
        )
    except (InvalidMessage, ValueError, UnicodeError) as error:  # the library refuses it too
        return fail(f"invalid draft: {error}")
    attempts = len(retry_delays) + 1
    for attempt in range(1, attempts + 1):
        if not _still_ours(engine, claim_):  # a person resolved it meanwhile: not ours to send
            return ApplyOutcome(action_id, "not_claimed", "taken out of this run meanwhile")
        claim_.acting = True
        try:
            delivered = mailer.send(message)
        except TransientDeliveryError as error:
            if attempt == attempts:
                return fail(f"not accepted after {attempts} attempts: {error}")
            sleep(retry_delays[attempt - 1])
        except PermanentDeliveryError as error:
            return fail(f"refused by the mail server, not retried: {error}")
        except UnknownDeliveryOutcome as error:
            return finish("unconfirmed", f"{error}. {RESOLVE_HINT.format(action_id)}")
        except Exception as error:  # noqa: BLE001 - where it failed is unknown: never resend
            return finish(
                "unconfirmed",
                f"unexpected error while sending ({type(error).__name__}: {error}). "
                + RESOLVE_HINT.format(action_id),
            )
        else:
            with engine.begin() as connection:
                record(connection, "applied", applied_at=clock(), last_error=None,
                       delivery_detail=delivered.detail()[:2000])  # fmt: skip
            return ApplyOutcome(action_id, "applied", delivered.detail())
        claim_.acting = False  # refused or not taken: certainly not sent
    raise AssertionError("unreachable")  # the loop returns on its last attempt


def describe(outcomes: Sequence[ApplyOutcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
    return counts
