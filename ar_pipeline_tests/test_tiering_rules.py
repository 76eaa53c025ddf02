"""Tiering's pure rules pinned at their edges: rounding ties, one-cent edges of every tier, the
skip order with customers that meet several skip conditions at once, and every field and error
message of the tier configuration. Every expected value is worked out by hand in the comments;
none is computed by the code under test."""

import datetime as dt
from decimal import ROUND_FLOOR, Decimal, localcontext

import pytest

from ar_pipeline.rules.money import currency_exponent, format_amount, format_money, to_minor_units
from ar_pipeline.rules.tiering import (
    DEFAULT_TIERS,
    CurrencyPosition,
    CustomerPosition,
    LastApplied,
    TierConfigError,
    TierDecision,
    TierDefinition,
    assign_tier,
    available_templates,
    boundaries,
    validate_threshold_days,
    validate_tier_definitions,
)

AS_OF = dt.date(2026, 3, 31)
DAYS = (1, 15, 30, 60)  # the default tiers' boundaries with threshold_days = 1


def owes(by_day: dict[int, int], credit: int = 0, currency: str = "EUR") -> CurrencyPosition:
    """Undisputed open minor units due from each boundary day (cumulative, as the SQL sums)."""
    return CurrencyPosition(currency, credit, {n: by_day.get(n, 0) for n in DAYS})


def customer(*currencies, oldest="2026-01-01", paused=None, in_flight=None) -> CustomerPosition:
    return CustomerPosition(
        "C7",
        list(currencies),
        dt.date.fromisoformat(oldest) if oldest else None,
        dt.date.fromisoformat(paused) if paused else None,
        in_flight,
    )


def decide(pos, last=None, tiers=DEFAULT_TIERS, as_of=AS_OF):
    """(target tier, last applied tier, proposed tier, skip reason)"""
    d = assign_tier(pos, last, tiers, as_of)  # threshold_days left at its default, 1
    assert d.customer_id == "C7"
    return d.target_tier, d.last_applied_tier, d.proposed_tier, d.skip_reason


def days_ago(n: int) -> dt.date:
    return AS_OF - dt.timedelta(days=n)


# --- currencies and amounts -------------------------------------------------------------------

# ISO 4217 (list one): the currencies whose minor unit is not a hundredth of the major unit.
ISO_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()
ISO_THREE = "BHD IQD JOD KWD LYD OMR TND".split()


@pytest.mark.parametrize("code", ISO_ZERO)
def test_currencies_without_minor_unit(code):
    assert currency_exponent(code) == 0
    assert currency_exponent(code.lower()) == 0


@pytest.mark.parametrize("code", ISO_THREE)
def test_currencies_with_three_decimals(code):
    assert currency_exponent(code) == 3
    assert currency_exponent(code.lower()) == 3


def test_every_other_currency_has_two_decimals():
    for code in ["EUR", "USD", "GBP", "CHF", "eur", "XYZ", ""]:
        assert currency_exponent(code) == 2, code


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("10.00", "EUR", 1_000),
        ("1234.56", "USD", 123_456),
        ("10", "JPY", 10),
        ("10.00", "KWD", 10_000),
        ("0", "EUR", 0),
        # ties round half up: 0.5 cent -> 1 cent, 2.5 cents -> 3 (half-even would give 0 and 2)
        ("0.005", "EUR", 1),
        ("0.015", "EUR", 2),
        ("0.025", "EUR", 3),
        ("10.005", "EUR", 1_001),
        ("0.004", "EUR", 0),
        ("0.0049", "EUR", 0),
        ("0.5", "JPY", 1),
        ("2.5", "JPY", 3),
        ("10.50", "JPY", 11),
        ("10.49", "JPY", 10),
        ("0.0005", "KWD", 1),
        ("1.2345", "KWD", 1_235),
        ("1.2344", "KWD", 1_234),
        # a tie below zero rounds away from zero, as half up does on magnitudes
        ("-0.005", "EUR", -1),
        ("-1.25", "JPY", -1),
    ],
)
def test_to_minor_units_rounds_half_up(amount, currency, minor):
    result = to_minor_units(Decimal(amount), currency)
    assert result == minor
    assert type(result) is int


