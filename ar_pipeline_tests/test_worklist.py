"""The collector's worklist on a ledger worked out by hand (docs/design.md, Today's calls).

As of D = 2026-06-30 the reference dates are 05-31, 05-01, 04-01, ... Overdue, undisputed items
on them (EUR) and what each settled within 30 days:

=========  =========  =======  ==========  ========================================
reference  invoice    bucket   open        settled by the reference date + 30 days
=========  =========  =======  ==========  ========================================
05-01      A1 (A)     1-30     1,000.00    1,000.00 (paid 05-10)
05-01      B1 (B)     1-30     1,000.00    0
05-01      C1 (C)     1-30     3,000.00    0
05-31      A3 (A)     1-30     2,000.00    2,000.00 (paid 06-10)
05-31      B1 (B)     31-60    1,000.00    0
05-31      C1 (C)     31-60    3,000.00    0
=========  =========  =======  ==========  ========================================

(04-01 has none: everything then was due later.) So on D: rate 1-30 = 3,000/7,000 = 3/7,
rate 31-60 = 0, the currency's share P = 3,000/11,000 = 3/11; 61-90 was never seen, so it
takes P. Payer factors, shrunk by 5 observations: A = ((2 x 1 + 5 x 3/11) / 7) / (3/11) = 37/21;
B and C = ((0 + 5 x 3/11) / 7) / (3/11) = 5/7.

Open on D: A2 300.00 (10 days, 1-30); B1 1,000.00 (76 days, 61-90) and B2 200.00 (1-30);
C1 3,000.00 (61-90); X1 400.00 disputed (not dunnable); U1 500.00 USD (10 days).

* A: 30,000 x 3/7 x 37/21 = 22,653.06 -> 22,653 cents
* B: (100,000 x 3/11 + 20,000 x 3/7) x 5/7 = 25,602.97 -> 25,603
* C: 300,000 x 3/11 x 5/7 = 58,441.56 -> 58,442
* U (USD, no history: rate 1, payer 1): 50,000, which is all it owes
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ar_pipeline.rules import worklist
from ar_pipeline.store.schema import collection_worklist
from ar_pipeline_tests.ledger_builder import (
    add_applied_action,
    add_customer,
    add_invoice,
    add_payment,
)

D = dt.date(2026, 6, 30)
UTC = ZoneInfo("UTC")


def build_ledger(connection: sa.Connection) -> None:
    for customer in ("A", "B", "C", "X", "U"):
        add_customer(connection, customer, f"{customer} Ltd")
    add_invoice(connection, "A1", "A", 100_000, "2026-03-01", "2026-04-15")
    add_payment(connection, "PA1", "A", 100_000, "2026-05-10", "A1")
    add_invoice(connection, "A3", "A", 200_000, "2026-04-01", "2026-05-15")
    add_payment(connection, "PA3", "A", 200_000, "2026-06-10", "A3")
    add_invoice(connection, "A2", "A", 30_000, "2026-05-21", "2026-06-20")
    add_invoice(connection, "B1", "B", 100_000, "2026-03-01", "2026-04-15")
    add_invoice(connection, "B2", "B", 20_000, "2026-05-21", "2026-06-20")
    add_invoice(connection, "C1", "C", 300_000, "2026-03-01", "2026-04-15")
    add_invoice(connection, "X1", "X", 40_000, "2026-05-01", "2026-06-01", disputed=True)
    add_invoice(connection, "U1", "U", 50_000, "2026-05-21", "2026-06-20", currency="USD")


def stored(connection: sa.Connection) -> list[tuple]:
    w = collection_worklist.c
    return [
        tuple(row)
        for row in connection.execute(
            sa.select(w.currency, w.rank, w.customer_id, w.expected_recovery_cents,
                      w.dunnable_cents, w.overdue_cents)
            .where(w.as_of == D)
            .order_by(w.currency, w.rank)
        )
    ]  # fmt: skip


def test_ranked_by_what_a_call_should_recover(engine):
    with engine.begin() as connection:
        build_ledger(connection)
        assert worklist.write_worklist(connection, D, UTC) == 4
    with engine.connect() as connection:
        assert stored(connection) == [
            ("EUR", 1, "C", 58_442, 300_000, 300_000),
            ("EUR", 2, "B", 25_603, 120_000, 120_000),
            ("EUR", 3, "A", 22_653, 30_000, 30_000),
            ("USD", 1, "U", 50_000, 50_000, 50_000),
        ]
        factors = dict(
            connection.execute(
                sa.select(collection_worklist.c.customer_id, collection_worklist.c.payer_factor)
            ).all()
        )
        reasons = dict(
            connection.execute(
                sa.select(collection_worklist.c.customer_id, collection_worklist.c.reason)
            ).all()
        )
    assert factors["A"] == pytest.approx(37 / 21, abs=0.001)
    assert factors["B"] == pytest.approx(5 / 7, abs=0.001)
    assert factors["U"] == 1.0
    assert reasons["A"] == (
        "expect 226.53 EUR of 300.00 EUR dunnable; overdue: 300.00 at 1-30 days (43 % usually "
        "settled within 30 days); settles 1.8x as well as the average customer (pays 26 days "
        "after the due date on average); no contact yet"
    )
    assert "1,000.00 at 61-90 days (27 % usually settled within 30 days)" in reasons["B"]


def test_a_recent_letter_halves_the_expectation(engine):
    """B had a letter 4 days before D: 25,602.97 / 2 = 12,801.48 -> 12,801, below A."""
    with engine.begin() as connection:
        build_ledger(connection)
        add_applied_action(connection, "B", 1, dt.datetime(2026, 6, 26, 9, tzinfo=dt.UTC), "b1")
        worklist.write_worklist(connection, D, UTC)
    with engine.connect() as connection:
        assert [row[:4] for row in stored(connection)] == [
            ("EUR", 1, "C", 58_442),
            ("EUR", 2, "A", 22_653),
            ("EUR", 3, "B", 12_801),
            ("USD", 1, "U", 50_000),
        ]
        (reason,) = connection.execute(
            sa.select(collection_worklist.c.reason).where(collection_worklist.c.customer_id == "B")
        ).scalars()
    assert reason.endswith(
        "last contact: letter (tier 1) 4 day(s) ago, so the expectation is halved to give it time"
    )


def test_a_letter_after_the_date_is_not_seen(engine):
    """As of D, a letter applied on D + 1 did not happen yet."""
    with engine.begin() as connection:
        build_ledger(connection)
        add_applied_action(connection, "B", 1, dt.datetime(2026, 7, 1, 9, tzinfo=dt.UTC), "b1")
        worklist.write_worklist(connection, D, UTC)
    with engine.connect() as connection:
        assert [row[:4] for row in stored(connection)][1] == ("EUR", 2, "B", 25_603)


def test_a_rerun_replaces_the_day(engine):
    with engine.begin() as connection:
        build_ledger(connection)
        worklist.write_worklist(connection, D, UTC)
        add_payment(connection, "PC1", "C", 300_000, "2026-06-30", "C1")
        assert worklist.write_worklist(connection, D, UTC) == 3
    with engine.connect() as connection:
        assert [row[2] for row in stored(connection)] == ["B", "A", "U"]


def test_backtest_against_amount_alone(engine):
    """Mornings 05-31 and 05-01, the top 1 each.

    05-31, rates from the 05-01 observations only: 1-30 = 1,000/5,000 = 0.2 = P (31-60 unseen
    takes P); payer A = ((1 + 5 x 0.2) / 6) / 0.2 = 5/3, B and C = ((0 + 1) / 6) / 0.2 = 5/6.
    A3 200,000 x 0.2 x 5/3 = 66,667 beats C1 300,000 x 0.2 x 5/6 = 50,000: the rule calls A
    (who paid 2,000.00 within 30 days), the amount calls C (who paid nothing).
    05-01, no history yet (rate 1, payer 1): both call C (3,000.00), who paid nothing.
    """
    with engine.begin() as connection:
        build_ledger(connection)
    with engine.connect() as connection:
        results = worklist.backtest(connection, D, mornings=2, top=1)
    # U1 (USD) was not overdue on either morning: no USD list to test
    assert results == [worklist.BacktestResult("EUR", 2, 1, 500_000, 200_000, 600_000, 0)]
    assert results[0].summary() == (
        "EUR: over 2 mornings, the rule's top 1 recovered 2,000.00 EUR within 30 days (40 % of "
        "their overdue), the top 1 by amount alone 0.00 EUR (0 %)"
    )


def test_a_held_invoice_is_not_called_about_and_a_hold_is_a_contact(engine):
    """B1 put on hold (dispute) on 06-25 through 07-31: on D only B2 is left to call about,
    20,000 x 3/7 x 5/7 = 6,122.45, and the hold was recorded 5 days ago (a call), so halved:
    3,061.22 -> 3,061. The rates are unchanged: the hold did not exist on the reference dates."""
    from ar_pipeline.actions.levers import record_hold

    with engine.begin() as connection:
        build_ledger(connection)
        record_hold(
            connection, invoice_id="B1", reason="dispute", held_until=dt.date(2026, 7, 31),
            recorded_by="dora", today=dt.date(2026, 6, 25),
            now=dt.datetime(2026, 6, 25, 10, tzinfo=dt.UTC),
        )  # fmt: skip
        worklist.write_worklist(connection, D, UTC)
    with engine.connect() as connection:
        assert [row for row in stored(connection) if row[2] == "B"] == [
            ("EUR", 3, "B", 3_061, 20_000, 20_000)
        ]
        (reason,) = connection.execute(
            sa.select(collection_worklist.c.reason).where(collection_worklist.c.customer_id == "B")
        ).scalars()
    assert "1,000.00" not in reason
    assert reason.endswith("last contact: hold recorded 5 day(s) ago, so the expectation is "
                           "halved to give it time")  # fmt: skip


def test_a_broken_promise_lowers_the_expectation(engine):
    """C promised on 06-01 to pay 1,000.00 by 06-15 and paid nothing: broken. Promise factor
    (0 + 2) / (1 + 2) = 2/3: 58,441.56 x 2/3 = 38,961.04 -> 38,961, still first. The promise
    held C1 from 06-01 to 06-15 only, so neither D nor the reference dates see it held."""
    from ar_pipeline.actions.levers import record_promise

    with engine.begin() as connection:
        build_ledger(connection)
        record_promise(
            connection, customer_id="C", amount="1000.00", currency="EUR",
            promised_date=dt.date(2026, 6, 15), recorded_by="dora", today=dt.date(2026, 6, 1),
            now=dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC), invoice_ids=["C1"],
        )  # fmt: skip
        worklist.write_worklist(connection, D, UTC)
    with engine.connect() as connection:
        assert stored(connection)[0] == ("EUR", 1, "C", 38_961, 300_000, 300_000)
        (reason, factor) = connection.execute(
            sa.select(collection_worklist.c.reason, collection_worklist.c.promise_factor).where(
                collection_worklist.c.customer_id == "C"
            )
        ).one()
    assert factor == pytest.approx(2 / 3, abs=0.001)
    assert "; promises: 1 broken (expectation x 0.67); last contact: promise recorded 29 " in reason


def test_an_open_promise_takes_the_customer_off_the_list(engine):
    """While C's promise covering C1 is open (through 07-15), C has nothing dunnable."""
    from ar_pipeline.actions.levers import record_promise

    with engine.begin() as connection:
        build_ledger(connection)
        record_promise(
            connection, customer_id="C", amount="3000.00", currency="EUR",
            promised_date=dt.date(2026, 7, 15), recorded_by="dora", today=dt.date(2026, 6, 29),
            now=dt.datetime(2026, 6, 29, 10, tzinfo=dt.UTC), all_overdue=True,
        )  # fmt: skip
        worklist.write_worklist(connection, D, UTC)
    with engine.connect() as connection:
        assert [row[2] for row in stored(connection)] == ["B", "A", "U"]


