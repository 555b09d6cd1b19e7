"""A shop webhook on loopback that answers exactly as told, down to the byte and its timing: for
proving that the stand-in backend survives whatever a webhook does. It reads each request whole,
answers it per ``answer`` and closes the connection."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Literal

__all__ = ["Answer", "Delivery", "ScriptedWebhook", "DELIVERIES"]

Delivery = Literal["whole", "drip", "slow_headers", "endless", "huge", "close", "close_mid"]
DELIVERIES: tuple[Delivery, ...] = ("whole", "drip", "slow_headers", "endless", "huge", "close", "close_mid")
#: No misbehaviour lasts longer than this, so no thread outlives a test for long.
_LONGEST_S = 8.0


@dataclass(frozen=True)
class Answer:
    """One answer: ``whole`` sends it at once; ``drip`` the body a byte every ``gap_s``;
    ``slow_headers`` the status line and headers a byte every ``gap_s``; ``endless`` declares a
    gigabyte and sends 1 KiB every millisecond; ``huge`` sends 1 MiB at once; ``close`` hangs up
    without a word; ``close_mid`` after half the body."""

    status: int = 200
    body: bytes = b""
    delivery: Delivery = "whole"
    headers: tuple[tuple[str, str], ...] = ()
    gap_s: float = 0.02


class ScriptedWebhook:
    def __init__(self) -> None:
        self.answer = Answer()
        self.requests = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="scripted-webhook", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/rezip/voucher"

    def close(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(_LONGEST_S)
            try:
                if not _read_request(connection):
                    return
                with self._lock:
                    self.requests += 1
                    answer = self.answer
                _deliver(connection, answer, self._stopping)
            except OSError:
                pass  # the backend gave up on us: that is the point


def _read_request(connection: socket.socket) -> bool:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True


def _deliver(connection: socket.socket, answer: Answer, stopping: threading.Event) -> None:
    body = b"x" * (1 << 20) if answer.delivery == "huge" else answer.body
    declared = 10**9 if answer.delivery == "endless" else len(body)
    extra = "".join(f"{name}: {value}\r\n" for name, value in answer.headers)
    head = (
        f"HTTP/1.1 {answer.status} Scripted\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\nConnection: close\r\n{extra}\r\n"
    ).encode("latin-1")
    until = time.monotonic() + _LONGEST_S
    if answer.delivery == "close":
        return
    if answer.delivery == "slow_headers":
        _trickle(connection, head, answer.gap_s, until, stopping)
    else:
        connection.sendall(head)
    if answer.delivery == "drip":
        _trickle(connection, body, answer.gap_s, until, stopping)
    elif answer.delivery == "close_mid":
        connection.sendall(body[: len(body) // 2])
    elif answer.delivery == "endless":
        while time.monotonic() < until and not stopping.is_set():
            connection.sendall(b" " * 1024)
            time.sleep(0.001)
    else:
        connection.sendall(body)


def _trickle(connection: socket.socket, data: bytes, gap_s: float, until: float, stopping: threading.Event) -> None:
    for index in range(len(data)):
        if time.monotonic() > until or stopping.is_set():
            return
        connection.sendall(data[index : index + 1])
        time.sleep(gap_s)
