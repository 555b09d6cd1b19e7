"""Turns the bytes a reader sends into lines of text. Pure: time comes in as an argument.

Scanners end a code with CR, LF, CRLF or Tab, or with nothing at all; in that last case a code is
complete once the reader has been quiet for ``idle_flush_s``. A line longer than ``max_bytes`` is
dropped whole (with everything up to its terminator), so noise cannot grow memory without bound.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LineAssembler", "TERMINATORS", "scan_text"]

TERMINATORS = {
    "cr": b"\r",
    "lf": b"\n",
    "crlf": b"\r\n",
    "tab": b"\t",
    "any": b"\r\n\t",
    "none": b"",
}


@dataclass
class LineAssembler:
    terminator: str = "any"
    idle_flush_s: float | None = 0.1
    max_bytes: int = 4096

    def __post_init__(self) -> None:
        if self.terminator not in TERMINATORS:
            raise ValueError(f"terminator must be one of {', '.join(TERMINATORS)}")
        self._ends = TERMINATORS[self.terminator]
        if self.terminator == "crlf":
            self._ends = b"\r\n"  # a CR ends the code; the LF after it makes an empty line, skipped
        self._buffer = bytearray()
        self._overflow = False
        self._last_byte_at: float | None = None

    def feed(self, data: bytes, now: float) -> list[str]:
        """Add bytes received at ``now``; return the lines they completed."""
        lines = self.poll(now)
        for byte in data:
            if self._ends and byte in self._ends:
                lines.extend(self._finish())
                continue
            if len(self._buffer) >= self.max_bytes:
                self._overflow = True
                self._buffer.clear()
            if not self._overflow:
                self._buffer.append(byte)
        self._last_byte_at = now if self._buffer or self._overflow else None
        return lines

    def poll(self, now: float) -> list[str]:
        """Lines completed by silence: call this periodically (every ~20 ms)."""
        if (
            self.idle_flush_s is not None
            and self._last_byte_at is not None
            and now - self._last_byte_at >= self.idle_flush_s
        ):
            self._last_byte_at = None
            return self._finish()
        return []

    def _finish(self) -> list[str]:
        data, overflow = bytes(self._buffer), self._overflow
        self._buffer.clear()
        self._overflow = False
        if overflow or not data:
            return []
        return [scan_text(data)]


def scan_text(data: bytes) -> str:
    """One scanned line as text: UTF-8, else Latin-1, because scanners set to a legacy code page
    send single bytes (the I/O board's scanner module as much as a serial one)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
