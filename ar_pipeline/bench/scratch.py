"""What the benchmark's parts share: the as-of date, a step run in a child process (its peak
resident memory its own), and a scratch database beside ``AR_DATABASE_URL``."""

from __future__ import annotations

import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

AS_OF = dt.date(2026, 3, 31)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def in_child(step: str, *args: Any) -> dict[str, Any]:
    """Run one step in a fresh interpreter and return what it printed as JSON."""
    command = [sys.executable, "-m", "ar_pipeline.bench.run", "--step", step, json.dumps(args)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step {step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- scratch databases ------------------------------------------------------------------


class ScratchDatabase:
    """A fresh database beside ``base_url``: a new PostgreSQL database, or a SQLite file."""

    def __init__(self, base_url: str, label: str) -> None:
        self.base = make_url(base_url)
        self.is_postgres = self.base.get_backend_name() == "postgresql"
        self.name = f"ar_bench_{label}_{uuid.uuid4().hex[:6]}"
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> str:
        if self.is_postgres:
            self._admin(f'CREATE DATABASE "{self.name}"')
            return self.base.set(database=self.name).render_as_string(hide_password=False)
        self._tmp = tempfile.TemporaryDirectory(prefix="ar_bench_")
        return f"sqlite:///{Path(self._tmp.name) / (self.name + '.sqlite3')}"

    def __exit__(self, *exc: Any) -> None:
        if self.is_postgres:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        elif self._tmp is not None:
            self._tmp.cleanup()

    def _admin(self, statement: str) -> None:
        engine = sa.create_engine(self.base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sa.text(statement))
        engine.dispose()
