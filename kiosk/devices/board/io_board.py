"""The kiosk's side of the I/O board link (``kiosk.board.link`` over pyserial).

One thread owns the serial port: it says hello, reads frames, acknowledges them, retries what the
board has not acknowledged, sends a heartbeat, and reopens the port when it vanishes or the board
falls silent (a reset, a pulled cable). Scans go through the shared ``ScanFilter`` to the same sink
as every other scanner's; a deposit goes to ``on_deposit``; ``signal`` queues lights and buzzer
commands from the event loop. The board counts as open only after a hello that echoes this
session's nonce, so ``wait_ready`` means "the board answered, in this session"; only frames of this
session keep it open, so garbage on the line does not keep a dead board "alive".

Expected faults of the link (the port gone, the board silent) end a session and the port is opened
again; anything else is a bug and raises out of the thread (``state`` becomes "failed") rather than
leaving a driver that quietly does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import secrets
import time
from collections.abc import Callable
from typing import Any

import serial

from kiosk import __version__
from kiosk.board import link
from kiosk.board.signals import Signals
from kiosk.devices.scanner.assembler import scan_text
from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.devices.scanner.source import ScanSink, ThreadedSource
from kiosk.devices.serial_port import run_sessions
from kiosk.supervisor import Supervisor

__all__ = ["IoBoard", "EXPECTED_FIRMWARE", "firmware_is_older"]

log = logging.getLogger(__name__)

#: The firmware this kiosk was built with (firmware/board/boardcfg.py FIRMWARE_VERSION); a board
#: running an older one works but is logged, so the technician knows to flash it.
EXPECTED_FIRMWARE = "1.2.0"

HEARTBEAT_S = 1.0
#: The board sends a heartbeat every second; this long without a frame of this session means it is gone.
SILENT_AFTER_S = 3.5
#: Without a hello answer in this time the kiosk asks again.
HELLO_RETRY_S = 1.0
#: A board's hello without this session's nonce is answered with ours, but not more often than this.
HELLO_MIN_GAP_S = 0.2
#: Damaged frames are logged at most this often (with their count), so a noisy line cannot flood the log.
REJECTS_LOG_EVERY_S = 10.0


def firmware_is_older(reported: object, expected: str = EXPECTED_FIRMWARE) -> bool:
    """True when ``reported`` ("1.0.0") is an older version than ``expected``; unreadable (not a
    dotted version string, as a hostile hello may send) counts as older."""
    if not isinstance(reported, str):
        return True
    try:
        return tuple(int(part) for part in reported.split(".")) < tuple(int(part) for part in expected.split("."))
    except ValueError:
        return True


class IoBoard(ThreadedSource):
    """A ``ScanSource`` that is also the deposit sensor and the lights."""

    def __init__(
        self,
        device: str,
        *,
        baud: int = 115200,
        scan_filter: ScanFilter | None = None,
        reopen_interval_s: float = 1.0,
        silent_after_s: float = SILENT_AFTER_S,
    ) -> None:
        super().__init__(scan_filter)
        self.device = device
        self.baud = baud
        self.reopen_interval_s = reopen_interval_s
        self.silent_after_s = silent_after_s
        #: "missing", "connecting" (port open, no hello of this session yet), "open", "closed", or
        #: "failed" (the driver's thread ended with an error; see the module's docstring).
        self.state = "closed"
        #: The board's hello: {"fw", "manifest", "variant", "link"}.
        self.firmware: dict[str, Any] | None = None
        #: Called on the event loop when an item passed the drop slot (given at ``start``).
        self.on_deposit: Callable[[], None] | None = None
        #: Problems the board reported (ERROR messages), newest last.
        self.errors: list[str] = []
        self.rejected_frames = 0
        self._signals: queue.SimpleQueue[Signals] = queue.SimpleQueue()
        self._lights = "idle"

    @property
    def name(self) -> str:
        return f"board:{self.device}"

    def start(
        self,
        loop: asyncio.AbstractEventLoop,
        sink: ScanSink,
        supervisor: Supervisor | None = None,
        *,
        on_deposit: Callable[[], None] | None = None,
    ) -> None:
        """As every scan source; ``on_deposit()`` hears packaging pass the slot, on ``loop``."""
        self.on_deposit = on_deposit
        super().start(loop, sink, supervisor)

    def _threads(self) -> list[tuple[str, Callable[[], None]]]:
        return [(self.name, self._run)]

    def signal(self, signals: Signals) -> None:
        """Lights (and a tune) for the flow's new state; safe to call from any thread."""
        self._signals.put(signals)

    # --- the port's thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            run_sessions(
                self.device,
                self.baud,
                label="I/O board",
                stop=self._stop,
                reopen_interval_s=self.reopen_interval_s,
                set_state=self._set_state,
                session=self._talk,
                opened_state="connecting",
                read_timeout_s=0.01,
            )
        except BaseException:
            self.state = "failed"
            raise

    def _talk(self, port: serial.Serial) -> None:
        """One session on an open port; returns when the board falls silent or we stop."""
        port.reset_input_buffer()  # whatever waited from before is stale
        session = _Session(port)
        session.say_hello()
        last_heard = last_beat = time.monotonic()
        rejected = untold = 0
        last_rejects_told = -REJECTS_LOG_EVERY_S
        while not self._stop.is_set():
            data = port.read(max(1, min(4096, port.in_waiting)))
            now = time.monotonic()
            if data:
                for kind, seq, body in session.decoder.feed(data):
                    if self._received(session, kind, seq, body):
                        last_heard = now
                fresh, rejected = session.decoder.rejected - rejected, session.decoder.rejected
                self.rejected_frames += fresh
                untold += fresh
                if untold and now - last_rejects_told >= REJECTS_LOG_EVERY_S:
                    log.warning("I/O board: %d damaged frames skipped", untold)
                    untold, last_rejects_told = 0, now
                if session.decoder.other_version is not None:
                    session.log_once(
                        ("version",),
                        logging.WARNING,
                        "I/O board speaks link version %d, this kiosk version %d: flash it with scripts/flash-firmware",
                        session.decoder.other_version,
                        link.VERSION,
                    )
            if now - last_heard > self.silent_after_s:
                log.warning("I/O board %s silent for %.1f s; reconnecting", self.device, now - last_heard)
                return
            if self.state == "connecting" and session.hello_due(now):
                session.say_hello()
            if self.state == "open" and now - last_beat >= HEARTBEAT_S:  # before, only hellos mean anything
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

    def _received(self, session: _Session, kind: int, seq: int, body: bytes) -> bool:
        """Act on one message; True when it belongs to this session (so the board is alive)."""
        if kind == link.ACK:
            if body:
                session.sender.acknowledged(body[0])
            return True
        if kind == link.HELLO:
            return self._hello(session, seq, body)  # answering one twice is harmless: not deduplicated
        session.port.write(session.sender.ack(seq))
        if not session.receiver.is_new(seq):
            return True
        if kind == link.SCAN:
            self._deliver(scan_text(body))
        elif kind == link.SLOT:
            if body == link.ITEM_PASSED:
                log.info("I/O board: packaging passed the drop slot")
                if self.on_deposit is not None:
                    self._on_loop(self.on_deposit)
            else:
                session.log_once(
                    ("slot",), logging.WARNING, "I/O board: a slot event with body %r is no deposit", body[:16]
                )
        elif kind == link.ERROR:
            message = body.decode("utf-8", errors="replace")[:200]
            session.log_once(("error", message), logging.WARNING, "I/O board reports: %r", message)
            self.errors = [*self.errors[-19:], message]
        elif kind != link.HEARTBEAT:
            session.log_once(("type", kind), logging.WARNING, "I/O board sent an unexpected message type %d", kind)
        return True

    def _hello(self, session: _Session, seq: int, body: bytes) -> bool:
        hello = link.read_hello(body)
        if hello is None:
            session.log_once(("hello",), logging.WARNING, "I/O board sent an unreadable hello %r", body[:80])
            return False
        fields, nonce = hello
        if nonce != session.nonce:
            # A board that has just started (no nonce yet), or a hello recorded in another session.
            if self.state == "open":
                session.log_once(
                    ("rehello",),
                    logging.INFO,
                    "I/O board said hello without this session's nonce (restarted?): starting afresh",
                )
                session.renew()
                self.state = "connecting"
            session.hello_wanted = True  # no ACK: it could not check one under our nonce anyway
            return False
        session.port.write(session.sender.ack(seq))
        firmware = {key: value for key, value in fields.items() if key != "nonce"}
        version = firmware.get("fw")
        told = ("firmware", repr(sorted(firmware.items())))  # each hello's news once, not the answer to ours again
        if firmware_is_older(version):
            session.log_once(
                told,
                logging.WARNING,
                "I/O board runs firmware %r, older than the %s this kiosk "
                "expects: flash it with scripts/flash-firmware",
                version,
                EXPECTED_FIRMWARE,
            )
        else:
            session.log_once(
                told,
                logging.INFO,
                "I/O board firmware %r (%r, manifest %r)",
                version,
                firmware.get("variant"),
                str(firmware.get("manifest"))[:12],
            )
        self.firmware = firmware
        self.state = "open"
        session.send(link.LIGHTS, self._lights.encode())  # what the board should show right now
        return True


