"""Helpers to drive the approver's page in tests."""

from __future__ import annotations

import datetime as dt
import re

from starlette.testclient import TestClient

from ar_pipeline.web.accounts import hash_password
from ar_pipeline.web.app import create_app

PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22", "carol": "carol-secret-3"}
APPROVERS = {"alice", "bob"}  # carol may sign in and look, not decide
HASH_ITERATIONS = 1_000  # few iterations keep the tests fast; production hashes use the default


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 31, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def make_app(engine, clock: Clock | None = None, chart_rows=None, **options):
    accounts = {
        name: hash_password(pw, iterations=HASH_ITERATIONS) for name, pw in PASSWORDS.items()
    }
    return create_app(
        engine, accounts, APPROVERS, "test-session-secret", clock=clock or Clock(),
        chart_rows=chart_rows, **options,
    )  # fmt: skip


def make_client(engine, clock: Clock | None = None, chart_rows=None, **options) -> TestClient:
    return TestClient(make_app(engine, clock, chart_rows, **options), follow_redirects=False)


def another_browser(client: TestClient, address: str = "testclient") -> TestClient:
    """A second browser on the same app (no cookies), from ``address``."""
    return TestClient(client.app, follow_redirects=False, client=(address, 50000))


def csrf_token(client: TestClient, path: str = "/login") -> str:
    html = client.get(path).text
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(client: TestClient, user: str, password: str | None = None, **fields):
    return client.post(
        "/login",
        data={"csrf": csrf_token(client), "username": user,
              "password": PASSWORDS[user] if password is None else password, **fields},
    )  # fmt: skip


def seen_on(client: TestClient, path: str = "/proposals") -> list[str]:
    """The versions the page at ``path`` shows (``seen`` fields), as a browser would send them
    with a decision or an edit."""
    return sorted(set(re.findall(r'name="seen" value="([^"]+)"', client.get(path).text)))
