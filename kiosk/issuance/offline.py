"""Offline issuance at the edge: keeping the cached pools topped up, claiming from them when the
backend cannot answer in time, and forwarding every offline issuance until the backend has it.

Forwarding is at-least-once with idempotency keys (the backend counts each key once), in batches,
retried with exponential backoff and jitter. Pools are topped up when a shop's unclaimed codes fall
below the watermark and on a schedule, and the shops' logos are fetched into the cache then, so an
offline voucher shows its logo too. Whatever goes wrong in a round (the backend away, a bundle that
is refused, a full disk) is logged and the next round comes after the back-off: the loop itself
never ends.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from kiosk.core.bundle import BundleError
from kiosk.core.codes import PackagingCode
from kiosk.core.offline import OfflineLimits
from kiosk.core.outcomes import AlreadyReturned, IssuanceOutcome, Issued, NoneAvailable, OfflineLimited, Unavailable
from kiosk.issuance.issuer import OnlineIssuer
from kiosk.issuance.offline_pools_client import BundleRefused, OfflinePoolsClient
from kiosk.issuance.offline_store import AlreadyRewarded, OfflineStore, Unshown, utc_now
from kiosk.logs import fingerprint

__all__ = [
    "OfflineService",
    "FallbackIssuer",
    "SyncReport",
    "ReleaseReport",
    "Resumption",
    "plan_resumption",
    "MAX_RICH_ATTEMPTS",
]

log = logging.getLogger(__name__)


#: A voucher whose showing began this often without ever finishing is shown in its plain form.
MAX_RICH_ATTEMPTS = 2


@dataclass(frozen=True)
class Resumption:
    """What a start-up does with the journal's vouchers that nobody saw."""

    resume: Unshown | None
    #: Show (and print) it in the plain form: earlier attempts never finished.
    plain: bool
    #: Older ones, superseded by a newer voucher, expired ones, and ones whose record cannot be read.
    superseded: tuple[Unshown, ...]


def plan_resumption(unshown: list[Unshown], now: datetime) -> Resumption:
    """The newest readable, unexpired voucher nobody saw is shown again (the customer at the kiosk
    when it stopped is the one most likely still there); older ones were superseded by a newer scan,
    and an expired one is never shown as valid. A voucher that keeps bringing the kiosk down
    (``MAX_RICH_ATTEMPTS``) is shown plainly, so it can never block start-up."""
    readable = [
        entry
        for entry in unshown
        if entry.voucher is not None and (entry.voucher.expires_at is None or entry.voucher.expires_at > now)
    ]
    newest = readable[-1] if readable else None
    superseded = tuple(entry for entry in unshown if entry is not newest)
    plain = newest is not None and newest.display_attempts >= MAX_RICH_ATTEMPTS
    return Resumption(newest, plain, superseded)


@dataclass(frozen=True)
class SyncReport:
    """What one ``sync`` did: issuances forwarded, and the bundle of codes reserved (if any)."""

    forwarded: int
    bundle_id: str | None
    codes_added: int

    def to_json(self) -> dict[str, Any]:
        return {"forwarded": self.forwarded, "bundle_id": self.bundle_id, "codes_added": self.codes_added}


@dataclass(frozen=True)
class ReleaseReport:
    """What ``release_all`` did: issuances forwarded first, then each bundle's codes given back."""

    forwarded: int
    #: Bundle id → how many of its codes the backend took back.
    released: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"forwarded": self.forwarded, "released": dict(self.released)}


