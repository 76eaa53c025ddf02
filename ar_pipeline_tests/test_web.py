"""Route tests of the approver's page (Starlette's test client), on both databases.

The staged day is build_dunning_ledger's (see test_proposals.py): letters to Alpha GmbH (tier 3,
with an e-mail on the rep's behalf), Delta and Heavy Industries (tier 1), a service hold for
Heavy Industries, and Beta Ltd, which cannot be contacted."""

import datetime as dt
import html
import re

import pytest
import sqlalchemy as sa

from ar_pipeline.actions.approvals import publish_approvers
from ar_pipeline.store.schema import customers, proposed_actions
from ar_pipeline.web.lists import hold_reason, why_this_tier
from ar_pipeline_tests.ledger_builder import add_customer, add_invoice, build_dunning_ledger
from ar_pipeline_tests.test_proposals import actions, run_job
from ar_pipeline_tests.web_client import (
    Clock,
    another_browser,
    csrf_token,
    make_client,
    seen_on,
    sign_in,
)


@pytest.fixture
def staged(engine, database_url, tmp_path):
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path)
    return {(r["action_type"], r["customer_id"]): r["action_id"]
            for r in actions(engine, as_of=dt.date(2026, 3, 31))}  # fmt: skip


def snapshot(engine):
    with engine.connect() as connection:
        return [
            tuple(r)
            for r in connection.execute(
                sa.select(
                    proposed_actions.c.action_id, proposed_actions.c.status,
                    proposed_actions.c.decided_by, proposed_actions.c.edited_payload_json,
                ).order_by(proposed_actions.c.action_id)
            )
        ]  # fmt: skip


def statuses(engine):
    return {r["action_id"]: r["status"] for r in actions(engine)}


def text_of(page) -> str:
    """The page's visible text, one space between words."""
    body = page.text[page.text.index("<main") :]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def line_of(page, action_id) -> str:
    """The visible text of one proposal's line (without its folded letter)."""
    match = re.search(rf'<li class="line[^"]*" id="action-{action_id}">(.*?)</div>', page.text,
                      re.S)  # fmt: skip
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def test_the_list_says_who_how_much_which_tier_and_why(engine, staged):
    client = make_client(engine)
    assert client.get("/proposals").status_code == 303  # not signed in: to the login page
    assert sign_in(client, "alice").status_code == 303
    page = client.get("/proposals")
    assert page.status_code == 200
    assert line_of(page, staged[("collection_action", "A")]) == (
        "Alpha GmbH letter, tier 3 final notice 800.00 EUR 70 days overdue, 800.00 EUR due "
        "(enough for tier 4); one step after tier 2, the last letter sent Approve Reject"
    )
    assert line_of(page, staged[("collection_action", "H")]) == (
        "Heavy Industries hold proposed letter, tier 1 reminder 30,000.00 EUR 120 days overdue, "
        "30,000.00 EUR due (enough for tier 4); first letter for this debt, and letters go one "
        "step at a time Approve Reject"
    )
    assert line_of(page, staged[("customer_program", "H")]) == (
        "Heavy Industries service hold 30,000.00 EUR 30,000.00 EUR open, oldest 120 days overdue "
        "(a hold is proposed above 90 days and 25,000.00 EUR) Approve Reject"
    )
    assert "25000.00" not in page.text
    # the letters are folded until opened
    assert page.text.count('<details class="letter">') == 4
    assert "Letter: “Final notice before further action” to ap@alpha.example.com" in text_of(page)
    # names, not customer ids
    cannot = "Cannot contact: no billing e-mail address: 1 customer Beta Ltd, tier 1"
    assert cannot in text_of(page)
    assert "Beta Ltd (B)" not in page.text
    assert re.search(r'To decide <span class="count">5</span>', page.text)
    assert client.get("/history").status_code == 200
    trend = client.get("/trend")
    assert trend.status_code == 200 and "No trend yet" in trend.text
    filtered = client.get("/proposals?type=customer_program")
    assert "Filtered to type service hold: 1 proposal." in text_of(filtered)
    # odd filters are ignored, never an error
    odd = client.get("/proposals?tier=%C2%B2&page=%C2%B2&type=nope&view=everything")
    assert odd.status_code == 200 and "5 proposals." in text_of(odd)


