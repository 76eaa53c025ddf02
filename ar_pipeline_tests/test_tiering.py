"""Tiering rules as plain functions; expected tiers and skip reasons worked out by hand."""

import datetime as dt
from decimal import Decimal

import pytest

from ar_pipeline.rules.money import format_money, to_minor_units
from ar_pipeline.rules.tiering import (
    DEFAULT_TIERS,
    CurrencyPosition,
    CustomerPosition,
    LastApplied,
    TierConfigError,
    assign_tier,
    validate_threshold_days,
    validate_tier_definitions,
)

AS_OF = dt.date(2026, 3, 31)
DAYS = (1, 15, 30, 60)  # the default tiers' boundaries with threshold_days = 1


def eur(by_day: dict[int, int], credit: int = 0, currency: str = "EUR") -> CurrencyPosition:
    """Undisputed open cents due from each boundary day; by_day lists cumulative amounts."""
    return CurrencyPosition(currency, credit, {n: by_day.get(n, 0) for n in DAYS})


def position(*currencies, oldest="2026-01-01", paused=None) -> CustomerPosition:
    return CustomerPosition(
        "C1",
        list(currencies),
        dt.date.fromisoformat(oldest) if oldest else None,
        dt.date.fromisoformat(paused) if paused else None,
    )


def decide(pos, last=None, tiers=DEFAULT_TIERS, threshold=1):
    d = assign_tier(pos, last, tiers, AS_OF, threshold)
    return d.target_tier, d.last_applied_tier, d.proposed_tier, d.skip_reason


def test_first_step_is_a_reminder_even_when_far_overdue():
    # 900.00 at 60+ days qualifies for tier 4, but nothing was applied yet: step 1.
    pos = position(eur({1: 90_000, 15: 90_000, 30: 90_000, 60: 90_000}))
    assert decide(pos) == (4, None, 1, None)


def test_target_tier_needs_days_and_amount_in_the_same_currency():
    # 20 days overdue of 50.00 meets tier 2 (>=15 days, >=10.00); tier 3 needs 30 days.
    assert decide(position(eur({1: 5_000, 15: 5_000})))[0] == 2
    # 40 days of 99.99 misses tier 3's 100.00 minimum -> tier 2.
    assert decide(position(eur({1: 9_999, 15: 9_999, 30: 9_999})))[0] == 2


def test_unapplied_credit_reduces_the_tier_amount():
    # 15.00 overdue minus 6.00 credit = 9.00 < 10.00 -> below the reminder minimum.
    assert decide(position(eur({1: 1_500}, credit=600))) == (None, None, None, "below_minimum")


def test_any_currency_meeting_the_minimum_is_enough_but_currencies_never_add():
    # 6.00 EUR + 6.00 USD would be 12.00 if added; neither alone reaches 10.00.
    pos = position(eur({1: 600}), eur({1: 600}, currency="USD"))
    assert decide(pos)[3] == "below_minimum"
    pos = position(eur({1: 600}), eur({1: 1_000}, currency="USD"))
    assert decide(pos)[:3] == (1, None, 1)


def test_minimum_uses_the_currency_minor_unit():
    # JPY has no minor unit: 10.00 JPY minimum = 10 yen; 9 yen is below, 10 yen meets it.
    assert decide(position(eur({1: 9}, currency="JPY")))[3] == "below_minimum"
    assert decide(position(eur({1: 10}, currency="JPY")))[2] == 1
    assert to_minor_units(Decimal("10.00"), "JPY") == 10
    assert to_minor_units(Decimal("10.00"), "KWD") == 10_000
    assert format_money(123_456, "EUR") == "1,234.56 EUR"


def test_paused_until_today_or_later_skips():
    pos = position(eur({1: 5_000}), paused="2026-03-31")
    assert decide(pos) == (1, None, None, "paused")
    pos = position(eur({1: 5_000}), paused="2026-03-30")  # pause ended yesterday
    assert decide(pos) == (1, None, 1, None)


def test_escalation_moves_one_tier_beyond_the_last_applied():
    pos = position(eur({1: 90_000, 15: 90_000, 30: 90_000, 60: 90_000}))
    last = LastApplied(tier=1, applied_on=dt.date(2026, 3, 1))  # 30 days ago, cooldown 7
    assert decide(pos, last) == (4, 1, 2, None)


def test_cooldown_of_the_last_applied_tier():
    pos = position(eur({1: 90_000, 15: 90_000, 30: 90_000, 60: 90_000}))
    # tier 3 (final notice) has a 10-day cooldown: applied 9 days ago -> cooldown
    assert decide(pos, LastApplied(3, dt.date(2026, 3, 22))) == (4, 3, None, "cooldown")
    # exactly 10 days ago -> the next step is due
    assert decide(pos, LastApplied(3, dt.date(2026, 3, 21))) == (4, 3, 4, None)


def test_already_at_tier():
    pos = position(eur({1: 5_000, 15: 5_000}))  # target tier 2
    assert decide(pos, LastApplied(2, dt.date(2026, 3, 1))) == (2, 2, None, "already_at_tier")
    # at the tier and still inside the cooldown: already_at_tier is the reason that stays true
    assert decide(pos, LastApplied(2, dt.date(2026, 3, 30)))[3] == "already_at_tier"


