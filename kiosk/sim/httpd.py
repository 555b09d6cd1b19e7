"""The small JSON-over-HTTP servers that the simulators share.

The stand-ins are real HTTP servers on loopback, so the kiosk's and the shop's clients talk to them
exactly as to the real services. Routes are ``(method, regex)`` pairs mapped to handlers that take a
``Request`` and return a ``Reply``. Two engines serve the same routes:

- ``JsonServer``, the standard library's ``ThreadingHTTPServer``: a thread per connection, for
  stand-ins whose handlers block (the stand-in RE-ZIP calls shops' webhooks from a scan's handler);
- ``AsyncJsonServer``, aiohttp on an event loop of its own, for handlers that never block (the
  stand-in Voucherify). A shop's service keeps 64 connections to it busy; a thread for each, all
  behind the interpreter lock, cost 0.67 ms of CPU per publication against 0.38 on one loop (1,400
  against 2,400 publications a second, ``scripts/bench/shop.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

__all__ = [
    "LoopbackHTTPServer",
    "Request",
    "Reply",
    "JsonServer",
    "AsyncJsonServer",
    "HttpError",
    "json_reply",
    "error_reply",
    "parse_json",
]

MAX_REQUEST_BYTES = 1024 * 1024
#: Answers up to this size are sent in one write.
_ANSWER_BUFFER_BYTES = 64 * 1024


def parse_json(raw: bytes) -> Any:
    """JSON from outside, or ``ValueError``: besides malformed JSON, that is JSON nested too deep to
    read, NaN and Infinity (not JSON), and text with a lone surrogate such as ``"\\ud800"`` (no
    Unicode text: it can be neither stored nor sent back as UTF-8)."""
    try:
        doc = json.loads(raw, parse_constant=_refuse_constant)
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    except UnicodeEncodeError:
        raise ValueError("JSON text with a lone surrogate") from None
    return doc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class HttpError(Exception):
    """Raised by a handler to answer ``{"message": ...}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    #: ``scheme://host:port`` as the client addressed us (for absolute links and @target-uri).
    origin: str = ""

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not (see ``parse_json``)."""
        return parse_json(self.body or b"null")

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object, or a 400 answer."""
        try:
            doc = self.json()
        except ValueError:
            raise HttpError(400, "body is not JSON") from None
        if not isinstance(doc, dict):
            raise HttpError(400, "body must be a JSON object")
        return doc

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, doc: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(doc, ensure_ascii=False).encode("utf-8"), headers=headers or {})


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """RE-ZIP's error shape: ``{"message": ...}``."""
    return json_reply(status, {"message": message}, headers)


Handler = Callable[[Request], Reply]
#: Builds an error answer from a status and a message: RE-ZIP's ``{"message"}`` by default; a
#: stand-in for another service passes its own shape.
ErrorReply = Callable[[int, str], Reply]


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server for the stand-ins and tests. A client that hangs up on a kept-alive
    connection (a reset while the server waits for its next request) is normal HTTP life, not an
    error worth a traceback; every other failure is still reported."""

    daemon_threads = True
    #: socketserver listens with a backlog of 5: a burst of new connections overflowed it, and each
    #: dropped SYN cost its client a second's retransmission (a connect timeout, to a client in a hurry).
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Routes:
    """The routes both engines serve, and the answer for a request none of them takes."""

    def __init__(self, routes: list[tuple[str, str, Handler]], errors: ErrorReply, address: tuple[Any, ...]) -> None:
        self._routes = [(method, re.compile(pattern), handler) for method, pattern, handler in routes]
        self._error = errors
        host, port = address[:2]
        self._url = f"http://{host!s}:{port}"
        #: The thread that serves, from ``start`` to ``stop``.
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` as bound (the port chosen when 0 was asked for)."""
        return self._url

    @property
    def serving(self) -> bool:
        """Started, not stopped, and its thread still alive: a stand-in whose server died is down."""
        return self._thread is not None and self._thread.is_alive()

    def _reply(self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes) -> Reply:
        """The answer to a request: its path as sent (a handler unquotes what it takes from it),
        and the origin the client addressed, or this server's own without a Host header."""
        try:
            parts = urlsplit(target)
        except ValueError:  # "//[x": no path urllib can split
            return self._error(400, "the request target is not a path")
        lowered = {name.lower(): value for name, value in headers}
        request = Request(
            method=method,
            path=parts.path,
            query=parse_qs(parts.query),
            headers=lowered,
            body=body,
            origin=f"http://{lowered.get('host') or self.url.split('://', 1)[1]}",
        )
        return self._route(request)

    def _route(self, request: Request) -> Reply:
        allowed = False
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if not match:
                continue
            allowed = True
            if method != request.method:
                continue
            request.params = match.groupdict()
            try:
                return handler(request)
            except HttpError as exc:
                return self._error(exc.status, exc.message)
            except Exception as exc:  # a stand-in bug must answer 500, like a real server would
                return self._error(500, f"internal error: {type(exc).__name__}: {exc}")
        return self._error(405 if allowed else 404, "method not allowed" if allowed else "not found")