def test_to_minor_units_does_not_depend_on_the_ambient_decimal_context():
    # 10.999 EUR is 1099.9 cents: 1100 half up, 1099 if the context's floor rounding leaked in
    with localcontext() as context:
        context.rounding = ROUND_FLOOR
        assert to_minor_units(Decimal("10.999"), "EUR") == 1_100
        assert to_minor_units(Decimal("0.005"), "EUR") == 1


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (123_456, "EUR", "1,234.56"),
        (-123_456, "EUR", "-1,234.56"),
        (-5, "EUR", "-0.05"),
        (5, "EUR", "0.05"),
        (0, "EUR", "0.00"),
        (100, "eur", "1.00"),
        (10**13, "EUR", "100,000,000,000.00"),
        (1_234_567, "JPY", "1,234,567"),
        (-1_234, "JPY", "-1,234"),
        (0, "JPY", "0"),
        (999, "JPY", "999"),
        (1_234_567, "KWD", "1,234.567"),
        (-1, "KWD", "-0.001"),
        (1_000, "KWD", "1.000"),
    ],
)
def test_format_amount(minor, currency, text):
    assert format_amount(minor, currency) == text


def test_format_money_appends_the_currency():
    assert format_money(-123_456, "EUR") == "-1,234.56 EUR"
    assert format_money(5, "JPY") == "5 JPY"
    assert format_money(1_000_000, "BHD") == "1,000.000 BHD"
    assert format_money(0, "USD") == "0.00 USD"


# --- the tier amount and the boundaries ------------------------------------------------------


def test_tier_amount_is_due_less_credit_never_below_zero():
    position = CurrencyPosition("EUR", 300, {1: 1_000, 15: 200, 30: 300})
    assert position.tier_amount(1) == 700  # 10.00 - 3.00
    assert position.tier_amount(15) == 0  # 2.00 - 3.00 -> nothing, not -1.00
    assert position.tier_amount(30) == 0  # exactly the credit
    assert CurrencyPosition("EUR", 0, {1: 1_000}).tier_amount(1) == 1_000


def test_boundaries_are_the_threshold_and_each_tiers_days_raised_to_it():
    assert boundaries(DEFAULT_TIERS, 1) == [1, 15, 30, 60]
    assert boundaries(DEFAULT_TIERS, 0) == [0, 1, 15, 30, 60]
    assert boundaries(DEFAULT_TIERS, 15) == [15, 30, 60]
    assert boundaries(DEFAULT_TIERS, 20) == [20, 30, 60]
    assert boundaries(DEFAULT_TIERS, 61) == [61]
    assert boundaries((), 5) == [5]


def test_default_tiers_are_the_designs_table():
    assert DEFAULT_TIERS == (
        TierDefinition(1, "reminder", 1, Decimal("10.00"), 7, "reminder", False),
        TierDefinition(2, "firm_reminder", 15, Decimal("10.00"), 7, "firm_reminder", False),
        TierDefinition(3, "final_notice", 30, Decimal("100.00"), 10, "final_notice", True),
        TierDefinition(4, "escalation", 60, Decimal("500.00"), 14, "escalation", True),
    )


# --- one-cent edges of every default tier ------------------------------------------------------


