"""The collector's levers over hand-worked ledgers, on both databases: promises kept, partly kept
and broken (judged the morning after the promised date), an open promise holding the letter,
holds that end or are released, the aging with held items, as-of correctness and validation.

Every date is fixed in the test; the wall clock is never read."""

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from ar_pipeline.actions.levers import (
    LeverRefused,
    cancel_promise,
    record_hold,
    record_promise,
    release_hold,
)
from ar_pipeline.cli import main
from ar_pipeline.rules.aging import aging_by_customer, as_of_dates, as_of_range, write_ar_aging
from ar_pipeline.rules.levers import held_invoices, hold_history, promise_outcomes
from ar_pipeline.store.schema import (
    ar_aging,
    invoice_holds,
    promise_invoices,
    promises_to_pay,
    proposed_actions,
    tier_assignments,
)
from ar_pipeline_tests.ledger_builder import (
    add_applied_action,
    add_customer,
    add_invoice,
    add_payment,
    d,
)
from ar_pipeline_tests.test_cli import cli_env  # noqa: F401 - a fixture
from ar_pipeline_tests.test_proposals import actions, run_job
from ar_pipeline_tests.web_client import Clock, csrf_token, make_client, sign_in

NOW = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
LETTER_0310 = dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)  # the reminder that made them call


def _promise(connection, customer_id, amount, promised, today="2026-03-10", **more):
    return record_promise(
        connection, customer_id=customer_id, amount=amount, currency=more.pop("currency", "EUR"),
        promised_date=d(promised), recorded_by="carol", today=d(today), now=NOW, **more,
    )  # fmt: skip


# The promises ledger. Every customer got a reminder (tier 1) applied on 03-10 and phoned the
# same day; cooldown after tier 1 is 7 days, so on 03-16 it still runs (6 days).
#   K (kept): K1 500.00 due 01-31; promised 500.00 by 03-15 for K1; 500.00 arrives on account on
#     03-15 -> kept (cash on account counts). 03-16: K1 500 open, 500 credit: nothing dunnable.
#   P (partly kept): P1 800.00 due 01-31; promised 800.00 by 03-15; 300.00 paid to P1 on 03-13
#     -> partly kept, 300.00 arrived. 03-16: 500.00 open at 44 days: target tier 3 (>= 30 days,
#     >= 100.00), next step 2, but cooldown (6 < 7 days): no letter. 03-17: 7 days, tier 2.
#   B (broken): B1 600.00 due 01-31; promised 600.00 by 03-15; nothing -> broken. 03-16:
#     the next step after tier 1, at least the target 3: tier 3, cooldown or not.
#   O (open): O1 400.00 due 02-15, no letter yet; on 03-12 promised 400.00 by 03-20 for all
#     overdue (O1). 03-16: O1 29 days overdue would be tier 1, but it is held: no letter.
def build_promises_ledger(connection) -> dict[str, int]:
    for cid, invoice, cents, due in [("K", "K1", 50_000, "2026-01-31"),
                                     ("P", "P1", 80_000, "2026-01-31"),
                                     ("B", "B1", 60_000, "2026-01-31"),
                                     ("O", "O1", 40_000, "2026-02-15")]:  # fmt: skip
        add_customer(connection, cid, f"Customer {cid}", email=f"ap@{cid.lower()}.example.com")
        add_invoice(connection, invoice, cid, cents, "2026-01-01", due)
        if cid != "O":
            add_applied_action(connection, cid, 1, LETTER_0310, f"{cid}-t1")
    add_payment(connection, "PK", "K", 50_000, "2026-03-15")  # on account
    add_payment(connection, "PP", "P", 30_000, "2026-03-13", invoice_id="P1")
    return {
        "K": _promise(connection, "K", "500.00", "2026-03-15", invoice_ids=["K1"]),
        "P": _promise(connection, "P", "800.00", "2026-03-15", invoice_ids=["P1"]),
        "B": _promise(connection, "B", "600", "2026-03-15", invoice_ids=["B1"], note="15th"),
        "O": _promise(connection, "O", "400.00", "2026-03-20", today="2026-03-12",
                      all_overdue=True),
    }  # fmt: skip


def _count(connection, table) -> int:
    return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _outcomes(engine, as_of: str) -> dict[str, tuple[str, int]]:
    with engine.connect() as connection:
        rows = connection.execute(promise_outcomes(d(as_of))).all()
    return {r.customer_id: (r.outcome, int(r.arrived_cents)) for r in rows}


def _letters(engine, as_of: str) -> dict[str, int]:
    return {
        r["customer_id"]: r["tier"]
        for r in actions(engine, as_of=d(as_of), action_type="collection_action")
        if r["status"] == "proposed"
    }


def _decisions(engine, as_of: str) -> dict[str, tuple]:
    ta = tier_assignments.c
    with engine.connect() as connection:
        rows = connection.execute(sa.select(tier_assignments).where(ta.as_of == d(as_of))).all()
    return {r.customer_id: (r.proposed_tier, r.skip_reason, r.broken_promise_id) for r in rows}


