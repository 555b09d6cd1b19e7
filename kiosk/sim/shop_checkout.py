"""The demo shop's checkout: where a good voucher link lands the customer (``voucher.landing_url``).

It stands for a webshop's cart: it applies the code by redeeming it through the shop service's
``POST /redemptions``, as a till would, and shows one short page saying whether that worked. So in
the demo a voucher's QR link works once: the first visit is redirected here and redeems the code,
and the link then shows the customer's "already used" page.
"""

from __future__ import annotations

import html

import httpx

from kiosk.sim.httpd import JsonServer, Reply, Request

__all__ = ["ShopCheckout"]

_PAGE = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
    "<body><h1>{title}</h1><p>{text}</p></body></html>\n"
)
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class ShopCheckout:
    """``GET /cart?discount=CODE`` redeems CODE at ``service_url`` with the till's token."""

    def __init__(self, shop_name: str) -> None:
        self.shop_name = shop_name
        self.service_url = ""
        self.till_token = ""
        self.server: JsonServer | None = None

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> JsonServer:
        self.server = JsonServer([("GET", r"/cart", self._cart)], host, port)
        return self.server

    @property
    def landing_template(self) -> str:
        """``voucher.landing_url`` for the shop service."""
        assert self.server is not None
        return self.server.url + "/cart?discount={code}"

    def _cart(self, request: Request) -> Reply:
        codes = request.query.get("discount", [])
        code = codes[0] if len(codes) == 1 else ""
        answer = httpx.post(
            self.service_url + "/redemptions",
            json={"code": code},
            timeout=10.0,
            headers={"Authorization": f"Bearer {self.till_token}"},
        )
        if answer.status_code == 200:
            title, text = f"{self.shop_name}: your discount is applied", f"Voucher {code} was redeemed for this order."
        else:
            error = (
                answer.json().get("message", "")
                if answer.headers.get("content-type", "").startswith("application/json")
                else ""
            )
            title, text = f"{self.shop_name}: the discount could not be applied", f"Voucher {code}: {error}"
        page = _PAGE.format(title=html.escape(title), text=html.escape(text))
        return Reply(200, page.encode("utf-8"), content_type="text/html; charset=utf-8", headers=_HEADERS)