def test_why_this_tier_in_words():
    one_day = {"invoices": [{"days_overdue": 1}], "totals_cents": {"EUR": 1234},
               "tier_rule": {"min_days_overdue": 1, "min_dunnable": "10.00"}}  # fmt: skip
    assert why_this_tier(one_day, 1, 1, None) == (
        "1 day overdue, 12.34 EUR due (tier 1 from 1 day and 10.00 EUR); first letter for this debt"
    )
    two = {"invoices": [{"days_overdue": 12}, {"days_overdue": 61}],
           "totals_cents": {"USD": 5000, "EUR": 123400}, "unapplied_credit_cents": {"EUR": 100},
           "tier_rule": {"min_days_overdue": 30, "min_dunnable": "100.00"}}  # fmt: skip
    assert why_this_tier(two, 3, 3, 2) == (
        "61 days overdue, 1,233.00 EUR and 50.00 USD due (tier 3 from 30 days and 100.00 EUR); "
        "one step after tier 2, the last letter sent"
    )
    assert why_this_tier(two, 3, 4, 2) == (
        "61 days overdue, 1,233.00 EUR and 50.00 USD due (enough for tier 4); one step after "
        "tier 2, the last letter sent"
    )
    # no tiering row for the day: the tier's own rule only
    assert why_this_tier(two, 3, None, None) == (
        "61 days overdue, 1,233.00 EUR and 50.00 USD due (tier 3 from 30 days and 100.00 EUR)"
    )
    jpy = {"currencies": [{"currency": "JPY", "open_cents": 3_000_000, "max_days_overdue": 95}],
           "reason": "Over 90 days overdue with more than 25000.00 open: ..."}  # fmt: skip
    assert hold_reason(jpy) == (
        "3,000,000 JPY", "3,000,000 JPY open, oldest 95 days overdue (a hold is proposed above "
        "90 days and 25,000 JPY)")  # fmt: skip
    assert hold_reason({"reason": "set by hand"}) == ("", "set by hand")


def test_decision_is_stamped_with_the_signed_in_user(engine, staged):
    client = make_client(engine)
    sign_in(client, "bob")
    letter = staged[("collection_action", "H")]
    response = client.post(
        "/proposals/decide",
        data={"csrf": csrf_token(client, "/proposals"), "ids": [letter],
              "decision": "approve", "decided_by": "mallory", "user": "mallory",
              "seen": seen_on(client)},
    )  # fmt: skip
    assert (response.status_code, response.headers["location"]) == (303, "/proposals")
    (row,) = [r for r in actions(engine) if r["action_id"] == letter]
    assert (row["status"], row["decided_by"]) == ("approved", "bob")
    after = text_of(client.get("/proposals"))
    assert "Approved: Heavy Industries (letter, tier 1 reminder)." in after
    assert "Approved:" not in text_of(client.get("/proposals"))  # said once


def test_reject_one_with_a_reason_and_a_refusal_keeps_the_selection(engine, staged):
    client = make_client(engine)
    sign_in(client, "alice")
    token = csrf_token(client, "/proposals")
    hold, letter = staged[("customer_program", "H")], staged[("collection_action", "H")]
    before = snapshot(engine)
    # two ticked, "Reject ticked" without a reason, from the list filtered to tier 1
    refused = client.post("/proposals/decide", data={
        "csrf": token, "ids": [hold, letter], "decision": "reject", "bulk": "1",
        "back": "/proposals?tier=1"})  # fmt: skip
    assert refused.status_code == 400
    assert re.search(r'<div class="error" role="alert"><p>Give a reason to reject 2 proposals: '
                     r"it is recorded and shown in History. Nothing was changed.</p>", refused.text)
    assert 'class="flash' not in refused.text  # said once, as an error
    assert "Filtered to tier 1: 2 proposals." in text_of(refused)  # the same list
    assert f'value="{letter}" id="pick-{letter}" aria-label="Tick Heavy Industries (letter, ' \
           'tier 1 reminder)" checked>' in refused.text
    assert 'checked' not in line_of(refused, staged[("collection_action", "D")])
    assert snapshot(engine) == before
    # one proposal's own Reject, without and then with a reason
    alone = client.post("/proposals/decide",
                        data={"csrf": token, "ids": [hold], "decision": "reject"})
    assert alone.status_code == 400
    assert "Give a reason to reject Heavy Industries (service hold)" in alone.text
    rejected = client.post("/proposals/decide", data={"csrf": token, "ids": [hold],
                                                      "decision": "reject", "reason": "paying"})
    assert rejected.status_code == 303
    (row,) = [r for r in actions(engine) if r["action_id"] == hold]
    assert (row["status"], row["decided_by"], row["decision_reason"]) == (
        "rejected", "alice", "paying")
    assert "Rejected: Heavy Industries (service hold)." in text_of(client.get("/proposals"))


