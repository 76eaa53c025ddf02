"""What the approver's page lists, and how a proposal reads to a person (``ar_pipeline.web.app``).

Four views of the actions (never the run's envelope row):

* **pending**: ``proposed``, waiting for a decision;
* **waiting**: approved and waiting to be sent: ``approved``, or ``applying`` for less than
  :data:`ar_pipeline.actions.approvals.STRANDED_AFTER` (being sent right now);
* **attention**: what a person must look at: ``failed``, ``unconfirmed``, and ``applying``
  for longer than ``STRANDED_AFTER`` (stranded by a crash), with the actions the delivery rules
  allow (approve again; it was delivered / send it again);
* **history**: ``applied``, ``failed``, ``superseded`` and ``rejected``, the newest decision
  first and rows nobody decided last, on both databases.

Every list is filtered and paged in SQL. Each row becomes a :class:`Line`: the customer's name,
what is proposed, the amount with its currency and why this tier, in words.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from ar_pipeline.actions.approvals import (
    STRANDED_AFTER,
    is_stranded,
    proposal_version,
    stranded,
)
from ar_pipeline.rules.drafts import broken_promise_in_words
from ar_pipeline.rules.money import format_money, to_minor_units
from ar_pipeline.rules.proposals import recipient_label
from ar_pipeline.sources.service_periods import RUNBOOK_FILES
from ar_pipeline.store.schema import ACTION_TYPES, customers, proposed_actions, tier_assignments

PAGE_SIZE = 50
VIEWS = {
    "pending": "To decide",
    "waiting": "Waiting to be sent",
    "attention": "Needs attention",
}
HISTORY_STATUSES = ("applied", "failed", "superseded", "rejected")
# the approval sensor requests an approved action again after 10 minutes; longer than that,
# nothing is picking approvals up (ar_pipeline.defs.sensors)
SENSOR_RETRY = dt.timedelta(minutes=10)
# the old ``status=`` filter of the page, for bookmarks
STATUS_VIEWS = {"proposed": "pending", "approved": "waiting", "applying": "attention",
                "unconfirmed": "attention", "failed": "attention"}  # fmt: skip
KINDS = {
    "collection_action": "letter",
    "email_to_customer": "rep's e-mail",
    "customer_program": "service hold",
    "service_period_repair": "repair plan",
}

pa = proposed_actions.c




def view_condition(view: str, now: dt.datetime) -> sa.ColumnElement[bool]:
    if view == "waiting":
        return sa.or_(
            pa.status == "approved",
            sa.and_(pa.status == "applying", pa.claimed_at >= now - STRANDED_AFTER),
        )
    if view == "attention":
        return sa.or_(pa.status.in_(("failed", "unconfirmed")), stranded(now))
    if view == "history":
        return pa.status.in_(HISTORY_STATUSES)
    return pa.status == "proposed"


def view_counts(connection: sa.Connection, now: dt.datetime) -> dict[str, int]:
    """How many actions each view holds (for the page's tabs)."""
    by_status = dict(
        connection.execute(
            sa.select(pa.status, sa.func.count())
            .where(pa.action_type != "workflow_envelope")
            .group_by(pa.status)
        ).all()
    )
    stuck = connection.execute(
        sa.select(sa.func.count()).where(pa.action_type != "workflow_envelope", stranded(now))
    ).scalar_one()
    return {
        "pending": by_status.get("proposed", 0),
        "waiting": by_status.get("approved", 0) + by_status.get("applying", 0) - stuck,
        "attention": by_status.get("failed", 0) + by_status.get("unconfirmed", 0) + stuck,
    }


def _number(text: str, longest: int) -> bool:
    """Plain ASCII digits, shorter than ``longest`` ('²' is a digit to Python, not to int)."""
    return text.isascii() and text.isdigit() and len(text) < longest


@dataclass(frozen=True)
class Filters:
    """The list's filter, from the query string (anything unknown is ignored)."""

    view: str = "pending"
    tier: str = ""
    action_type: str = ""
    customer: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, query: Any) -> Filters:
        view = query.get("view") or STATUS_VIEWS.get(query.get("status") or "", "pending")
        tier = query.get("tier") or ""
        action_type = query.get("type") or ""
        page = query.get("page") or "1"
        return cls(
            view=view if view in VIEWS else "pending",
            tier=tier if _number(tier, 4) else "",
            action_type=action_type if action_type in KINDS else "",
            customer=(query.get("customer") or "").strip()[:100],
            page=max(1, int(page)) if _number(page, 7) else 1,
        )

    def query(self, **changes: Any) -> str:
        """The query string of this filter, with ``changes`` (for links and ``back``)."""
        from urllib.parse import urlencode

        values = {"view": self.view, "tier": self.tier, "type": self.action_type,
                  "customer": self.customer, "page": self.page, **changes}  # fmt: skip
        return urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})

    @property
    def narrowed(self) -> bool:
        return bool(self.tier or self.action_type or self.customer)

    def describe(self) -> str:
        parts = []
        if self.action_type:
            parts.append(f"type {KINDS[self.action_type]}")
        if self.tier:
            parts.append(f"tier {self.tier}")
        if self.customer:
            parts.append(f"customer name containing “{self.customer}”")
        return ", ".join(parts)

    def conditions(self, now: dt.datetime) -> list[sa.ColumnElement[bool]]:
        where = [pa.action_type != "workflow_envelope", view_condition(self.view, now)]
        if self.tier:
            where.append(pa.tier == int(self.tier))
        if self.action_type:
            where.append(pa.action_type == self.action_type)
        if self.customer:
            where.append(
                sa.func.lower(customers.c.customer_name).contains(
                    self.customer.lower(), autoescape=True
                )
            )
        return where


