"""Applying approved actions against a real SMTP server on loopback (aiosmtpd), on both
databases: exactly once, only when approved by an approver, never for a stale proposal."""

import datetime as dt
import threading
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from ar_pipeline.actions.apply import apply_actions
from ar_pipeline.actions.approvals import approve, reject
from ar_pipeline.actions.mail import Mailer
from ar_pipeline.cli import main
from ar_pipeline.definitions import build_definitions
from ar_pipeline.defs.resources import ArDatabase
from ar_pipeline.rules.proposals import HoldPolicy
from ar_pipeline.rules.views import upgrade_database
from ar_pipeline.settings import load_settings
from ar_pipeline.store.database import get_engine
from ar_pipeline.store.schema import customers, proposed_actions
from ar_pipeline_tests.conftest import free_port
from ar_pipeline_tests.ledger_builder import (
    add_customer,
    add_invoice,
    add_payment,
    build_dunning_ledger,
)
from ar_pipeline_tests.test_proposals import actions, run_job

AS_OF = dt.date(2026, 3, 31)
NOW = dt.datetime(2026, 3, 31, 9, 0, tzinfo=dt.UTC)
HOLDS = HoldPolicy(90, Decimal("25000.00"))


def mailer_for(port: int) -> Mailer:
    return Mailer(mail_from="ar@example.com", smtp_host="127.0.0.1", smtp_port=port)


def staged_ids(engine) -> dict:
    return {
        (r["action_type"], r["customer_id"]): r["action_id"] for r in actions(engine, as_of=AS_OF)
    }


def status_of(engine, action_id):
    with engine.connect() as connection:
        return (
            connection.execute(
                sa.select(proposed_actions).where(proposed_actions.c.action_id == action_id)
            )
            .mappings()
            .one()
        )


def cli_environment(database_url, tmp_path, smtp_port, monkeypatch) -> dict[str, str]:
    """The settings of a CLI process that mails through the loopback server, set for the test
    (alice approves)."""
    env = {
        "AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"), "AR_APPROVERS": "alice",
        "AR_MAIL_FROM": "ar@example.com", "AR_SMTP_HOST": "127.0.0.1",
        "AR_SMTP_PORT": str(smtp_port),
    }  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def staged(engine, database_url, tmp_path):
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(database_url, tmp_path)
    return staged_ids(engine)


def test_cli_approval_sensor_and_apply_send_exactly_one(
    staged, engine, database_url, tmp_path, smtp_server, monkeypatch
):
    env = cli_environment(database_url, tmp_path, smtp_server.port, monkeypatch)
    letter, other = staged[("collection_action", "H")], staged[("collection_action", "D")]
    assert main(["approvals", "approve", str(letter), "--by", "alice"]) == 0
    assert main(["approvals", "reject", str(other), "--by", "alice", "--reason", "paid"]) == 0

    settings = load_settings(env)
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("approved_actions_sensor")
    resources = {"ar_db": ArDatabase.from_settings(settings)}
    with dg.build_sensor_context(cursor=None, resources=resources) as context:
        tick = sensor.evaluate_tick(context)
    (request,) = tick.run_requests
    assert request.run_config["ops"]["apply_approved"]["config"]["action_ids"] == [letter]

    job = defs.resolve_job_def("apply_approved_actions")
    run_config = request.run_config
    run_config["ops"]["apply_approved"]["config"]["as_of"] = "2026-03-31"
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(run_config=run_config, instance=instance, tags=request.tags)
        assert result.output_for_node("apply_approved") == {"applied": 1}
        # the same request again (a duplicate run) claims nothing and sends nothing
        again = job.execute_in_process(run_config=run_config, instance=instance)
        assert again.output_for_node("apply_approved") == {"not_claimed": 1}

    (received,) = smtp_server.handler.messages
    assert received["rcpt_tos"] == ["ap@heavy.example.com"]
    message = received["message"]
    assert message["Message-ID"] == f"<ar-action-{letter}@example.com>"
    assert message["Subject"] == "Friendly reminder: 1 overdue invoice"
    assert "  N-H1  due 2025-12-01  30,000.00 EUR\n" in received["body"]
    assert status_of(engine, letter)["status"] == "applied"
    assert status_of(engine, letter)["applied_at"] is not None
    assert status_of(engine, other)["status"] == "rejected"

    with dg.build_sensor_context(cursor=tick.cursor, resources=resources) as context:
        later = sensor.evaluate_tick(context)
    assert later.run_requests == [] and "No newly approved" in later.skip_message


