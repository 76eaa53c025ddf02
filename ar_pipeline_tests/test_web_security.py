"""The approver's page under attack, on both databases: open redirects, replayed cookies, password
guessing, telling user names apart, framing, and forged forms. The app's clock is passed in:
nothing here depends on the wall clock."""

import asyncio
import datetime as dt
import hashlib
import re

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from ar_pipeline.store.schema import customers, proposed_actions, web_sessions
from ar_pipeline.web import accounts
from ar_pipeline.web.accounts import hash_password, verify_password
from ar_pipeline.web.app import dummy_hash
from ar_pipeline.web.sessions import safe_path
from ar_pipeline_tests.web_client import (
    APPROVERS,
    HASH_ITERATIONS,
    PASSWORDS,
    Clock,
    another_browser,
    csrf_token,
    make_app,
    make_client,
    seen_on,
    sign_in,
)

NOW = dt.datetime(2026, 3, 31, 9, 0, tzinfo=dt.UTC)
ATTACKS = [
    "//evil.example/x",
    "/\\evil.example/x",
    "\\\\evil.example/x",
    "///evil.example/x",
    "https://evil.example/x",
    "http:/evil.example/x",
    "javascript:alert(1)",
    "/\t/evil.example/x",
    "/\n/evil.example/x",
    " //evil.example/x",
    "evil.example/x",
]


def one_proposal(engine) -> int:
    """A pending letter to Heavy Industries, written directly (no daily run needed)."""
    with engine.begin() as connection:
        connection.execute(customers.insert().values(customer_id="H",
                                                     customer_name="Heavy Industries"))
        return connection.execute(
            proposed_actions.insert().values(
                idempotency_key="collection_action:2026-03-31:H:tier1", as_of=dt.date(2026, 3, 31),
                action_type="collection_action", customer_id="H", tier=1, status="proposed",
                proposed_at=NOW, payload_json={"to": ["ap@heavy.example.com"], "subject": "Pay",
                                               "body": "Please pay.", "customer_name": "Heavy"},
            ).returning(proposed_actions.c.action_id)
        ).scalar_one()  # fmt: skip


def status_of(engine, action_id) -> tuple:
    with engine.connect() as connection:
        return tuple(
            connection.execute(
                sa.select(proposed_actions.c.status, proposed_actions.c.decided_by).where(
                    proposed_actions.c.action_id == action_id
                )
            ).one()
        )


def signed_in(client) -> bool:
    return client.get("/proposals").status_code == 200


# --- open redirects -------------------------------------------------------------------------


def test_redirects_go_to_same_site_paths_only(engine):
    letter = one_proposal(engine)
    client = make_client(engine)
    for attack in ATTACKS:
        page = client.get("/login", params={"next": attack}).text
        assert 'name="next" value="/proposals"' in page, attack
        response = sign_in(client, "alice", next=attack)
        assert (response.status_code, response.headers["location"]) == (303, "/proposals"), attack
        token = csrf_token(client, "/proposals")
        edited = client.post(f"/proposals/{letter}/edit",
                             data={"csrf": token, "subject": "Pay", "body": "Pay.", "back": attack,
                                   "seen": seen_on(client)})  # fmt: skip
        assert edited.headers["location"] == f"/proposals#action-{letter}", attack
        refused = client.post("/proposals/decide", data={"csrf": token, "ids": [letter],
                                                         "decision": "reject", "back": attack})
        assert refused.status_code == 400 and "location" not in refused.headers, attack
    decided = client.post("/proposals/decide", data={
        "csrf": csrf_token(client, "/proposals"), "ids": [letter], "decision": "approve",
        "back": "//evil.example/x", "seen": seen_on(client)})  # fmt: skip
    assert (decided.status_code, decided.headers["location"]) == (303, "/proposals")
    assert status_of(engine, letter) == ("approved", "alice")
    # a path of this site is kept, with its query
    kept = sign_in(another_browser(client), "bob", next="/history?page=2")
    assert kept.headers["location"] == "/history?page=2"


