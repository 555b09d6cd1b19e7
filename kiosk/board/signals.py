"""What the I/O board's lights and buzzer say in each state of the flow. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.core.flow import Screen, State

__all__ = ["Signals", "signals_for"]

_LIGHTS = {
    State.IDLE: "idle",
    State.AWAITING_DEPOSIT: "awaiting_deposit",
    State.ISSUING: "issuing",
    State.SHOWING_VOUCHER: "voucher",
    State.NOTICE: "notice",
}


@dataclass(frozen=True)
class Signals:
    lights: str  # a pattern name the firmware knows (firmware/board/patterns.py)
    buzzer: str | None  # a tune to play once (the pattern's own, firmware/board/patterns.py), or None


def signals_for(previous: State | None, screen: Screen) -> Signals:
    """The lights for ``screen``, and with a change of state the sound of its light pattern (every
    pattern has its own, so the signals mean something without colour); a redraw of the same state
    is silent."""
    lights = _LIGHTS[screen.state]
    return Signals(lights, None if screen.state is previous else lights)