class OfflineService:
    def __init__(
        self,
        store: OfflineStore,
        client: OfflinePoolsClient,
        *,
        country: str,
        limits: OfflineLimits,
        per_pool: int = 20,
        watermark: int = 5,
        sync_interval_s: float = 3600.0,
        forward_interval_s: float = 10.0,
        batch_size: int = 500,
        prefetch_logos: Callable[[list[str]], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``prefetch_logos(urls)`` fetches shop logos into the cache after a top-up."""
        self.store = store
        self.client = client
        self.country = country
        self.limits = limits
        self.per_pool = per_pool
        self.watermark = watermark
        self.sync_interval_s = sync_interval_s
        self.forward_interval_s = forward_interval_s
        self.batch_size = batch_size
        self.prefetch_logos = prefetch_logos
        self.on_contact: Callable[[bool], None] | None = None
        self._clock = clock
        self._monotonic = monotonic
        #: (wall time the backend vouched for, monotonic time then): detects a clock that jumps.
        self._anchor: tuple[datetime, float] | None = None
        self._wake = asyncio.Event()
        self._jitter = random.Random()  # its own: the process's shared random state is left alone

    # --- claims ---------------------------------------------------------------------------------

    def claim(self, packaging: str, *, online_attempt_key: str | None = None) -> Issued | str:
        """A durable offline issuance, or the reason there is none."""
        result = self.store.claim(
            packaging,
            country=self.country,
            limits=self.limits,
            now=self._clock(),
            expected_now=self.expected_now(),
            online_attempt_key=online_attempt_key,
        )
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
            total += len(results)
            if len(results) < len(pending):  # not a forward: no contact noted, the limits stand
                raise ValueError(f"the backend answered for {len(results)} of {len(pending)} issuances")
            self._contact(None)

    async def sync(self, *, force: bool = False) -> SyncReport:
        """Forward what is pending, then reserve more codes when below the watermark (or forced)."""
        forwarded = await self.forward()
        bundle_id, added = None, 0
        if force or self.low():
            bundle = await self.client.reserve(self.per_pool, now=self._clock())
            added = self.store.import_bundle(bundle.body, bundle.signature)
            bundle_id = bundle.id
            self._contact(bundle.issued_at)
            contents = bundle.contents
            if contents.refused:
                log.warning(
                    "offline bundle %s: %d codes left out (first: %s)",
                    bundle_id,
                    len(contents.refused),
                    contents.refused[0][1],
                )
            urls = sorted({shop.logo_url for shop in contents.shops.values() if shop.logo_url})
            if urls and self.prefetch_logos is not None:
                await self.prefetch_logos(urls)
        return SyncReport(forwarded, bundle_id, added)

    async def release_all(self) -> ReleaseReport:
        """Forward what is pending, then give every reserved, unreleased bundle back to the backend
        (before a kiosk is taken out of service, so its codes can be handed out elsewhere)."""
        forwarded = await self.forward()
        released: dict[str, int] = {}
        for bundle in self.store.bundles():
            if bundle["released_at"] is None:
                released[bundle["id"]] = await self.client.release(bundle["id"])
                self.store.release_bundle(bundle["id"])
        return ReleaseReport(forwarded, released)

    def low(self) -> bool:
        counts = [row["count"] for row in self.store.available()]
        return not counts or min(counts) < self.watermark

    async def run(self, on_contact: Callable[[bool], None] | None = None) -> None:
        """Forward often, top up on schedule; back off with jitter while anything goes wrong.
        ``on_contact(reachable)`` hears whether each round reached the backend."""
        self.on_contact = on_contact
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
                self._heard(True)
            except (httpx.HTTPError, BundleRefused, BundleError, ValueError) as exc:
                delay = min(delay * 2, 300.0)
                self._heard(isinstance(exc, (BundleRefused, BundleError)))  # answered, with a bad bundle
                log.warning("offline sync failed (%s); next try in about %.0f s", str(exc)[:200], delay)
            except (sqlite3.Error, OSError) as exc:  # a full disk, a damaged database: retry once it clears
                delay = min(delay * 2, 300.0)
                log.error("offline sync could not use the kiosk's storage (%s); next try in about %.0f s", exc, delay)
            except Exception:  # a bug must not end forwarding: the issuances wait in the journal
                delay = min(delay * 2, 300.0)
                log.exception("offline sync failed unexpectedly; next try in about %.0f s", delay)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay * self._jitter.uniform(0.8, 1.2))
            except TimeoutError:
                pass

    def _heard(self, reachable: bool) -> None:
        if self.on_contact is not None:
            self.on_contact(reachable)

    def _contact(self, backend_time: datetime | None) -> None:
        self.store.note_contact(backend_time)
        if backend_time is not None:
            self._anchor = (backend_time.astimezone(UTC), self._monotonic())


class FallbackIssuer:
    """Online first; the offline pools when the backend cannot give an answer in time."""

    def __init__(self, online: OnlineIssuer, store: OfflineStore, offline: OfflineService | None) -> None:
        self.online = online
        self.store = store
        self.offline = offline

    async def issue(self, code: PackagingCode) -> IssuanceOutcome:
        try:
            rewarded = self.store.rewarded(code.value)
        except sqlite3.Error:  # the backend still knows; the journal is only our own memory
            log.exception("the journal could not be read; asking the backend")
            rewarded = False
        if rewarded:
            # Also covers an offline reward the backend has not heard of yet.
            return AlreadyReturned("this packaging has already earned a voucher at this kiosk")
        try:
            key = self.store.begin_attempt(code.value)
        except sqlite3.Error as exc:  # no durable key: the scan still goes out, with a fresh one
            log.error("the scan attempt could not be journalled: %s", exc)
            key = None
        outcome = await self.online.issue(code, key=key)
        return self._settle(code, outcome)

    async def replay_unanswered(self, on_voucher: Callable[[str, Issued], None]) -> None:
        """At start-up: ask again, with the same keys, the scans an earlier run sent and never got an
        answer for (killed while the answer was on its way); a voucher found is journalled, so it is
        never lost, and handed to ``on_voucher(packaging, issued)``."""
        for packaging, key, _ in self.store.attempts():
            if self.store.rewarded(packaging):
                self.store.end_attempt(packaging)
                continue
            outcome = await self.online.issue(PackagingCode(packaging), key=key)
            if isinstance(outcome, Unavailable):
                log.warning(
                    "scan %s of an earlier run is still unanswered (%s); asked again later", key, outcome.reason
                )
                continue
            settled = self._settle(PackagingCode(packaging), outcome, offline_fallback=False)
            if isinstance(settled, Issued):
                log.warning(
                    "voucher %s of a scan an earlier run never showed recovered from the backend",
                    fingerprint(settled.voucher.code),
                )
                on_voucher(packaging, settled)

    def resume_unshown(self, now: datetime, on_voucher: Callable[[str, Issued, bool], None]) -> None:
        """At start-up: the journalled voucher nobody saw goes to ``on_voucher(packaging, issued,
        plain)`` (see ``plan_resumption``: the newest wins, older ones are marked superseded). A
        journal that cannot be read is logged and start-up goes on without it."""
        try:
            plan = plan_resumption(self.store.unshown(), now)
            for entry in plan.superseded:
                log.warning("voucher %s was never shown, and a newer one was issued since (or it expired)", entry.key)
                self.store.mark_shown(entry.key)
        except Exception:
            log.exception("the journal's unshown vouchers could not be read; starting without them")
            return
        resumed = plan.resume
        if resumed is None or resumed.voucher is None:
            return
        log.warning(
            "showing voucher %s again (journal %s): the kiosk stopped before it was shown%s",
            fingerprint(resumed.voucher.code),
            resumed.key,
            ", in its plain form" if plan.plain else "",
        )
        issued = Issued(resumed.voucher, "offline" if resumed.source == "offline" else "online", key=resumed.key)
        on_voucher(resumed.packaging, issued, plan.plain)

    def _settle(
        self, code: PackagingCode, outcome: IssuanceOutcome, *, offline_fallback: bool = True
    ) -> IssuanceOutcome:
        """Journal what the backend answered; fall back to the offline pools when it could not."""
        if isinstance(outcome, Issued):
            try:
                self.store.journal_online(outcome.key or "", code.value, outcome.voucher)
            except sqlite3.IntegrityError:
                same = self.store.journalled(code.value)
                if same is not None and same[1] == outcome.voucher.code:
                    # The same answer twice (a replayed key): it is this packaging's voucher, journalled.
                    return Issued(outcome.voucher, "online", key=same[0])
                # A code this kiosk handed out before, for another packaging: never show it twice.
                log.error(
                    "the backend answered voucher %s, which this kiosk handed out before; refused",
                    fingerprint(outcome.voucher.code),
                )
                outcome = Unavailable("the backend answered a voucher code handed out before", attempt_key=outcome.key)
            except sqlite3.Error as exc:  # the voucher is the customer's even if the journal write failed
                log.error("could not journal online voucher %s: %s", fingerprint(outcome.voucher.code), exc)
                return outcome
            except Exception:
                log.exception("could not journal online voucher %s", fingerprint(outcome.voucher.code))
                return outcome
            else:
                return outcome
        if not isinstance(outcome, Unavailable):
            self._forget_attempt(code)  # a final answer: already returned, refused, none available
            return outcome
        if self.offline is None or not offline_fallback:
            return outcome  # the attempt stays: a rescan asks again with its key
        try:
            claimed = self.offline.claim(code.value, online_attempt_key=outcome.attempt_key)
        except AlreadyRewarded:
            return AlreadyReturned("this packaging has already earned a voucher at this kiosk")
        except sqlite3.Error as exc:  # a full disk or a damaged database: no durable claim, no voucher
            log.error("offline issuance failed: the journal cannot be written (%s)", exc)
            return Unavailable(f"{outcome.reason}; offline issuance failed ({exc})")
        except Exception as exc:
            log.exception("offline issuance failed")
            return Unavailable(f"{outcome.reason}; offline issuance failed ({type(exc).__name__})")
        if isinstance(claimed, Issued):
            log.info(
                "offline voucher %s for %s (online: %s)", fingerprint(claimed.voucher.code), code.value, outcome.reason
            )
            return claimed
        return _offline_refusal(claimed, outcome.reason)

    def _forget_attempt(self, code: PackagingCode) -> None:
        try:
            self.store.end_attempt(code.value)
        except sqlite3.Error as exc:
            log.error("the scan attempt could not be closed in the journal: %s", exc)


#: What the customer is told when no offline voucher may be given, by the store's reason.
_REFUSALS = {
    "none_available": "no offline voucher for this packaging here",
    "never_synced": "backend unreachable, no offline codes cached",
    "offline_too_long": "offline too long: no contact with the backend within the limit",
    "count_limit": "offline count limit: as many vouchers as allowed since the backend last took them",
    "value_limit": "offline value limit: as much value as allowed since the backend last took the vouchers",
    "clock_untrusted": "offline: the kiosk's clock cannot be trusted",
}


def _offline_refusal(reason: str, online_reason: str) -> IssuanceOutcome:
    """The outcome for a refused offline claim: nothing cached is "none available"; never having
    reached the backend is backend trouble; the rest are offline limits."""
    text = _REFUSALS.get(reason, f"offline: {reason.replace('_', ' ')}")
    if reason == "none_available":
        return NoneAvailable(text)
    if reason == "never_synced":
        return Unavailable(f"{text} ({online_reason})")
    return OfflineLimited(text)