def test_safe_path_rules():
    for attack in ATTACKS:
        assert safe_path(attack, "/proposals") == "/proposals", attack
    assert safe_path("/proposals?view=attention&tier=3#action-7", "/") == (
        "/proposals?view=attention&tier=3#action-7"
    )
    assert safe_path(None, "/proposals") == "/proposals"


# --- sessions -------------------------------------------------------------------------------


def test_a_cookie_replayed_after_sign_out_opens_nothing(engine):
    letter = one_proposal(engine)
    client = make_client(engine)
    sign_in(client, "alice")
    token = csrf_token(client, "/proposals")
    stolen = client.cookies["ar_session"]
    signed_out = client.post("/logout", data={"csrf": token})
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/login")
    with engine.connect() as connection:
        assert connection.execute(sa.select(web_sessions)).all() == []

    replay = another_browser(client)
    replay.cookies.set("ar_session", stolen)
    page = replay.get("/proposals")
    assert (page.status_code, page.headers["location"]) == (303, "/login?next=%2Fproposals")
    decided = replay.post("/proposals/decide",
                          data={"csrf": token, "ids": [letter], "decision": "approve"})
    assert decided.status_code == 303 and decided.headers["location"].startswith("/login")
    assert status_of(engine, letter) == ("proposed", None)


def test_a_session_ends_eight_hours_after_sign_in_whatever_the_activity(engine):
    letter = one_proposal(engine)
    clock = Clock()
    client = make_client(engine, clock)
    sign_in(client, "alice")
    token = csrf_token(client, "/proposals")
    stolen = client.cookies["ar_session"]
    for _ in range(23):  # a request every 20 minutes until 16:40
        clock.now += dt.timedelta(minutes=20)
        assert signed_in(client), clock.now
    clock.now = NOW + dt.timedelta(hours=7, minutes=59, seconds=59)
    assert signed_in(client)
    clock.now = NOW + dt.timedelta(hours=8)
    replay = another_browser(client)
    replay.cookies.set("ar_session", stolen)
    decided = replay.post("/proposals/decide",
                          data={"csrf": token, "ids": [letter], "decision": "approve"})
    assert decided.status_code == 303 and decided.headers["location"].startswith("/login")
    assert not signed_in(client)
    assert status_of(engine, letter) == ("proposed", None)


def test_a_session_ends_after_thirty_idle_minutes(engine):
    letter = one_proposal(engine)
    clock = Clock()
    client = make_client(engine, clock)
    sign_in(client, "alice")
    token = csrf_token(client, "/proposals")
    clock.now += dt.timedelta(minutes=29)
    assert signed_in(client)  # and the idle time starts again
    clock.now += dt.timedelta(minutes=29)
    assert signed_in(client)
    clock.now += dt.timedelta(minutes=30)
    decided = client.post("/proposals/decide",
                          data={"csrf": token, "ids": [letter], "decision": "approve"})
    assert decided.status_code == 303 and decided.headers["location"].startswith("/login")
    assert status_of(engine, letter) == ("proposed", None)
    assert not signed_in(client)


def test_ended_sessions_are_deleted_at_the_next_sign_in(engine):
    clock = Clock()
    client = make_client(engine, clock)
    sign_in(client, "alice")
    sign_in(another_browser(client), "carol")
    clock.now += dt.timedelta(minutes=31)  # both idle too long, and nobody asked since
    sign_in(another_browser(client), "bob")
    with engine.connect() as connection:
        users = connection.execute(sa.select(web_sessions.c.user_name)).scalars().all()
    assert users == ["bob"]


