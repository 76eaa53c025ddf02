"""A human settles a send whose outcome is unknown (``unconfirmed``, or ``applying`` left by a
crash), and every process agrees on who may decide. Both databases."""

import datetime as dt

import pytest
import sqlalchemy as sa

from ar_pipeline.actions.apply import apply_actions
from ar_pipeline.actions.approvals import DecisionRefused, approve, publish_approvers, resolve
from ar_pipeline.store.schema import proposed_actions
from ar_pipeline_tests.test_apply import AS_OF, HOLDS, mailer_for, staged, status_of  # noqa: F401
from ar_pipeline_tests.web_client import Clock, csrf_token, make_client, seen_on, sign_in

CLAIMED = dt.datetime(2026, 3, 31, 9, 0, tzinfo=dt.UTC)


def set_row(engine, action_id, **values):
    with engine.begin() as connection:
        connection.execute(
            proposed_actions.update().where(proposed_actions.c.action_id == action_id).values(
                **values
            )
        )


@pytest.fixture
def unconfirmed(staged, engine):  # noqa: F811
    letter = staged[("collection_action", "H")]
    with engine.begin() as connection:
        approve(connection, [letter], "alice", {"alice"}, CLAIMED - dt.timedelta(hours=1))
    set_row(engine, letter, status="unconfirmed", claimed_at=CLAIMED, attempts=1,
            last_error="no answer after the message data was sent")  # fmt: skip
    return letter


def test_it_was_delivered(unconfirmed, engine, smtp_server):
    now = CLAIMED + dt.timedelta(hours=2)
    with engine.begin() as connection:
        (decision,) = resolve(connection, [unconfirmed], "delivered", "bob", {"alice", "bob"},
                              now, "customer confirmed by phone")  # fmt: skip
    assert decision.outcome == "applied"
    row = status_of(engine, unconfirmed)
    assert (row["status"], row["resolution"], row["resolved_by"]) == ("applied", "delivered", "bob")
    assert row["resolved_at"] == now
    assert row["applied_at"] == CLAIMED  # the attempt's time, for the cooldown
    assert row["decided_by"] == "alice"  # the approval stays on record
    assert row["decision_reason"] == "customer confirmed by phone"
    outcomes = apply_actions(engine, mailer_for(smtp_server.port), [unconfirmed],
                             approvers={"alice", "bob"}, as_of=AS_OF, hold_policy=HOLDS)
    assert outcomes[0].outcome == "not_claimed"
    assert smtp_server.handler.messages == []


def test_send_it_again_sends_once_more_with_the_same_message_id(
    unconfirmed, engine, smtp_server
):
    now = CLAIMED + dt.timedelta(hours=2)
    with engine.begin() as connection:
        (decision,) = resolve(connection, [unconfirmed], "send_again", "bob", {"alice", "bob"},
                              now)  # fmt: skip
    assert decision.outcome == "approved"
    row = status_of(engine, unconfirmed)
    assert (row["status"], row["decided_by"], row["decided_at"]) == ("approved", "bob", now)
    assert (row["resolution"], row["resolved_by"]) == ("send_again", "bob")
    (outcome,) = apply_actions(engine, mailer_for(smtp_server.port), [unconfirmed],
                               approvers={"alice", "bob"}, as_of=AS_OF, hold_policy=HOLDS)
    assert outcome.outcome == "applied"
    (received,) = smtp_server.handler.messages
    assert received["message"]["Message-ID"] == f"<ar-action-{unconfirmed}@example.com>"
    assert status_of(engine, unconfirmed)["attempts"] == 2


def test_a_stranded_applying_row_waits_fifteen_minutes(staged, engine):  # noqa: F811
    letter = staged[("collection_action", "D")]
    set_row(engine, letter, status="applying", claimed_at=CLAIMED, decided_by="alice")
    with engine.begin() as connection:
        (early,) = resolve(connection, [letter], "send_again", "alice", {"alice"},
                           CLAIMED + dt.timedelta(minutes=5))  # fmt: skip
    assert early.outcome == (
        "not changed: it was claimed less than 15 minutes ago and may still be sending"
    )
    assert status_of(engine, letter)["status"] == "applying"
    with engine.begin() as connection:
        (late,) = resolve(connection, [letter], "delivered", "alice", {"alice"},
                          CLAIMED + dt.timedelta(minutes=16))  # fmt: skip
    assert late.outcome == "applied"
    assert status_of(engine, letter)["status"] == "applied"