@pytest.mark.parametrize(
    ("by_day", "target"),
    [
        ({1: 1_000}, 1),  # exactly 10.00 at 1+ days: reminder
        ({1: 999}, None),  # 9.99
        ({1: 1_000, 15: 1_000}, 2),  # exactly 10.00 at 15+ days: firm reminder
        ({1: 1_000, 15: 999}, 1),
        ({1: 10_000, 15: 10_000, 30: 10_000}, 3),  # exactly 100.00 at 30+ days: final notice
        ({1: 10_000, 15: 10_000, 30: 9_999}, 2),
        ({1: 50_000, 15: 50_000, 30: 50_000, 60: 50_000}, 4),  # exactly 500.00 at 60+ days
        ({1: 50_000, 15: 50_000, 30: 50_000, 60: 49_999}, 3),
    ],
)
def test_a_tier_minimum_is_met_exactly_at_it_and_missed_one_cent_below(by_day, target):
    got = decide(customer(owes(by_day)))
    assert got[0] == target
    assert got[3] == (None if target else "below_minimum")


def test_one_cent_of_credit_decides_the_reminder():
    assert decide(customer(owes({1: 1_100}, credit=100)))[0] == 1  # 11.00 - 1.00 = 10.00
    assert decide(customer(owes({1: 1_100}, credit=101)))[0] is None  # 9.99


def test_three_decimal_currency_edge():
    assert decide(customer(owes({1: 10_000}, currency="KWD")))[0] == 1  # 10.000 KWD
    assert decide(customer(owes({1: 9_999}, currency="KWD")))[0] is None
    assert decide(customer(owes({1: 9_999}, currency="kwd")))[0] is None  # not 99.99


def _tiers(*minimums: str) -> tuple[TierDefinition, ...]:
    days = (1, 15, 30, 60)
    return tuple(
        TierDefinition(i + 1, f"t{i + 1}", days[i], Decimal(m), 7, "reminder", False)
        for i, m in enumerate(minimums)
    )


def test_a_minimum_finer_than_the_minor_unit_rounds_half_up():
    # 10.005 EUR is 1000.5 cents -> 1001: 10.00 does not reach it, 10.01 does
    tiers = _tiers("10.005")
    assert decide(customer(owes({1: 1_000})), tiers=tiers)[0] is None
    assert decide(customer(owes({1: 1_001})), tiers=tiers)[0] == 1
    # 10.50 JPY is 10.5 yen -> 11: 10 yen does not reach it
    assert decide(customer(owes({1: 10}, currency="JPY")), tiers=_tiers("10.50"))[0] is None
    assert decide(customer(owes({1: 11}, currency="JPY")), tiers=_tiers("10.50"))[0] == 1


def test_target_is_the_highest_tier_met_even_past_a_tier_missed():
    # tier 2 asks 1000.00, tier 3 only 10.00: 50.00 at 30+ days meets tiers 1 and 3, not 2
    tiers = _tiers("10.00", "1000.00", "10.00")
    assert decide(customer(owes({1: 5_000, 15: 5_000, 30: 5_000})), tiers=tiers) == (
        3, None, 1, None,
    )  # fmt: skip


def test_a_currency_other_than_the_first_can_meet_the_tier():
    usd, gbp = owes({1: 100, 15: 100}, currency="USD"), owes({1: 1_000}, currency="GBP")
    pos = customer(owes({1: 100}), usd, gbp)
    assert decide(pos)[0] == 1  # only GBP reaches 10.00


# --- the skip order: below_minimum, paused, in_flight, already_at_tier, cooldown --------------


def test_below_minimum_comes_before_every_other_skip():
    # 9.99 owed, paused through today, tier 1 in flight, tier 1 applied yesterday (cooldown 7)
    pos = customer(owes({1: 999}), paused="2026-03-31", in_flight=1)
    assert decide(pos, LastApplied(1, days_ago(1))) == (None, 1, None, "below_minimum")


def test_paused_comes_before_in_flight_already_at_tier_and_cooldown():
    # target 1, paused through today, tier 1 in flight, tier 1 applied two days ago
    pos = customer(owes({1: 5_000}), paused="2026-03-31", in_flight=1)
    assert decide(pos, LastApplied(1, days_ago(2))) == (1, 1, None, "paused")
    # paused far into the future is still paused
    pos = customer(owes({1: 5_000}), paused="2027-01-01")
    assert decide(pos) == (1, None, None, "paused")


