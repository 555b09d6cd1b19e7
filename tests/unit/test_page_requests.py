"""The page server's request rules: Host, Origin, Content-Type, bodies, frame numbers, and the
connection cap derived from the descriptor limit."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.devices.screen.connections import (
    DESCRIPTOR_RESERVE,
    MAX_CONNECTIONS,
    MIN_CONNECTIONS,
    connection_cap,
)
from kiosk.devices.screen.page_requests import (
    MAX_BODY_BYTES,
    Refused,
    check_body_size,
    check_host,
    check_json_type,
    check_origin,
    frame_number,
    locale_choice,
    page_hosts,
    read_json_object,
)


def refused(call, *args) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(Refused) as caught:
        call(*args)
    assert "\n" not in caught.value.reason
    return caught.value.status


def test_the_page_answers_its_listen_address_and_the_loopback_names_on_its_port() -> None:
    allowed = page_hosts(8080, ("192.168.1.20", ""))
    for host in ("192.168.1.20:8080", "localhost:8080", "LOCALHOST:8080", "127.0.0.1:8080", "[::1]:8080"):
        assert check_host([host], allowed) == host.lower()
    for host in (
        "evil.example:8080",
        "localhost",
        "127.0.0.1:8081",
        "localhost.:8080",
        "127.0.0.1:8080.evil",
        "[::1]",
        "::1:8080",
        "192.168.1.20",
        "0.0.0.0:8080",
        "",
    ):
        assert refused(check_host, [host], allowed) == 421
    assert refused(check_host, [], allowed) == 421  # HTTP/1.0 without a Host
    assert refused(check_host, ["127.0.0.1:8080", "127.0.0.1:8080"], allowed) == 421


def test_ipv6_listen_addresses_are_bracketed_and_port_80_may_be_left_out() -> None:
    assert "[fe80::1]:8080" in page_hosts(8080, ("fe80::1",))
    assert "[fe80::1]:8080" in page_hosts(8080, ("[FE80::1]",))
    assert {"127.0.0.1", "127.0.0.1:80", "[::1]", "localhost"} <= page_hosts(80, ())
    assert "127.0.0.1" not in page_hosts(8080, ())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_no_other_host_is_answered(host: str) -> None:
    allowed = page_hosts(8080, ("127.0.0.1",))
    if host.lower() in allowed:
        assert check_host([host], allowed) == host.lower()
    else:
        assert refused(check_host, [host], allowed) == 421


def test_only_the_pages_own_origin_or_none_may_call() -> None:
    check_origin([], "127.0.0.1:8080")
    check_origin(["http://127.0.0.1:8080"], "127.0.0.1:8080")
    check_origin(["HTTP://LOCALHOST:8080"], "localhost:8080")
    for origin in (
        ["null"],
        ["http://evil.example"],
        ["https://127.0.0.1:8080"],
        ["http://127.0.0.1:8081"],
        ["http://localhost:8080"],
        ["http://127.0.0.1:8080", "http://127.0.0.1:8080"],
    ):
        assert refused(check_origin, origin, "127.0.0.1:8080") == 403


def test_only_json_in_utf8_is_read() -> None:
    for value in ("application/json", "Application/JSON; charset=UTF-8", 'application/json;charset="utf-8"'):
        check_json_type([value])
    for values in (
        [],
        ["text/plain"],
        ["application/x-www-form-urlencoded"],
        ["multipart/form-data; boundary=x"],
        ["application/json; charset=utf-16"],
        ["application/jsonx"],
        ["application/json", "text/plain"],
    ):
        assert refused(check_json_type, values) == 415


def test_bodies_are_small_strict_json_objects() -> None:
    assert read_json_object(b'{"seq": 3}') == {"seq": 3}
    check_body_size(None)
    check_body_size(MAX_BODY_BYTES)
    assert refused(check_body_size, MAX_BODY_BYTES + 1) == 413
    assert refused(read_json_object, b" " * (MAX_BODY_BYTES + 1)) == 413
    for body in (
        b"",
        b"[1]",
        b'"seq"',
        b"null",
        b"{",
        b'{"seq": NaN}',
        b'{"seq": Infinity}',
        b'{"seq": -Infinity}',
        b"\xff\xfe{}",
        b'{"seq": "\xc3"}',
        b"[" * MAX_BODY_BYTES,
        b"{'seq': 1}",
    ):
        assert refused(read_json_object, body) == 400, body


@pytest.mark.parametrize(
    "seq",
    [0, -1, 6, 10**1000, 1.0, 3.5, True, False, None, "3", [3], {"n": 3}],
    ids=lambda seq: type(seq).__name__ + str(seq)[:8],
)
def test_a_frame_number_is_a_plain_int_among_the_frames_sent(seq: object) -> None:
    assert refused(frame_number, {"seq": seq}, 5) == 400


def test_frame_numbers_from_json_text() -> None:
    assert frame_number(read_json_object(b'{"seq": 5}'), 5) == 5
    assert frame_number(read_json_object(b'{"seq": 1, "extra": [1, 2]}'), 5) == 1
    for text in (
        b'{"seq": 5.0}',
        b'{"seq": 1e0}',
        b'{"seq": true}',
        b'{"seq": 1e999}',
        b'{"seq": -0}',
        b"{}",
        b'{"seq": 1' + b"0" * 1000 + b"}",
    ):  # 10**1000
        assert refused(frame_number, read_json_object(text), 5) == 400, text


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
        max_leaves=8,
    )
)
def test_any_json_either_names_a_frame_sent_or_is_refused(value: object) -> None:
    try:
        body = json.dumps({"seq": value}).encode()
    except ValueError:
        return
    try:
        seq = frame_number(read_json_object(body), 5)
    except Refused as exc:
        assert exc.status in (400, 413)
    else:
        assert type(seq) is int and 1 <= seq <= 5 and seq == value


def test_a_locale_is_one_of_the_kiosks_languages() -> None:
    assert locale_choice({"locale": "da_DK"}, ("en_GB", "da_DK")) == "da_DK"
    for value in ("xx_XX", "", None, 1, ["da_DK"], "da_DK\x00"):
        assert refused(locale_choice, {"locale": value}, ("en_GB", "da_DK")) == 400


def test_the_connection_cap_leaves_a_reserve_of_descriptors() -> None:
    assert connection_cap(1024, 20) == MAX_CONNECTIONS
    assert connection_cap(128, 20) == 128 - 20 - DESCRIPTOR_RESERVE
    assert connection_cap(64, 20) == max(MIN_CONNECTIONS, 64 - 20 - DESCRIPTOR_RESERVE)
    assert connection_cap(32, 20) == MIN_CONNECTIONS
    assert connection_cap(None, 20) == MAX_CONNECTIONS
