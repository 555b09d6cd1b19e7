"""A virtual ESC/POS printer on a TCP port and/or a pseudo-terminal, for tests and demos.

It takes the stream exactly as a printer on port 9100 or a serial line would, answers the real-time
status queries (DLE EOT 1, 2, 4) from its simulated state (paper, cover, online), and keeps what it
printed. It can be unplugged and plugged back in: the TCP listener and connections close, the
pseudo-terminal disappears and its stable symlink (like ``/dev/serial/by-id/...``) is removed, then
both come back at the same port and path. A status query is recognised when it arrives on its own,
as it does from a kiosk that waits for each answer before sending anything else.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from kiosk.sim.escpos_reader import PaperJob, parse_escpos

__all__ = ["VirtualPrinter"]

_STATUS_QUERY = b"\x10\x04"


class VirtualPrinter:
    def __init__(self, profile: str = "TM-T20II") -> None:
        self.profile = profile
        self.paper: Literal["ok", "near_end", "out"] = "ok"
        self.cover_open = False
        self.online = True
        self.received = bytearray()
        self.status_queries = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._tcp_port: int | None = None
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._pty_link: Path | None = None
        self._pty_master: int | None = None
        self._pty_slave: int | None = None
        self._pty_reader: threading.Thread | None = None
        self._pty_unplugged = threading.Event()

    # --- plugging -------------------------------------------------------------------------------

    def serve_tcp(self, port: int = 0) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(4)
        self._listener = listener
        self._tcp_port = listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(listener,), name="vprinter-tcp", daemon=True).start()
        return self._tcp_port

    def serve_pty(self, link: Path) -> Path:
        master, slave = os.openpty()
        tty.setraw(slave)
        self._pty_master, self._pty_slave, self._pty_link = master, slave, link
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.ttyname(slave))
        self._pty_unplugged = threading.Event()
        self._pty_reader = threading.Thread(
            target=self._read_pty, args=(master, self._pty_unplugged), name="vprinter-pty", daemon=True
        )
        self._pty_reader.start()
        return link

    def unplug(self) -> None:
        """Like pulling the cable: connections drop and the device disappears."""
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close alone would not
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                connection.close()
            self._connections.clear()
        if self._pty_master is not None:
            # The reader stops before its descriptors close: their numbers are handed to the next
            # file anyone opens, which it would otherwise read from and answer into.
            self._pty_unplugged.set()
            if self._pty_reader is not None:
                self._pty_reader.join()
            for fd in (self._pty_master, self._pty_slave):
                try:
                    os.close(fd)  # type: ignore[arg-type]
                except OSError:
                    pass
            self._pty_master = self._pty_slave = None
            if self._pty_link is not None and self._pty_link.is_symlink():
                self._pty_link.unlink()

    def replug(self) -> None:
        """The same printer back at the same port and path."""
        if self._tcp_port is not None and self._listener is None:
            self.serve_tcp(self._tcp_port)
        if self._pty_link is not None and self._pty_master is None:
            self.serve_pty(self._pty_link)

    def close(self) -> None:
        self._stop.set()
        self.unplug()

    # --- what it printed ------------------------------------------------------------------------

    @property
    def jobs(self) -> list[PaperJob]:
        """Each job starts with ESC @ (initialise)."""
        with self._lock:
            data = bytes(self.received)
        parts = [b"\x1b@" + part for part in data.split(b"\x1b@") if part]
        return [parse_escpos(part, self.profile) for part in parts]

    def wait_for_jobs(self, count: int, timeout_s: float = 3.0) -> list[PaperJob]:
        """The jobs, once at least ``count`` have arrived (or the timeout passed): bytes in flight
        through a socket or a pseudo-terminal arrive a moment after the sender returns."""
        deadline = time.monotonic() + timeout_s
        while True:
            jobs = self.jobs
            if len(jobs) >= count and jobs[-1].count("GS V") + jobs[-1].count("ESC d") > 0:
                return jobs
            if time.monotonic() > deadline:
                return jobs
            time.sleep(0.02)

    def status_byte(self, kind: int) -> int:
        base = 0x12  # bits 1 and 4 are always set, 0 and 7 always clear
        if kind == 1:
            return base | (0 if self.online and not self.cover_open and self.paper != "out" else 0x08)
        if kind == 2:
            return base | (0x04 if self.cover_open else 0) | (0x20 if self.paper == "out" else 0)
        if kind == 4:
            return base | {"ok": 0, "near_end": 0x0C, "out": 0x6C}[self.paper]
        return base

    # --- inside ---------------------------------------------------------------------------------

    def _take(self, chunk: bytes) -> bytes:
        """Handle what arrived; return the answer to send back (status queries only)."""
        if len(chunk) == 3 and chunk.startswith(_STATUS_QUERY):
            with self._lock:
                self.status_queries += 1
            return bytes([self.status_byte(chunk[2])])
        with self._lock:
            if self.paper != "out" and not self.cover_open:
                self.received += chunk
        return b""

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            self._pump(lambda: connection.recv(65536), connection.sendall, self._stop)

    def _read_pty(self, master: int, unplugged: threading.Event) -> None:
        def read() -> bytes | None:
            ready, _, _ = select.select([master], [], [], 0.2)
            return os.read(master, 65536) if ready else None

        self._pump(read, lambda answer: os.write(master, answer), unplugged)

    def _pump(self, read: Callable[[], bytes | None], write: Callable[[bytes], object], stop: threading.Event) -> None:
        """Take chunks off the line until it closes or ``stop`` is set (``read`` gives None when
        nothing came)."""
        while not stop.is_set():
            try:
                chunk = read()
                if chunk is None:
                    continue
                if not chunk:
                    return
                answer = self._take(chunk)
                if answer:
                    write(answer)
            except (OSError, ValueError):  # the line was closed: unplugged
                return
