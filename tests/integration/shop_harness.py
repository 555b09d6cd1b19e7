"""A running ``kiosk shop webhook`` for the tests: the real service (``ShopService``) on an event loop
of its own, against the stand-in Voucherify (every request and answer validated against the official
spec) and RE-ZIP's keys on a loopback JWKS, configured through a real ``shop.toml``.

Its public URL is ``https://shop.example.com`` (what RE-ZIP signs) while it listens on 127.0.0.1, and
its clock stands at the signature tests' ``NOW``, so the deliveries of
``tests/integration/test_shop_signatures.py`` (``delivery``, ``hostile_delivery``) are what RE-ZIP
would send it. A log capture knows what must never be logged."""

from __future__ import annotations

import collections
import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from kiosk.logs import RequestUrlFilter
from kiosk.secret_files import write_secret_file
from kiosk.shop.config import load_shop_config
from kiosk.shop.service import ShopService
from kiosk.signatures import public_jwk
from kiosk.sim.httpd import JsonServer, Reply, Request, json_reply
from kiosk.sim.loop_thread import LoopThread
from kiosk.sim.voucherify import StandInVoucherify, seed_demo
from kiosk.supervisor import Supervisor
from tests.integration.test_shop_signatures import BODY, KEY_1, NOW, PATH, PUBLIC, delivery
from tests.voucherify_spec import SpecCheckingTransport

__all__ = ["ShopHarness", "LogCapture", "PERCENT", "TILL_TOKEN", "spec_transports"]

PERCENT = "RE-ZIP 20 percent"
REZIP_TOKEN = "rezip-shop-token-SECRET"
TILL_TOKEN = "till-token-SECRET-1234"


def spec_transports(problems: list[str]) -> Any:
    """A transport factory for Voucherify clients: each client its own transport (closing one must
    not close another's), all reporting into ``problems``."""
    return lambda: SpecCheckingTransport(problems=problems)


class LogCapture(logging.Handler):
    """Every record from INFO up (the kiosk's own from DEBUG), through the handler's URL filter, as
    ``kiosk.logs.configure_logging`` sets it up in the field."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RequestUrlFilter())
        self.records: collections.deque[logging.LogRecord] = collections.deque(maxlen=20_000)
        self._stack = ExitStack()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> LogCapture:
        root, ours = logging.getLogger(), logging.getLogger("kiosk")
        self._stack.callback(root.setLevel, root.level)
        self._stack.callback(ours.setLevel, ours.level)
        root.setLevel(logging.INFO)
        ours.setLevel(logging.DEBUG)
        root.addHandler(self)
        self._stack.callback(root.removeHandler, self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def problems(self, secrets: list[str]) -> list[str]:
        """Tracebacks and any secret in what was logged so far; the capture is emptied."""
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        found = []
        while self.records:
            record = self.records.popleft()
            text = formatter.format(record)
            if record.exc_info or "Traceback" in text:
                found.append("traceback: " + text[:2000])
            found += [
                f"secret {secret[:8]}… logged: {text[:300]}"
                for secret in secrets
                if secret and len(secret) >= 4 and secret in text
            ]
        return found


class _Jwks:
    """RE-ZIP's published keys: KEY_1 as ``k1``."""

    def __init__(self) -> None:
        self.requests = 0
        self.server = JsonServer([("GET", r"/.well-known/jwks.json", self._serve)]).start()
        self.url = self.server.url + "/.well-known/jwks.json"

    def _serve(self, request: Request) -> Reply:
        self.requests += 1
        return json_reply(200, {"keys": [public_jwk(KEY_1.public_key(), "k1")]})


