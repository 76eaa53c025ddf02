"""The one place that reads the environment.

Every setting (docs/design.md, Settings) is parsed and validated here, once. A malformed value
raises :class:`SettingsError` with one line that starts with the variable's name
(``AR_SMTP_PORT: must be a port from 1 to 65535, got 99999``), so a bad deployment fails at start
instead of half-way through a run. The rules for amounts, ports and day counts are here too, for
the run config and the command line to share (:func:`parse_amount`, :func:`parse_port`).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting is malformed; the message names the environment variable."""


SOURCES = ("ledger", "alga_psa")
DEFAULT_HORIZON_DAYS = 180  # Alga PSA service periods: target horizon
DEFAULT_REPLENISH_DAYS = 45  # and replenishment threshold, days after the run date


@dataclass(frozen=True)
class AlgaSettings:
    """Where the Alga PSA billing database is and how its service periods are judged."""

    database_url: str
    tenant: str
    horizon_days: int
    replenish_days: int


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    dagster_home: Path
    timezone: ZoneInfo
    freshness_max_age_hours: float
    approvers: frozenset[str]
    mail_from: str | None
    smtp_host: str | None
    smtp_port: int
    smtp_user: str | None
    smtp_password: str | None
    smtp_starttls: bool
    outbox_dir: Path
    hold_min_days_overdue: int
    hold_min_open: Decimal
    trend_start_date: dt.date
    web_host: str
    web_port: int
    web_users_file: Path | None
    web_users: str | None
    web_secret: str | None
    web_secure_cookie: bool = False  # the page is served over HTTPS: the cookie is Secure
    # keep balances up to date from the ledger's change journal (the database's triggers write
    # it): "on", "off", or "auto" (on from AUTO_FROM_INVOICES invoices, rules/incremental.py)
    incremental_balances: str = "auto"
    source: str = "ledger"
    alga: AlgaSettings | None = None
    # the variable the business database comes from: AR_DATA_DIR when it is the default SQLite
    database_setting: str = "AR_DATABASE_URL"

    @property
    def timezone_name(self) -> str:
        return self.timezone.key


MAX_DAYS = 36_500  # 100 years: a longer day count is a typing mistake (and overflows dates)
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2999, 12, 31)
DATABASE_BACKENDS = ("sqlite", "postgresql")
_AMOUNT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_APPROVER = re.compile(r"[^\s,;:'\"]+")


def parse_amount(raw: object, example: str = "10.00") -> Decimal:
    """A non-negative amount in major units, written in plain digits: ``'25000.00'``, ``'10'``.

    NaN, Infinity, exponents (``'1e3'``), thousands separators and ``'+'`` are refused; ``'-0'``
    is zero. Raises ValueError with the reason; the caller names the field."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not _AMOUNT.fullmatch(text):
        raise ValueError(f"must be a finite amount like {example!r} (plain digits), got {raw!r}")
    value = Decimal(text)
    if value < 0:
        raise ValueError(f"must not be negative, got {raw!r}")
    return value.copy_abs()  # '-0' is zero


def parse_port(raw: str) -> int:
    """A TCP port, 1 to 65535. Raises ValueError with the reason; the caller names the field."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(f"must be a port number from 1 to 65535, got {raw!r}") from None
    if not 1 <= value <= 65535:
        raise ValueError(f"must be a port number from 1 to 65535, got {value}")
    return value


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}: must be true or false, got {raw!r}")


def parse_balances_setting(name: str, raw: str) -> str:
    """``AR_INCREMENTAL_BALANCES``: ``auto``, or a boolean spelled as :func:`_parse_bool` takes
    it, as ``on`` or ``off``."""
    if raw.strip().lower() == "auto":
        return "auto"
    try:
        return "on" if _parse_bool(name, raw) else "off"
    except SettingsError:
        raise SettingsError(f"{name}: must be auto, true or false, got {raw!r}") from None


def _parse_int(name: str, raw: str, minimum: int = 0, maximum: int = MAX_DAYS) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}: must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name}: must be at least {minimum}, got {value}")
    if value > maximum:
        raise SettingsError(f"{name}: must be at most {maximum}, got {value}")
    return value


def _parse_port(name: str, raw: str) -> int:
    try:
        return parse_port(raw)
    except ValueError as error:
        raise SettingsError(f"{name}: {error}") from None


