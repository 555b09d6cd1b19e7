"""The mapping of Voucherify vouchers onto RE-ZIP vouchers (kiosk/shop/mapping.py): exact for every
kind and every currency's digits, and a clear refusal for what RE-ZIP cannot show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.currencies import ACTIVE, minor_digits
from kiosk.core.voucher import DiscountType
from kiosk.shop.mapping import MappingError, campaign_problem, rezip_voucher
from kiosk.shop.voucherify_model import AnswerError, parse_campaign_doc, parse_error, parse_voucher_doc

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def voucher(discount: dict[str, Any] | None = None, **fields: Any) -> Any:
    doc = {"code": "RZ-ABC123", "type": "DISCOUNT_VOUCHER", "discount": discount, **fields}
    return parse_voucher_doc(doc)


def mapped(
    discount: dict[str, Any] | None = None, currency: str = "DKK", **fields: Any
) -> tuple[DiscountType, int, str]:
    result = rezip_voucher(voucher(discount, **fields), currency=currency, now=NOW)
    return result.type, result.value, result.unit


def campaign(template: dict[str, Any], **fields: Any) -> Any:
    return parse_campaign_doc({"id": "camp_1", "name": "C", "voucher": template, **fields})


@pytest.mark.parametrize("percent, effect", [(20, "APPLY_TO_ORDER"), (100, "APPLY_TO_ITEMS"), (15.0, None), (1, None)])
def test_whole_percentages(percent: float, effect: str | None) -> None:
    discount = {"type": "PERCENT", "percent_off": percent} | ({"effect": effect} if effect else {})
    assert mapped(discount) == (DiscountType.PERCENTAGE, int(percent), "%")


@pytest.mark.parametrize(
    "currency, amount_off, value",
    [
        ("DKK", 5000, 5000),
        ("EUR", 2550, 2550),
        ("DKK", 1, 1),  # two digits: Voucherify's hundredths are øre, cents
        ("JPY", 100000, 1000),
        ("ISK", 50000, 500),
        ("KRW", 100, 1),  # no digits: hundredths of a yen must be whole yen
        ("KWD", 1050, 10500),
        ("BHD", 1, 10),  # three digits: a fils is a tenth of a hundredth
    ],
)
def test_amounts_in_the_currencys_minor_units(currency: str, amount_off: int, value: int) -> None:
    discount = {"type": "AMOUNT", "amount_off": amount_off, "effect": "APPLY_TO_ORDER"}
    assert mapped(discount, currency) == (DiscountType.AMOUNT, value, currency)


@given(st.integers(min_value=1, max_value=10**9), st.sampled_from(sorted(ACTIVE)))
@settings(max_examples=200, deadline=None)
def test_amount_mapping_is_exact_or_refused(amount_off: int, currency: str) -> None:
    """value / 10**digits == amount_off / 100 exactly, else a refusal: never a rounded amount."""
    discount = {"type": "AMOUNT", "amount_off": amount_off}
    digits = minor_digits(currency)
    try:
        kind, value, unit = mapped(discount, currency)
    except MappingError as exc:
        assert digits < 2 and amount_off % 10 ** (2 - digits) != 0 or "value" in str(exc)
        return
    assert (kind, unit) == (DiscountType.AMOUNT, currency)
    assert value * 100 == amount_off * 10**digits


def test_unit_is_a_gift_of_the_named_product() -> None:
    unit = {
        "type": "UNIT",
        "unit_off": 2,
        "unit_type": "prod_1",
        "effect": "ADD_MISSING_ITEMS",
        "product": {"id": "prod_1", "name": "Tote bag"},
    }
    assert mapped(unit) == (DiscountType.GIFT, 2, "Tote bag")
    by_sku = {"type": "UNIT", "unit_off": 1, "unit_type": "sku_1", "sku": {"id": "sku_1", "sku": "Mug, green"}}
    assert mapped(by_sku) == (DiscountType.GIFT, 1, "Mug, green")
    one_of_many = {
        "type": "UNIT",
        "effect": "ADD_MANY_ITEMS",
        "units": [{"unit_off": 3, "unit_type": "prod_2", "effect": "ADD_NEW_ITEMS", "product": {"name": "Sock"}}],
    }
    assert mapped(one_of_many) == (DiscountType.GIFT, 3, "Sock")


def test_gift_card_is_its_remaining_balance() -> None:
    card = voucher(None, type="GIFT_VOUCHER", gift={"amount": 10000, "balance": 2500, "effect": "APPLY_TO_ORDER"})
    result = rezip_voucher(card, currency="EUR", now=NOW)
    assert (result.type, result.value, result.unit) == (DiscountType.AMOUNT, 2500, "EUR")
    template = campaign({"type": "GIFT_VOUCHER", "gift": {"amount": 10000, "balance": 0}})
    assert campaign_problem(template, "EUR") is None  # a campaign's cards start at their amount


def test_fields_beside_the_discount() -> None:
    doc = {"type": "PERCENT", "percent_off": 10}
    expires = "2027-03-15T22:59:59.000Z"
    result = rezip_voucher(
        voucher(doc, expiration_date=expires, additional_info="Online only"),
        currency="DKK",
        link="https://shop.example/redeem?code=RZ-ABC123",
        now=NOW,
    )
    assert result.code == "RZ-ABC123" and result.link == "https://shop.example/redeem?code=RZ-ABC123"
    assert result.expires_at == datetime(2027, 3, 15, 22, 59, 59, tzinfo=UTC)
    assert result.conditions == "Online only"  # additional_info when nothing is configured
    configured = rezip_voucher(voucher(doc, additional_info="Online only"), currency="DKK", conditions="Min. 200 DKK")
    assert configured.conditions == "Min. 200 DKK" and configured.expires_at is None
    assert rezip_voucher(voucher(doc), currency="DKK").conditions == ""


@pytest.mark.parametrize(
    "discount, fields, reason",
    [
        ({"type": "PERCENT", "percent_off": 12.5}, {}, "12.5 % is not a whole percentage"),
        ({"type": "PERCENT", "percent_off": 0}, {}, "between 1 and 100"),
        ({"type": "PERCENT", "percent_off": 150}, {}, "between 1 and 100"),
        ({"type": "PERCENT", "percent_off": 10, "amount_limit": 5000}, {}, "amount_limit"),
        ({"type": "PERCENT", "percent_off": 10, "percent_off_formula": "IF(1;2;3)"}, {}, "percent_off_formula"),
        ({"type": "AMOUNT", "amount_off": 100, "amount_off_formula": "CUSTOMER_METADATA(x)"}, {}, "amount_off_formula"),
        ({"type": "AMOUNT", "amount_off": 100, "is_dynamic": True}, {}, "is_dynamic"),
        (
            {"type": "AMOUNT", "amount_off": 100, "effect": "APPLY_TO_ITEMS_BY_QUANTITY"},
            {},
            "APPLY_TO_ITEMS_BY_QUANTITY",
        ),
        ({"type": "AMOUNT", "amount_off": 100, "effect": "APPLY_TO_ITEMS"}, {}, "APPLY_TO_ITEMS"),
        ({"type": "AMOUNT", "amount_off": 1050.5}, {}, "not a whole number of hundredths"),
        ({"type": "FIXED", "fixed_amount": 1000}, {}, "FIXED"),
        ({"type": "SHIPPING"}, {}, "SHIPPING"),
        ({"type": "UNIT", "unit_off": 1, "unit_type": "prod_1"}, {}, "no name"),
        (
            {"type": "UNIT", "unit_off": 1.5, "unit_type": "prod_1", "product": {"name": "Bag"}},
            {},
            "whole number of items",
        ),
        (
            {
                "type": "UNIT",
                "effect": "ADD_MANY_ITEMS",
                "units": [
                    {"unit_off": 1, "unit_type": "p1", "product": {"name": "A"}},
                    {"unit_off": 1, "unit_type": "p2", "product": {"name": "B"}},
                ],
            },
            {},
            "several products",
        ),
        ({"type": "PERCENT", "percent_off": 10}, {"validity_day_of_week": [1, 2]}, "validity_day_of_week"),
        (
            {"type": "PERCENT", "percent_off": 10},
            {"validity_timeframe": {"interval": "P2D", "duration": "PT1H"}},
            "validity_timeframe",
        ),
        ({"type": "PERCENT", "percent_off": 10}, {"active": False}, "disabled"),
        ({"type": "PERCENT", "percent_off": 10}, {"start_date": "2027-01-01T00:00:00Z"}, "not valid yet"),
        ({"type": "PERCENT", "percent_off": 10}, {"expiration_date": "2026-11-30T00:00:00Z"}, "expired"),
        ({"type": "PERCENT", "percent_off": 10}, {"code": "WITH SPACE"}, "code"),
        (None, {}, "without a discount"),
        (None, {"type": "LOYALTY_CARD", "loyalty_card": {"points": 100}}, "loyalty card"),
    ],
)
def test_what_rezip_cannot_show_is_refused(discount: Any, fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(MappingError, match=reason.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        mapped(discount, **fields)


def test_amounts_finer_than_the_currency_are_refused() -> None:
    with pytest.raises(MappingError, match="finer than JPY's smallest unit"):
        mapped({"type": "AMOUNT", "amount_off": 150}, "JPY")
    with pytest.raises(MappingError, match="is not an ISO 4217 currency in use"):
        mapped({"type": "AMOUNT", "amount_off": 100}, "XAU")


PERCENT_TEMPLATE = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "PERCENT", "percent_off": 20}}


@pytest.mark.parametrize(
    "config, problem",
    [
        ({"pattern": "RZ20-####-####", "charset": "ABCDEF0123"}, None),
        ({"length": 8, "prefix": "RZ-"}, None),
        ({"pattern": "########", "prefix": "$20OFFORDER-"}, "code_config.prefix"),  # the official example's prefix
        ({"pattern": "##?##"}, "code_config.pattern"),
        ({"pattern": "####", "charset": "ABC def"}, "code_config.charset"),
        ({"pattern": "####", "charset": "-_AB"}, "start with a letter or digit"),
        ({"pattern": "-####"}, "start with a letter or digit"),
        ({"pattern": "#" * 60, "prefix": "LONG-"}, "longer than the 64"),
        ({"pattern": "ÅÆØ-####"}, "code_config.pattern"),
    ],
)
def test_campaign_code_patterns(config: dict[str, Any], problem: str | None) -> None:
    result = campaign_problem(campaign({**PERCENT_TEMPLATE, "code_config": config}), "DKK")
    assert result == problem if problem is None else problem in (result or "")


@pytest.mark.parametrize(
    "template, fields, problem",
    [
        ({"type": "DISCOUNT_VOUCHER", "discount": {"type": "FIXED", "fixed_amount": 1000}}, {}, "FIXED"),
        (
            {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off_formula": "X", "amount_off": 0}},
            {},
            "formula",
        ),
        ({"type": "DISCOUNT_VOUCHER", "discount": {"type": "PERCENT", "percent_off": 7.5}}, {}, "whole percentage"),
        ({"type": "LOYALTY_CARD"}, {}, "loyalty card"),
        (PERCENT_TEMPLATE, {"validity_hours": {"daily": [{"start_time": "09:00"}]}}, "validity_hours"),
        (None, {}, "no voucher template"),
        (PERCENT_TEMPLATE, {"active": False}, "not active"),
    ],
)
def test_campaigns_rezip_cannot_show_are_refused_at_start(template: Any, fields: dict[str, Any], problem: str) -> None:
    assert problem in (campaign_problem(campaign(template, **fields), "DKK") or "")


def test_campaign_problem_checks_the_currency_too() -> None:
    amount = {"type": "DISCOUNT_VOUCHER", "discount": {"type": "AMOUNT", "amount_off": 150}}
    assert campaign_problem(campaign(amount), "DKK") is None
    assert "finer than JPY" in (campaign_problem(campaign(amount), "JPY") or "")
    assert "ISO 4217" in (campaign_problem(campaign(amount), "Kroner") or "")


def test_the_official_examples_parse() -> None:
    """The spec's own campaign example is read; its '$' prefix is refused as a RE-ZIP code."""
    example = {
        "id": "camp_JlsseNSDO7l4neFtev6p6945",
        "name": "$20 OFF Entire Order",
        "campaign_type": "DISCOUNT_COUPONS",
        "type": "AUTO_UPDATE",
        "voucher": {
            "type": "DISCOUNT_VOUCHER",
            "discount": {"type": "AMOUNT", "amount_off": 2000, "effect": "APPLY_TO_ORDER"},
            "redemption": {"quantity": None},
            "code_config": {
                "length": 8,
                "charset": "0123456789abcdef",
                "pattern": "########",
                "prefix": "$20OFFORDER-",
            },
            "is_referral_code": False,
        },
        "active": True,
    }
    parsed = parse_campaign_doc(example)
    assert parsed.voucher.code_config.prefix == "$20OFFORDER-" and parsed.voucher.redemption_quantity is None
    assert "code_config.prefix" in (campaign_problem(parsed, "USD") or "")


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"type": "DISCOUNT_VOUCHER"},
        {"code": ""},
        {"code": "X", "discount": {"percent_off": 5}},
        {"code": "X", "discount": {"type": "PERCENT", "percent_off": float("nan")}},
        {"code": "X", "start_date": "2027-13-01"},
        {"code": "X", "redemption": {"redeemed_quantity": 1.5}},
        {"code": "X", "campaign": 7},
        {"code": "X", "discount": {"type": "UNIT", "units": {"a": 1}}},
    ],
)
def test_unreadable_voucher_documents(doc: Any) -> None:
    with pytest.raises(AnswerError):
        parse_voucher_doc(doc)