def test_bulk_decides_what_the_filter_shows_after_a_confirmation(engine, staged):
    client = make_client(engine)
    sign_in(client, "alice")
    page = client.get("/proposals?tier=3")
    shown = [int(i) for i in re.findall(r'name="shown" value="(\d+)"', page.text)]
    alpha = [staged[("collection_action", "A")], staged[("email_to_customer", "A")]]
    assert sorted(shown) == sorted(alpha)
    assert "Approve all 2 shown…" in page.text
    token = csrf_token(client, "/proposals")
    before = snapshot(engine)
    ask = client.post("/proposals/decide", data={
        "csrf": token, "shown": shown, "decision": "approve:shown", "bulk": "1",
        "back": "/proposals?tier=3", "seen": seen_on(client, "/proposals?tier=3")})  # fmt: skip
    assert ask.status_code == 200 and snapshot(engine) == before
    assert "Approve 2 proposals? These 2 proposals, and nothing else, will be approved" \
        in text_of(ask)
    assert text_of(ask).count("Alpha GmbH") == 2 and "Heavy" not in text_of(ask)
    confirm = dict(re.findall(r'name="(confirmed|back)" value="([^"]+)"', ask.text))
    seen = re.findall(r'name="seen" value="([^"]+)"', ask.text)  # carried on to the decision
    assert sorted(int(v.split(":")[0]) for v in seen) == sorted(alpha)
    assert confirm == {"confirmed": "2", "back": "/proposals?tier=3"}
    # a confirmation of another count decides nothing: it asks again
    again = client.post("/proposals/decide", data={
        "csrf": token, "ids": alpha, "decision": "approve", "bulk": "1", "confirmed": "1",
        "seen": seen})
    assert "Approve 2 proposals?" in text_of(again) and snapshot(engine) == before
    done = client.post("/proposals/decide", data={
        "csrf": token, "ids": alpha, "decision": "approve", "bulk": "1", "confirmed": "2",
        "back": "/proposals?tier=3", "seen": seen})  # fmt: skip
    assert (done.status_code, done.headers["location"]) == (303, "/proposals?tier=3")
    after = statuses(engine)
    assert [after[i] for i in alpha] == ["approved", "approved"]
    others = [staged[k] for k in staged if staged[k] not in alpha]
    assert [after[i] for i in others] == ["proposed"] * 4  # D and H letters, the hold, the run
    # the run's envelope (everything pending in it) is not decided from the page
    envelope = client.post("/proposals/decide", data={
        "csrf": token, "ids": [staged[("workflow_envelope", None)]], "decision": "approve"})
    assert envelope.status_code == 400 and "not whole runs" in envelope.text
    odd = client.post("/proposals/decide",
                      data={"csrf": token, "ids": ["²"], "decision": "approve"})  # fmt: skip
    assert odd.status_code == 400 and "Select at least one proposal" in odd.text
    assert statuses(engine) == after


