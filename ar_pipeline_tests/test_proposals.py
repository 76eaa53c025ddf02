"""Staging through the daily job, on both databases; expectations worked out by hand.

As of 2026-03-31 (build_dunning_ledger):
  A  800.00 due 2026-01-20: 11 + 28 + 31 = 70 days -> target tier 4; tier 2 applied 2026-03-01
     (after the due date: same episode; 30 days ago > 7-day cooldown) -> propose tier 3, the
     final notice, which involves the sales rep -> a letter and an e-mail on the rep's behalf
  B  50.00 at 30 days -> target 2 (tier 3 needs 100.00) -> tier 1, but no billing e-mail
  H  30,000.00 at 120 days -> tier 1 letter, and a service hold (> 90 days, > 25,000.00 open)
  D  the same as H but already on hold -> tier 1 letter only
"""

import datetime as dt
import hashlib
import json

import dagster as dg
import pytest
import sqlalchemy as sa

from ar_pipeline.definitions import build_definitions
from ar_pipeline.defs.runs import run_daily_job
from ar_pipeline.rules.drafts import OverdueInvoice
from ar_pipeline.rules.proposals import (
    _INVOICES,
    _fingerprint,
    _fingerprint_invoices_json,
    _payload_invoices_json,
    letter_fingerprint,
    verify_staging,
)
from ar_pipeline.settings import load_settings
from ar_pipeline.store.database import bulk_insert
from ar_pipeline.store.schema import proposed_actions, tier_assignments
from ar_pipeline_tests.ledger_builder import (
    add_customer,
    add_invoice,
    add_payment,
    build_dunning_ledger,
)

AS_OF = dt.date(2026, 3, 31)


def run_job(database_url, tmp_path, as_of=AS_OF, env=None):
    settings = load_settings(
        {"AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path), **(env or {})}
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_daily_job(build_definitions(settings), as_of, instance)
    assert result.success
    return result


def actions(engine, **where):
    pa = proposed_actions.c
    query = sa.select(proposed_actions).order_by(pa.action_type, pa.customer_id, pa.action_id)
    for column, value in where.items():
        query = query.where(pa[column] == value)
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(query).mappings()]


def summary(rows):
    return [(r["action_type"], r["customer_id"], r["tier"], r["status"]) for r in rows]


def test_stages_each_fan_out_and_sends_nothing(engine, database_url, tmp_path):
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    result = run_job(database_url, tmp_path)
    rows = actions(engine, as_of=AS_OF)
    assert summary(rows) == [
        ("collection_action", "A", 3, "proposed"),
        ("collection_action", "D", 1, "proposed"),
        ("collection_action", "H", 1, "proposed"),
        ("customer_program", "H", None, "proposed"),
        ("email_to_customer", "A", 3, "proposed"),
        ("workflow_envelope", None, None, "proposed"),
    ]
    by_key = {r["idempotency_key"]: r for r in rows}
    envelope = by_key["workflow:ar_aging_action_plan:2026-03-31"]
    assert envelope["run_id"] == result.run_id
    assert all(r["envelope_id"] == envelope["action_id"] for r in rows if r is not envelope)
    assert envelope["payload_json"]["cannot_contact"]["count_by_tier"] == {"tier_1": 1}
    assert envelope["payload_json"]["cannot_contact"]["customers"] == [
        {"customer_id": "B", "customer_name": "Beta Ltd", "tier": 1}
    ]
    assert envelope["payload_json"]["staged"] == {
        "collection_action": {"tier_1": 2, "tier_3": 1},
        "customer_program": {"all": 1},
        "email_to_customer": {"tier_3": 1},
    }

    letter = by_key["collection_action:2026-03-31:A:tier3"]["payload_json"]
    assert letter["to"] == ["ap@alpha.example.com"] and letter["cc"] == []
    assert letter["subject"] == "Final notice before further action"
    assert "  N-A1  due 2026-01-20  800.00 EUR\n" in letter["body"]
    assert "Total overdue: 800.00 EUR\n" in letter["body"]
    assert letter["invoices"] == [
        {"invoice_id": "A1", "invoice_number": "N-A1", "due_date": "2026-01-20",
         "currency": "EUR", "open_cents": 80_000, "days_overdue": 70}
    ]  # fmt: skip
    rep_mail = by_key["email_to_customer:2026-03-31:A:tier3"]["payload_json"]
    assert rep_mail["cc"] == ["rep@sales.example.com"]
    assert rep_mail["reply_to"] == "rep@sales.example.com"
    assert rep_mail["subject"] == "Alpha GmbH: your overdue invoices with us"
    hold = by_key["customer_program:2026-03-31:H"]
    assert hold["program_type"] == "service_hold"
    assert "30,000.00 EUR open, oldest 120 days overdue" in hold["payload_json"]["reason"]

    with engine.connect() as connection:
        check = verify_staging(connection, AS_OF)
    assert check.passed and check.expected == {"tier_1": 3, "tier_3": 1}
    # nothing was sent: the outbox does not even exist
    assert not (tmp_path / "outbox").exists()


def test_rerun_of_the_same_day_stages_nothing_twice(engine, database_url, tmp_path):
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path)
    before = summary(actions(engine, as_of=AS_OF))
    run_job(database_url, tmp_path)
    assert summary(actions(engine, as_of=AS_OF)) == before
    assert len(before) == 6


