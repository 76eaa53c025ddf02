"""What keeps the approver's page (``ar_pipeline.web.app``) safe: sessions, the sign-in form's
token, sign-in throttling, same-site redirects and the security headers.

**Sessions** live in the business database (``web_sessions``). The browser's cookie holds a
random 256-bit token and nothing else; the table keeps only the token's SHA-256, so neither the
cookie nor a copy of the table says who is signed in or opens a session. A session ends at
sign-out (its row is deleted), :data:`SESSION_LIFETIME` after sign-in whatever the activity, and
after :data:`IDLE_TIMEOUT` without a request. Each session has its own CSRF token, which every
POST must carry.

**Before sign-in** there is no session: the sign-in form carries an HMAC (``AR_WEB_SECRET``) of
a random nonce kept in a short cookie, so a form posted from another site cannot sign a browser
in to an account of the attacker's choosing.

**Throttling** (:class:`SignInThrottle`) counts failed sign-ins per user name and per client
address, whether the name exists or not. Past a limit, each further failure locks that key for
twice as long as the last time (1 minute up to 15); a locked key is answered 429 at once, even
with the right password. It lives in the page's process: a restart forgets it.

**Redirects** go to same-site paths only (:func:`safe_path`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ar_pipeline.store.schema import web_sessions

SESSION_LIFETIME = dt.timedelta(hours=8)
IDLE_TIMEOUT = dt.timedelta(minutes=30)
# last_seen_at is written at most this often, not on every request
TOUCH_EVERY = dt.timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    token_hash: str
    user: str
    csrf: str
    flash: dict[str, Any] | None
    credential: str | None = None  # what the account's password hash was at sign-in


class SessionStore:
    """Sessions in ``web_sessions``; every method takes the time (the app's clock)."""

    def __init__(
        self,
        engine: Engine,
        lifetime: dt.timedelta = SESSION_LIFETIME,
        idle: dt.timedelta = IDLE_TIMEOUT,
    ) -> None:
        self.engine = engine
        self.lifetime = lifetime
        self.idle = idle

    def _ended(self, now: dt.datetime) -> sa.ColumnElement[bool]:
        ws = web_sessions.c
        return sa.or_(ws.expires_at <= now, ws.last_seen_at <= now - self.idle)

    def create(self, user: str, now: dt.datetime, credential: str) -> tuple[str, Session]:
        """A new session for ``user``, opened with ``credential`` (:func:`credential_of` the
        account): the cookie's token and the session. Ended sessions of anyone are deleted on
        the way."""
        token = secrets.token_urlsafe(32)
        session = Session(token_hash(token), user, secrets.token_urlsafe(32), None, credential)
        with self.engine.begin() as connection:
            connection.execute(web_sessions.delete().where(self._ended(now)))
            connection.execute(
                web_sessions.insert().values(
                    token_hash=session.token_hash, user_name=user, csrf_token=session.csrf,
                    created_at=now, last_seen_at=now, expires_at=now + self.lifetime,
                    credential=credential,
                )  # fmt: skip
            )
        return token, session

    def load(self, token: str | None, now: dt.datetime) -> Session | None:
        """The live session of a cookie's token, or None (unknown, signed out, expired or
        idle too long; an ended one is deleted)."""
        if not token or len(token) > 200:
            return None
        ws = web_sessions.c
        key = token_hash(token)
        with self.engine.begin() as connection:
            row = connection.execute(
                sa.select(web_sessions).where(ws.token_hash == key)
            ).mappings().first()  # fmt: skip
            if row is None:
                return None
            if row["expires_at"] <= now or row["last_seen_at"] <= now - self.idle:
                connection.execute(web_sessions.delete().where(ws.token_hash == key))
                return None
            if now - row["last_seen_at"] >= TOUCH_EVERY:
                connection.execute(
                    web_sessions.update().where(ws.token_hash == key).values(last_seen_at=now)
                )
        return Session(
            key, row["user_name"], row["csrf_token"], row["flash_json"], row["credential"]
        )

    def end(self, session: Session) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                web_sessions.delete().where(web_sessions.c.token_hash == session.token_hash)
            )

    def set_flash(self, session: Session, flash: dict[str, Any] | None) -> None:
        """What the next page shows once (the outcome of a decision)."""
        with self.engine.begin() as connection:
            connection.execute(
                web_sessions.update()
                .where(web_sessions.c.token_hash == session.token_hash)
                .values(flash_json=flash)
            )


def credential_of(secret: str, password_hash: str) -> str:
    """What a session remembers of the account's password hash (an HMAC under the page's
    secret: a copy of the sessions table tells nothing about the hash)."""
    return hmac.new(secret.encode(), password_hash.encode(), hashlib.sha256).hexdigest()


# --- the sign-in form's token ---------------------------------------------------------------


def sign_in_token(secret: str, nonce: str) -> str:
    """The sign-in form's token for the nonce in the browser's cookie."""
    return hmac.new(secret.encode(), f"sign-in:{nonce}".encode(), hashlib.sha256).hexdigest()


def sign_in_token_matches(secret: str, nonce: str | None, sent: str | None) -> bool:
    if not nonce or not sent:
        return False
    return hmac.compare_digest(sign_in_token(secret, nonce), sent)


# --- throttling -------------------------------------------------------------------------------


@dataclass
class _Failures:
    count: int = 0
    in_progress: int = 0
    last_failure: dt.datetime | None = None
    locked_until: dt.datetime | None = None
    lockouts: int = 0


