"""Shared fixtures: every database test runs on SQLite and on PostgreSQL, each test in its own
throwaway database.

PostgreSQL is 127.0.0.1:5432, user ``postgres``, trust auth (``AR_TEST_POSTGRES_URL`` overrides
the server URL). When it is unreachable the PostgreSQL variants are skipped with the reason,
except under CI (``CI`` set), where they fail: CI must prove both databases.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from ar_pipeline.rules.views import upgrade_database
from ar_pipeline.store.database import get_engine

# The suite must not depend on the shell it runs in: settings a test needs, it sets itself.
# (Cleared before any test module imports ar_pipeline.definitions, whose `defs` reads them.)
for _name in [n for n in os.environ if n.startswith("AR_") and not n.startswith("AR_TEST_")]:
    del os.environ[_name]
os.environ.pop("DAGSTER_HOME", None)

POSTGRES_SERVER_URL = os.environ.get(
    "AR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
_postgres_problem: str | None = None
_postgres_checked = False


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can (checked once per session)."""
    global _postgres_checked, _postgres_problem
    if not _postgres_checked:
        _postgres_checked = True
        try:
            engine = sa.create_engine(POSTGRES_SERVER_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            engine.dispose()
        except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
            _postgres_problem = f"PostgreSQL not reachable at {POSTGRES_SERVER_URL}: {error}"
    return _postgres_problem


def _admin_execute(statement: str) -> None:
    engine = sa.create_engine(POSTGRES_SERVER_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(statement))
    engine.dispose()


def create_postgres_database() -> str:
    name = f"ar_test_{uuid.uuid4().hex[:12]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    return make_url(POSTGRES_SERVER_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    get_engine(url).dispose()
    name = make_url(url).database
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def require_postgres() -> None:
    problem = postgres_unavailable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI requires PostgreSQL: {problem}")
        pytest.skip(problem)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A URL of an empty throwaway database, once per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ar_test.sqlite3'}"
        yield url
        get_engine(url).dispose()
        return
    require_postgres()
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def engine(database_url: str) -> Engine:
    """A migrated, empty business database."""
    engine = get_engine(database_url)
    upgrade_database(engine)
    return engine


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database (for tests about PostgreSQL itself)."""
    require_postgres()
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


class CollectingHandler:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        import email
        from email.policy import default

        parsed = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=default
        )
        self.messages.append(
            {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
             "message": parsed, "body": parsed.get_content().replace("\r\n", "\n")}
        )  # fmt: skip
        return "250 Message accepted for delivery"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback; ``.port`` and ``.handler.messages``."""
    from aiosmtpd.controller import Controller

    handler = CollectingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def alga_url() -> Iterator[str]:
    """A throwaway PostgreSQL database holding the hand-built Alga PSA tenants
    (``alga_fixture``); the pipeline's own database is another one."""
    from ar_pipeline.sources.alga_fixture import load_all
    from ar_pipeline.sources.alga_psa import alga_engine

    require_postgres()
    url = create_postgres_database()
    setup = sa.create_engine(url)
    try:
        load_all(setup)
        setup.dispose()
        yield url
    finally:
        alga_engine(url).dispose()
        drop_postgres_database(url)
