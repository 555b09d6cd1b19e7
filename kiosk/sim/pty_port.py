"""The device end of a simulated serial port: a pseudo-terminal whose other end the kiosk (or
mpremote) opens by ``path``, exactly as it opens /dev/ttyACM0. Like a USB CDC port, bytes written
while nobody has the port open are dropped, not kept for whoever opens it next; while it is open, a
full line holds the writer back (flow control) rather than losing bytes mid-frame.

The descriptor is used and closed under one lock: once closed, its number can be handed to any
file the process opens next, and a late write or a second close would land there."""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from collections.abc import Callable

__all__ = ["PtyPort", "wait_for"]

#: A reader that has not made room on a full line for this long counts as gone: the rest is dropped.
STALLED_READER_S = 5.0


class PtyPort:
    def __init__(self) -> None:
        self._master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR→LF: bytes pass as a device sends them
        self.path = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(self._master, False)
        self._closed = False
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        """All of ``data``, waiting while the line is full (the pty takes some 20 kB unread)."""
        unsent = memoryview(data)
        stalled_since: float | None = None
        while unsent:
            with self._lock:
                if self._closed:
                    return
                try:
                    unsent = unsent[os.write(self._master, unsent) :]
                    stalled_since = None
                    continue
                except BlockingIOError:
                    pass
                except OSError:
                    return  # nobody at the other end for good
            now = time.monotonic()
            stalled_since = now if stalled_since is None else stalled_since
            if not self._listened_to() or now - stalled_since > STALLED_READER_S:
                return  # dropped, as a USB port drops what nobody reads
            time.sleep(0.002)

    def _listened_to(self) -> bool:
        """Whether someone has the other end open (a pty's master hangs up while nobody has)."""
        with self._lock:
            if self._closed:
                return False
            poller = select.poll()
            poller.register(self._master, select.POLLOUT)
            return not any(events & select.POLLHUP for _, events in poller.poll(0))

    def pump_to(self, deliver: Callable[[bytes], None], name: str) -> None:
        """Hand what the other end writes to ``deliver``, from a thread of its own, until closed."""

        def pump() -> None:
            while True:
                with self._lock:
                    if self._closed:
                        return
                    try:
                        data: bytes | None = os.read(self._master, 4096)
                        pause = 0.0
                    except BlockingIOError:
                        data, pause = None, 0.002
                    except OSError:  # EIO: nobody has the other end open
                        data, pause = None, 0.01
                if data is None:
                    time.sleep(pause)
                    continue
                if not data:
                    return
                deliver(data)

        threading.Thread(target=pump, name=name, daemon=True).start()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._master)


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; whether it held. For a simulator's
    caller, waiting on what the program at the other end of the line did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()
