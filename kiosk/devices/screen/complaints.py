"""Counted warnings for the page server: a flood of bad requests is one line per kind per window,
never a log that fills the disk.

The lead's general log filter (``kiosk/log_dedup.py``) may take this job over once merged; until then
the page server counts here, in one place.
"""

from __future__ import annotations

import asyncio
import logging

__all__ = ["Complaints", "WINDOW_S"]

#: Repeats of one kind within this many seconds are counted, and reported at the window's end.
WINDOW_S = 60.0


class Complaints:
    """The first complaint of a kind is logged at once; repeats within ``window_s`` are counted and
    logged as one line when the window closes (a window with repeats opens the next one, so a steady
    flood gives one line per window). ``kind`` must be fixed text, never the client's."""

    def __init__(self, logger: logging.Logger, *, window_s: float = WINDOW_S) -> None:
        self.logger = logger
        self.window_s = window_s
        self._repeats: dict[str, int] = {}  # kinds with an open window, and their repeats so far
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.counts: dict[str, int] = {}  # every complaint since start, by kind (shown in /status)

    def note(self, kind: str) -> None:
        """One more of ``kind``; called on the event loop."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind in self._repeats:
            self._repeats[kind] += 1
            return
        self.logger.warning("%s", kind)
        self._open(kind)

    def _open(self, kind: str) -> None:
        self._repeats[kind] = 0
        self._timers[kind] = asyncio.get_running_loop().call_later(self.window_s, self._close, kind)

    def _close(self, kind: str) -> None:
        repeats = self._repeats.pop(kind, 0)
        self._timers.pop(kind, None)
        if repeats:
            self.logger.warning("%s (%d more in the last %.0f s)", kind, repeats, self.window_s)
            self._open(kind)

    def flush(self) -> None:
        """Report the repeats still being counted (on shutdown)."""
        for kind in list(self._timers):
            self._timers.pop(kind).cancel()
            repeats = self._repeats.pop(kind, 0)
            if repeats:
                self.logger.warning("%s (%d more)", kind, repeats)