def test_in_flight_comes_before_already_at_tier_and_cooldown():
    # the pause ended yesterday; tier 1 in flight; tier 1 applied two days ago (cooldown 7)
    pos = customer(owes({1: 5_000}), paused="2026-03-30", in_flight=1)
    assert decide(pos, LastApplied(1, days_ago(2))) == (1, 1, None, "in_flight")


def test_already_at_tier_comes_before_cooldown():
    pos = customer(owes({1: 5_000}))  # target 1
    assert decide(pos, LastApplied(1, days_ago(2))) == (1, 1, None, "already_at_tier")
    # last applied above the target (the amount went down): still already at tier
    assert decide(pos, LastApplied(3, days_ago(40))) == (1, 3, None, "already_at_tier")


def test_in_flight_blocks_the_step_at_or_below_its_tier_only():
    pos_at = {1: 5_000, 15: 5_000}  # target 2
    last = LastApplied(1, days_ago(30))  # next step 2
    assert decide(customer(owes(pos_at), in_flight=2), last) == (2, 1, None, "in_flight")
    assert decide(customer(owes(pos_at), in_flight=3), last) == (2, 1, None, "in_flight")
    assert decide(customer(owes(pos_at), in_flight=1), last) == (2, 1, 2, None)
    # nothing applied yet: the first step is 1, and a reminder in flight blocks it
    assert decide(customer(owes(pos_at), in_flight=1)) == (2, None, None, "in_flight")
    assert decide(customer(owes(pos_at), in_flight=None)) == (2, None, 1, None)


def test_cooldown_is_the_last_applied_tiers_own():
    # cooldowns 3, 6, 9 days so that reading a neighbouring tier's cooldown shows
    tiers = tuple(
        TierDefinition(i, f"t{i}", days, Decimal("10.00"), cooldown, "reminder", False)
        for i, days, cooldown in [(1, 1, 3), (2, 15, 6), (3, 30, 9)]
    )
    pos = customer(owes({1: 5_000, 15: 5_000, 30: 5_000}))  # target 3
    assert decide(pos, LastApplied(2, days_ago(5)), tiers) == (3, 2, None, "cooldown")
    assert decide(pos, LastApplied(2, days_ago(6)), tiers) == (3, 2, 3, None)
    assert decide(pos, LastApplied(1, days_ago(2)), tiers) == (3, 1, None, "cooldown")
    assert decide(pos, LastApplied(1, days_ago(3)), tiers) == (3, 1, 2, None)
    # applied today: zero days since
    assert decide(pos, LastApplied(1, AS_OF), tiers) == (3, 1, None, "cooldown")


def test_reminder_cooldown_edge_with_the_default_tiers():
    pos = customer(owes({1: 5_000, 15: 5_000}))  # target 2; tier 1 cools down for 7 days
    assert decide(pos, LastApplied(1, days_ago(6))) == (2, 1, None, "cooldown")
    assert decide(pos, LastApplied(1, days_ago(7))) == (2, 1, 2, None)


def test_one_step_beyond_the_last_applied_and_never_beyond_the_target():
    far = owes({1: 90_000, 15: 90_000, 30: 90_000, 60: 90_000})  # target 4
    assert decide(customer(far), LastApplied(2, days_ago(30))) == (4, 2, 3, None)
    assert decide(customer(far), LastApplied(3, days_ago(30))) == (4, 3, 4, None)
    assert decide(customer(far), LastApplied(4, days_ago(30))) == (4, 4, None, "already_at_tier")


def test_episode_without_an_overdue_date_keeps_the_last_action():
    pos = customer(owes({1: 5_000, 15: 5_000}), oldest=None)
    assert decide(pos, LastApplied(1, dt.date(2020, 1, 1))) == (2, 1, 2, None)


