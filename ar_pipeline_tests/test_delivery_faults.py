"""The delivery fault matrix: an approved letter against aiosmtpd servers that misbehave on
purpose, on both databases. Each case asserts how many messages the server kept, how many
times the client tried, the action's final status, and that a second apply sends nothing more.

Expected outcomes, by how far the SMTP dialogue got (``ar_pipeline.actions.mail``):

| server does                                   | messages kept | status      | attempts |
|-----------------------------------------------|---------------|-------------|----------|
| 250 to the data, then 500 to QUIT             | 1             | applied     | 1        |
| 250 to the data, then drops the connection    | 1             | applied     | 1        |
| 250 to the data after the client timed out    | 1             | unconfirmed | 1        |
| 550 to RCPT                                   | 0             | failed      | 1        |
| 554 to the data                               | 0             | failed      | 1        |
| 421 to MAIL, then normal                      | 1             | applied     | 2        |
| 451 to the data, then normal                  | 1             | applied     | 2        |
| drops the connection before DATA, then normal | 1             | applied     | 2        |
| drops the connection before DATA, always      | 0             | failed      | 3        |
| queues it, answers the data without a code    | 1             | unconfirmed | 1        |
| queues it, answers the data with "25"         | 1             | unconfirmed | 1        |
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from ar_pipeline.actions.apply import apply_actions
from ar_pipeline.actions.approvals import approve
from ar_pipeline.actions.mail import Mailer
from ar_pipeline_tests.conftest import CollectingHandler, free_port
from ar_pipeline_tests.test_apply import AS_OF, HOLDS, NOW, staged, status_of  # noqa: F401

# Long enough for a loaded CI machine to connect and greet; the late server answers after 3x.
CLIENT_TIMEOUT = 2.0


class MisbehavingHandler(CollectingHandler):
    """Collects messages like the well-behaved handler, but on the n-th connection (1-based)
    answers a step with what ``faults[n]`` says: ``{"MAIL": "421 ...", "RCPT": "550 ...",
    "DATA": "554 ..."|"drop"|"late", "QUIT": "500 ...", "before_data": "drop"}``."""

    def __init__(self, faults: dict[int, dict[str, str]]) -> None:
        super().__init__()
        self.faults = faults
        self.connections = 0

    def _fault(self, step: str) -> str | None:
        return self.faults.get(self.connections, {}).get(step)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: N802
        fault = self._fault("MAIL")
        if fault:
            return fault
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        if self._fault("before_data") == "drop":
            server.transport.close()
            return "250 OK"
        fault = self._fault("RCPT")
        if fault:
            return fault
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        fault = self._fault("DATA")
        if fault == "late":  # queued at once, answered after the client gave up
            answer = await super().handle_DATA(server, session, envelope)
            await asyncio.sleep(CLIENT_TIMEOUT * 3)
            return answer
        if fault == "drop":  # answers 250, then the connection is gone before QUIT
            answer = await super().handle_DATA(server, session, envelope)
            await server.push(answer)
            server.transport.close()
            return answer
        if fault and fault.startswith("queued, answered "):  # taken, the answer unreadable
            await super().handle_DATA(server, session, envelope)
            return fault.removeprefix("queued, answered ")
        if fault:
            return fault
        return await super().handle_DATA(server, session, envelope)

    async def handle_QUIT(self, server, session, envelope):  # noqa: N802
        return self._fault("QUIT") or "221 Bye"


@pytest.fixture
def misbehaving_server():
    from aiosmtpd.controller import Controller

    started = []

    def start(faults: dict[int, dict[str, str]]):
        handler = MisbehavingHandler(faults)
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


CASES = {
    "250 then QUIT 500": ({1: {"QUIT": "500 Internal error"}}, 1, "applied", 1),
    "250 then connection dropped": ({1: {"DATA": "drop"}}, 1, "applied", 1),
    "250 after the client's timeout": ({1: {"DATA": "late"}}, 1, "unconfirmed", 1),
    "550 on RCPT": ({1: {"RCPT": "550 5.1.1 No such user"}}, 0, "failed", 1),
    "554 to the data": ({1: {"DATA": "554 5.7.1 Rejected as spam"}}, 0, "failed", 1),
    "421 then success": ({1: {"MAIL": "421 4.3.2 Try again later"}}, 1, "applied", 2),
    "451 to the data then success": ({1: {"DATA": "451 4.3.0 Busy"}}, 1, "applied", 2),
    "dropped before DATA then success": ({1: {"before_data": "drop"}}, 1, "applied", 2),
    # queued, then an answer that is neither yes nor no: a second copy must not follow
    "queued, answered without a code": (
        {1: {"DATA": "queued, answered Ok: queued as 4F2A"}}, 1, "unconfirmed", 1,
    ),
    "queued, answer cut short": ({1: {"DATA": "queued, answered 25"}}, 1, "unconfirmed", 1),
    "dropped before DATA always": (
        {n: {"before_data": "drop"} for n in (1, 2, 3)}, 0, "failed", 3,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_fault_matrix(case, staged, engine, misbehaving_server):  # noqa: F811
    faults, messages, status, connections = CASES[case]
    server = misbehaving_server(faults)
    letter = staged[("collection_action", "H")]
    with engine.begin() as connection:
        approve(connection, [letter], "alice", {"alice"}, NOW)
    mailer = Mailer(mail_from="ar@example.com", smtp_host="127.0.0.1", smtp_port=server.port,
                    timeout_seconds=CLIENT_TIMEOUT)  # fmt: skip
    waits: list[float] = []

    def apply_once():
        return apply_actions(engine, mailer, [letter], approvers={"alice"}, as_of=AS_OF,
                             hold_policy=HOLDS, sleep=waits.append)  # fmt: skip

    (outcome,) = apply_once()
    assert outcome.outcome == status
    assert len(server.handler.messages) == messages
    assert server.handler.connections == connections
    assert waits == [5.0, 10.0][: connections - 1]
    row = status_of(engine, letter)
    assert row["status"] == status
    assert row["attempts"] == 1  # one claim, however many SMTP connections
    if messages:
        (received,) = server.handler.messages
        assert received["message"]["Message-ID"] == f"<ar-action-{letter}@example.com>"
    if status == "applied":
        assert row["applied_at"] is not None and row["delivery_detail"].startswith(
            f"smtp://127.0.0.1:{server.port}; 250"
        )
    if status == "failed" and "RCPT" in str(faults):
        assert row["last_error"] == (
            "refused by the mail server, not retried: RCPT TO ap@heavy.example.com answered "
            "550 5.1.1 No such user"
        )
    if status == "unconfirmed" and "queued, answered" in str(faults):
        assert "which is neither acceptance nor refusal" in row["last_error"]
    elif status == "unconfirmed":
        assert "no answer after the message data was sent" in row["last_error"]
        assert f"ar-pipeline approvals resolve {letter} --delivered" in row["last_error"]

    # nothing is sent again by another apply of the same id, and approving it again is refused
    # unless it failed before the server took anything
    assert apply_once()[0].outcome == "not_claimed"
    with engine.begin() as connection:
        (decision,) = approve(connection, [letter], "alice", {"alice"}, NOW)
    expected = "approved" if status == "failed" else f"not changed: it is {status}"
    assert decision.outcome == expected
    assert len(server.handler.messages) == messages


def test_quit_failure_after_acceptance_is_noted_not_resent(staged, engine, misbehaving_server):  # noqa: F811
    server = misbehaving_server({1: {"QUIT": "500 Internal error"}})
    letter = staged[("collection_action", "H")]
    with engine.begin() as connection:
        approve(connection, [letter], "alice", {"alice"}, NOW)
    mailer = Mailer(mail_from="ar@example.com", smtp_host="127.0.0.1", smtp_port=server.port)
    (outcome,) = apply_actions(engine, mailer, [letter], approvers={"alice"}, as_of=AS_OF,
                               hold_policy=HOLDS, clock=lambda: NOW)  # fmt: skip
    assert outcome.outcome == "applied"
    assert status_of(engine, letter)["delivery_detail"] == (
        f"smtp://127.0.0.1:{server.port}; 250 Message accepted for delivery; "
        "after acceptance QUIT answered 500 Internal error"
    )
    assert status_of(engine, letter)["applied_at"] == NOW


def test_an_apply_run_with_a_failed_action_is_not_green(
    staged, engine, database_url, tmp_path, misbehaving_server  # noqa: F811
):
    import dagster as dg

    from ar_pipeline.definitions import build_definitions
    from ar_pipeline.settings import load_settings

    server = misbehaving_server({1: {"RCPT": "550 5.1.1 No such user"}})
    # actions are applied in id order: Delta's letter (staged first) meets the refusal
    refused, sent = staged[("collection_action", "D")], staged[("collection_action", "H")]
    with engine.begin() as connection:
        approve(connection, [refused, sent], "alice", {"alice"}, NOW)
    settings = load_settings({
        "AR_DATABASE_URL": database_url, "AR_DATA_DIR": str(tmp_path), "AR_APPROVERS": "alice",
        "AR_MAIL_FROM": "ar@example.com", "AR_SMTP_HOST": "127.0.0.1",
        "AR_SMTP_PORT": str(server.port),
    })  # fmt: skip
    job = build_definitions(settings).resolve_job_def("apply_approved_actions")
    config = {"action_ids": [refused, sent], "as_of": AS_OF.isoformat()}
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            run_config={"ops": {"apply_approved": {"config": config}}}, instance=instance,
            raise_on_error=False,
        )  # fmt: skip
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_failure_data.user_failure_data.description == (
        f"1 of 2 action(s) need attention: action {refused} failed: refused by the mail "
        "server, not retried: RCPT TO ap@delta.example.com answered 550 5.1.1 No such user"
    )
    # the other action of the batch still went out, once
    assert status_of(engine, sent)["status"] == "applied"
    assert [m["rcpt_tos"] for m in server.handler.messages] == [["ap@heavy.example.com"]]


class SlowFirstHandler(CollectingHandler):
    """Collects every message; while the first one's data arrives, ``meanwhile()`` runs: what a
    person does on the page while a slow mail server holds the apply run on one letter."""

    def __init__(self, meanwhile) -> None:
        super().__init__()
        self.meanwhile = meanwhile

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if not self.messages:
            await asyncio.get_running_loop().run_in_executor(None, self.meanwhile)
        return await super().handle_DATA(server, session, envelope)


def test_a_letter_waiting_in_a_slow_batch_cannot_be_sent_again_by_a_person(
    staged, engine  # noqa: F811
):
    """Two letters in one apply run; the first takes 20 minutes at the mail server. A person
    looking at the page then may not "send it again" the second: it is not claimed yet, so it
    is not stranded. The run sends each letter once."""
    from aiosmtpd.controller import Controller

    from ar_pipeline.actions.approvals import resolve

    first, second = staged[("collection_action", "D")], staged[("collection_action", "H")]
    with engine.begin() as connection:
        approve(connection, [first, second], "alice", {"alice"}, NOW)
    later = NOW + dt.timedelta(minutes=20)
    answers = []

    def person_presses_send_again():
        with engine.begin() as connection:
            answers.extend(resolve(connection, [second], "send_again", "bob", {"bob"}, later))

    clock = iter([NOW, later, later, later, later])
    controller = Controller(SlowFirstHandler(person_presses_send_again), hostname="127.0.0.1",
                            port=free_port())  # fmt: skip
    controller.start()
    try:
        mailer = Mailer(mail_from="ar@example.com", smtp_host="127.0.0.1",
                        smtp_port=controller.port)  # fmt: skip
        outcomes = apply_actions(engine, mailer, [first, second], approvers={"alice"},
                                 as_of=AS_OF, hold_policy=HOLDS,
                                 clock=lambda: next(clock))  # fmt: skip
        # the send-again run the sensor would start, had the person's answer been a yes
        again = apply_actions(engine, mailer, [second], approvers={"alice", "bob"}, as_of=AS_OF,
                              hold_policy=HOLDS, clock=lambda: later)  # fmt: skip
    finally:
        controller.stop()
    (answer,) = answers
    assert answer.outcome == (
        "not changed: it is approved; only unconfirmed or stranded applying actions are resolved"
    )
    assert [o.outcome for o in outcomes] == ["applied", "applied"]
    assert [o.outcome for o in again] == ["not_claimed"]
    recipients = [m["rcpt_tos"] for m in controller.handler.messages]
    assert recipients == [["ap@delta.example.com"], ["ap@heavy.example.com"]]
    assert status_of(engine, second)["claimed_at"] == later  # claimed when its turn came


def test_a_letter_a_person_took_back_between_attempts_is_not_sent(
    staged, engine, misbehaving_server  # noqa: F811
):
    """The first attempt is not taken (421); while the run waits to try again, a person settles
    the row ("send it again", as if stranded). The run's next attempt finds the row no longer
    its claim and sends nothing; the run the person started sends it, once."""
    from ar_pipeline.actions.approvals import resolve

    server = misbehaving_server({1: {"MAIL": "421 4.3.2 Try again later"}})
    letter = staged[("collection_action", "H")]
    with engine.begin() as connection:
        approve(connection, [letter], "alice", {"alice"}, NOW)
    later = NOW + dt.timedelta(minutes=20)

    def wait_while_a_person_acts(_seconds):
        with engine.begin() as connection:
            (answer,) = resolve(connection, [letter], "send_again", "bob", {"bob"}, later)
        assert answer.outcome == "approved"

    mailer = Mailer(mail_from="ar@example.com", smtp_host="127.0.0.1", smtp_port=server.port)
    (outcome,) = apply_actions(engine, mailer, [letter], approvers={"alice"}, as_of=AS_OF,
                               hold_policy=HOLDS, sleep=wait_while_a_person_acts,
                               clock=lambda: NOW)  # fmt: skip
    assert (outcome.outcome, outcome.detail) == ("not_claimed", "taken out of this run meanwhile")
    assert server.handler.messages == []
    (again,) = apply_actions(engine, mailer, [letter], approvers={"bob"}, as_of=AS_OF,
                             hold_policy=HOLDS, clock=lambda: later)  # fmt: skip
    assert again.outcome == "applied" and len(server.handler.messages) == 1


def test_a_database_error_after_acceptance_is_that_letters_trouble_only(
    staged, engine, smtp_server  # noqa: F811
):
    """The server takes the first letter, then recording it fails (the database went away for
    that statement). That letter is an ``error`` that may have gone out and stays ``applying``
    for a person; the second letter is still sent; the op has no retry that would turn the run
    green."""
    from ar_pipeline.actions.apply import NEEDS_ATTENTION
    from ar_pipeline.defs.jobs import apply_approved

    first, second = staged[("collection_action", "D")], staged[("collection_action", "H")]
    with engine.begin() as connection:
        approve(connection, [first, second], "alice", {"alice"}, NOW)
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER gone BEFORE UPDATE ON proposed_actions WHEN NEW.status = "
                f"'applied' AND NEW.action_id = {first} BEGIN SELECT RAISE(ABORT, "
                "'database went away'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION gone() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION "
                "'database went away'; END $$ LANGUAGE plpgsql"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER gone BEFORE UPDATE ON proposed_actions FOR EACH ROW WHEN "
                f"(NEW.status = 'applied' AND NEW.action_id = {first}) EXECUTE FUNCTION gone()"
            )
    mailer = Mailer(mail_from="ar@example.com", smtp_host="127.0.0.1", smtp_port=smtp_server.port)
    outcomes = apply_actions(engine, mailer, [first, second], approvers={"alice"}, as_of=AS_OF,
                             hold_policy=HOLDS, clock=lambda: NOW)  # fmt: skip
    assert [(o.action_id, o.outcome) for o in outcomes] == [(first, "error"), (second, "applied")]
    assert "database went away" in outcomes[0].detail
    assert "it may have happened" in outcomes[0].detail
    assert "error" in NEEDS_ATTENTION  # the run fails, naming it
    assert status_of(engine, first)["status"] == "applying"  # a person resolves it
    assert status_of(engine, second)["status"] == "applied"
    assert len(smtp_server.handler.messages) == 2
    assert apply_approved.retry_policy is None
