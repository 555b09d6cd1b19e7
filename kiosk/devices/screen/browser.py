"""Headless Chromium driven over the DevTools protocol: PNG frames of the kiosk page, and the
browser the tests use. Debian's ``chromium`` is used; nothing is ever downloaded.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["HeadlessBrowser", "BrowserError", "find_chromium"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


class BrowserError(RuntimeError):
    """Chromium is missing, would not start, or a DevTools call failed."""


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, _CANDIDATES) if path), None)


class HeadlessBrowser:
    """One headless Chromium with one page; ``async with HeadlessBrowser(800, 480) as browser``."""

    def __init__(self, width: int, height: int, *, start_timeout_s: float = 20.0) -> None:
        self.width = width
        self.height = height
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> HeadlessBrowser:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        binary = find_chromium()
        if binary is None:
            raise BrowserError("Chromium is not installed (Debian: apt-get install chromium)")
        self._profile = tempfile.TemporaryDirectory(prefix="kiosk-chromium-", ignore_cleanup_errors=True)
        arguments = [
            binary,
            "--headless=new",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--mute-audio",
            "--remote-debugging-port=0",
            f"--user-data-dir={self._profile.name}",
            f"--window-size={self.width},{self.height}",
            "about:blank",
        ]
        if os.geteuid() == 0:
            arguments.insert(1, "--no-sandbox")  # Chromium refuses to run its sandbox as root
        self._process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = await self._devtools_port(Path(self._profile.name) / "DevToolsActivePort")
        self._http = aiohttp.ClientSession()
        async with self._http.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        page = next(t for t in targets if t.get("type") == "page")
        self._socket = await self._http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024)
        await self.call("Page.enable")
        await self.set_viewport(self.width, self.height)

    async def _devtools_port(self, path: Path) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout_s
        while loop.time() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise BrowserError(f"Chromium exited with status {self._process.returncode}")
            if path.exists():
                first = path.read_text().split("\n", 1)[0].strip()
                if first.isdigit():
                    return int(first)
            await asyncio.sleep(0.05)
        raise BrowserError("Chromium did not open its DevTools port in time")

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; events that arrive meanwhile are skipped."""
        if self._socket is None:
            raise BrowserError("the browser is not started")
        async with self._lock:
            message_id = next(self._ids)
            await self._socket.send_str(json.dumps({"id": message_id, "method": method, "params": params}))
            while True:
                message = await self._socket.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise BrowserError(f"DevTools connection closed during {method}")
                reply = json.loads(message.data)
                if reply.get("id") == message_id:
                    if "error" in reply:
                        raise BrowserError(f"{method}: {reply['error'].get('message')}")
                    return reply.get("result", {})

    async def set_viewport(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        await self.call(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
        )

    async def run_on_every_page(self, source: str) -> None:
        """Run ``source`` in each page opened from now on, before the page's own scripts (the
        tests watch the page with it; DevTools scripts are not subject to the page's CSP)."""
        await self.call("Page.addScriptToEvaluateOnNewDocument", source=source)

    async def navigate(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout_s: float = 5.0) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            try:
                value = await self.evaluate(expression)
            except BrowserError:
                value = None
            if value:
                return value
            if loop.time() > deadline:
                raise BrowserError(f"timed out waiting for {expression}")
            await asyncio.sleep(0.02)

    async def screenshot(self) -> bytes:
        result = await self.call("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._http is not None:
            await self._http.close()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                await asyncio.to_thread(self._process.wait, 5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        if self._profile is not None:
            self._profile.cleanup()
