"""Outside text made safe for a terminal: control characters are shown, never obeyed.

A shop name, a voucher's conditions, a backend's message or a file name can carry terminal escapes
(ESC, CSI, OSC ... BEL) that would retitle the window, clear the screen or worse. ``visible``
replaces every C0 control but the newline, DEL and every C1 control with its ``\\xNN`` spelling,
so the text reads the same and no byte of it reaches the terminal as a command; ``one_line`` also
spells the newline, for fields of a one-line listing. ``json_text`` writes a JSON document that
holds no control character either (JSON escapes C0 itself; DEL and C1 get ``\\u00NN``), so it
parses to the same document. Pure: strings in, strings out.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["visible", "one_line", "json_text"]

_CONTROLS = (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))
_ONE_LINE = {code: f"\\x{code:02x}" for code in _CONTROLS}
_KEEP_NEWLINES = {code: spelled for code, spelled in _ONE_LINE.items() if code != 0x0A}
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in _CONTROLS if code >= 0x7F}


def visible(text: str) -> str:
    """``text`` with its control characters spelled out (newlines kept)."""
    return text.translate(_KEEP_NEWLINES)


def one_line(text: str) -> str:
    """``text`` with its control characters, newlines too, spelled out: one line on the terminal."""
    return text.translate(_ONE_LINE)


def json_text(doc: Any) -> str:
    """``doc`` as one line of JSON (non-ASCII letters kept) without a raw control character."""
    return json.dumps(doc, ensure_ascii=False).translate(_JSON_ESCAPES)
