"""Ledger rows that cannot be right: named by the check ``ledger_sane``, their customers held back
from the day's proposals, everybody else staged as usual; on both databases. Every figure below
is worked out by hand.

As of 2026-03-31 (due 2026-02-09 is 19 + 31 = 50 days overdue), the customers that are fine:
  G  200.00 EUR, paid 02-20 and the payment bounced 03-05 (a reversal of what was paid: fine)
     -> 200.00 open -> tier 1 letter
  B  exactly the bound, 100,000,000,000.00 EUR: large, not insane -> tier 1 letter
  L  100.00 EUR; its wrong rows are dated after the as-of date (a reversal of -50,000.00 on
     04-02, an invoice of 9e18 minor units issued 04-10) -> not named, tier 1 letter
and one kind of corrupt row per case (CASES).
"""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import sqlalchemy as sa

from ar_pipeline.definitions import build_definitions
from ar_pipeline.defs.runs import run_daily_job
from ar_pipeline.rules.aging import aging_by_customer, as_of_dates, write_ar_aging
from ar_pipeline.rules.ledger_sanity import list_findings
from ar_pipeline.rules.proposals import verify_staging
from ar_pipeline.rules.trend import write_summary
from ar_pipeline.settings import load_settings
from ar_pipeline.store.schema import ar_aging, payments, proposed_actions, tier_assignments
from ar_pipeline_tests.ledger_builder import (
    add_credit_note,
    add_customer,
    add_invoice,
    add_payment,
)

AS_OF = dt.date(2026, 3, 31)
BOUND = 10_000_000_000_000  # 100,000,000,000.00 EUR, written out here, not imported
HUGE = 9_000_000_000_000_000_000  # the tester's 9e18 minor units


def add_fine_customers(c: sa.Connection) -> None:
    add_customer(c, "G", "Good Co")
    add_invoice(c, "G1", "G", 20_000, "2026-01-10", "2026-02-09")
    add_payment(c, "G-PAY", "G", 20_000, "2026-02-20", "G1")
    add_payment(c, "G-REV", "G", -20_000, "2026-03-05", "G1")
    add_customer(c, "B", "Big Buyer")
    add_invoice(c, "B1", "B", BOUND, "2026-01-10", "2026-02-09")
    add_customer(c, "L", "Later Ltd")
    add_invoice(c, "L1", "L", 10_000, "2026-01-10", "2026-02-09")
    add_payment(c, "L-REV", "L", -5_000_000, "2026-04-02", "L1")
    add_invoice(c, "L-HUGE", "L", HUGE, "2026-04-10", "2026-05-10")


def reversal(c):
    # the tester's case: nothing paid on a 100.00 invoice, then a "reversal" of -50,000.00;
    # unchecked, the aging showed 100.00 + 50,000.00 = 50,100.00 open
    add_customer(c, "R", "Reversal AG")
    add_invoice(c, "R1", "R", 10_000, "2026-01-10", "2026-02-09")
    add_payment(c, "R-REV", "R", -5_000_000, "2026-03-01", "R1")


def currency(c):
    # 300.00 USD paid against a 300.00 EUR invoice: the invoice stays open, USD credit 300.00
    add_customer(c, "C", "Currency SA")
    add_invoice(c, "C1", "C", 30_000, "2026-01-10", "2026-02-09")
    add_payment(c, "C-USD", "C", 30_000, "2026-02-20", "C1", currency="USD")


def customer(c):
    # N's credit note of 40.00 names K's invoice: N has 60.00 open (due 03-03, 28 days) and
    # 40.00 unapplied credit; K's 500.00 stays open. Both are held back.
    add_customer(c, "K", "Kilo BV")
    add_invoice(c, "K1", "K", 50_000, "2026-01-10", "2026-02-09")
    add_customer(c, "N", "November Oy")
    add_invoice(c, "N1", "N", 6_000, "2026-02-01", "2026-03-03")
    add_credit_note(c, "N-CN", "N", 4_000, "2026-03-10", applies_to="K1")


