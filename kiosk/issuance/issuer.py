"""Issuance: turn a packaging code into an outcome for the flow, within a deadline.

The online path asks the RE-ZIP backend. While a ``429`` holds us off, the backend is not asked at
all until ``Retry-After`` has passed, so a burst of scans cannot deepen a lockout.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from kiosk.core.codes import PackagingCode
from kiosk.core.outcomes import (
    AlreadyReturned,
    IssuanceOutcome,
    Issued,
    NoneAvailable,
    Refused,
    Unavailable,
)
from kiosk.issuance.rezip_client import (
    ScanAccepted,
    ScanAlreadyReturned,
    ScanRateLimited,
    ScanRefused,
    ScanResult,
)

__all__ = ["Issuer", "OnlineIssuer", "new_idempotency_key"]


class Issuer(Protocol):
    """What the kiosk shell needs from issuance."""

    async def issue(self, code: PackagingCode) -> IssuanceOutcome: ...


class _ScanBackend(Protocol):
    async def scan(self, code: PackagingCode, idempotency_key: str) -> ScanResult: ...


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


class OnlineIssuer:
    """Issue through the RE-ZIP backend, never taking longer than ``deadline_s``."""

    def __init__(
        self,
        client: _ScanBackend,
        *,
        deadline_s: float = 2.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._deadline_s = deadline_s
        self._clock = clock
        self._blocked_until = 0.0

    async def issue(self, code: PackagingCode, *, key: str | None = None) -> IssuanceOutcome:
        """Ask the backend, with ``key`` as the scan's idempotency key (a new one if None)."""
        wait = self._blocked_until - self._clock()
        if wait > 0:
            return Unavailable(f"rate limited by the backend for another {wait:.0f} s")
        key = key or new_idempotency_key()
        try:
            async with asyncio.timeout(self._deadline_s):
                result = await self._client.scan(code, key)
        except TimeoutError:
            return Unavailable(f"no answer within {self._deadline_s:g} s", attempt_key=key)
        if isinstance(result, ScanRateLimited):
            self._blocked_until = self._clock() + result.retry_after_s
        return outcome_of(result, key)


def outcome_of(result: ScanResult, key: str | None = None) -> IssuanceOutcome:
    """Map the client's detailed result onto what the flow distinguishes."""
    if isinstance(result, ScanAccepted):
        if result.voucher is None:
            return NoneAvailable("no voucher is available for this packaging here")
        return Issued(result.voucher, "online", key=key)
    if isinstance(result, ScanAlreadyReturned):
        return AlreadyReturned(result.message)
    if isinstance(result, ScanRefused):
        return Refused(result.message)
    reason = getattr(result, "message", None) or getattr(result, "reason", "")
    return Unavailable(f"{type(result).__name__.removeprefix('Scan')}: {reason}", attempt_key=key)
