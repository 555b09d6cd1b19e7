"""Shop logos for the screen and the paper: fetched once, checked, cached, never waited on long.

A logo URL comes from the backend, so it is untrusted: only https (or http on loopback, for the
stand-in) is fetched, the answer must be a PNG, JPEG, GIF or WebP that Pillow can open, at most
``max_bytes`` and 2048 px a side. A fetch that fails is not retried for ``retry_after_s``. Callers
wait at most their budget; a slow logo simply appears on the next voucher of that shop.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from PIL import Image

__all__ = ["Logo", "LogoCache"]

log = logging.getLogger(__name__)

_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_SIDE_PX = 2048


@dataclass(frozen=True)
class Logo:
    key: str
    content_type: str
    data: bytes


class LogoCache:
    def __init__(self, directory: Path | None = None, *, max_bytes: int = 512 * 1024,
                 timeout_s: float = 3.0, retry_after_s: float = 300.0) -> None:  # fmt: skip
        self.directory = directory
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._logos: dict[str, Logo] = {}
        self._failed: dict[str, float] = {}
        self._pending: dict[str, asyncio.Task[Logo | None]] = {}
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key_of(url: str) -> str:
        return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]

    def lookup(self, key: str) -> Logo | None:
        return self._logos.get(key)

    async def get(self, url: str, budget_s: float) -> Logo | None:
        """The logo if it is (or becomes) ready within ``budget_s``; fetching goes on regardless."""
        key = self.key_of(url)
        if key in self._logos:
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
        logo = await asyncio.to_thread(self._from_disk, key) or await self._fetch(url, key)
        if logo is None:
            self._failed[key] = time.monotonic()
        else:
            self._logos[key] = logo
        return logo

    async def _fetch(self, url: str, key: str) -> Logo | None:
        parts = urlsplit(url)
        if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)):
            log.warning("logo %s refused: only https is fetched", url[:100])
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
            log.warning("logo %s not fetched: %s", url[:100], exc)
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
        if self.directory is not None:
            partial = self.directory / f"{logo.key}.img.partial"
            partial.write_bytes(logo.data)
            partial.replace(self.directory / f"{logo.key}.img")


def _checked(key: str, data: bytes) -> Logo | None:
    """A logo only if Pillow recognises it as one of the allowed types and sizes."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format or ""
            width, height = image.size
            image.verify()
    except Exception as exc:  # Pillow raises many types for bad images
        log.warning("logo refused: not a readable image (%s)", type(exc).__name__)
        return None
    if kind not in _TYPES or not (0 < width <= MAX_SIDE_PX and 0 < height <= MAX_SIDE_PX):
        log.warning("logo refused: %s %sx%s", kind, width, height)
        return None
    return Logo(key, _TYPES[kind], data)