def huge_invoices(c):
    # two invoices of 9e18 minor units (their sum overflows 64 bits) and a real one of
    # 30,000.00 at 120 days (2025-12-01 -> 31 + 31 + 28 + 30), which alone would earn H a
    # letter and a service hold (> 90 days, > 25,000.00 open)
    add_customer(c, "H", "Huge Holdings")
    add_invoice(c, "H1", "H", HUGE, "2026-01-10", "2026-02-09")
    add_invoice(c, "H2", "H", HUGE, "2026-01-10", "2026-02-09")
    add_invoice(c, "H3", "H", 3_000_000, "2025-11-01", "2025-12-01")


def huge_payment(c):
    # a payment one minor unit below minus the bound: left out, so P1's 70.00 stays open
    add_customer(c, "P", "Payment Plc")
    add_invoice(c, "P1", "P", 7_000, "2026-01-10", "2026-02-09")
    add_payment(c, "P-HUGE", "P", -(BOUND + 1), "2026-02-20", "P1")


def huge_mismatch(c):
    # S's payment beyond the bound names Q's invoice: left out of the aging (Q1's 80.00 stays
    # open, S has no credit) and a customer mismatch all the same, named for both
    add_customer(c, "Q", "Quebec Inc")
    add_invoice(c, "Q1", "Q", 8_000, "2026-01-10", "2026-02-09")
    add_customer(c, "S", "Sierra SpA")
    add_payment(c, "S-HUGE", "S", BOUND + 1, "2026-02-20", "Q1")


R_REASON = (
    "invoice R1: settlements net -50,000.00 EUR, which would leave 50,100.00 EUR open on an "
    "invoice of 100.00 EUR; aged as 100.00 EUR open; payment R-REV: a reversal of -50,000.00 EUR "
    "on invoice R1, where the payments net -50,000.00 EUR: more reversed than paid"
)
H_REASON = "; ".join(
    f"invoice {i}: 90,000,000,000,000,000.00 EUR is beyond the bound of +/- "
    "100,000,000,000.00 EUR; left out of the aging"
    for i in ("H1", "H2")
)

# case -> (builder, findings (customer, reason, row kind, row id), envelope entries
# (customer, name, reason codes, reason), total open per (customer, currency), what each
# customer invoiced (sane invoices issued by the as-of date))
CASES = {
    "reversal_exceeds_paid": (
        reversal,
        [("R", "open_above_amount", "invoice", "R1"),
         ("R", "reversal_exceeds_paid", "payment", "R-REV")],
        [("R", "Reversal AG", ["open_above_amount", "reversal_exceeds_paid"], R_REASON)],
        {("R", "EUR"): 10_000},
        {("R", "EUR"): 10_000},
    ),
    "currency_mismatch": (
        currency,
        [("C", "currency_mismatch", "payment", "C-USD")],
        [("C", "Currency SA", ["currency_mismatch"],
          "payment C-USD: 300.00 USD names invoice C1, which is in EUR")],
        {("C", "EUR"): 30_000, ("C", "USD"): 0},
        {("C", "EUR"): 30_000, ("C", "USD"): 0},
    ),
    "customer_mismatch": (
        customer,
        [("K", "customer_mismatch", "credit_note", "N-CN"),
         ("N", "customer_mismatch", "credit_note", "N-CN")],
        [("K", "Kilo BV", ["customer_mismatch"],
          "credit note N-CN: 40.00 EUR names invoice K1; the row and the invoice belong to "
          "different customers (K and N)"),
         ("N", "November Oy", ["customer_mismatch"],
          "credit note N-CN: 40.00 EUR names invoice K1; the row and the invoice belong to "
          "different customers (N and K)")],
        {("K", "EUR"): 50_000, ("N", "EUR"): 6_000},
        {("K", "EUR"): 50_000, ("N", "EUR"): 6_000},
    ),
    "huge_invoices": (
        huge_invoices,
        [("H", "amount_out_of_bounds", "invoice", "H1"),
         ("H", "amount_out_of_bounds", "invoice", "H2")],
        [("H", "Huge Holdings", ["amount_out_of_bounds"], H_REASON)],
        {("H", "EUR"): 3_000_000},
        {("H", "EUR"): 3_000_000},
    ),
    "huge_payment": (
        huge_payment,
        [("P", "amount_out_of_bounds", "payment", "P-HUGE")],
        [("P", "Payment Plc", ["amount_out_of_bounds"],
          "payment P-HUGE: -100,000,000,000.01 EUR is beyond the bound of +/- "
          "100,000,000,000.00 EUR; left out of the aging")],
        {("P", "EUR"): 7_000},
        {("P", "EUR"): 7_000},
    ),
    "huge_mismatch": (
        huge_mismatch,
        [("Q", "customer_mismatch", "payment", "S-HUGE"),
         ("S", "amount_out_of_bounds", "payment", "S-HUGE"),
         ("S", "customer_mismatch", "payment", "S-HUGE")],
        [("Q", "Quebec Inc", ["customer_mismatch"],
          "payment S-HUGE: 100,000,000,000.01 EUR names invoice Q1; the row and the invoice "
          "belong to different customers (Q and S)"),
         ("S", "Sierra SpA", ["amount_out_of_bounds", "customer_mismatch"],
          "payment S-HUGE: 100,000,000,000.01 EUR is beyond the bound of +/- "
          "100,000,000,000.00 EUR; left out of the aging; payment S-HUGE: 100,000,000,000.01 "
          "EUR names invoice Q1; the row and the invoice belong to different customers "
          "(S and Q)")],
        {("Q", "EUR"): 8_000},
        {("Q", "EUR"): 8_000},
    ),
}  # fmt: skip
FINE_OPEN = {("B", "EUR"): BOUND, ("G", "EUR"): 20_000, ("L", "EUR"): 10_000}