def test_waiting_to_be_sent_and_needs_attention(engine, staged):
    clock = Clock()
    client = make_client(engine, clock)
    sign_in(client, "alice")
    token = csrf_token(client, "/proposals")
    pa = proposed_actions.c
    letter_h, letter_d, letter_a, email_a = (
        staged[("collection_action", "H")], staged[("collection_action", "D")],
        staged[("collection_action", "A")], staged[("email_to_customer", "A")],
    )  # fmt: skip
    client.post("/proposals/decide", data={"csrf": token, "ids": [letter_h], "decision": "approve",
                                           "seen": seen_on(client)})  # fmt: skip
    claimed = {letter_d: clock.now - dt.timedelta(minutes=5),  # being sent
               letter_a: clock.now - dt.timedelta(minutes=20)}  # stranded by a crash
    with engine.begin() as connection:
        for action_id, at in claimed.items():
            connection.execute(proposed_actions.update().where(pa.action_id == action_id).values(
                status="applying", claimed_at=at, decided_by="bob", decided_at=at))
        connection.execute(proposed_actions.update().where(pa.action_id == email_a).values(
            status="failed", decided_by="bob", last_error="550 5.1.1 mailbox unavailable"))
    waiting = client.get("/proposals?view=waiting")
    assert re.search(r'Waiting to be sent <span class="count">2</span>', waiting.text)
    assert re.search(r'Needs attention <span class="count hot">2</span>', waiting.text)
    assert line_of(waiting, letter_d) == (
        "Delta on hold letter, tier 1 reminder 30,000.00 EUR being sent since 2026-03-31 08:55 UTC"
    )
    assert line_of(waiting, letter_h) == (
        "Heavy Industries letter, tier 1 reminder 30,000.00 EUR approved by alice at "
        "2026-03-31 09:00 UTC; the apply job sends it shortly"
    )
    attention = client.get("/proposals?view=attention")
    assert line_of(attention, email_a) == (
        "Alpha GmbH rep's e-mail, tier 3 800.00 EUR not sent: 550 5.1.1 mailbox unavailable "
        "Approve again"
    )
    assert line_of(attention, letter_a).startswith(
        "Alpha GmbH letter, tier 3 final notice 800.00 EUR stuck while sending since 2026-03-31 "
        "08:40 UTC: outcome unknown")
    assert "It was delivered" in attention.text and "Send it again" in attention.text
    assert f"Message-ID &lt;ar-action-{letter_a}@…&gt;" in attention.text
    assert f'id="action-{letter_d}"' not in attention.text  # 5 minutes: may still be sending
    back = "/proposals?view=attention"
    resolved = client.post("/proposals/decide", data={
        "csrf": token, "ids": [letter_a], "decision": "delivered", "reason": "in the mail log",
        "back": back})  # fmt: skip
    again = client.post("/proposals/decide", data={
        "csrf": token, "ids": [email_a], "decision": "approve", "back": back,
        "seen": seen_on(client, back)})  # fmt: skip
    assert resolved.headers["location"] == again.headers["location"] == back
    after = statuses(engine)
    assert (after[letter_a], after[email_a]) == ("applied", "approved")
    assert "Nothing needs attention." in text_of(client.get(back))
    clock.now += dt.timedelta(minutes=20)  # nothing picked Heavy's letter up
    assert line_of(client.get("/proposals?view=waiting"), letter_h) == (
        "Heavy Industries letter, tier 1 reminder 30,000.00 EUR approved by alice at "
        "2026-03-31 09:00 UTC; not picked up after 20 minutes: is the Dagster daemon (its "
        "approval sensor) running?"
    )


