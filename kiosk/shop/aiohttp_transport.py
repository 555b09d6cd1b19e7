"""httpx's transport interface on aiohttp's client: the Voucherify client's connections.

Why: under the shop webhook's bursts (200 deliveries at once, 16 Voucherify calls in flight)
httpx's own pool (httpcore) cost 1.1-2.4 ms of CPU per request against aiohttp's 0.3 ms, on the
one event loop every delivery shares. httpcore hands out connections by scanning every connection
for every queued request, and asks each idle one whether its socket became readable (a poll and
anyio's attribute lookups each time); aiohttp's pool keeps free connections in a list and learns
of a server's close from the event loop. httpx stays the client's interface (its requests and
answers, its timeouts and exceptions, and the transport the tests slide under the client to check
every request against Voucherify's spec); only the wire below it changes.

What it keeps to: TLS with the caller's context, no redirects followed (httpx decides), no
cookies kept, the body left encoded for httpx to decode, no proxy from the environment, httpx's
connect/read/pool timeouts per request, and aiohttp's failures as httpx's exceptions of the same
meaning (a timeout, a refused or broken connection, an answer that is not HTTP).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import NoReturn

import aiohttp
import httpx
from yarl import URL

__all__ = ["AiohttpTransport"]

#: Set by aiohttp from the body it sends, or meaningless on a connection it manages itself.
_LEFT_TO_AIOHTTP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (made on first use, in the loop that uses it) under an httpx client."""

    def __init__(self, *, ssl_context: ssl.SSLContext, max_connections: int, keepalive_expiry_s: float) -> None:
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._keepalive_s = keepalive_expiry_s
        self._session: aiohttp.ClientSession | None = None

    def _opened(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, keepalive_timeout=self._keepalive_s, ssl=self._ssl
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        headers = [(name, value) for name, value in request.headers.multi_items() if name not in _LEFT_TO_AIOHTTP]
        body = await request.aread()
        try:
            answer = await self._opened().request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeouts.get("pool"),
                    sock_connect=timeouts.get("connect"),
                    sock_read=timeouts.get("read"),
                ),
            )
        except aiohttp.ClientError as exc:
            _raise_as_httpx(exc, request, connecting=True)
        return httpx.Response(
            answer.status,
            headers=list(answer.raw_headers),  # bytes as received: httpx keeps what is not ASCII as it came
            stream=_AnswerBody(answer, request),
            extensions={"reason_phrase": (answer.reason or "").encode("latin-1", "replace")},
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _AnswerBody(httpx.AsyncByteStream):
    """An answer's body as aiohttp reads it. Released when done, read or not: aiohttp gives the
    connection back to its pool only when the whole answer came off it, and closes it otherwise."""

    def __init__(self, answer: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._answer = answer
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._answer.content.iter_any():
                yield chunk
        except aiohttp.ClientError as exc:
            _raise_as_httpx(exc, self._request, connecting=False)

    async def aclose(self) -> None:
        self._answer.release()


def _raise_as_httpx(exc: aiohttp.ClientError, request: httpx.Request, *, connecting: bool) -> NoReturn:
    """aiohttp's failure as the httpx exception that means the same, which the client types."""
    kind: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        kind = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(exc, aiohttp.ClientOSError):
        kind = httpx.ConnectError if connecting else httpx.ReadError
    else:  # a server that hung up mid-answer, or answered with something that is not HTTP
        kind = httpx.RemoteProtocolError
    raise kind(type(exc).__name__, request=request) from exc