def test_kept_partly_kept_and_broken_promises_the_morning_after(engine, database_url, tmp_path):
    with engine.begin() as connection:
        ids = build_promises_ledger(connection)
        covered = connection.execute(
            sa.select(promise_invoices.c.invoice_id).where(
                promise_invoices.c.promise_id == ids["O"]
            )
        ).scalars().all()
    assert covered == ["O1"]  # "all overdue" lists what was overdue that day

    # 03-15, the promised date: every promise still open, every invoice held, no letter
    assert _outcomes(engine, "2026-03-15") == {
        "K": ("open", 50_000), "P": ("open", 30_000), "B": ("open", 0), "O": ("open", 0),
    }  # fmt: skip
    run_job(database_url, tmp_path, as_of=d("2026-03-15"))
    assert _letters(engine, "2026-03-15") == {}
    with engine.connect() as connection:
        b = connection.execute(
            sa.select(ar_aging).where(
                ar_aging.c.as_of == d("2026-03-15"), ar_aging.c.customer_id == "B"
            )
        ).one()
    # B1 600.00 at 43 days: aged, in the totals and the bucket, held, not dunnable
    assert (b.total_open_cents, b.days_31_60_cents, b.held_cents, b.dunnable_cents) == (
        60_000, 60_000, 60_000, 0,
    )  # fmt: skip

    # 03-16, the morning after: judged; only the broken promise calls for the next step
    assert _outcomes(engine, "2026-03-16") == {
        "K": ("kept", 50_000), "P": ("partly_kept", 30_000), "B": ("broken", 0),
        "O": ("open", 0),
    }  # fmt: skip
    run_job(database_url, tmp_path, as_of=d("2026-03-16"))
    assert _letters(engine, "2026-03-16") == {"B": 3}
    assert _decisions(engine, "2026-03-16") == {
        "P": (None, "cooldown", None),
        "B": (3, None, ids["B"]),
    }  # K: nothing dunnable (500.00 on account); O: held
    (letter,) = actions(engine, as_of=d("2026-03-16"), action_type="collection_action")
    payload = letter["payload_json"]
    assert "You promised to pay 600.00 EUR by 2026-03-15; we received 0.00 EUR by then." in (
        payload["body"]
    )
    assert payload["broken_promise"] == {
        "promise_id": ids["B"], "currency": "EUR", "amount_cents": 60_000,
        "promised_date": "2026-03-15", "arrived_cents": 0, "recorded_on": "2026-03-10",
        "recorded_by": "carol",
    }  # fmt: skip
    assert [i["invoice_id"] for i in payload["invoices"]] == ["B1"]
    client = make_client(engine)
    sign_in(client, "alice")
    page = " ".join(client.get("/proposals").text.split())
    assert ('broken promise: You promised to pay 600.00 EUR by 2026-03-15; we received 0.00 EUR '
            'by then. The next step after tier 1, cooldown or not') in page  # why this tier
    assert '<a href="/customers/B">Customer B</a>' in page

    # 03-17: P's cooldown is over, the normal rules resume for what it still owes (tier 2);
    # nobody decided on B's letter, so the broken promise still calls for it: the same letter,
    # so 03-16's stays pending as it is (only what is new is drafted)
    run_job(database_url, tmp_path, as_of=d("2026-03-17"))
    assert _decisions(engine, "2026-03-17")["B"] == (3, None, ids["B"])
    assert _letters(engine, "2026-03-17") == {"P": 2}
    assert _letters(engine, "2026-03-16") == {"B": 3}
    assert "broken_promise" not in next(
        r for r in actions(engine, as_of=d("2026-03-17"), customer_id="P")
        if r["action_type"] == "collection_action"
    )["payload_json"]  # fmt: skip


def test_a_decided_broken_promise_letter_ends_the_call(engine, database_url, tmp_path):
    with engine.begin() as connection:
        build_promises_ledger(connection)
    run_job(database_url, tmp_path, as_of=d("2026-03-16"))
    (letter,) = actions(engine, as_of=d("2026-03-16"), action_type="collection_action")
    with engine.begin() as connection:
        from ar_pipeline.store.schema import proposed_actions as pa

        connection.execute(
            pa.update().where(pa.c.action_id == letter["action_id"])
            .values(status="rejected", decided_by="alice", decided_at=NOW, decision_reason="no")
        )  # fmt: skip
    run_job(database_url, tmp_path, as_of=d("2026-03-17"))
    # B: normal rules again: tier 1 applied 03-10, 7 days: the next step, 2
    assert _decisions(engine, "2026-03-17")["B"] == (2, None, None)


