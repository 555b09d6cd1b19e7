"""The seed document's examples, verbatim (ICU puts a no-break space where the seed shows a space)."""

from datetime import UTC, datetime

import pytest

from kiosk.core.currencies import minor_digits
from kiosk.core.voucher import parse_voucher
from kiosk.presentation.format import format_amount, format_discount, format_expiry


def plain(text: str) -> str:
    return text.replace("\u00a0", " ").replace("\u202f", " ")


@pytest.mark.parametrize(
    "minor, currency, locale, expected",
    [
        (5000, "DKK", "en_GB", "DKK 50.00"),
        (5000, "DKK", "da_DK", "50,00 kr."),
        (2500, "EUR", "da_DK", "25,00 €"),
        (2500, "EUR", "en_GB", "€25.00"),
        (1500, "JPY", "en_GB", "JP¥1,500"),
        (1234, "KWD", "en_GB", "KWD 1.234"),
    ],
)
def test_amounts(minor: int, currency: str, locale: str, expected: str) -> None:
    assert plain(format_amount(minor, currency, locale)) == expected


def test_currency_spacing_is_a_no_break_space() -> None:
    assert format_amount(5000, "DKK", "en_GB") == "DKK\u00a050.00"


def test_iso_digits() -> None:
    assert [minor_digits(c) for c in ("DKK", "JPY", "KWD", "HUF", "ALL")] == [2, 0, 3, 2, 2]


def test_percentage_and_gift() -> None:
    percent = parse_voucher({"code": "P", "type": "percentage", "value": 15, "unit": "%", "conditions": ""})
    gift = parse_voucher({"code": "G", "type": "gift", "value": 1, "unit": "Tote bag", "conditions": ""})
    assert plain(format_discount(percent, "da_DK")) == "15 %"
    assert format_discount(percent, "en_GB") == "15%"
    assert format_discount(gift, "en_GB") == "1 Tote bag"


def test_expiry_dates_in_the_kiosk_zone() -> None:
    assert format_expiry(datetime(2027, 1, 1, 12, tzinfo=UTC), "en_GB", "Europe/London") == "01/01/2027"
    assert format_expiry(datetime(2027, 3, 15, 12, tzinfo=UTC), "da_DK", "Europe/Copenhagen") == "15.3.2027"
    # 23:30 UTC on 14 March is already 15 March in Copenhagen
    assert (
        format_expiry(datetime(2027, 3, 14, 23, 30, tzinfo=UTC), "da_DK", "Europe/Copenhagen") == "15.3.2027"
    )
    assert format_expiry(None, "da_DK", "Europe/Copenhagen") is None