def test_error_objects() -> None:
    error = parse_error(
        {
            "code": 400,
            "key": "quantity_exceeded",
            "message": "quantity exceeded\x1b[2J",
            "details": "Voucher RZ-1 used",
            "request_id": "v-0bc40bf81555651191",
        },
        400,
        "Bad Request",
    )
    assert error.key == "quantity_exceeded" and error.message == "quantity exceeded[2J"
    assert error.log_safe() == "quantity_exceeded, request v-0bc40bf81555651191" and "RZ-1" not in error.log_safe()
    hostile = parse_error({"key": "Robert'); DROP", "message": 5, "request_id": "x y"}, 400, "Bad Request")
    assert hostile.key is None and hostile.message == "Bad Request" and hostile.log_safe() == "(no key)"
    assert parse_error("<html>", 502, "Bad Gateway").message == "Bad Gateway"


def test_expiry_just_ahead_and_far_ahead() -> None:
    soon = (NOW + timedelta(minutes=1)).isoformat()
    assert rezip_voucher(voucher({"type": "PERCENT", "percent_off": 5}, expiration_date=soon), currency="DKK", now=NOW)
    with pytest.raises(MappingError, match="years ahead"):
        mapped({"type": "PERCENT", "percent_off": 5}, expiration_date="2199-01-01T00:00:00Z")
