"""Settings: defaults, and a clear error naming each malformed variable."""

from decimal import Decimal

import pytest

from ar_pipeline.settings import SettingsError, load_settings


def test_defaults(tmp_path):
    s = load_settings({"AR_DATA_DIR": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'ar_pipeline.sqlite3'}"
    assert s.dagster_home == tmp_path / "dagster_home"
    assert s.outbox_dir == tmp_path / "outbox"
    assert s.timezone_name == "UTC"
    assert s.freshness_max_age_hours == 2
    assert s.approvers == frozenset()
    assert s.smtp_host is None
    assert (s.hold_min_days_overdue, s.hold_min_open) == (90, Decimal("25000.00"))


def test_approvers_are_a_comma_separated_list():
    assert load_settings({"AR_APPROVERS": " alice, bob ,,"}).approvers == {"alice", "bob"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AR_TIMEZONE", "Nowhere/Town"),
        ("AR_FRESHNESS_MAX_AGE_HOURS", "two"),
        ("AR_FRESHNESS_MAX_AGE_HOURS", "-1"),
        ("AR_SMTP_PORT", "smtp"),
        ("AR_SMTP_STARTTLS", "maybe"),
        ("AR_HOLD_MIN_DAYS_OVERDUE", "-5"),
        ("AR_HOLD_MIN_OPEN", "lots"),
        ("AR_MAIL_FROM", "not an address"),
        # addresses the mailer cannot send from, refused at start, not at the first letter
        ("AR_MAIL_FROM", "Accounts Receivable <ar@example.com>"),
        ("AR_MAIL_FROM", "ar@example"),
        ("AR_MAIL_FROM", "a@b.com, c@d.com"),
        ("AR_DATABASE_URL", "not a url"),
    ],
)
def test_malformed_setting_is_named(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AR_SMTP_PORT", "99999", "AR_SMTP_PORT: must be a port number from 1 to 65535, got 99999"),
        ("AR_SMTP_PORT", "0", "AR_SMTP_PORT: must be a port number from 1 to 65535, got 0"),
        ("AR_WEB_PORT", "65536", "AR_WEB_PORT: must be a port number from 1 to 65535, got 65536"),
        ("AR_WEB_PORT", "http", "AR_WEB_PORT: must be a port number from 1 to 65535, got 'http'"),
        ("AR_DATABASE_URL", "postgresql+psycopg://ar@db:99999/ar",
         "AR_DATABASE_URL: the port must be a number from 1 to 65535, got 99999"),
        ("AR_DATABASE_URL", "postgresql+psycopg://ar:secret@db:pgport/ar",
         "AR_DATABASE_URL: the port must be a number from 1 to 65535"),
        ("AR_DATABASE_URL", "foo://", "AR_DATABASE_URL: must be a SQLite or PostgreSQL URL, "
         "got 'foo://'"),
        ("AR_DATABASE_URL", "mysql://ar@db/ar", "AR_DATABASE_URL: must be a SQLite or PostgreSQL "
         "URL, got 'mysql://'"),
        ("AR_DATABASE_URL", "postgresql+nodriver://ar@db/ar",
         "AR_DATABASE_URL: unknown database driver 'postgresql+nodriver'"),
        ("AR_DATABASE_URL", "not a url", "AR_DATABASE_URL: must be a database URL like "
         "postgresql+psycopg://user@host/dbname, got 'not a url'"),
        ("AR_DATABASE_URL", "sqlite://", "AR_DATABASE_URL: an in-memory SQLite database keeps "
         "nothing between connections; give a file, like sqlite:////var/lib/ar_pipeline/ar.sqlite3"),
        ("AR_HOLD_MIN_OPEN", "NaN",
         "AR_HOLD_MIN_OPEN: must be a finite amount like '25000.00' (plain digits), got 'NaN'"),
        ("AR_HOLD_MIN_OPEN", "Infinity",
         "AR_HOLD_MIN_OPEN: must be a finite amount like '25000.00' (plain digits), "
         "got 'Infinity'"),
        ("AR_HOLD_MIN_OPEN", "1e3",
         "AR_HOLD_MIN_OPEN: must be a finite amount like '25000.00' (plain digits), got '1e3'"),
        ("AR_HOLD_MIN_OPEN", "25,000.00", "AR_HOLD_MIN_OPEN: must be a finite amount like "
         "'25000.00' (plain digits), got '25,000.00'"),
        ("AR_HOLD_MIN_OPEN", "-1.00", "AR_HOLD_MIN_OPEN: must not be negative, got '-1.00'"),
        ("AR_FRESHNESS_MAX_AGE_HOURS", "NaN",
         "AR_FRESHNESS_MAX_AGE_HOURS: must be a finite number of hours above 0, got 'NaN'"),
        ("AR_FRESHNESS_MAX_AGE_HOURS", "inf",
         "AR_FRESHNESS_MAX_AGE_HOURS: must be a finite number of hours above 0, got 'inf'"),
        ("AR_FRESHNESS_MAX_AGE_HOURS", "0",
         "AR_FRESHNESS_MAX_AGE_HOURS: must be a finite number of hours above 0, got '0'"),
        ("AR_HOLD_MIN_DAYS_OVERDUE", "99999999999999999999",
         "AR_HOLD_MIN_DAYS_OVERDUE: must be at most 36500, got 99999999999999999999"),
        ("AR_TIMEZONE", "America",
         "AR_TIMEZONE: must be an IANA time zone like Europe/Berlin, got 'America'"),
        ("AR_TIMEZONE", "utc",
         "AR_TIMEZONE: must be an IANA time zone like Europe/Berlin, got 'utc'"),
        ("AR_APPROVERS", "alice;bob", "AR_APPROVERS: must be user names separated by commas, like "
         "alice,bob (no spaces, ';', ':' or quotes in a name), got 'alice;bob'"),
        ("AR_APPROVERS", "alice, bob carol", "AR_APPROVERS: must be user names separated by "
         "commas, like alice,bob (no spaces, ';', ':' or quotes in a name), got 'bob carol'"),
        ("AR_TREND_START_DATE", "0001-01-01",
         "AR_TREND_START_DATE: must be from 1900-01-01 to 2999-12-31, got 0001-01-01"),
        ("AR_WEB_SECURE_COOKIE", "https",
         "AR_WEB_SECURE_COOKIE: must be true or false, got 'https'"),
    ],
)  # fmt: skip
def test_malformed_setting_is_one_line_naming_it(name, value, message):
    with pytest.raises(SettingsError) as error:
        load_settings({name: value})
    assert str(error.value) == message


