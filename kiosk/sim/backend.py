"""The stand-in RE-ZIP backend: the scan endpoint, shops, voucher pools, batches and codes.

It follows RE-ZIP's public documents where they speak (pool visibility and countries, on-demand
pools called through a signed webhook with fallback to static pools, ``plucked_at``, ``{message}``
errors, ``429`` after repeated 4xx) and the assumptions written down in
``kiosk.issuance.rezip_client`` where they do not. What it accepts from shops is in
``kiosk.sim.shop_rules``; the offline-pool API (our proposal) is described in
``kiosk.issuance.offline_pools_client``, the health-report API and fleet view (our proposal too) in
``kiosk.fleet.health_client`` and ``kiosk.sim.fleet_view``.

Where the documents are silent: a shop's own pools serve its customers first (on-demand before
static), then other shops' pools that are open to the public, on-demand first, then ``public``
before ``private_public`` (a pool made for the public before another shop's own pool), each group in
the order the pools were made. A webhook answer repeating a code the shop's webhook answered before
is refused like an invalid answer, so no code is handed out twice.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.core.instants import iso_z
from kiosk.core.voucher import VoucherError
from kiosk.signatures import key_fingerprint, load_or_create_key, public_jwk, sign_detached, sign_request
from kiosk.sim.backend_store import (
    BackendStore,
    DuplicateCode,
    DuplicateReturn,
    IdempotencyInFlight,
    Pool,
)
from kiosk.sim.fleet_view import FleetBoard, ReportError
from kiosk.sim.httpd import HttpError, JsonServer, Reply, Request, error_reply, json_reply, parse_json
from kiosk.sim.shop_rules import pool_problem, shop_voucher
from kiosk.sim.sqlite_store import now_iso
from kiosk.sim.webhook_calls import WebhookCaller, WebhookFailed

__all__ = ["StandInBackend"]

_BARCODE = re.compile(r"[0-9]{2}.{2}(?:[0-9A-Z]{26}|[0-9]{2,5})")
_OWN = ("private", "private_public")
_SHARED = ("public", "private_public")
#: Like RE-ZIP: a client that keeps sending bad requests is told to back off.
_MAX_4XX_PER_MINUTE = 20
#: How many webhook failures ``/_sim/state`` remembers.
_FAILURES_KEPT = 200


class StandInBackend:
    """Wires the store, the signing key and the HTTP routes together."""

    def __init__(self, db_path: Path, *, webhook_timeout_s: float = 1.5) -> None:
        self.store = BackendStore(db_path)
        self.webhook_timeout_s = webhook_timeout_s
        self._key, self.keyid = _load_or_create_key(db_path.with_name(db_path.name + ".signing-key.pem"))
        self._webhooks = WebhookCaller(webhook_timeout_s)
        self._webhook_failures: deque[dict[str, str]] = deque(maxlen=_FAILURES_KEPT)
        self._webhook_failures_lock = threading.Lock()
        self._recent_4xx: dict[str, list[float]] = {}
        self._recent_4xx_lock = threading.Lock()
        self.server: JsonServer | None = None
        #: The latest health report of each kiosk (``GET /fleet``).
        self.fleet = FleetBoard()

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> JsonServer:
        shop = r"/shops/(?P<shop>[^/]+)"
        routes: list[tuple[str, str, Callable[[Request], Reply]]] = [
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
            ("POST", r"/drop-points/(?P<dp>[^/]+)/health-reports", self._health_reports),
            ("GET", r"/fleet", self._fleet),
            ("GET", r"/fleet\.html", self._fleet_page),
            ("GET", r"/_sim/state", self._state),
        ]
        self.server = JsonServer(routes, host, port)
        return self.server

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        self._webhooks.close()

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
                # A return answers as it stands: after the kiosk reported an offline voucher for it,
                # that voucher, never the online one that was released.
                recorded = self.store.return_for_key(token, key)
                if recorded is not None:
                    return self._return_reply(request, recorded)
                return Reply(stored[0], stored[1].encode("utf-8"))
        try:
            reply = self._scan_once(request, token, key)
        except BaseException:  # a stand-in bug: answered 500 by the server, and no answer to replay
            if key:
                self.store.finish_idempotent(token, key, 500, None)
            raise
        if key:
            self.store.finish_idempotent(token, key, reply.status, reply.body.decode("utf-8"))
        if 400 <= reply.status < 500 and reply.status != 409:
            with self._recent_4xx_lock:
                self._recent_4xx.setdefault(token, []).append(time.monotonic())
        return reply

    def _scan_once(self, request: Request, token: str, key: str | None) -> Reply:
        try:
            body = request.json()
        except ValueError:
            self.store.log_scan(None, 400)
            return error_reply(400, "body is not JSON")
        barcode = body.get("barcode") if isinstance(body, dict) else None
        reply = self._answer_scan(request, body, barcode, token, key)
        self.store.log_scan(barcode if isinstance(barcode, str) else None, reply.status)
        return reply

    def _answer_scan(self, request: Request, body: Any, barcode: Any, token: str, key: str | None) -> Reply:
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
            return_id = self.store.record_return(barcode, shop_id, drop_point["id"], hardware_id, token=token, key=key)
        except DuplicateReturn:
            return error_reply(409, "This packaging has already been returned")
        self._reward(return_id, shop_id, drop_point["country"])
        return self._return_reply(request, self.store.return_row(return_id))

    def _return_reply(self, request: Request, record: dict[str, Any]) -> Reply:
        """The scan answer for a return, with its reward as it stands now."""
        voucher, shop_id = record["voucher"], record["voucher_shop_id"]
        return json_reply(
            201,
            {
                "id": record["id"],
                "type": "Voucher",
                "created_at": record["created_at"],
                "updated_at": record["updated_at"],
                "deleted_at": None,
                "data": self._scan_data(request, voucher, shop_id) if voucher is not None else None,
            },
        )

    def _scan_data(self, request: Request, voucher: dict[str, Any], shop_id: str | None) -> dict[str, Any]:
        shop = self.store.shop(shop_id) if shop_id is not None else None
        return {
            "code": voucher["code"],
            "link": voucher.get("link"),
            "conditions": voucher["conditions"],
            "expires_at": voucher["expires_at"],
            "value": voucher["value"],
            "value_data": {"type": voucher["type"], "value": voucher["value"], "unit": voucher["unit"]},
            "shop": None
            if shop is None
            else {
                "name": shop["name"],
                "description": shop["description"],
                "logo_url": f"{request.origin}/shops/{shop_id}/logo" if shop["logo_png"] else None,
                "website": shop["website"],
            },
        }

    def _reward(self, return_id: str, shop_id: str, country: str) -> None:
        """Look for the return's voucher, pool by pool (see the module's docstring for the order),
        until one is attached or the kiosk has reported an offline voucher for the return."""
        pools = [p for p in self.store.pools() if country in p.countries]
        own = [p for p in pools if p.shop_id == shop_id and p.visibility in _OWN]
        shared = [p for p in pools if p.shop_id != shop_id and p.visibility in _SHARED]
        own.sort(key=lambda p: p.pool_type != "on_demand")
        shared.sort(key=lambda p: (p.pool_type != "on_demand", p.visibility != "public"))
        for pool in own + shared:
            if pool.pool_type == "on_demand":
                voucher = self._webhook_voucher(pool)
                if voucher is None:
                    continue
                settled = self.store.settle_on_demand(return_id, pool, voucher, now_iso())
                if settled == "repeated":
                    self._webhook_failed(pool, "code: the webhook answered this code before")
            else:
                settled = self.store.settle_static(return_id, pool.id, now_iso())
            if settled in ("attached", "reconciled"):
                return

    def _webhook_voucher(self, pool: Pool) -> dict[str, Any] | None:
        """Ask the shop's webhook, within the webhook timeout for the whole call. Any failure (no
        whole answer in time, a status other than 2xx, an answer over 64 KiB, an invalid voucher)
        means 'use the static pools', as the seed says."""
        if not pool.webhook_url:
            return None
        body = json.dumps({"voucher_pool_id": pool.id}).encode("utf-8")
        headers = {"Content-Type": "application/json", "Webhook-Version": "1"}
        headers |= sign_request(self._key, self.keyid, "POST", pool.webhook_url, headers, created=int(time.time()))
        try:
            answer = self._webhooks.post(pool.webhook_url, body, headers)
        except WebhookFailed as exc:
            self._webhook_failed(pool, str(exc))
            return None
        if not 200 <= answer.status < 300:
            self._webhook_failed(pool, f"HTTP {answer.status}")
            return None
        try:
            doc = parse_json(answer.body)
        except ValueError:
            self._webhook_failed(pool, "answer is not JSON of Unicode text")
            return None
        try:
            return shop_voucher(doc, now=datetime.now(UTC))
        except VoucherError as exc:
            self._webhook_failed(pool, f"invalid voucher: {exc.field}")
            return None

    def _webhook_failed(self, pool: Pool, reason: str) -> None:
        """Note the failure for ``/_sim/state`` (RE-ZIP logs it, the seed says); the reason never
        holds what the webhook sent beyond a field's name."""
        with self._webhook_failures_lock:
            self._webhook_failures.append({"pool_id": pool.id, "reason": reason, "at": now_iso()})

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
        problem = pool_problem(doc)
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
        try:  # the batch's fields, checked as a voucher (each code and its link come with the codes)
            checked = shop_voucher({**doc, "code": "BATCH", "link": None}, now=datetime.now(UTC))
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
        now = datetime.now(UTC)
        for index, item in enumerate(doc["codes"]):
            code, link = (item.get("code"), item.get("link")) if isinstance(item, dict) else (item, None)
            try:
                checked = shop_voucher({**batch, "code": code, "link": link}, now=now)
            except VoucherError as exc:
                return error_reply(400, f"codes[{index}].{exc}")
            codes.append((checked["code"], checked["link"]))
        try:
            added = self.store.add_codes(batch["id"], codes)
        except DuplicateCode as exc:
            index = next(i for i, (code, _) in enumerate(codes) if code == exc.code)
            return error_reply(400, f"codes[{index}].code: already in another batch of this shop")
        return json_reply(201, {"added": added})

    # --- offline pools (our proposal; not in RE-ZIP's public API) ----------------------------------

    def _kiosk_drop_point(self, request: Request) -> tuple[str, Any]:
        """The caller's token and the drop point it acts for."""
        caller = self._caller(request)
        if caller is None:
            raise HttpError(401, "missing or unknown access token")
        if caller[1]["kind"] not in ("kiosk", "admin"):
            raise HttpError(403, "this token may not act for a drop point")
        drop_point = self.store.drop_point(request.params["dp"])
        if drop_point is None:
            raise HttpError(404, "unknown drop point")
        return caller[0], drop_point

    def _reserve(self, request: Request) -> Reply:
        """A signed bundle of static-pool codes reserved for one drop point's offline use."""
        _, drop_point = self._kiosk_drop_point(request)
        doc = request.json_object() if request.body else {}
        per_pool = doc.get("per_pool", 20)
        if not isinstance(per_pool, int) or not 1 <= per_pool <= 500:
            raise HttpError(400, "per_pool: must be a whole number from 1 to 500")
        now = datetime.now(UTC)
        stamp = iso_z(now)
        expires = iso_z(now + timedelta(days=7))
        reserved = self.store.reserve(drop_point["id"], drop_point["country"], per_pool, stamp, expires)
        pools = [p for p in self.store.pools() if any(c["pool_id"] == p.id for c in reserved["codes"])]
        prefixes = self.store.prefixes()
        shop_ids = {p.shop_id for p in pools} | set(prefixes.values())
        shops = {}
        for shop_id in sorted(shop_ids):
            shop = self.store.shop(shop_id)
            if shop is not None:
                shops[shop_id] = {
                    "name": shop["name"],
                    "description": shop["description"],
                    "website": shop["website"],
                    "logo_url": f"{request.origin}/shops/{shop_id}/logo" if shop["logo_png"] else None,
                }
        bundle = {
            "bundle_id": reserved["id"],
            "drop_point_id": drop_point["id"],
            "country": drop_point["country"],
            "issued_at": stamp,
            "expires_at": expires,
            "shops": shops,
            "prefixes": prefixes,
            "pools": [
                {"id": p.id, "shop_id": p.shop_id, "countries": p.countries, "visibility": p.visibility} for p in pools
            ],
            "codes": reserved["codes"],
        }
        body = json.dumps(bundle, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return Reply(201, body, headers={"Bundle-Signature": sign_detached(self._key, self.keyid, body)})

    def _release(self, request: Request) -> Reply:
        _, drop_point = self._kiosk_drop_point(request)
        released = self.store.release(drop_point["id"], request.params["rid"], now_iso())
        if released is None:
            raise HttpError(404, "unknown reservation")
        return json_reply(200, {"released": released})

    def _offline_issuances(self, request: Request) -> Reply:
        token, drop_point = self._kiosk_drop_point(request)
        items = request.json_object().get("issuances")
        if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("key") for i in items):
            raise HttpError(400, "issuances: must be a list of {key, code, packaging, issued_at[, online_attempt_key]}")
        results = [
            {
                "key": str(item["key"]),
                "status": self.store.record_offline_issuance(drop_point["id"], item, token, now_iso()),
            }
            for item in items
        ]
        return json_reply(200, {"results": results})

    # --- health reports and the fleet view (our proposal; kiosk.fleet.health_client) ---------------

    def _health_reports(self, request: Request) -> Reply:
        _, drop_point = self._kiosk_drop_point(request)
        try:
            accepted = self.fleet.receive(drop_point["id"], request.json_object())
        except ReportError as exc:
            raise HttpError(400, str(exc)) from None
        return json_reply(200, {"accepted": accepted})

    def _require_admin(self, request: Request) -> None:
        caller = self._caller(request)
        if caller is None:
            raise HttpError(401, "missing or unknown access token")
        if caller[1]["kind"] != "admin":
            raise HttpError(403, "the fleet view is for the operator's token")

    def _fleet(self, request: Request) -> Reply:
        self._require_admin(request)
        return json_reply(200, {"kiosks": self.fleet.view(), "stale_after_s": self.fleet.stale_after_s})

    def _fleet_page(self, request: Request) -> Reply:
        self._require_admin(request)
        return Reply(
            200,
            self.fleet.page().encode("utf-8"),
            content_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
        )

    def _state(self, request: Request) -> Reply:
        offline = self.store.offline_issuances()
        offline_codes = {item.get("code") for item in offline}
        return json_reply(
            200,
            {
                "plucked": [code for code in self.store.plucked_codes() if code not in offline_codes],
                "offline_issuances": offline,
                "scans": self.store.scan_log(),
                "returns": [
                    {"barcode": r["barcode"], "source": r["reward_source"], "voucher": r["voucher"]}
                    for r in self.store.returns()
                ],
                "voided": self.store.voided_codes(),
                "put_back": self.store.put_back_codes(),
                "webhook_failures": self._failures(),
            },
        )

    def _failures(self) -> list[dict[str, str]]:
        with self._webhook_failures_lock:
            return list(self._webhook_failures)


def _load_or_create_key(path: Path) -> tuple[ec.EllipticCurvePrivateKey, str]:
    """The backend's webhook-signing key, kept in a 0600 file beside the database, and its key id."""
    key, _ = load_or_create_key(path)
    return key, "key-" + key_fingerprint(key)[:8]
