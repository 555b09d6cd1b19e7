"""The stand-in RE-ZIP backend: the scan endpoint, shops, voucher pools, batches and codes.

It follows RE-ZIP's public documents where they speak (pool visibility and countries, on-demand
pools called through a signed webhook with fallback to static pools, ``plucked_at``, ``{message}``
errors, ``429`` after repeated 4xx) and the assumptions written down in
``kiosk.issuance.rezip_client`` where they do not.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.core.voucher import VoucherError, parse_voucher
from kiosk.signatures import key_fingerprint, load_or_create_key, public_jwk, sign_detached, sign_request
from kiosk.sim.backend_store import (
    BackendStore,
    DuplicateReturn,
    IdempotencyInFlight,
    Pool,
    now_iso,
)
from kiosk.sim.httpd import HttpError, JsonServer, Reply, Request, error_reply, json_reply

__all__ = ["StandInBackend"]

_BARCODE = re.compile(r"[0-9]{2}.{2}(?:[0-9A-Z]{26}|[0-9]{2,5})")
_VISIBILITIES = ("private", "public", "private_public")
_OWN = ("private", "private_public")
_SHARED = ("public", "private_public")
#: Like RE-ZIP: a client that keeps sending bad requests is told to back off.
_MAX_4XX_PER_MINUTE = 20


class StandInBackend:
    """Wires the store, the signing key and the HTTP routes together."""

    def __init__(self, db_path: Path, *, webhook_timeout_s: float = 1.5) -> None:
        self.store = BackendStore(db_path)
        self.webhook_timeout_s = webhook_timeout_s
        self._key, self.keyid = _load_or_create_key(db_path.with_name(db_path.name + ".signing-key.pem"))
        self._webhook_http = httpx.Client(timeout=webhook_timeout_s, follow_redirects=False)
        self._recent_4xx: dict[str, list[float]] = {}
        self._recent_4xx_lock = threading.Lock()
        self.server: JsonServer | None = None

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> JsonServer:
        shop = r"/shops/(?P<shop>[^/]+)"
        routes = [
            ("POST", r"/me/packaging/scan", self._scan),
            ("GET", r"/\.well-known/jwks\.json", self._jwks),
            ("GET", shop + r"/logo", self._logo),
            ("GET", shop + r"/vouchers/pools/?", self._list_pools),
            ("POST", shop + r"/vouchers/pools/?", self._create_pool),
            ("GET", shop + r"/vouchers/pools/(?P<pool>[^/]+)", self._get_pool),
            ("DELETE", shop + r"/vouchers/pools/(?P<pool>[^/]+)", self._delete_pool),
            ("GET", shop + r"/vouchers/batches/?", self._list_batches),
            ("POST", shop + r"/vouchers/batches/?", self._create_batch),
            ("GET", shop + r"/vouchers/?", self._list_codes),
            ("POST", shop + r"/vouchers/?", self._add_codes),
            ("POST", r"/drop-points/(?P<dp>[^/]+)/offline-pools/reservations", self._reserve),
            ("DELETE", r"/drop-points/(?P<dp>[^/]+)/offline-pools/reservations/(?P<rid>[^/]+)", self._release),
            ("POST", r"/drop-points/(?P<dp>[^/]+)/offline-issuances", self._offline_issuances),
            ("GET", r"/_sim/state", self._state),
        ]
        self.server = JsonServer(routes, host, port)
        return self.server

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        self._webhook_http.close()

    # --- auth -----------------------------------------------------------------------------------

    def _caller(self, request: Request) -> tuple[str, Any] | None:
        header = request.header("authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme not in ("Pat", "Bearer") or not token:
            return None
        row = self.store.token(token.strip())
        return (token.strip(), row) if row is not None else None

    def _require_manager(self, request: Request) -> None:
        """Only an admin token, or the shop's own token, may manage a shop's pools."""
        caller = self._caller(request)
        if caller is None:
            raise HttpError(401, "missing or unknown access token")
        row = caller[1]
        shop_id = request.params["shop"]
        if not (row["kind"] == "admin" or (row["kind"] == "shop" and row["shop_id"] == shop_id)):
            raise HttpError(403, "this token may not manage that shop")
        if self.store.shop(shop_id) is None:
            raise HttpError(404, "shop not found")

    # --- scan -----------------------------------------------------------------------------------

    def _scan(self, request: Request) -> Reply:
        caller = self._caller(request)
        if caller is None:
            return error_reply(401, "missing or unknown access token")
        token, row = caller
        if row["kind"] not in ("kiosk", "admin"):
            return error_reply(403, "this token may not report scans")
        if self._too_many_4xx(token):
            return error_reply(429, "too many invalid requests", {"Retry-After": "60"})
        key = request.header("idempotency-key")
        if key:
            try:
                stored = self.store.begin_idempotent(token, key)
            except IdempotencyInFlight:
                return error_reply(409, "a request with this Idempotency-Key is in progress")
            if stored is not None:
                return Reply(stored[0], stored[1].encode("utf-8"))
        reply = self._scan_once(request)
        if key:
            self.store.finish_idempotent(token, key, reply.status, reply.body.decode("utf-8"))
        if 400 <= reply.status < 500 and reply.status != 409:
            with self._recent_4xx_lock:
                self._recent_4xx.setdefault(token, []).append(time.monotonic())
        return reply

    def _scan_once(self, request: Request) -> Reply:
        try:
            body = request.json()
        except ValueError:
            self.store.log_scan(None, 400)
            return error_reply(400, "body is not JSON")
        barcode = body.get("barcode") if isinstance(body, dict) else None
        reply = self._answer_scan(request, body, barcode)
        self.store.log_scan(barcode if isinstance(barcode, str) else None, reply.status)
        return reply

    def _answer_scan(self, request: Request, body: Any, barcode: Any) -> Reply:
        if not isinstance(barcode, str) or not _BARCODE.fullmatch(barcode):
            return error_reply(400, "barcode is not a RE-ZIP packaging code")
        drop_point = self.store.drop_point(str(body.get("drop_point_location_id")))
        if drop_point is None:
            return error_reply(404, "unknown drop point")
        shop_id = self.store.shop_for_prefix(barcode[:4])
        if shop_id is None:
            return error_reply(404, "unknown packaging")
        hardware_id = body.get("hardware_id") if isinstance(body.get("hardware_id"), str) else None
        try:
            return_id = self.store.record_return(barcode, shop_id, drop_point["id"], hardware_id)
        except DuplicateReturn:
            return error_reply(409, "This packaging has already been returned")
        voucher, pool = self._find_voucher(shop_id, drop_point["country"])
        record = self.store.attach_voucher(return_id, voucher, pool.id if pool else None)
        data = None
        if voucher is not None and pool is not None:
            data = self._scan_data(request, voucher, pool.shop_id)
        return json_reply(
            201,
            {
                "id": return_id,
                "type": "Voucher",
                "created_at": record["created_at"],
                "updated_at": record["updated_at"],
                "deleted_at": None,
                "data": data,
            },
        )

    def _scan_data(self, request: Request, voucher: dict[str, Any], shop_id: str) -> dict[str, Any]:
        shop = self.store.shop(shop_id)
        assert shop is not None
        return {
            "code": voucher["code"],
            "link": voucher.get("link"),
            "conditions": voucher["conditions"],
            "expires_at": voucher["expires_at"],
            "value": voucher["value"],
            "value_data": {"type": voucher["type"], "value": voucher["value"], "unit": voucher["unit"]},
            "shop": {
                "name": shop["name"],
                "description": shop["description"],
                "logo_url": f"{request.origin}/shops/{shop_id}/logo" if shop["logo_png"] else None,
                "website": shop["website"],
            },
        }

    def _find_voucher(self, shop_id: str, country: str) -> tuple[dict[str, Any] | None, Pool | None]:
        """The shop's own pools here first, then other shops' public ones; on-demand before static."""
        pools = [p for p in self.store.pools() if country in p.countries]
        own = [p for p in pools if p.shop_id == shop_id and p.visibility in _OWN]
        shared = [p for p in pools if p.shop_id != shop_id and p.visibility in _SHARED]
        for group in (own, shared):
            for pool in sorted(group, key=lambda p: p.pool_type != "on_demand"):
                voucher = self._from_pool(pool)
                if voucher is not None:
                    return voucher, pool
        return None, None

    def _from_pool(self, pool: Pool) -> dict[str, Any] | None:
        if pool.pool_type == "on_demand":
            return self._call_webhook(pool)
        return self.store.pluck(pool.id, now_iso())

    def _call_webhook(self, pool: Pool) -> dict[str, Any] | None:
        """Ask the shop's webhook; any failure (status, timeout, bad body) means 'use static'."""
        if not pool.webhook_url:
            return None
        body = json.dumps({"voucher_pool_id": pool.id}).encode("utf-8")
        headers = {"Content-Type": "application/json", "Webhook-Version": "1"}
        headers |= sign_request(
            self._key, self.keyid, "POST", pool.webhook_url, headers, created=int(time.time())
        )
        try:
            response = self._webhook_http.post(pool.webhook_url, content=body, headers=headers)
            if not 200 <= response.status_code < 300:
                return None
            voucher = parse_voucher(response.json(), link_schemes=None)
        except (httpx.HTTPError, ValueError, VoucherError):
            return None
        if voucher.expires_at is not None and voucher.expires_at <= datetime.now(timezone.utc):
            return None
        return voucher.to_json()

    def _too_many_4xx(self, token: str) -> bool:
        cutoff = time.monotonic() - 60
        with self._recent_4xx_lock:
            recent = [t for t in self._recent_4xx.get(token, []) if t > cutoff]
            self._recent_4xx[token] = recent
        return len(recent) >= _MAX_4XX_PER_MINUTE

    # --- keys and logos -------------------------------------------------------------------------

    def _jwks(self, request: Request) -> Reply:
        return json_reply(200, {"keys": [public_jwk(self._key.public_key(), self.keyid)]})

    def _logo(self, request: Request) -> Reply:
        shop = self.store.shop(request.params["shop"])
        if shop is None or not shop["logo_png"]:
            return error_reply(404, "no logo")
        return Reply(200, bytes(shop["logo_png"]), content_type="image/png")

    # --- pools, batches, codes ------------------------------------------------------------------

    def _list_pools(self, request: Request) -> Reply:
        self._require_manager(request)
        return json_reply(200, [p.to_json() for p in self.store.pools(request.params["shop"])])

    def _get_pool(self, request: Request) -> Reply:
        self._require_manager(request)
        pool = self.store.pool(request.params["shop"], request.params["pool"])
        return json_reply(200, pool.to_json()) if pool else error_reply(404, "pool not found")

    def _delete_pool(self, request: Request) -> Reply:
        self._require_manager(request)
        if self.store.delete_pool(request.params["shop"], request.params["pool"]):
            return Reply(204)
        return error_reply(404, "pool not found")

    def _create_pool(self, request: Request) -> Reply:
        self._require_manager(request)
        doc = request.json_object()
        problem = _pool_problem(doc)
        if problem:
            return error_reply(400, problem)
        pool = self.store.create_pool(
            request.params["shop"],
            doc["name"],
            doc["countries"],
            doc["visibility"],
            doc.get("pool_type", "static"),
            doc.get("webhook_url"),
        )
        return json_reply(201, pool.to_json())

    def _list_batches(self, request: Request) -> Reply:
        self._require_manager(request)
        return json_reply(200, self.store.batches(shop_id=request.params["shop"]))

    def _create_batch(self, request: Request) -> Reply:
        self._require_manager(request)
        doc = request.json_object()
        pool = self.store.pool(request.params["shop"], str(doc.get("voucher_pool_id")))
        if pool is None:
            return error_reply(400, "voucher_pool_id: no such pool in this shop")
        if pool.pool_type == "on_demand":
            return error_reply(400, "voucher_pool_id: on-demand pools do not take batches")
        try:
            checked = parse_voucher({**doc, "code": "BATCH"}, link_schemes=None).to_json()
        except VoucherError as exc:
            return error_reply(400, str(exc))
        batch = self.store.create_batch(pool.id, checked)
        return json_reply(201, batch)

    def _list_codes(self, request: Request) -> Reply:
        self._require_manager(request)
        return json_reply(200, self.store.codes(request.params["shop"]))

    def _add_codes(self, request: Request) -> Reply:
        self._require_manager(request)
        doc = request.json_object()
        if not isinstance(doc.get("codes"), list):
            return error_reply(400, "codes: must be a list of {code, link}")
        batches = self.store.batches(batch_id=str(doc.get("voucher_batch_id")))
        if not batches or batches[0]["shop_id"] != request.params["shop"]:
            return error_reply(400, "voucher_batch_id: no such batch in this shop")
        batch = batches[0]
        codes: list[tuple[str, str | None]] = []
        for index, item in enumerate(doc["codes"]):
            try:
                seed = {**batch, **(item if isinstance(item, dict) else {"code": item})}
                checked = parse_voucher(seed, link_schemes=None)
            except VoucherError as exc:
                return error_reply(400, f"codes[{index}].{exc}")
            codes.append((checked.code, checked.link))
        added = self.store.add_codes(batch["id"], codes)
        return json_reply(201, {"added": added})

    # --- offline pools (our proposal; not in RE-ZIP's public API) ----------------------------------

    def _kiosk_drop_point(self, request: Request) -> Any:
        caller = self._caller(request)
        if caller is None:
            raise HttpError(401, "missing or unknown access token")
        if caller[1]["kind"] not in ("kiosk", "admin"):
            raise HttpError(403, "this token may not act for a drop point")
        drop_point = self.store.drop_point(request.params["dp"])
        if drop_point is None:
            raise HttpError(404, "unknown drop point")
        return drop_point

    def _reserve(self, request: Request) -> Reply:
        """A signed bundle of static-pool codes reserved for one drop point's offline use."""
        drop_point = self._kiosk_drop_point(request)
        doc = request.json_object() if request.body else {}
        per_pool = doc.get("per_pool", 20)
        if not isinstance(per_pool, int) or not 1 <= per_pool <= 500:
            raise HttpError(400, "per_pool: must be a whole number from 1 to 500")
        now = datetime.now(timezone.utc)
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        expires = (now + timedelta(days=7)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        reserved = self.store.reserve(drop_point["id"], drop_point["country"], per_pool, stamp, expires)
        pools = [p for p in self.store.pools() if any(c["pool_id"] == p.id for c in reserved["codes"])]
        shop_ids = {p.shop_id for p in pools} | {
            row["shop_id"] for row in self.store.read("SELECT shop_id FROM packaging_prefixes")
        }
        shops = {}
        for shop_id in sorted(shop_ids):
            shop = self.store.shop(shop_id)
            if shop is not None:
                shops[shop_id] = {
                    "name": shop["name"], "description": shop["description"], "website": shop["website"],
                    "logo_url": f"{request.origin}/shops/{shop_id}/logo" if shop["logo_png"] else None,
                }  # fmt: skip
        bundle = {
            "bundle_id": reserved["id"],
            "drop_point_id": drop_point["id"],
            "country": drop_point["country"],
            "issued_at": stamp,
            "expires_at": expires,
            "shops": shops,
            "prefixes": {r["prefix"]: r["shop_id"] for r in self.store.read("SELECT * FROM packaging_prefixes")},
            "pools": [{"id": p.id, "shop_id": p.shop_id, "countries": p.countries, "visibility": p.visibility}
                      for p in pools],  # fmt: skip
            "codes": reserved["codes"],
        }
        body = json.dumps(bundle, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return Reply(201, body, headers={"Bundle-Signature": sign_detached(self._key, self.keyid, body)})

    def _release(self, request: Request) -> Reply:
        drop_point = self._kiosk_drop_point(request)
        released = self.store.release(drop_point["id"], request.params["rid"], now_iso())
        if released is None:
            raise HttpError(404, "unknown reservation")
        return json_reply(200, {"released": released})

    def _offline_issuances(self, request: Request) -> Reply:
        drop_point = self._kiosk_drop_point(request)
        items = request.json_object().get("issuances")
        if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("key") for i in items):
            raise HttpError(400, "issuances: must be a list of {key, code, packaging, issued_at}")
        results = [
            {"key": str(item["key"]), "status": self.store.record_offline_issuance(drop_point["id"], item, now_iso())}
            for item in items
        ]
        return json_reply(200, {"results": results})

    def _state(self, request: Request) -> Reply:
        offline = self.store.offline_issuances()
        offline_codes = {item.get("code") for item in offline}
        return json_reply(200, {
            "plucked": [code for code in self.store.plucked_codes() if code not in offline_codes],
            "offline_issuances": offline,
            "scans": self.store.scan_log(),
        })  # fmt: skip


def _pool_problem(doc: dict[str, Any]) -> str | None:
    if not isinstance(doc.get("name"), str) or not doc["name"]:
        return "name: required"
    countries = doc.get("countries")
    if not isinstance(countries, list) or not countries or not all(
        isinstance(c, str) and re.fullmatch(r"[A-Z]{2}", c) for c in countries
    ):
        return "countries: must be a non-empty list of ISO 3166 alpha-2 codes"
    if doc.get("visibility") not in _VISIBILITIES:
        return "visibility: must be private, public or private_public"
    pool_type = doc.get("pool_type", "static")
    if pool_type not in ("static", "on_demand"):
        return "pool_type: must be static or on_demand"
    if pool_type == "on_demand":
        url = doc.get("webhook_url")
        if not isinstance(url, str) or not re.match(r"https?://", url):
            return "webhook_url: required for an on_demand pool"
    return None


def _load_or_create_key(path: Path) -> tuple[ec.EllipticCurvePrivateKey, str]:
    """The backend's webhook-signing key, kept in a 0600 file beside the database, and its key id."""
    key, _ = load_or_create_key(path)
    return key, "key-" + key_fingerprint(key)[:8]