def run_day(database_url, tmp_path, as_of=AS_OF):
    settings = load_settings({"AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path)})
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_daily_job(build_definitions(settings), as_of, instance)
    assert result.success
    return result


def staged(engine, as_of=AS_OF):
    pa = proposed_actions.c
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(pa.action_type, pa.customer_id, pa.tier, pa.status)
            .where(pa.as_of == as_of)
            .order_by(pa.action_type, pa.customer_id, pa.action_id)
        )
        return [tuple(r) for r in rows]


def envelope_payload(engine, as_of=AS_OF):
    pa = proposed_actions.c
    with engine.connect() as connection:
        return connection.execute(
            sa.select(pa.payload_json).where(
                pa.action_type == "workflow_envelope", pa.as_of == as_of
            )
        ).scalar_one()


def open_by_customer(engine, as_of=AS_OF):
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                ar_aging.c.customer_id, ar_aging.c.currency, ar_aging.c.total_open_cents
            ).where(ar_aging.c.as_of == as_of)
        )
        return {(r.customer_id, r.currency): int(r.total_open_cents) for r in rows}


FINE_LETTERS = [
    ("collection_action", "B", 1, "proposed"),
    ("collection_action", "G", 1, "proposed"),
    ("collection_action", "L", 1, "proposed"),
]


