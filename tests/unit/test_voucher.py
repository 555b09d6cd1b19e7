import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.core.voucher import DiscountType, Shop, VoucherError, parse_shop, parse_voucher

BASE = {
    "code": "SAVE50-A1B2C3",
    "link": "https://shop.example.com/redeem?code=SAVE50-A1B2C3",
    "type": "amount",
    "value": 5000,
    "unit": "DKK",
    "conditions": "Min. purchase 200 DKK",
    "expires_at": "2027-01-01T00:00:00.000Z",
}


def test_seed_voucher_parses() -> None:
    voucher = parse_voucher(BASE)
    assert voucher.code == "SAVE50-A1B2C3"
    assert voucher.type is DiscountType.AMOUNT
    assert voucher.expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert voucher.qr_payload == BASE["link"]
    assert voucher.to_json() == {**BASE, "expires_at": "2027-01-01T00:00:00.000Z"}


def test_qr_is_the_code_without_a_link_and_expiry_may_be_null() -> None:
    voucher = parse_voucher({**BASE, "link": None, "expires_at": None, "type": "gift", "value": 1, "unit": "Tote bag"})
    assert voucher.qr_payload == "SAVE50-A1B2C3"
    assert voucher.expires_at is None


def test_shop_comes_from_document_or_argument() -> None:
    given_shop = Shop(name="Given")
    assert parse_voucher(BASE, shop=given_shop).shop == given_shop
    inline = parse_voucher({**BASE, "shop": {"name": "Inline", "logo_url": None}})
    assert inline.shop == Shop(name="Inline")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"code": ""}, "code"),
        ({"code": None}, "code"),
        ({"code": "has space"}, "code"),
        ({"code": "x" * 65}, "code"),
        ({"code": "A\x1bB"}, "code"),
        ({"type": "discount"}, "type"),
        ({"value": "5000"}, "value"),
        ({"value": 50.5}, "value"),
        ({"value": True}, "value"),
        ({"value": 0}, "value"),
        ({"value": -1}, "value"),
        ({"unit": "dkk"}, "unit"),
        ({"unit": "%"}, "unit"),
        ({"type": "percentage", "unit": "DKK", "value": 10}, "unit"),
        ({"type": "percentage", "unit": "%", "value": 101}, "value"),
        ({"type": "gift", "unit": " ", "value": 1}, "unit"),
        ({"conditions": 12}, "conditions"),
        ({"expires_at": "next year"}, "expires_at"),
        ({"expires_at": 1700000000}, "expires_at"),
        ({"link": 5}, "link"),
        ({"unit": "XYZ"}, "unit"),
        ({"unit": "XAU"}, "unit"),
        ({"type": "gift", "unit": "bag" * 50, "value": 1}, "unit"),
        ({"expires_at": "9999-12-31T23:59:59-01:00"}, "expires_at"),
        ({"expires_at": "0001-01-01T00:00:00+14:00"}, "expires_at"),
        ({"expires_at": "1970-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "2027-01-01" + " " * 100}, "expires_at"),
    ],
)
def test_each_bad_field_is_named(change: dict, field: str) -> None:
    with pytest.raises(VoucherError) as error:
        parse_voucher({**BASE, **change})
    assert error.value.field == field


def test_not_an_object() -> None:
    with pytest.raises(VoucherError) as error:
        parse_voucher(["code"])
    assert error.value.field == "voucher"


@pytest.mark.parametrize(
    "link",
    ["javascript:alert(1)", "http://shop.example/r", "data:text/html,x", "https:///nohost", "https://a b", "ftp://x"],
)
def test_refused_links_are_dropped_but_the_voucher_stays(link: str) -> None:
    voucher = parse_voucher({**BASE, "link": link})
    assert voucher.link is None and voucher.warnings
    assert voucher.qr_payload == voucher.code


def test_app_schemes_are_allowed_when_configured() -> None:
    link = "myshopapp://redeem?code=SAVE50-A1B2C3"
    assert parse_voucher({**BASE, "link": link}).link is None
    assert parse_voucher({**BASE, "link": link}, link_schemes={"https", "myshopapp"}).link == link
    assert parse_voucher({**BASE, "link": link}, link_schemes=None).link == link


def test_naive_timestamps_are_utc() -> None:
    voucher = parse_voucher({**BASE, "expires_at": "2027-03-15T12:00:00"})
    assert voucher.expires_at == datetime(2027, 3, 15, 12, tzinfo=UTC)


def test_shop_fields_are_optional_and_bad_ones_are_dropped_not_the_voucher() -> None:
    assert parse_shop({}) == Shop()
    assert parse_shop("Shop") is None
    bad = {"name": 3, "description": ["x"], "logo_url": "https://[::1", "website": "http://shop.example"}
    voucher = parse_voucher({**BASE, "shop": bad})
    assert voucher.shop == Shop() and len(voucher.warnings) == 4
    assert parse_voucher({**BASE, "shop": "Shop"}, shop=Shop(name="Given")).shop == Shop(name="Given")


