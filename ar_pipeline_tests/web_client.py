"""Helpers to drive the approver's page in tests."""

from __future__ import annotations

import datetime as dt
import re

from starlette.testclient import TestClient

from ar_pipeline.accounts import hash_password
from ar_pipeline.web import create_app

PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22", "carol": "carol-secret-3"}
APPROVERS = {"alice", "bob"}  # carol may sign in and look, not decide


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 31, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def make_client(engine, clock: Clock | None = None, chart_rows=None) -> TestClient:
    # few iterations keep the tests fast; production hashes use the default
    accounts = {name: hash_password(pw, iterations=1_000) for name, pw in PASSWORDS.items()}
    app = create_app(
        engine, accounts, APPROVERS, "test-session-secret", clock=clock or Clock(),
        chart_rows=chart_rows,
    )  # fmt: skip
    return TestClient(app, follow_redirects=False)


def csrf_token(client: TestClient, path: str = "/login") -> str:
    html = client.get(path).text
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(client: TestClient, user: str, password: str | None = None):
    return client.post(
        "/login",
        data={"csrf": csrf_token(client), "username": user,
              "password": PASSWORDS[user] if password is None else password},
    )  # fmt: skip