def _parse_hours(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SettingsError(f"{name}: must be a finite number of hours above 0, got {raw!r}")
    return value


def _parse_amount(name: str, raw: str, example: str) -> Decimal:
    try:
        return parse_amount(raw, example)
    except ValueError as error:
        raise SettingsError(f"{name}: {error}") from None


def _parse_timezone(name: str, raw: str) -> ZoneInfo:
    try:
        return ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as 'America'
        raise SettingsError(
            f"{name}: must be an IANA time zone like Europe/Berlin, got {raw!r}"
        ) from None


def _parse_email(name: str, raw: str) -> str:
    """A plain address the mailer can send from (its own rule, ``parse_address``): a display
    name (``Accounts <ar@example.com>``) or a list would be refused only when the first approved
    letter is sent."""
    from ar_pipeline.addresses import InvalidMessage, parse_address

    try:
        parse_address(name, raw)
    except InvalidMessage as error:
        raise SettingsError(
            f"{error} (a plain address like ar@example.com, no display name)"
        ) from None
    return raw.strip()


def _parse_approvers(name: str, raw: str) -> frozenset[str]:
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for approver in names:
        if not _APPROVER.fullmatch(approver):
            raise SettingsError(
                f"{name}: must be user names separated by commas, like alice,bob "
                f"(no spaces, ';', ':' or quotes in a name), got {approver!r}"
            )
    return frozenset(names)


def _without_password(raw: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", raw)


def _parse_database_url(name: str, raw: str, backends: tuple[str, ...] = DATABASE_BACKENDS) -> str:
    """A URL of a backend this project runs on, with a driver that is installed and a port
    that exists; nothing is connected here (``ar_pipeline.store.database.open_database`` does)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    text = raw.strip()
    try:
        url = make_url(text)
    except ArgumentError:
        raise SettingsError(
            f"{name}: must be a database URL like postgresql+psycopg://user@host/dbname, "
            f"got {_without_password(text)!r}"
        ) from None
    except ValueError:  # the only one make_url raises: a port that is not a number
        raise SettingsError(f"{name}: the port must be a number from 1 to 65535") from None
    if url.get_backend_name() not in backends:
        kinds = " or ".join({"sqlite": "SQLite", "postgresql": "PostgreSQL"}[b] for b in backends)
        raise SettingsError(f"{name}: must be a {kinds} URL, got {url.drivername + '://'!r}")
    if url.port is not None and not 1 <= url.port <= 65535:
        raise SettingsError(f"{name}: the port must be a number from 1 to 65535, got {url.port}")
    try:
        dialect = url.get_dialect()
        dialect.import_dbapi()
    except NoSuchModuleError:
        raise SettingsError(f"{name}: unknown database driver {url.drivername!r}") from None
    except ImportError:
        raise SettingsError(
            f"{name}: the driver of {url.drivername!r} is not installed (use postgresql+psycopg://)"
        ) from None
    if getattr(dialect, "is_async", False):
        raise SettingsError(
            f"{name}: {url.drivername!r} is an asyncio driver; use postgresql+psycopg://"
        )
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise SettingsError(
            f"{name}: an in-memory SQLite database keeps nothing between connections; "
            "give a file, like sqlite:////var/lib/ar_pipeline/ar.sqlite3"
        )
    return text


def parse_date(raw: str) -> dt.date:
    """A calendar date like 2026-03-31, from 1900 to 2999 (further out is a typing mistake, and
    overflows date arithmetic). Raises ValueError with the reason; the caller names the field."""
    try:
        value = dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"expected a date like 2026-03-31, got {raw!r}") from None
    if not FIRST_DATE <= value <= LAST_DATE:
        raise ValueError(f"must be from {FIRST_DATE} to {LAST_DATE}, got {value}")
    return value


def _parse_date(name: str, raw: str) -> dt.date:
    try:
        return parse_date(raw)
    except ValueError as error:
        raise SettingsError(f"{name}: {error}") from None


def _same_database(url: str, other: str | None) -> bool:
    """Whether two PostgreSQL URLs name the same database (drivers and credentials aside)."""
    from sqlalchemy.engine import make_url

    if other is None or not other.strip().startswith("postgresql"):
        return False
    a, b = make_url(url), make_url(other.strip())
    return (a.host, a.port or 5432, a.database) == (b.host, b.port or 5432, b.database)


def _parse_alga(get: Callable[[str], str | None]) -> AlgaSettings:
    url = get("AR_ALGA_DATABASE_URL")
    if url is None:
        raise SettingsError("AR_ALGA_DATABASE_URL: is required when AR_SOURCE is alga_psa")
    url = _parse_database_url("AR_ALGA_DATABASE_URL", url, backends=("postgresql",))
    if _same_database(url, get("AR_DATABASE_URL")):
        raise SettingsError(
            "AR_ALGA_DATABASE_URL: must not be AR_DATABASE_URL: the pipeline's tables never go "
            "into Alga's database"
        )
    tenant = get("AR_ALGA_TENANT")
    if tenant is None:
        raise SettingsError("AR_ALGA_TENANT: is required when AR_SOURCE is alga_psa")
    try:
        tenant = str(uuid.UUID(tenant.strip()))
    except ValueError:
        raise SettingsError(f"AR_ALGA_TENANT: must be a tenant UUID, got {tenant!r}") from None
    horizon = _parse_int(
        "AR_ALGA_HORIZON_DAYS", get("AR_ALGA_HORIZON_DAYS") or str(DEFAULT_HORIZON_DAYS), minimum=1
    )
    replenish = _parse_int(
        "AR_ALGA_REPLENISH_DAYS",
        get("AR_ALGA_REPLENISH_DAYS") or str(DEFAULT_REPLENISH_DAYS),
        minimum=0,
    )
    if replenish >= horizon:
        raise SettingsError(
            f"AR_ALGA_REPLENISH_DAYS: must be below AR_ALGA_HORIZON_DAYS ({horizon}), "
            f"got {replenish}"
        )
    return AlgaSettings(url, tenant, horizon, replenish)


def default_trend_start(today: dt.date, months: int = 18) -> dt.date:
    """First day of the month ``months`` before ``today``: where the demo ledger begins."""
    month_index = today.year * 12 + today.month - 1 - months
    return dt.date(month_index // 12, month_index % 12 + 1, 1)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate all settings from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value not in (None, "") else None

    data_dir = Path(get("AR_DATA_DIR") or PROJECT_ROOT / ".ar_data").resolve()
    database_url = get("AR_DATABASE_URL")
    database_url = (
        _parse_database_url("AR_DATABASE_URL", database_url)
        if database_url
        else f"sqlite:///{data_dir / 'ar_pipeline.sqlite3'}"
    )
    mail_from = get("AR_MAIL_FROM")

    timezone = _parse_timezone("AR_TIMEZONE", get("AR_TIMEZONE") or "UTC")
    source = (get("AR_SOURCE") or "ledger").strip()
    if source not in SOURCES:
        raise SettingsError(f"AR_SOURCE: must be one of {', '.join(SOURCES)}, got {source!r}")
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        dagster_home=Path(get("DAGSTER_HOME") or data_dir / "dagster_home").resolve(),
        timezone=timezone,
        freshness_max_age_hours=_parse_hours(
            "AR_FRESHNESS_MAX_AGE_HOURS", get("AR_FRESHNESS_MAX_AGE_HOURS") or "2"
        ),
        approvers=_parse_approvers("AR_APPROVERS", get("AR_APPROVERS") or ""),
        mail_from=_parse_email("AR_MAIL_FROM", mail_from) if mail_from else None,
        smtp_host=get("AR_SMTP_HOST"),
        smtp_port=_parse_port("AR_SMTP_PORT", get("AR_SMTP_PORT") or "25"),
        smtp_user=get("AR_SMTP_USER"),
        smtp_password=get("AR_SMTP_PASSWORD"),
        smtp_starttls=_parse_bool("AR_SMTP_STARTTLS", get("AR_SMTP_STARTTLS") or "false"),
        outbox_dir=Path(get("AR_OUTBOX_DIR") or data_dir / "outbox").resolve(),
        hold_min_days_overdue=_parse_int(
            "AR_HOLD_MIN_DAYS_OVERDUE", get("AR_HOLD_MIN_DAYS_OVERDUE") or "90"
        ),
        hold_min_open=_parse_amount(
            "AR_HOLD_MIN_OPEN", get("AR_HOLD_MIN_OPEN") or "25000.00", example="25000.00"
        ),
        trend_start_date=(
            _parse_date("AR_TREND_START_DATE", trend_start)
            if (trend_start := get("AR_TREND_START_DATE"))
            else default_trend_start(dt.datetime.now(timezone).date())
        ),
        web_host=get("AR_WEB_HOST") or "127.0.0.1",
        web_port=_parse_port("AR_WEB_PORT", get("AR_WEB_PORT") or "8080"),
        web_users_file=Path(users_file) if (users_file := get("AR_WEB_USERS_FILE")) else None,
        web_users=get("AR_WEB_USERS"),
        web_secret=get("AR_WEB_SECRET"),
        web_secure_cookie=_parse_bool(
            "AR_WEB_SECURE_COOKIE", get("AR_WEB_SECURE_COOKIE") or "false"
        ),
        incremental_balances=parse_balances_setting(
            "AR_INCREMENTAL_BALANCES", get("AR_INCREMENTAL_BALANCES") or "auto"
        ),
        source=source,
        alga=_parse_alga(get) if source == "alga_psa" else None,
        database_setting="AR_DATABASE_URL" if get("AR_DATABASE_URL") else "AR_DATA_DIR",
    )
    if not get("AR_SMTP_HOST"):
        # without a host the mailer writes .eml files and records each letter as sent: an SMTP
        # setting given without its host is a typo that would mail no customer at all
        given = [n for n in ("AR_SMTP_USER", "AR_SMTP_PASSWORD", "AR_SMTP_PORT",
                             "AR_SMTP_STARTTLS") if get(n)]  # fmt: skip
        if given:
            raise SettingsError(
                f"AR_SMTP_HOST: required when {given[0]} is set (without a host, letters are "
                "written to AR_OUTBOX_DIR and nothing is mailed)"
            )
    return settings