@pytest.mark.parametrize(
    "url, kept",
    [
        ("https://cdn.example/logo.png", True),
        ("http://127.0.0.1:8000/shops/1/logo", True),
        ("http://cdn.example/logo.png", False),
        ("https://[::1", False),
        ("https://host:99999/x", False),
        ("https:///nohost", False),
        ("https://exa mple", False),
        ("javascript:alert(1)", False),
        ("https://bücher.example/logo", False),
    ],
)
def test_shop_urls_must_parse_and_be_https(url: str, kept: bool) -> None:
    assert (parse_shop({"logo_url": url}).logo_url == url) is kept  # type: ignore[union-attr]


def test_link_must_fit_the_qr_code_and_parse() -> None:
    long_link = "https://shop.example/r?c=" + "😀" * 1000
    for link in (long_link, "https://shop.example/" + "a" * 400, "https://[::1/redeem", "https://h:x/", "myapp:"):
        voucher = parse_voucher({**BASE, "link": link}, link_schemes={"https", "myapp"})
        assert voucher.link is None and voucher.warnings, link
    fits = "https://shop.example/" + "a" * 300
    assert parse_voucher({**BASE, "link": fits}).link == fits


def test_with_the_time_known_expired_and_far_expiries_are_refused() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_voucher(BASE, now=now).expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    for expiry in ("2026-11-30T23:59:59Z", "2026-12-01T00:00:00Z", "2040-01-01T00:00:00Z"):
        with pytest.raises(VoucherError) as error:
            parse_voucher({**BASE, "expires_at": expiry}, now=now)
        assert error.value.field == "expires_at"
    assert parse_voucher({**BASE, "expires_at": None}, now=now).expires_at is None


def test_free_text_loses_what_can_only_hurt() -> None:
    doc = {
        **BASE,
        "conditions": "Min.\r\n200\tkr\x1b[2J\u202eevil\ud800 ok\x07",
        "shop": {"name": "Shop\nName\x00", "description": "a\u2066b"},
    }
    voucher = parse_voucher(doc)
    assert voucher.conditions == "Min.\n200 kr[2Jevil\ufffd ok"
    assert voucher.shop == Shop(name="Shop Name", description="ab")
    voucher.conditions.encode("utf-8")  # nothing an encoder cannot write


_VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=30),
    st.booleans(),
    st.floats(),
    st.sampled_from(["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+14:00", "DKK", "%", "https://[x"]),
)


@given(
    st.dictionaries(
        st.sampled_from(list(BASE) + ["shop"]),
        st.one_of(_VALUES, st.dictionaries(st.sampled_from(["name", "logo_url", "website"]), _VALUES)),
    )
)
def test_anything_either_parses_or_names_a_field(doc: dict) -> None:
    try:
        voucher = parse_voucher(doc, now=datetime(2026, 12, 1, tzinfo=UTC))
    except VoucherError as error:
        assert error.field
    else:
        assert voucher.code and voucher.value > 0
        json.dumps(voucher.to_json(), ensure_ascii=False).encode("utf-8")


def test_plain_http_links_only_to_this_machine_and_only_when_the_allow_list_says_so() -> None:
    from kiosk.core.voucher import LOOPBACK_HTTP

    local = "http://127.0.0.1:8090/redeem?code=SAVE50"
    assert parse_voucher({**BASE, "link": local}).link is None
    assert parse_voucher({**BASE, "link": local}, link_schemes={"https", LOOPBACK_HTTP}).link == local
    for link in ("http://shop.example/redeem", "http://10.0.0.1/redeem", "http://[::1"):
        assert parse_voucher({**BASE, "link": link}, link_schemes={"https", LOOPBACK_HTTP}).link is None


@pytest.mark.parametrize("char", [" ", "\x00", "\t", "\x1f", "\x7f", "\x85", "\x9f", "\ud800", "\udfff"])
def test_a_link_with_a_space_or_control_character_is_dropped_and_the_code_kept(char: str) -> None:
    voucher = parse_voucher({**BASE, "link": f"https://shop.example/r?c=A{char}B"})
    assert voucher.link is None and voucher.code == BASE["code"]
    assert voucher.warnings == ("link dropped: contains spaces or control characters",)


@pytest.mark.parametrize("char", ["!", "~", "\xa0", "é", "\u2028", "\U0001f600"])
def test_a_link_with_other_characters_is_kept(char: str) -> None:
    link = f"https://shop.example/r?c=A{char}B"
    assert parse_voucher({**BASE, "link": link}).link == link
