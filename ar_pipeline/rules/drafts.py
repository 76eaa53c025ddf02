"""Letters and e-mails drafted from the editable Jinja2 templates in ``ar_pipeline/templates``.

A template's first line is ``Subject: ...``, followed by a blank line and the plain-text body.
Templates render with ``StrictUndefined``: a typo in a template fails the run instead of sending
a letter with a hole in it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2

from ar_pipeline.rules.money import format_amount, format_money
from ar_pipeline.rules.tiering import TEMPLATE_SUFFIX, TEMPLATES_DIR

SALES_REP_TEMPLATE = "sales_rep_email"

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # plain-text mail; header safety is enforced when the mail is built
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class OverdueInvoice:
    invoice_id: str
    invoice_number: str
    due_date: dt.date
    currency: str
    open_cents: int
    days_overdue: int

    def as_payload(self) -> dict[str, object]:
        return {
            "invoice_id": self.invoice_id,
            "invoice_number": self.invoice_number,
            "due_date": self.due_date.isoformat(),
            "currency": self.currency,
            "open_cents": self.open_cents,
            "days_overdue": self.days_overdue,
        }


def totals_by_currency(invoices: Sequence[OverdueInvoice]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for invoice in invoices:
        totals[invoice.currency] = totals.get(invoice.currency, 0) + invoice.open_cents
    return dict(sorted(totals.items()))


def money_list(amounts: Mapping[str, int]) -> str:
    """``{'EUR': 150000, 'USD': 2500}`` -> ``'1,500.00 EUR; 25.00 USD'`` (never one sum)."""
    return "; ".join(format_money(cents, currency) for currency, cents in amounts.items())


def render(template: str, **context: object) -> tuple[str, str]:
    """Render ``template`` and split it into (subject, body)."""
    text = _environment.get_template(f"{template}{TEMPLATE_SUFFIX}").render(**context)
    first, _, body = text.partition("\n")
    if not first.startswith("Subject:"):
        raise ValueError(f"template {template!r} must start with a 'Subject:' line")
    return first.removeprefix("Subject:").strip(), body.lstrip("\n")


def draft_letter(
    template: str,
    customer_name: str,
    tier_name: str,
    invoices: Sequence[OverdueInvoice],
    credit: Mapping[str, int],
    sales_rep_email: str | None = None,
    broken_promise: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """Subject and body of a dunning letter listing the overdue invoices and their totals;
    ``broken_promise`` (a payload's ``broken_promise``) is stated in the letter when given."""
    return render(
        template,
        customer_name=customer_name,
        tier_name=tier_name,
        sales_rep_email=sales_rep_email or "",
        overdue_count=len(invoices),
        invoices=[
            {
                "invoice_number": i.invoice_number,
                "due_date": i.due_date.isoformat(),
                "open": format_amount(i.open_cents, i.currency),
                "currency": i.currency,
                "days_overdue": i.days_overdue,
            }
            for i in invoices
        ],
        totals=money_list(totals_by_currency(invoices)),
        credit=money_list({c: v for c, v in credit.items() if v > 0}),
        broken_promise=broken_promise_in_words(broken_promise) if broken_promise else "",
    )


def broken_promise_in_words(promise: Mapping[str, Any]) -> str:
    """``'You promised to pay 1,200.00 EUR by 2026-03-15; we received 0.00 EUR by then.'``"""
    currency = promise["currency"]
    return (
        f"You promised to pay {format_money(int(promise['amount_cents']), currency)} by "
        f"{promise['promised_date']}; we received "
        f"{format_money(int(promise['arrived_cents']), currency)} by then."
    )