def test_action_from_an_earlier_episode_does_not_count():
    pos = position(eur({1: 5_000, 15: 5_000}), oldest="2026-03-01")
    # applied before the oldest overdue item fell due: an earlier episode -> start at 1
    assert decide(pos, LastApplied(2, dt.date(2026, 2, 27))) == (2, None, 1, None)
    # applied on that due date: same episode
    assert decide(pos, LastApplied(2, dt.date(2026, 3, 1))) == (2, 2, None, "already_at_tier")


def test_threshold_days_raises_every_boundary():
    # threshold 20: only items >= 20 days count. 50.00 due at 15-19 days is not dunnable.
    tiers = DEFAULT_TIERS
    pos = CustomerPosition("C1", [CurrencyPosition("EUR", 0, {20: 0, 30: 0, 60: 0})])
    assert assign_tier(pos, None, tiers, AS_OF, 20).skip_reason == "below_minimum"
    pos = CustomerPosition("C1", [CurrencyPosition("EUR", 0, {20: 5_000, 30: 0, 60: 0})])
    decision = assign_tier(pos, None, tiers, AS_OF, 20)
    assert (decision.target_tier, decision.proposed_tier) == (2, 1)


VALID = [
    {"tier": 1, "name": "nudge", "min_days_overdue": 3, "min_dunnable": "5.00",
     "cooldown_days": 5, "template": "reminder"},
    {"tier": 2, "name": "final", "min_days_overdue": 40, "min_dunnable": "50",
     "cooldown_days": 10, "template": "final_notice", "involves_sales_rep": True},
]  # fmt: skip


def test_valid_custom_tiers_parse():
    tiers = validate_tier_definitions(VALID)
    assert [(t.tier, t.name, t.min_days_overdue, t.min_dunnable) for t in tiers] == [
        (1, "nudge", 3, Decimal("5.00")),
        (2, "final", 40, Decimal("50")),
    ]
    assert validate_tier_definitions(None) == DEFAULT_TIERS


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ((1, "min_days_overdue", 3), "tier_definitions[1].min_days_overdue: must be greater"),
        ((1, "min_days_overdue", 2), "tier_definitions[1].min_days_overdue: must be greater"),
        ((0, "min_days_overdue", -1), "tier_definitions[0].min_days_overdue: must be at least 1"),
        ((1, "tier", 3), "tier_definitions[1].tier: tiers must be numbered"),
        ((0, "template", "grovel"), "tier_definitions[0].template: unknown template 'grovel'"),
        ((0, "cooldown_days", -2), "tier_definitions[0].cooldown_days: must be at least 0"),
        ((0, "min_dunnable", "-1.00"), "tier_definitions[0].min_dunnable: must not be negative"),
        ((0, "min_dunnable", "ten"), "tier_definitions[0].min_dunnable: must be a finite amount"),
        ((0, "min_dunnable", 10.5), "tier_definitions[0].min_dunnable: must be an amount"),
        (
            (0, "min_dunnable", "NaN"),
            "tier_definitions[0].min_dunnable: must be a finite amount "
            "like '10.00' (plain digits), got 'NaN'",
        ),
        (
            (0, "min_dunnable", "Infinity"),
            "tier_definitions[0].min_dunnable: must be a finite "
            "amount like '10.00' (plain digits), got 'Infinity'",
        ),
        (
            (0, "min_dunnable", "1e3"),
            "tier_definitions[0].min_dunnable: must be a finite amount "
            "like '10.00' (plain digits), got '1e3'",
        ),
        (
            (0, "min_days_overdue", 10**20),
            "tier_definitions[0].min_days_overdue: must be at most 36500",
        ),
        ((0, "cooldown_days", "7"), "tier_definitions[0].cooldown_days: must be a whole number"),
        ((1, "name", "nudge"), "tier_definitions[1].name: 'nudge' is used by an earlier tier"),
        ((0, "colour", "red"), "tier_definitions[0].colour: unknown field"),
    ],
)
def test_invalid_tiers_name_the_field(change, message):
    index, field, value = change
    raw = [dict(t) for t in VALID]
    raw[index][field] = value
    with pytest.raises(TierConfigError) as error:
        validate_tier_definitions(raw)
    assert str(error.value).startswith(message)


def test_minus_zero_is_a_zero_minimum():
    raw = [dict(t) for t in VALID]
    raw[0]["min_dunnable"] = "-0"
    assert str(validate_tier_definitions(raw)[0].min_dunnable) == "0"


def test_missing_field_and_empty_list():
    raw = [dict(VALID[0])]
    del raw[0]["template"]
    with pytest.raises(TierConfigError, match=r"tier_definitions\[0\]\.template: is required"):
        validate_tier_definitions(raw)
    with pytest.raises(TierConfigError, match="tier_definitions: must be a non-empty list"):
        validate_tier_definitions([])


def test_threshold_days_validation():
    assert validate_threshold_days(0) == 0
    with pytest.raises(TierConfigError, match="threshold_days: must be at least 0"):
        validate_threshold_days(-1)
    with pytest.raises(TierConfigError, match="threshold_days: must be a whole number"):
        validate_threshold_days("1")