@pytest.mark.parametrize("case", sorted(CASES))
def test_corrupt_row_is_named_and_its_customer_held_back(engine, database_url, tmp_path, case):
    build, findings, envelope_entries, aged_open, invoiced = CASES[case]
    with engine.begin() as connection:
        add_fine_customers(connection)
        build(connection)
    result = run_day(database_url, tmp_path)

    # named by the check, ERROR, with counts and a readable list
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    check = checks["ledger_sane"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    metadata = {k: v.value for k, v in check.metadata.items()}
    assert metadata["rows_named"] == len(findings)
    assert metadata["customers_held_back"] == len(envelope_entries)
    reasons = ("amount_out_of_bounds", "reversal_exceeds_paid", "open_above_amount",
               "currency_mismatch", "customer_mismatch")  # fmt: skip
    assert {r: metadata[f"rows_{r}"] for r in reasons} == {
        r: sum(1 for f in findings if f[1] == r) for r in reasons
    }
    assert metadata["amount_bound_minor_units"] == BOUND
    for customer_id, reason, row_kind, row_id in findings:
        assert f"({customer_id}) | {row_kind} {row_id} | {reason} |" in metadata["findings"]
    with engine.connect() as connection:
        found = list_findings(connection, AS_OF)
    assert [(f.customer_id, f.reason, f.row_kind, f.row_id) for f in found] == findings

    # held back: no letter, no e-mail, no hold; listed in the envelope with the reason
    assert staged(engine) == [*FINE_LETTERS, ("workflow_envelope", None, None, "proposed")]
    held = envelope_payload(engine)["held_back"]
    assert held["count"] == len(envelope_entries)
    assert held["heading"].startswith("Held back")
    assert [
        (e["customer_id"], e["customer_name"], e["reasons"], e["reason"]) for e in held["customers"]
    ] == envelope_entries
    with engine.connect() as connection:
        assigned = connection.execute(
            sa.select(tier_assignments.c.customer_id)
            .where(tier_assignments.c.as_of == AS_OF)
            .order_by(tier_assignments.c.customer_id)
        ).scalars()
        assert list(assigned) == ["B", "G", "L"]
        assert verify_staging(connection, AS_OF).passed
    assert checks["actions_staged"].passed

    # the aging: nobody shows more open than was invoiced
    aged = open_by_customer(engine)
    assert aged == {**FINE_OPEN, **aged_open}
    limits = {**FINE_OPEN, **invoiced}
    assert all(cents <= limits[key] for key, cents in aged.items())


def test_rules_read_only_what_counts_as_of_the_date(engine):
    """L's reversal (04-02) and its invoice of 9e18 (04-10) are named from their own dates on;
    G's bounced payment and B's invoice at exactly the bound never are."""
    with engine.begin() as connection:
        add_fine_customers(connection)
    with engine.connect() as connection:

        def named(day):
            return [
                (f.customer_id, f.reason, f.row_id, f.net_cents)
                for f in list_findings(connection, dt.date.fromisoformat(day))
            ]

        assert named("2026-03-31") == []
        assert named("2026-04-02") == [
            ("L", "open_above_amount", "L1", -5_000_000),
            ("L", "reversal_exceeds_paid", "L-REV", -5_000_000),
        ]
        assert named("2026-04-10") == [
            ("L", "amount_out_of_bounds", "L-HUGE", None),
            ("L", "open_above_amount", "L1", -5_000_000),
            ("L", "reversal_exceeds_paid", "L-REV", -5_000_000),
        ]


def test_reversal_within_what_was_paid_is_fine_until_it_exceeds_it(engine):
    """Paid 100.00 and 30.00 on a 100.00 invoice (30.00 overpaid), then reversed 120.00: the
    payments net 10.00, nothing is wrong. A second reversal of 20.00 makes them net -10.00."""
    with engine.begin() as connection:
        add_customer(connection, "Q")
        add_invoice(connection, "Q1", "Q", 10_000, "2026-01-10", "2026-02-09")
        add_payment(connection, "Q-A", "Q", 10_000, "2026-02-01", "Q1")
        add_payment(connection, "Q-B", "Q", 3_000, "2026-02-02", "Q1")
        add_payment(connection, "Q-R1", "Q", -12_000, "2026-02-10", "Q1")
        add_payment(connection, "Q-R2", "Q", -2_000, "2026-03-10", "Q1")
    with engine.connect() as connection:
        assert list_findings(connection, dt.date(2026, 3, 9)) == []
        after = [(f.reason, f.row_id, f.net_cents) for f in list_findings(connection, AS_OF)]
    assert after == [
        ("open_above_amount", "Q1", -1_000),
        ("reversal_exceeds_paid", "Q-R1", -1_000),
        ("reversal_exceeds_paid", "Q-R2", -1_000),
    ]


def test_open_balance_never_exceeds_the_invoice_on_any_day(engine):
    """The one-day and the many-day evaluations of the aging both cap an invoice's open
    balance at its amount: R1 shows 100.00 open before the reversal (02-28) and after it
    (03-31), never 50,100.00; the analyst view shows the same."""
    with engine.begin() as connection:
        add_fine_customers(connection)
        reversal(connection)
        write_ar_aging(connection, AS_OF)
    with engine.connect() as connection:
        days = as_of_dates([dt.date(2026, 2, 28), AS_OF])  # two days: the segments
        rows = connection.execute(aging_by_customer(days, only=["R"])).mappings()
        series = {str(r["as_of"]): (r["total_open_cents"], r["dunnable_cents"]) for r in rows}
        view = connection.execute(
            sa.text("SELECT invoice_id, open_cents FROM v_ar_aging WHERE customer_id = 'R'")
        ).all()
    assert series == {"2026-02-28": (10_000, 10_000), "2026-03-31": (10_000, 10_000)}
    assert [tuple(r) for r in view] == [("R1", 10_000)]
    assert open_by_customer(engine)[("R", "EUR")] == 10_000


def test_trend_of_a_ledger_with_every_corrupt_row(engine):
    """The trend (many-day evaluation, credit sales summed straight from the invoices) neither
    overflows nor counts the rows beyond the bound. EUR open as of 03-31:
    B 10^13 + G 200.00 + L 100.00 + R 100.00 + C 300.00 + K 500.00 + N 60.00 + H 30,000.00
    + P 70.00 + Q 80.00 = 10^13 + 31,410.00. Credit sales over (12-31, 03-31]: B1, G1, L1,
    R1, C1, K1, P1, Q1 on 01-10 and N1 on 02-01 = 10^13 + 1,410.00 (H1 and H2 are left out,
    H3 is older)."""
    with engine.begin() as connection:
        add_fine_customers(connection)
        for build, *_ in CASES.values():
            build(connection)
        rows = write_summary(connection, AS_OF, AS_OF, ZoneInfo("UTC"))
    eur = next(r for r in rows if r["currency"] == "EUR")
    assert eur["total_open_cents"] == BOUND + 3_141_000
    assert eur["credit_sales_3m_cents"] == BOUND + 141_000


def test_held_back_pending_proposals_are_superseded_and_restaged_once_fixed(
    engine, database_url, tmp_path
):
    """R is staged a letter in the morning; a bad reversal arrives and the day is rerun: the
    letter is superseded (nobody approves it) and R is listed as held back. Once the row is
    removed and the day rerun again, R gets a fresh letter. The check passes every time."""
    with engine.begin() as connection:
        add_fine_customers(connection)
        add_customer(connection, "R", "Reversal AG")
        add_invoice(connection, "R1", "R", 10_000, "2026-01-10", "2026-02-09")
    run_day(database_url, tmp_path)
    assert ("collection_action", "R", 1, "proposed") in staged(engine)

    with engine.begin() as connection:
        add_payment(connection, "R-REV", "R", -5_000_000, "2026-03-01", "R1")
    result = run_day(database_url, tmp_path)
    letters = [s for s in staged(engine) if s[1] == "R"]
    assert letters == [("collection_action", "R", 1, "superseded")]
    with engine.connect() as connection:
        reason = connection.execute(
            sa.select(proposed_actions.c.superseded_reason).where(
                proposed_actions.c.customer_id == "R"
            )
        ).scalar_one()
    assert reason.startswith("held back on 2026-03-31")
    assert [c["customer_id"] for c in envelope_payload(engine)["held_back"]["customers"]] == ["R"]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"aging_data_fresh": False, "ledger_sane": False, "actions_staged": True}

    with engine.begin() as connection:
        connection.execute(payments.delete().where(payments.c.payment_id == "R-REV"))
    result = run_day(database_url, tmp_path)
    letters = [s for s in staged(engine) if s[1] == "R"]
    assert letters == [
        ("collection_action", "R", 1, "superseded"),
        ("collection_action", "R", 1, "proposed"),
    ]
    held = envelope_payload(engine)["held_back"]
    assert (held["count"], held["customers"]) == (0, [])
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"aging_data_fresh": False, "ledger_sane": True, "actions_staged": True}