def test_an_open_promise_holds_the_letter_and_a_cancelled_one_does_not(engine):
    with engine.begin() as connection:
        ids = build_promises_ledger(connection)
        cancel_promise(connection, ids["O"], cancelled_by="carol", today=d("2026-03-14"), now=NOW)
    with engine.connect() as connection:
        rows = connection.execute(
            aging_by_customer(as_of_range(d("2026-03-13"), d("2026-03-14")), only=["O"])
        ).all()
    # O1 400.00: held on 03-13 (the promise is open), not on 03-14 (cancelled that day)
    assert {(r.as_of, r.held_cents, r.dunnable_cents) for r in rows} == {
        (d("2026-03-13"), 40_000, 0), (d("2026-03-14"), 0, 40_000),
    }  # fmt: skip
    assert _outcomes(engine, "2026-03-14")["O"] == ("cancelled", 0)
    assert _outcomes(engine, "2026-03-13")["O"] == ("open", 0)  # as it stood then


# H1 300.00 due 02-01 (47 days overdue on 03-20); held for an audit from 03-10 through 03-20
def _held_ledger(connection, **hold) -> int:
    add_customer(connection, "H", "Held AG", email="ap@h.example.com")
    add_invoice(connection, "H1", "H", 30_000, "2026-01-02", "2026-02-01")
    add_invoice(connection, "H2", "H", 5_000, "2026-02-02", "2026-03-04")  # not held
    return record_hold(
        connection, invoice_id="H1", reason="audit", held_until=d("2026-03-20"),
        recorded_by="carol", today=d(hold.pop("today", "2026-03-10")), now=NOW, **hold,
    )  # fmt: skip


def test_a_hold_ends_and_the_invoice_is_dunned_again_the_day_after(engine, database_url, tmp_path):
    with engine.begin() as connection:
        _held_ledger(connection)
        write_ar_aging(connection, d("2026-03-20"))
        row = connection.execute(
            sa.select(ar_aging).where(ar_aging.c.as_of == d("2026-03-20"))
        ).one()
    # H1 300.00 at 47 days (31_60) and H2 50.00 at 16 days (1_30): both aged and in the
    # totals; H1 held; dunnable H2 only
    assert (row.total_open_cents, row.overdue_cents, row.days_31_60_cents,
            row.days_1_30_cents, row.held_cents, row.dunnable_cents) == (
        35_000, 35_000, 30_000, 5_000, 30_000, 5_000,
    )  # fmt: skip
    run_job(database_url, tmp_path, as_of=d("2026-03-20"))
    letter = actions(engine, as_of=d("2026-03-20"), action_type="collection_action")[0]
    # H2 alone: 50.00 at 16 days -> tier 2's days, tier 1 first (one step at a time)
    assert letter["tier"] == 1
    assert [i["invoice_id"] for i in letter["payload_json"]["invoices"]] == ["H2"]
    run_job(database_url, tmp_path, as_of=d("2026-03-21"))
    letter = actions(engine, as_of=d("2026-03-21"), action_type="collection_action")[0]
    assert [i["invoice_id"] for i in letter["payload_json"]["invoices"]] == ["H1", "H2"]
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(ar_aging).where(ar_aging.c.as_of == d("2026-03-21"))
        ).one()
    assert (row.held_cents, row.dunnable_cents) == (0, 35_000)


def test_a_past_date_does_not_see_a_hold_recorded_later(engine):
    with engine.begin() as connection:
        # recorded on 03-15, back-dated to hold from 03-01: it counts from 03-15 only
        hold_id = _held_ledger(connection, today="2026-03-15", held_from=d("2026-03-01"))
    with engine.connect() as connection:
        rows = connection.execute(
            aging_by_customer(as_of_dates([d("2026-03-10"), d("2026-03-15")]))
        ).all()
        reasons = connection.execute(held_invoices(as_of_dates([d("2026-03-15")]))).all()
        states = {
            day: connection.execute(hold_history(d(day))).all()
            for day in ("2026-03-14", "2026-03-15", "2026-03-21")
        }
    # 03-10: H1 30 days + H2 6 days overdue, nothing held; 03-15: H1 held
    assert {(r.as_of, r.held_cents, r.dunnable_cents) for r in rows} == {
        (d("2026-03-10"), 0, 35_000), (d("2026-03-15"), 30_000, 5_000),
    }  # fmt: skip
    assert [(r.invoice_id, r.lever, r.lever_id, r.reason, r.held_until) for r in reasons] == [
        ("H1", "hold", hold_id, "audit", d("2026-03-20"))
    ]
    assert states["2026-03-14"] == []  # not recorded yet
    assert states["2026-03-15"][0].state == "in_force"
    assert states["2026-03-21"][0].state == "ended"


def test_a_released_hold(engine):
    with engine.begin() as connection:
        hold_id = _held_ledger(connection)
        release_hold(connection, hold_id, released_by="dave", today=d("2026-03-14"),
                     now=NOW, note="audit done")  # fmt: skip
        with pytest.raises(LeverRefused, match="^hold: .* already released on 2026-03-14"):
            release_hold(connection, hold_id, released_by="dave", today=d("2026-03-15"), now=NOW)
    with engine.connect() as connection:
        rows = connection.execute(
            aging_by_customer(as_of_range(d("2026-03-13"), d("2026-03-14")))
        ).all()
        hold = connection.execute(sa.select(invoice_holds)).one()
    assert {(r.as_of, r.held_cents) for r in rows} == {(d("2026-03-13"), 30_000),
                                                        (d("2026-03-14"), 0)}  # fmt: skip
    assert (hold.released_by, hold.release_note, hold.released_on) == (
        "dave", "audit done", d("2026-03-14"),
    )  # fmt: skip


