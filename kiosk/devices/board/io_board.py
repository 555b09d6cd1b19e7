"""The kiosk's side of the I/O board link (``kiosk.board.link`` over pyserial).

One thread owns the serial port: it says hello, reads frames, acknowledges them, retries what the
board has not acknowledged, sends a heartbeat, and reopens the port when it vanishes or the board
falls silent (a reset, a pulled cable). Scans go through the shared ``ScanFilter`` to the same sink
as every other scanner's; a deposit goes to ``on_deposit``; ``signal`` queues lights and buzzer
commands from the event loop. The board counts as open only after its hello, so ``wait_ready``
means "the board answered".
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from typing import Any, Callable

import serial

from kiosk import __version__
from kiosk.board import link
from kiosk.board.signals import Signals
from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.devices.scanner.serial_source import ScanSink
from kiosk.devices.serial_port import run_sessions
from kiosk.supervisor import Supervisor

__all__ = ["IoBoard", "EXPECTED_FIRMWARE", "firmware_is_older"]

log = logging.getLogger(__name__)

#: The firmware this kiosk was built with (firmware/board/boardcfg.py FIRMWARE_VERSION); a board
#: running an older one works but is logged, so the technician knows to flash it.
EXPECTED_FIRMWARE = "1.0.0"

HEARTBEAT_S = 1.0
#: The board sends a heartbeat every second; this long without a byte means it is gone.
SILENT_AFTER_S = 3.5
#: Without a hello answer in this time the kiosk asks again.
HELLO_RETRY_S = 1.0


def firmware_is_older(reported: str, expected: str = EXPECTED_FIRMWARE) -> bool:
    """True when ``reported`` ("1.0.0") is an older version than ``expected``; unreadable counts as older."""
    try:
        return tuple(int(part) for part in reported.split(".")) < tuple(int(part) for part in expected.split("."))
    except (AttributeError, ValueError):
        return True


class IoBoard:
    """A ``ScanSource`` that is also the deposit sensor and the lights."""

    def __init__(self, device: str, *, baud: int = 115200, scan_filter: ScanFilter | None = None,
                 reopen_interval_s: float = 1.0, silent_after_s: float = SILENT_AFTER_S) -> None:  # fmt: skip
        self.device = device
        self.baud = baud
        self.scan_filter = scan_filter or ScanFilter()
        self.reopen_interval_s = reopen_interval_s
        self.silent_after_s = silent_after_s
        self.state = "closed"  # "missing", "connecting" (port open, no hello yet), "open", "closed"
        #: The board's hello: {"fw", "manifest", "variant", "link"}.
        self.firmware: dict[str, Any] | None = None
        #: Called on the event loop when an item passed the drop slot.
        self.on_deposit: Callable[[], None] | None = None
        #: Problems the board reported (ERROR messages), newest last.
        self.errors: list[str] = []
        self.rejected_frames = 0
        self._signals: queue.SimpleQueue[Signals] = queue.SimpleQueue()
        self._lights = "idle"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sink: ScanSink | None = None

    @property
    def name(self) -> str:
        return f"board:{self.device}"

    def start(self, loop: asyncio.AbstractEventLoop, sink: ScanSink, supervisor: Supervisor | None = None) -> None:
        self._loop, self._sink = loop, sink
        keeper = supervisor or Supervisor()
        self._thread = threading.Thread(target=keeper.keep_thread, args=(self.name, self._run), name=self.name,
                                        kwargs={"stop": self._stop, "on_state": self._set_state}, daemon=True)  # fmt: skip
        self._thread.start()

    def signal(self, signals: Signals) -> None:
        """Lights (and a tune) for the flow's new state; safe to call from any thread."""
        self._signals.put(signals)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.state = "closed"

    # --- the port's thread ------------------------------------------------------------------------

    def _run(self) -> None:
        run_sessions(self.device, self.baud, label="I/O board", stop=self._stop, reopen_interval_s=self.reopen_interval_s,
                     set_state=self._set_state, session=self._talk, opened_state="connecting",
                     read_timeout_s=0.01)  # fmt: skip

    def _set_state(self, state: str) -> None:
        self.state = state

    def _talk(self, port: serial.Serial) -> None:
        """One session on an open port; returns when the board falls silent or we stop."""
        port.reset_input_buffer()  # whatever waited from before is stale
        session = _Session(port)
        hello = json.dumps({"kiosk": __version__}).encode()
        session.send(link.HELLO, hello)
        last_heard = last_hello = last_beat = time.monotonic()
        rejected = 0
        while not self._stop.is_set():
            data = port.read(max(1, min(4096, port.in_waiting)))
            now = time.monotonic()
            if data:
                last_heard = now
                for kind, seq, body in session.decoder.feed(data):
                    self._received(session, kind, seq, body)
                if session.decoder.rejected != rejected:
                    log.warning("I/O board: %d damaged frames skipped", session.decoder.rejected - rejected)
                    self.rejected_frames += session.decoder.rejected - rejected
                    rejected = session.decoder.rejected
            if now - last_heard > self.silent_after_s:
                log.warning("I/O board %s silent for %.1f s; reconnecting", self.device, now - last_heard)
                return
            if self.state == "connecting" and now - last_hello > HELLO_RETRY_S:
                session.send(link.HELLO, hello)
                last_hello = now
            if now - last_beat >= HEARTBEAT_S:
                session.send(link.HEARTBEAT, int(now * 1000 % 2**32).to_bytes(4, "little"), reliable=False)
                last_beat = now
            while not self._signals.empty():
                signals = self._signals.get()
                self._lights = signals.lights
                if self.state == "open":
                    session.send(link.LIGHTS, signals.lights.encode())
                    if signals.buzzer:
                        session.send(link.BUZZER, signals.buzzer.encode())
            again, dropped = session.sender.due(now)
            for frame in again:
                port.write(frame)
            if dropped:
                log.warning("I/O board did not acknowledge %d message(s)", len(dropped))

    def _received(self, session: "_Session", kind: int, seq: int, body: bytes) -> None:
        if kind == link.ACK:
            if body:
                session.sender.acknowledged(body[0])
            return
        session.port.write(link.ack_frame(seq))
        if not session.receiver.is_new(kind, seq):
            return
        if kind == link.HELLO:
            self._hello(session, body)
        elif kind == link.SCAN:
            accepted = self.scan_filter.accept(body.decode("utf-8", errors="replace"), time.monotonic())
            if accepted is not None:
                self._loop.call_soon_threadsafe(self._sink, accepted)
        elif kind == link.SLOT:
            log.info("I/O board: packaging passed the drop slot")
            if self.on_deposit is not None:
                self._loop.call_soon_threadsafe(self.on_deposit)
        elif kind == link.ERROR:
            message = body.decode("utf-8", errors="replace")[:200]
            log.warning("I/O board reports: %s", message)
            self.errors = [*self.errors[-19:], message]
        elif kind != link.HEARTBEAT:
            log.warning("I/O board sent an unexpected message type %d", kind)

    def _hello(self, session: "_Session", body: bytes) -> None:
        try:
            hello = json.loads(body)
            version = str(hello["fw"])
        except (ValueError, KeyError, TypeError):
            log.warning("I/O board sent an unreadable hello %r", body[:80])
            return
        if self.state != "open" or hello != self.firmware:  # news, not the answer to our hello again
            if firmware_is_older(version):
                log.warning("I/O board runs firmware %s, older than the %s this kiosk expects: flash it with "
                            "scripts/flash-firmware", version, EXPECTED_FIRMWARE)  # fmt: skip
            else:
                log.info("I/O board firmware %s (%s, manifest %s)", version, hello.get("variant"),
                         str(hello.get("manifest"))[:12])  # fmt: skip
        self.firmware = hello
        self.state = "open"
        session.send(link.LIGHTS, self._lights.encode())  # what the board should show right now


class _Session:
    """One opened port: the link's numbering, retries and duplicate filter last as long as it."""

    def __init__(self, port: serial.Serial) -> None:
        self.port = port
        self.decoder = link.FrameDecoder()
        self.sender = link.Sender(retry_after=0.2, max_tries=5)
        self.receiver = link.Receiver()

    def send(self, kind: int, body: bytes, reliable: bool = True) -> None:
        self.port.write(self.sender.send(kind, body, time.monotonic(), reliable))
