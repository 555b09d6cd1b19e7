"""Where Prometheus reads the metrics: ``/metrics`` on the page server for a scraper on the kiosk
itself (node-exporter's textfile collector, a local agent), and, with ``[metrics] listen``, a
server of its own for a scraper on the LAN, which must send the bearer token from
``metrics.token_file``.

The page server may listen beyond loopback (the technician's remote view), so its ``/metrics``
answers only connections from loopback: metrics leave the machine only through the token's door.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web

from kiosk.devices.screen.complaints import Complaints
from kiosk.devices.screen.connections import HEAD_TIMEOUT_S, GuardedSite, add_routes
from kiosk.fleet.metrics import CONTENT_TYPE_LATEST

__all__ = ["loopback_metrics", "MetricsServer", "from_loopback"]

log = logging.getLogger(__name__)

_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

#: A scraper or two (Prometheus, an operator's curl) is all this server has to serve at once.
MAX_CONNECTIONS = 16


def from_loopback(peername: Any) -> bool:
    """True for a peer address (a socket's ``peername``) on 127.0.0.0/8 or ::1."""
    if not isinstance(peername, tuple) or not peername or not isinstance(peername[0], str):
        return False
    try:
        address = ipaddress.ip_address(peername[0].split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def _answer(render: Callable[[], bytes]) -> web.Response:
    return web.Response(body=render(), headers={"Content-Type": CONTENT_TYPE_LATEST, **_HEADERS})


def loopback_metrics(render: Callable[[], bytes]) -> Callable[[web.Request], Any]:
    """The page server's ``/metrics`` handler: 404 to any peer off loopback."""

    async def handler(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if not from_loopback(peer):
            raise web.HTTPNotFound()
        return _answer(render)

    return handler


class MetricsServer:
    """``GET /metrics`` alone, for the LAN; every request must carry ``Authorization: Bearer
    TOKEN`` (no token configured: only loopback peers are answered, as on the page server).

    Anyone on the LAN can open a connection, so the connections are guarded as the page's are
    (``ConnectionGuard``): at most ``max_connections``, each given ``head_timeout_s`` to send its
    request, and a request aiohttp cannot parse refused in one line; ``serve`` runs under the
    kiosk's supervisor."""

    def __init__(
        self,
        host: str,
        port: int,
        render: Callable[[], bytes],
        *,
        token: str | None,
        max_connections: int = MAX_CONNECTIONS,
        head_timeout_s: float = HEAD_TIMEOUT_S,
    ) -> None:
        self.host = host
        self.port = port
        self._render = render
        self._expected = f"Bearer {token}".encode("ascii") if token else None
        self._max_connections = max_connections
        self._head_timeout_s = head_timeout_s
        self._site: GuardedSite | None = None
        self._complaints = Complaints(log)
        self.refused = 0

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guarded], client_max_size=1024)
        add_routes(app, [("GET", "/metrics", self._metrics)])

        def malformed(status: int) -> web.StreamResponse:
            self._complaints.note("metrics request refused: not a well-formed HTTP request")
            return web.Response(status=status, text="not a well-formed HTTP request\n", headers=_HEADERS)

        self._site = await GuardedSite.listen(
            app,
            malformed,
            self._complaints,
            self.host,
            self.port,
            cap=self._max_connections,
            head_timeout_s=self._head_timeout_s,
            who="metrics",
            access_log=None,
        )
        self.port = self._site.port

    async def serve(self) -> None:
        """Keep the accept loops running, under a supervisor."""
        assert self._site is not None
        await self._site.serve()

    async def stop(self) -> None:
        if self._site is not None:
            await self._site.close()
        self._complaints.flush()

    @web.middleware
    async def _guarded(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        assert self._site is not None
        with self._site.guard.serving(request.transport):
            return await handler(request)

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        if self._expected is None:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            allowed = from_loopback(peer)
        else:
            given = ",".join(request.headers.getall(hdrs.AUTHORIZATION, [])).encode("utf-8", "replace")
            allowed = hmac.compare_digest(given, self._expected)
        if not allowed:
            self.refused += 1
            self._complaints.note("metrics request refused: no valid bearer token")
            return web.Response(
                status=401, text="a bearer token is required\n", headers={"WWW-Authenticate": "Bearer", **_HEADERS}
            )
        return _answer(self._render)
