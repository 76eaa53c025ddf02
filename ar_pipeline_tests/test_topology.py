"""The production topology, for real: every process of a deployment started on its own, with its
own environment, on a PostgreSQL Dagster instance and a PostgreSQL business database.

- the code location (``dagster code-server start``): the business settings, SMTP, approvers;
- ``dagster-daemon`` and ``dagster-webserver``: only ``DAGSTER_HOME`` and a workspace that
  points at the code location's gRPC port;
- the approver's page (``ar-pipeline web``): the business database, accounts, approvers.

The daily job is launched through the webserver's GraphQL API (queued, started by the daemon,
run by the code location), a letter is approved through the page over HTTP, the daemon's
sensor launches the apply job, and exactly one message reaches an aiosmtpd server. Then every
process is stopped with SIGTERM and must exit.

The page's environment lists one approver more than the code location's (bob): his decision is
refused on the page, because the apply job would refuse it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ar_pipeline.rules.views import upgrade_database
from ar_pipeline.store.database import get_engine
from ar_pipeline.store.schema import proposed_actions, published_settings
from ar_pipeline.web.accounts import hash_password
from ar_pipeline_tests.conftest import create_postgres_database, drop_postgres_database, free_port
from ar_pipeline_tests.ledger_builder import build_dunning_ledger

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AS_OF = "2026-03-31"
PASSWORD = "topology-secret-1"
# A code server winds down its gRPC workers on SIGTERM; on a busy two-core machine that has
# taken more than 30 s.
STOP_SECONDS = 90


def _wait_for(what: str, condition, timeout: float, processes) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process, log in processes:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{log.read_text()}")
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    logs = "\n".join(f"--- {name}\n{log.read_text()[-3000:]}" for name, _, log in processes)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def _published(engine) -> list[str] | None:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(published_settings.c.value_json).where(
                published_settings.c.name == "AR_APPROVERS"
            )
        ).scalar_one_or_none()


def _approve_on_the_page(page: str, user: str, action_id: int) -> httpx.Response:
    """Sign in as ``user`` and approve ``action_id``, as a browser would post the forms."""
    with httpx.Client(base_url=page, follow_redirects=False, timeout=30) as browser:
        token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text)[1]
        signed_in = browser.post(
            "/login", data={"csrf": token, "username": user, "password": PASSWORD}
        )
        assert signed_in.status_code == 303
        page = browser.get("/proposals").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)[1]
        seen = re.search(rf'name="seen" value="({action_id}:[^"]+)"', page)[1]
        return browser.post("/proposals/decide", data={
            "csrf": token, "ids": [str(action_id)], "decision": "approve",
            "seen": seen})  # fmt: skip


RUNS_IN_PROGRESS = """
query { runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED, CANCELING]}) {
  ... on Runs { results { runId } } } }