def test_newer_day_keeps_unchanged_letters_and_supersedes_changed_ones(
    engine, database_url, tmp_path
):
    """Letters are drafted only for what is new (docs/design.md, Tiering). On 04-01 nothing in
    the ledger changed: the four letters of 03-31 (A's letter and rep e-mail, D's and H's
    letters) are still what tiering calls for, so they stay pending as they are and nothing is
    redrafted. The hold's reason states the days overdue (120 -> 121), and each day has its own
    envelope: those are staged anew and supersede the old ones. On 04-02, after a payment from
    A, A's two letters list another amount: redrafted, and the pending ones superseded."""
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path)
    april_1, april_2 = dt.date(2026, 4, 1), dt.date(2026, 4, 2)
    run_job(database_url, tmp_path, as_of=april_1)
    assert summary(actions(engine, as_of=AS_OF)) == [
        ("collection_action", "A", 3, "proposed"),
        ("collection_action", "D", 1, "proposed"),
        ("collection_action", "H", 1, "proposed"),
        ("customer_program", "H", None, "superseded"),
        ("email_to_customer", "A", 3, "proposed"),
        ("workflow_envelope", None, None, "superseded"),
    ]
    new = actions(engine, as_of=april_1)
    assert summary(new) == [
        ("customer_program", "H", None, "proposed"),
        ("workflow_envelope", None, None, "proposed"),
    ]
    assert new[-1]["payload_json"]["carried_over"] == 4
    with engine.connect() as connection:
        assert verify_staging(connection, april_1).passed

    with engine.begin() as connection:
        add_payment(connection, "PA-0401", "A", 10_000, "2026-04-01", "A1")
    run_job(database_url, tmp_path, as_of=april_2)
    old = {(r["action_type"], r["customer_id"]): r for r in actions(engine, as_of=AS_OF)}
    assert old[("collection_action", "A")]["status"] == "superseded"
    assert old[("email_to_customer", "A")]["status"] == "superseded"
    assert "replaced by a newer proposal" in old[("collection_action", "A")]["superseded_reason"]
    assert old[("collection_action", "D")]["status"] == "proposed"
    letter = {
        r["action_type"]: r["payload_json"]
        for r in actions(engine, as_of=april_2, customer_id="A")
    }
    assert "Total overdue: 700.00 EUR\n" in letter["collection_action"]["body"]
    assert set(letter) == {"collection_action", "email_to_customer"}
    with engine.connect() as connection:
        assert verify_staging(connection, april_2).passed


