"""Offline issuance at the edge: keeping the cached pools topped up, claiming from them when the
backend cannot answer in time, and forwarding every offline issuance until the backend has it.

Forwarding is at-least-once with idempotency keys (the backend counts each key once), in batches,
retried with exponential backoff and jitter. Pools are topped up when a shop's unclaimed codes fall
below the watermark and on a schedule.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import httpx

from kiosk.core.codes import PackagingCode
from kiosk.core.offline import OfflineLimits
from kiosk.core.outcomes import AlreadyReturned, IssuanceOutcome, Issued, NoneAvailable, OfflineLimited, Unavailable
from kiosk.issuance.issuer import OnlineIssuer
from kiosk.issuance.offline_pools_client import BundleRefused, OfflinePoolsClient
from kiosk.issuance.offline_store import AlreadyRewarded, OfflineStore, utc_now

__all__ = ["OfflineService", "FallbackIssuer", "SyncReport"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncReport:
    forwarded: int
    bundle_id: str | None
    codes_added: int


class OfflineService:
    def __init__(self, store: OfflineStore, client: OfflinePoolsClient, *, country: str, limits: OfflineLimits,
                 per_pool: int = 20, watermark: int = 5, sync_interval_s: float = 3600.0,
                 forward_interval_s: float = 10.0, batch_size: int = 500,
                 clock: Callable[[], datetime] = utc_now, monotonic: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.store = store
        self.client = client
        self.country = country
        self.limits = limits
        self.per_pool = per_pool
        self.watermark = watermark
        self.sync_interval_s = sync_interval_s
        self.forward_interval_s = forward_interval_s
        self.batch_size = batch_size
        self._clock = clock
        self._monotonic = monotonic
        #: (wall time the backend vouched for, monotonic time then): detects a clock that jumps.
        self._anchor: tuple[datetime, float] | None = None
        self._wake = asyncio.Event()

    # --- claims ---------------------------------------------------------------------------------

    def claim(self, packaging: str) -> Issued | str:
        """A durable offline issuance, or the reason there is none."""
        result = self.store.claim(packaging, country=self.country, limits=self.limits, now=self._clock(),
                                  expected_now=self.expected_now())  # fmt: skip
        if isinstance(result, str):
            return result
        self._wake.set()  # the forwarder should try soon
        return Issued(result.voucher, "offline", key=result.key)

    def expected_now(self) -> datetime | None:
        if self._anchor is None:
            return None
        wall, mono = self._anchor
        return wall + timedelta(seconds=self._monotonic() - mono)

    # --- talking to the backend -----------------------------------------------------------------

    async def forward(self) -> int:
        """Send every pending offline issuance; returns how many the backend answered for."""
        total = 0
        while True:
            pending = self.store.pending(self.batch_size)
            if not pending:
                return total
            results = await self.client.forward(pending)
            self.store.mark_forwarded(results)
            self._contact(None)
            total += len(results)
            if len(results) < len(pending):
                raise ValueError(f"the backend answered for {len(results)} of {len(pending)} issuances")

    async def sync(self, *, force: bool = False) -> SyncReport:
        """Forward what is pending, then reserve more codes when below the watermark (or forced)."""
        forwarded = await self.forward()
        bundle_id, added = None, 0
        if force or self.low():
            bundle = await self.client.reserve(self.per_pool, now=self._clock())
            added = self.store.import_bundle(bundle.doc, bundle.body, bundle.signature)
            bundle_id = bundle.id
            self._contact(bundle.issued_at)
        return SyncReport(forwarded, bundle_id, added)

    def low(self) -> bool:
        counts = [row["count"] for row in self.store.available()]
        return not counts or min(counts) < self.watermark

    async def run(self) -> None:
        """Forward often, top up on schedule; back off with jitter while the backend is away."""
        delay = self.forward_interval_s
        next_sync = 0.0
        while True:
            try:
                if self._monotonic() >= next_sync or self.low():
                    report = await self.sync()
                    next_sync = self._monotonic() + self.sync_interval_s
                    if report.bundle_id:
                        log.info("offline pools topped up: %d codes (bundle %s)", report.codes_added, report.bundle_id)
                else:
                    await self.forward()
                delay = self.forward_interval_s
            except (httpx.HTTPError, ValueError, BundleRefused) as exc:
                delay = min(delay * 2, 300.0)
                log.warning("offline sync failed (%s); next try in about %.0f s", exc, delay)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay * random.uniform(0.8, 1.2))
            except TimeoutError:
                pass

    def _contact(self, backend_time: datetime | None) -> None:
        self.store.note_contact(backend_time)
        if backend_time is not None:
            self._anchor = (backend_time.astimezone(timezone.utc), self._monotonic())


class FallbackIssuer:
    """Online first; the offline pools when the backend cannot give an answer in time."""

    def __init__(self, online: OnlineIssuer, store: OfflineStore, offline: OfflineService | None) -> None:
        self.online = online
        self.store = store
        self.offline = offline

    async def issue(self, code: PackagingCode) -> IssuanceOutcome:
        if self.store.rewarded(code.value):
            # Also covers an offline reward the backend has not heard of yet.
            return AlreadyReturned("this packaging has already earned a voucher at this kiosk")
        outcome = await self.online.issue(code)
        if isinstance(outcome, Issued):
            try:
                self.store.journal_online(outcome.key or "", code.value, outcome.voucher)
            except Exception:  # the voucher is the customer's even if the journal write failed
                log.exception("could not journal online voucher %s", outcome.voucher.code)
            return outcome
        if not isinstance(outcome, Unavailable) or self.offline is None:
            return outcome
        try:
            claimed = self.offline.claim(code.value)
        except AlreadyRewarded:
            return AlreadyReturned("this packaging has already earned a voucher at this kiosk")
        if isinstance(claimed, Issued):
            log.info("offline voucher %s for %s (online: %s)", claimed.voucher.code, code.value, outcome.reason)
            return claimed
        if claimed == "none_available":
            return NoneAvailable("no offline voucher for this packaging here")
        return OfflineLimited(f"offline: {claimed.replace('_', ' ')}")