"""


def _runs_in_progress(client) -> int:
    return len(client._execute(RUNS_IN_PROGRESS)["runsOrError"]["results"])


def _logged(log: Path, text: str):
    return lambda: text in log.read_text()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


@pytest.fixture
def instance_url():
    """A throwaway PostgreSQL database for the Dagster instance (psycopg2 driver)."""
    url = create_postgres_database()
    try:
        yield make_url(url).set(drivername="postgresql+psycopg2").render_as_string(
            hide_password=False
        )
    finally:
        drop_postgres_database(url)


def test_daily_run_approval_on_the_page_and_one_letter_through_the_daemon(
    postgres_url, instance_url, tmp_path, smtp_server
):
    engine = get_engine(postgres_url)
    upgrade_database(engine)
    with engine.begin() as connection:
        build_dunning_ledger(connection)

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_url:\n      env: AR_DAGSTER_POSTGRES_URL\n"
        "run_coordinator:\n  module: dagster._core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n"
        "telemetry:\n  enabled: false\n"
    )
    code_port, web_port, page_port = free_port(), free_port(), free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
        f"      port: {code_port}\n      location_name: ar_pipeline\n"
    )
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    if "PYTHONPATH" in os.environ:  # the processes run the code under test, wherever it is
        base["PYTHONPATH"] = os.environ["PYTHONPATH"]
    dagster_env = {**base, "DAGSTER_HOME": str(home), "AR_DAGSTER_POSTGRES_URL": instance_url}
    business = {"AR_DATABASE_URL": postgres_url, "AR_TIMEZONE": "UTC"}
    code_env = {
        **dagster_env, **business, "AR_APPROVERS": "alice", "AR_DATA_DIR": str(tmp_path / "code"),
        "AR_MAIL_FROM": "ar@example.com", "AR_SMTP_HOST": "127.0.0.1",
        "AR_SMTP_PORT": str(smtp_server.port), "AR_TREND_START_DATE": "2026-03-01",
    }  # fmt: skip
    hashed = hash_password(PASSWORD, iterations=1_000)
    page_env = {
        **base, **business, "AR_DATA_DIR": str(tmp_path / "page"), "AR_APPROVERS": "alice,bob",
        "AR_WEB_USERS": f"alice:{hashed},bob:{hashed}",
        "AR_WEB_SECRET": "topology-test-secret",
    }  # fmt: skip

    # the instance's tables, once, before the processes share it
    subprocess.run([BIN / "dagster", "instance", "migrate"], env=dagster_env, check=True,
                   cwd=tmp_path, capture_output=True)  # fmt: skip

    commands = {
        "code location": (
            [BIN / "dagster", "code-server", "start", "-h", "127.0.0.1", "-p", str(code_port),
             "-m", "ar_pipeline.definitions"], code_env,
        ),
        "daemon": ([BIN / "dagster-daemon", "run", "-w", str(workspace)], dagster_env),
        "webserver": (
            [BIN / "dagster-webserver", "-h", "127.0.0.1", "-p", str(web_port),
             "-w", str(workspace)], dagster_env,
        ),
        "approver's page": (
            [BIN / "ar-pipeline", "web", "--host", "127.0.0.1", "--port", str(page_port)],
            page_env,
        ),
    }  # fmt: skip
    processes = []
    try:
        for name, (argv, env) in commands.items():
            log = tmp_path / f"{name.replace(' ', '_').replace(chr(39), '')}.log"
            process = subprocess.Popen(
                argv, env=env, cwd=PROJECT_ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            processes.append((name, process, log))
            if name == "code location":  # the others load it
                _wait_for("the code location", _logged(log, "Started Dagster code server"),
                          120, processes)  # fmt: skip
        _wait_for("the webserver", lambda: _answers(f"http://127.0.0.1:{web_port}/server_info"),
                  120, processes)  # fmt: skip
        page = f"http://127.0.0.1:{page_port}"
        _wait_for("the approver's page", lambda: _answers(f"{page}/login"), 60, processes)

        from dagster_graphql import DagsterGraphQLClient

        client = DagsterGraphQLClient("127.0.0.1", port_number=web_port)
        run_id = client.submit_job_execution(
            "ar_aging_daily", repository_location_name="ar_pipeline",
            tags={"ar_pipeline/as_of": AS_OF},
        )  # fmt: skip
        status = _wait_for(
            "the daily run",
            lambda: (s := client.get_run_status(run_id).value) in ("SUCCESS", "FAILURE") and s,
            180, processes,
        )  # fmt: skip
        assert status == "SUCCESS"

        with engine.connect() as connection:
            letter = connection.execute(
                sa.select(proposed_actions.c.action_id).where(
                    proposed_actions.c.customer_id == "H",
                    proposed_actions.c.action_type == "collection_action",
                )
            ).scalar_one()
        # the code location's sensor has told the database who may decide
        _wait_for("the published approvers", lambda: _published(engine), 60, processes)
        refused = _approve_on_the_page(page, "bob", letter)
        assert refused.status_code == 403
        assert "not in the apply job&#39;s AR_APPROVERS" in refused.text
        decided = _approve_on_the_page(page, "alice", letter)
        assert decided.status_code == 303, decided.text

        def letter_status():
            with engine.connect() as connection:
                value = connection.execute(
                    sa.select(proposed_actions.c.status).where(
                        proposed_actions.c.action_id == letter
                    )
                ).scalar_one()
            return value if value in ("applied", "failed", "unconfirmed", "superseded") else None

        assert _wait_for("the sensor's apply run", letter_status, 180, processes) == "applied"
        time.sleep(3)  # a second run, if the sensor asked twice, would have sent by now
        (received,) = smtp_server.handler.messages
        assert received["rcpt_tos"] == ["ap@heavy.example.com"]
        assert received["message"]["Message-ID"] == f"<ar-action-{letter}@example.com>"
        with engine.connect() as connection:
            decided_by = connection.execute(
                sa.select(proposed_actions.c.decided_by).where(
                    proposed_actions.c.action_id == letter
                )
            ).scalar_one()
        assert decided_by == "alice"
        # the daily run's trend partition and the apply run finish before the processes stop
        _wait_for("no run in progress", lambda: _runs_in_progress(client) == 0, 180, processes)
    finally:
        stuck = _stop(processes)
        engine.dispose()
    assert stuck == [], f"did not stop on SIGTERM within {STOP_SECONDS} s: {stuck}"


def _stop(processes) -> list[str]:
    """SIGTERM to every process group, newest first; the names of those still running
    STOP_SECONDS later (they are then killed)."""
    for _name, process, _log in reversed(processes):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    stuck = []
    for name, process, _log in processes:
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            stuck.append(name)
    return stuck
