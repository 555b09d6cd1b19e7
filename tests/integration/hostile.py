"""The scaffolding of the hostile-input harnesses: a whole running kiosk (web screen, file printer,
offline store, offline sync) against the real stand-in backend, with a scriptable proxy in front
that answers scans and serves logos as a test says, and a log capture that knows what must never be
logged. The kiosk runs on its own event loop in a thread, so hypothesis drives it example by example
from the test's thread, as customers would, without restarting it."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from hypothesis import strategies as st

from kiosk.app import ScanReport
from kiosk.config import Config, load_config
from kiosk.logs import RequestUrlFilter
from kiosk.runtime import RunningKiosk, open_kiosk
from kiosk.signatures import sign_detached
from kiosk.sim.backend_store import new_ulid
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, SHOPS
from kiosk.sim.kiosk_config import write_kiosk_config
from kiosk.sim.world import demo_world
from tests.conftest import QuietHandler, serve_on_loopback

__all__ = [
    "Answer",
    "ScriptedProxy",
    "KioskHarness",
    "fresh_code",
    "ONLINE_SHOP",
    "HOSTILE_TEXT",
    "NUMBERS",
    "SCALAR",
    "ANY",
]

# --- values a hostile peer sends where a field is expected ------------------------------------------

HOSTILE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\x1b[2J\x1b]0;pwned\x07",
        "\ud800",
        "\udfff x",
        "\u202eedoc",
        "😀" * 1000,
        "A" * 5000,
        "https://[::1",
        "https://shop.example:99999/r",
        "javascript:alert(1)",
        "https://" + "😀" * 1000,
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+14:00",
        "2027-13-45T00:00:00Z",
        "1970-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z",
        "NaN",
        "DKK",
        "XYZ",
        "%",
        "Tote bag",
        "https://shop.example/redeem?code=X",
    ]
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 100, 101, 10**9, 10**9 + 1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
SCALAR = st.one_of(st.none(), NUMBERS, HOSTILE_TEXT, st.text(max_size=30))
ANY = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


#: The shop whose vouchers never run out (its on-demand pool is served by the stand-in webhook).
ONLINE_SHOP = "sko"


def fresh_code(shop: str = ONLINE_SHOP) -> str:
    """A packaging item nobody has returned yet."""
    return SHOPS[shop].prefix + new_ulid()


@dataclass
class Answer:
    """What the proxy sends for one scan instead of the backend's answer."""

    status: int = 201
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: "normal"; "close" (hang up without answering); "short" (announce more bytes than sent);
    #: "drip" (send the body a byte at a time, slowly).
    behaviour: str = "normal"


