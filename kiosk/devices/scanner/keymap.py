"""Keyboard-wedge scanners: Linux key codes to characters, with our own layout tables.

A USB HID scanner "types" its code as key presses. What those presses mean depends on the keyboard
layout the scanner was set to, never on the kiosk's X or Wayland keymap, so the layout is ours to
choose per device (US by default, as scanners ship). Shift, Caps Lock and AltGr are tracked;
Enter and keypad Enter become CR, Tab a tab. Pure: events in, text out. Key codes are the kernel's
(``linux/input-event-codes.h``), a stable ABI.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["KeyDecoder", "LAYOUTS"]

_SHIFT = {42, 54}
_ALTGR = {100}
_CAPS = 58
_ENTER = {28, 96}
_TAB = 15
_LETTER_ROWS = {16: "qwertyuiop", 30: "asdfghjkl", 44: "zxcvbnm"}
_KEYPAD = {
    71: "7",
    72: "8",
    73: "9",
    74: "-",
    75: "4",
    76: "5",
    77: "6",
    78: "+",
    79: "1",
    80: "2",
    81: "3",
    82: "0",
    83: ".",
    55: "*",
    98: "/",
}


def _letters() -> dict[int, tuple[str, str]]:
    table = {}
    for first, row in _LETTER_ROWS.items():
        for offset, letter in enumerate(row):
            table[first + offset] = (letter, letter.upper())
    return table


def _layout(
    digits_shifted: str, extra: dict[int, tuple[str, str]], altgr: dict[int, str], swap_yz: bool = False
) -> tuple[dict[int, tuple[str, str]], dict[int, str]]:
    table = _letters()
    if swap_yz:
        table[21], table[44] = ("z", "Z"), ("y", "Y")
    for offset, (plain, shifted) in enumerate(zip("1234567890", digits_shifted)):
        table[2 + offset] = (plain, shifted)
    table[57] = (" ", " ")
    table.update(extra)
    return table, altgr


#: Layout name → (key code → (plain, shifted), key code → AltGr character).
LAYOUTS: dict[str, tuple[dict[int, tuple[str, str]], dict[int, str]]] = {
    "us": _layout(
        "!@#$%^&*()",
        {
            12: ("-", "_"),
            13: ("=", "+"),
            26: ("[", "{"),
            27: ("]", "}"),
            39: (";", ":"),
            40: ("'", '"'),
            41: ("`", "~"),
            43: ("\\", "|"),
            51: (",", "<"),
            52: (".", ">"),
            53: ("/", "?"),
        },
        {},
    ),
    "de": _layout(
        '!"§$%&/()=',
        {
            12: ("ß", "?"),
            13: ("´", "`"),
            26: ("ü", "Ü"),
            27: ("+", "*"),
            39: ("ö", "Ö"),
            40: ("ä", "Ä"),
            41: ("^", "°"),
            43: ("#", "'"),
            51: (",", ";"),
            52: (".", ":"),
            53: ("-", "_"),
            86: ("<", ">"),
        },
        {16: "@", 8: "{", 9: "[", 10: "]", 11: "}", 12: "\\", 27: "~", 86: "|", 18: "€"},
        swap_yz=True,
    ),
    "da": _layout(
        '!"#¤%&/()=',
        {
            12: ("+", "?"),
            13: ("´", "`"),
            26: ("å", "Å"),
            27: ("¨", "^"),
            39: ("æ", "Æ"),
            40: ("ø", "Ø"),
            41: ("½", "§"),
            43: ("'", "*"),
            51: (",", ";"),
            52: (".", ":"),
            53: ("-", "_"),
            86: ("<", ">"),
        },
        {3: "@", 4: "£", 5: "$", 18: "€", 8: "{", 9: "[", 10: "]", 11: "}", 13: "|", 86: "\\", 27: "~"},
    ),
}


@dataclass
class KeyDecoder:
    layout: str = "us"
    _shift: set[int] = field(default_factory=set)
    _altgr: bool = False
    _caps: bool = False

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"keymap must be one of {', '.join(LAYOUTS)}")
        self._table, self._altgr_table = LAYOUTS[self.layout]

    def feed(self, code: int, value: int) -> str:
        """One key event (value 1 press, 2 auto-repeat, 0 release); returns what it typed."""
        if code in _SHIFT:
            if value:
                self._shift.add(code)
            else:
                self._shift.discard(code)
            return ""
        if code in _ALTGR:
            self._altgr = value != 0
            return ""
        if value == 0:
            return ""
        if code == _CAPS:
            if value == 1:
                self._caps = not self._caps
            return ""
        if code in _ENTER:
            return "\r"
        if code == _TAB:
            return "\t"
        if code in _KEYPAD:
            return _KEYPAD[code]
        if self._altgr:
            return self._altgr_table.get(code, "")
        plain, shifted = self._table.get(code, ("", ""))
        upper = bool(self._shift) != (self._caps and plain.isalpha())
        return shifted if upper else plain