def test_no_side_effect_without_an_approvers_approval(staged, engine, smtp_server):
    ids = staged
    with engine.begin() as connection:
        reject(connection, [ids[("collection_action", "D")]], "alice", "no", {"alice"}, NOW)
        pa = proposed_actions
        connection.execute(
            pa.update()
            .where(pa.c.action_id == ids[("email_to_customer", "A")])
            .values(status="superseded")
        )
        # rows approved by a name that is not (or no longer) in AR_APPROVERS
        connection.execute(
            pa.update()
            .where(pa.c.action_id.in_([ids[("customer_program", "H")],
                                       ids[("collection_action", "H")]]))
            .values(status="approved", decided_by="mallory")
        )  # fmt: skip
    outcomes = apply_actions(
        engine, mailer_for(smtp_server.port), list(ids.values()), approvers={"alice"},
        as_of=AS_OF, hold_policy=HOLDS,
    )  # fmt: skip
    assert smtp_server.handler.messages == []
    with engine.connect() as connection:
        assert not connection.execute(
            sa.select(customers.c.service_hold).where(customers.c.customer_id == "H")
        ).scalar_one()
    by_id = {o.action_id: o for o in outcomes}
    assert by_id[ids[("customer_program", "H")]].outcome == "failed"
    assert (
        "approved by 'mallory', who is not in AR_APPROVERS"
        in (status_of(engine, ids[("collection_action", "H")])["last_error"])
    )
    for key, status in [
        (("collection_action", "A"), "proposed"),
        (("collection_action", "D"), "rejected"),
        (("email_to_customer", "A"), "superseded"),
    ]:
        assert by_id[ids[key]].outcome == "not_claimed"
        assert status_of(engine, ids[key])["status"] == status


def test_approved_hold_sets_the_customer_flag_once(staged, engine, smtp_server):
    hold = staged[("customer_program", "H")]
    with engine.begin() as connection:
        approve(connection, [hold], "alice", {"alice"}, NOW)
    (outcome,) = apply_actions(
        engine, mailer_for(smtp_server.port), [hold], approvers={"alice"}, as_of=AS_OF,
        hold_policy=HOLDS, clock=lambda: NOW,
    )  # fmt: skip
    assert outcome.outcome == "applied"
    with engine.connect() as connection:
        row = (
            connection.execute(sa.select(customers).where(customers.c.customer_id == "H"))
            .mappings()
            .one()
        )
    assert row["service_hold"]
    assert row["service_hold_reason"].startswith(f"action {hold}: Over 90 days overdue")
    assert smtp_server.handler.messages == []


def test_invalid_recipient_fails_that_action_and_the_others_go_out(
    engine, database_url, tmp_path, smtp_server
):
    with engine.begin() as connection:
        build_dunning_ledger(connection)
        add_customer(connection, "X", "Trick Corp",
                     email="ap@trick.example.com\r\nBcc: evil@attacker.example.com")  # fmt: skip
        add_invoice(connection, "X1", "X", 50_000, "2026-01-01", "2026-02-01")
    run_job(database_url, tmp_path)
    ids = staged_ids(engine)
    letters = [ids[("collection_action", "X")], ids[("collection_action", "H")]]
    with engine.begin() as connection:
        approve(connection, letters, "alice", {"alice"}, NOW)
    outcomes = apply_actions(
        engine, mailer_for(smtp_server.port), letters, approvers={"alice"}, as_of=AS_OF,
        hold_policy=HOLDS,
    )  # fmt: skip
    assert {o.action_id: o.outcome for o in outcomes} == {
        letters[0]: "failed",
        letters[1]: "applied",
    }
    assert (
        "invalid draft: to[0]: invalid e-mail address"
        in status_of(engine, letters[0])["last_error"]
    )
    (received,) = smtp_server.handler.messages
    assert received["rcpt_tos"] == ["ap@heavy.example.com"]