def test_an_earlier_episodes_action_neither_counts_nor_cools_down():
    pos = customer(owes({1: 5_000, 15: 5_000}), oldest="2026-03-25")
    # tier 2 applied the day before the oldest item fell due: start again at 1, no cooldown
    assert decide(pos, LastApplied(2, dt.date(2026, 3, 24))) == (2, None, 1, None)
    # applied on the due date: same episode, tier 1 applied 6 days ago is cooling down
    assert decide(pos, LastApplied(1, dt.date(2026, 3, 25))) == (2, 1, None, "cooldown")


def test_the_decision_names_the_customer():
    pos = CustomerPosition("ACME-9", [owes({1: 5_000})])
    assert assign_tier(pos, None, DEFAULT_TIERS, AS_OF) == TierDecision("ACME-9", 1, None, 1, None)


# --- the tier configuration -------------------------------------------------------------------

GOOD = [
    {"tier": 1, "name": "nudge", "min_days_overdue": 3, "min_dunnable": "5.00",
     "cooldown_days": 0, "template": "reminder"},
    {"tier": 2, "name": "firm", "min_days_overdue": 4, "min_dunnable": 10,
     "cooldown_days": 36_500, "template": "firm_reminder", "involves_sales_rep": False},
    {"tier": 3, "name": "final", "min_days_overdue": 36_500, "min_dunnable": Decimal("7.50"),
     "cooldown_days": 10, "template": "final_notice", "involves_sales_rep": True},
]  # fmt: skip


def good() -> list[dict]:
    return [dict(t) for t in GOOD]


def test_every_field_is_read():
    assert validate_tier_definitions(good()) == (
        TierDefinition(1, "nudge", 3, Decimal("5.00"), 0, "reminder", False),
        TierDefinition(2, "firm", 4, Decimal("10"), 36_500, "firm_reminder", False),
        TierDefinition(3, "final", 36_500, Decimal("7.50"), 10, "final_notice", True),
    )
    assert validate_tier_definitions(None) is DEFAULT_TIERS


def test_amount_forms():
    for raw, expected in [(" 5.00 ", "5.00"), ("0", "0"), (0, "0"), (Decimal("12.345"), "12.345")]:
        tiers = good()
        tiers[0]["min_dunnable"] = raw
        assert str(validate_tier_definitions(tiers)[0].min_dunnable) == expected


def test_templates_given_replace_the_files():
    one = [dict(GOOD[0], template="letter")]
    assert validate_tier_definitions(one, templates=iter(["letter"]))[0].template == "letter"
    with pytest.raises(TierConfigError) as error:
        validate_tier_definitions(good(), templates=["final_notice", "reminder"])
    assert str(error.value) == (
        "tier_definitions[1].template: unknown template 'firm_reminder'; "
        "known: final_notice, reminder"
    )
    with pytest.raises(TierConfigError) as error:
        validate_tier_definitions(good(), templates=[])
    assert str(error.value) == "tier_definitions[0].template: unknown template 'reminder'; known: "


def test_available_templates_are_the_letter_names():
    names = available_templates()
    assert {"reminder", "firm_reminder", "final_notice", "escalation"} <= names
    assert all("." not in n for n in names)


def test_error_type():
    assert issubclass(TierConfigError, ValueError)


def _error(tiers, templates=None) -> str:
    with pytest.raises(TierConfigError) as error:
        validate_tier_definitions(tiers, templates)
    return str(error.value)


@pytest.mark.parametrize(
    "raw",
    [[], (), "reminder", "", {"tier": 1}, 5],
    ids=["list", "tuple", "str", "empty", "map", "int"],
)
def test_not_a_non_empty_list(raw):
    assert _error(raw) == "tier_definitions: must be a non-empty list of tiers"


P = "tier_definitions"


