"""The one configuration writer: any text a technician types comes back from Python's own TOML
reader exactly as typed, and a key or a type the schema does not have is refused before writing."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.config import ConfigError, render_config

# Whatever text TOML can hold: any code point but the surrogates.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)


@given(hardware_id=TEXT, drop_point=TEXT, header=TEXT)
def test_any_text_reads_back_as_written(hardware_id: str, drop_point: str, header: str) -> None:
    doc = {"kiosk": {"hardware_id": hardware_id}, "backend": {"drop_point_location_id": drop_point}}
    try:
        text = render_config(doc, header=header)
    except ConfigError as exc:
        # Refused only for what the reader refuses too: control characters or an empty id.
        assert "control characters" in str(exc) or "empty" in str(exc) or "must be" in str(exc)
        return
    assert tomllib.loads(text) == doc


def test_the_header_stays_a_comment_whatever_it_holds() -> None:
    text = render_config({"kiosk": {"hardware_id": "k1"}}, header='one\n[backend]\nurl = "http://evil"\n')
    assert tomllib.loads(text) == {"kiosk": {"hardware_id": "k1"}}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"kiosk": {"bogus": 1}}, "kiosk.bogus: unknown key"),
        ({"nonsense": {}}, "nonsense: unknown key"),
        ({"scanner": {"baud": "fast"}}, "scanner.baud: must be a whole number"),
        ({"board": {"slot_sensor": "yes"}}, "board.slot_sensor:"),
    ],
)
def test_what_the_schema_does_not_have_is_refused(doc: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        render_config(doc, header="")