def test_smtp_down_fails_after_retries_and_reapproval_sends(staged, engine, smtp_server):
    letter = staged[("collection_action", "H")]
    with engine.begin() as connection:
        approve(connection, [letter], "alice", {"alice"}, NOW)
    waits: list[float] = []
    (outcome,) = apply_actions(
        engine, mailer_for(free_port()), [letter], approvers={"alice"}, as_of=AS_OF,
        hold_policy=HOLDS, sleep=waits.append,
    )  # fmt: skip
    assert outcome.outcome == "failed"
    assert waits == [5.0, 10.0]  # 2 retries, linear backoff from 5 s
    row = status_of(engine, letter)
    assert row["status"] == "failed" and row["attempts"] == 1
    assert row["last_error"].startswith("not accepted after 3 attempts: ConnectionRefusedError")
    assert row["payload_json"]["subject"] == "Friendly reminder: 1 overdue invoice"  # kept

    with engine.begin() as connection:
        (decision,) = approve(connection, [letter], "alice", {"alice"}, NOW)
    assert decision.outcome == "approved"
    (outcome,) = apply_actions(
        engine, mailer_for(smtp_server.port), [letter], approvers={"alice"}, as_of=AS_OF,
        hold_policy=HOLDS,
    )  # fmt: skip
    assert outcome.outcome == "applied"
    assert len(smtp_server.handler.messages) == 1
    assert status_of(engine, letter)["attempts"] == 2


def test_payment_after_approval_supersedes(staged, engine, smtp_server):
    letter, hold = staged[("collection_action", "H")], staged[("customer_program", "H")]
    with engine.begin() as connection:
        approve(connection, [letter, hold], "alice", {"alice"}, NOW)
        add_payment(connection, "PH1", "H", 3_000_000, "2026-03-31", "H1")
    outcomes = apply_actions(
        engine, mailer_for(smtp_server.port), [letter, hold], approvers={"alice"}, as_of=AS_OF,
        hold_policy=HOLDS,
    )  # fmt: skip
    assert [o.outcome for o in outcomes] == ["superseded", "superseded"]
    assert "no longer overdue at tier 1" in status_of(engine, letter)["superseded_reason"]
    assert "hold conditions no longer met" in status_of(engine, hold)["superseded_reason"]
    assert smtp_server.handler.messages == []


def test_two_appliers_racing_send_one_message(postgres_url, tmp_path, smtp_server):
    """Real concurrency on PostgreSQL: two threads claim the same approved action."""
    engine = get_engine(postgres_url)
    upgrade_database(engine)
    with engine.begin() as connection:
        build_dunning_ledger(connection)
    run_job(postgres_url, tmp_path)
    letter = staged_ids(engine)[("collection_action", "H")]
    with engine.begin() as connection:
        approve(connection, [letter], "alice", {"alice"}, NOW)
    start = threading.Barrier(2)
    results: list = []

    def applier():
        start.wait()
        results.extend(
            apply_actions(
                engine,
                mailer_for(smtp_server.port),
                [letter],
                approvers={"alice"},
                as_of=AS_OF,
                hold_policy=HOLDS,
            )  # fmt: skip
        )

    threads = [threading.Thread(target=applier) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.outcome for o in results) == ["applied", "not_claimed"]
    assert len(smtp_server.handler.messages) == 1


