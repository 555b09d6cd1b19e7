"""Serial barcode scanners (USB CDC-ACM, RS-232, and the virtual scanner's pseudo-terminal).

pyserial reads in a thread of its own; complete lines are handed to the asyncio loop. When the
device disappears the source keeps trying to reopen it, so a scanner unplugged and plugged back in
works again without a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import serial

from kiosk.devices.scanner.assembler import LineAssembler
from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.devices.scanner.source import ThreadedSource
from kiosk.devices.serial_port import run_sessions

__all__ = ["SerialScanSource"]

log = logging.getLogger(__name__)


class SerialScanSource(ThreadedSource):
    """Reads lines from a serial device and passes them on until stopped."""

    def __init__(
        self,
        device: str,
        *,
        baud: int = 9600,
        terminator: str = "any",
        scan_filter: ScanFilter | None = None,
        reopen_interval_s: float = 1.0,
    ) -> None:
        super().__init__(scan_filter)
        self.device = device
        self.baud = baud
        self.terminator = terminator
        self.reopen_interval_s = reopen_interval_s

    @property
    def name(self) -> str:
        return f"serial:{self.device}"

    def _threads(self) -> list[tuple[str, Callable[[], None]]]:
        return [(self.name, self._run)]

    def _run(self) -> None:
        run_sessions(
            self.device,
            self.baud,
            label="scanner",
            stop=self._stop,
            reopen_interval_s=self.reopen_interval_s,
            set_state=self._set_state,
            session=self._read,
        )

    def _read(self, port: serial.Serial) -> None:
        assembler = LineAssembler(self.terminator)
        while not self._stop.is_set():
            # Ask for what is already waiting (at least one byte): a larger read would wait out the
            # timeout on every code, as scanners send far fewer bytes than any fixed size.
            data = port.read(min(4096, max(1, port.in_waiting)))
            now = time.monotonic()
            lines = assembler.feed(data, now) if data else assembler.poll(now)
            for line in lines:
                self._deliver(line, now)
