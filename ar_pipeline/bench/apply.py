"""Apply throughput (``ar-pipeline bench --apply-throughput``): 1,000 letters approved at once,
measured until the last one reaches a loopback SMTP server, with a real Dagster daemon running
``approved_actions_sensor`` and launching the apply runs."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ar_pipeline.bench.scratch import AS_OF, ScratchDatabase, in_child
from ar_pipeline.settings import PROJECT_ROOT

APPROVE = 1_000
TIMEOUT_SECONDS = 600


class _Counter:
    def __init__(self) -> None:
        self.received = 0
        self.last_at: float | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.received += 1
        self.last_at = time.monotonic()
        return "250 OK"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_apply_throughput(base_url: str) -> dict[str, Any]:
    from aiosmtpd.controller import Controller

    from ar_pipeline.actions.approvals import approve
    from ar_pipeline.store.database import get_engine
    from ar_pipeline.store.schema import proposed_actions

    counter = _Counter()
    smtp = Controller(counter, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    daemon: subprocess.Popen | None = None
    try:
        with ScratchDatabase(base_url, "apply") as url, tempfile.TemporaryDirectory() as home:
            in_child("generate", url, 10_000)
            in_child("job", url, home)
            engine = get_engine(url)
            pa = proposed_actions.c
            with engine.connect() as connection:
                ids = list(
                    connection.execute(
                        sa.select(pa.action_id)
                        .where(pa.action_type == "collection_action", pa.status == "proposed")
                        .order_by(pa.action_id)
                        .limit(APPROVE)
                    ).scalars()
                )
            if len(ids) < APPROVE:
                raise RuntimeError(f"only {len(ids)} letters were staged; need {APPROVE}")
            Path(home, "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
            env = {
                **os.environ,
                "DAGSTER_HOME": home,
                "AR_DATABASE_URL": url,
                "AR_DATA_DIR": home,
                "AR_APPROVERS": "bench",
                "AR_MAIL_FROM": "ar@bench.example.com",
                "AR_SMTP_HOST": "127.0.0.1",
                "AR_SMTP_PORT": str(smtp.port),
                "AR_TREND_START_DATE": AS_OF.isoformat(),
            }
            daemon = subprocess.Popen(
                [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w",
                 str(PROJECT_ROOT / "workspace.yaml")],
                cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            time.sleep(20)  # the daemon loads the code location and ticks the sensor once
            approved_at = time.monotonic()
            with engine.begin() as connection:
                approve(connection, ids, "bench", {"bench"}, dt.datetime.now(dt.UTC))
            while counter.received < APPROVE and time.monotonic() - approved_at < TIMEOUT_SECONDS:
                time.sleep(0.5)
            elapsed = (counter.last_at or time.monotonic()) - approved_at
            with engine.connect() as connection:
                statuses = dict(
                    connection.execute(
                        sa.select(pa.status, sa.func.count())
                        .where(pa.action_id.in_(ids))
                        .group_by(pa.status)
                    ).all()
                )
            if daemon.poll() is None:
                os.killpg(daemon.pid, signal.SIGTERM)
                daemon.wait(timeout=60)
            engine.dispose()
    finally:
        if daemon is not None and daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
        smtp.stop()
    return {
        "approved": APPROVE,
        "received": counter.received,
        "seconds_from_approval_to_last_message": round(elapsed, 1),
        "statuses": statuses,
        "within_two_minutes": counter.received == APPROVE and elapsed <= 120,
    }
