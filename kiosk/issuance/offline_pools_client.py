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
that is for another drop point, or that has expired is refused and nothing of it is used.

``online_attempt_key`` is the ``Idempotency-Key`` of the scan request the kiosk gave up on before it
issued this offline code (its deadline passed, or it could not use the answer). If the backend
recorded a return for that packaging under that key, sent with the same token, the offline code
becomes the return's reward and the status is ``accepted``: the online voucher nobody received is
released (a static code goes back into its pool, its ``plucked_at`` cleared; an on-demand voucher is
recorded void and never handed out), and if that scan is still being answered (the shop's webhook
has not finished), its voucher is released the moment it arrives. Replaying that key then answers
the offline voucher. A return recorded under another key (another scan, another kiosk) stays a
``duplicate_return``; without the key, or with one the backend never saw, nothing changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.signatures import SignatureError, public_key_from_jwk, verify_detached

__all__ = ["OfflinePoolsClient", "Bundle", "BundleRefused"]

FORWARD_STATUSES = {"accepted", "duplicate", "duplicate_return", "unknown_code"}


class BundleRefused(ValueError):
    """The backend's bundle may not be used: bad signature, wrong drop point, expired, malformed."""


@dataclass(frozen=True)
class Bundle:
    doc: dict[str, Any]
    body: bytes
    signature: str

    @property
    def id(self) -> str:
        return str(self.doc["bundle_id"])

    @property
    def issued_at(self) -> datetime:
        return datetime.fromisoformat(self.doc["issued_at"])


class OfflinePoolsClient:
    def __init__(self, http: httpx.AsyncClient, drop_point_id: str, *, jwks_url: str) -> None:
        self._http = http
        self.drop_point_id = drop_point_id
        self.jwks_url = jwks_url
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}

    async def reserve(self, per_pool: int, *, now: datetime) -> Bundle:
        response = await self._http.post(f"/drop-points/{self.drop_point_id}/offline-pools/reservations",
                                         json={"per_pool": per_pool})  # fmt: skip
        response.raise_for_status()
        signature = response.headers.get("Bundle-Signature", "")
        bundle = Bundle(_json(response.content), response.content, signature)
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
        doc = bundle.doc
        try:
            if doc["drop_point_id"] != self.drop_point_id:
                raise BundleRefused("the bundle is for another drop point")
            if datetime.fromisoformat(doc["expires_at"]) <= now:
                raise BundleRefused("the bundle has expired")
            pools = {pool["id"] for pool in doc["pools"]}
            if any(code["pool_id"] not in pools for code in doc["codes"]):
                raise BundleRefused("a code names a pool the bundle does not describe")
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, BundleRefused):
                raise
            raise BundleRefused(f"malformed bundle: {exc}") from None

    async def release(self, bundle_id: str) -> int:
        response = await self._http.delete(f"/drop-points/{self.drop_point_id}/offline-pools/reservations/{bundle_id}")
        response.raise_for_status()
        return int(_json(response.content).get("released", 0))

    async def forward(self, issuances: list[dict[str, Any]]) -> list[dict[str, str]]:
        """Report offline issuances; the backend counts each key once, however often it is sent."""
        response = await self._http.post(f"/drop-points/{self.drop_point_id}/offline-issuances",
                                         json={"issuances": issuances})  # fmt: skip
        response.raise_for_status()
        results = _json(response.content).get("results")
        sent = {item["key"] for item in issuances}
        if not isinstance(results, list):
            raise ValueError("results: missing")
        checked = [r for r in results if isinstance(r, dict) and r.get("key") in sent and r.get("status") in FORWARD_STATUSES]
        return [{"key": str(r["key"]), "status": str(r["status"])} for r in checked]

    async def _jwks(self, *, refresh: bool) -> dict[str, ec.EllipticCurvePublicKey]:
        if self._keys and not refresh:
            return self._keys
        response = await self._http.get(self.jwks_url)
        response.raise_for_status()
        self._keys = {str(k["kid"]): public_key_from_jwk(k) for k in _json(response.content)["keys"]}
        return self._keys


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise BundleRefused("the answer is not JSON") from None

