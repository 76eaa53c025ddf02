"""Route tests of the approver's page (Starlette's test client), on both databases."""

import datetime as dt

import pytest
import sqlalchemy as sa

from ar_pipeline.schema import customers, proposed_actions
from ar_pipeline_tests.ledger_builder import add_customer, add_invoice, build_dunning_ledger
from ar_pipeline_tests.test_proposals import actions, run_job
from ar_pipeline_tests.web_client import Clock, csrf_token, make_client, sign_in


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


def test_pages_render_for_a_signed_in_user(engine, staged):
    client = make_client(engine)
    assert client.get("/proposals").status_code == 303  # not signed in: to the login page
    assert sign_in(client, "alice").status_code == 303
    page = client.get("/proposals")
    assert page.status_code == 200
    assert "Final notice before further action" in page.text  # Alpha's tier 3 letter
    assert "service hold proposed" in page.text  # Heavy Industries
    assert "Cannot contact: no billing e-mail address: 1 customers" in page.text
    assert "proposed: <strong>5</strong>" in page.text
    assert client.get("/history").status_code == 200
    trend = client.get("/trend")
    assert trend.status_code == 200 and "No trend yet" in trend.text
    filtered = client.get("/proposals?type=customer_program")
    assert "1 matching proposals" in filtered.text


def test_decision_is_stamped_with_the_signed_in_user(engine, staged):
    client = make_client(engine)
    sign_in(client, "bob")
    letter = staged[("collection_action", "H")]
    response = client.post(
        "/proposals/decide",
        data={"csrf": csrf_token(client, "/proposals"), "ids": [letter],
              "decision": "approve", "decided_by": "mallory", "user": "mallory"},
    )  # fmt: skip
    assert response.status_code == 303
    (row,) = [r for r in actions(engine) if r["action_id"] == letter]
    assert (row["status"], row["decided_by"]) == ("approved", "bob")


def test_envelope_and_rejection_with_reason(engine, staged):
    client = make_client(engine)
    sign_in(client, "alice")
    token = csrf_token(client, "/proposals")
    hold = staged[("customer_program", "H")]
    refused = client.post(
        "/proposals/decide", data={"csrf": token, "ids": [hold], "decision": "reject"}
    )
    assert refused.status_code == 403 and "a reason is required" in refused.text
    reject = {"csrf": token, "ids": [hold], "decision": "reject", "reason": "paying"}
    client.post("/proposals/decide", data=reject)
    client.post("/proposals/decide",
                data={"csrf": token, "ids": [staged[("workflow_envelope", None)]],
                      "decision": "approve"})  # fmt: skip
    statuses = {r["action_id"]: r["status"] for r in actions(engine)}
    assert statuses[hold] == "rejected"
    assert statuses[staged[("collection_action", "A")]] == "approved"
    assert statuses[staged[("email_to_customer", "A")]] == "approved"


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
        data={"csrf": token, "subject": "Please pay", "body": "Dear Heavy,\r\npay now.\r\n"},
    )
    assert response.status_code == 303
    (row,) = [r for r in actions(engine) if r["action_id"] == letter]
    assert row["edited_payload_json"]["subject"] == "Please pay"
    assert row["edited_payload_json"]["body"] == "Dear Heavy,\npay now.\n"
    assert row["edited_payload_json"]["edited_by"] == "alice"
    assert row["payload_json"]["subject"] == "Friendly reminder: 1 overdue invoice"  # original
    bad = client.post(f"/proposals/{letter}/edit",
                      data={"csrf": token, "subject": "two\nlines", "body": "x"})  # fmt: skip
    assert bad.status_code == 400
    client.post("/proposals/decide", data={"csrf": token, "ids": [letter], "decision": "approve"})
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
    first = client.get("/proposals").text
    assert "2120 matching proposals, page 1 of 43." in first
    assert first.count('class="action"') == 50
    last = client.get("/proposals?page=43").text
    assert last.count('class="action"') == 20