class JsonServer(_Routes):
    """Serve routes on ``host:port`` (port 0 picks a free one) in a background thread, with a
    thread for each connection: a handler may block."""

    def __init__(
        self,
        routes: list[tuple[str, str, Handler]],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        errors: ErrorReply = error_reply,
    ) -> None:
        server = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # An answer is buffered until it is whole (http.server flushes after each request), so
            # head and body leave in one write and, when small, one TCP segment, as from a server
            # that builds its answer first: the client wakes and reads once per answer, not twice.
            wbufsize = _ANSWER_BUFFER_BYTES
            # What does not fit goes out in several writes; with Nagle on, the last could wait ~40
            # ms for an ACK.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                server._dispatch(self)

            do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server._connections.add(self.connection)

            def finish(self) -> None:
                with server._lock:
                    server._connections.discard(self.connection)
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                return  # the simulators report through their own output, not stderr noise

        self._lock = threading.Lock()
        self._connections: set[Any] = set()
        self._httpd = LoopbackHTTPServer((host, port), _RequestHandler)
        super().__init__(routes, errors, self._httpd.server_address)

    def start(self) -> JsonServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="sim-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections, like a server that went away;
        stopping twice is harmless."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread = None
        self._httpd.server_close()
        with self._lock:
            for connection in list(self._connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _dispatch(self, raw: BaseHTTPRequestHandler) -> None:
        declared = (raw.headers.get("Content-Length") or "0").strip()
        if not declared.isdigit() or not declared.isascii():
            raw.close_connection = True  # where this body ends is unknown: so is the next request
            self._send(raw, self._error(400, "Content-Length: must be a whole number of bytes"))
            return
        length = int(declared)
        if length > MAX_REQUEST_BYTES:
            raw.close_connection = True
            self._send(raw, self._error(413, "request body too large"))
            return
        body = raw.rfile.read(length) if length else b""
        reply = self._reply(raw.command, raw.path, raw.headers.items(), body)
        self._send(raw, reply)

    @staticmethod
    def _send(raw: BaseHTTPRequestHandler, reply: Reply) -> None:
        try:
            raw.send_response(reply.status)
            raw.send_header("Content-Type", reply.content_type)
            raw.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                raw.send_header(name, value)
            raw.end_headers()
            raw.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its deadline passed); nothing to tell it


class _ClientFaults(logging.Filter):
    """aiohttp logs a request it cannot parse, or a client that hung up, as an error with a
    traceback; for a stand-in that is a client's doing, answered 400 or not at all, like the
    threaded engine's resets (``LoopbackHTTPServer``). Every other failure is still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        fault = record.exc_info[1] if record.exc_info else None
        return not isinstance(fault, (HttpProcessingError, ConnectionError))


_SERVER_LOG = logging.getLogger("kiosk.sim.httpd")
_SERVER_LOG.addFilter(_ClientFaults())


class AsyncJsonServer(_Routes):
    """Serve routes on ``host:port`` (port 0 picks a free one) from aiohttp on an event loop in a
    background thread. A handler runs on that loop and must not block; a slow service is
    ``answer_delay``, seconds every answer waits first (read for each request), which holds no
    other request up."""

    def __init__(
        self,
        routes: list[tuple[str, str, Handler]],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        errors: ErrorReply = error_reply,
        answer_delay: Callable[[], float] = lambda: 0.0,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=128)
        super().__init__(routes, errors, self._socket.getsockname())
        self._answer_delay = answer_delay
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> AsyncJsonServer:
        started: list[BaseException | None] = []
        serving = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started, serving), name="sim-http", daemon=True)
        self._thread.start()
        serving.wait()
        if started[0] is not None:
            self._thread = None
            raise started[0]
        return self

    def stop(self) -> None:
        """Stop serving and close every connection, kept-alive ones included, like a server that
        went away (an answer still waiting gets about a second); stopping twice is harmless."""
        if self._thread is not None and self._loop is not None:
            if self._thread.is_alive():  # else its loop already ended, and is closed
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(10)
            self._thread = None
        self._socket.close()

    def _serve(self, started: list[BaseException | None], serving: threading.Event) -> None:
        """The loop's thread: serve until ``stop``; ``started`` says whether serving began."""
        loop = self._loop = asyncio.new_event_loop()
        # aiohttp's low-level server: no router or middlewares, no access log; a body is read up
        # to its client_max_size, 1 MiB, which is MAX_REQUEST_BYTES. A connection whose body was
        # refused is closed at once (lingering, aiohttp read a refused 2 GB body for 10 s).
        server = web.Server(self._handle, access_log=None, logger=_SERVER_LOG, lingering_time=0, loop=loop)
        runner = web.ServerRunner(server, shutdown_timeout=0.5)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, self._socket).start())
        except BaseException as exc:
            started.append(exc)
        else:
            started.append(None)
        serving.set()
        try:
            if started[0] is None:
                loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    async def _handle(self, raw: web.BaseRequest) -> web.Response:
        delay_s = self._answer_delay()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        try:
            body = await raw.read()
        except web.HTTPRequestEntityTooLarge:
            answer = self._answer(self._error(413, "request body too large"))
            answer.force_close()
            return answer
        # raw_path as sent, and not raw.host: without a Host header that is the machine's name,
        # looked up in the DNS. Header values as bytes read as Latin-1, as http.server reads them.
        headers = ((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw.raw_headers)
        return self._answer(self._reply(raw.method, raw.raw_path, headers, body))

    @staticmethod
    def _answer(reply: Reply) -> web.Response:
        return web.Response(
            status=reply.status, body=reply.body, headers={"Content-Type": reply.content_type, **reply.headers}
        )