def _change(kind):
    """What happens after Pine's letter (P1 5,000.00 and P2 300.00 overdue, no credit) is
    approved, and the reason the apply job gives, worked out by hand."""
    from ar_pipeline.actions.levers import record_hold
    from ar_pipeline_tests.ledger_builder import add_credit_note

    def apply(connection):
        if kind == "P1 paid in full":
            add_payment(connection, "PP1", "P", 500_000, "2026-03-31", "P1")
        elif kind == "P2 paid in part":
            add_payment(connection, "PP2", "P", 10_000, "2026-03-30", "P2")  # back-dated
        elif kind == "credit on account":
            add_credit_note(connection, "CP", "P", 5_000, "2026-03-31")
        else:
            record_hold(connection, invoice_id="P2", reason="audit",
                        held_until=dt.date(2026, 4, 30), recorded_by="carol", today=AS_OF,
                        now=NOW)  # fmt: skip

    why = {
        "P1 paid in full": "N-P1: 5,000.00 EUR in the letter, 0.00 EUR open now",
        "P2 paid in part": "N-P2: 300.00 EUR in the letter, 200.00 EUR open now",
        "credit on account": "unapplied credit 0.00 EUR in the letter, 50.00 EUR now",
        "P2 held": "N-P2 is held now",
    }[kind]
    return apply, f"the letter's amounts changed since it was drafted, as of 2026-03-31: {why}"


@pytest.mark.parametrize(
    "kind", ["P1 paid in full", "P2 paid in part", "credit on account", "P2 held"]
)
def test_a_letter_whose_amounts_moved_since_drafting_is_not_sent(
    kind, engine, database_url, tmp_path, smtp_server
):
    """The customer still owes enough for the tier, so the tier re-check alone would send the
    letter; but it would state amounts that are no longer true. It stands down instead."""
    with engine.begin() as connection:
        add_customer(connection, "P", "Pine Ltd", email="ap@pine.example.com")
        add_invoice(connection, "P1", "P", 500_000, "2026-01-01", "2026-02-28")  # 31 days
        add_invoice(connection, "P2", "P", 30_000, "2026-01-01", "2026-03-01")  # 30 days
    run_job(database_url, tmp_path)
    letter = staged_ids(engine)[("collection_action", "P")]
    payload = status_of(engine, letter)["payload_json"]
    assert [(i["invoice_id"], i["open_cents"]) for i in payload["invoices"]] == [
        ("P1", 500_000), ("P2", 30_000)]  # fmt: skip
    apply_change, reason = _change(kind)
    with engine.begin() as connection:
        approve(connection, [letter], "alice", {"alice"}, NOW)
        apply_change(connection)
    (outcome,) = apply_actions(engine, mailer_for(smtp_server.port), [letter],
                               approvers={"alice"}, as_of=AS_OF, hold_policy=HOLDS)  # fmt: skip
    assert (outcome.outcome, outcome.detail) == ("superseded", reason)
    assert status_of(engine, letter)["superseded_reason"] == reason
    assert smtp_server.handler.messages == []


def test_a_letter_whose_amounts_still_hold_is_sent(engine, database_url, tmp_path, smtp_server):
    """A payment on an invoice the letter does not list changes nothing the letter says."""
    with engine.begin() as connection:
        add_customer(connection, "P", "Pine Ltd", email="ap@pine.example.com")
        add_invoice(connection, "P1", "P", 500_000, "2026-01-01", "2026-02-28")
        add_invoice(connection, "P3", "P", 70_000, "2026-03-15", "2026-04-15")  # not yet due
    run_job(database_url, tmp_path)
    letter = staged_ids(engine)[("collection_action", "P")]
    with engine.begin() as connection:
        approve(connection, [letter], "alice", {"alice"}, NOW)
        add_payment(connection, "PP3", "P", 70_000, "2026-03-31", "P3")
    (outcome,) = apply_actions(engine, mailer_for(smtp_server.port), [letter],
                               approvers={"alice"}, as_of=AS_OF, hold_policy=HOLDS)  # fmt: skip
    assert outcome.outcome == "applied" and len(smtp_server.handler.messages) == 1