@pytest.mark.parametrize(
    ("index", "field", "value", "message"),
    [
        # tier
        (0, "tier", "1", f"{P}[0].tier: must be a whole number, got '1'"),
        (0, "tier", True, f"{P}[0].tier: must be a whole number, got True"),
        (0, "tier", 1.0, f"{P}[0].tier: must be a whole number, got 1.0"),
        (0, "tier", None, f"{P}[0].tier: must be a whole number, got None"),
        (0, "tier", 0, f"{P}[0].tier: must be at least 1, got 0"),
        (0, "tier", 36_501, f"{P}[0].tier: must be at most 36500, got 36501"),
        (
            0,
            "tier",
            36_500,
            f"{P}[0].tier: tiers must be numbered 1, 2, 3, ... in order; expected 1, got 36500",
        ),
        (
            0,
            "tier",
            2,
            f"{P}[0].tier: tiers must be numbered 1, 2, 3, ... in order; expected 1, got 2",
        ),
        (
            2,
            "tier",
            2,
            f"{P}[2].tier: tiers must be numbered 1, 2, 3, ... in order; expected 3, got 2",
        ),
        (
            2,
            "tier",
            4,
            f"{P}[2].tier: tiers must be numbered 1, 2, 3, ... in order; expected 3, got 4",
        ),
        # name
        (0, "name", "", f"{P}[0].name: must be a non-empty text, got ''"),
        (1, "name", "  ", f"{P}[1].name: must be a non-empty text, got '  '"),
        (0, "name", 5, f"{P}[0].name: must be a non-empty text, got 5"),
        (2, "name", "nudge", f"{P}[2].name: 'nudge' is used by an earlier tier"),
        (2, "name", "firm", f"{P}[2].name: 'firm' is used by an earlier tier"),
        # min_days_overdue
        (0, "min_days_overdue", 0, f"{P}[0].min_days_overdue: must be at least 1, got 0"),
        (0, "min_days_overdue", "3", f"{P}[0].min_days_overdue: must be a whole number, got '3'"),
        (
            2,
            "min_days_overdue",
            36_501,
            f"{P}[2].min_days_overdue: must be at most 36500, got 36501",
        ),
        (
            1,
            "min_days_overdue",
            3,
            f"{P}[1].min_days_overdue: must be greater than the previous tier's (3), got 3; "
            "tiers overlap or are unordered",
        ),
        (
            1,
            "min_days_overdue",
            2,
            f"{P}[1].min_days_overdue: must be greater than the previous tier's (3), got 2; "
            "tiers overlap or are unordered",
        ),
        (
            2,
            "min_days_overdue",
            4,
            f"{P}[2].min_days_overdue: must be greater than the previous tier's (4), got 4; "
            "tiers overlap or are unordered",
        ),
        # min_dunnable
        (
            0,
            "min_dunnable",
            True,
            f"{P}[0].min_dunnable: must be an amount written as text like '10.00' "
            "(no floating point for money), got True",
        ),
        (
            1,
            "min_dunnable",
            10.5,
            f"{P}[1].min_dunnable: must be an amount written as text like '10.00' "
            "(no floating point for money), got 10.5",
        ),
        (
            0,
            "min_dunnable",
            "ten",
            f"{P}[0].min_dunnable: must be a finite amount like '10.00' (plain digits), got 'ten'",
        ),
        (
            0,
            "min_dunnable",
            None,
            f"{P}[0].min_dunnable: must be a finite amount like '10.00' (plain digits), got None",
        ),
        (0, "min_dunnable", "-1.00", f"{P}[0].min_dunnable: must not be negative, got '-1.00'"),
        (0, "min_dunnable", -1, f"{P}[0].min_dunnable: must not be negative, got '-1'"),
        # cooldown_days
        (0, "cooldown_days", -1, f"{P}[0].cooldown_days: must be at least 0, got -1"),
        (1, "cooldown_days", 36_501, f"{P}[1].cooldown_days: must be at most 36500, got 36501"),
        (0, "cooldown_days", 7.0, f"{P}[0].cooldown_days: must be a whole number, got 7.0"),
        (0, "cooldown_days", False, f"{P}[0].cooldown_days: must be a whole number, got False"),
        # template
        (
            0,
            "template",
            "grovel",
            f"{P}[0].template: unknown template 'grovel'; known: escalation, final_notice, "
            "firm_reminder, reminder, sales_rep_email",
        ),
        # involves_sales_rep
        (1, "involves_sales_rep", "yes", f"{P}[1].involves_sales_rep: must be true or false"),
        (2, "involves_sales_rep", 1, f"{P}[2].involves_sales_rep: must be true or false"),
        (0, "involves_sales_rep", None, f"{P}[0].involves_sales_rep: must be true or false"),
    ],
)
def test_each_field_error_names_the_field_and_says_why(index, field, value, message):
    tiers = good()
    tiers[index][field] = value
    assert _error(tiers) == message


