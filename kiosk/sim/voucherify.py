"""The stand-in Voucherify: a real HTTP server on loopback over SQLite, answering like the official API.

It serves what the shop side calls (``kiosk.shop.voucherify``), with the documents, error objects
and keys of the official OpenAPI description (``../shared/specs/voucherify``); the tests validate its
answers against that spec. Where the spec is silent:

- Credentials: one application, ``X-App-Id`` and ``X-App-Token``; its token lives in
  ``DB.app-token`` (0600) beside the database and is kept across restarts. A request without
  them, or with wrong ones, gets ``401`` ``unauthorized``.
- A per-minute request limit (``rate_limit``, 100 by default, as Voucherify's smallest paid plan):
  every request past it within the minute gets ``429`` ``too_many_requests`` with ``Retry-After``
  (whole seconds until the minute is over). Tests change it while it runs (``limit_requests``), and
  make every answer late by ``delay_s`` seconds (a slow Voucherify).
- Campaigns make a new code per publication from their ``code_config`` (an auto-update campaign).
  The same ``source_id`` with the same campaign and customer answers the first publication again
  (its code); the same ``source_id`` with another campaign or customer is ``duplicate_source_id``.
- Validation and redemption check, in this order: the code exists (``404 not_found``), is active
  (``voucher_disabled``), has started (``voucher_not_active``), has not expired (``voucher_expired``),
  has redemptions left (``quantity_exceeded``). One redeemable per request. A rollback gives the
  use back; a second one is ``already_rolled_back``.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from kiosk.core.instants import iso_z
from kiosk.secret_files import read_secret_file, write_secret_file
from kiosk.sim.httpd import AsyncJsonServer, Reply, Request, json_reply
from kiosk.sim.voucherify_store import Refusal, VoucherifyStore, new_id

__all__ = ["StandInVoucherify", "DEFAULT_RATE_LIMIT", "voucherify_error"]

#: Requests a minute, as on Voucherify's smallest paid plan.
DEFAULT_RATE_LIMIT = 100
_STACKING_RULES = {
    "redeemables_limit": 30,
    "applicable_redeemables_limit": 5,
    "applicable_redeemables_per_category_limit": 1,
    "applicable_exclusive_redeemables_limit": 1,
    "applicable_exclusive_redeemables_per_category_limit": 1,
    "exclusive_categories": [],
    "joint_categories": [],
    "redeemables_application_mode": "ALL",
    "redeemables_sorting_rule": "REQUESTED_ORDER",
    "redeemables_no_effect_rule": "REDEEM_ANYWAY",
    "no_effect_skip_categories": [],
    "no_effect_redeem_anyway_categories": [],
    "redeemables_products_application_mode": "STACK",
    "redeemables_rollback_order_mode": "WITH_ORDER",
}
_YEAR = timedelta(days=365)
_MESSAGES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Resource not found",
    405: "Method not allowed",
    413: "Payload too large",
    429: "Too many requests",
    500: "Internal error",
}
_KEYS = {
    400: "invalid_payload",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    429: "too_many_requests",
    500: "internal_error",
}


def voucherify_error(
    status: int,
    details: str,
    *,
    key: str | None = None,
    message: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: str | None,
) -> Reply:
    """Voucherify's error object: ``{code, key, message, details, request_id[, resource_id, resource_type]}``."""
    doc: dict[str, Any] = {
        "code": status,
        "key": key or _KEYS.get(status, "error"),
        "message": message or _MESSAGES.get(status, "Error"),
        "details": details,
        "request_id": "v-" + secrets.token_hex(9),
    }
    doc.update({name: value for name, value in extra.items() if value is not None})
    return json_reply(status, doc, headers)


class _MinuteLimit:
    """At most ``limit`` requests in each minute (counted from the minute's first request)."""

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._clock = clock
        self._started = float("-inf")
        self._count = 0
        self._lock = threading.Lock()

    def wait_s(self) -> int:
        """0 when this request may go ahead, else the whole seconds until the limit lifts."""
        with self._lock:
            now = self._clock()
            if now - self._started >= 60:
                self._started, self._count = now, 0
            self._count += 1
            if self._count <= self.limit:
                return 0
            return max(1, int(self._started + 60 - now + 0.999))