def test_decided_proposals_are_not_superseded(engine, database_url, tmp_path):
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path)
    (h_letter,) = actions(engine, customer_id="H", action_type="collection_action")
    with engine.begin() as connection:
        connection.execute(
            proposed_actions.update()
            .where(proposed_actions.c.action_id == h_letter["action_id"])
            .values(status="approved", decided_by="alice")
        )
    run_job(database_url, tmp_path, as_of=dt.date(2026, 4, 1))
    old = {r["action_id"]: r["status"] for r in actions(engine, as_of=AS_OF)}
    assert old[h_letter["action_id"]] == "approved"


def test_rerun_after_decisions_counts_decided_letters_as_a_record(engine, database_url, tmp_path):
    """The day's letters: A tier 3, D tier 1, H tier 1 (B cannot be contacted). H's letter is
    approved and A's goes out at 10:00 UTC; the day is rerun.
      A: tier 3 applied today; target 4, but tier 3's cooldown (10 days) has not passed ->
         skipped, nothing called for. Its applied letter is a record of the morning, not an
         unexpected letter.
      H: approved, not yet applied: its letter is in flight, so tiering skips it (in_flight)
         and calls for nothing; the approved letter is a record too.
    Expected {tier_1: 2} (B, D), staged the same, nothing unexpected. A letter still
    proposed that nothing calls for is unexpected, as before."""
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path)
    letters = {
        r["customer_id"]: r["action_id"] for r in actions(engine, action_type="collection_action")
    }
    pa = proposed_actions.c
    applied_at = dt.datetime(2026, 3, 31, 10, 0, tzinfo=dt.UTC)
    with engine.begin() as connection:
        connection.execute(
            proposed_actions.update()
            .where(pa.action_id == letters["H"])
            .values(status="approved", decided_by="alice", decided_at=applied_at)
        )
        connection.execute(
            proposed_actions.update()
            .where(pa.action_id == letters["A"])
            .values(status="applied", decided_by="alice", decided_at=applied_at,
                    applied_at=applied_at)
        )  # fmt: skip

    result = run_job(database_url, tmp_path)
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "actions_staged"
    ]
    assert evaluation.passed, evaluation.description
    with engine.connect() as connection:
        check = verify_staging(connection, AS_OF)
    assert (check.expected, check.observed, check.unexpected) == ({"tier_1": 2}, {"tier_1": 2}, 0)
    with engine.connect() as connection:
        skipped = connection.execute(
            sa.select(tier_assignments.c.customer_id, tier_assignments.c.skip_reason).where(
                tier_assignments.c.as_of == AS_OF, tier_assignments.c.skip_reason.is_not(None)
            ).order_by(tier_assignments.c.customer_id)
        ).all()
    assert [tuple(r) for r in skipped] == [("A", "cooldown"), ("H", "in_flight")]

    # a still-proposed letter that nothing called for is unexpected
    with engine.begin() as connection:
        connection.execute(
            proposed_actions.insert().values(
                idempotency_key="collection_action:2026-03-31:A:tier4", as_of=AS_OF,
                action_type="collection_action", customer_id="A", tier=4, status="proposed",
                proposed_at=applied_at, payload_json={},
            )
        )  # fmt: skip
    with engine.connect() as connection:
        check = verify_staging(connection, AS_OF)
    assert check.unexpected == 1 and not check.passed


