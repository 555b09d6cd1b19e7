# Assembles the scanner module's UART bytes into codes. Pure (time is an argument) and written for
# both MicroPython and CPython: the board runs it, the kiosk's tests run it too.

TERMINATORS = b"\r\n\t"


class ScanAssembler:
    """Bytes in, codes out. A code ends at CR, LF or Tab, or after ``gap_ms`` of silence (scanner
    modules set to send no terminator). A line longer than ``max_len`` is dropped whole and counted
    in ``overlong``: half a code must never reach the kiosk."""

    def __init__(self, gap_ms=100, max_len=256):
        self.gap_ms = gap_ms
        self.max_len = max_len
        self.overlong = 0
        self._line = bytearray()
        self._too_long = False
        self._last = 0

    def feed(self, data, now_ms):
        codes = []
        for byte in data:
            if byte in TERMINATORS:
                self._finish(codes)
            elif len(self._line) < self.max_len:
                self._line.append(byte)
            else:
                self._too_long = True
        if data:
            self._last = now_ms
        return codes

    def poll(self, now_ms, ticks_diff=None):
        """A code that ended by silence; ``ticks_diff`` is MicroPython's wrap-safe difference."""
        elapsed = ticks_diff(now_ms, self._last) if ticks_diff else now_ms - self._last
        codes = []
        if (self._line or self._too_long) and elapsed >= self.gap_ms:
            self._finish(codes)
        return codes

    def _finish(self, codes):
        if self._too_long:
            self.overlong += 1
        elif self._line:
            codes.append(bytes(self._line))
        self._line = bytearray()
        self._too_long = False
