"""The page server's connections: its own listening sockets and accept loop around aiohttp's
protocol, so that slow clients and running out of file descriptors stay the page's problem and never
hold up issuing.

- A connection must deliver a complete request head within ``head_timeout_s`` of opening, and again
  of finishing each request: a client that trickles its request line and headers (slowloris) or sits
  idle is closed. aiohttp has no header timeout of its own (only its keep-alive timer, an hour by
  default, ends a connection that never completes a request), so the guard keeps this one rule.
- At most ``cap`` connections at once, by default what RLIMIT_NOFILE leaves after the descriptors
  open at start and a reserve for the backend, the database, the printer and the serial ports.
- A connection past the cap, and accept() failing with EMFILE, shed page clients first: the oldest
  connection waiting for a request, then the oldest event stream. A connection in the middle of a
  request is never shed (its body has its own deadline). After EMFILE the cap drops to what is left.
- A request aiohttp cannot parse is answered by the server's own one-line refusal (``QuietProtocol``),
  never with aiohttp's logged traceback and echo of the bytes.

The shop's service (``kiosk.shop.service``) keeps the same rules with the same guard; ``who`` names
whose connections the guard's log lines are about.
"""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from kiosk.devices.screen.complaints import Complaints
from kiosk.devices.screen.page_requests import MAX_BODY_BYTES, Refused, read_json_object

__all__ = [
    "ConnectionGuard",
    "QuietProtocol",
    "read_json_body",
    "no_continue",
    "add_routes",
    "connection_cap",
    "descriptor_cap",
    "HEAD_TIMEOUT_S",
    "DESCRIPTOR_RESERVE",
]

#: Seconds a connection has to deliver a complete request head (from opening, or after a request).
HEAD_TIMEOUT_S = 5.0
#: Descriptors kept for the rest of the kiosk beyond those open when the page starts: backend and
#: logo connections, SQLite and its journal files, the printer, serial ports, the capture browser.
DESCRIPTOR_RESERVE = 32
#: The page's own needs: Chromium's event stream, a few parallel fetches, a technician's view.
MIN_CONNECTIONS = 8
MAX_CONNECTIONS = 256
#: After EMFILE the cap never drops below this, so the kiosk's own page can still load.
FLOOR_CONNECTIONS = 4
#: Connections the kernel holds while the loop is busy. RE-ZIP can deliver a few hundred webhooks
#: at once; beyond the backlog their SYNs were dropped, and each cost its sender a second's
#: retransmission (the shop service with one worker: max 1.1 s in scripts/bench/shop.py at 128).
#: The kernel caps it at net.core.somaxconn (4096 by default).
_LISTEN_BACKLOG = 1024
_OUT_OF_DESCRIPTORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
#: Pause before accepting again after running out: shed connections free their descriptors on the
#: next loop iterations; when there was nothing to shed, the rest of the kiosk holds them.
_RETRY_AFTER_SHED_S = 0.05
_RETRY_NOTHING_SHED_S = 1.0
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def connection_cap(limit: int | None, in_use: int) -> int:
    """Connections the page may hold with ``limit`` descriptors (None: unlimited) and ``in_use`` open."""
    if limit is None:
        return MAX_CONNECTIONS
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, limit - in_use - DESCRIPTOR_RESERVE))


