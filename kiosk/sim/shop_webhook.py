"""A stand-in shop webhook for on-demand voucher pools, as a shop would write one.

It verifies RE-ZIP's RFC 9421 signature against the backend's JWKS (fetched once, refetched when an
unknown ``keyid`` shows up, as after a monthly rotation), checks ``Webhook-Version: 1`` and the body
``{"voucher_pool_id": ...}``, then answers a fresh voucher; anything else gets a 4xx. Tests switch
it into failure modes through ``POST /_sim/mode`` to prove the backend's fallback. It also serves a
second shop's webhook that is down for maintenance (``failing_url``: a verified request gets a 503),
so the demo shows the fallback to static pools without switching modes.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.signatures import SignatureError, public_key_from_jwk, verify_request
from kiosk.sim.httpd import JsonServer, Reply, Request, error_reply, json_reply

__all__ = ["ShopWebhook", "Mode", "MODES"]

Mode = Literal["ok", "error", "timeout", "invalid"]
MODES: tuple[Mode, ...] = ("ok", "error", "timeout", "invalid")


class ShopWebhook:
    """Hands out percentage vouchers with a redirect link, or fails the way ``mode`` says."""

    def __init__(
        self, jwks_url: str, *, mode: Mode = "ok", shop_domain: str = "hyggelig-sko.example", hang_s: float = 10.0
    ) -> None:
        self.jwks_url = jwks_url
        self.mode: Mode = mode
        self.shop_domain = shop_domain
        self.hang_s = hang_s
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._lock = threading.Lock()
        self.counts = {"verified": 0, "rejected": 0, "answered": 0}
        self.server: JsonServer | None = None

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> JsonServer:
        self.server = JsonServer(
            [
                ("POST", r"/rezip/voucher", self._voucher),
                ("POST", r"/rezip/voucher/unavailable", self._unavailable),
                ("POST", r"/_sim/mode", self._set_mode),
                ("GET", r"/_sim/state", self._state),
            ],
            host,
            port,
        )
        return self.server

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + "/rezip/voucher"

    @property
    def failing_url(self) -> str:
        assert self.server is not None
        return self.server.url + "/rezip/voucher/unavailable"

    def _voucher(self, request: Request) -> Reply:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        mode = self.mode
        if mode == "error":
            return error_reply(500, "voucher service is down")
        if mode == "timeout":
            time.sleep(self.hang_s)
        if mode == "invalid":
            return json_reply(200, {"code": "", "type": "amount", "value": "lots"})
        code = f"HS-{secrets.token_hex(4).upper()}"
        with self._lock:
            self.counts["answered"] += 1
        expires = datetime.now(UTC) + timedelta(days=90)
        return json_reply(
            200,
            {
                "code": code,
                "link": f"https://{self.shop_domain}/redeem?code={code}",
                "type": "percentage",
                "value": 20,
                "unit": "%",
                "conditions": "Min. køb 300 DKK / Min. purchase 300 DKK",
                "expires_at": expires.replace(hour=0, minute=0, second=0, microsecond=0)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
            },
        )

    def _unavailable(self, request: Request) -> Reply:
        return self._refusal(request) or error_reply(503, "voucher service down for maintenance")

    def _refusal(self, request: Request) -> Reply | None:
        """The 4xx answer for a request RE-ZIP did not send, or None when it did."""
        try:
            self._verify(request)
        except SignatureError as exc:
            with self._lock:
                self.counts["rejected"] += 1
            return error_reply(401, f"invalid signature: {exc}")
        with self._lock:
            self.counts["verified"] += 1
        if request.header("webhook-version") != "1":
            return error_reply(400, "Webhook-Version: only 1 is understood")
        try:
            doc = request.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("voucher_pool_id"), str):
            return error_reply(400, 'body: must be {"voucher_pool_id": "<the pool\'s id>"}')
        return None

    def _verify(self, request: Request) -> None:
        target = request.origin + request.path
        for attempt in range(2):
            keys = self._jwks(refresh=attempt == 1)
            try:
                verify_request(request.method, target, request.headers, keys, now=int(time.time()))
                return
            except SignatureError as exc:
                if "unknown keyid" not in str(exc) or attempt == 1:
                    raise

    def _jwks(self, *, refresh: bool) -> dict[str, ec.EllipticCurvePublicKey]:
        with self._lock:
            if self._keys and not refresh:
                return dict(self._keys)
        try:
            doc = httpx.get(self.jwks_url, timeout=2.0).json()
            keys = {str(k["kid"]): public_key_from_jwk(k) for k in doc["keys"]}
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise SignatureError(f"cannot load the JWKS: {exc}") from None
        with self._lock:
            self._keys = keys
        return dict(keys)

    def _set_mode(self, request: Request) -> Reply:
        try:
            mode = request.json().get("mode")
        except (ValueError, AttributeError):
            mode = None
        if mode not in MODES:
            return error_reply(400, f"mode: must be one of {', '.join(MODES)}")
        self.mode = mode
        return json_reply(200, {"mode": mode})

    def _state(self, request: Request) -> Reply:
        with self._lock:
            return json_reply(200, {"mode": self.mode, **self.counts})