def test_todays_calls_page(engine):
    """The page lists each currency's ranking with the reason, linking each customer's screen;
    it needs a signed-in user; a malformed day is refused by name."""
    from ar_pipeline_tests.web_client import make_client, sign_in

    with engine.begin() as connection:
        build_ledger(connection)
        worklist.write_worklist(connection, D, UTC)
    client = make_client(engine)
    assert client.get("/calls").status_code == 303  # to the sign-in page
    sign_in(client, "carol")  # anyone who may sign in may see whom to call
    page = client.get("/calls")
    assert page.status_code == 200
    html = page.text
    assert "Worklist of 2026-06-30" in html
    assert html.index('id="call-C"') < html.index('id="call-B"') < html.index('id="call-A"')
    assert '<a href="/customers/C">C Ltd</a>' in html
    assert "584.42 EUR" in html and "3,000.00 EUR" in html
    assert "settles 1.8x as well as the average customer" in html
    assert html.index("<h2>EUR</h2>") < html.index("<h2>USD</h2>")
    assert client.get("/calls?day=2026-06-29").text.count('id="call-') == 0
    # the link opens the customer's screen: open invoices, promises, holds, last steps
    screen = client.get("/customers/C")
    assert screen.status_code == 200 and "C Ltd" in screen.text and "N-C1" in screen.text
    refused = client.get("/calls?day=junk")
    assert refused.status_code == 400 and "day: not a date" in refused.text


def test_the_backtest_caps_the_rule_at_the_dunnable_amount_as_the_list_does(engine):
    """Backtest as of 2026-06-30; the only morning with overdue items is 05-31. P owes PI
    1,000.00 due 05-01 with 900.00 on account since 05-15: dunnable 100.00; Q owes QI 500.00
    due 05-01: dunnable 500.00. No reference date has 30 days behind it by 05-31, so every rate
    and payer factor is 1: the rule expects min(100.00, 1,000.00) = 100.00 from P and 500.00
    from Q. With one customer per morning, the rule's top is Q (500.00 overdue), amount
    alone's is P (1,000.00)."""
    with engine.begin() as connection:
        add_customer(connection, "P", "Pine")
        add_customer(connection, "Q", "Quill")
        add_invoice(connection, "PI", "P", 100_000, "2026-04-01", "2026-05-01")
        add_payment(connection, "PP", "P", 90_000, "2026-05-15")
        add_invoice(connection, "QI", "Q", 50_000, "2026-04-01", "2026-05-01")
        (result,) = worklist.backtest(connection, dt.date(2026, 6, 30), top=1)
    assert (result.currency, result.rule_overdue_cents, result.amount_overdue_cents) == (
        "EUR", 50_000, 100_000)  # fmt: skip
