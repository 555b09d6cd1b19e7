"""A stand-in I/O board in Python for hostile-input tests: the board's side of ``kiosk.board.link``
on a pseudo-terminal, which behaves as the firmware does (adopts the kiosk's nonce, echoes it in
its hello, acknowledges every message) and also sends whatever a test asks it to, well formed or
not. Every frame it sends is kept in ``sent`` (with its type and the nonce it was made under), so
a test can replay frames of an earlier session."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from kiosk.board import link
from kiosk.devices.board.io_board import EXPECTED_FIRMWARE
from kiosk.sim.pty_port import PtyPort, wait_for

__all__ = ["BoardPeer", "kiosk_reads_hello"]


def kiosk_reads_hello(frame: bytes) -> bool:
    """Whether the kiosk takes in this hello frame at all (its CRC is checked without a nonce, so a
    fresh decoder says: false for one whose body is too long for a frame, which the kiosk drops)."""
    return bool(link.FrameDecoder().feed(frame))


class BoardPeer:
    #: What the peer says in its hello (beside the nonce).
    IDENTITY = {"fw": EXPECTED_FIRMWARE, "manifest": "peer", "variant": "python-peer", "link": "pty"}

    def __init__(self) -> None:
        self._port = PtyPort()
        self.device = self._port.path
        self._lock = threading.Lock()
        self.nonce = b""
        self.adoptions = 0  # kiosk hellos whose (new) nonce the peer took
        self.seq = 0
        self.sent: list[tuple[int | None, bytes, bytes]] = []  # (type or None for raw bytes, frame, nonce)
        self.received: list[tuple[int, int, bytes]] = []  # what the kiosk sent, in this peer's sessions
        #: The fields of the last hello the peer sent with the kiosk's nonce: what the kiosk must report.
        self.last_echo: dict[str, Any] | None = None
        self.heartbeats = threading.Event()  # set: a heartbeat every 0.5 s, as a board sends
        self._decoder = link.FrameDecoder()
        self._closed = False
        self._port.pump_to(self._incoming, name="peer-in")
        threading.Thread(target=self._beat, name="peer-beat", daemon=True).start()

    # --- sending --------------------------------------------------------------------------------

    def write(self, data: bytes, kind: int | None = None, nonce: bytes = b"") -> None:
        """Bytes on the line towards the kiosk (a frame of ``kind`` made under ``nonce``, or any)."""
        with self._lock:
            self._write(data, kind, nonce)

    def _write(self, data: bytes, kind: int | None, nonce: bytes) -> None:
        """``write`` with the lock held: what is on the line and what ``sent`` says stay in one order."""
        self._port.write(data)
        self.sent.append((kind, data, nonce))

    def frame(self, kind: int, body: bytes = b"", *, seq: int | None = None, nonce: bytes | None = None) -> bytes:
        """A frame as this peer would send it now (its next sequence number, this session's nonce)."""
        with self._lock:
            return self._frame(kind, body, seq, self.nonce if nonce is None else nonce)

    def _frame(self, kind: int, body: bytes, seq: int | None, nonce: bytes) -> bytes:
        if seq is None:
            self.seq = (self.seq + 1) & 0xFF
            seq = self.seq
        return link.encode_frame(kind, seq, body, nonce)

    def send(self, kind: int, body: bytes = b"", *, seq: int | None = None, nonce: bytes | None = None) -> bytes:
        """Frame and write at once, so the nonce the frame is made under is the one ``sent`` records
        (the peer's input thread may adopt a new one at any moment)."""
        with self._lock:
            made_under = self.nonce if nonce is None else nonce
            frame = self._frame(kind, body, seq, made_under)
            self._write(frame, kind, made_under)
        return frame

    def hello(self, fields: dict[str, Any] | None = None, nonce: bytes | None = None) -> bytes:
        """A hello carrying ``nonce`` (by default the session's: an echo); the frame. ``last_echo``
        follows only an echo the kiosk can read (not one too long for a frame), and changes in the
        same step as the write, as the input thread answers the kiosk's hellos concurrently."""
        fields = dict(self.IDENTITY if fields is None else fields)
        with self._lock:
            echoed = self.nonce if nonce is None else nonce
            frame = self._frame(link.HELLO, link.hello_body(fields, echoed), None, echoed)
            if echoed == self.nonce and self.nonce and kiosk_reads_hello(frame):
                self.last_echo = fields
            self._write(frame, link.HELLO, echoed)
        return frame

    def reboot(self) -> None:
        """As a board that has just started: no nonce, and a hello without one."""
        with self._lock:
            self.nonce = b""
            self._decoder.nonce = b""
        self.hello(nonce=b"")

    def close(self) -> None:
        self._closed = True
        self._port.close()

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
        return wait_for(condition, timeout_s)

    # --- the board's part -----------------------------------------------------------------------

    def _incoming(self, data: bytes) -> None:
        for kind, seq, body in self._decoder.feed(data):
            if kind == link.HELLO:
                hello = link.read_hello(body)
                if hello is None or hello[1] is None:
                    continue
                with self._lock:
                    if hello[1] != self.nonce:
                        self.nonce = self._decoder.nonce = hello[1]
                        self.adoptions += 1
                self._ack(seq)
                self.hello()
                continue
            self.received.append((kind, seq, body))
            if kind != link.ACK:
                self._ack(seq)

    def _ack(self, seq: int) -> None:
        self.send(link.ACK, bytes((seq,)), seq=0)

    def _beat(self) -> None:
        while not self._closed:
            if self.heartbeats.is_set() and self.nonce:
                self.send(link.HEARTBEAT, b"\x00\x00\x00\x00")
            time.sleep(0.5)