# A's letter and rep e-mail as letter_fingerprint hashes them: sorted keys, no spaces, invoices
# without days overdue. Written out by hand; the two digests below are also what the code
# before the fast staging path (one serialization per row) stored, so letters pending from a
# day staged by it are still recognised as unchanged.
A_LETTER_MATERIAL = (
    '{"action_type":"collection_action","customer_name":"Alpha GmbH","invoices":[{"currency":'
    '"EUR","due_date":"2026-01-20","invoice_id":"A1","invoice_number":"N-A1","open_cents":80000}]'
    ',"template":"final_notice","tier":3,"tier_name":"final_notice","tier_rule":{"min_days_overdue'
    '":30,"min_dunnable":"100.00"},"to":["ap@alpha.example.com"],"to_source":"billing_email",'
    '"totals_cents":{"EUR":80000},"unapplied_credit_cents":{}}'
)
A_EMAIL_MATERIAL = (
    '{"action_type":"email_to_customer","cc":["rep@sales.example.com"],"customer_name":'
    '"Alpha GmbH","invoices":[{"currency":"EUR","due_date":"2026-01-20","invoice_id":"A1",'
    '"invoice_number":"N-A1","open_cents":80000}],"template":"sales_rep_email","tier":3,'
    '"tier_name":"final_notice","tier_rule":{"min_days_overdue":30,"min_dunnable":"100.00"},'
    '"to":["ap@alpha.example.com"],"to_source":"billing_email","totals_cents":{"EUR":80000},'
    '"unapplied_credit_cents":{}}'
)


def test_fingerprints_and_payload_text_are_those_of_the_documented_serialization(
    engine, database_url, tmp_path
):
    """The fingerprint is sha256 of the letter's inputs as sorted compact JSON, and the stored
    payload is its ``json.dumps`` text (default separators, in the payload's key order)."""
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path)
    pa = proposed_actions.c
    with engine.connect() as connection:
        stored = dict(
            connection.execute(
                sa.select(pa.action_type, sa.cast(pa.payload_json, sa.Text)).where(
                    pa.customer_id == "A", pa.as_of == AS_OF
                )
            ).all()
        )
    letter_print = hashlib.sha256(A_LETTER_MATERIAL.encode()).hexdigest()
    email_print = hashlib.sha256(A_EMAIL_MATERIAL.encode()).hexdigest()
    assert letter_print == "8183ded8871cb56c8d7538e138760b6b49e5bb20676236046f31798b9d11afd9"
    assert email_print == "10be41fd96e8bc0cd9af0906882194cadfd171a8452121209e844e04e655cfff"
    assert letter_fingerprint("collection_action", 3, json.loads(A_LETTER_MATERIAL)) == (
        letter_print
    )
    letter_text = (
        '{"to": ["ap@alpha.example.com"], "cc": [], "reply_to": null, "subject": "Final notice '
        'before further action", "body": "Dear Alpha GmbH,\\n\\nthe following invoices remain '
        'unpaid:\\n\\n  N-A1  due 2026-01-20  800.00 EUR\\n\\nTotal overdue: '
        "800.00 EUR\\n\\nUnless we receive payment within 10 days we will have to consider "
        "suspending service.\\nIf you have any questions about these invoices, please reply to "
        "this letter.\\n\\nKind "
        'regards,\\nAccounts Receivable\\n", "template": "final_notice", "customer_name": '
        '"Alpha GmbH", "tier_name": "final_notice", "to_source": "billing_email", "invoices": '
        '[{"invoice_id": "A1", "invoice_number": "N-A1", "due_date": "2026-01-20", "currency": '
        '"EUR", "open_cents": 80000, "days_overdue": 70}], "totals_cents": {"EUR": 80000}, '
        '"unapplied_credit_cents": {}, "tier_rule": {"min_days_overdue": 30, "min_dunnable": '
        f'"100.00"}}, "fingerprint": "{letter_print}"}}'
    )
    assert stored["collection_action"] == letter_text
    assert json.loads(stored["email_to_customer"])["fingerprint"] == email_print
    assert stored["email_to_customer"].startswith(
        '{"to": ["ap@alpha.example.com"], "cc": ["rep@sales.example.com"], "reply_to": '
        '"rep@sales.example.com", "on_behalf_of": "rep@sales.example.com", "subject": "Alpha '
        'GmbH: your overdue invoices with us", "body": "Dear Alpha GmbH,\\n\\nI am writing '
    )