@pytest.mark.parametrize("paused_when", ["before approval", "after approval"])
def test_a_letter_to_a_customer_paused_since_drafting_is_not_sent(
    staged, engine, smtp_server, paused_when
):
    """Heavy's reminder was drafted on 03-31; a collector then pauses Heavy's dunning until
    04-30. Approved before or after the pause, the letter stands down: a pause is a person's
    decision, and nothing goes to a paused customer."""
    letter = staged[("collection_action", "H")]
    pause = customers.update().where(customers.c.customer_id == "H").values(
        dunning_paused_until=dt.date(2026, 4, 30))
    with engine.begin() as connection:
        if paused_when == "before approval":
            connection.execute(pause)
        approve(connection, [letter], "alice", {"alice"}, NOW)
        if paused_when == "after approval":
            connection.execute(pause)
    (outcome,) = apply_actions(engine, mailer_for(smtp_server.port), [letter],
                               approvers={"alice"}, as_of=AS_OF, hold_policy=HOLDS)  # fmt: skip
    reason = "dunning paused as of 2026-03-31 (a person paused this customer)"
    assert (outcome.outcome, outcome.detail) == ("superseded", reason)
    assert smtp_server.handler.messages == []


def test_the_next_run_takes_a_paused_customers_pending_letter_out_of_the_queue(
    staged, engine, database_url, tmp_path
):
    """Heavy's 03-31 reminder waits for a decision; Heavy is paused until 04-30 before the
    04-01 run. That run proposes nothing for Heavy (paused) and takes the waiting letter out of
    the queue; Delta's letter, not paused, keeps waiting."""
    with engine.begin() as connection:
        connection.execute(customers.update().where(customers.c.customer_id == "H").values(
            dunning_paused_until=dt.date(2026, 4, 30)))  # fmt: skip
    run_job(database_url, tmp_path, as_of=dt.date(2026, 4, 1))
    heavy = status_of(engine, staged[("collection_action", "H")])
    assert (heavy["status"], heavy["superseded_reason"]) == (
        "superseded", "dunning paused as of 2026-04-01")  # fmt: skip
    assert status_of(engine, staged[("collection_action", "D")])["status"] == "proposed"


def test_applying_a_runs_envelope_is_refused_and_changes_nothing(
    staged, engine, database_url, tmp_path, smtp_server, monkeypatch, capsys
):
    """The run summary suggests approving the whole envelope; `apply` of the envelope's ID is
    refused by name (its proposals are applied one by one) and leaves it approved; the apply
    job given it directly claims nothing."""
    cli_environment(database_url, tmp_path, smtp_server.port, monkeypatch)
    envelope = staged[("workflow_envelope", None)]
    assert main(["approvals", "approve", str(envelope), "--by", "alice"]) == 0
    capsys.readouterr()
    assert main(["apply", str(envelope), "--as-of", "2026-03-31"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"ID: {envelope} is a run's envelope: its proposals are applied one by one; nothing "
        "was changed"
    )
    assert status_of(engine, envelope)["status"] == "approved"
    (outcome,) = apply_actions(engine, mailer_for(smtp_server.port), [envelope],
                               approvers={"alice"}, as_of=AS_OF, hold_policy=HOLDS)  # fmt: skip
    assert outcome.outcome == "not_claimed"
    assert status_of(engine, envelope)["status"] == "approved"
    assert smtp_server.handler.messages == []


def test_a_waiting_service_hold_leaves_the_queue_once_the_customer_pays(
    staged, engine, database_url, tmp_path
):
    """Heavy's letter and service hold were staged on 03-31 and wait for a decision; Heavy
    pays the 30,000.00 on 04-01. The 04-01 run takes both out of the approver's queue."""
    with engine.begin() as connection:
        add_payment(connection, "PH", "H", 3_000_000, "2026-04-01", "H1")
    run_job(database_url, tmp_path, as_of=dt.date(2026, 4, 1))
    hold = status_of(engine, staged[("customer_program", "H")])
    assert (hold["status"], hold["superseded_reason"]) == ("superseded", (
        "no service hold called for as of 2026-04-01 (paid, credited, disputed, held, "
        "promised, or already on hold)"))  # fmt: skip
    assert status_of(engine, staged[("collection_action", "H")])["status"] == "superseded"
