"""Money as integer minor units of an ISO 4217 currency: conversion and formatting."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 currencies whose minor unit is not 1/100 of the major unit.
CURRENCY_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


def currency_exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit (2 unless ISO 4217 says otherwise)."""
    return CURRENCY_EXPONENTS.get(currency.upper(), 2)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """A major-unit amount (``Decimal('10.00')``) in the currency's minor units (1000). A finer
    amount rounds half up (``Decimal('10.005')`` EUR is 1001 cents), whatever the decimal
    context says."""
    scaled = amount * (10 ** currency_exponent(currency))
    return int(scaled.to_integral_value(rounding=ROUND_HALF_UP))


def format_amount(minor: int, currency: str) -> str:
    """Minor units in major units: ``format_amount(123456, 'EUR') == '1,234.56'``."""
    exponent = currency_exponent(currency)
    if type(minor) is int:  # integer arithmetic: the same text, without a Decimal per amount
        if exponent == 0:
            return f"{minor:,}"
        major, fraction = divmod(-minor if minor < 0 else minor, 10**exponent)
        return f"{'-' if minor < 0 else ''}{major:,}.{fraction:0{exponent}d}"
    return f"{Decimal(minor).scaleb(-exponent):,.{exponent}f}"


def format_money(minor: int, currency: str) -> str:
    """Minor units as a readable amount: ``format_money(123456, 'EUR') == '1,234.56 EUR'``."""
    return f"{format_amount(minor, currency)} {currency}"
