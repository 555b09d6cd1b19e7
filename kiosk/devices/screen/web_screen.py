"""The kiosk screen as a local web page, updated live with Server-Sent Events.

Chromium in kiosk mode shows ``http://127.0.0.1:8080/`` full-screen on the Pi; the same page is the
technician's remote view. Each frame carries a sequence number; the page acknowledges a frame once it
has painted it with its fonts loaded, so the kiosk knows when the customer can see the voucher
(``settled``). With a ``HeadlessBrowser`` attached as ``capture``, ``settled`` also returns the painted
frame as PNG (the demo's and ``screen.type = "png"``'s frames: the very page the customer sees, not a
second layout).

The server is a public surface: it answers only to its own address (``page_requests``), holds slow
clients and descriptor use in bounds (``connections``) and counts what it refuses (``complaints``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web

from kiosk.devices.screen.browser import BrowserError, HeadlessBrowser
from kiosk.devices.screen.complaints import Complaints
from kiosk.devices.screen.connections import HEAD_TIMEOUT_S, GuardedSite, add_routes, read_json_body
from kiosk.devices.screen.page_requests import (
    Refused,
    check_body_size,
    check_host,
    check_json_type,
    check_origin,
    frame_number,
    locale_choice,
    page_hosts,
)
from kiosk.logos import LogoCache
from kiosk.presentation.fonts import FONT_FILES, font_file
from kiosk.presentation.page import build_frame
from kiosk.presentation.view import ScreenView
from kiosk.whole_files import write_whole

__all__ = ["WebScreen"]

log = logging.getLogger(__name__)

#: How long a voucher may wait for its shop's logo before it is shown without one.
LOGO_BUDGET_S = 0.15
#: An event stream with nothing to send writes a comment this often, which finds dead connections.
KEEP_ALIVE_S = 15.0
#: How soon a page whose event stream was closed (shed, restarted kiosk) connects again.
RECONNECT_MS = 1000
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATIC_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript"}


class WebScreen:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        touch: bool = False,
        locales: Iterable[str] = (),
        logos: LogoCache | None = None,
        ack_timeout_s: float = 1.0,
        frames_dir: Path | None = None,
        max_connections: int | None = None,
        client_timeout_s: float = HEAD_TIMEOUT_S,
    ) -> None:
        """``max_connections``: None derives the cap from RLIMIT_NOFILE. ``client_timeout_s``: what a
        client has to deliver a request head, and again its body."""
        self.host = host
        self.port = port
        self.touch = touch
        self.locales = tuple(locales)
        self.logos = logos or LogoCache()
        self.ack_timeout_s = ack_timeout_s
        self.frames_dir = frames_dir
        self.max_connections = max_connections
        self.client_timeout_s = client_timeout_s
        self.capture: HeadlessBrowser | None = None
        #: The ``/metrics`` handler (``kiosk.fleet.metrics_server.loopback_metrics``), given at ``start``; None: 404.
        self.metrics: Callable[[web.Request], Any] | None = None
        #: The page's inputs for the kiosk, given at ``start``: a language picked, the status document.
        self.on_locale: Callable[[str], None] | None = None
        self.on_touch: Callable[[], None] | None = None
        self.status: Callable[[], Mapping[str, Any]] | None = None
        #: The banner saying vouchers come from the offline cache (``note_backend``).
        self.offline = False
        self._seq = 0
        self._frame: dict[str, Any] | None = None
        self._clients: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._acked = 0
        self._ack_changed = asyncio.Event()
        self._site: GuardedSite | None = None
        self._complaints: Complaints | None = None
        self._assets: dict[str, bytes] = {}
        self._fonts: dict[str, bytes] = {}

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def clients(self) -> int:
        return len(self._clients)

    @property
    def frame(self) -> dict[str, Any] | None:
        """The frame on screen now (what a page that connects is sent first)."""
        return self._frame

    @property
    def acknowledged(self) -> int:
        """The newest frame a page has painted (0: none yet)."""
        return self._acked

    @property
    def complaints(self) -> dict[str, int]:
        """What the server refused or cut off since it started, by kind."""
        return dict(self._complaints.counts) if self._complaints else {}

    def note_backend(self, reachable: bool) -> bool:
        """The offline banner follows whether the backend answers; True when that changed it."""
        changed = self.offline == reachable
        self.offline = not reachable
        return changed

    async def start(
        self,
        *,
        on_locale: Callable[[str], None] | None = None,
        on_touch: Callable[[], None] | None = None,
        status: Callable[[], Mapping[str, Any]] | None = None,
        metrics: Callable[[web.Request], Any] | None = None,
    ) -> None:
        """Serve the page; ``on_locale(locale)`` hears a language the customer picks, ``on_touch()``
        a touch on the voucher (time to read), ``status()``
        gives the document the technician's ``/status`` shows (the screen adds its own part),
        ``metrics`` answers ``/metrics`` (404 without it)."""
        self.on_locale, self.on_touch, self.status, self.metrics = on_locale, on_touch, status, metrics
        self._assets, self._fonts = await asyncio.to_thread(_read_files)  # no file is opened per request
        self._complaints = Complaints(log)
        app = web.Application(middlewares=[self._gate])
        # aiohttp answers "Expect:" (100 Continue, or 417 echoing the client) before any middleware,
        # so before the Host and Origin rules: the page never answers it; its bodies are tiny anyway.
        add_routes(
            app,
            [
                ("GET", "/", self._index),
                ("GET", "/static/{name}", self._static),
                ("GET", "/font/{role}.ttf", self._font),
                ("GET", "/logo/{key}", self._logo),
                ("GET", "/events", self._events),
                ("GET", "/status", self._status),
                ("GET", "/metrics", self._metrics),
                ("POST", "/ack", self._ack),
                ("POST", "/locale", self._locale),
                ("POST", "/touch", self._touch),
            ],
        )
        complaints = self._complaints

        def malformed(status: int) -> web.StreamResponse:
            refused = Refused(status, "not a well-formed HTTP request")
            complaints.note(_complaint(refused))
            return _refusal(refused)

        self._site = await GuardedSite.listen(
            app,
            malformed,
            complaints,
            self.host,
            self.port,
            cap=self.max_connections,
            head_timeout_s=self.client_timeout_s,
            # A page that goes away ends its request (an event stream at once).
            handler_cancellation=True,
        )
        self.port = self._site.port

    async def serve(self) -> None:
        """Watch the page's accept loops while the kiosk runs (``GuardedSite.serve``)."""
        assert self._site is not None
        await self._site.serve()

    async def stop(self) -> None:
        for queue in list(self._clients):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)  # ends that page's event stream, so shutdown need not wait for it
        if self._site is not None:
            await self._site.close()
        if self._complaints is not None:
            self._complaints.flush()

    def shed_clients(self, count: int = 4) -> int:
        """Close up to ``count`` page connections (idle ones, then event streams) to free file
        descriptors for issuing; returns how many were closed. The page reconnects by itself."""
        return self._site.guard.shed(count) if self._site is not None else 0

    async def attach_capture(self, browser: HeadlessBrowser) -> None:
        """Point a headless browser at the page; from now on ``show`` returns PNG frames."""
        clients = self.clients
        await browser.navigate(self.url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while self.clients <= clients:  # wait until the page has subscribed to the frames
            if loop.time() > deadline:
                raise BrowserError(f"the headless browser did not open {self.url}")
            await asyncio.sleep(0.01)
        self.capture = browser

    async def show(self, view: ScreenView) -> int:
        """Push a frame to every open page; returns its number at once (see ``settled``)."""
        logo_src = None
        if view.voucher is not None and view.voucher.logo_url:
            logo = await self.logos.get(view.voucher.logo_url, LOGO_BUDGET_S)
            logo_src = f"/logo/{logo.key}" if logo else None
        self._seq += 1
        frame = build_frame(
            view, seq=self._seq, touch=self.touch, locales=self.locales, logo_src=logo_src, offline=self.offline
        )
        self._frame = frame
        for queue in list(self._clients):
            if queue.full():
                queue.get_nowait()  # a slow page skips to the newest frame
            queue.put_nowait(frame)
        return self._seq

    async def settled(self, seq: int) -> bytes | None:
        """Wait until a page has painted frame ``seq`` (at most ``ack_timeout_s``, and not at all
        when no page is open); with a capture browser, return that frame as PNG."""
        if self._clients:
            await self._wait_ack(seq)
        if self.capture is None or seq != self._seq:
            return None
        png = await self.capture.screenshot()
        if self.frames_dir is not None:
            await asyncio.to_thread(write_whole, self.frames_dir / "screen.png", png)
        return png

    async def _wait_ack(self, seq: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ack_timeout_s
        while self._acked < seq:
            self._ack_changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.debug("no page painted frame %s within %.1f s", seq, self.ack_timeout_s)
                return
            try:
                await asyncio.wait_for(self._ack_changed.wait(), remaining)
            except TimeoutError:
                return

    # --- every request: its own address only, never another site's page ------------------------

    @web.middleware
    async def _gate(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        assert self._site is not None and self._complaints is not None
        with self._site.guard.serving(request.transport):
            try:
                host = check_host(request.headers.getall(hdrs.HOST, []), self._hosts(request))
                check_origin(request.headers.getall(hdrs.ORIGIN, []), host)
                response: web.StreamResponse = await handler(request)
                return response
            except Refused as refused:
                self._complaints.note(_complaint(refused))
                return _refusal(refused)

    def _hosts(self, request: web.Request) -> frozenset[str]:
        """The listen address, the address this connection arrived on (for a wildcard listen) and
        the loopback names, with the page's port."""
        local = request.transport.get_extra_info("sockname") if request.transport else None
        return page_hosts(self.port, (self.host, local[0] if isinstance(local, tuple) else ""))

    # --- routes ---------------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return self._asset("index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        return self._asset(request.match_info["name"])

    def _asset(self, name: str) -> web.Response:
        body = self._assets.get(name)
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(
            body=body, content_type=_STATIC_TYPES[name[name.rfind(".") :]], charset="utf-8", headers=_SECURITY_HEADERS
        )

    async def _font(self, request: web.Request) -> web.StreamResponse:
        body = self._fonts.get(request.match_info["role"])
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(
            body=body,
            headers={"Content-Type": "font/ttf", "Cache-Control": "max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    async def _logo(self, request: web.Request) -> web.StreamResponse:
        logo = self.logos.lookup(request.match_info["key"])
        if logo is None:
            raise web.HTTPNotFound()
        return web.Response(body=logo.data, content_type=logo.content_type, headers=_SECURITY_HEADERS)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        assert self._site is not None
        self._site.guard.stream(request.transport)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=4)
        self._clients.add(queue)
        try:
            await response.prepare(request)
            await response.write(f"retry: {RECONNECT_MS}\n\n".encode() + (_event(self._frame) if self._frame else b""))
            while True:
                try:
                    frame = await asyncio.wait_for(queue.get(), KEEP_ALIVE_S)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if frame is None:
                    break
                await response.write(_event(frame))
        except ConnectionError:
            pass  # the page went away; it connects again by itself
        finally:
            self._clients.discard(queue)
        return response

    async def _ack(self, request: web.Request) -> web.Response:
        seq = frame_number(await self._json_body(request), newest=self._seq)
        if seq > self._acked:
            self._acked = seq
            self._ack_changed.set()
        return web.Response(status=204)

    async def _locale(self, request: web.Request) -> web.Response:
        locale = locale_choice(await self._json_body(request), self.locales)
        if self.on_locale is not None:
            self.on_locale(locale)
        return web.Response(status=204)

    async def _touch(self, request: web.Request) -> web.Response:
        await self._json_body(request)  # a POST like the others: small, JSON, from the page itself
        if self.on_touch is not None:
            self.on_touch()
        return web.Response(status=204)

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        """A POST's small JSON object, read within ``client_timeout_s`` and never past the limit."""
        check_json_type(request.headers.getall(hdrs.CONTENT_TYPE, []))
        check_body_size(request.content_length)
        return await read_json_body(request, timeout_s=self.client_timeout_s)

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        if self.metrics is None:
            raise web.HTTPNotFound()
        response: web.StreamResponse = await self.metrics(request)
        return response

    async def _status(self, request: web.Request) -> web.Response:
        doc = dict(self.status() if self.status else {})
        doc["screen"] = {
            "clients": self.clients,
            "frame": self._frame["state"] if self._frame else None,
            "refused": self.complaints,
        }
        return web.json_response(doc, headers=_SECURITY_HEADERS)


def _complaint(refused: Refused) -> str:
    return f"page request refused ({refused.status}): {refused.reason}"


def _refusal(refused: Refused) -> web.Response:
    response = web.Response(status=refused.status, text=refused.reason + "\n", headers=_SECURITY_HEADERS)
    response.force_close()  # nothing more from a client that was refused
    return response


def _read_files() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The page's own files and its fonts, by name and by font role."""
    folder = resources.files("kiosk.presentation") / "web"
    assets = {
        item.name: item.read_bytes() for item in folder.iterdir() if item.name[item.name.rfind(".") :] in _STATIC_TYPES
    }
    fonts = {role: path.read_bytes() for role in FONT_FILES if (path := font_file(role)) is not None}
    return assets, fonts


def _event(frame: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(frame, ensure_ascii=False).encode("utf-8") + b"\n\n"
