"""A virtual serial barcode scanner: a pseudo-terminal that 'types' codes like a real one.

The kiosk opens the pseudo-terminal's path with pyserial exactly as it opens ``/dev/ttyACM0``, so
everything from the serial port up is the real code path.
"""

from __future__ import annotations

import os
import time
import tty

from kiosk.devices.scanner.assembler import TERMINATORS

__all__ = ["VirtualScanner"]


class VirtualScanner:
    """Owns both ends of a pseudo-terminal; ``path`` is the end the kiosk opens."""

    def __init__(self, *, terminator: str = "cr", char_delay_s: float = 0.0) -> None:
        if terminator not in TERMINATORS or terminator == "any":
            raise ValueError("terminator must be cr, lf, crlf, tab or none")
        self.terminator = TERMINATORS[terminator]
        self.char_delay_s = char_delay_s
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR→LF: bytes pass as a scanner sends them
        self.path = os.ttyname(self._slave)

    def type(self, code: str) -> None:
        """Send one code followed by the terminator, a character at a time if a delay is set."""
        data = code.encode("utf-8") + self.terminator
        if self.char_delay_s <= 0:
            os.write(self._master, data)
            return
        for index in range(len(data)):
            os.write(self._master, data[index : index + 1])
            time.sleep(self.char_delay_s)

    def send(self, data: bytes) -> None:
        """Send bytes exactly as given: a scanner that is broken, misconfigured or not a scanner."""
        for start in range(0, len(data), 1024):
            os.write(self._master, data[start : start + 1024])

    def close(self) -> None:
        """Close both ends once: a second close would close whatever file has since been given
        the same descriptor number (another test's printer file, a socket)."""
        ends, self._master, self._slave = (self._master, self._slave), -1, -1
        for fd in ends:
            if fd >= 0:
                os.close(fd)

    def __enter__(self) -> VirtualScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
