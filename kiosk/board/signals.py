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
    buzzer: str | None  # a tune to play once, or None


def signals_for(previous: State | None, screen: Screen) -> Signals:
    """The lights for ``screen``, and a sound only when the state changes: a beep when a scan is
    taken, a chime with a voucher, a low tone with a notice; a redraw of the same state is silent."""
    lights = _LIGHTS[screen.state]
    if screen.state is previous:
        return Signals(lights, None)
    if screen.state is State.SHOWING_VOUCHER:
        return Signals(lights, "voucher")
    if screen.state is State.NOTICE:
        return Signals(lights, "reject")
    if screen.state is State.AWAITING_DEPOSIT or (
        screen.state is State.ISSUING and previous is not State.AWAITING_DEPOSIT
    ):
        return Signals(lights, "accept")
    return Signals(lights, None)
