"""Recorded evdev key sequences, as a keyboard-wedge scanner sends them."""

from __future__ import annotations

import pytest

from kiosk.devices.scanner.hid_source import HidSelector, KeyEvent, lines_from_key_events
from kiosk.devices.scanner.keymap import KeyDecoder

SHIFT, CAPS, ENTER, ALTGR = 42, 58, 28, 100
US_KEYS = {
    **{c: k for c, k in zip("1234567890", range(2, 12))},
    **{c: 16 + i for i, c in enumerate("qwertyuiop")},
    **{c: 30 + i for i, c in enumerate("asdfghjkl")},
    **{c: 44 + i for i, c in enumerate("zxcvbnm")},
    "-": 12,
    "=": 13,
    ".": 52,
    "/": 53,
    ";": 39,
}
US_SHIFTED = {":": ";", "?": "/", "_": "-", "+": "="}


def typed(text: str, *, release: bool = True) -> list[KeyEvent]:
    """Key events a US-layout scanner sends for ``text``, Enter at the end."""
    events = []
    for char in text:
        base = US_SHIFTED.get(char, char.lower())
        shift = char.isupper() or char in US_SHIFTED
        if shift:
            events.append(KeyEvent(1, SHIFT, 1))
        events += [KeyEvent(1, US_KEYS[base], 1), KeyEvent(4, 4, 458756), KeyEvent(0, 0, 0)]
        if release:
            events.append(KeyEvent(1, US_KEYS[base], 0))
        if shift:
            events.append(KeyEvent(1, SHIFT, 0))
    return events + [KeyEvent(1, ENTER, 1), KeyEvent(1, ENTER, 0)]


def test_a_rezip_code_and_a_url_in_us_layout() -> None:
    code = "10HS01JAYSCS07SVDQANFS61TF0XJN"
    url = "https://re-zip.example/p/10HS0042?c=1"
    assert lines_from_key_events(typed(code) + typed(url)) == [code, url]


def test_caps_lock_inverts_letters_only() -> None:
    decoder = KeyDecoder("us")
    out = decoder.feed(CAPS, 1) + decoder.feed(CAPS, 0)
    out += decoder.feed(30, 1) + decoder.feed(2, 1) + decoder.feed(SHIFT, 1) + decoder.feed(30, 1)
    assert out == "A1a"


def test_german_layout_swaps_y_and_z_and_moves_symbols() -> None:
    decoder = KeyDecoder("de")
    keys = [(21, 0), (44, 0), (8, 1), (52, 1), (11, 1), (12, 1)]  # z, y, shift+7, shift+., shift+0, shift+ß
    out = ""
    for code, shift in keys:
        out += decoder.feed(SHIFT, 1) if shift else ""
        out += decoder.feed(code, 1)
        out += decoder.feed(SHIFT, 0) if shift else ""
    assert out == "zy/:=?"
    assert decoder.feed(ALTGR, 1) + decoder.feed(16, 1) == "@"


def test_danish_layout() -> None:
    decoder = KeyDecoder("da")
    assert decoder.feed(26, 1) + decoder.feed(39, 1) + decoder.feed(40, 1) == "åæø"


def test_key_repeat_storm_is_bounded_and_the_next_code_still_reads() -> None:
    storm = [KeyEvent(1, 30, 2)] * 20000  # a stuck key auto-repeating, no Enter
    lines = lines_from_key_events(storm + [KeyEvent(1, ENTER, 1)] + typed("10HS0042"))
    assert lines == ["10HS0042"]  # the 20000-character line was dropped whole


def test_unknown_layout_and_selectors() -> None:
    with pytest.raises(ValueError):
        KeyDecoder("xx")
    assert HidSelector.parse("usb:0C2E:0B61").matches("/dev/input/event3", "scanner", 0x0C2E, 0x0B61)
    assert HidSelector.parse("name:Honeywell").matches("/dev/input/event3", "Honeywell 1900", 1, 2)
    assert not HidSelector.parse("usb:0c2e:0b61").matches("/dev/input/event3", "kbd", 0x046D, 0xC31C)
    with pytest.raises(ValueError):
        HidSelector.parse("usb:zz")