class _Session:
    """One opened port: the session nonce, the link's numbering, retries and duplicate filter, and
    the warnings already given (each once, so a hostile board cannot flood the log)."""

    def __init__(self, port: serial.Serial) -> None:
        self.port = port
        self.nonce = b""
        self.decoder = link.FrameDecoder()
        self.sender = link.Sender(retry_after=0.2, max_tries=5)
        self.receiver = link.Receiver()
        self.hello_wanted = False  # the board asked for our hello (it said its own without our nonce)
        self._last_hello = 0.0
        self._told: set[object] = set()
        self.renew()

    def renew(self) -> None:
        """A fresh nonce: frames of the handshake before (and of any earlier session) stop counting,
        and sequence numbers start a new window."""
        self.nonce = secrets.token_bytes(link.NONCE_SIZE)
        self.decoder.nonce = self.nonce
        self.sender.restart(self.nonce)
        self.receiver.reset()

    def say_hello(self) -> None:
        self.send(link.HELLO, link.hello_body({"kiosk": __version__}, self.nonce))
        self._last_hello, self.hello_wanted = time.monotonic(), False

    def hello_due(self, now: float) -> bool:
        """While connecting: ask again after a while, or soon when the board asked for it."""
        waited = now - self._last_hello
        return waited > HELLO_RETRY_S or (self.hello_wanted and waited > HELLO_MIN_GAP_S)

    def send(self, kind: int, body: bytes, reliable: bool = True) -> None:
        self.port.write(self.sender.send(kind, body, time.monotonic(), reliable))

    def log_once(self, key: object, level: int, message: str, *args: object) -> None:
        """Log ``message`` the first time ``key`` comes up in this session (and at most 64 keys)."""
        if key not in self._told and len(self._told) < 64:
            self._told.add(key)
            log.log(level, message, *args)
