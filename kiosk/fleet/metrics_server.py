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
from collections.abc import Callable
from typing import Any

from aiohttp import hdrs, web

from kiosk.devices.screen.connections import add_routes
from kiosk.fleet.metrics import CONTENT_TYPE_LATEST

__all__ = ["loopback_metrics", "MetricsServer", "from_loopback"]

log = logging.getLogger(__name__)

_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


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
    TOKEN`` (no token configured: only loopback peers are answered, as on the page server)."""

    def __init__(self, host: str, port: int, render: Callable[[], bytes], *, token: str | None) -> None:
        self.host = host
        self.port = port
        self._render = render
        self._expected = f"Bearer {token}".encode("ascii") if token else None
        self._runner: web.AppRunner | None = None
        self.refused = 0

    async def start(self) -> None:
        app = web.Application(client_max_size=1024)
        add_routes(app, [("GET", "/metrics", self._metrics)])
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=16)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        if self._expected is None:
            peer = request.transport.get_extra_info("peername") if request.transport else None
            allowed = from_loopback(peer)
        else:
            given = ",".join(request.headers.getall(hdrs.AUTHORIZATION, [])).encode("utf-8", "replace")
            allowed = hmac.compare_digest(given, self._expected)
        if not allowed:
            self.refused += 1
            return web.Response(
                status=401, text="a bearer token is required\n", headers={"WWW-Authenticate": "Bearer", **_HEADERS}
            )
        return _answer(self._render)