def test_steps_run_for_another_day_review_that_day(engine, database_url, tmp_path):
    """tier_assignments and proposed_actions run on their own for 04-01, after a full run of
    03-31: the review ar_aging handed on is of 03-31, so they review 04-01 themselves. R's
    reversal of 04-01 holds R back on 04-01 only."""
    with engine.begin() as connection:
        add_fine_customers(connection)
        add_customer(connection, "R", "Reversal AG")
        add_invoice(connection, "R1", "R", 10_000, "2026-01-10", "2026-02-09")
        add_payment(connection, "R-REV", "R", -5_000_000, "2026-04-01", "R1")
    settings = load_settings({"AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path)})
    defs = build_definitions(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_daily_job(defs, AS_OF, instance).success
        assert ("collection_action", "R", 1, "proposed") in staged(engine)
        later = defs.resolve_job_def("ar_aging_daily").execute_in_process(
            instance=instance,
            tags={"ar_pipeline/as_of": "2026-04-01"},
            asset_selection=[dg.AssetKey("tier_assignments"), dg.AssetKey("proposed_actions")],
            raise_on_error=False,
        )
    assert later.success
    april = dt.date(2026, 4, 1)
    assert [
        c["customer_id"] for c in envelope_payload(engine, april)["held_back"]["customers"]
    ] == ["R"]
    # R gets no letter and its pending letter of 03-31 is superseded; the others' letters of
    # 03-31 are still pending and unchanged, so they are kept and not drafted again
    assert [s[1] for s in staged(engine, april) if s[0] == "collection_action"] == []
    assert [s[1:] for s in staged(engine) if s[0] == "collection_action"] == [
        ("B", 1, "proposed"), ("G", 1, "proposed"), ("L", 1, "proposed"), ("R", 1, "superseded"),
    ]  # fmt: skip
    assert envelope_payload(engine, april)["carried_over"] == 3
    with engine.connect() as connection:
        reason = connection.execute(
            sa.select(proposed_actions.c.superseded_reason).where(
                proposed_actions.c.customer_id == "R"
            )
        ).scalar_one()
    assert reason.startswith("held back on 2026-04-01")


def test_an_approved_letter_is_not_sent_once_its_ledger_cannot_be_right(
    engine, database_url, tmp_path, smtp_server
):
    """Approved before the bad row arrived: the apply job's last look supersedes it."""
    from ar_pipeline.actions.apply import apply_actions
    from ar_pipeline_tests.ledger_builder import add_payment
    from ar_pipeline_tests.test_apply import HOLDS, mailer_for, status_of
    from ar_pipeline_tests.test_one_step_once import DAY, approved_heavy_letter

    letter = approved_heavy_letter(engine, database_url, tmp_path)
    with engine.begin() as connection:
        add_payment(connection, "H-REV", "H", -5_000_000, "2026-03-31", "H1")
    (outcome,) = apply_actions(engine, mailer_for(smtp_server.port), [letter],
                               approvers={"alice"}, as_of=DAY, hold_policy=HOLDS)  # fmt: skip
    assert outcome.outcome == "superseded"
    assert status_of(engine, letter)["superseded_reason"] == (
        "a row of the customer's ledger cannot be right as of 2026-03-31 (check ledger_sane): "
        "invoice H1: settlements net -50,000.00 EUR, which would leave 80,000.00 EUR open on an "
        "invoice of 30,000.00 EUR; aged as 30,000.00 EUR open"
    )
    assert smtp_server.handler.messages == []


def test_the_page_lists_the_held_back_customers(engine, database_url, tmp_path):
    from ar_pipeline_tests.ledger_builder import add_payment, build_dunning_ledger
    from ar_pipeline_tests.test_proposals import run_job
    from ar_pipeline_tests.web_client import make_client, sign_in

    with engine.begin() as connection:
        build_dunning_ledger(connection)
        add_payment(connection, "H-REV", "H", -5_000_000, "2026-03-30", "H1")
    run_job(database_url, tmp_path, as_of=dt.date(2026, 3, 31))
    client = make_client(engine)
    sign_in(client, "alice")
    page = client.get("/proposals").text
    assert "cannot be right (check ledger_sane); no letter, e-mail or hold until it is put " \
        "right: 1 customer" in page
    assert "Heavy Industries: invoice H1: settlements net -50,000.00 EUR" in page  # a name, no id