def descriptor_cap() -> int:
    """``connection_cap`` for this process now."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return connection_cap(None if soft == resource.RLIM_INFINITY else soft, _open_descriptors())


def _open_descriptors() -> int:
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder)) - 1  # less the one listdir opened
        except OSError:
            continue
    return 0


class _Connection(asyncio.Protocol):
    """One page connection: aiohttp's protocol inside, timed and counted by the guard."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a request is being handled
        self.streaming = False  # that request is an event stream
        self.partial = False  # bytes of a request head have arrived since the last request
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.guard._opened(self)
        self.inner.connection_made(transport)
        self.await_request()

    def data_received(self, data: bytes) -> None:
        if not self.busy:
            self.partial = True
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self.guard._forget(self)
        self.transport = None
        self.inner.connection_lost(exc)

    def await_request(self) -> None:
        self._cancel_deadline()
        self.busy = self.streaming = self.partial = False
        self._deadline = asyncio.get_running_loop().call_later(self.guard.head_timeout_s, self._too_slow)

    def begin_request(self) -> None:
        self._cancel_deadline()
        self.busy = True

    def _too_slow(self) -> None:
        self._deadline = None
        if self.busy or self.transport is None:
            return
        if self.partial:
            self.guard.complaints.note(
                f"{self.guard.who} client cut off: no complete request within {self.guard.head_timeout_s:g} s"
            )
        self.transport.close()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def shed(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # at once: close() would wait for a slow reader to take its bytes


class ConnectionGuard:
    """Listens for the page, and runs each connection it accepts through a protocol from
    ``protocol_factory`` (aiohttp's HTTP protocol), timed and counted."""

    def __init__(
        self,
        protocol_factory: Callable[[], asyncio.Protocol],
        complaints: Complaints,
        *,
        cap: int | None = None,
        head_timeout_s: float = HEAD_TIMEOUT_S,
        who: str = "page",
    ) -> None:
        self.protocol_factory = protocol_factory
        self.complaints = complaints
        self.who = who
        self.cap = cap if cap is not None else descriptor_cap()
        self.head_timeout_s = head_timeout_s
        self._connections: dict[_Connection, None] = {}  # oldest first
        self._by_transport: dict[asyncio.BaseTransport, _Connection] = {}
        self._sockets: list[socket.socket] = []
        self.accepting: list[asyncio.Task[None]] = []

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def listen(self, host: str, port: int, *, shared: bool = False) -> int:
        """Listen on every address ``host`` stands for; returns the port (chosen when ``port`` is 0).
        ``shared``: other processes listen on the port too (``SO_REUSEPORT``), and the kernel shares
        the connections out among them."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):
            listener = socket.socket(family, kind, proto)
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if shared:
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                listener.bind((address[0], port, *address[2:]))
                listener.listen(_LISTEN_BACKLOG)
                listener.setblocking(False)
            except OSError:
                listener.close()
                raise
            port = listener.getsockname()[1]  # every address on the one port
            self._sockets.append(listener)
            self.accepting.append(loop.create_task(self._accept_forever(listener), name="page-accept"))
        return port

    async def keep_accepting(self) -> None:
        """Watch the accept loops while the server runs (under its supervisor): one that ends is
        started again on the same listener, and its error raised so the supervisor logs it, counts
        it, and gives up on a server that keeps failing."""
        while True:
            await asyncio.wait(self.accepting, return_when=asyncio.FIRST_COMPLETED)
            errors = self.resume()
            if errors:
                raise errors[0]

    def resume(self) -> list[BaseException]:
        """Accept again on every listener whose accept loop ended; returns why the loops ended
        (an unexpected error each), so a supervisor can count them."""
        loop = asyncio.get_running_loop()
        errors: list[BaseException] = []
        for index, task in enumerate(self.accepting):
            if task.done() and self._sockets[index].fileno() != -1:  # a closed listener stays closed
                failure = None if task.cancelled() else task.exception()
                if failure is not None:
                    errors.append(failure)
                self.accepting[index] = loop.create_task(self._accept_forever(self._sockets[index]), name="page-accept")
        return errors

    async def close(self) -> None:
        """Stop accepting; the open connections are aiohttp's to close."""
        for task in self.accepting:
            task.cancel()
        for task in self.accepting:
            try:
                await task
            except asyncio.CancelledError:
                pass
        for listener in self._sockets:
            listener.close()

    async def _accept_forever(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno not in _OUT_OF_DESCRIPTORS:
                    raise
                await asyncio.sleep(self._out_of_descriptors())
                continue
            if len(self._connections) >= self.cap and not self.shed(1):
                self.complaints.note(f"{self.who} connection refused: all {self.who} connections are in a request")
                _refuse(client)
                continue
            try:
                await loop.connect_accepted_socket(lambda: _Connection(self, self.protocol_factory()), client)
            except OSError as exc:
                client.close()
                if exc.errno not in _OUT_OF_DESCRIPTORS:
                    raise
                await asyncio.sleep(self._out_of_descriptors())

    def _out_of_descriptors(self) -> float:
        """EMFILE: make room by shedding a quarter of the page's connections, and hold the page to
        what is left; returns how long to wait before accepting again."""
        shed = self.shed(max(1, len(self._connections) // 4))
        self.cap = max(FLOOR_CONNECTIONS, min(self.cap, len(self._connections)))
        self.complaints.note(
            f"out of file descriptors: {self.who} clients shed, and fewer {self.who} connections allowed"
        )
        return _RETRY_AFTER_SHED_S if shed else _RETRY_NOTHING_SHED_S

    def shed(self, count: int) -> int:
        """Close up to ``count`` page connections, those waiting for a request first, then event
        streams, oldest first; returns how many were closed."""
        waiting = [c for c in self._connections if not c.busy]
        streams = [c for c in self._connections if c.streaming]
        victims = (waiting + streams)[:count]
        for connection in victims:
            self._forget(connection)
            connection.shed()
        if victims:
            self.complaints.note(f"{self.who} connections shed to make room")
        return len(victims)

    @contextmanager
    def serving(self, transport: asyncio.BaseTransport | None) -> Iterator[None]:
        """Around a request's handling: its connection is not timed meanwhile."""
        connection = self._by_transport.get(transport) if transport is not None else None
        if connection is None:  # already shed or closed: nothing to time
            yield
            return
        connection.begin_request()
        try:
            yield
        finally:
            if connection.transport is not None:
                connection.await_request()

    def stream(self, transport: asyncio.BaseTransport | None) -> None:
        """The request on this connection is an event stream: it stays open, and is shed before
        anything but connections waiting for a request."""
        connection = self._by_transport.get(transport) if transport is not None else None
        if connection is not None:
            connection.streaming = True

    def _opened(self, connection: _Connection) -> None:
        assert connection.transport is not None
        self._connections[connection] = None
        self._by_transport[connection.transport] = connection

    def _forget(self, connection: _Connection) -> None:
        self._connections.pop(connection, None)
        if connection.transport is not None:
            self._by_transport.pop(connection.transport, None)


class QuietProtocol(web.RequestHandler):
    """aiohttp's HTTP protocol, quiet about malformed input: a request it cannot parse (bad method,
    huge header, broken chunks) is answered by ``refuse(status)``, where aiohttp logs an error with
    its traceback and echoes the bytes back. Bodies are never decompressed (aiohttp would, and log a
    traceback when draining a broken one). Anything else (an error in a handler) stays aiohttp's
    loud error."""

    __slots__ = ("refuse",)

    def __init__(self, manager: web.Server, refuse: Callable[[int], web.StreamResponse], **kwargs: Any) -> None:
        super().__init__(manager, auto_decompress=False, **kwargs)
        self.refuse = refuse

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        return self.refuse(status)


class GuardedSite:
    """An aiohttp application served through a ``ConnectionGuard``, from listening to closing: the
    one way the page, the shop service and the LAN metrics server serve. Every connection goes
    through aiohttp's protocol, quiet about requests it cannot parse, timed and counted."""

    def __init__(self, runner: web.AppRunner, guard: ConnectionGuard) -> None:
        self.runner = runner
        self.guard = guard
        self.port = 0

    @classmethod
    async def listen(
        cls,
        app: web.Application,
        refuse: Callable[[int], web.StreamResponse],
        complaints: Complaints,
        host: str,
        port: int,
        *,
        shared: bool = False,
        cap: int | None = None,
        head_timeout_s: float = HEAD_TIMEOUT_S,
        who: str = "page",
        **runner_options: Any,
    ) -> GuardedSite:
        """``app`` listening on ``host``:``port`` (the port chosen when 0; ``shared``: see
        ``ConnectionGuard.listen``); ``refuse(status)`` answers a request aiohttp cannot parse.
        Nothing is left open when it cannot listen."""
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, **runner_options)
        await runner.setup()
        server, loop = runner.server, asyncio.get_running_loop()
        assert server is not None
        guard = ConnectionGuard(
            lambda: QuietProtocol(server, refuse, loop=loop, access_log=None),
            complaints,
            cap=cap,
            head_timeout_s=head_timeout_s,
            who=who,
        )
        site = cls(runner, guard)
        try:
            site.port = await guard.listen(host, port, shared=shared)
        except BaseException:
            await site.close()
            raise
        return site

    async def serve(self) -> None:
        """Keep the accept loops running, under a supervisor (``ConnectionGuard.keep_accepting``):
        a listener that keeps failing makes the supervisor give up."""
        await self.guard.keep_accepting()

    async def close(self) -> None:
        """Stop accepting, then let aiohttp close the open connections."""
        await self.guard.close()
        await self.runner.cleanup()


async def read_json_body(request: web.Request, *, timeout_s: float) -> dict[str, Any]:
    """A POST's small JSON object, read within ``timeout_s`` and never past ``MAX_BODY_BYTES``
    (``page_requests.read_json_object``'s rules); ``Refused`` otherwise."""
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            while len(body) <= MAX_BODY_BYTES and (chunk := await request.content.read(MAX_BODY_BYTES + 1 - len(body))):
                body += chunk
    except TimeoutError:
        raise Refused(408, "body: not sent in time") from None
    except (ConnectionError, web.RequestPayloadError):
        raise Refused(400, "body: incomplete or malformed") from None
    return read_json_object(bytes(body))


async def no_continue(request: web.Request) -> None:
    """Answer no ``Expect:`` header (aiohttp answers it before any middleware, so before a server's
    rules): the request goes through the rules like any other; bodies are small anyway."""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, routes: list[tuple[str, str, Handler]]) -> None:
    """``(method, path, handler)`` routes (GET also answers HEAD), none answering ``Expect:``
    before the server's rules do (see ``no_continue``)."""
    for method, path, handler in routes:
        if method == "GET":
            app.router.add_get(path, handler, expect_handler=no_continue)
        else:
            app.router.add_route(method, path, handler, expect_handler=no_continue)


def _refuse(client: socket.socket) -> None:
    """Past the cap with nothing to shed: a short 503 (best effort) and close."""
    try:
        client.send(_BUSY)
    except OSError:
        pass
    client.close()