def test_entry_shape_errors():
    assert _error([["tier", 1]]) == f"{P}[0]: must be a mapping, got ['tier', 1]"
    assert _error([GOOD[0], "tier 2"]) == f"{P}[1]: must be a mapping, got 'tier 2'"
    # of several unknown fields, the first in alphabetical order is named
    assert _error([dict(GOOD[0], zeta=1, alpha=2)]) == f"{P}[0].alpha: unknown field"
    # an unknown field is named before a missing one
    bad = dict(GOOD[0], colour="red")
    del bad["template"]
    assert _error([bad]) == f"{P}[0].colour: unknown field"
    # of several missing fields, the first in alphabetical order is named
    bad = dict(GOOD[0])
    del bad["template"], bad["cooldown_days"]
    assert _error([bad]) == f"{P}[0].cooldown_days: is required"
    for field in ["tier", "name", "min_days_overdue", "min_dunnable", "template"]:
        bad = dict(GOOD[1])
        del bad[field]
        assert _error([GOOD[0], bad]) == f"{P}[1].{field}: is required"


def test_involves_sales_rep_is_optional_and_false_by_default():
    assert "involves_sales_rep" not in GOOD[0]
    assert validate_tier_definitions(good())[0].involves_sales_rep is False


def test_checks_run_field_by_field_in_order():
    # a wrong tier number is reported before an empty name, which is reported before bad days
    bad = dict(GOOD[0], tier=2, name="", min_days_overdue=0)
    assert _error([bad]).startswith(f"{P}[0].tier:")
    bad = dict(GOOD[0], name="", min_days_overdue=0)
    assert _error([bad]).startswith(f"{P}[0].name:")
    bad = dict(GOOD[0], min_days_overdue=0, min_dunnable="x", cooldown_days=-1, template="y")
    assert _error([bad]).startswith(f"{P}[0].min_days_overdue:")
    bad = dict(GOOD[0], min_dunnable="x", cooldown_days=-1, template="y")
    assert _error([bad]).startswith(f"{P}[0].min_dunnable:")
    bad = dict(GOOD[0], cooldown_days=-1, template="y", involves_sales_rep="n")
    assert _error([bad]).startswith(f"{P}[0].cooldown_days:")
    bad = dict(GOOD[0], template="y", involves_sales_rep="n")
    assert _error([bad]).startswith(f"{P}[0].template:")


def test_threshold_days():
    assert validate_threshold_days(0) == 0
    assert validate_threshold_days(36_500) == 36_500
    for value, message in [
        (-1, "threshold_days: must be at least 0, got -1"),
        (36_501, "threshold_days: must be at most 36500, got 36501"),
        (True, "threshold_days: must be a whole number, got True"),
        (1.0, "threshold_days: must be a whole number, got 1.0"),
        ("1", "threshold_days: must be a whole number, got '1'"),
    ]:
        with pytest.raises(TierConfigError) as error:
            validate_threshold_days(value)
        assert str(error.value) == message
