"""The seeded stand-in world in one call: backend, its shop webhook, the demo data, and the
Voucherify-backed shop (``kiosk.sim.voucherify_shop``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from kiosk.sim.backend import StandInBackend
from kiosk.sim.demo_seed import seed_demo
from kiosk.sim.httpd import JsonServer
from kiosk.sim.shop_webhook import ShopWebhook
from kiosk.sim.voucherify_shop import VoucherifyShop, voucherify_shop

__all__ = ["DemoWorld", "demo_world"]


@dataclass
class DemoWorld:
    backend: StandInBackend
    server: JsonServer
    webhook: ShopWebhook
    #: Nordlys Kaffe's Voucherify, shop service and checkout; None when the world was made without.
    shop: VoucherifyShop | None = None

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def demo_world(
    folder: Path,
    *,
    webhook_timeout_s: float = 1.5,
    voucherify: bool = True,
    voucherify_transport: Callable[[], httpx.AsyncBaseTransport] | None = None,
) -> Iterator[DemoWorld]:
    """Start the seeded stand-in backend (SQLite in ``folder``), its shop webhook and (with
    ``voucherify``) the Voucherify-backed shop, all on loopback."""
    with ExitStack() as stack:
        backend = StandInBackend(folder / "backend.sqlite", webhook_timeout_s=webhook_timeout_s)
        stack.callback(backend.close)
        server = backend.serve().start()
        webhook = ShopWebhook(server.url + "/.well-known/jwks.json")
        webhook_server = webhook.serve().start()
        stack.callback(webhook_server.stop)
        seed_demo(backend.store, webhook.url, webhook.failing_url)
        shop = None
        if voucherify:
            shop = stack.enter_context(
                voucherify_shop(folder / "shop", server.url, backend.store, voucherify_transport=voucherify_transport)
            )
        yield DemoWorld(backend, server, webhook, shop)