def test_the_cookie_is_an_opaque_token_and_only_its_hash_is_stored(engine):
    client = make_client(engine)
    response = sign_in(client, "alice")
    cookie = client.cookies["ar_session"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie)  # 32 random bytes, nothing else
    assert "alice" not in cookie and csrf_token(client, "/proposals") not in cookie
    header = response.headers["set-cookie"]
    assert header.startswith(f"ar_session={cookie};")
    assert "httponly" in header.lower() and "samesite=strict" in header.lower()
    assert "secure" not in header.lower() and "Path=/" in header
    with engine.connect() as connection:
        (row,) = connection.execute(sa.select(web_sessions)).mappings().all()
    assert row["token_hash"] == hashlib.sha256(cookie.encode()).hexdigest()
    assert cookie not in repr(dict(row))
    assert (row["user_name"], row["created_at"], row["expires_at"]) == (
        "alice", NOW, NOW + dt.timedelta(hours=8))
    # a second sign-in is a new session; the one it replaces ends
    sign_in(client, "alice")
    assert client.cookies["ar_session"] != cookie
    with engine.connect() as connection:
        hashes = connection.execute(sa.select(web_sessions.c.token_hash)).scalars().all()
    assert hashes == [hashlib.sha256(client.cookies["ar_session"].encode()).hexdigest()]


def test_a_new_password_ends_the_sessions_opened_with_the_old_one(engine):
    """Alice's password leaked and an attacker signed in with it; the admin gives her a new one
    and restarts the page. The attacker's session ends at its next request; Bob's, whose
    password did not change, goes on. The table keeps an HMAC of the hash, not the hash."""
    from starlette.testclient import TestClient

    from ar_pipeline.web.accounts import hash_password
    from ar_pipeline.web.app import create_app

    letter = one_proposal(engine)
    clock = Clock()
    accounts = {name: hash_password(pw, iterations=HASH_ITERATIONS)
                for name, pw in PASSWORDS.items()}  # fmt: skip

    def browser(accounts):
        app = create_app(engine, accounts, APPROVERS, "test-session-secret", clock=clock)
        return TestClient(app, follow_redirects=False)

    attacker, bob = browser(accounts), browser(accounts)
    sign_in(attacker, "alice")
    sign_in(bob, "bob")
    with engine.connect() as connection:
        stored = connection.execute(sa.select(web_sessions.c.credential)).scalars().all()
    assert len(stored) == 2 and all(re.fullmatch(r"[0-9a-f]{64}", c) for c in stored)
    assert not {h.split("$")[-1] for h in accounts.values()} & set(stored)

    renewed = {**accounts, "alice": hash_password("alice-new-9", iterations=HASH_ITERATIONS)}
    after_restart = browser(renewed)
    after_restart.cookies.update(attacker.cookies)
    page = after_restart.get("/proposals")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    decided = after_restart.post("/proposals/decide", data={
        "csrf": "x", "ids": [letter], "decision": "reject", "reason": "r"})
    assert decided.status_code == 303 and decided.headers["location"].startswith("/login")
    assert status_of(engine, letter) == ("proposed", None)
    with engine.connect() as connection:
        users = connection.execute(sa.select(web_sessions.c.user_name)).scalars().all()
    assert users == ["bob"]  # the attacker's session is gone from the table
    bob_after = browser(renewed)
    bob_after.cookies.update(bob.cookies)
    assert signed_in(bob_after)


def test_the_secure_setting_marks_the_cookies_secure(engine):
    client = make_client(engine, secure_cookie=True)
    login_page = client.get("/login")
    assert "__Host-ar_sign_in=" in login_page.headers["set-cookie"]
    assert "secure" in login_page.headers["set-cookie"].lower()
    # the test client speaks http, so it would not send a Secure cookie back: hand it over
    nonce = re.search(r"__Host-ar_sign_in=([^;]+)", login_page.headers["set-cookie"]).group(1)
    token = re.search(r'name="csrf" value="([^"]+)"', login_page.text).group(1)
    client.cookies.clear()
    client.cookies.set("__Host-ar_sign_in", nonce)
    response = client.post(
        "/login", data={"csrf": token, "username": "alice", "password": PASSWORDS["alice"]}
    )
    assert response.status_code == 303
    header, forget_sign_in = response.headers.get_list("set-cookie")
    assert header.startswith("__Host-ar_session=")
    assert "; secure" in header.lower() and "Path=/" in header and "domain" not in header.lower()
    # a browser ignores a __Host- cookie set (or deleted) without Secure
    assert forget_sign_in.startswith('__Host-ar_sign_in="";')
    assert "; secure" in forget_sign_in.lower()
    session = re.search(r"__Host-ar_session=([^;]+)", header).group(1)
    client.cookies.set("__Host-ar_session", session)
    token = csrf_token(client, "/proposals")
    signed_out = client.post("/logout", data={"csrf": token})
    assert signed_out.headers["set-cookie"].startswith('__Host-ar_session="";')
    assert "; secure" in signed_out.headers["set-cookie"].lower()