def test_edge_values_that_are_accepted():
    s = load_settings(
        {"AR_SMTP_HOST": "mail.example.com", "AR_SMTP_PORT": "1", "AR_WEB_PORT": "65535",
         "AR_HOLD_MIN_OPEN": "-0",
         "AR_FRESHNESS_MAX_AGE_HOURS": "1e3", "AR_HOLD_MIN_DAYS_OVERDUE": "36500",
         "AR_DATABASE_URL": "postgresql+psycopg://ar@db:65535/ar"}
    )  # fmt: skip
    assert (s.smtp_port, s.web_port) == (1, 65535)
    assert str(s.hold_min_open) == "0"  # '-0' is zero, and shown as 0
    assert s.freshness_max_age_hours == 1000.0  # hours are a number, not money: 1e3 is fine
    assert s.hold_min_days_overdue == 36500


def test_secure_cookie_setting():
    assert load_settings({}).web_secure_cookie is False
    assert load_settings({"AR_WEB_SECURE_COOKIE": "true"}).web_secure_cookie is True
    assert load_settings({"AR_WEB_SECURE_COOKIE": "0"}).web_secure_cookie is False


@pytest.mark.parametrize("given", ["AR_SMTP_USER", "AR_SMTP_PASSWORD", "AR_SMTP_PORT",
                                   "AR_SMTP_STARTTLS"])  # fmt: skip
def test_an_smtp_setting_without_its_host_is_refused(given):
    """Without AR_SMTP_HOST the mailer writes .eml files and records letters as sent: an SMTP
    setting given without the host is a typo that would mail nobody."""
    value = {"AR_SMTP_PORT": "587", "AR_SMTP_STARTTLS": "true"}.get(given, "mailer")
    with pytest.raises(SettingsError) as error:
        load_settings({given: value})
    assert str(error.value) == (
        f"AR_SMTP_HOST: required when {given} is set (without a host, letters are written to "
        "AR_OUTBOX_DIR and nothing is mailed)"
    )
    assert load_settings({given: value, "AR_SMTP_HOST": "mail.example.com"}).smtp_host == (
        "mail.example.com"
    )
