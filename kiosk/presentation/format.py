"""Locale formatting of a voucher's discount and expiry, as ICU (CLDR) would print them.

Display rules:
- ``amount``: the value is in ISO 4217 minor units, so it is divided by 10^(ISO 4217 digits), the
  convention of the seed document and of Stripe. It is shown with CLDR's digits for the currency
  (what ICU prints), unless that would hide a non-zero fraction, in which case the ISO digits are
  shown. Example: 150 ALL-minor is 1.50 Lekë (CLDR shows ALL without decimals), not "2 Lekë".
- Babel does not apply CLDR's currency spacing (en_GB "DKK50.00" where ICU prints "DKK 50.00"); we
  insert the no-break space CLDR asks for between a letter-like symbol and a digit.
- ``percentage``: the locale's percent format; ``gift``: the locale's number, a space, the unit as given.
- ``expires_at``: the date in the kiosk's time zone, in the locale's numeric ``yMd`` skeleton.
The data is CLDR 47's, which babel==2.18.0 carries (``CLDR_VERSION``, pinned in pyproject.toml);
tests/unit/test_format_icu.py compares every rule here with ICU 77.1, which carries the same CLDR.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_skeleton
from babel.numbers import (
    format_currency,
    format_decimal,
    format_percent,
    get_currency_precision,
    get_currency_symbol,
    get_group_symbol,
)

from kiosk.core.currencies import minor_digits
from kiosk.core.voucher import DiscountType, Voucher

__all__ = [
    "format_discount",
    "format_amount",
    "format_integer",
    "format_expiry",
    "display_digits",
    "shown_amount",
    "CLDR_VERSION",
]

#: The CLDR release the kiosk's formats follow: the one Babel carries (a test fails on any other).
CLDR_VERSION = "47"
#: CLDR 47 minimumGroupingDigits for the kiosk's languages where it is not 1 (Babel lacks this
#: datum): Hungarian and Albanian write 5000 but 50 000.
_MIN_GROUPING_DIGITS = {"hu": 2, "sq": 2}
#: CLDR 47 number (not currency) group separators that Babel 2.18 does not apply: de_AT groups
#: numbers with a no-break space but amounts with a dot, and Babel knows only the dot.
_ICU_NUMBER_GROUP = {"de_AT": "\u00a0"}
_NBSP = "\u00a0"


def display_digits(currency: str) -> int:
    """The fraction digits ICU shows by default for the currency (CLDR 47: HUF two, RSD none)."""
    return get_currency_precision(currency)


def shown_amount(minor_units: int, currency: str) -> tuple[Decimal, int]:
    """The amount in major units and the fraction digits to show it with (the display rule above)."""
    iso_digits = minor_digits(currency)
    amount = Decimal(minor_units).scaleb(-iso_digits)
    shown_digits = display_digits(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-shown_digits)) or shown_digits > iso_digits:
        shown_digits = iso_digits
    return amount, shown_digits


def format_discount(voucher: Voucher, locale: str) -> str:
    """The discount as the customer reads it: "DKK 50.00", "15 %", "1 Tote bag"."""
    if voucher.type is DiscountType.AMOUNT:
        return format_amount(voucher.value, voucher.unit, locale)
    if voucher.type is DiscountType.PERCENTAGE:
        return format_percent(Decimal(voucher.value) / 100, locale=locale)
    return f"{format_integer(voucher.value, locale)} {voucher.unit}"


def format_integer(value: int, locale: str) -> str:
    """A whole number as ICU prints it for the locale."""
    parsed = Locale.parse(locale)
    text = format_decimal(value, locale=parsed, group_separator=_groups(Decimal(value), parsed))
    group = _ICU_NUMBER_GROUP.get(str(parsed))
    if group is not None:
        text = text.replace(get_group_symbol(parsed), group)
    return text


def format_amount(minor_units: int, currency: str, locale: str) -> str:
    """A money amount given in ISO 4217 minor units."""
    amount, shown_digits = shown_amount(minor_units, currency)
    parsed = Locale.parse(locale)
    pattern = parsed.currency_formats["standard"].pattern
    text = format_currency(
        amount,
        currency,
        format=_with_fraction_digits(pattern, shown_digits),
        locale=parsed,
        currency_digits=False,
        group_separator=_groups(amount, parsed),
    )
    return _apply_currency_spacing(text, get_currency_symbol(currency, locale=parsed))


def format_expiry(expires_at: datetime | None, locale: str, timezone: str) -> str | None:
    """The expiry date in the kiosk's zone, or None when the voucher does not expire."""
    if expires_at is None:
        return None
    local = expires_at.astimezone(ZoneInfo(timezone))
    return format_skeleton("yMd", local, locale=locale)


def _groups(amount: Decimal, locale: Locale) -> bool:
    """Whether to group digits at all: CLDR's minimumGroupingDigits (ICU applies it, Babel not)."""
    integer_digits = len(str(abs(int(amount))))
    return integer_digits >= 3 + _MIN_GROUPING_DIGITS.get(locale.language, 1)


def _with_fraction_digits(pattern: str, digits: int) -> str:
    """Rewrite a CLDR currency pattern's fraction part to exactly ``digits`` places."""
    out = []
    for part in pattern.split(";"):
        integer, dot, rest = part.partition(".")
        if dot:
            tail = rest.lstrip("0#")
            part = integer + ("." + "0" * digits if digits else "") + tail
        elif digits:
            head = part.rstrip("¤ \u00a0")
            part = head + "." + "0" * digits + part[len(head) :]
        out.append(part)
    return ";".join(out)


def _apply_currency_spacing(text: str, symbol: str) -> str:
    """CLDR currencySpacing: a no-break space between a non-symbol currency sign and a digit."""
    if not symbol or symbol not in text:
        return text
    index = text.index(symbol)
    before, after = text[:index], text[index + len(symbol) :]
    if after[:1].isdigit() and _letter_like(symbol[-1]):
        after = _NBSP + after
    if before[-1:].isdigit() and _letter_like(symbol[0]):
        before = before + _NBSP
    return before + symbol + after


def _letter_like(char: str) -> bool:
    """True unless the character is a symbol (S*) or a separator (Z*), per CLDR's currencyMatch."""
    return unicodedata.category(char)[0] not in ("S", "Z")