def test_only_unknown_outcomes_are_resolved_and_only_by_approvers(staged, engine):  # noqa: F811
    letter = staged[("collection_action", "D")]
    with engine.begin() as connection:
        (proposed,) = resolve(connection, [letter], "delivered", "alice", {"alice"}, CLAIMED)
    assert proposed.outcome == (
        "not changed: it is proposed; only unconfirmed or stranded applying actions are resolved"
    )
    with pytest.raises(DecisionRefused, match="ID: no proposal 999999; nothing was changed"):
        with engine.begin() as connection:
            resolve(connection, [letter, 999999], "delivered", "alice", {"alice"}, CLAIMED)
    with pytest.raises(DecisionRefused, match="'mallory' is not in AR_APPROVERS"):
        with engine.begin() as connection:
            resolve(connection, [letter], "delivered", "mallory", {"alice"}, CLAIMED)
    with pytest.raises(DecisionRefused, match="resolution: must be one of delivered, send_again"):
        with engine.begin() as connection:
            resolve(connection, [letter], "maybe", "alice", {"alice"}, CLAIMED)


def test_a_decision_the_apply_job_would_refuse_is_refused_when_made(staged, engine):  # noqa: F811
    """The page's process lists bob; the Dagster code location (which applies) does not."""
    letter = staged[("collection_action", "D")]
    with engine.begin() as connection:
        assert publish_approvers(connection, {"alice"}, "approved_actions_sensor", CLAIMED)
        assert not publish_approvers(connection, {"alice"}, "approved_actions_sensor", CLAIMED)
    with pytest.raises(DecisionRefused) as refused:
        with engine.begin() as connection:
            approve(connection, [letter], "bob", {"alice", "bob"}, CLAIMED)
    assert str(refused.value) == (
        "'bob' is not in the apply job's AR_APPROVERS (published by the Dagster code location "
        "at 2026-03-31 09:00 UTC), so it would refuse this decision; set the same AR_APPROVERS "
        "for every process. Nothing was changed"
    )
    assert status_of(engine, letter)["status"] == "proposed"

    client = make_client(engine)  # the page's approvers: alice and bob
    sign_in(client, "bob")
    response = client.post("/proposals/decide", data={
        "csrf": csrf_token(client, "/proposals"), "ids": [letter], "decision": "approve",
        "seen": seen_on(client)})  # fmt: skip
    assert response.status_code == 403
    assert "not in the apply job&#39;s AR_APPROVERS" in response.text
    assert status_of(engine, letter)["status"] == "proposed"
    with engine.begin() as connection:
        (decision,) = approve(connection, [letter], "alice", {"alice", "bob"}, CLAIMED)
    assert decision.outcome == "approved"


def test_the_page_resolves_an_unconfirmed_letter(unconfirmed, engine):
    clock = Clock()
    clock.now = CLAIMED + dt.timedelta(hours=1)
    client = make_client(engine, clock)
    sign_in(client, "alice")
    page = client.get("/proposals?view=attention")
    assert "outcome unknown: no answer after the message data was sent" in page.text
    assert "It was delivered" in page.text and "Send it again" in page.text
    response = client.post("/proposals/decide", data={
        "csrf": csrf_token(client, "/proposals"), "ids": [unconfirmed], "decision": "delivered",
        "reason": "seen in the mail server's log"})  # fmt: skip
    assert response.status_code == 303
    row = status_of(engine, unconfirmed)
    assert (row["status"], row["resolved_by"], row["decision_reason"]) == (
        "applied", "alice", "seen in the mail server's log")
    with engine.connect() as connection:
        assert connection.execute(
            sa.select(sa.func.count()).where(proposed_actions.c.status == "unconfirmed")
        ).scalar_one() == 0


def test_the_cli_lists_and_resolves_an_unconfirmed_letter(
    unconfirmed, engine, database_url, tmp_path, monkeypatch, capsys
):
    from ar_pipeline.cli import main

    for name, value in {"AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path),
                        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
                        "AR_APPROVERS": "alice"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    assert main(["approvals", "list", "--status", "unconfirmed"]) == 0
    listed = capsys.readouterr().out
    hint = f"UNCONFIRMED (check whether it arrived, then `approvals resolve {unconfirmed} "
    assert hint in listed
    assert main(["approvals", "resolve", str(unconfirmed), "--by", "alice", "--send-again",
                 "--note", "bounced per the mail log"]) == 0  # fmt: skip
    assert f"{unconfirmed}: approved" in capsys.readouterr().out
    row = status_of(engine, unconfirmed)
    assert (row["status"], row["resolution"], row["decision_reason"]) == (
        "approved", "send_again", "bounced per the mail log")
