"""The demo world's Voucherify-backed shop, Nordlys Kaffe: what such a shop deploys, running on loopback.

Started here, in this process: the stand-in Voucherify (seeded with the demo campaigns), the shop's
own checkout (``kiosk.sim.shop_checkout``, its landing page), and a real ``kiosk shop webhook``
(``kiosk.shop.service``, on an event loop of its own) read from a ``shop.toml`` written for them.
Then ``kiosk shop export-batch`` (run ``demo``, so a restart on the same folder adds nothing) fills
the shop's static RE-ZIP pool with codes of the same campaign, which offline kiosks hand out. The
stand-in backend must be running, seeded (``kiosk.sim.demo_seed``): the shop's pools and token are
there, and its on-demand pool is pointed at this webhook.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from kiosk.secret_files import write_secret_file
from kiosk.shop.config import ShopConfig, load_shop_config
from kiosk.shop.export import ExportResult, export_batch
from kiosk.shop.service import ShopService
from kiosk.sim.backend_store import BackendStore
from kiosk.sim.demo_seed import DEMO_SHOP_TOKEN, SHOPS, VOUCHERIFY_POOL_ID, VOUCHERIFY_STATIC_POOL_ID
from kiosk.sim.loop_thread import LoopThread
from kiosk.sim.shop_checkout import ShopCheckout
from kiosk.sim.voucherify import StandInVoucherify, seed_demo
from kiosk.supervisor import Supervisor

__all__ = ["VoucherifyShop", "voucherify_shop", "CAMPAIGN", "TILL_TOKEN", "EXPORT_COUNT", "EXPORT_RUN"]

#: The stand-in's demo campaign the shop publishes from: 20 %, single-use codes RZ20-XXXX-XXXX.
CAMPAIGN = "RE-ZIP 20 percent"
#: The token the shop's checkout redeems with (``POST /redemptions``).
TILL_TOKEN = "demo-till-token-nordlys"
EXPORT_COUNT = 20
EXPORT_RUN = "demo"
#: Requests a minute the demo's stand-in Voucherify takes: more than a small plan, so that a test
#: run's scans never meet the limit by chance (tests lower it on purpose).
RATE_LIMIT = 3000


@dataclass
class VoucherifyShop:
    voucherify: StandInVoucherify
    service: ShopService
    config: ShopConfig
    checkout: ShopCheckout
    export: ExportResult
    loop: LoopThread

    @property
    def webhook_url(self) -> str:
        return self.config.webhook_url

    def link_for(self, code: str) -> str:
        return self.config.link_for(code)


@contextmanager
def voucherify_shop(
    folder: Path,
    backend_url: str,
    store: BackendStore,
    *,
    export_count: int = EXPORT_COUNT,
    voucherify_transport: Callable[[], httpx.AsyncBaseTransport] | None = None,
) -> Iterator[VoucherifyShop]:
    """Run the shop (see the module's docstring) until the block ends; ``voucherify_transport``
    goes under every Voucherify client it makes (the tests validate the traffic against the spec)."""
    folder = folder.absolute()  # the shop.toml written there names its files from its own folder
    with ExitStack() as stack:
        folder.mkdir(parents=True, exist_ok=True)
        voucherify = StandInVoucherify(folder / "voucherify.sqlite", rate_limit=RATE_LIMIT)
        seed_demo(voucherify.store)
        voucherify.serve().start()
        stack.callback(voucherify.close)
        checkout = ShopCheckout(SHOPS["kaffe"].name)
        checkout.serve().start()
        stack.callback(lambda: checkout.server.stop() if checkout.server else None)
        with _reserved_port() as port:
            config = load_shop_config(_write_config(folder, port, backend_url, voucherify, checkout))
            secrets = config.read_secrets()
            service = ShopService(config, secrets, voucherify_transport=voucherify_transport)
            loop = LoopThread("shop-service")
            stack.callback(loop.close)
            supervisor = Supervisor()
            loop.run(_start(service, supervisor))
            stack.callback(lambda: loop.run(_stop(service, supervisor)))
        checkout.service_url, checkout.till_token = service.url, TILL_TOKEN
        store.set_webhook_url(VOUCHERIFY_POOL_ID, config.webhook_url)
        exported = loop.run(
            export_batch(config, secrets, export_count, run_id=EXPORT_RUN, voucherify_transport=voucherify_transport),
            timeout=120,
        )
        yield VoucherifyShop(voucherify, service, config, checkout, exported, loop)


async def _start(service: ShopService, supervisor: Supervisor) -> None:
    await service.start()
    supervisor.start("shop-service-accept", service.serve)


async def _stop(service: ShopService, supervisor: Supervisor) -> None:
    await supervisor.stop()
    await service.stop()


@contextmanager
def _reserved_port() -> Iterator[int]:
    """A loopback port nobody else takes until the block ends: bound (with SO_REUSEADDR) but not
    listening, so the service may bind it too, and it must be known before the service's
    configuration is written (its public URL holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def _write_config(
    folder: Path, port: int, backend_url: str, voucherify: StandInVoucherify, checkout: ShopCheckout
) -> Path:
    write_secret_file(folder / "rezip.token", DEMO_SHOP_TOKEN.encode("ascii") + b"\n")
    write_secret_file(folder / "till.token", TILL_TOKEN.encode("ascii") + b"\n")
    assert voucherify.server is not None
    path = folder / "shop.toml"
    path.write_text(
        f"""# Written by the demo world for Nordlys Kaffe's shop service.
[server]
public_url = "http://127.0.0.1:{port}"
listen = "127.0.0.1:{port}"
redemptions_token_file = "till.token"
link_checks_per_minute = 600

[rezip]
shop_id = "{SHOPS["kaffe"].id}"
token_file = "rezip.token"
jwks_url = "{backend_url}/.well-known/jwks.json"
api_url = "{backend_url}"
static_pool_id = "{VOUCHERIFY_STATIC_POOL_ID}"

[voucherify]
app_id = "{voucherify.app_id}"
app_token_file = "{voucherify.token_file}"
campaign = "{CAMPAIGN}"
url = "{voucherify.server.url}"

[voucher]
currency = "DKK"
conditions = "Min. køb 150 DKK / Min. purchase 150 DKK"
landing_url = "{checkout.landing_template}"

[export]
state_file = "export-batch.json"
""",
        "utf-8",
    )
    return path
