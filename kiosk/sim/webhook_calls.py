"""The stand-in backend's calls to shops' on-demand webhooks, each bounded as a whole.

httpx's timeouts bound each network operation, not the call: a webhook that dripped its body a
byte at a time, every byte well inside the read timeout, held a scan for 21 s. Here every call runs
on one asyncio loop (a thread of its own, shared by the backend's request threads) under
``asyncio.timeout``, which cancels whatever the call waits for when its time is up: connecting,
the headers or the body. An answer larger than 64 KiB is refused as soon as it says or shows so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

# The kiosk's scan client reads the backend's answers under the same cap, with the same reader.
from kiosk.http_answers import MAX_BODY_BYTES, BodyTooLarge, read_limited

__all__ = ["WebhookCaller", "WebhookAnswer", "WebhookFailed"]

_T = TypeVar("_T")


class WebhookFailed(Exception):
    """The webhook gave no whole HTTP answer in time; the message says why (never what it sent)."""


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    #: Only a 2xx answer's body is read; any other status is a failure whatever it says.
    body: bytes


class WebhookCaller:
    """POSTs to webhooks with one bound on each whole call; thread-safe, one per backend."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="webhook-calls", daemon=True)
        self._thread.start()
        self._http = self._run(self._open())

    async def _open(self) -> httpx.AsyncClient:
        # No per-operation timeouts: the call's own bound is the only one. No proxies from the
        # environment: the backend talks to the shop directly. Redirects are not followed (a 3xx is
        # not an answer), as the seed's contract expects a 2xx from the webhook_url itself.
        return httpx.AsyncClient(timeout=None, follow_redirects=False, trust_env=False)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> WebhookAnswer:
        """Send one request; ``WebhookFailed`` when there is no whole answer within the bound."""
        try:
            return self._run(self._post(url, body, headers))
        except concurrent.futures.CancelledError:
            raise WebhookFailed("the backend is stopping") from None

    def close(self) -> None:
        """Cancel the calls still running, close the connections and stop the loop."""
        if self._loop.is_closed():
            return
        self._run(self._shut_down())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _shut_down(self) -> None:
        running = asyncio.all_tasks() - {asyncio.current_task()}
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await self._http.aclose()

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> WebhookAnswer:
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._http.stream("POST", url, content=body, headers=headers) as response:
                    if not 200 <= response.status_code < 300:
                        return WebhookAnswer(response.status_code, b"")
                    return WebhookAnswer(response.status_code, await read_limited(response))
        except TimeoutError:
            raise WebhookFailed(f"no whole answer within {self.timeout_s:g} s") from None
        except BodyTooLarge:
            raise WebhookFailed(f"answer larger than {MAX_BODY_BYTES} bytes") from None
        except httpx.HTTPError as exc:
            raise WebhookFailed(f"no answer: {type(exc).__name__}") from None
