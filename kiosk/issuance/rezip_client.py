"""The RE-ZIP backend client for a kiosk scan: ``POST /me/packaging/scan``.

Every answer, good or bad, becomes one of the typed results below; nothing the backend or the
network does escapes as an exception. What we assume about the scan answer, which RE-ZIP documents
only on its sandbox:

- ``{id, type: "Voucher"|"Ticket", created_at, updated_at, deleted_at, data}``, ``data`` =
  ``{code, conditions, expires_at, value, value_data, link, shop}``, all nullable.
- ``value_data`` carries the seed voucher model's discount: ``{type, value, unit}``. ``value`` is a
  display string we do not rely on. ``link`` is read from ``data`` (or ``value_data``) when present.
- ``data`` null, or ``data.code`` null, means the return counted but no voucher was available.
- ``409`` means the packaging item has been rewarded before; other 4xx mean the backend refuses the
  code; ``401``/``403`` mean our credentials are wrong; ``429`` carries ``Retry-After``.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from kiosk import __version__
from kiosk.core.codes import PackagingCode
from kiosk.core.text import clean_text
from kiosk.core.voucher import (
    DEFAULT_LINK_SCHEMES,
    Voucher,
    VoucherError,
    parse_shop,
    parse_voucher,
)
from kiosk.http_answers import MAX_BODY_BYTES, BodyTooLarge, json_or_none, read_limited, retry_after_s, tls_context

__all__ = [
    "RezipClient",
    "ScanAccepted",
    "ScanAlreadyReturned",
    "ScanRefused",
    "ScanRateLimited",
    "ScanAuthFailed",
    "ScanServerError",
    "ScanNetworkError",
    "ScanInvalidBody",
    "ScanResult",
    "MAX_BODY_BYTES",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanAccepted:
    """The return counted. ``voucher`` is None when no pool had one for it."""

    scan_id: str | None
    kind: Literal["voucher", "ticket"]
    voucher: Voucher | None


@dataclass(frozen=True)
class ScanAlreadyReturned:
    message: str


@dataclass(frozen=True)
class ScanRefused:
    status: int
    message: str


@dataclass(frozen=True)
class ScanRateLimited:
    retry_after_s: float
    message: str


@dataclass(frozen=True)
class ScanAuthFailed:
    status: int
    message: str


@dataclass(frozen=True)
class ScanServerError:
    status: int
    message: str


@dataclass(frozen=True)
class ScanNetworkError:
    reason: str
    #: The connection failed before any answer began (a kept-alive connection that had gone away).
    stale: bool = False


@dataclass(frozen=True)
class ScanInvalidBody:
    reason: str


ScanResult = (
    ScanAccepted
    | ScanAlreadyReturned
    | ScanRefused
    | ScanRateLimited
    | ScanAuthFailed
    | ScanServerError
    | ScanNetworkError
    | ScanInvalidBody
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RezipClient:
    """Async client for the scan endpoint; one instance per kiosk, reused for every scan."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        drop_point_location_id: str,
        hardware_id: str,
        auth_scheme: str = "Pat",
        connect_timeout_s: float = 1.0,
        read_timeout_s: float = 2.0,
        ca_file: Path | None = None,
        link_schemes: Iterable[str] = DEFAULT_LINK_SCHEMES,
        on_descriptors_short: Callable[[], object] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """``on_descriptors_short()`` is called when a connection fails for want of file
        descriptors (the kiosk then sheds page clients, and the scan is asked again)."""
        self.drop_point_location_id = drop_point_location_id
        self._clock = clock
        self.hardware_id = hardware_id
        self._link_schemes = frozenset(link_schemes)
        tls = tls_context(ca_file)

        def connection() -> httpx.AsyncClient:
            return httpx.AsyncClient(
                base_url=base_url.rstrip("/"),
                timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
                verify=tls,
                headers={
                    "Accept": "application/json",
                    "Accept-Version": "2.0",
                    "Authorization": f"{auth_scheme} {token}",
                    "User-Agent": f"rezip-kiosk/{__version__}",
                },
                follow_redirects=False,
                # Keep the TLS connection to the backend warm between customers: a new handshake on
                # every scan would cost more than the rest of the issuance.
                limits=httpx.Limits(max_keepalive_connections=2, keepalive_expiry=120.0),
            )

        self._connection = connection
        self._on_descriptors_short = on_descriptors_short
        self._http = connection()
        #: Scans have a connection of their own, replaced after any answer that leaves its state in
        #: doubt, so a broken answer (a body where none may be, a length that lies) cannot poison the
        #: next customer's request on a kept-alive connection.
        self._scan_http = connection()

    @property
    def http(self) -> httpx.AsyncClient:
        """The configured connection (auth, TLS, timeouts), for the offline-pools client."""
        return self._http

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._scan_http.aclose()

    async def scan(self, code: PackagingCode, idempotency_key: str) -> ScanResult:
        """Report one packaging scan; retrying with the same key must not earn a second reward."""
        result = await self._scan_once(code, idempotency_key)
        if isinstance(result, ScanNetworkError) and result.stale:
            # A kept-alive connection the server had already closed: ask again, once, on a new one
            # (the idempotency key makes the second request the same scan as the first).
            result = await self._scan_once(code, idempotency_key)
        if isinstance(result, (ScanNetworkError, ScanInvalidBody, ScanServerError)):
            stale, self._scan_http = self._scan_http, self._connection()
            await stale.aclose()
        return result

    async def _scan_once(self, code: PackagingCode, idempotency_key: str) -> ScanResult:
        body = {
            "barcode": code.value,
            "drop_point_location_id": self.drop_point_location_id,
            "hardware_id": self.hardware_id,
        }
        sent = False
        try:
            async with self._scan_http.stream(
                "POST",
                "/me/packaging/scan",
                json=body,
                headers={"Idempotency-Key": idempotency_key},
            ) as response:
                sent = True
                raw = await read_limited(response)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            return ScanNetworkError(f"{type(exc).__name__}: {exc}"[:200], stale=not sent)
        except httpx.ConnectError as exc:
            # Out of file descriptors: the page's clients give some back, and the scan is asked again.
            shed = self._on_descriptors_short
            short = _out_of_descriptors(exc) and shed is not None
            if shed is not None and short:
                shed()
            return ScanNetworkError(f"{type(exc).__name__}: {exc}"[:200], stale=short)
        except httpx.TimeoutException as exc:
            return ScanNetworkError(f"timeout: {type(exc).__name__}")
        except httpx.TransportError as exc:
            return ScanNetworkError(f"{type(exc).__name__}: {exc}"[:200])
        except httpx.HTTPError as exc:  # e.g. a body whose content encoding does not decode
            return ScanInvalidBody(f"{type(exc).__name__}: {exc}"[:200])
        except BodyTooLarge:
            return ScanInvalidBody(f"answer larger than {MAX_BODY_BYTES} bytes")
        except Exception as exc:  # whatever the network or the body does, the kiosk falls back
            log.warning("scan request failed in an unexpected way: %s", type(exc).__name__, exc_info=True)
            return ScanNetworkError(f"unexpected {type(exc).__name__}")
        try:
            return self._interpret(response, raw)
        except Exception as exc:  # a body no rule foresaw is still only a bad body
            log.warning("scan answer could not be read: %s", type(exc).__name__, exc_info=True)
            return ScanInvalidBody(f"unreadable answer ({type(exc).__name__})")

    def _interpret(self, response: httpx.Response, raw: bytes) -> ScanResult:
        status = response.status_code
        doc = json_or_none(raw)
        message = _message(doc) or response.reason_phrase or f"HTTP {status}"
        if status == 429:
            return ScanRateLimited(retry_after_s(response.headers.get("Retry-After")), message)
        if status >= 500:
            return ScanServerError(status, message)
        if status in (401, 403):
            return ScanAuthFailed(status, message)
        if status == 409:
            return ScanAlreadyReturned(message)
        if 400 <= status < 500:
            return ScanRefused(status, message)
        if not 200 <= status < 300:
            return ScanServerError(status, f"unexpected HTTP {status}")
        if doc is None:
            return ScanInvalidBody("answer is not JSON")
        try:
            return self._accepted(doc)
        except VoucherError as exc:
            return ScanInvalidBody(str(exc))

    def _accepted(self, doc: Any) -> ScanAccepted:
        if not isinstance(doc, dict):
            raise VoucherError("answer", "expected a JSON object")
        kind_text = doc.get("type")
        if kind_text not in ("Voucher", "Ticket"):
            raise VoucherError("type", 'must be "Voucher" or "Ticket"')
        kind: Literal["voucher", "ticket"] = "voucher" if kind_text == "Voucher" else "ticket"
        scan_id = doc.get("id")
        if scan_id is not None and not isinstance(scan_id, str):
            raise VoucherError("id", "must be text")
        data = doc.get("data")
        if data is None:
            return ScanAccepted(scan_id, kind, None)
        if not isinstance(data, dict):
            raise VoucherError("data", "expected a JSON object or null")
        if data.get("code") is None:
            return ScanAccepted(scan_id, kind, None)
        value_data = data.get("value_data")
        if not isinstance(value_data, dict):
            raise VoucherError("data.value_data", "expected an object with type, value and unit")
        shop = parse_shop(data["shop"]) if data.get("shop") is not None else None
        seed = {
            "code": data.get("code"),
            "link": data.get("link", value_data.get("link")),
            "type": value_data.get("type"),
            "value": value_data.get("value"),
            "unit": value_data.get("unit"),
            "conditions": data.get("conditions"),
            "expires_at": data.get("expires_at"),
        }
        voucher = parse_voucher(seed, shop=shop, link_schemes=self._link_schemes, now=self._clock())
        return ScanAccepted(scan_id, kind, voucher)


def _out_of_descriptors(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # the chain from httpx down to the socket is a few links long
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in (errno.EMFILE, errno.ENFILE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _message(doc: Any) -> str | None:
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return clean_text(doc["message"][:300], multiline=False)
    return None
