"""The kiosk screen as a local web page, updated live with Server-Sent Events.

Chromium in kiosk mode shows ``http://127.0.0.1:8080/`` full-screen on the Pi; the same page is the
technician's remote view. Each frame carries a sequence number; the page acknowledges a frame once it
has painted it with its fonts loaded, so the kiosk knows when the customer can see the voucher (``settled``). With a ``HeadlessBrowser``
attached as ``capture``, ``settled`` also returns the painted frame as PNG (the demo's and ``screen.type = "png"``'s
frames: the very page the customer sees, not a second layout).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable

from aiohttp import web

from kiosk.devices.screen.browser import BrowserError, HeadlessBrowser
from kiosk.logos import LogoCache
from kiosk.presentation.fonts import FONT_FILES, font_file
from kiosk.presentation.page import build_frame
from kiosk.presentation.view import ScreenView

__all__ = ["WebScreen"]

log = logging.getLogger(__name__)

#: How long a voucher may wait for its shop's logo before it is shown without one.
LOGO_BUDGET_S = 0.15
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
        on_locale: Callable[[str], None] | None = None,
        ack_timeout_s: float = 1.0,
        status: Callable[[], dict[str, Any]] | None = None,
        frames_dir: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.touch = touch
        self.locales = tuple(locales)
        self.logos = logos or LogoCache()
        self.on_locale = on_locale
        self.ack_timeout_s = ack_timeout_s
        self.status = status
        self.frames_dir = frames_dir
        self.capture: HeadlessBrowser | None = None
        self.offline = False
        self._seq = 0
        self._frame: dict[str, Any] | None = None
        self._clients: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._acked = 0
        self._ack_changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

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

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/font/{role}.ttf", self._font)
        app.router.add_get("/logo/{key}", self._logo)
        app.router.add_get("/events", self._events)
        app.router.add_get("/status", self._status)
        app.router.add_post("/ack", self._ack)
        app.router.add_post("/locale", self._locale)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for queue in list(self._clients):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)  # ends that page's event stream, so shutdown need not wait for it
        if self._runner is not None:
            await self._runner.cleanup()

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
        frame = build_frame(view, seq=self._seq, touch=self.touch, locales=self.locales,
                            logo_src=logo_src, offline=self.offline)  # fmt: skip
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
            await asyncio.to_thread(_write_atomically, self.frames_dir / "screen.png", png)
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

    # --- routes ---------------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return self._asset("index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        return self._asset(request.match_info["name"])

    def _asset(self, name: str) -> web.Response:
        suffix = name[name.rfind(".") :] if "." in name else ""
        resource = resources.files("kiosk.presentation") / "web" / name
        if suffix not in _STATIC_TYPES or "/" in name or not resource.is_file():
            raise web.HTTPNotFound()
        return web.Response(body=resource.read_bytes(), content_type=_STATIC_TYPES[suffix],
                            charset="utf-8", headers=_SECURITY_HEADERS)  # fmt: skip

    async def _font(self, request: web.Request) -> web.StreamResponse:
        role = request.match_info["role"]
        path = font_file(role) if role in FONT_FILES else None
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": "font/ttf", "Cache-Control": "max-age=86400"})

    async def _logo(self, request: web.Request) -> web.StreamResponse:
        logo = self.logos.lookup(request.match_info["key"])
        if logo is None:
            raise web.HTTPNotFound()
        return web.Response(body=logo.data, content_type=logo.content_type, headers=_SECURITY_HEADERS)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})  # fmt: skip
        await response.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=4)
        self._clients.add(queue)
        try:
            if self._frame is not None:
                await response.write(_event(self._frame))
            while True:
                try:
                    frame = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")  # finds dead connections
                    continue
                if frame is None:
                    break
                await response.write(_event(frame))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(queue)
        return response

    async def _ack(self, request: web.Request) -> web.Response:
        try:
            seq = int((await request.json())["seq"])
        except (ValueError, KeyError, TypeError):
            raise web.HTTPBadRequest(text="seq: a frame number is required") from None
        if seq > self._acked:
            self._acked = seq
            self._ack_changed.set()
        return web.Response(status=204)

    async def _locale(self, request: web.Request) -> web.Response:
        try:
            locale = (await request.json())["locale"]
        except (ValueError, KeyError, TypeError):
            locale = None
        if locale not in self.locales:
            raise web.HTTPBadRequest(text="locale: not one of this kiosk's languages")
        if self.on_locale is not None:
            self.on_locale(locale)
        return web.Response(status=204)

    async def _status(self, request: web.Request) -> web.Response:
        doc = dict(self.status() if self.status else {})
        doc["screen"] = {"clients": self.clients, "frame": self._frame["state"] if self._frame else None}
        return web.json_response(doc, headers=_SECURITY_HEADERS)


def _write_atomically(path: Path, data: bytes) -> None:
    """A viewer of ``screen.png`` never sees half a frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _event(frame: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(frame, ensure_ascii=False).encode("utf-8") + b"\n\n"
