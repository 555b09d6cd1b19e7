"""Shop logos for the screen and the paper: fetched once, checked, cached, never waited on long.

A logo URL comes from the backend, so it is untrusted: only https (or http on loopback, for the
stand-in) is fetched, the answer must be a PNG, JPEG, GIF or WebP of at most ``max_bytes`` and 2048 px
a side (checked from its header before any pixel is decoded), and it must decode completely and
convert to grey (what the paper does with it) before it is cached: a logo that cannot be drawn is
left out, never a reason for a screen or a print job to fail. A fetch that fails is not retried for
``retry_after_s``. Callers wait at most their budget; a slow logo simply appears on the next voucher
of that shop. The cache is bounded in memory and on disk, and its files are private (0600 in a 0700
folder).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from kiosk.core.urls import is_web_url
from kiosk.secret_files import private_directory, write_secret_file

__all__ = ["Logo", "LogoCache"]

log = logging.getLogger(__name__)

_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
MAX_SIDE_PX = 2048
#: Logos kept in memory and on disk; a shop has one, a kiosk serves a few dozen shops.
MAX_LOGOS = 64
MAX_FILES = 256


@dataclass(frozen=True)
class Logo:
    key: str
    content_type: str
    data: bytes


class LogoCache:
    def __init__(
        self,
        directory: Path | None = None,
        *,
        max_bytes: int = 512 * 1024,
        timeout_s: float = 3.0,
        retry_after_s: float = 300.0,
        plain_loopback: bool = False,
    ) -> None:
        """``plain_loopback`` allows http logos on this machine itself: only for a kiosk whose backend
        is on loopback too (the stand-in), so that a shop profile cannot make a kiosk in the field
        send requests to the services of its own machine."""
        self.directory = directory
        self.plain_loopback = plain_loopback
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._logos: OrderedDict[str, Logo] = OrderedDict()
        self._failed: OrderedDict[str, float] = OrderedDict()
        self._pending: dict[str, asyncio.Task[Logo | None]] = {}
        if directory is not None:
            private_directory(directory)

    @staticmethod
    def key_of(url: str) -> str:
        return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]

    def lookup(self, key: str) -> Logo | None:
        return self._logos.get(key)

    async def prefetch(self, urls: list[str]) -> None:
        """Fetch these logos into the cache now (after an offline top-up: the backend that serves
        them may be unreachable when an offline voucher needs one)."""
        await asyncio.gather(*(self.get(url, self.timeout_s + 1) for url in urls[:MAX_LOGOS]))

    async def get(self, url: str, budget_s: float) -> Logo | None:
        """The logo if it is (or becomes) ready within ``budget_s``; fetching goes on regardless."""
        key = self.key_of(url)
        if key in self._logos:
            self._logos.move_to_end(key)
            return self._logos[key]
        if time.monotonic() - self._failed.get(key, -1e9) < self.retry_after_s:
            return None
        task = self._pending.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(url, key))
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        try:
            return await asyncio.wait_for(asyncio.shield(task), budget_s)
        except TimeoutError:
            return None

    async def _load(self, url: str, key: str) -> Logo | None:
        try:
            logo = await asyncio.to_thread(self._from_disk, key) or await self._fetch(url, key)
        except Exception:  # a logo is decoration: whatever fails, the voucher goes on without it
            log.exception("logo %s could not be loaded", key)
            logo = None
        if logo is None:
            self._failed[key] = time.monotonic()
            while len(self._failed) > MAX_FILES:
                self._failed.popitem(last=False)
        else:
            self._logos[key] = logo
            while len(self._logos) > MAX_LOGOS:
                self._logos.popitem(last=False)
        return logo

    async def _fetch(self, url: str, key: str) -> Logo | None:
        if not is_web_url(url) or (not self.plain_loopback and not url.startswith("https:")):
            log.warning("logo %s refused: only https is fetched", key)
            return None
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
                async with client.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise ValueError(f"HTTP {response.status_code}")
                    data = bytearray()
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) > self.max_bytes:
                            raise ValueError(f"larger than {self.max_bytes} bytes")
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("logo %s not fetched: %s", key, str(exc)[:200])
            return None
        logo = await asyncio.to_thread(_checked, key, bytes(data))
        if logo is not None:
            await asyncio.to_thread(self._to_disk, logo)
        return logo

    def _from_disk(self, key: str) -> Logo | None:
        if self.directory is None:
            return None
        path = self.directory / f"{key}.img"
        return _checked(key, path.read_bytes()) if path.is_file() else None

    def _to_disk(self, logo: Logo) -> None:
        if self.directory is None:
            return
        partial = self.directory / f"{logo.key}.img.partial"
        write_secret_file(partial, logo.data)
        partial.replace(self.directory / f"{logo.key}.img")
        files = sorted(self.directory.glob("*.img"), key=lambda path: path.stat().st_mtime)
        for old in files[:-MAX_FILES]:
            old.unlink(missing_ok=True)


def _checked(key: str, data: bytes) -> Logo | None:
    """A logo only if it is one of the allowed types and sizes and decodes and converts completely
    (``verify()`` alone passes truncated and otherwise undrawable files)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format or ""
                width, height = image.size
                if kind not in _TYPES or not (0 < width <= MAX_SIDE_PX and 0 < height <= MAX_SIDE_PX):
                    log.warning("logo %s refused: %s %sx%s", key, kind or "unknown", width, height)
                    return None
                image.load()
                image.convert("L")
    except Exception as exc:  # Pillow raises many types for bad images
        log.warning("logo %s refused: not a readable image (%s)", key, type(exc).__name__)
        return None
    return Logo(key, _TYPES[kind], data)