class ShopHarness:
    """``with ShopHarness(tmp_path) as shop: shop.deliver()``."""

    def __init__(
        self,
        folder: Path,
        *,
        rate_limit: int = 100_000,
        till: bool = True,
        deadline_s: float = 1.2,
        link_checks_per_minute: int = 600,
        campaign: str = PERCENT,
    ) -> None:
        self.folder = folder
        self.options = {
            "till": till,
            "deadline_s": deadline_s,
            "link_checks": link_checks_per_minute,
            "campaign": campaign,
        }
        self.rate_limit = rate_limit
        self.problems: list[str] = []  # what the spec check found
        self._stack = ExitStack()

    def __enter__(self) -> ShopHarness:
        stack = self._stack
        self.voucherify = StandInVoucherify(self.folder / "voucherify.sqlite", rate_limit=self.rate_limit)
        self.campaigns = seed_demo(self.voucherify.store)
        self.voucherify_server = self.voucherify.serve().start()
        stack.callback(self.voucherify.close)
        self.jwks = _Jwks()
        stack.callback(self.jwks.server.stop)
        self.config = load_shop_config(self.write_config())
        self.secrets = self.config.read_secrets()
        self.loop = LoopThread("shop-under-test")
        stack.callback(self.loop.close)
        self.service = ShopService(
            self.config, self.secrets, clock=lambda: NOW, voucherify_transport=spec_transports(self.problems)
        )
        self.supervisor = Supervisor()
        self.loop.run(self._start())
        stack.callback(lambda: self.loop.run(self._stop()))
        self.http = httpx.Client(base_url=self.service.url, timeout=10.0)
        stack.callback(self.http.close)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    async def _start(self) -> None:
        await self.service.start()
        self.supervisor.start("shop-service-accept", self.service.serve)

    async def _stop(self) -> None:
        await self.supervisor.stop()
        await self.service.stop()

    def write_config(self, name: str = "shop.toml", **changes: str) -> Path:
        """``name`` (and the token files) for this harness; ``changes`` replace whole lines
        (``campaign='campaign = "X"'``) for the tests that start a service of their own."""
        write_secret_file(self.folder / "rezip.token", REZIP_TOKEN.encode() + b"\n")
        write_secret_file(self.folder / "till.token", TILL_TOKEN.encode() + b"\n")
        till = 'redemptions_token_file = "till.token"' if self.options["till"] else ""
        lines = {
            "campaign": f'campaign = "{self.options["campaign"]}"',
            "url": f'url = "{self.voucherify_server.url}"',
            "app_token_file": f'app_token_file = "{self.voucherify.token_file}"',
            "listen": 'listen = "127.0.0.1:0"',
        } | changes
        path = self.folder / name
        path.write_text(
            f"""[server]
public_url = "{PUBLIC}"
{lines["listen"]}
path = "{PATH}"
deadline_s = {self.options["deadline_s"]}
link_checks_per_minute = {self.options["link_checks"]}
{till}

[rezip]
shop_id = "shop-1"
token_file = "rezip.token"
jwks_url = "{self.jwks.url}"
static_pool_id = "pool-static-1"

[voucherify]
app_id = "{self.voucherify.app_id}"
{lines["app_token_file"]}
{lines["campaign"]}
{lines["url"]}

[voucher]
currency = "DKK"
conditions = "Min. køb 300 DKK / Min. purchase 300 DKK"
landing_url = "https://shop.example.com/cart?discount={{code}}"

[export]
state_file = "export.json"
""",
            "utf-8",
        )
        return path

    @property
    def config_path(self) -> Path:
        return self.folder / "shop.toml"

    # --- requests -----------------------------------------------------------------------------------

    def deliver(self, headers: dict[str, str] | None = None, body: bytes = BODY) -> httpx.Response:
        """A delivery RE-ZIP signed (a fresh one unless ``headers`` are given); httpx sets the length."""
        signed = headers if headers is not None else delivery()
        return self.http.post(
            PATH, content=body, headers={k: v for k, v in signed.items() if k.lower() != "content-length"}
        )

    def open_link(self, code: str, language: str | None = None) -> httpx.Response:
        headers = {"Accept-Language": language} if language else {}
        return self.http.get("/redeem", params={"code": code}, headers=headers)

    def redeem(self, code: str, token: str = TILL_TOKEN, **fields: Any) -> httpx.Response:
        return self.http.post(
            "/redemptions", json={"code": code, **fields}, headers={"Authorization": f"Bearer {token}"}
        )

    def secrets_list(self, codes: list[str]) -> list[str]:
        """What the logs must never hold: the tokens, the codes and their links."""
        return [REZIP_TOKEN, TILL_TOKEN, self.voucherify.app_token, *codes, *(self.config.link_for(c) for c in codes)]

    def published(self) -> list[str]:
        """Every code the stand-in Voucherify published, in order."""
        rows = self.voucherify.store.read(
            "SELECT v.code FROM publications p JOIN vouchers v ON v.id = p.voucher_id ORDER BY p.created_at"
        )
        return [row["code"] for row in rows]
