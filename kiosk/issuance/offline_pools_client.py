"""Client for the offline-pool API. RE-ZIP does not publish one; this is our proposal, implemented by
the stand-in backend, and kept in this one module so it can follow RE-ZIP's answer.

    POST   /drop-points/{id}/offline-pools/reservations        {"per_pool": N}
           → 201, the bundle as JSON, ``Bundle-Signature: keyid=…;alg="ecdsa-p384-sha384";sig=:…:``
             (ECDSA P-384 over the exact body bytes, key from the backend's JWKS by keyid)
    DELETE /drop-points/{id}/offline-pools/reservations/{bundle_id}   → {"released": n}
    POST   /drop-points/{id}/offline-issuances
           {"issuances": [{key, code, packaging, issued_at[, online_attempt_key]}]}
           → {"results": [{key, status: accepted|duplicate|duplicate_return|unknown_code}]}

A bundle: ``{bundle_id, drop_point_id, country, issued_at, expires_at, shops: {id: profile},
prefixes: {prefix: shop_id}, pools: [{id, shop_id, countries, visibility}], codes: [{code, link,
pool_id, type, value, unit, conditions, expires_at}]}``. A bundle whose signature does not verify,
that is for another drop point, that has expired or whose structure is broken is refused and
nothing of it is used; a code in it that fails the voucher rules is left out (``kiosk.core.bundle``).

An offline issuance may name ``online_attempt_key``: the ``Idempotency-Key`` of the scan request the
kiosk gave up on before it issued this offline code (its deadline passed, or it could not use the
answer). If the backend recorded a return for that packaging under that key, sent with the same
token, the offline code becomes the return's reward and the status is ``accepted``: the online
voucher nobody received is released (a static code goes back into its pool, its ``plucked_at``
cleared; an on-demand voucher is recorded void and never handed out), and if that scan is still
being answered (the shop's webhook has not finished), its voucher is released the moment it arrives.
Replaying that key then answers the offline voucher. A return recorded under another key (another
scan, another kiosk) stays a ``duplicate_return``; without the key, or with one the backend never
saw, nothing changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.core.bundle import BundleContents, BundleError, parse_bundle
from kiosk.signatures import SignatureError, public_key_from_jwk, verify_detached

__all__ = ["OfflinePoolsClient", "Bundle", "BundleRefused"]

FORWARD_STATUSES = {"accepted", "duplicate", "duplicate_return", "unknown_code"}
#: A bundle of a few hundred codes is tens of kilobytes; this is far beyond any bundle we ask for.
MAX_ANSWER_BYTES = 16 * 1024 * 1024


class BundleRefused(ValueError):
    """The backend's bundle may not be used: bad signature, wrong drop point, expired, malformed."""


@dataclass(frozen=True)
class Bundle:
    doc: Any
    body: bytes
    signature: str

    @cached_property
    def contents(self) -> BundleContents:
        """The checked contents; ``BundleRefused`` when the structure is broken."""
        try:
            return parse_bundle(self.doc, link_schemes=None)
        except BundleError as exc:
            raise BundleRefused(f"malformed bundle: {exc}") from None

    @property
    def id(self) -> str:
        return self.contents.bundle_id

    @property
    def issued_at(self) -> datetime:
        return self.contents.issued_at


class OfflinePoolsClient:
    def __init__(self, http: httpx.AsyncClient, drop_point_id: str, *, jwks_url: str) -> None:
        self._http = http
        self.drop_point_id = drop_point_id
        self.jwks_url = jwks_url
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}

    async def reserve(self, per_pool: int, *, now: datetime) -> Bundle:
        body, headers = await self._call(
            "POST", f"/drop-points/{self.drop_point_id}/offline-pools/reservations", json={"per_pool": per_pool}
        )
        bundle = Bundle(_json(body), body, headers.get("Bundle-Signature", ""))
        await self.verify(bundle, now=now)
        return bundle

    async def verify(self, bundle: Bundle, *, now: datetime) -> None:
        """Signature, drop point, expiry and shape; ``BundleRefused`` says which failed."""
        try:
            for attempt in range(2):  # a new keyid after a rotation: fetch the JWKS again once
                keys = await self._jwks(refresh=attempt == 1)
                try:
                    verify_detached(bundle.signature, bundle.body, keys)
                    break
                except SignatureError as exc:
                    if "unknown keyid" not in str(exc) or attempt == 1:
                        raise
        except SignatureError as exc:
            raise BundleRefused(f"signature: {exc}") from None
        contents = bundle.contents
        if contents.drop_point_id != self.drop_point_id:
            raise BundleRefused("the bundle is for another drop point")
        if contents.expires_at <= now:
            raise BundleRefused("the bundle has expired")

    async def release(self, bundle_id: str) -> int:
        body, _ = await self._call(
            "DELETE", f"/drop-points/{self.drop_point_id}/offline-pools/reservations/{bundle_id}"
        )
        released = _object(body).get("released", 0)
        if not isinstance(released, int) or isinstance(released, bool) or released < 0:
            raise BundleRefused("released: expected a count")
        return released

    async def forward(self, issuances: list[dict[str, Any]]) -> list[dict[str, str]]:
        """Report offline issuances; the backend counts each key once, however often it is sent."""
        body, _ = await self._call(
            "POST", f"/drop-points/{self.drop_point_id}/offline-issuances", json={"issuances": issuances}
        )
        results = _object(body).get("results")
        sent = {item["key"] for item in issuances}
        if not isinstance(results, list):
            raise BundleRefused("results: missing")
        checked = [
            r for r in results if isinstance(r, dict) and r.get("key") in sent and r.get("status") in FORWARD_STATUSES
        ]
        return [{"key": str(r["key"]), "status": str(r["status"])} for r in checked]

    async def _jwks(self, *, refresh: bool) -> dict[str, ec.EllipticCurvePublicKey]:
        if self._keys and not refresh:
            return self._keys
        body, _ = await self._call("GET", self.jwks_url)
        entries = _object(body).get("keys")
        if not isinstance(entries, list):
            raise SignatureError("the JWKS has no list of keys")
        keys = {}
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("kid"), str):
                try:
                    keys[entry["kid"]] = public_key_from_jwk(entry)
                except SignatureError:
                    continue  # a key of another kind, or a broken one: the others still count
        self._keys = keys
        return self._keys

    async def _call(self, method: str, url: str, **kwargs: Any) -> tuple[bytes, httpx.Headers]:
        """One request whose answer must be 2xx and at most ``MAX_ANSWER_BYTES``."""
        async with self._http.stream(method, url, **kwargs) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise BundleRefused(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
            response.raise_for_status()
            return bytes(body), response.headers


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise BundleRefused("the answer is not JSON") from None


def _object(raw: bytes) -> dict[str, Any]:
    doc = _json(raw)
    if not isinstance(doc, dict):
        raise BundleRefused("the answer is not a JSON object")
    return doc
