"""Raw HTTP against the kiosk page, for the tests that attack it: plain blocking sockets on loopback
(so a test writes exactly the bytes it means), and an event loop in a thread to run the page in."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from kiosk.sim.loop_thread import LoopThread

T = TypeVar("T")


@dataclass
class Answer:
    status: int | None  # None: the server closed the connection without an answer
    head: bytes
    body: bytes
    timed_out: bool = False

    def header(self, name: bytes) -> bytes | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


HOST = "127.0.0.1:{port}"


def request(
    port: int,
    method: str,
    path: str,
    *,
    host: str | None = HOST,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    """One HTTP/1.1 request as bytes, with a Content-Length when there is a body."""
    lines = [f"{method} {path} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host.format(port=port)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def post_json(port: int, path: str, body: bytes, *, host: str = HOST, **headers: str) -> bytes:
    return request(port, "POST", path, host=host, headers={"Content-Type": "application/json", **headers}, body=body)


def exchange(port: int, data: bytes, *, half_close: bool = False, timeout: float = 8.0) -> Answer:
    """Send ``data`` on a new connection and read one answer (the head only for an event stream)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # refused before it read everything: its answer may still be there
        return _read_answer(sock, head_only=data.startswith(b"HEAD "))


def event_stream(port: int, *, timeout: float = 30.0) -> Iterator[dict[str, Any]]:
    """The frames of one event stream, as the page receives them, until the server ends it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request(port, "GET", "/events"))
        received = sock.makefile("rb")
        while received.readline() not in (b"\r\n", b""):  # the head
            pass
        text = b""
        while size := int(received.readline().strip() or b"0", 16):  # chunked: size, data, CRLF
            text += received.read(size)
            received.readline()
            *events, text = text.split(b"\n\n")
            yield from (json.loads(event[6:]) for event in events if event.startswith(b"data: "))


def _read_answer(sock: socket.socket, *, head_only: bool) -> Answer:
    received = b""
    timed_out = False
    while True:
        head, found, rest = received.partition(b"\r\n\r\n")
        if found:
            status = _status(head)
            if status is not None and 100 <= status < 200:  # interim (100 Continue): the real one follows
                received = rest
                continue
            answer = Answer(status, head, rest)
            length = answer.header(b"content-length")
            if head_only or status in (204, 304) or b"text/event-stream" in (answer.header(b"content-type") or b""):
                return Answer(status, head, b"")
            if length is not None and length.isdigit() and len(rest) >= int(length):
                return Answer(status, head, rest[: int(length)])
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            timed_out = True
            break
        except OSError:
            break
        if not chunk:
            break
        received += chunk
    head, found, rest = received.partition(b"\r\n\r\n")
    return Answer(_status(head) if found else None, head if found else b"", rest, timed_out)


def _status(head: bytes) -> int | None:
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() else None


def wait_for(condition: Callable[[], object], timeout_s: float = 15.0) -> None:
    """Poll ``condition`` from the test's thread until it holds; fail the test if it never does."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class Background(LoopThread):
    """An event loop in a thread: the page (or the whole kiosk) runs there, the test talks to it."""

    def __init__(self) -> None:
        super().__init__("page-loop")


@contextmanager
def running(context: Callable[[], AbstractAsyncContextManager[T]]) -> Iterator[tuple[T, Background]]:
    """Enter the async context ``context()`` on a background loop; leave it there afterwards."""
    background = Background()
    manager = context()
    try:
        value = background.run(manager.__aenter__())
        try:
            yield value, background
        finally:
            background.run(manager.__aexit__(None, None, None))
    finally:
        background.close()
