"""The terminal helper: whatever outside text holds, nothing in it reaches a terminal as a command."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.presentation.terminal import json_text, one_line, visible

#: Every character a terminal may obey: C0 (the newline aside), DEL and C1.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def test_escapes_are_spelled_out() -> None:
    assert visible("\x1b]0;pwned\x07\x1b[2J\nok\x9b31m\x7f") == "\\x1b]0;pwned\\x07\\x1b[2J\nok\\x9b31m\\x7f"
    assert one_line("a\nb\r\tc") == "a\\x0ab\\x0d\\x09c"
    assert json_text({"t": "\x1b\x9bÆ"}) == '{"t": "\\u001b\\u009bÆ"}'


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"])))
def test_visible_text_holds_no_control_and_json_round_trips(text: str) -> None:
    assert CONTROL.search(visible(text)) is None and CONTROL.search(one_line(text)) is None
    assert "\n" not in one_line(text) and visible(text).count("\n") == text.count("\n")
    if CONTROL.search(text) is None:
        assert visible(text) == text
    assert CONTROL.search(json_text({"t": text})) is None and json.loads(json_text({"t": text})) == {"t": text}