def test_history_is_newest_decision_first_and_undecided_last(engine):
    """Hand-made rows: decided, applied and resolved times, and superseded rows nobody decided
    (their times are NULL: PostgreSQL would list them first under a plain DESC)."""
    at = dt.datetime(2026, 3, 31, 9, 0, tzinfo=dt.UTC)
    hours = dt.timedelta(hours=1)
    rows = [  # key, status, decided_at, applied_at, resolved_at
        ("rejected-10", "rejected", at + hours, None, None),
        ("superseded-a", "superseded", None, None, None),
        ("applied-12", "applied", at, at + 3 * hours, None),
        ("failed-11", "failed", at + 2 * hours, None, None),
        ("resolved-13", "applied", at, at, at + 4 * hours),
        ("superseded-b", "superseded", None, None, None),
    ]
    with engine.begin() as connection:
        connection.execute(customers.insert().values(customer_id="C", customer_name="Cee"))
        for key, status, decided, applied, resolved in rows:
            connection.execute(proposed_actions.insert().values(
                idempotency_key=key, as_of=dt.date(2026, 3, 31), action_type="collection_action",
                customer_id="C", tier=1, status=status, proposed_at=at - 24 * hours,
                decided_at=decided, applied_at=applied, resolved_at=resolved,
                payload_json={"subject": key, "to": ["c@example.com"]}))  # fmt: skip
    client = make_client(engine)
    sign_in(client, "alice")
    page = client.get("/history").text
    order = re.findall(r'<tr id="action-(\d+)">', page)
    ids = {key: i + 1 for i, (key, *_) in enumerate(rows)}
    assert [int(i) for i in order] == [
        ids["resolved-13"], ids["applied-12"], ids["failed-11"], ids["rejected-10"],
        ids["superseded-b"], ids["superseded-a"],  # undecided: newest proposal (highest id) first
    ]  # fmt: skip
    assert "not decided" in page


@pytest.mark.parametrize("case", ["no_csrf", "wrong_csrf", "expired", "not_approver", "get"])
def test_refusals_change_nothing(engine, staged, case):
    clock = Clock()
    client = make_client(engine, clock)
    sign_in(client, "carol" if case == "not_approver" else "alice")
    token = csrf_token(client, "/proposals")
    before = snapshot(engine)
    letter = staged[("collection_action", "H")]
    data = {"csrf": token, "ids": [letter], "decision": "approve"}
    edit = {"csrf": token, "subject": "Changed", "body": "Changed"}
    if case == "no_csrf":
        data.pop("csrf"), edit.pop("csrf")
    if case == "wrong_csrf":
        data["csrf"] = edit["csrf"] = "forged"
    if case == "expired":
        clock.now += dt.timedelta(hours=9)
    if case == "get":
        assert client.get(f"/proposals/decide?ids={letter}&decision=approve").status_code == 405
        assert client.get(f"/proposals/{letter}/edit?subject=x&body=y").status_code == 405
    else:
        decided = client.post("/proposals/decide", data=data)
        edited = client.post(f"/proposals/{letter}/edit", data=edit)
        expected = {"no_csrf": 403, "wrong_csrf": 403, "expired": 303, "not_approver": 403}
        assert decided.status_code == edited.status_code == expected[case]
        if case == "expired":
            assert decided.headers["location"].startswith("/login")
        if case == "not_approver":
            assert "&#39;carol&#39; is not in AR_APPROVERS and may not decide" in decided.text
    assert snapshot(engine) == before


def test_wrong_password_is_refused(engine, staged):
    client = make_client(engine)
    response = sign_in(client, "alice", password="guess")
    assert response.status_code == 401 and "Wrong user name or password" in response.text
    assert client.get("/proposals").status_code == 303
    assert sign_in(client, "mallory", password="x").status_code == 401


def test_edit_keeps_the_original_and_only_pending_drafts(engine, staged):
    client = make_client(engine)
    sign_in(client, "alice")
    token = csrf_token(client, "/proposals")
    letter = staged[("collection_action", "H")]
    response = client.post(
        f"/proposals/{letter}/edit",
        data={"csrf": token, "subject": "Please pay", "body": "Dear Heavy,\r\npay now.\r\n",
              "back": "/proposals?tier=1", "seen": seen_on(client)},
    )  # fmt: skip
    assert response.headers["location"] == f"/proposals?tier=1#action-{letter}"
    (row,) = [r for r in actions(engine) if r["action_id"] == letter]
    assert row["edited_payload_json"]["subject"] == "Please pay"
    assert row["edited_payload_json"]["body"] == "Dear Heavy,\npay now.\n"
    assert row["edited_payload_json"]["edited_by"] == "alice"
    assert row["payload_json"]["subject"] == "Friendly reminder: 1 overdue invoice"  # original
    page = client.get("/proposals?tier=1")
    assert "Draft for Heavy Industries saved; the edited text is what will be sent." in page.text
    assert '<details class="letter" open>' in page.text  # the edited letter stays open
    summary = "Letter: “Please pay” to ap@heavy.example.com (billing e-mail) · edited by alice"
    assert summary in text_of(page)
    bad = client.post(f"/proposals/{letter}/edit",
                      data={"csrf": token, "subject": "two\nlines", "body": "x"})  # fmt: skip
    assert bad.status_code == 400 and "Subject: one line of text is required" in bad.text
    client.post("/proposals/decide", data={"csrf": token, "ids": [letter], "decision": "approve",
                                           "seen": seen_on(client)})  # fmt: skip
    late = client.post(f"/proposals/{letter}/edit",
                       data={"csrf": token, "subject": "Later", "body": "x"})  # fmt: skip
    assert late.status_code == 409


