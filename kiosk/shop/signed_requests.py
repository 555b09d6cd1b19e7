"""The gate in front of the shop's webhook: only deliveries RE-ZIP signed get through.

RE-ZIP signs each on-demand call (RFC 9421, ``ecdsa-p384-sha384`` over ``@method @target-uri
content-type``) with a key it publishes in a JWKS and rotates monthly. The gate checks, cheapest
first, so that nothing a stranger sends costs more than parsing a header:

1. the request is addressed to the webhook's path; the ``@target-uri`` is rebuilt as RE-ZIP
   addressed it, ``server.public_url`` + the request target, never from the listen address;
2. the signature headers are there, of sane size and shape, with our algorithm and a ``created``
   time within the window around now (a recorded delivery replayed later is refused);
3. the key: RE-ZIP's keys are cached; a ``keyid`` not seen yet fetches the JWKS again once, but
   fetches happen at most once per ``refetch_interval_s`` whatever arrives, so a flood of made-up
   keyids cannot hammer RE-ZIP (and a key older than ``cache_s`` is fetched again before use);
4. the signature itself, then ``Webhook-Version: 1``. Verifying runs in a worker thread:
   OpenSSL lets go of the interpreter meanwhile, so a burst of deliveries is verified on another
   core while the event loop serves the rest.

The answer is typed, ``Accepted`` or ``Refused`` with a reason and the HTTP status to answer; no
header, however broken, raises. Only a failure to reach RE-ZIP's JWKS is logged (the URL, never a
header of the request).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.core.text import clean_text
from kiosk.shop.config import ShopConfig
from kiosk.signatures import SignatureError, SignatureFault, VerifiedSignature, keys_from_jwks, verify_signature

__all__ = ["Accepted", "Refused", "RefusalReason", "RezipKeys", "SignatureGate"]

log = logging.getLogger(__name__)

RefusalReason = Literal[SignatureFault, "wrong_target", "webhook_version", "keys_unavailable"]
#: What each refusal is answered with: a signature problem is 401, as RE-ZIP's documents ask.
_STATUS: dict[str, int] = {"wrong_target": 404, "webhook_version": 400, "keys_unavailable": 503}
#: RE-ZIP's headers are a few hundred characters; anything far longer is not from RE-ZIP.
MAX_SIGNATURE_HEADER_CHARS = 4096
#: A JWKS holds a handful of keys; a bigger answer is not RE-ZIP's.
MAX_JWKS_BYTES = 64 * 1024
_DETAIL_CHARS = 160


@dataclass(frozen=True)
class Accepted:
    """A delivery RE-ZIP signed, with the key it was signed with. ``delivery`` names this delivery:
    the same when RE-ZIP sends it again as it was (``kiosk.signatures.VerifiedSignature.identity``),
    different for every other delivery."""

    keyid: str
    delivery: str = field(default="", compare=False)


@dataclass(frozen=True)
class Refused:
    """A delivery not to act on: why (for the log and the metrics) and what to answer."""

    reason: RefusalReason
    detail: str

    @property
    def status(self) -> int:
        return _STATUS.get(self.reason, 401)


Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class RezipKeys:
    """RE-ZIP's public keys from its JWKS URL: cached, fetched again when old or when asked for a
    key it lacks, and never more often than ``refetch_interval_s`` (failed attempts count too).
    When a fetch fails, the keys already known keep counting."""

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        refetch_interval_s: float,
        cache_s: float,
        timeout_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.refetch_interval_s = refetch_interval_s
        self.cache_s = cache_s
        self.timeout_s = timeout_s
        self._http = http
        self._monotonic = monotonic
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self._finished = 0  # fetches that have ended, well or not
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        """Whether any key was ever fetched (the service's health can say so)."""
        return bool(self._keys)

    async def current(self) -> Mapping[str, ec.EllipticCurvePublicKey]:
        """The keys to verify with; fetched first when there are none yet or they are old."""
        if self._loaded_at is None or self._monotonic() - self._loaded_at >= self.cache_s:
            await self._fetch()
        return dict(self._keys)

    async def refresh_for(self, keyid: str) -> Mapping[str, ec.EllipticCurvePublicKey] | None:
        """The keys after one more fetch for an unknown ``keyid`` (a rotation); None when no fetch
        may happen yet and the key is still unknown."""
        if keyid not in self._keys and not await self._fetch():
            return None
        return dict(self._keys)

    async def _fetch(self) -> bool:
        """Fetch the JWKS unless a fetch was attempted within the interval; True when one ran now
        or while we waited (so the keys are as fresh as they can be)."""
        finished = self._finished
        async with self._lock:
            if self._finished != finished:  # another delivery fetched while this one waited
                return True
            now = self._monotonic()
            if self._attempted_at is not None and now - self._attempted_at < self.refetch_interval_s:
                return False
            self._attempted_at = now
            try:
                async with asyncio.timeout(self.timeout_s):
                    keys = keys_from_jwks(await self._download())
                if not keys:
                    raise ValueError("it holds no P-384 signing key")
                self._keys = keys
                self._loaded_at = self._monotonic()
            except (httpx.HTTPError, ValueError, RecursionError, TimeoutError) as exc:
                log.warning(
                    "RE-ZIP's signing keys could not be fetched from %s: %s",
                    self.url,
                    clean_text(str(exc) or type(exc).__name__, multiline=False)[:_DETAIL_CHARS],
                )
            finally:
                self._finished += 1
            return True

    async def _download(self) -> object:
        async with self._http.stream("GET", self.url, follow_redirects=False) as response:
            if response.status_code != 200:
                raise ValueError(f"the answer was HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"the answer is larger than {MAX_JWKS_BYTES} bytes")
        return json.loads(bytes(body))


class SignatureGate:
    """Checks deliveries to the webhook at ``public_base + path`` against RE-ZIP's keys.

    The P-384 check (about 0.5 ms in OpenSSL, which lets go of the interpreter) runs in a thread
    ``beside_loop``, so that a service of one process checks on one core while its loop serves on
    another. A service of several worker processes already keeps every core busy, and there the
    handing over to a thread and back costs more than it brings: 200 deliveries at once on 2 cores
    and 2 workers answered within p95 267-271 ms checked on the loop, 286-304 ms in threads."""

    def __init__(
        self,
        *,
        public_base: str,
        path: str,
        keys: RezipKeys,
        window_s: float,
        clock: Callable[[], float] = time.time,
        beside_loop: bool = True,
    ) -> None:
        self.public_base = public_base.rstrip("/")
        self.path = path
        self.keys = keys
        self.window_s = int(window_s)
        self._clock = clock
        self.beside_loop = beside_loop

    @classmethod
    def for_config(
        cls, config: ShopConfig, http: httpx.AsyncClient, *, clock: Callable[[], float] = time.time
    ) -> SignatureGate:
        rezip = config.rezip
        keys = RezipKeys(
            rezip.jwks_url, http, refetch_interval_s=rezip.jwks_refetch_interval_s, cache_s=rezip.jwks_cache_s
        )
        return cls(
            public_base=config.public_base,
            path=config.server.path,
            keys=keys,
            window_s=rezip.signature_window_s,
            clock=clock,
            beside_loop=config.server.workers == 1,
        )

    async def check(self, method: str, target: str, headers: Headers) -> Accepted | Refused:
        """Whether RE-ZIP sent this request. ``target`` is the request target as received (path
        and query); ``headers`` every header line (repeated names are combined, as RFC 9421 says)."""
        if target.partition("?")[0] != self.path:
            return Refused("wrong_target", "not the webhook's path")
        fields = _combined(headers)
        if any(len(fields.get(name, "")) > MAX_SIGNATURE_HEADER_CHARS for name in ("signature-input", "signature")):
            return Refused("malformed", f"a signature header is longer than {MAX_SIGNATURE_HEADER_CHARS} characters")
        target_uri = self.public_base + target
        now = int(self._clock())
        verify = functools.partial(verify_signature, method, target_uri, fields, now=now, max_skew_s=self.window_s)
        try:
            try:
                verified = await self._verified(verify, await self.keys.current())
            except SignatureError as first:
                if first.fault != "unknown_key" or first.keyid is None:
                    raise
                keys = await self.keys.refresh_for(first.keyid)
                if not keys:
                    raise
                verified = await self._verified(verify, keys)
        except SignatureError as error:
            if error.fault == "unknown_key" and not self.keys.loaded:
                return Refused("keys_unavailable", "RE-ZIP's signing keys could not be fetched")
            return Refused(error.fault, clean_text(str(error), multiline=False)[:_DETAIL_CHARS])
        if fields.get("webhook-version", "").strip() != "1":
            return Refused("webhook_version", "Webhook-Version: only 1 is understood")
        return Accepted(verified.keyid, verified.identity)

    async def _verified(
        self,
        verify: Callable[[Mapping[str, ec.EllipticCurvePublicKey]], VerifiedSignature],
        keys: Mapping[str, ec.EllipticCurvePublicKey],
    ) -> VerifiedSignature:
        return await asyncio.to_thread(verify, keys) if self.beside_loop else verify(keys)


def _combined(headers: Headers) -> dict[str, str]:
    """Header lines by lower-case name; the values of a repeated name joined with ", "."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    fields: dict[str, str] = {}
    for name, value in pairs:
        key = str(name).lower()
        fields[key] = f"{fields[key]}, {value}" if key in fields else str(value)
    return fields