# --- password guessing and user names ---------------------------------------------------------


def test_five_wrong_passwords_lock_the_user_name_and_the_lock_doubles(engine):
    clock = Clock()
    client = make_client(engine, clock)
    for _ in range(5):
        assert sign_in(client, "alice", password="guess").status_code == 401
    locked = sign_in(client, "alice")  # the right password
    assert locked.status_code == 429
    assert "Too many failed sign-ins for this user name or from this computer. Wait 60 seconds" \
        in locked.text
    assert locked.headers["retry-after"] == "60"
    assert not signed_in(client)
    # another person from another computer is not locked out
    bob = another_browser(client, "10.0.0.2")
    assert sign_in(bob, "bob").status_code == 303

    clock.now += dt.timedelta(seconds=61)
    assert sign_in(client, "alice", password="guess").status_code == 401
    again = sign_in(client, "alice")
    assert (again.status_code, again.headers["retry-after"]) == (429, "120")
    clock.now += dt.timedelta(seconds=121)
    assert sign_in(client, "alice").status_code == 303
    assert signed_in(client)


def test_twenty_failures_from_one_address_lock_that_address(engine):
    clock = Clock()
    client = make_client(engine, clock)
    for name in ["alice", "bob", *[f"user{i}" for i in range(18)]]:  # a spray: one guess each
        assert sign_in(client, name, password="Summer2026!").status_code == 401
    locked = sign_in(client, "carol")
    assert locked.status_code == 429 and not signed_in(client)
    assert sign_in(another_browser(client, "10.0.0.3"), "carol").status_code == 303
    clock.now += dt.timedelta(minutes=1, seconds=1)
    assert sign_in(client, "carol").status_code == 303


@pytest.fixture
def checks(monkeypatch):
    """Every password check: the hash's iterations, and whether it ran on the event loop."""
    seen = []

    def recording(password, encoded):
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        seen.append({"iterations": int(encoded.split("$")[1]), "on_loop": on_loop})
        return verify_password(password, encoded)

    monkeypatch.setattr(accounts, "verify_password", recording)
    return seen


def test_an_unknown_user_name_costs_and_reads_like_a_wrong_password(engine, checks):
    client = make_client(engine)
    known = sign_in(client, "alice", password="guess")
    unknown = sign_in(client, "mallory", password="guess")
    assert known.status_code == unknown.status_code == 401
    token = re.compile(r'value="[A-Za-z0-9_-]{20,}"')
    as_typed = ('id="username" name="username" value="alice"',
                'id="username" name="username" value="mallory"')  # the name stays in its field
    assert as_typed[0] in known.text and as_typed[1] in unknown.text
    assert token.sub("", known.text).replace(*as_typed) == token.sub("", unknown.text)
    assert "Wrong user name or password." in unknown.text
    assert checks == [{"iterations": HASH_ITERATIONS, "on_loop": False}] * 2
    # and it is locked after as many guesses as a real one
    for _ in range(4):
        assert sign_in(client, "mallory", password="guess").status_code == 401
    assert sign_in(client, "mallory", password="guess").status_code == 429
    assert len(checks) == 6  # a locked name is answered without checking anything


def test_the_dummy_hash_is_as_costly_as_the_accounts_own():
    encoded = dummy_hash({"alice": hash_password("x", iterations=1234)})
    assert encoded.startswith("pbkdf2_sha256$1234$")
    assert not verify_password("", encoded) and not verify_password("x", encoded)
    assert dummy_hash({}).startswith("pbkdf2_sha256$600000$")