def test_what_arrived_for_a_promise(engine):
    """Payments in the promise's currency from the day it was recorded through the promised
    date, naming a covered invoice or on account; not earlier, later, elsewhere or in another
    currency. A payment loaded late but dated by the promised date counts."""
    with engine.begin() as connection:
        add_customer(connection, "M")
        add_invoice(connection, "M1", "M", 100_000, "2026-01-01", "2026-01-31")
        add_invoice(connection, "M2", "M", 100_000, "2026-01-01", "2026-01-31")  # not covered
        add_invoice(connection, "MU", "M", 100_000, "2026-01-01", "2026-01-31", currency="USD")
        promise_id = _promise(connection, "M", "1000.00", "2026-03-15", invoice_ids=["M1"])
        add_payment(connection, "early", "M", 10_000, "2026-03-09", invoice_id="M1")  # before
        add_payment(connection, "m1", "M", 20_000, "2026-03-10", invoice_id="M1")  # counts
        add_payment(connection, "acct", "M", 5_000, "2026-03-12")  # on account: counts
        add_payment(connection, "m2", "M", 40_000, "2026-03-12", invoice_id="M2")  # not covered
        add_payment(connection, "usd", "M", 40_000, "2026-03-12", currency="USD")  # USD
        add_payment(connection, "late", "M", 40_000, "2026-03-16", invoice_id="M1")  # late
    assert _outcomes(engine, "2026-03-16")["M"] == ("partly_kept", 25_000)
    with engine.begin() as connection:  # found in the bank a day later, dated the 15th
        add_payment(connection, "backdated", "M", 75_000, "2026-03-15", invoice_id="M1")
    assert _outcomes(engine, "2026-03-17")["M"] == ("kept", 100_000)
    assert promise_id


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"customer_id": "nobody"}, "customer: unknown customer 'nobody'"),
        ({"invoice_ids": ["X9"]}, "invoice: unknown invoice 'X9'"),
        ({"invoice_ids": ["Z1"]}, "invoice: Z1 is an invoice of another customer"),
        ({"invoice_ids": ["U1"]}, "currency: invoice U1 is in USD, the promise in EUR"),
        ({"amount": "0"}, "amount: must be more than 0"),
        ({"amount": "-5"}, "amount: must not be negative"),
        ({"amount": "12,00"}, "amount: must be a finite amount"),
        ({"amount": "1.001"}, "amount: EUR has 2 decimal places"),
        ({"currency": "euro"}, "currency: a three-letter ISO 4217 code"),
        ({"promised_date": d("2026-03-09")}, "promised_date: 2026-03-09 is before today"),
        ({"recorded_by": "  "}, "recorded_by: required"),
        ({"invoice_ids": [], "all_overdue": False}, "invoices: name at least one invoice"),
        ({"all_overdue": True}, "invoices: name invoices or choose all overdue, not both"),
    ],
)
def test_a_promise_refused_names_the_field_and_writes_nothing(engine, fields, message):
    with engine.begin() as connection:
        add_customer(connection, "A")
        add_customer(connection, "Z")
        add_invoice(connection, "A1", "A", 10_000, "2026-01-01", "2026-01-31")
        add_invoice(connection, "U1", "A", 10_000, "2026-01-01", "2026-01-31", currency="USD")
        add_invoice(connection, "Z1", "Z", 10_000, "2026-01-01", "2026-01-31")
    arguments = {
        "customer_id": "A", "amount": "100.00", "currency": "EUR",
        "promised_date": d("2026-03-15"), "recorded_by": "carol", "today": d("2026-03-10"),
        "now": NOW, "invoice_ids": ["A1"], **fields,
    }  # fmt: skip
    with pytest.raises(LeverRefused) as refused, engine.begin() as connection:
        record_promise(connection, **arguments)
    assert str(refused.value).startswith(message)
    with engine.connect() as connection:
        assert _count(connection, promises_to_pay) == _count(connection, promise_invoices) == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"invoice_id": "X9"}, "invoice: unknown invoice 'X9'"),
        ({"reason": "bored"}, "reason: unknown reason 'bored'; one of dispute, audit"),
        ({"held_until": d("2026-03-11"), "held_from": d("2026-03-12")},
         "held_until: 2026-03-11 is before held_from (2026-03-12)"),
        ({"held_until": d("2026-03-09"), "held_from": d("2026-03-01")},
         "held_until: 2026-03-09 is before today (2026-03-10)"),
        ({"recorded_by": ""}, "recorded_by: required"),
        ({"invoice_id": "AV"}, "invoice: AV is void, not issued"),  # nothing owed to hold
    ],
)  # fmt: skip
def test_a_hold_refused_names_the_field(engine, fields, message):
    with engine.begin() as connection:
        add_customer(connection, "A")
        add_invoice(connection, "A1", "A", 10_000, "2026-01-01", "2026-01-31")
        add_invoice(connection, "AV", "A", 10_000, "2026-01-01", "2026-01-31", status="void")
    arguments = {
        "invoice_id": "A1", "reason": "dispute", "held_until": d("2026-03-20"),
        "recorded_by": "carol", "today": d("2026-03-10"), "now": NOW, **fields,
    }  # fmt: skip
    with pytest.raises(LeverRefused) as refused, engine.begin() as connection:
        record_hold(connection, **arguments)
    assert str(refused.value).startswith(message)
    with engine.connect() as connection:
        assert _count(connection, invoice_holds) == 0


