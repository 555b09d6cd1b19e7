"""Our formats against ICU's own output (Node's Intl), for every kiosk locale.

Node formats each amount with the fraction digits our display rule chose, so this checks symbols,
currency spacing, grouping (including CLDR's minimum grouping digits) and patterns exactly; a
separate test checks that our default digits are ICU's for every currency both know.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime
from decimal import Decimal

import pytest
from babel.numbers import list_currencies

from kiosk.config import LOCALES
from kiosk.core.currencies import minor_digits
from kiosk.core.voucher import parse_voucher
from kiosk.presentation.format import (
    display_digits,
    format_amount,
    format_discount,
    format_expiry,
    format_integer,
)

CURRENCIES = ["DKK", "EUR", "GBP", "HUF", "ALL", "RSD", "JPY", "KWD", "BHD", "ISK", "CHF", "SEK", "NOK",
              "PLN", "CZK", "USD", "TND", "CLP", "IDR", "COP", "PKR", "RON", "BGN", "UAH", "MKD", "BAM"]  # fmt: skip
MINOR_AMOUNTS = [1, 99, 2500, 5000, 1234, 100000, 500050, 123456789]
DATES = ["2027-01-01T00:00:00+00:00", "2027-03-15T12:00:00+00:00", "2027-12-31T23:30:00+00:00", "2030-07-04T10:00:00+00:00"]
NODE = shutil.which("node")

_ICU = """
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const tag = (l) => l.replace('_', '-');
console.log(JSON.stringify(cases.map(([kind, l, v, d]) => {
  if (kind === 'money') return new Intl.NumberFormat(tag(l), {style: 'currency', currency: v[0],
      minimumFractionDigits: d, maximumFractionDigits: d}).format(v[1]);
  if (kind === 'digits') return new Intl.NumberFormat('en-GB', {style: 'currency', currency: v}).resolvedOptions().maximumFractionDigits;
  if (kind === 'date') return new Intl.DateTimeFormat(tag(l), {year: 'numeric', month: 'numeric', day: 'numeric',
      timeZone: 'Europe/Copenhagen'}).format(new Date(v));
  if (kind === 'percent') return new Intl.NumberFormat(tag(l), {style: 'percent'}).format(v / 100);
  return new Intl.NumberFormat(tag(l)).format(v);
})));
"""


def icu(cases: list[list]) -> list:
    assert NODE, "node is required (make installs Debian's nodejs)"
    result = subprocess.run([NODE, "-e", _ICU], input=json.dumps(cases), capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def _shown_digits(minor: int, currency: str) -> tuple[str, int]:
    iso = minor_digits(currency)
    amount = Decimal(minor).scaleb(-iso)
    digits = display_digits(currency)
    if digits > iso or amount != amount.quantize(Decimal(1).scaleb(-digits)):
        digits = iso
    return str(amount), digits


def test_amounts_match_icu_in_every_locale() -> None:
    cases, ours = [], []
    for locale in LOCALES:
        for currency in CURRENCIES:
            for minor in MINOR_AMOUNTS:
                amount, digits = _shown_digits(minor, currency)
                cases.append(["money", locale, [currency, amount], digits])
                ours.append(format_amount(minor, currency, locale))
    expected = icu(cases)
    mismatches = [(c[1], c[2], o, e) for c, o, e in zip(cases, ours, expected) if o != e]
    assert mismatches == [] and len(cases) == 10 * len(CURRENCIES) * len(MINOR_AMOUNTS)


def test_default_digits_are_icus_for_every_currency() -> None:
    codes = sorted(c for c in list_currencies() if len(c) == 3)
    expected = icu([["digits", "en_GB", code, 0] for code in codes])
    assert {c: display_digits(c) for c in codes} == dict(zip(codes, expected))


def test_dates_percentages_and_quantities_match_icu() -> None:
    cases, ours = [], []
    for locale in LOCALES:
        for date in DATES:
            cases.append(["date", locale, date, 0])
            ours.append(format_expiry(datetime.fromisoformat(date), locale, "Europe/Copenhagen"))
        for percent in (1, 15, 50, 100):
            cases.append(["percent", locale, percent, 0])
            voucher = parse_voucher({"code": "X", "type": "percentage", "value": percent, "unit": "%", "conditions": ""})
            ours.append(format_discount(voucher, locale))
        for quantity in (1, 2, 1000, 12345, 1234567):
            cases.append(["number", locale, quantity, 0])
            ours.append(format_integer(quantity, locale))
    expected = icu(cases)
    assert [(c, o) for c, o, e in zip(cases, ours, expected) if o != e] == []


@pytest.mark.parametrize(
    "minor, currency, locale, shown",
    [(500000, "HUF", "hu_HU", "5000\u00a0Ft"), (500050, "HUF", "hu_HU", "5000,50\u00a0Ft"),
     (150, "ALL", "sq_AL", "1,50\u00a0Lekë"), (15000, "ALL", "sq_AL", "150\u00a0Lekë"),
     (1500, "RSD", "en_GB", "RSD\u00a015.00"), (1500, "JPY", "en_GB", "JP¥1,500"), (1234, "KWD", "da_DK", "1,234\u00a0KWD")],
)  # fmt: skip
def test_iso_minor_units_and_the_display_rule(minor: int, currency: str, locale: str, shown: str) -> None:
    assert format_amount(minor, currency, locale) == shown
