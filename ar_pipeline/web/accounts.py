"""Approver accounts of the web page: user names with password hashes, never plain text.

Hashes are PBKDF2-HMAC-SHA256 (``hashlib``), written ``pbkdf2_sha256$<iterations>$<salt>$<hash>``
(base64). Accounts come from ``AR_WEB_USERS_FILE`` (TOML, a ``[users]`` table of name = hash) or
``AR_WEB_USERS`` (``name:hash,name:hash``); ``ar-pipeline hash-password`` makes a hash. Being an
account only lets a person sign in: deciding still needs the name in ``AR_APPROVERS``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import tomllib

from ar_pipeline.settings import Settings, SettingsError

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 600_000


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    encode = base64.b64encode
    return f"{ALGORITHM}${iterations}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of ``password`` against a hash made by :func:`hash_password`."""
    try:
        algorithm, iterations, salt, expected = encoded.split("$")
        if algorithm != ALGORITHM:
            return False
        digest = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.b64decode(salt), int(iterations)
        )
        return hmac.compare_digest(digest, base64.b64decode(expected))
    except (ValueError, TypeError):
        return False


def _check_hash(where: str, name: str, value: object) -> str:
    if not isinstance(value, str) or not value.startswith(f"{ALGORITHM}$") or value.count("$") != 3:
        raise SettingsError(
            f"{where}: the password of {name!r} must be a hash from `ar-pipeline hash-password`"
        )
    return value


def load_accounts(settings: Settings) -> dict[str, str]:
    """User name -> password hash, from the file and the environment (the file wins)."""
    accounts: dict[str, str] = {}
    if settings.web_users:
        for entry in settings.web_users.split(","):
            name, _, value = entry.strip().partition(":")
            if not name or not value:
                raise SettingsError("AR_WEB_USERS must be name:hash pairs separated by commas")
            accounts[name.strip()] = _check_hash("AR_WEB_USERS", name, value.strip())
    if settings.web_users_file:
        where = f"AR_WEB_USERS_FILE ({settings.web_users_file})"
        try:
            data = tomllib.loads(settings.web_users_file.read_text())
        except OSError as error:
            raise SettingsError(f"{where}: cannot read it: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise SettingsError(f"{where}: not valid TOML: {error}") from None
        users = data.get("users")
        if not isinstance(users, dict):
            raise SettingsError(f"{where}: needs a [users] table of name = hash")
        for name, value in users.items():
            accounts[name] = _check_hash(where, name, value)
    return accounts