def _rows_query() -> sa.Select:
    ta = tier_assignments.c
    return sa.select(
        proposed_actions,
        customers.c.customer_name,
        ta.target_tier,
        ta.last_applied_tier,
    ).select_from(
        proposed_actions.outerjoin(customers, customers.c.customer_id == pa.customer_id).outerjoin(
            tier_assignments, sa.and_(ta.as_of == pa.as_of, ta.customer_id == pa.customer_id)
        )
    )


def _count(connection: sa.Connection, where: list[sa.ColumnElement[bool]]) -> int:
    return connection.execute(
        sa.select(sa.func.count())
        .select_from(
            proposed_actions.outerjoin(customers, customers.c.customer_id == pa.customer_id)
        )
        .where(*where)
    ).scalar_one()


def _order(view: str) -> tuple[Any, ...]:
    if view == "pending":  # newest run first; a customer's letter, e-mail and hold together
        return (pa.as_of.desc(), customers.c.customer_name.asc().nulls_last(), pa.customer_id,
                pa.action_type, pa.action_id)  # fmt: skip
    if view == "history":
        return (
            sa.func.coalesce(pa.resolved_at, pa.applied_at, pa.decided_at).desc().nulls_last(),
            pa.proposed_at.desc(),
            pa.action_id.desc(),
        )
    # waiting and attention: the longest waiting first
    return (sa.func.coalesce(pa.claimed_at, pa.decided_at).asc().nulls_first(), pa.action_id)


def page_of_lines(
    connection: sa.Connection, filters: Filters, now: dt.datetime, view: str | None = None
) -> tuple[int, list[Line]]:
    """How many actions the filter matches, and its page of them as lines."""
    view = view or filters.view
    where = [pa.action_type != "workflow_envelope", view_condition(view, now)]
    if view != "history":
        where = filters.conditions(now)
    total = _count(connection, where)
    rows = connection.execute(
        _rows_query()
        .where(*where)
        .order_by(*_order(view))
        .limit(PAGE_SIZE)
        .offset((filters.page - 1) * PAGE_SIZE)
    ).mappings()
    return total, [describe(r, now) for r in rows]


def lines_by_id(connection: sa.Connection, ids: list[int], now: dt.datetime) -> list[Line]:
    """The lines of these actions, in the order given (for a confirmation)."""
    rows = {
        r["action_id"]: describe(r, now)
        for r in connection.execute(_rows_query().where(pa.action_id.in_(ids))).mappings()
    }
    return [rows[i] for i in ids if i in rows]


def envelopes(connection: sa.Connection, ids: set[int]) -> dict[int, Any]:
    return {
        r["action_id"]: r
        for r in connection.execute(
            sa.select(proposed_actions).where(pa.action_id.in_(sorted(ids)))
        ).mappings()
    }


def customers_with_hold_proposed(connection: sa.Connection, customer_ids: set[str]) -> set[str]:
    return set(
        connection.execute(
            sa.select(pa.customer_id).where(
                pa.action_type == "customer_program",
                pa.status == "proposed",
                pa.customer_id.in_(sorted(customer_ids)),
            )
        ).scalars()
    )


# --- a proposal in words ----------------------------------------------------------------------


