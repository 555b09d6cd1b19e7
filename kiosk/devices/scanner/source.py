"""What every reader of packaging codes offers the kiosk, and what the threaded ones share.

A source reads (a serial scanner, a camera, the I/O board's scanner module; a HID scanner reads on
the event loop itself) and hands each read to the one scan filter all sources share, which drops
repeats, and what passes to the kiosk's sink on the event loop. ``ThreadedSource`` holds the part
that is the same for every reader with threads of its own: its state for the status page, its
threads run under the supervisor (restarted after an unexpected failure, the state saying so),
stopping them, and delivering a read from a thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.supervisor import Supervisor

__all__ = ["ScanSink", "ScanSource", "ThreadedSource"]

#: Receives one line of scanned text; called on the asyncio loop.
ScanSink = Callable[[str], None]


class ScanSource(Protocol):
    """What every reader (serial, HID, camera, I/O board) offers the kiosk."""

    state: str  # "open", "missing", "closed", "restarting", "failed" (shown in the kiosk's status)

    @property
    def name(self) -> str: ...

    def start(self, loop: asyncio.AbstractEventLoop, sink: ScanSink, supervisor: Supervisor | None = None) -> None:
        """Begin reading; ``supervisor`` restarts the reader after an unexpected failure."""

    def stop(self) -> None: ...

    def status_figures(self) -> dict[str, Any] | None:
        """The reader's own figures for the status document (a camera's frame rate), or None."""


class ThreadedSource:
    """A reader whose work runs in threads: ``_threads()`` names them and their bodies; a body
    returns when ``_stop`` is set, and raises on anything it cannot handle (the supervisor logs it,
    sets the state to "restarting" and runs it again)."""

    def __init__(self, scan_filter: ScanFilter | None) -> None:
        self.scan_filter = scan_filter or ScanFilter()
        self.state = "closed"
        self._stop = threading.Event()
        self._running: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sink: ScanSink | None = None

    @property
    def name(self) -> str:
        raise NotImplementedError

    def _threads(self) -> list[tuple[str, Callable[[], None]]]:
        """(name, body) of each thread the source runs."""
        raise NotImplementedError

    def start(self, loop: asyncio.AbstractEventLoop, sink: ScanSink, supervisor: Supervisor | None = None) -> None:
        self._loop, self._sink = loop, sink
        keeper = supervisor or Supervisor()
        self._running = [
            threading.Thread(
                target=keeper.keep_thread,
                args=(name, body),
                name=name,
                daemon=True,
                kwargs={"stop": self._stop, "on_state": self._set_state},
            )
            for name, body in self._threads()
        ]
        for thread in self._running:
            thread.start()

    def status_figures(self) -> dict[str, Any] | None:
        return None

    def stop(self) -> None:
        self._stop.set()
        for thread in self._running:
            thread.join(timeout=2)
        self.state = "closed"

    def _set_state(self, state: str) -> None:
        self.state = state

    def _deliver(self, text: str, now: float | None = None) -> None:
        """A read, from the source's thread: through the shared filter, then onto the loop."""
        accepted = self.scan_filter.accept(text, time.monotonic() if now is None else now)
        if accepted is not None and self._loop is not None and self._sink is not None:
            self._loop.call_soon_threadsafe(self._sink, accepted)

    def _on_loop(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the event loop, from the source's thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(callback)
