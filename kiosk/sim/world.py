"""The seeded stand-in world in one call: backend, its shop webhook, the demo data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kiosk.sim.backend import StandInBackend
from kiosk.sim.demo_seed import seed_demo
from kiosk.sim.httpd import JsonServer
from kiosk.sim.shop_webhook import ShopWebhook

__all__ = ["DemoWorld", "demo_world"]


@dataclass
class DemoWorld:
    backend: StandInBackend
    server: JsonServer
    webhook: ShopWebhook

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def demo_world(folder: Path, *, webhook_timeout_s: float = 1.5) -> Iterator[DemoWorld]:
    """Start the seeded stand-in backend (SQLite in ``folder``) and its shop webhook on loopback."""
    backend = StandInBackend(folder / "backend.sqlite", webhook_timeout_s=webhook_timeout_s)
    server = backend.serve().start()
    webhook = ShopWebhook(server.url + "/.well-known/jwks.json")
    webhook_server = webhook.serve().start()
    seed_demo(backend.store, webhook.url, webhook.failing_url)
    try:
        yield DemoWorld(backend, server, webhook)
    finally:
        webhook_server.stop()
        backend.close()