@dataclass
class Line:
    """One action as a person reads it."""

    action_id: int
    status: str
    action_type: str
    as_of: dt.date
    envelope_id: int | None
    customer_id: str | None
    who: str  # the customer's name (a repair plan: its schedule)
    what: str  # "letter, tier 3 final notice"
    amount: str  # "800.00 EUR", or "" when nothing is owed (a repair plan)
    why: str
    letter: dict[str, Any] | None = None  # subject, body, to, cc, edited_by
    details: list[str] = field(default_factory=list)  # a hold's reason, a plan's problems
    files: list[tuple[str, str]] = field(default_factory=list)  # a plan's runbook JSON files
    row: Any = None  # the database row, for the times and the decision
    stranded: bool = False  # applying for longer than STRANDED_AFTER: a crash left it
    waited: dt.timedelta | None = None  # approved this long ago and not picked up yet
    version: str = ""  # approvals.proposal_version: what a decision on this line binds to

    @property
    def label(self) -> str:
        return f"{self.who} ({self.what})"


def dunnable_by_currency(payload: dict[str, Any]) -> dict[str, int]:
    """Listed overdue amount net of unapplied credit, per currency (as the letter shows it)."""
    credit = payload.get("unapplied_credit_cents") or {}
    return {
        currency: max(0, cents - int(credit.get(currency, 0)))
        for currency, cents in (payload.get("totals_cents") or {}).items()
    }


def _money_list(amounts: dict[str, int], separator: str = "; ") -> str:
    """Amounts of several currencies, never added up: ``1,233.00 EUR; 50.00 USD``."""
    return separator.join(format_money(int(cents), cur) for cur, cents in sorted(amounts.items()))


def _major_amount(major: Any, currency: str) -> str:
    """A threshold in major units (``'25000.00'``) as money in ``currency``."""
    try:
        return format_money(to_minor_units(Decimal(str(major)), currency), currency)
    except (InvalidOperation, ValueError):
        return f"{major} {currency}"


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def why_this_tier(
    payload: dict[str, Any], tier: int, target: int | None, last_applied: int | None
) -> str:
    """Why a letter is at ``tier``: how overdue and how much, which tier that reaches
    (``target`` from tier_assignments), and the one-step-at-a-time rule."""
    days = max((int(i.get("days_overdue", 0)) for i in payload.get("invoices") or []),
               default=None)  # fmt: skip
    due = dunnable_by_currency(payload)
    owed = _money_list({c: v for c, v in due.items() if v}, " and ") or "nothing"
    head = f"{_days(days)} overdue, {owed} due" if days is not None else f"{owed} due"
    broken = payload.get("broken_promise")
    if broken:  # the broken promise, not the days and amount, called for this step
        after = f"tier {last_applied}" if last_applied else "no letter yet"
        return (f"{head}; broken promise: {broken_promise_in_words(broken)} The next step "
                f"after {after}, cooldown or not")  # fmt: skip
    rule = payload.get("tier_rule") or {}
    currency = next(iter(sorted(due)), "EUR")
    rule_text = (
        f"tier {tier} from {_days(int(rule['min_days_overdue']))} and "
        f"{_major_amount(rule['min_dunnable'], currency)}"
        if rule
        else f"tier {tier}"
    )
    if target is None:  # no tiering row for the day (an older run): say the tier's rule only
        return f"{head} ({rule_text})"
    reach = f"enough for tier {target}" if target > tier else rule_text
    if last_applied is None:
        step = "first letter for this debt"
        if target > tier:
            step += ", and letters go one step at a time"
    else:
        step = f"one step after tier {last_applied}, the last letter sent"
    return f"{head} ({reach}); {step}"


_HOLD_RULE = re.compile(r"^Over (\d+) days overdue with more than ([0-9.]+) open")


def hold_reason(payload: dict[str, Any]) -> tuple[str, str]:
    """A proposed service hold's amount and why, with the threshold in each currency.

    The staged reason names the threshold in plain digits (``more than 25000.00 open``); it is
    read back and written as money of each currency."""
    currencies = payload.get("currencies") or []
    amount = _money_list({c["currency"]: c["open_cents"] for c in currencies})
    match = _HOLD_RULE.match(payload.get("reason") or "")
    if not currencies or match is None:
        return amount, payload.get("reason") or ""
    min_days, min_open = match.groups()
    parts = [
        f"{format_money(c['open_cents'], c['currency'])} open, oldest {c['max_days_overdue']} "
        f"days overdue (a hold is proposed above {min_days} days and "
        f"{_major_amount(min_open, c['currency'])})"
        for c in currencies
    ]
    return amount, "; ".join(parts)


