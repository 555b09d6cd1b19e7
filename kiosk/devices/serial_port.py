"""Keeping a serial device open: the loop every pyserial reader of the kiosk runs in its thread.

Open the port, hand it to a session, and when the device disappears (unplugged, re-enumerated) or
the session gives up, try again every ``reopen_interval_s`` until stopped. A loss is logged once,
not on every retry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import serial

__all__ = ["run_sessions"]

log = logging.getLogger(__name__)


def run_sessions(
    device: str,
    baud: int,
    *,
    label: str,
    stop: threading.Event,
    reopen_interval_s: float,
    set_state: Callable[[str], None],
    session: Callable[[serial.Serial], None],
    opened_state: str = "open",
    read_timeout_s: float = 0.02,
) -> None:
    """Run ``session(port)`` on ``device`` over and over until ``stop`` is set. ``set_state`` hears
    ``opened_state`` when the port opens and "missing" while it cannot be opened."""
    told = False
    while not stop.is_set():
        try:
            port = serial.Serial(device, baud, timeout=read_timeout_s)
        except (serial.SerialException, OSError) as exc:
            if not told:
                log.warning("%s %s not available (%s); retrying", label, device, exc)
                told = True
            set_state("missing")
            stop.wait(reopen_interval_s)
            continue
        told = False
        set_state(opened_state)
        log.info("%s %s open", label, device)
        try:
            session(port)
        except (serial.SerialException, OSError) as exc:
            log.warning("%s %s lost (%s); reopening", label, device, exc)
            told = True
        finally:
            port.close()
        if not stop.is_set():
            set_state("missing")
            stop.wait(reopen_interval_s)