class ScriptedProxy:
    """Passes everything to the backend, except scans when an answer is queued and reservations
    when a bundle is, and serves ``/hostile-logo/NAME`` from ``logos``."""

    def __init__(self, target: str) -> None:
        self.answers: queue.SimpleQueue[Answer] = queue.SimpleQueue()
        self.bundles: queue.SimpleQueue[Answer] = queue.SimpleQueue()
        self.logos: dict[str, bytes] = {}
        self.scans_answered = 0
        #: While set, every request is answered 503: the backend is away.
        self.down = False
        outer = self

        class Handler(QuietHandler):
            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if outer.down:
                    return outer.send(self, Answer(503, b'{"message": "down"}'))
                if self.path.startswith("/hostile-logo/"):
                    data = outer.logos.get(self.path.rsplit("/", 1)[1], b"")
                    return outer.send(self, Answer(200, data, {"Content-Type": "image/png"}))
                scripted = {"/me/packaging/scan": outer.answers}.get(self.path)
                if self.command == "POST" and self.path.endswith("/offline-pools/reservations"):
                    scripted = outer.bundles
                if scripted is not None:
                    try:
                        answer = scripted.get_nowait()
                    except queue.Empty:
                        answer = None
                    if answer is not None:
                        outer.scans_answered += scripted is outer.answers
                        return outer.send(self, answer)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                relayed = httpx.request(self.command, target + self.path, content=body, headers=headers, timeout=10)
                kept = {
                    k: v
                    for k, v in relayed.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")
                }
                outer.send(self, Answer(relayed.status_code, relayed.content, kept))

            do_GET = do_POST = do_DELETE = _relay

        self.httpd, self.url = serve_on_loopback(Handler)

    @staticmethod
    def send(handler: QuietHandler, answer: Answer) -> None:
        try:
            if answer.behaviour == "close":
                handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            handler.send_response(answer.status)
            for name, value in answer.headers.items():
                handler.send_header(name, value)
            declared = len(answer.body) + (1000 if answer.behaviour == "short" else 0)
            handler.send_header("Content-Length", str(declared))
            handler.end_headers()
            if answer.behaviour == "drip":
                for byte in answer.body:
                    handler.wfile.write(bytes([byte]))
                    handler.wfile.flush()
                    time.sleep(0.05)
            else:
                handler.wfile.write(answer.body)
            if answer.behaviour == "short":
                handler.wfile.flush()
                handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the kiosk hung up first (its deadline passed)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Capture(logging.Handler):
    """What the kiosk's log handler gets, through its URL filter as in the field (httpx's request
    lines name a path by its fingerprint: the shop side's paths carry voucher codes)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RequestUrlFilter())
        self.records: collections.deque[logging.LogRecord] = collections.deque(maxlen=5000)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class KioskHarness:
    """``with KioskHarness(tmp_path) as kiosk: kiosk.scan(code)`` — the whole kiosk, running."""

    def __init__(
        self,
        folder: Path,
        *,
        adjust: Callable[[Config], Config] | None = None,
        scanner_device: str | None = None,
        webhook_timeout_s: float = 1.5,
        world_options: dict[str, Any] | None = None,
    ) -> None:
        """``world_options`` go to ``demo_world`` (a transport for the Voucherify clients, say)."""
        self.folder = folder
        self.webhook_timeout_s = webhook_timeout_s
        self.world_options = world_options or {}
        self.adjust = adjust
        self.scanner_device = scanner_device
        self._stack = ExitStack()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kiosk-under-test", daemon=True)
        self._running: RunningKiosk | None = None
        self._stop: asyncio.Event | None = None
        self._serving: Any = None
        self._reports: asyncio.Queue[ScanReport] | None = None
        self._time_passed = 0.0
        self.capture = _Capture()

    # --- life -------------------------------------------------------------------------------------

    def __enter__(self) -> KioskHarness:
        world = self._stack.enter_context(
            demo_world(self.folder / "world", webhook_timeout_s=self.webhook_timeout_s, **self.world_options)
        )
        self.world = world
        self.proxy = ScriptedProxy(world.url)
        self._stack.callback(self.proxy.stop)
        path = write_kiosk_config(
            self.folder / "kiosk" / "kiosk.toml",
            backend_url=self.proxy.url,
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            screen_type="web",
            scanner_device=self.scanner_device,
        )
        config = load_config(path)
        config = dataclasses.replace(
            config, offline=dataclasses.replace(config.offline, max_issuances=100_000, forward_interval_s=1.0)
        )
        self.config = self.adjust(config) if self.adjust else config
        self.token = DEMO_KIOSK_TOKEN
        root, ours = logging.getLogger(), logging.getLogger("kiosk")
        self._stack.callback(root.setLevel, root.level)
        self._stack.callback(ours.setLevel, ours.level)
        root.setLevel(logging.INFO)  # every line a kiosk in the field would write at --log-level info,
        ours.setLevel(logging.DEBUG)  # and our own debug lines, must be free of secrets
        root.addHandler(self.capture)
        self._stack.callback(root.removeHandler, self.capture)
        self._thread.start()
        ready: threading.Event = threading.Event()
        self._serving = asyncio.run_coroutine_threadsafe(self._serve(ready), self._loop)
        if not ready.wait(30):
            raise RuntimeError(f"the kiosk did not start: {self._serving.exception(0) if self._serving.done() else ''}")
        return self

    async def _serve(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        self._reports = asyncio.Queue()
        async with open_kiosk(self.config, on_report=self._reports.put_nowait, monotonic=self._monotonic) as kiosk:
            self._running = kiosk
            if kiosk.offline is not None:
                await kiosk.offline.sync(force=True)
            ready.set()
            await self._stop.wait()

    def __exit__(self, *exc: object) -> None:
        try:
            if self._stop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)
            if self._serving is not None:
                self._serving.result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._stack.close()

    def _monotonic(self) -> float:
        return time.monotonic() + self._time_passed

    def let_time_pass(self, seconds: float) -> None:
        """Move the kiosk's monotonic clock on, as if ``seconds`` had passed: a backend's
        Retry-After ends (the stand-in backend and the offline codes keep the real time)."""
        self._time_passed += seconds

    # --- customers ------------------------------------------------------------------------------

    @property
    def kiosk(self) -> RunningKiosk:
        assert self._running is not None
        return self._running

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout_s: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def scan(
        self, code: str, timeout_s: float | None = None, *, through: Callable[[str], None] | None = None
    ) -> ScanReport:
        """Scan as a customer does (``through`` a device, else straight into the app); the report
        of that scan (failing if none comes in time)."""
        timeout_s = timeout_s or self.config.backend.deadline_s + 3

        async def once() -> ScanReport:
            assert self._reports is not None
            while not self._reports.empty():
                self._reports.get_nowait()  # reports of earlier scans nobody waited for
            if through is None:
                self.kiosk.app.scan(code)
            else:
                through(code)
            while True:
                report = await asyncio.wait_for(self._reports.get(), timeout_s)
                if report.code == code:
                    return report

        return self.call(once(), timeout_s + 5)

    def quiet(self, seconds: float = 0.3) -> None:
        """Wait until no report has come for ``seconds`` (what a burst of input set off is over)."""

        async def calm() -> None:
            assert self._reports is not None
            for _ in range(200):
                try:
                    await asyncio.wait_for(self._reports.get(), seconds)
                except TimeoutError:
                    return
            raise AssertionError("reports keep coming")

        self.call(calm(), 120)

    def settle(self) -> None:
        """Wait until the flow is idle or showing its last answer (not issuing)."""

        async def idle() -> None:
            for _ in range(600):
                if self.kiosk.app.flow.state.value != "issuing":
                    return
                await asyncio.sleep(0.01)
            raise AssertionError("the kiosk is still issuing")

        self.call(idle())

    def offer_bundle(self, bundle: Any) -> None:
        """The next reservation answers ``bundle``, signed with the stand-in backend's own key (a
        signature says who sent it, nothing about its contents)."""
        body = json.dumps(bundle, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")
        signature = sign_detached(self.world.backend._key, self.world.backend.keyid, body)
        self.proxy.bundles.put(Answer(201, body, {"Content-Type": "application/json", "Bundle-Signature": signature}))

    def frame(self) -> dict[str, Any] | None:
        return self.call(_value(lambda: self.kiosk.screen.frame))  # type: ignore[union-attr]

    # --- what the logs must not hold ------------------------------------------------------------

    def log_problems(self, secrets: list[str]) -> list[str]:
        """Tracebacks of unexpected failures, and any secret (token, voucher code or link), in
        everything logged so far; the capture is emptied."""
        problems = []
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        while self.capture.records:
            record = self.capture.records.popleft()
            text = formatter.format(record)
            if record.exc_info and record.levelno >= logging.ERROR:
                problems.append("traceback: " + text[:2000])
            for secret in [self.token, *secrets]:
                if secret and len(secret) >= 4 and secret in text:
                    problems.append(f"secret {secret[:6]}… logged: {text[:300]}")
        return problems


async def _value(read: Callable[[], Any]) -> Any:
    return read()
