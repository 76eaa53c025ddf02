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
        ("AR_DATABASE_URL", "not a url"),
    ],
)
def test_malformed_setting_is_named(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})