def test_a_judged_promise_cannot_be_cancelled(engine):
    with engine.begin() as connection:
        ids = build_promises_ledger(connection)
        with pytest.raises(LeverRefused, match="^promise: .* was due on 2026-03-15 and has been"):
            cancel_promise(connection, ids["B"], cancelled_by="carol", today=d("2026-03-16"),
                           now=NOW)  # fmt: skip
        with pytest.raises(LeverRefused, match="^promise: no promise 999"):
            cancel_promise(connection, 999, cancelled_by="carol", today=d("2026-03-12"), now=NOW)


@pytest.mark.usefixtures("cli_env")
def test_the_cli_records_lists_and_ends_levers(engine, capsys):
    with engine.begin() as connection:
        build_promises_ledger(connection)
        add_invoice(connection, "B2", "B", 10_000, "2026-01-01", "2026-02-28")
    today = ["--today", "2026-03-12"]
    assert main(["promises", "add", "B", "--amount", "100.00", "--currency", "EUR",
                 "--date", "2026-03-20", "--by", "carol", "--invoice", "B2", *today]) == 0
    assert "Recorded promise 5: B pays 100.00 EUR by 2026-03-20" in capsys.readouterr().out
    refusals = [
        (["promises", "add", "B", "--amount", "1,00", "--currency", "EUR", "--date",
          "2026-03-20", "--by", "carol", "--invoice", "B2", *today], "amount: must be"),
        (["promises", "add", "B", "--amount", "1.00", "--currency", "EUR", "--date",
          "2026-03-20", "--by", "carol", "--invoice", "K1", *today],
         "invoice: K1 is an invoice of another customer"),
        (["promises", "add", "B", "--amount", "1.00", "--currency", "EUR", "--date",
          "2026-03-11", "--by", "carol", "--all-overdue", *today],
         "promised_date: 2026-03-11 is before today (2026-03-12)"),
        (["holds", "add", "B2", "--until", "2026-03-30", "--reason", "lunch", "--by", "carol",
          *today], "reason: unknown reason 'lunch'"),
        (["holds", "release", "77", "--by", "carol", *today], "hold: no hold 77"),
        # listing an unknown customer is a refusal, not an empty list
        (["promises", "list", "NOPE"], "customer: unknown customer 'NOPE'"),
        (["holds", "list", "NOPE"], "customer: unknown customer 'NOPE'"),
    ]  # fmt: skip
    for argv, message in refusals:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"ar-pipeline: error: {message}"), err
        assert err.count("\n") == 1
    assert main(["holds", "add", "B2", "--until", "2026-03-30", "--reason", "dispute",
                 "--by", "carol", "--note", "wrong rate", *today]) == 0  # fmt: skip
    assert "Recorded hold 1: invoice B2 is not dunned through 2026-03-30" in (
        capsys.readouterr().out
    )
    assert main(["holds", "release", "1", "--by", "dave", "--today", "2026-03-14"]) == 0
    assert main(["promises", "cancel", "5", "--by", "dave", "--today", "2026-03-14"]) == 0
    capsys.readouterr()
    assert main(["promises", "list", "B", "--as-of", "2026-03-16"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"5  B\s+100.00 EUR 2026-03-20 cancelled\s+0.00 EUR  2026-03-12 by carol, "
                     r"cancelled 2026-03-14 by dave; B2", out), out  # fmt: skip
    assert re.search(r"3  B\s+600.00 EUR 2026-03-15 broken\s+0.00 EUR  2026-03-10 by carol; "
                     r"B1 \(15th\)", out), out  # fmt: skip
    assert main(["holds", "list", "--as-of", "2026-03-14"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"1  B2\s+B\s+dispute\s+2026-03-12 2026-03-30 released  2026-03-12 by "
                     r"carol; released 2026-03-14 by dave \(wrong rate\)", out), out
    with engine.connect() as connection:  # nothing of the refusals was written
        assert _count(connection, promises_to_pay) == 5
        assert _count(connection, invoice_holds) == 1


def test_the_customer_screen_records_and_ends_levers(engine):
    """Any signed-in account records (carol is no approver); the row keeps the signed-in name;
    a refusal names the field, keeps what was typed and writes nothing; a form needs the CSRF
    token; a form of one customer cannot touch another's rows."""
    with engine.begin() as connection:
        build_promises_ledger(connection)
        add_invoice(connection, "B2", "B", 10_000, "2026-01-01", "2026-02-28")
    clock = Clock()  # 2026-03-31 09:00 UTC: the recording day is 03-31
    client = make_client(engine, clock)
    assert client.get("/customers/B").status_code == 303  # signed in only
    sign_in(client, "carol")
    page = client.get("/customers/B")
    assert page.status_code == 200
    assert "broken: You promised to pay 600.00 EUR by 2026-03-15; we received 0.00 EUR" in page.text
    token = csrf_token(client, "/customers/B")
    assert client.get("/customers/nobody").status_code == 404
    refused = client.post("/customers/B/promise", data={
        "csrf": token, "amount": "12,5", "currency": "EUR", "promised_date": "2026-04-10",
        "invoice": ["B2"], "note": "call back"})  # fmt: skip
    assert refused.status_code == 400
    assert "amount: must be a finite amount" in refused.text
    assert 'value="call back"' in refused.text
    assert client.post("/customers/B/promise", data={
        "amount": "100", "currency": "EUR", "promised_date": "2026-04-10", "invoice": ["B2"],
    }).status_code == 403  # no CSRF token  # fmt: skip
    done = client.post("/customers/B/promise", data={
        "csrf": token, "amount": "100.00", "currency": "EUR", "promised_date": "2026-04-10",
        "invoice": ["B2"], "note": "call back"})  # fmt: skip
    assert (done.status_code, done.headers["location"]) == (303, "/customers/B")
    held = client.post("/customers/B/hold", data={
        "csrf": token, "invoice": "B1", "reason": "audit", "held_until": "2026-04-30"})
    assert held.status_code == 303
    assert "Hold 1 recorded" in client.get("/customers/B").text  # shown once
    other = client.post("/customers/K/hold", data={
        "csrf": token, "invoice": "B1", "reason": "audit", "held_until": "2026-04-30"})
    assert "invoice: B1 is an invoice of another customer" in other.text
    page = client.get("/customers/B").text
    assert re.search(r"held</span> promise to pay until 2026-04-10 \(promise\)", page)
    assert "audit until 2026-04-30 (hold 1)" in page
    with engine.connect() as connection:
        promise = connection.execute(
            sa.select(promises_to_pay).where(promises_to_pay.c.promise_id == 5)
        ).one()
    assert (promise.recorded_by, promise.recorded_on, promise.amount_cents) == (
        "carol", d("2026-03-31"), 10_000,
    )  # fmt: skip
    assert client.post("/customers/K/promises/5/cancel", data={"csrf": token}).status_code == 400
    assert client.post("/customers/B/promises/5/cancel", data={"csrf": token}).status_code == 303
    assert client.post("/customers/B/holds/1/release",
                       data={"csrf": token, "note": "done"}).status_code == 303  # fmt: skip
    page = client.get("/customers/B").text
    assert "cancelled (2026-03-31 by carol)" in page
    assert "released (2026-03-31 by carol: done)" in page


def test_the_trend_shows_what_was_held_each_day(engine):
    """A backfill of 03-09..03-21 over the held ledger: H1 300.00 held from the day the hold was
    recorded (03-10) through its last day (03-20); total open is the same every day."""
    from zoneinfo import ZoneInfo

    from ar_pipeline.rules.trend import write_summary
    from ar_pipeline.store.schema import ar_aging_summary

    with engine.begin() as connection:
        _held_ledger(connection)
        write_summary(connection, d("2026-03-09"), d("2026-03-21"), ZoneInfo("UTC"))
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(ar_aging_summary.c.as_of, ar_aging_summary.c.total_open_cents,
                      ar_aging_summary.c.held_cents)
            .where(ar_aging_summary.c.as_of.in_([d("2026-03-09"), d("2026-03-10"),
                                                 d("2026-03-20"), d("2026-03-21")]))
            .order_by(ar_aging_summary.c.as_of)
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [
        (d("2026-03-09"), 35_000, 0), (d("2026-03-10"), 35_000, 30_000),
        (d("2026-03-20"), 35_000, 30_000), (d("2026-03-21"), 35_000, 0),
    ]  # fmt: skip


def test_revision_0010_keeps_existing_rows_with_nothing_held(database_url):
    """Rows aged before 0010 knew no holds: 0 held; and 0010 goes down and up again."""
    from alembic import command

    from ar_pipeline.store.database import alembic_config, get_engine

    engine = get_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0009")
        add_customer(connection, "A")
        connection.execute(sa.text(
            "INSERT INTO ar_aging (as_of, customer_id, customer_name, currency, total_open_cents, "
            "overdue_cents, current_cents, days_1_30_cents, days_31_60_cents, days_61_90_cents, "
            "days_over_90_cents, disputed_cents, unapplied_credit_cents, net_balance_cents, "
            "dunnable_cents, open_item_count) VALUES ('2026-03-01', 'A', 'A', 'EUR', 100, 100, "
            "0, 100, 0, 0, 0, 0, 0, 100, 100, 1)"
        ))  # fmt: skip
        command.upgrade(alembic_config(connection), "head")
        assert connection.execute(sa.select(ar_aging.c.held_cents)).scalar_one() == 0
        command.downgrade(alembic_config(connection), "0009")
        command.upgrade(alembic_config(connection), "head")
        assert connection.execute(sa.select(ar_aging.c.held_cents)).scalar_one() == 0


# --- the broken-promise step as a pure rule (tiering.assign_tier) ------------------------------

def _broken(by_day, last=None, paused=None, in_flight=None, broken=7, oldest="2026-01-01"):
    from ar_pipeline.rules.tiering import (
        DEFAULT_TIERS,
        CurrencyPosition,
        CustomerPosition,
        assign_tier,
    )

    position = CustomerPosition(
        "C7", [CurrencyPosition("EUR", 0, {n: by_day.get(n, 0) for n in (1, 15, 30, 60)})],
        d(oldest), d(paused) if paused else None, in_flight, broken,
    )  # fmt: skip
    decision = assign_tier(position, last, DEFAULT_TIERS, d("2026-03-31"))
    return (decision.target_tier, decision.proposed_tier, decision.skip_reason,
            decision.broken_promise_id)  # fmt: skip


@pytest.mark.parametrize(
    ("by_day", "last", "kwargs", "expected"),
    [
        # 20 days, 50.00: target 2; no letter yet: the next step is 1... at least the target: 2
        ({1: 5_000, 15: 5_000}, None, {}, (2, 2, None, 7)),
        # tier 1 sent yesterday: cooldown and one step at a time do not hold it back: 2
        ({1: 5_000, 15: 5_000}, (1, "2026-03-30"), {}, (2, 2, None, 7)),
        # tier 2 sent yesterday, target 2: already at tier does not apply: 3
        ({1: 5_000, 15: 5_000}, (2, "2026-03-30"), {}, (2, 3, None, 7)),
        # tier 4 sent: capped at the highest tier, escalation again
        ({1: 90_000, 15: 90_000, 30: 90_000, 60: 90_000}, (4, "2026-03-30"), {},
         (4, 4, None, 7)),
        # 40 days, 200.00: target 3 beyond last + 1 = 2: the target
        ({1: 20_000, 15: 20_000, 30: 20_000}, (1, "2026-03-30"), {}, (3, 3, None, 7)),
        # still: below the minimum, paused, in flight
        ({1: 500}, None, {}, (None, None, "below_minimum", 7)),
        ({1: 5_000, 15: 5_000}, None, {"paused": "2026-04-05"}, (2, None, "paused", 7)),
        ({1: 5_000, 15: 5_000}, (1, "2026-03-20"), {"in_flight": 2}, (2, None, "in_flight", 7)),
        # a letter of an earlier episode does not count: first letter, at least the target
        ({1: 5_000, 15: 5_000}, (3, "2025-12-01"), {}, (2, 2, None, 7)),
        # no broken promise: the normal rules (cooldown after yesterday's tier 1)
        ({1: 5_000, 15: 5_000}, (1, "2026-03-30"), {"broken": None}, (2, None, "cooldown", None)),
    ],
)  # fmt: skip
def test_the_broken_promise_step(by_day, last, kwargs, expected):
    from ar_pipeline.rules.tiering import LastApplied

    applied = LastApplied(last[0], d(last[1])) if last else None
    assert _broken(by_day, applied, **kwargs) == expected


def test_a_letter_staged_before_the_call_stands_down_when_applied(engine, database_url, tmp_path):
    """Alpha's tier 3 letter was staged on 03-31 before Alpha promised to pay everything: if
    someone approves it anyway, the apply job's re-check finds nothing dunnable and stands it
    down."""
    from types import SimpleNamespace

    from ar_pipeline.actions.apply import _tiers_still_met
    from ar_pipeline_tests.ledger_builder import build_dunning_ledger

    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path, as_of=d("2026-03-31"))
    (letter,) = [r for r in actions(engine, as_of=d("2026-03-31"), customer_id="A")
                 if r["action_type"] == "collection_action"]  # fmt: skip
    row = SimpleNamespace(action_id=letter["action_id"], customer_id="A", tier=letter["tier"],
                          payload=letter["payload_json"])  # fmt: skip
    with engine.begin() as connection:
        assert _tiers_still_met(connection, [row], d("2026-04-01")) == {row.action_id: None}
        _promise(connection, "A", "800.00", "2026-04-10", today="2026-03-31", all_overdue=True)
        verdict = _tiers_still_met(connection, [row], d("2026-04-01"))[row.action_id]
    assert verdict.startswith("customer no longer overdue at tier 3 as of 2026-04-01 (paid, "
                              "credited, or its invoices held since approval)")  # fmt: skip


# The service-hold ledger, as of 2026-03-31 (hold at more than 90 days and 25,000.00 open):
#   S1 30,000.00 due 2025-12-01 (120 days overdue) and S2 10,000.00 due 2026-03-20 (11 days):
#   40,000.00 open, the oldest 120 days overdue: a hold is proposed.
#   A hold on S1 (a dispute): 40,000.00 - 30,000.00 = 10,000.00 counted: no hold.
#   A promise open on 03-31 (made 03-25, for S2 only, by 04-15): 30,000.00 still counted, but a
#   customer with an open promise gets no service hold.
def _service_hold_ledger(connection) -> None:
    add_customer(connection, "S", "Steel Works")
    add_invoice(connection, "S1", "S", 3_000_000, "2025-11-01", "2025-12-01")
    add_invoice(connection, "S2", "S", 1_000_000, "2026-02-18", "2026-03-20")


@pytest.mark.parametrize("lever", [None, "hold", "promise"])
def test_a_service_hold_leaves_out_held_invoices_and_promised_customers(
    engine, database_url, tmp_path, lever
):
    with engine.begin() as connection:
        _service_hold_ledger(connection)
        if lever == "hold":
            record_hold(connection, invoice_id="S1", reason="dispute", recorded_by="carol",
                        held_until=d("2026-04-30"), today=d("2026-03-25"), now=NOW)  # fmt: skip
        if lever == "promise":
            _promise(connection, "S", "10000.00", "2026-04-15", today="2026-03-25",
                     invoice_ids=["S2"])  # fmt: skip
    run_job(database_url, tmp_path, as_of=dt.date(2026, 3, 31))
    holds = actions(engine, action_type="customer_program")
    proposed = [(h["customer_id"], h["payload_json"]["currencies"][0]["open_cents"])
                for h in holds]  # fmt: skip
    assert proposed == ([("S", 4_000_000)] if lever is None else [])


def test_a_pending_letter_leaves_the_queue_once_nothing_is_dunnable(
    engine, database_url, tmp_path
):
    """build_dunning_ledger's 03-31 letters stay pending on 04-01 (nothing new to draft), but
    Alpha's is superseded once Alpha promised to pay all its overdue: nothing of Alpha is
    dunnable on 04-01. A letter someone already approved is left to the apply job."""
    from ar_pipeline_tests.ledger_builder import build_dunning_ledger

    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path, as_of=d("2026-03-31"))
    with engine.begin() as connection:
        _promise(connection, "A", "800.00", "2026-04-10", today="2026-03-31", all_overdue=True)
    run_job(database_url, tmp_path, as_of=d("2026-04-01"))
    statuses = {
        (r["action_type"], r["customer_id"]): (r["status"], r["superseded_reason"])
        for r in actions(engine, as_of=d("2026-03-31"))
        if r["action_type"] in ("collection_action", "email_to_customer")
    }
    settled = ("superseded", "nothing dunnable as of 2026-04-01 (paid, credited or held)")
    assert statuses == {
        ("collection_action", "A"): settled,
        ("email_to_customer", "A"): settled,
        ("collection_action", "D"): ("proposed", None),
        ("collection_action", "H"): ("proposed", None),
    }