class SignInThrottle:
    """Failed sign-ins per key (``name:<user name>``, ``address:<client address>``).

    ``limit`` failures within ``window`` lock the key for ``first_lockout``; every further
    failure while the count stays up locks it again for twice as long, up to
    ``longest_lockout``. A quiet ``window`` forgets the key; a successful sign-in forgets the
    user name's count. Attempts being checked count too, so that parallel guesses cannot pass
    the limit before their failures are recorded."""

    def __init__(
        self,
        limit: int,
        window: dt.timedelta = dt.timedelta(minutes=15),
        first_lockout: dt.timedelta = dt.timedelta(minutes=1),
        longest_lockout: dt.timedelta = dt.timedelta(minutes=15),
        max_keys: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.first_lockout = first_lockout
        self.longest_lockout = longest_lockout
        self.max_keys = max_keys
        self._keys: dict[str, _Failures] = {}

    def _record(self, key: str, now: dt.datetime) -> _Failures:
        record = self._keys.get(key)
        if record is not None and record.in_progress == 0 and self._forgotten(record, now):
            record = None
        if record is None:
            if len(self._keys) >= self.max_keys:
                self._prune(now)
            record = self._keys[key] = _Failures()
        return record

    def _forgotten(self, record: _Failures, now: dt.datetime) -> bool:
        locked = record.locked_until is not None and record.locked_until > now
        quiet = record.last_failure is None or now - record.last_failure > self.window
        return quiet and not locked

    def _prune(self, now: dt.datetime) -> None:
        for key in [k for k, r in self._keys.items() if r.in_progress == 0
                    and self._forgotten(r, now)]:  # fmt: skip
            del self._keys[key]
        if len(self._keys) >= self.max_keys:  # still full: drop the longest quiet ones
            idle = sorted(
                (k for k, r in self._keys.items() if r.in_progress == 0),
                key=lambda k: self._keys[k].last_failure or now,
            )
            for key in idle[: len(self._keys) - self.max_keys + 1]:
                del self._keys[key]

    def wait(self, key: str, now: dt.datetime) -> dt.timedelta | None:
        """How long the key is still locked (None: it may try now)."""
        record = self._record(key, now)
        if record.locked_until is not None and record.locked_until > now:
            return record.locked_until - now
        if record.count + record.in_progress >= self.limit and record.in_progress:
            return self.first_lockout  # as many guesses in progress as the limit allows
        return None

    def begin(self, key: str, now: dt.datetime) -> None:
        self._record(key, now).in_progress += 1

    def finish(self, key: str, now: dt.datetime, failed: bool) -> None:
        record = self._record(key, now)
        record.in_progress = max(0, record.in_progress - 1)
        if not failed:
            return
        record.count += 1
        record.last_failure = now
        if record.count >= self.limit:
            lockout = min(self.first_lockout * 2**record.lockouts, self.longest_lockout)
            record.lockouts += 1
            record.locked_until = now + lockout

    def forget(self, key: str) -> None:
        record = self._keys.get(key)
        if record is not None and record.in_progress == 0:
            del self._keys[key]


@dataclass
class SignInLimits:
    """The two throttles of the page: per user name and per client address."""

    per_name: SignInThrottle
    per_address: SignInThrottle

    @classmethod
    def default(cls) -> SignInLimits:
        return cls(SignInThrottle(limit=5), SignInThrottle(limit=20))

    def keys(self, name: str, address: str) -> list[tuple[SignInThrottle, str]]:
        # user names are compared as typed; lower-casing here would only merge keys
        return [(self.per_name, f"name:{name}"), (self.per_address, f"address:{address}")]

    def wait(self, name: str, address: str, now: dt.datetime) -> dt.timedelta | None:
        waits = [w for throttle, key in self.keys(name, address)
                 if (w := throttle.wait(key, now)) is not None]  # fmt: skip
        return max(waits) if waits else None

    def begin(self, name: str, address: str, now: dt.datetime) -> None:
        for throttle, key in self.keys(name, address):
            throttle.begin(key, now)

    def finish(self, name: str, address: str, now: dt.datetime, failed: bool) -> None:
        for throttle, key in self.keys(name, address):
            throttle.finish(key, now, failed)
        if not failed:
            self.per_name.forget(f"name:{name}")


def wait_in_words(wait: dt.timedelta) -> str:
    seconds = max(1, int(-(-wait.total_seconds() // 1)))
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{-(-seconds // 60)} minutes"


# --- redirects --------------------------------------------------------------------------------

# A path on this site: one leading slash, then no slash or backslash (``//host`` and ``/\host``
# are other hosts to a browser), and only printable URL characters: browsers drop tabs and
# newlines from a URL, which would turn ``/\t/host`` into ``//host``.
_SAME_SITE_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?#]*")


def safe_path(target: object, default: str) -> str:
    """``target`` when it is a path on this site, else ``default``."""
    if isinstance(target, str) and _SAME_SITE_PATH.fullmatch(target):
        return target
    return default


# --- security headers -------------------------------------------------------------------------

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
)


class SecurityHeaders:
    """ASGI middleware: the security headers on every response (errors and redirects too),
    and ``Cache-Control: no-store`` unless the response set its own."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", [])
                    if k.decode().lower() not in dict(SECURITY_HEADERS)
                ]  # fmt: skip
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS]
                if not any(k.decode().lower() == "cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
