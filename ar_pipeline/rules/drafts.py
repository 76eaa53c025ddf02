"""Letters and e-mails drafted from the editable Jinja2 templates in ``ar_pipeline/templates``.

A template's first line is ``Subject: ...``, followed by a blank line and the plain-text body.
Templates render with ``StrictUndefined``: a typo in a template fails the run instead of sending
a letter with a hole in it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jinja2
from jinja2.runtime import new_context

from ar_pipeline.rules.money import format_amount, format_money
from ar_pipeline.rules.tiering import TEMPLATE_SUFFIX, TEMPLATES_DIR

SALES_REP_TEMPLATE = "sales_rep_email"

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # plain-text mail; header safety is enforced when the mail is built
    keep_trailing_newline=True,
)


class OverdueInvoice(NamedTuple):
    """One open item a letter lists (a named tuple: one is made per item, cheaply)."""

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


class LetterLine(dict):  # type: ignore[type-arg]
    """An invoice line as a template sees it: a dict whose keys are also attributes. Jinja
    looks ``inv.open`` up as an attribute first and only then as a key; found as an attribute
    it costs no failed lookup, and the template prints the same text either way."""


def letter_line(line: dict[str, Any]) -> LetterLine:
    made = LetterLine(line)
    made.__dict__ = line  # the same keys and values: an attribute of the line is its key
    return made


def letter_lines(invoices: Sequence[OverdueInvoice]) -> list[LetterLine]:
    """The invoices as the templates list them (``inv.invoice_number``, ``inv.open``, ...)."""
    return [
        letter_line(
            {
                "invoice_number": i.invoice_number,
                "due_date": i.due_date.isoformat(),
                "open": format_amount(i.open_cents, i.currency),
                "currency": i.currency,
                "days_overdue": i.days_overdue,
            }
        )
        for i in invoices
    ]


class Drafter:
    """Renders letters from the templates, each template loaded and compiled once per drafter
    (one drafter per staging run: a template edited between runs is read afresh by the next).
    The text is what ``Template.render`` prints: the same context (the template's globals and
    the letter's values), without copying the globals again for every letter."""

    def __init__(self, environment: jinja2.Environment | None = None) -> None:
        self._environment = environment or _environment
        self._templates: dict[str, tuple[jinja2.Template, dict[str, Any]]] = {}

    def _template(self, template: str) -> tuple[jinja2.Template, dict[str, Any]]:
        loaded = self._templates.get(template)
        if loaded is None:
            compiled = self._environment.get_template(f"{template}{TEMPLATE_SUFFIX}")
            loaded = self._templates[template] = (compiled, dict(compiled.globals))
        return loaded

    def render(self, template: str, **context: object) -> tuple[str, str]:
        """Render ``template`` and split it into (subject, body)."""
        compiled, globals_ = self._template(template)
        environment = self._environment
        # what Template.render does, with the globals merged from a copy made once
        variables = {**globals_, **context}
        ctx = new_context(
            environment, compiled.name, compiled.blocks, variables, True, compiled.globals
        )
        try:
            text = environment.concat(compiled.root_render_func(ctx))  # type: ignore[attr-defined]
        except Exception:
            environment.handle_exception()
        first, _, body = text.partition("\n")
        if not first.startswith("Subject:"):
            raise ValueError(f"template {template!r} must start with a 'Subject:' line")
        return first.removeprefix("Subject:").strip(), body.lstrip("\n")

    def draft(
        self,
        template: str,
        customer_name: str,
        tier_name: str,
        invoices: Sequence[OverdueInvoice],
        credit: Mapping[str, int],
        sales_rep_email: str | None = None,
        broken_promise: Mapping[str, Any] | None = None,
        *,
        lines: Sequence[LetterLine] | None = None,
        totals: Mapping[str, int] | None = None,
    ) -> tuple[str, str]:
        """Subject and body of a dunning letter listing the overdue invoices and their totals;
        ``broken_promise`` (a payload's ``broken_promise``) is stated in the letter when given.
        ``lines`` (:func:`letter_lines`) and ``totals`` (:func:`totals_by_currency`) of the
        same ``invoices`` may be passed when already made, e.g. for a letter and a rep e-mail
        of the same customer."""
        return self.render(
            template,
            customer_name=customer_name,
            tier_name=tier_name,
            sales_rep_email=sales_rep_email or "",
            overdue_count=len(invoices),
            invoices=letter_lines(invoices) if lines is None else lines,
            totals=money_list(totals_by_currency(invoices) if totals is None else totals),
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
