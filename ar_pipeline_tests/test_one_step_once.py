"""One letter per customer per step: a step approved and not yet sent is the customer's current
step, so the next morning proposes nothing that repeats it, and the apply job never sends a
step the customer already received.

Ledger (``build_dunning_ledger``), as worked out in test_proposals.py: as of 2026-03-31 Alpha
(A) gets a tier-3 final notice and its rep's e-mail, Heavy (H) and Delta (D) a tier-1
reminder, and Heavy a service hold.
"""

import datetime as dt

import sqlalchemy as sa

from ar_pipeline.actions.apply import apply_actions
from ar_pipeline.actions.approvals import approve
from ar_pipeline.store.schema import proposed_actions, tier_assignments
from ar_pipeline_tests.ledger_builder import build_dunning_ledger
from ar_pipeline_tests.test_apply import HOLDS, mailer_for, status_of
from ar_pipeline_tests.test_proposals import actions, run_job

DAY = dt.date(2026, 3, 31)
NEXT_DAY = dt.date(2026, 4, 1)
APPROVED_AT = dt.datetime(2026, 3, 31, 15, 0, tzinfo=dt.UTC)
NEXT_APPROVED_AT = dt.datetime(2026, 4, 1, 15, 0, tzinfo=dt.UTC)


def pending_ids(engine, as_of):
    return [
        r["action_id"]
        for r in actions(engine, as_of=as_of, status="proposed")
        if r["action_type"] != "workflow_envelope"
    ]


def skips(engine, as_of):
    with engine.connect() as connection:
        return dict(
            connection.execute(
                sa.select(tier_assignments.c.customer_id, tier_assignments.c.skip_reason).where(
                    tier_assignments.c.as_of == as_of
                )
            ).all()
        )


def approved_heavy_letter(engine, database_url, tmp_path, **then) -> int:
    """Stage the ledger's proposals of DAY, approve Heavy's tier-1 letter, then set ``then``
    on it (e.g. status); returns its id."""
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path, as_of=DAY)
    (letter,) = [r["action_id"] for r in actions(engine, as_of=DAY, customer_id="H",
                                                  action_type="collection_action")]  # fmt: skip
    with engine.begin() as connection:
        approve(connection, [letter], "alice", {"alice"}, APPROVED_AT)
        if then:
            connection.execute(
                proposed_actions.update()
                .where(proposed_actions.c.action_id == letter)
                .values(**then)
            )
    return letter


def test_approved_today_is_not_proposed_again_tomorrow_and_goes_out_once(
    engine, database_url, tmp_path, smtp_server
):
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path, as_of=DAY)
    day_ids = pending_ids(engine, DAY)
    assert len(day_ids) == 5  # A letter + rep e-mail, H letter + hold, D letter
    with engine.begin() as connection:
        approve(connection, day_ids, "alice", {"alice"}, APPROVED_AT)

    # the next morning, before anything was sent
    run_job(database_url, tmp_path / "next", as_of=NEXT_DAY)
    # Beta has no billing e-mail: called for again, and again listed as "cannot contact"
    assert skips(engine, NEXT_DAY) == {
        "A": "in_flight", "B": None, "D": "in_flight", "H": "in_flight",
    }  # fmt: skip
    next_ids = pending_ids(engine, NEXT_DAY)
    letters_next_day = [
        r for r in actions(engine, as_of=NEXT_DAY)
        if r["action_type"] in ("collection_action", "email_to_customer")
    ]  # fmt: skip
    assert letters_next_day == []
    # Heavy's hold is approved and not yet set: not proposed again either
    assert actions(engine, as_of=NEXT_DAY, action_type="customer_program") == []
    with engine.begin() as connection:
        approve(connection, next_ids, "alice", {"alice"}, NEXT_APPROVED_AT)

    everything = day_ids + next_ids
    apply_actions(engine, mailer_for(smtp_server.port), everything, approvers={"alice"},
                  as_of=NEXT_DAY, hold_policy=HOLDS)  # fmt: skip
    received = sorted(
        (m["rcpt_tos"][0], m["message"]["Subject"]) for m in smtp_server.handler.messages
    )
    assert received == [
        ("ap@alpha.example.com", "Alpha GmbH: your overdue invoices with us"),
        ("ap@alpha.example.com", "Final notice before further action"),
        ("ap@delta.example.com", "Friendly reminder: 1 overdue invoice"),
        ("ap@heavy.example.com", "Friendly reminder: 1 overdue invoice"),
    ]
    # the rerun of the first day after those decisions stages nothing new either
    run_job(database_url, tmp_path / "rerun", as_of=DAY)
    assert pending_ids(engine, DAY) == []


