"""The part of RE-ZIP's shop API that ``kiosk shop export-batch`` uses: a pool, its batches, their codes.

``GET /shops/{id}/vouchers/pools/{pool}``, ``POST /shops/{id}/vouchers/batches`` (``{voucher_pool_id,
type, value, unit, conditions, expires_at}``) and ``POST /shops/{id}/vouchers`` (``{voucher_batch_id,
codes: [{code, link}]}``; a code already in the batch is skipped, so an upload may be sent again),
with ``Accept-Version: 2.0`` and the shop's token (``Bearer`` or ``Pat``), as RE-ZIP's seed documents
show them. Verified TLS (plain http only to this machine), bounded answers, no redirects. A refusal
is ``RezipApiError`` carrying RE-ZIP's ``{message}`` (cleaned, cut short) and whether asking again
may help; the token never appears in one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from kiosk import __version__
from kiosk.core.text import clean_text
from kiosk.http_answers import BodyTooLarge, json_or_none, read_limited, tls_context
from kiosk.logs import never_log

__all__ = ["RezipShopApi", "RezipApiError"]

_MESSAGE_CHARS = 200


class RezipApiError(Exception):
    """RE-ZIP refused or could not be reached; ``retry`` when asking again later may succeed."""

    def __init__(self, message: str, *, status: int | None = None, retry: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry


class RezipShopApi:
    """One shop's pools, batches and codes at RE-ZIP; ``aclose`` when done."""

    def __init__(
        self, api_url: str, shop_id: str, token: str, *, auth_scheme: str = "Bearer", timeout_s: float = 30.0
    ) -> None:
        never_log(token)
        self.shop_id = shop_id
        self._http = httpx.AsyncClient(
            base_url=api_url.rstrip("/"),
            timeout=timeout_s,
            verify=tls_context(None),
            follow_redirects=False,
            trust_env=False,
            headers={
                "Accept": "application/json",
                "Accept-Version": "2.0",
                "Authorization": f"{auth_scheme} {token}",
                "User-Agent": f"rezip-shop/{__version__}",
            },
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _path(self, *parts: str) -> str:
        return "/".join(["", "shops", quote(self.shop_id, safe=""), "vouchers", *(quote(p, safe="") for p in parts)])

    async def pool(self, pool_id: str) -> Mapping[str, Any]:
        """The pool, so an export learns before it publishes anything that it exists and is static."""
        return await self._call("GET", self._path("pools", pool_id))

    async def create_batch(self, pool_id: str, fields: Mapping[str, Any]) -> str:
        """A new batch of ``pool_id`` with the vouchers' shared fields; its id."""
        batch = await self._call("POST", self._path("batches"), {"voucher_pool_id": pool_id, **fields})
        batch_id = batch.get("id")
        if not isinstance(batch_id, str) or not batch_id:
            raise RezipApiError("RE-ZIP's answer to a new batch holds no batch id")
        return batch_id

    async def add_codes(self, batch_id: str, codes: Sequence[tuple[str, str | None]]) -> int:
        """Upload codes with their links; how many were new to the batch."""
        answer = await self._call(
            "POST",
            self._path(),
            {"voucher_batch_id": batch_id, "codes": [{"code": code, "link": link} for code, link in codes]},
        )
        added = answer.get("added")
        return added if isinstance(added, int) and not isinstance(added, bool) else 0

    async def _call(self, method: str, path: str, body: Any = None) -> Mapping[str, Any]:
        try:
            async with self._http.stream(method, path, json=body) as response:
                raw = await read_limited(response)
        except httpx.HTTPError as exc:
            raise RezipApiError(f"RE-ZIP could not be reached ({type(exc).__name__})", retry=True) from None
        except BodyTooLarge:
            raise RezipApiError("RE-ZIP's answer is larger than expected") from None
        doc = json_or_none(raw)
        status = response.status_code
        if 200 <= status < 300 and isinstance(doc, dict):
            return doc
        message = doc.get("message") if isinstance(doc, dict) else None
        said = clean_text(message, multiline=False)[:_MESSAGE_CHARS] if isinstance(message, str) else ""
        reason = f"HTTP {status}" + (f": {said}" if said else "")
        if status in (401, 403):
            raise RezipApiError(f"RE-ZIP refused the shop's token ({reason}); check rezip.token_file", status=status)
        raise RezipApiError(f"RE-ZIP answered {reason}", status=status, retry=status == 429 or status >= 500)
