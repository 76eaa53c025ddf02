"""Deciding proposals: only AR_APPROVERS decide, one conditional UPDATE per change."""

import datetime as dt

import pytest
import sqlalchemy as sa

from ar_pipeline.actions.approvals import DecisionRefused, approve, list_actions, reject
from ar_pipeline.store.schema import proposed_actions
from ar_pipeline_tests.ledger_builder import build_dunning_ledger
from ar_pipeline_tests.test_proposals import actions, run_job

NOW = dt.datetime(2026, 3, 31, 9, 0, tzinfo=dt.UTC)
APPROVERS = {"alice", "bob"}


@pytest.fixture
def staged(engine, database_url, tmp_path):
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path)
    return {
        (r["action_type"], r["customer_id"]): r["action_id"]
        for r in actions(engine, as_of=dt.date(2026, 3, 31))
    }


def statuses(engine):
    with engine.connect() as connection:
        return dict(
            connection.execute(
                sa.select(proposed_actions.c.action_id, proposed_actions.c.status)
            ).all()
        )


def test_unknown_decider_changes_nothing(engine, staged):
    before = statuses(engine)
    ids = list(staged.values())
    with engine.begin() as connection, pytest.raises(DecisionRefused, match="'mallory'"):
        approve(connection, ids, "mallory", APPROVERS, NOW)
    with engine.begin() as connection, pytest.raises(DecisionRefused, match="AR_APPROVERS"):
        reject(connection, ids, "", "no", APPROVERS, NOW)
    with engine.begin() as connection, pytest.raises(DecisionRefused, match="nobody"):
        approve(connection, ids, "nobody", set(), NOW)  # AR_APPROVERS empty: nobody decides
    assert statuses(engine) == before


def test_reject_needs_a_reason(engine, staged):
    with engine.begin() as connection, pytest.raises(DecisionRefused, match="reason"):
        reject(connection, [staged[("collection_action", "H")]], "alice", "  ", APPROVERS, NOW)
    assert statuses(engine)[staged[("collection_action", "H")]] == "proposed"


def test_decisions_are_recorded_and_final(engine, staged):
    letter, hold = staged[("collection_action", "H")], staged[("customer_program", "H")]
    with engine.begin() as connection:
        (d,) = approve(connection, [letter], " alice ", APPROVERS, NOW)
        assert (d.outcome, d.children) == ("approved", 0)
        (d,) = reject(connection, [hold], "bob", "customer is paying", APPROVERS, NOW)
        assert d.outcome == "rejected"
        # a decided row cannot be decided again
        (d,) = reject(connection, [letter], "bob", "changed my mind", APPROVERS, NOW)
        assert d.outcome == "not changed: it is approved"
        (d,) = approve(connection, [hold], "alice", APPROVERS, NOW)
        assert d.outcome == "not changed: it is rejected"
    rows = {r["action_id"]: r for r in actions(engine)}
    assert (rows[letter]["decided_by"], rows[letter]["status"]) == ("alice", "approved")
    assert rows[hold]["decision_reason"] == "customer is paying"
    assert rows[hold]["decided_by"] == "bob"


def test_an_unknown_id_refuses_the_whole_decision(engine, staged):
    letter, hold = staged[("collection_action", "H")], staged[("customer_program", "H")]
    before = statuses(engine)
    with engine.begin() as connection, pytest.raises(DecisionRefused) as refused:
        approve(connection, [letter, 999_998, hold, 999_999], "alice", APPROVERS, NOW)
    assert str(refused.value) == "ID: no proposals 999998, 999999; nothing was changed"
    with engine.begin() as connection, pytest.raises(DecisionRefused) as refused:
        reject(connection, [999_999, letter], "bob", "no", APPROVERS, NOW)
    assert str(refused.value) == "ID: no proposal 999999; nothing was changed"
    assert statuses(engine) == before


def test_envelope_decides_its_pending_children(engine, staged):
    envelope = staged[("workflow_envelope", None)]
    hold = staged[("customer_program", "H")]
    with engine.begin() as connection:
        reject(connection, [hold], "bob", "not yet", APPROVERS, NOW)
        (d,) = approve(connection, [envelope], "alice", APPROVERS, NOW)
    assert (d.outcome, d.children) == ("approved", 4)  # 3 letters + 1 e-mail; the hold stays
    now = statuses(engine)
    assert now[hold] == "rejected"
    assert [now[staged[k]] for k in staged if k[0] != "customer_program"] == ["approved"] * 5


def test_failed_action_can_be_approved_again(engine, staged):
    letter = staged[("collection_action", "D")]
    with engine.begin() as connection:
        connection.execute(
            proposed_actions.update()
            .where(proposed_actions.c.action_id == letter)
            .values(status="failed", last_error="SMTP down")
        )
        (d,) = approve(connection, [letter], "alice", APPROVERS, NOW)
    assert d.outcome == "approved"
    with engine.connect() as connection:
        pending = list_actions(connection)
        assert letter in [r.action_id for r in pending]
        with pytest.raises(DecisionRefused, match="--status: unknown status 'done'"):
            list_actions(connection, "done")