def test_a_retried_step_and_its_repeat_go_out_once(engine, database_url, tmp_path, smtp_server):
    """A letter that failed is not in flight, so the next morning proposes the step again. When
    an approver retries the failed one and approves the new one too, the customer gets one."""
    first = approved_heavy_letter(
        engine, database_url, tmp_path, status="failed",
        last_error="not accepted after 3 attempts: ...",
    )  # fmt: skip
    run_job(database_url, tmp_path / "next", as_of=NEXT_DAY)
    (second,) = [r["action_id"] for r in actions(engine, as_of=NEXT_DAY, customer_id="H",
                                                  action_type="collection_action")]  # fmt: skip
    with engine.begin() as connection:
        approve(connection, [first, second], "alice", {"alice"}, NEXT_APPROVED_AT)
    outcomes = apply_actions(engine, mailer_for(smtp_server.port), [first, second],
                             approvers={"alice"}, as_of=NEXT_DAY, hold_policy=HOLDS)  # fmt: skip
    assert [(o.action_id, o.outcome) for o in outcomes] == [
        (first, "applied"), (second, "superseded"),
    ]  # fmt: skip
    assert status_of(engine, second)["superseded_reason"] == (
        f"the customer's tier 1 step (action {first}) was sent since this one was proposed"
    )
    assert len(smtp_server.handler.messages) == 1


def test_an_unconfirmed_step_holds_back_its_repeat(engine, database_url, tmp_path, smtp_server):
    approved_heavy_letter(engine, database_url, tmp_path, status="unconfirmed")
    run_job(database_url, tmp_path / "next", as_of=NEXT_DAY)
    assert skips(engine, NEXT_DAY)["H"] == "in_flight"
    assert actions(engine, as_of=NEXT_DAY, customer_id="H", action_type="collection_action") == []
    assert smtp_server.handler.messages == []


def test_a_copy_being_sent_by_another_run_stands_down(engine, database_url, tmp_path, smtp_server):
    """Two copies of the same step (an old failed one retried, and its repeat): while another
    run holds the first in ``applying``, this run sends nothing for the second."""
    first = approved_heavy_letter(engine, database_url, tmp_path, status="failed")
    run_job(database_url, tmp_path / "next", as_of=NEXT_DAY)
    (second,) = [r["action_id"] for r in actions(engine, as_of=NEXT_DAY, customer_id="H",
                                                  action_type="collection_action")]  # fmt: skip
    with engine.begin() as connection:
        approve(connection, [second], "alice", {"alice"}, NEXT_APPROVED_AT)
        connection.execute(
            proposed_actions.update()
            .where(proposed_actions.c.action_id == first)
            .values(status="applying", claimed_at=NEXT_APPROVED_AT)
        )
    (outcome,) = apply_actions(engine, mailer_for(smtp_server.port), [second],
                               approvers={"alice"}, as_of=NEXT_DAY, hold_policy=HOLDS)
    assert outcome.outcome == "superseded"
    assert status_of(engine, second)["superseded_reason"] == (
        f"the customer's tier 1 step (action {first}) is being sent (or was stranded mid-send) "
        "since this one was proposed"
    )
    assert smtp_server.handler.messages == []