def test_customer_names_are_escaped(engine, database_url, tmp_path):
    with engine.begin() as connection:
        add_customer(connection, "S", "<script>alert(1)</script>", email="ap@s.example.com")
        add_invoice(connection, "S1", "S", 50_000, "2026-01-01", "2026-02-01")
    run_job(database_url, tmp_path)
    client = make_client(engine)
    sign_in(client, "alice")
    page = client.get("/proposals").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_thousands_of_rows_are_paged(engine):
    now = dt.datetime(2026, 3, 31, 9, tzinfo=dt.UTC)
    with engine.begin() as connection:
        connection.execute(customers.insert().values(customer_id="M", customer_name="Many"))
        connection.execute(
            proposed_actions.insert(),
            [{"idempotency_key": f"m{i}", "as_of": dt.date(2026, 3, 31),
              "action_type": "collection_action", "customer_id": "M", "tier": 1,
              "status": "proposed", "proposed_at": now,
              "payload_json": {"to": ["ap@m.example.com"], "subject": f"S{i}", "body": "b"}}
             for i in range(2_120)],
        )  # fmt: skip
    client = make_client(engine)
    sign_in(client, "alice")
    first = client.get("/proposals")
    assert "2120 proposals, page 1 of 43." in text_of(first)
    assert first.text.count('<li class="line') == 50
    assert "Approve all 50 on this page…" in first.text
    last = client.get("/proposals?page=43").text
    assert last.count('<li class="line') == 20


def test_an_approval_binds_to_the_text_the_approver_saw(engine, staged):
    """Alice opens the list; Bob rewrites Heavy's letter; Alice's click on the page she opened
    approves nothing, and says why. Approving again from the fresh page approves Bob's text,
    which she has now been shown."""
    letter = staged[("collection_action", "H")]
    alice = make_client(engine)
    sign_in(alice, "alice")
    token = csrf_token(alice, "/proposals")
    shown_to_alice = seen_on(alice)
    bob = another_browser(alice)
    sign_in(bob, "bob")
    edited = bob.post(f"/proposals/{letter}/edit", data={
        "csrf": csrf_token(bob, "/proposals"), "subject": "Bank details changed",
        "body": "Pay to IBAN XX00 0000.", "seen": seen_on(bob)})  # fmt: skip
    assert edited.status_code == 303
    stale = alice.post("/proposals/decide", data={
        "csrf": token, "ids": [letter], "decision": "approve", "seen": shown_to_alice})
    assert stale.status_code == 303
    assert statuses(engine)[letter] == "proposed"
    assert (
        "Not changed: Heavy Industries (letter, tier 1 reminder): it changed since you looked "
        "(edited, or decided or sent meanwhile); read it again before deciding."
    ) in text_of(alice.get("/proposals"))
    fresh = alice.post("/proposals/decide", data={
        "csrf": token, "ids": [letter], "decision": "approve", "seen": seen_on(alice)})
    assert fresh.status_code == 303
    (row,) = [r for r in actions(engine) if r["action_id"] == letter]
    assert (row["status"], row["decided_by"]) == ("approved", "alice")
    assert row["edited_payload_json"]["body"] == "Pay to IBAN XX00 0000."
    # a decision that names no version at all (a page from before, a hand-made post) is refused
    other = staged[("collection_action", "D")]
    unseen = alice.post("/proposals/decide", data={
        "csrf": token, "ids": [other], "decision": "approve"})
    assert unseen.status_code == 400 and "did not say which version" in unseen.text
    assert statuses(engine)[other] == "proposed"