def test_password_hashing_runs_off_the_event_loop(engine, checks):
    client = make_client(engine)
    assert sign_in(client, "alice").status_code == 303
    assert checks == [{"iterations": HASH_ITERATIONS, "on_loop": False}]


# --- headers and forms ----------------------------------------------------------------------


def test_security_headers_on_every_response(engine):
    client = make_client(engine)
    responses = {
        "sign-in page": client.get("/login"),
        "redirect to sign in": client.get("/proposals"),
        "not found": client.get("/nothing-here"),
        "wrong method": client.get("/proposals/decide"),
        "forged sign-in": client.post("/login", data={"username": "alice", "password": "x"}),
        "stylesheet": client.get("/static/page.css"),
    }
    def broken_chart():
        raise RuntimeError("the trend query failed")

    broken = TestClient(make_app(engine, chart_rows=broken_chart), follow_redirects=False,
                        raise_server_exceptions=False)  # fmt: skip
    sign_in(broken, "alice")
    responses["server error"] = broken.get("/trend")
    assert responses["server error"].status_code == 500
    sign_in(client, "alice")
    for path in ("/proposals", "/proposals?view=waiting", "/proposals?view=attention",
                 "/history", "/trend"):  # fmt: skip
        responses[path] = client.get(path)
    for name, response in responses.items():
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], name
        assert "default-src 'none'" in headers["content-security-policy"], name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["referrer-policy"] == "no-referrer", name
        if response.headers.get("content-type", "").startswith("text/html"):
            assert headers["cache-control"] == "no-store", name
            # the policy allows no inline style or script: the pages use none
            assert "<style" not in response.text and " style=" not in response.text, name
            assert "<script" not in response.text, name
    assert responses["stylesheet"].headers["content-type"].startswith("text/css")


def test_csrf_is_still_enforced(engine):
    letter = one_proposal(engine)
    client = make_client(engine)
    # signing in: a form without the token, or with a token from another browser
    assert client.post("/login", data={"username": "alice", "password": PASSWORDS["alice"]}
                       ).status_code == 403  # fmt: skip
    foreign = csrf_token(another_browser(client))
    response = client.post("/login", data={"csrf": foreign, "username": "alice",
                                           "password": PASSWORDS["alice"]})  # fmt: skip
    assert response.status_code == 403 and "did not come from this page" in response.text
    assert not signed_in(client)

    sign_in(client, "alice")
    bob = another_browser(client)
    sign_in(bob, "bob")
    bobs_token = csrf_token(bob, "/proposals")
    for token in (None, "forged", bobs_token):
        data = {"ids": [letter], "decision": "approve"} | ({"csrf": token} if token else {})
        assert client.post("/proposals/decide", data=data).status_code == 403, token
        assert client.post("/logout", data=data).status_code == 403, token
    assert status_of(engine, letter) == ("proposed", None)
    assert signed_in(client)  # a forged sign-out did not end the session


def test_a_message_in_the_address_is_not_shown(engine):
    client = make_client(engine)
    sign_in(client, "alice")
    page = client.get("/proposals?message=Your+account+is+locked,+call+555-0100").text
    assert "555-0100" not in page


def test_an_id_too_long_for_the_database_is_no_page(engine):
    """A row id longer than a BIGINT holds is answered 404, as any id that names nothing, and
    never reaches the database driver (whose overflow error was a 500)."""
    client = make_client(engine)
    sign_in(client, "alice")
    token = csrf_token(client, "/proposals")
    huge = "9" * 20
    responses = [
        client.get(f"/proposals/{huge}/existing.json"),
        client.post(f"/proposals/{huge}/edit", data={"csrf": token, "subject": "s", "body": "b"}),
        client.post(f"/customers/C1/promises/{huge}/cancel", data={"csrf": token}),
        client.post(f"/customers/C1/holds/{huge}/release", data={"csrf": token}),
    ]
    assert [r.status_code for r in responses] == [404, 404, 404, 404]