def test_an_earlier_broken_promise_calls_no_more_once_a_later_ones_letter_was_decided(
    engine, database_url, tmp_path
):
    """Beta owes B1 200.00, due 02-19, never dunned. P1 (recorded 03-10, for 03-20) is broken:
    the 03-21 run proposes a final notice for it, nobody decides. P2 (recorded 03-22, for
    03-24) holds B1 meanwhile, then is broken too: the 03-25 run proposes a final notice for
    P2, which is sent that day. On 03-26 P1 is still within its 7 days and its own letter was
    never decided, but the customer's latest broken promise is P2, whose letter was: the
    normal rules apply. B1 is 35 days overdue (target tier 2) and tier 3 was sent yesterday:
    already at its tier (checked before the cooldown). No escalation."""
    with engine.begin() as connection:
        add_customer(connection, "B", "Beta", email="ap@beta.example.com")
        add_invoice(connection, "B1", "B", 20_000, "2026-01-20", "2026-02-19")
        _promise(connection, "B", "200.00", "2026-03-20", invoice_ids=["B1"])
    run_job(database_url, tmp_path, as_of=d("2026-03-21"))
    with engine.begin() as connection:
        p2 = _promise(connection, "B", "200.00", "2026-03-24", today="2026-03-22",
                      invoice_ids=["B1"])  # fmt: skip
    for day in ("2026-03-22", "2026-03-23", "2026-03-24", "2026-03-25"):
        run_job(database_url, tmp_path, as_of=d(day))
    (notice,) = [r for r in actions(engine, as_of=d("2026-03-25"),
                                    action_type="collection_action")]  # fmt: skip
    assert (notice["tier"], notice["payload_json"]["broken_promise"]["promise_id"]) == (3, p2)
    sent = dt.datetime(2026, 3, 25, 10, tzinfo=dt.UTC)
    with engine.begin() as connection:
        connection.execute(proposed_actions.update().where(
            proposed_actions.c.action_id == notice["action_id"]).values(
            status="applied", decided_by="alice", decided_at=sent, applied_at=sent))  # fmt: skip
    run_job(database_url, tmp_path, as_of=d("2026-03-26"))
    assert _decisions(engine, "2026-03-26")["B"] == (None, "already_at_tier", None)
