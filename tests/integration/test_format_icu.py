"""Our formats against ICU's own output, for every kiosk locale.

The reference is PyICU from the pinned ``pyicu-wheels`` (dev extra): ICU 77.1 in the wheel, so the
same CLDR (47) on every machine, whatever ICU the host has, and the same CLDR Babel carries. ICU
formats each amount with the fraction digits our display rule chose, so this checks symbols,
currency spacing, grouping (including CLDR's minimum grouping digits) and patterns exactly; a
separate test checks that our default digits are ICU's for every currency both know.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import icu
import pytest
from babel.core import get_cldr_version
from babel.numbers import list_currencies
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.config import LOCALES
from kiosk.core.currencies import ACTIVE
from kiosk.core.voucher import MAX_VALUE, parse_voucher
from kiosk.presentation.format import (
    CLDR_VERSION,
    display_digits,
    format_amount,
    format_discount,
    format_expiry,
    format_integer,
    shown_amount,
)

pytestmark = pytest.mark.integration

#: The ICU release of the reference and the CLDR release it carries (ICU 77 is built on CLDR 47).
REFERENCE_ICU, REFERENCE_CLDR = "77.1", "47"
ZONE = "Europe/Copenhagen"
CURRENCIES = [
    "DKK",
    "EUR",
    "GBP",
    "HUF",
    "ALL",
    "RSD",
    "JPY",
    "KWD",
    "BHD",
    "ISK",
    "CHF",
    "SEK",
    "NOK",
    "PLN",
    "CZK",
    "USD",
    "TND",
    "CLP",
    "IDR",
    "COP",
    "PKR",
    "RON",
    "BGN",
    "UAH",
    "MKD",
    "BAM",
]
MINOR_AMOUNTS = [1, 99, 2500, 5000, 1234, 100000, 500050, 123456789]
DATES = [
    "2027-01-01T00:00:00+00:00",
    "2027-03-15T12:00:00+00:00",
    "2027-12-31T23:30:00+00:00",
    "2030-07-04T10:00:00+00:00",
]


@cache
def _formatter(skeleton: str, locale: str) -> icu.LocalizedNumberFormatter:
    return icu.NumberFormatter.forSkeleton(skeleton).locale(icu.Locale(locale))


def icu_amount(minor: int, currency: str, locale: str) -> str:
    """ICU's output for the amount, with the fraction digits our display rule chose."""
    amount, digits = shown_amount(minor, currency)
    precision = "." + "0" * digits if digits else "precision-integer"
    return _formatter(f"currency/{currency} {precision}", locale).formatDecimal(format(amount, "f").encode())


def icu_default_digits(currency: str) -> int:
    """The fraction digits ICU shows for the currency when told nothing about precision."""
    one = _formatter(f"currency/{currency} unit-width-iso-code", "en_GB").formatInt(1)
    return len(one.partition(".")[2])


def icu_date(moment: datetime, locale: str) -> str:
    """ICU's DateFormat for the yMd skeleton (what DateFormat::createInstanceForSkeleton builds)."""
    pattern = icu.DateTimePatternGenerator.createInstance(icu.Locale(locale)).getBestPattern("yMd")
    date_format = icu.SimpleDateFormat(pattern, icu.Locale(locale))
    date_format.setTimeZone(icu.TimeZone.createTimeZone(ZONE))
    return date_format.format(moment.timestamp())  # PyICU takes UDate in seconds


def test_babel_carries_the_cldr_the_kiosk_follows() -> None:
    assert get_cldr_version() == CLDR_VERSION, "Babel is not the pinned one (pyproject.toml: babel==2.18.0)"


def test_the_reference_is_the_pinned_icu_on_the_same_cldr() -> None:
    assert icu.ICU_VERSION == REFERENCE_ICU, "PyICU is not the pinned pyicu-wheels==2.15.2"
    assert REFERENCE_CLDR == CLDR_VERSION


def test_amounts_match_icu_in_every_locale() -> None:
    cases = [(locale, currency, minor) for locale in LOCALES for currency in CURRENCIES for minor in MINOR_AMOUNTS]
    mismatches = []
    for locale, currency, minor in cases:
        ours, expected = format_amount(minor, currency, locale), icu_amount(minor, currency, locale)
        if ours != expected:
            mismatches.append((locale, currency, minor, ours, expected))
    assert mismatches == [] and len(cases) == 10 * len(CURRENCIES) * len(MINOR_AMOUNTS)


@settings(max_examples=300, deadline=None)
@given(minor=st.integers(1, MAX_VALUE), currency=st.sampled_from(sorted(ACTIVE)), locale=st.sampled_from(LOCALES))
def test_any_amount_in_any_currency_in_use_matches_icu(minor: int, currency: str, locale: str) -> None:
    assert format_amount(minor, currency, locale) == icu_amount(minor, currency, locale)


def test_default_digits_are_icus_for_every_currency() -> None:
    icu_codes = {unit.getSubtype() for unit in icu.MeasureUnit.getAvailable("currency")}
    codes = sorted(icu_codes & {code for code in list_currencies() if len(code) == 3})
    assert len(codes) > 250
    assert {c: display_digits(c) for c in codes} == {c: icu_default_digits(c) for c in codes}


def test_dates_percentages_and_quantities_match_icu() -> None:
    mismatches = []
    for locale in LOCALES:
        for date in map(datetime.fromisoformat, DATES):
            mismatches.append((locale, date, format_expiry(date, locale, ZONE), icu_date(date, locale)))
        for percent in (1, 15, 50, 100):
            voucher = parse_voucher(
                {"code": "X", "type": "percentage", "value": percent, "unit": "%", "conditions": ""}
            )
            mismatches.append(
                (locale, percent, format_discount(voucher, locale), _formatter("percent", locale).formatInt(percent))
            )
        for quantity in (1, 2, 1000, 12345, 1234567):
            mismatches.append(
                (locale, quantity, format_integer(quantity, locale), _formatter("", locale).formatInt(quantity))
            )
    assert [case for case in mismatches if case[2] != case[3]] == []


@settings(max_examples=100, deadline=None)
@given(
    moment=st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31), timezones=st.just(UTC)),
    locale=st.sampled_from(LOCALES),
)
def test_any_expiry_date_matches_icu(moment: datetime, locale: str) -> None:
    moment = moment.replace(microsecond=0)  # ICU's UDate is whole milliseconds
    assert format_expiry(moment, locale, ZONE) == icu_date(moment, locale)


@pytest.mark.parametrize(
    "minor, currency, locale, shown",
    [
        (500000, "HUF", "hu_HU", "5000,00\u00a0Ft"),
        (500050, "HUF", "hu_HU", "5000,50\u00a0Ft"),
        (150, "ALL", "sq_AL", "1,50\u00a0Lekë"),
        (15000, "ALL", "sq_AL", "150\u00a0Lekë"),
        (1500, "RSD", "en_GB", "RSD\u00a015"),
        (1550, "RSD", "en_GB", "RSD\u00a015.50"),
        (1500, "JPY", "en_GB", "JP¥1,500"),
        (1234, "KWD", "da_DK", "1,234\u00a0KWD"),
    ],
)
def test_iso_minor_units_and_the_display_rule(minor: int, currency: str, locale: str, shown: str) -> None:
    assert format_amount(minor, currency, locale) == shown