class StandInVoucherify:
    """Wires the store, the credentials, the request limit and the routes together."""

    def __init__(
        self, db_path: Path, *, rate_limit: int = DEFAULT_RATE_LIMIT, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = VoucherifyStore(db_path)
        self.app_id = self.store.setting("app_id", make=lambda: "app-" + secrets.token_hex(8)) or ""
        self.token_file = db_path.with_name(db_path.name + ".app-token")
        if self.token_file.exists():
            self.app_token = read_secret_file(self.token_file)
        else:
            self.app_token = "vfy-" + secrets.token_urlsafe(24)
            write_secret_file(self.token_file, (self.app_token + "\n").encode("ascii"))
        self._clock = clock
        self._limit = _MinuteLimit(rate_limit, clock)
        #: Every answer waits this long first (without holding the others up): a slow Voucherify.
        self.delay_s = 0.0
        self.server: AsyncJsonServer | None = None

    def limit_requests(self, per_minute: int) -> None:
        """A new per-minute request limit, its minute starting with the next request."""
        self._limit = _MinuteLimit(per_minute, self._clock)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncJsonServer:
        code = r"(?P<code>[^/]+)"
        routes = [
            ("GET", r"/v1/campaigns/(?P<campaign>[^/]+)", self._get_campaign),
            ("POST", r"/v1/publications", self._publish),
            ("GET", r"/v1/publications", self._list_publications),
            ("GET", r"/v1/vouchers/" + code, self._get_voucher),
            ("POST", r"/v1/vouchers/" + code + r"/disable", self._disable),
            ("POST", r"/v1/validations", self._validate),
            ("POST", r"/v1/redemptions", self._redeem),
            ("POST", r"/v1/redemptions/(?P<redemption>[^/]+)/rollback", self._rollback),
        ]
        guarded = [(method, pattern, self._guarded(handler)) for method, pattern, handler in routes]
        self.server = AsyncJsonServer(
            guarded,
            host,
            port,
            errors=lambda status, text: voucherify_error(status, text),
            answer_delay=lambda: self.delay_s,
        )
        return self.server

    def ready_line(self) -> dict[str, str]:
        """What ``kiosk sim voucherify`` prints once it serves."""
        assert self.server is not None, "serve() first"
        return {
            "url": self.server.url,
            "app_id": self.app_id,
            "app_token": self.app_token,
            "app_token_file": str(self.token_file),
        }

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()

    # --- the checks every request passes --------------------------------------------------------

    def _guarded(self, handler: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
        def guarded(request: Request) -> Reply:
            wait = self._limit.wait_s()
            if wait:
                return voucherify_error(
                    429,
                    f"You have exceeded the limit of {self._limit.limit} requests per minute",
                    headers={"Retry-After": str(wait)},
                )
            app_id, token = request.header("x-app-id") or "", request.header("x-app-token") or ""
            if not (
                hmac.compare_digest(app_id.encode(), self.app_id.encode())
                and hmac.compare_digest(token.encode(), self.app_token.encode())
            ):
                return voucherify_error(401, "Missing or invalid X-App-Id or X-App-Token")
            request.params = {name: unquote(value) for name, value in request.params.items()}
            try:
                return handler(request)
            except Refusal as refusal:
                return voucherify_error(
                    refusal.status,
                    refusal.details,
                    key=refusal.key,
                    message=refusal.message,
                    resource_id=refusal.resource_id,
                    resource_type=refusal.resource_type,
                )

        return guarded

    # --- campaigns and vouchers -----------------------------------------------------------------

    def _get_campaign(self, request: Request) -> Reply:
        doc = self.store.campaign(request.params["campaign"])
        template = dict(doc.get("voucher") or {})
        template.setdefault("redemption", {"quantity": None})
        template.setdefault("is_referral_code", False)
        if "code_config" in template:  # Voucherify states the length of what the pattern draws
            config = dict(template["code_config"])
            config.setdefault("length", config["pattern"].count("#") if config.get("pattern") else 8)
            template["code_config"] = config
        dates = {name: doc[name] for name in ("start_date", "expiration_date") if doc.get(name)}
        return json_reply(
            200,
            {
                "id": doc["id"],
                "name": doc["name"],
                "campaign_type": doc.get("campaign_type", "DISCOUNT_COUPONS"),
                "type": doc.get("type", "AUTO_UPDATE"),
                "voucher": template,
                "auto_join": False,
                "join_once": False,
                "use_voucher_metadata_schema": True,
                **dates,
                "vouchers_count": doc["vouchers_count"],
                "active": doc.get("active", True),
                "metadata": {},
                "created_at": doc["created_at"],
                "creation_status": "DONE",
                "vouchers_generation_status": "DONE",
                "protected": False,
                "category_id": None,
                "object": "campaign",
                "validation_rules_assignments": {"object": "list", "data_ref": "data", "data": [], "total": 0},
            },
        )

    def _get_voucher(self, request: Request) -> Reply:
        return json_reply(200, self._voucher_doc(self.store.voucher(request.params["code"])))

    def _disable(self, request: Request) -> Reply:
        return json_reply(200, self._voucher_doc(self.store.set_active(request.params["code"], False)))

    def _voucher_doc(self, row: Any) -> dict[str, Any]:
        doc = json.loads(row["doc"])
        code = row["code"]
        return {
            "id": row["id"],
            "code": code,
            "campaign": self.store.campaign_name(row["campaign_id"]),
            "campaign_id": row["campaign_id"],
            "category": None,
            "category_id": None,
            "categories": [],
            "type": doc["type"],
            "discount": doc.get("discount"),
            "gift": doc.get("gift"),
            "loyalty_card": None,
            "start_date": doc.get("start_date"),
            "expiration_date": doc.get("expiration_date"),
            "validity_timeframe": None,
            "validity_day_of_week": None,
            "active": bool(row["active"]),
            "additional_info": doc.get("additional_info"),
            "metadata": {},
            "assets": {
                "qr": {"id": new_id("qr_"), "url": f"https://dl.voucherify.io/api/v1/assets/qr/{row['id']}"},
                "barcode": {"id": new_id("bc_"), "url": f"https://dl.voucherify.io/api/v1/assets/barcode/{row['id']}"},
            },
            "is_referral_code": False,
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "holder_id": row["holder_id"],
            "redemption": {
                "quantity": row["quantity"],
                "redeemed_quantity": row["redeemed"],
                "object": "list",
                "url": f"/v1/vouchers/{code}/redemptions?page=1&limit=10",
            },
            "publish": {
                "object": "list",
                "count": row["published"],
                "url": f"/v1/vouchers/{code}/publications?page=1&limit=10",
            },
            "object": "voucher",
        }

    # --- publications ---------------------------------------------------------------------------

    def _publish(self, request: Request) -> Reply:
        body = _body(request)
        campaign = body.get("campaign")
        if isinstance(campaign, dict):
            name, count = campaign.get("name"), campaign.get("count", 1)
        else:
            name, count = campaign, 1
        if not isinstance(name, str) or not name:
            return voucherify_error(
                400, "Either Campaign or Voucher is required", key="missing_vouchers", message="Missing vouchers"
            )
        if count != 1:
            return voucherify_error(
                400,
                "The stand-in publishes one code at a time",
                key="too_many_vouchers_requested",
                message="Too many vouchers requested",
            )
        customer = body.get("customer")
        customer_source = customer.get("source_id") if isinstance(customer, dict) else None
        if not isinstance(customer_source, str) or not customer_source:
            return voucherify_error(400, "Property .customer.source_id is required")
        source_id = body.get("source_id")
        if source_id is not None and not isinstance(source_id, str):
            return voucherify_error(400, "Property .source_id should be string")
        metadata = body.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        published = self.store.publish(name, source_id, customer_source, metadata)
        voucher = self._voucher_doc(self.store.voucher_by_id(published.voucher_id))
        return json_reply(200, {**self._publication_doc(published.publication), "voucher": voucher})

    def _list_publications(self, request: Request) -> Reply:
        source_ids = request.query.get("source_id")
        items = []
        for publication in self.store.publications(source_ids[0] if source_ids else None):
            voucher = self._voucher_doc(self.store.voucher_by_id(publication["voucher_id"]))
            summary = {
                "code": voucher["code"],
                "object": "voucher",
                "campaign": voucher["campaign"],
                "is_referral_code": False,
            }
            summary |= {"gift": voucher["gift"]} if voucher["gift"] else {"discount": voucher["discount"]}
            items.append({**self._publication_doc(publication), "voucher": summary})
        return json_reply(
            200, {"object": "list", "data_ref": "publications", "publications": items, "total": len(items)}
        )

    @staticmethod
    def _publication_doc(publication: dict[str, Any]) -> dict[str, Any]:
        customer = publication["customer"]
        return {
            "id": publication["id"],
            "object": "publication",
            "created_at": publication["created_at"],
            "customer_id": customer["id"],
            "tracking_id": customer["source_id"],
            "metadata": publication["metadata"],
            "channel": "API",
            "source_id": publication["source_id"],
            "result": "SUCCESS",
            "customer": _customer_doc(customer["id"], customer["source_id"]),
            "vouchers_id": [publication["voucher_id"]],
        }

    # --- validation, redemption, rollback -------------------------------------------------------

    def _redeemable(self, body: dict[str, Any]) -> str:
        """The one voucher code of ``redeemables`` (the stand-in takes one at a time)."""
        items = body.get("redeemables")
        if not (
            isinstance(items, list)
            and len(items) == 1
            and isinstance(items[0], dict)
            and items[0].get("object") == "voucher"
            and isinstance(items[0].get("id"), str)
        ):
            raise Refusal(
                400,
                "invalid_payload",
                "Invalid payload",
                "Property .redeemables must hold one {object: voucher, id: code}",
            )
        return str(items[0]["id"])

    def _validate(self, request: Request) -> Reply:
        body = _body(request)
        code = self._redeemable(body)
        customer = self.store.customer(_customer_source(body))
        validation_id = "valid_" + secrets.token_hex(9)
        tracking = customer["source_id"] if customer else None
        try:
            row = self.store.voucher(code)
            self.store.check(row, datetime.now(UTC))
        except Refusal as refusal:
            item = {
                "status": "INAPPLICABLE",
                "id": code,
                "object": "voucher",
                "result": {
                    "error": {
                        "code": refusal.status,
                        "key": refusal.key,
                        "message": refusal.message,
                        "details": refusal.details,
                        "request_id": "v-" + secrets.token_hex(9),
                        "resource_id": code,
                        "resource_type": "voucher",
                    }
                },
            }
            return json_reply(
                200,
                {
                    "id": validation_id,
                    "valid": False,
                    "redeemables": [item],
                    "inapplicable_redeemables": [item],
                    "skipped_redeemables": [],
                    "stacking_rules": _STACKING_RULES,
                }
                | _tracking(tracking),
            )
        voucher = self._voucher_doc(row)
        item = {
            "status": "APPLICABLE",
            "id": code,
            "object": "voucher",
            "result": {"discount": voucher["discount"]} if voucher["discount"] else {"gift": voucher["gift"]},
            "metadata": {},
            "categories": [],
            "campaign_name": voucher["campaign"],
            "campaign_id": voucher["campaign_id"],
        }
        return json_reply(
            200,
            {"id": validation_id, "valid": True, "redeemables": [item], "stacking_rules": _STACKING_RULES}
            | _tracking(tracking),
        )

    def _redeem(self, request: Request) -> Reply:
        body = _body(request)
        code = self._redeemable(body)
        customer = self.store.customer(_customer_source(body))
        order = body.get("order") if isinstance(body.get("order"), dict) else None
        amount = order.get("amount") if order and isinstance(order.get("amount"), int) else None
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
        row = self.store.redeem(code, customer["id"] if customer else None, amount, metadata, datetime.now(UTC))
        return json_reply(200, {"redemptions": [self._redemption_doc(row, customer)]})

    def _rollback(self, request: Request) -> Reply:
        reason = request.query["reason"][0] if request.query.get("reason") else None
        row = self.store.rollback(request.params["redemption"], reason, datetime.now(UTC))
        customer = self.store.customer_by_id(row["customer_id"])
        doc = self._redemption_doc(row, customer)
        return json_reply(
            200,
            doc
            | {
                "id": row["rollback_id"],
                "object": "redemption_rollback",
                "date": row["rolled_back_at"],
                "redemption": row["id"],
            }
            | ({"reason": reason} if reason else {}),
        )

    def _redemption_doc(self, row: Any, customer: Any) -> dict[str, Any]:
        voucher = self._voucher_doc(self.store.voucher_by_id(row["voucher_id"]))
        tracking = customer["source_id"] if customer else None
        doc = {
            "id": row["id"],
            "object": "redemption",
            "date": row["created_at"],
            "customer_id": customer["id"] if customer else None,
            "tracking_id": tracking,
            "metadata": json.loads(row["metadata"]) if row["metadata"] else None,
            "redemption": None,
            "result": "SUCCESS",
            "status": "SUCCEEDED",
            "order": None,
            "channel": {"channel_id": self.app_id, "channel_type": "API"},
            "customer": _customer_doc(customer["id"], customer["source_id"]) if customer else None,
            "related_object_type": "voucher",
            "related_object_id": row["voucher_id"],
            "voucher": voucher,
        }
        if row["amount"] is not None:
            doc["amount"] = row["amount"]
        return doc


def _body(request: Request) -> dict[str, Any]:
    try:
        doc = request.json()
    except ValueError:
        raise Refusal(400, "invalid_payload", "Invalid payload", "The body is not JSON") from None
    if not isinstance(doc, dict):
        raise Refusal(400, "invalid_payload", "Invalid payload", "The body must be a JSON object")
    return doc


def _customer_source(body: dict[str, Any]) -> str | None:
    customer = body.get("customer")
    source = customer.get("source_id") if isinstance(customer, dict) else None
    return source if isinstance(source, str) and source else None


def _tracking(tracking: str | None) -> dict[str, str]:
    return {"tracking_id": tracking} if tracking else {}


def _customer_doc(customer_id: str, source_id: str) -> dict[str, Any]:
    return {"id": customer_id, "source_id": source_id, "metadata": {}, "object": "customer"}


def seed_demo(store: VoucherifyStore, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """The demo shop's campaigns, by kind: ``percent`` (20 %, single use), ``amount`` (50.00 DKK,
    single use), ``unit`` (one tote bag, single use); codes expire a year after seeding."""
    expires = iso_z((now or datetime.now(UTC)).replace(microsecond=0) + _YEAR)
    single = {"quantity": 1}
    campaigns = {
        "percent": {
            "name": "RE-ZIP 20 percent",
            "voucher": {
                "type": "DISCOUNT_VOUCHER",
                "discount": {"type": "PERCENT", "percent_off": 20, "effect": "APPLY_TO_ORDER"},
                "redemption": single,
                "code_config": {"pattern": "RZ20-####-####", "charset": "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"},
            },
        },
        "amount": {
            "name": "RE-ZIP 50 DKK",
            "voucher": {
                "type": "DISCOUNT_VOUCHER",
                "discount": {"type": "AMOUNT", "amount_off": 5000, "effect": "APPLY_TO_ORDER"},
                "redemption": single,
                "code_config": {"prefix": "RZ50-", "length": 8, "charset": "0123456789"},
            },
        },
        "unit": {
            "name": "RE-ZIP tote bag",
            "voucher": {
                "type": "DISCOUNT_VOUCHER",
                "discount": {
                    "type": "UNIT",
                    "unit_off": 1,
                    "unit_type": "prod_rezip_tote",
                    "effect": "ADD_MISSING_ITEMS",
                    "product": {"id": "prod_rezip_tote", "source_id": "tote", "name": "RE-ZIP tote bag"},
                },
                "redemption": single,
                "code_config": {"pattern": "TOTE-######", "charset": "0123456789ABCDEF"},
            },
        },
    }
    return {
        kind: store.create_campaign(
            {**doc, "campaign_type": "DISCOUNT_COUPONS", "type": "AUTO_UPDATE", "expiration_date": expires}
        )
        for kind, doc in campaigns.items()
    }