def describe(row: Any, now: dt.datetime) -> Line:
    p = row["edited_payload_json"] or row["payload_json"] or {}
    original = row["payload_json"] or {}
    action_type = row["action_type"]
    tier = row["tier"]
    who = row["customer_name"] or original.get("customer_name") or original.get(
        "schedule_key", "")  # fmt: skip
    kind = KINDS.get(action_type, action_type.replace("_", " "))
    what = kind if tier is None else f"{kind}, tier {tier}"
    if action_type == "collection_action" and original.get("tier_name"):
        what += " " + original["tier_name"].replace("_", " ")
    line = Line(
        action_id=row["action_id"], status=row["status"], action_type=action_type,
        as_of=row["as_of"], envelope_id=row["envelope_id"], customer_id=row["customer_id"],
        who=who, what=what, amount="", why="", row=row,
        stranded=is_stranded(row["status"], row["claimed_at"], now),
        version=proposal_version(row["status"], row["payload_json"], row["edited_payload_json"]),
    )  # fmt: skip
    if row["status"] == "approved" and row["decided_at"] is not None:
        line.waited = now - row["decided_at"]
    if action_type == "customer_program":
        line.amount, line.why = hold_reason(original)
    elif action_type == "service_period_repair":
        line.why = "; ".join(original.get("problems") or []) or original.get("subject", "")
        line.details = ["Approving records your decision; the pipeline changes nothing in "
                        "Alga PSA: the repair is done there."]  # fmt: skip
        if original.get("runbook_helper"):
            line.details.append(f"Runbook helper: {original['runbook_helper']}")
        labels = {"existing": "the schedule's rows (JSON)",
                  "obligation": "the obligation to backfill (JSON)"}  # fmt: skip
        line.files = [
            (part, labels[part]) for part, key in RUNBOOK_FILES.items() if key in original
        ]
        line.letter = {"subject": original.get("subject", ""), "body": original.get("body", ""),
                       "to": [], "cc": []}  # fmt: skip
    else:
        line.amount = _money_list({c: v for c, v in dunnable_by_currency(original).items()})
        line.why = why_this_tier(original, tier or 0, row["target_tier"],
                                 row["last_applied_tier"])  # fmt: skip
        line.letter = {
            "subject": p.get("subject", ""), "body": p.get("body", ""),
            "to": p.get("to") or [], "cc": p.get("cc") or [],
            "to_source": recipient_label(original.get("to_source")),
            "edited_by": p.get("edited_by") if row["edited_payload_json"] else None,
        }  # fmt: skip
        if original.get("broken_promise"):
            line.details.append(
                f"Broken promise: {broken_promise_in_words(original['broken_promise'])}"
            )
    return line


def _duration(span: dt.timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} minutes"
    hours = minutes // 60
    return f"{hours} hours" if hours < 48 else f"{hours // 24} days"


def outcome_in_words(line: Line) -> str:
    """What became of an action, for the waiting, attention and history views."""
    r = line.row
    at = "%Y-%m-%d %H:%M UTC"
    status = line.status
    if status == "approved":
        who = f" by {r['decided_by']}" if r["decided_by"] else ""
        when = f" at {r['decided_at']:{at}}" if r["decided_at"] else ""
        does = "sets it" if line.action_type == "customer_program" else "sends it"
        if line.waited is not None and line.waited > SENSOR_RETRY:
            return (f"approved{who}{when}; not picked up after {_duration(line.waited)}: is the "
                    "Dagster daemon (its approval sensor) running?")  # fmt: skip
        return f"approved{who}{when}; the apply job {does} shortly"
    if status == "applying":
        since = f"{r['claimed_at']:{at}}" if r["claimed_at"] else "an unknown time"
        if line.stranded:
            return f"stuck while sending since {since}: outcome unknown"
        return f"being sent since {since}"
    if status == "applied":
        text = f"sent {r['applied_at']:{at}}" if r["applied_at"] else "sent"
        if line.action_type == "customer_program":
            text = "hold set" + (f" {r['applied_at']:{at}}" if r["applied_at"] else "")
        if r["resolution"] == "delivered":
            text += f"; recorded as delivered by {r['resolved_by']}"
        return text
    if status == "failed":
        return f"not sent: {r['last_error'] or 'no reason recorded'}"
    if status == "unconfirmed":
        return f"outcome unknown: {r['last_error'] or 'the mail server never answered'}"
    if status == "superseded":
        return f"not needed any more: {r['superseded_reason'] or 'a newer proposal replaced it'}"
    if status == "rejected":
        return f"rejected: {r['decision_reason'] or ''}".rstrip(": ")
    return status


ACTION_TYPE_CHOICES = [(t, KINDS[t]) for t in ACTION_TYPES if t in KINDS]