def test_bulk_insert_stores_serialized_json_as_the_json_column_would(engine):
    """``json_text``: the JSON text is stored as it is, the same text the JSON type stores for
    the object, and read back as the object (SQLite's executemany and PostgreSQL's COPY)."""
    pa = proposed_actions.c
    columns = ["idempotency_key", "as_of", "action_type", "status", "proposed_at", "payload_json"]
    now = dt.datetime(2026, 3, 31, 6, 0, tzinfo=dt.UTC)
    payload = {"to": ["a@b.example"], "n": 1, "s": "café\ttab", "none": None}
    text = '{"to": ["a@b.example"], "n": 1, "s": "caf\\u00e9\\ttab", "none": null}'
    with engine.begin() as connection:
        bulk_insert(connection, proposed_actions, columns,
                    [("text", AS_OF, "collection_action", "proposed", now, text)],
                    json_text=("payload_json",))  # fmt: skip
        bulk_insert(connection, proposed_actions, columns,
                    [("object", AS_OF, "collection_action", "proposed", now, payload)])  # fmt: skip
        rows = connection.execute(
            sa.select(pa.idempotency_key, sa.cast(pa.payload_json, sa.Text), pa.payload_json)
            .order_by(pa.idempotency_key)
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [("object", text, payload), ("text", text, payload)]


def test_invoices_are_serialized_as_json_dumps_would():
    """The invoices written directly are the text json.dumps makes of the payload's and of the
    fingerprint's invoices (non-ASCII escaped, a quote escaped)."""
    invoices = [
        OverdueInvoice("I1", 'Nº "7"', dt.date(2026, 1, 20), "EUR", 80_000, 70),
        OverdueInvoice("I2", "N-2", dt.date(2026, 2, 1), "JPY", -5, 0),
    ]
    assert _payload_invoices_json(invoices) == (
        '[{"invoice_id": "I1", "invoice_number": "N\\u00ba \\"7\\"", "due_date": "2026-01-20", '
        '"currency": "EUR", "open_cents": 80000, "days_overdue": 70}, {"invoice_id": "I2", '
        '"invoice_number": "N-2", "due_date": "2026-02-01", "currency": "JPY", "open_cents": -5, '
        '"days_overdue": 0}]'
    )
    assert _fingerprint_invoices_json(invoices) == (
        '[{"currency":"EUR","due_date":"2026-01-20","invoice_id":"I1","invoice_number":'
        '"N\\u00ba \\"7\\"","open_cents":80000},{"currency":"JPY","due_date":"2026-02-01",'
        '"invoice_id":"I2","invoice_number":"N-2","open_cents":-5}]'
    )
    assert _payload_invoices_json([]) == _fingerprint_invoices_json([]) == "[]"
    # a customer name that looks like the marker's key does not take the invoices' place
    inputs = {"customer_name": '"invoices":"x"', "invoices": [i.as_payload() for i in invoices]}
    material = {**inputs, "invoices": _INVOICES, "action_type": "collection_action", "tier": 1}
    assert _fingerprint(material, invoices) == letter_fingerprint("collection_action", 1, inputs)


def test_the_service_hold_weighs_what_is_owed_and_not_contested(engine, database_url, tmp_path):
    """Every customer is more than 90 days overdue (the hold's days rule); the amount rule
    (more than 25,000.00 EUR) weighs open cents neither disputed nor held, less credit:
    S: S1 30,000.00 at 120 days, 30,000.00 cash on account: owes 0 -> no hold;
    X: X1 30,000.00 at 120 days, disputed: contests all of it -> no hold;
    Y: Y1 30,000.00 disputed and on a hold, Y2 30,000.00 at 120 days: owes 30,000.00 -> hold
       for 30,000.00 (the disputed, held invoice is left out once, not twice);
    Z: Z1 20,000.00 at 120 days, Z2 10,000.00 not yet due: owes 30,000.00 -> hold (an invoice
       not yet due is still owed)."""
    from ar_pipeline.actions.levers import record_hold

    with engine.begin() as connection:
        for customer_id in "SXYZ":
            add_customer(connection, customer_id, f"Customer {customer_id}",
                         email=f"ap@{customer_id.lower()}.example.com")  # fmt: skip
        add_invoice(connection, "S1", "S", 3_000_000, "2025-11-01", "2025-12-01")
        add_payment(connection, "PS", "S", 3_000_000, "2026-03-20")
        add_invoice(connection, "X1", "X", 3_000_000, "2025-11-01", "2025-12-01", disputed=True)
        add_invoice(connection, "Y1", "Y", 3_000_000, "2025-11-01", "2025-12-01", disputed=True)
        add_invoice(connection, "Y2", "Y", 3_000_000, "2025-11-01", "2025-12-01")
        add_invoice(connection, "Z1", "Z", 2_000_000, "2025-11-01", "2025-12-01")
        add_invoice(connection, "Z2", "Z", 1_000_000, "2026-03-15", "2026-04-15")
        record_hold(connection, invoice_id="Y1", reason="dispute", held_until=dt.date(2026, 4, 30),
                    recorded_by="carol", today=dt.date(2026, 3, 30),
                    now=dt.datetime(2026, 3, 30, 9, tzinfo=dt.UTC))  # fmt: skip
    run_job(database_url, tmp_path)
    holds = {
        r["customer_id"]: r["payload_json"]["currencies"]
        for r in actions(engine, action_type="customer_program", as_of=AS_OF)
    }
    assert holds == {
        "Y": [{"currency": "EUR", "open_cents": 3_000_000, "max_days_overdue": 120}],
        "Z": [{"currency": "EUR", "open_cents": 3_000_000, "max_days_overdue": 120}],
    }


@pytest.mark.parametrize("paid", [20_000, 15_000], ids=["in full", "in part"])
def test_a_rerun_of_the_day_after_a_payment_leaves_no_stale_letter(
    engine, database_url, tmp_path, paid
):
    """A owes A1 200.00, due 03-01: the 03-31 run stages a reminder for 200.00. A payment dated
    03-31 arrives late and the day is run again. In full: nothing is dunnable, the reminder
    stands down and the staging check passes. In part (150.00): the same tier and key, but a
    letter for 50.00 replaces the one for 200.00, which stands down."""
    with engine.begin() as connection:
        add_customer(connection, "A", "Alpha", email="ap@alpha.example.com")
        add_invoice(connection, "A1", "A", 20_000, "2026-02-01", "2026-03-01")
        # the day's aging has figures besides A's (an invoice not yet due)
        add_customer(connection, "B", "Beta", email="ap@beta.example.com")
        add_invoice(connection, "B1", "B", 10_000, "2026-03-20", "2026-04-20")
    run_job(database_url, tmp_path)
    (first,) = actions(engine, action_type="collection_action")
    with engine.begin() as connection:
        add_payment(connection, "PA", "A", paid, "2026-03-31", "A1")
    result = run_job(database_url, tmp_path)  # asserts the run, its checks included, passed
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["actions_staged"]
    letters = actions(engine, action_type="collection_action")
    old = next(r for r in letters if r["action_id"] == first["action_id"])
    assert old["status"] == "superseded"
    waiting = [r for r in letters if r["status"] == "proposed"]
    if paid == 20_000:
        assert waiting == []
        assert old["superseded_reason"] == (
            "nothing dunnable as of 2026-03-31 (paid, credited or held)")  # fmt: skip
    else:
        (new,) = waiting
        assert new["payload_json"]["totals_cents"] == {"EUR": 5_000}
        assert "  N-A1  due 2026-03-01  50.00 EUR\n" in new["payload_json"]["body"]
        assert old["superseded_reason"] == (
            "redrafted: its figures changed before a rerun of the day")  # fmt: skip
        assert new["idempotency_key"] == "collection_action:2026-03-31:A:tier1"
