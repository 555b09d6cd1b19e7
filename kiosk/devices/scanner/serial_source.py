"""Serial barcode scanners (USB CDC-ACM, RS-232, and the virtual scanner's pseudo-terminal).

pyserial reads in a thread of its own; complete lines are handed to the asyncio loop. When the
device disappears the source keeps trying to reopen it, so a scanner unplugged and plugged back in
works again without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import serial

from kiosk.devices.scanner.assembler import LineAssembler
from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.devices.serial_port import run_sessions
from kiosk.supervisor import Supervisor

__all__ = ["SerialScanSource", "ScanSink", "ScanSource"]

log = logging.getLogger(__name__)

#: Receives one line of scanned text; called on the asyncio loop.
ScanSink = Callable[[str], None]


class ScanSource(Protocol):
    """What every reader (serial, HID, camera, I/O board) offers the kiosk."""

    state: str  # "open", "missing", "closed" (shown in the kiosk's status)

    @property
    def name(self) -> str: ...

    def start(self, loop: asyncio.AbstractEventLoop, sink: ScanSink, supervisor: Supervisor | None = None) -> None:
        """Begin reading; ``supervisor`` restarts the reader after an unexpected failure."""

    def stop(self) -> None: ...


class SerialScanSource:
    """Reads lines from a serial device and passes them to ``sink`` until stopped."""

    def __init__(
        self,
        device: str,
        *,
        baud: int = 9600,
        terminator: str = "any",
        scan_filter: ScanFilter | None = None,
        reopen_interval_s: float = 1.0,
    ) -> None:
        self.device = device
        self.scan_filter = scan_filter or ScanFilter()
        self.baud = baud
        self.terminator = terminator
        self.reopen_interval_s = reopen_interval_s
        self.state = "closed"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"serial:{self.device}"

    def start(self, loop: asyncio.AbstractEventLoop, sink: ScanSink, supervisor: Supervisor | None = None) -> None:
        def deliver(line: str) -> None:
            loop.call_soon_threadsafe(sink, line)

        keeper = supervisor or Supervisor()
        self._thread = threading.Thread(
            target=keeper.keep_thread,
            args=(self.name, lambda: self._run(deliver)),
            kwargs={"stop": self._stop, "on_state": self._set_state},
            name=self.name,
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self, deliver: Callable[[str], None]) -> None:
        run_sessions(
            self.device,
            self.baud,
            label="scanner",
            stop=self._stop,
            reopen_interval_s=self.reopen_interval_s,
            set_state=self._set_state,
            session=lambda port: self._read(port, deliver),
        )

    def _set_state(self, state: str) -> None:
        self.state = state

    def _read(self, port: serial.Serial, deliver: Callable[[str], None]) -> None:
        assembler = LineAssembler(self.terminator)
        while not self._stop.is_set():
            # Ask for what is already waiting (at least one byte): a larger read would wait out the
            # timeout on every code, as scanners send far fewer bytes than any fixed size.
            data = port.read(min(4096, max(1, port.in_waiting)))
            now = time.monotonic()
            lines = assembler.feed(data, now) if data else assembler.poll(now)
            for line in lines:
                accepted = self.scan_filter.accept(line, now)
                if accepted is not None:
                    deliver(accepted)
