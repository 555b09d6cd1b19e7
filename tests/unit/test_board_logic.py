"""The board's pure modules (scanner line assembly, slot debouncing, patterns, the link's duplicate
filter): properties checked with hypothesis. The same logic under real MicroPython is
tests/integration/test_firmware_logic.py."""

from __future__ import annotations

import re
import sys
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from kiosk.board import link
from kiosk.board.signals import signals_for
from kiosk.core.flow import NoticeKind, Screen, State
from tests.conftest import REPO

FIRMWARE = REPO / "firmware"
sys.path.insert(0, str(FIRMWARE / "board"))

import patterns  # noqa: E402
from scanline import ScanAssembler  # noqa: E402
from slot import CLEAR, SlotDebouncer  # noqa: E402


@given(
    st.lists(st.binary(min_size=1, max_size=40).filter(lambda b: not set(b) & set(b"\r\n\t")), max_size=8),
    st.lists(st.integers(1, 7), max_size=8),
)
def test_codes_come_out_whole_however_the_bytes_are_split(codes: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(code + b"\r" for code in codes)
    assembler, out, at, position = ScanAssembler(max_len=64), [], 0, 0
    for cut in cuts + [len(stream)]:
        out += assembler.feed(stream[position : position + cut], at)
        position, at = position + cut, at + 1
    out += assembler.feed(stream[position:], at)
    assert out == codes


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 30)), max_size=200))
def test_a_deposit_needs_a_settled_block_then_a_settled_clear(samples: list[tuple[int, int]]) -> None:
    debouncer, now, deposits = SlotDebouncer(settle_ms=15, stuck_ms=10**9), 0, 0
    run_start, held_blocked = None, False  # when the current run of blocked samples began
    for level, step in samples:
        deposits += debouncer.update(level, now).count(CLEAR)
        if level == 0:
            run_start = now if run_start is None else run_start
            held_blocked = held_blocked or now - run_start >= 15
        else:
            run_start = None
        now += step
    if not held_blocked:
        assert deposits == 0  # blips shorter than the settle time are never a deposit


def test_every_light_and_tune_the_kiosk_names_exists_on_the_board() -> None:
    for state in State:
        for previous in [None, *State]:
            notice = NoticeKind.INVALID_CODE if state is State.NOTICE else None
            signals = signals_for(previous, Screen(state, notice=notice))
            assert signals.lights in patterns.LIGHTS
            assert signals.buzzer is None or signals.buzzer in patterns.BUZZER


def test_a_change_of_state_sounds_its_light_patterns_tune_and_a_redraw_is_silent() -> None:
    assert signals_for(State.IDLE, Screen(State.AWAITING_DEPOSIT)).buzzer == "awaiting_deposit"
    assert signals_for(State.AWAITING_DEPOSIT, Screen(State.ISSUING)).buzzer == "issuing"
    assert signals_for(State.ISSUING, Screen(State.SHOWING_VOUCHER)).buzzer == "voucher"
    assert signals_for(State.SHOWING_VOUCHER, Screen(State.SHOWING_VOUCHER, printer="trouble")).buzzer is None
    assert signals_for(State.ISSUING, Screen(State.NOTICE, notice=NoticeKind.BACKEND_TROUBLE)).buzzer == "notice"
    assert signals_for(State.NOTICE, Screen(State.IDLE)).buzzer == "idle"
    for state in State:
        signals = signals_for(None, Screen(state))
        assert signals.buzzer == signals.lights


def _shape(tune: list[tuple[int, int]]) -> tuple[int, ...]:
    """What a listener tells tunes apart by without absolute pitch: how many notes, and whether each
    goes up (1), stays (0) or goes down (-1) from the one before."""
    notes = [freq for freq, _ in tune if freq]
    return (len(notes), *[(b > a) - (b < a) for a, b in pairwise(notes)])


def test_every_light_pattern_has_a_sound_of_its_own() -> None:
    """The board's lights stay meaningful without colour: each pattern (those the kiosk sends and the
    board's own boot and fault) has a tune, and no two tunes share their shape."""
    assert set(patterns.BUZZER) == set(patterns.LIGHTS)
    shapes = {name: _shape(tune) for name, tune in patterns.BUZZER.items()}
    assert len(set(shapes.values())) == len(shapes), shapes
    for name, tune in patterns.BUZZER.items():
        assert tune[0][0] > 0 and tune[-1][0] > 0, name  # begins and ends with a note, no dead air
        assert sum(length for _, length in tune) <= 1200, name  # over before the next state's tune


def test_heartbeats_are_not_kept_for_retransmission() -> None:
    sender = link.Sender(retry_after=0.2, max_tries=3)
    sender.send(link.HEARTBEAT, b"\x00\x00\x00\x00", 0.0, False)
    sender.send(link.SCAN, b"10HS1", 0.0)
    assert sender.pending == 1 and len(sender.due(1.0)[0]) == 1


def test_frozen_manifest_and_flash_tool_agree_on_packages_and_files() -> None:
    from kiosk.tools.firmware_files import board_files
    from kiosk.tools.flash import PACKAGES

    text = (FIRMWARE / "manifest.py").read_text("utf-8")
    assert tuple(re.findall(r'^require\("([^"]+)"\)', text, re.M)) == PACKAGES
    assert sorted(re.findall(r'^module\("([^"]+)"', text, re.M)) == sorted(board_files())