def test_a_stale_approve_click_does_not_retry_a_failed_send(engine, staged):
    """The page showed a fresh proposal; meanwhile it was approved and the server refused it.
    The old Approve button must not retry it: that is "Approve again", shown for a failure."""
    letter = staged[("collection_action", "D")]
    client = make_client(engine)
    sign_in(client, "alice")
    token = csrf_token(client, "/proposals")
    shown = seen_on(client)
    with engine.begin() as connection:
        connection.execute(proposed_actions.update().where(
            proposed_actions.c.action_id == letter).values(
            status="failed", decided_by="bob", last_error="550 5.1.1 mailbox unavailable"))
    client.post("/proposals/decide", data={
        "csrf": token, "ids": [letter], "decision": "approve", "seen": shown})
    (row,) = [r for r in actions(engine) if r["action_id"] == letter]
    assert (row["status"], row["decided_by"]) == ("failed", "bob")
    attention = "/proposals?view=attention"
    client.post("/proposals/decide", data={
        "csrf": token, "ids": [letter], "decision": "approve", "seen": seen_on(client, attention),
        "back": attention})  # fmt: skip
    (row,) = [r for r in actions(engine) if r["action_id"] == letter]
    assert (row["status"], row["decided_by"]) == ("approved", "alice")


def test_an_edit_over_an_edit_not_seen_is_refused(engine, staged):
    letter = staged[("collection_action", "H")]
    alice = make_client(engine)
    sign_in(alice, "alice")
    shown_to_alice = seen_on(alice)
    bob = another_browser(alice)
    sign_in(bob, "bob")
    bob.post(f"/proposals/{letter}/edit", data={
        "csrf": csrf_token(bob, "/proposals"), "subject": "Bob's", "body": "Bob's text.",
        "seen": seen_on(bob)})  # fmt: skip
    late = alice.post(f"/proposals/{letter}/edit", data={
        "csrf": csrf_token(alice, "/proposals"), "subject": "Alice's", "body": "Alice's text.",
        "seen": shown_to_alice})  # fmt: skip
    assert late.status_code == 409 and "changed since you opened it" in late.text
    (row,) = [r for r in actions(engine) if r["action_id"] == letter]
    assert row["edited_payload_json"]["body"] == "Bob's text."


def test_an_edit_by_a_name_the_apply_side_lacks_is_refused(engine, staged):
    """Bob is on the page's list of approvers, not on the apply job's (published) one: he may no
    more rewrite a draft than approve it."""
    letter = staged[("collection_action", "H")]
    now = dt.datetime(2026, 3, 31, 9, tzinfo=dt.UTC)
    with engine.begin() as connection:
        publish_approvers(connection, {"alice"}, "approved_actions_sensor", now)
    client = make_client(engine)
    sign_in(client, "bob")
    before = snapshot(engine)
    refused = client.post(f"/proposals/{letter}/edit", data={
        "csrf": csrf_token(client, "/proposals"), "subject": "Pay", "body": "Pay now.",
        "seen": seen_on(client)})  # fmt: skip
    assert refused.status_code == 403 and "not in the apply job&#39;s AR_APPROVERS" in refused.text
    assert snapshot(engine) == before


@pytest.mark.parametrize("breaker", ["\u2028", "\x0b", "\x85", "\x0c", "\x00"])
def test_a_subject_the_mailer_would_refuse_is_refused_when_edited(engine, staged, breaker):
    """Python breaks lines at more than CR and LF, and the e-mail policy refuses every such
    character in a header at send time: refused on the page, so no approved draft fails later."""
    letter = staged[("collection_action", "H")]
    client = make_client(engine)
    sign_in(client, "alice")
    before = snapshot(engine)
    bad = client.post(f"/proposals/{letter}/edit", data={
        "csrf": csrf_token(client, "/proposals"), "subject": f"Please{breaker}pay",
        "body": "x", "seen": seen_on(client)})  # fmt: skip
    assert bad.status_code == 400 and "Subject: one line of text is required" in bad.text
    assert snapshot(engine) == before
