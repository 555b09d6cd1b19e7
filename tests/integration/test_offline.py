"""Offline issuance against the real stand-in backend, with a fault-injecting proxy in front of its
scan endpoint: every kind of backend trouble ends in an offline voucher within the deadline,
"already returned" does not, bundles are checked, and forwarding counts each issuance once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from kiosk.config import load_config
from kiosk.issuance.configured import make_client, make_offline_service
from kiosk.issuance.offline_pools_client import Bundle, BundleRefused
from kiosk.runtime import open_kiosk
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, sample_code
from kiosk.sim.kiosk_config import write_kiosk_config
from tests.conftest import QuietHandler, run_kiosk, serve_on_loopback

pytestmark = pytest.mark.integration
#: Papirhuset has no pools: offline, its customers get other shops' public codes.
NO_POOLS = [sample_code("public_fallback", n) for n in range(3)]
GRON = [sample_code("private_public", n) for n in range(2)]


class FaultProxy:
    """Passes everything to the backend, except scans, which fail the way ``mode`` says."""

    def __init__(self, target: str) -> None:
        self.mode = "pass"
        self.scans = 0
        outer = self

        class Handler(QuietHandler):
            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/me/packaging/scan" and outer.mode != "pass":
                    outer.scans += 1
                    return outer.fault(self)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = httpx.request(self.command, target + self.path, content=body, headers=headers, timeout=10)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = _relay

        self.httpd, self.url = serve_on_loopback(Handler)

    def fault(self, handler: BaseHTTPRequestHandler) -> None:
        def reply(status: int, body: bytes, headers: dict | None = None, length: int | None = None) -> None:
            handler.send_response(status)
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body) if length is None else length))
            handler.end_headers()
            handler.wfile.write(body)

        good = {
            "id": "x",
            "type": "Voucher",
            "data": {"code": "X", "value_data": {"type": "amount", "value": "lots", "unit": "DKK"}},
        }
        try:
            if self.mode == "timeout":
                time.sleep(6)
            elif self.mode == "reset":
                handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                handler.connection.shutdown(socket.SHUT_RDWR)
            elif self.mode == "500":
                reply(500, b'{"message": "internal error"}')
            elif self.mode == "429":
                reply(429, b'{"message": "slow down"}', {"Retry-After": "120"})
            elif self.mode == "malformed":
                reply(201, b'{"id": "x", "type": "Voucher", "data": {')
            elif self.mode == "wrong_types":
                reply(201, json.dumps(good).encode())
            elif self.mode == "oversized":
                reply(201, b"{" + b" " * 200_000 + b"}")
            elif self.mode == "endless":
                reply(201, b" " * 10, length=10**9)
                for _ in range(400):
                    handler.wfile.write(b" " * 1024)
                    handler.wfile.flush()
                    time.sleep(0.01)
        except OSError:
            pass

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxied(backend, tmp_path: Path):
    proxy = FaultProxy(backend.url)
    config = load_config(
        write_kiosk_config(
            tmp_path / "kiosk.toml",
            backend_url=proxy.url,
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            screen_type="none",
        )
    )
    yield proxy, config
    proxy.stop()


async def scan_once(kiosk, code: str):
    done: asyncio.Future = asyncio.get_running_loop().create_future()
    kiosk.app.on_report = lambda report: done.done() or done.set_result(report)
    started = time.monotonic()
    kiosk.app.scan(code)
    report = await asyncio.wait_for(done, 10)
    return report, time.monotonic() - started


@pytest.mark.parametrize("mode", ["timeout", "reset", "500", "429", "malformed", "wrong_types", "oversized", "endless"])
def test_backend_trouble_ends_in_an_offline_voucher_within_the_deadline(proxied, backend, mode: str) -> None:
    proxy, config = proxied

    async def scenario():
        async with open_kiosk(config, with_devices=False, background=False) as kiosk:
            await kiosk.offline.sync(force=True)
            proxy.mode = mode
            return await scan_once(kiosk, NO_POOLS[0])

    report, elapsed = asyncio.run(scenario())
    assert report.status == "issued" and report.source == "offline"
    assert report.voucher.code.startswith(("GB15-", "TOTE-"))
    assert elapsed < config.backend.deadline_s + 0.5
    # A connection reset before any answer is asked again once, on a new connection (it may have
    # been a kept-alive connection the server had closed); nothing else is repeated.
    assert proxy.scans == (2 if mode == "reset" else 1)


def test_already_returned_does_not_fall_back(proxied, backend) -> None:
    proxy, config = proxied
    elsewhere = httpx.post(
        backend.url + "/me/packaging/scan",
        headers={"Authorization": f"Pat {DEMO_KIOSK_TOKEN}"},
        json={"barcode": GRON[0], "drop_point_location_id": DROP_POINT_DK, "hardware_id": "other"},
    )
    assert elsewhere.status_code == 201  # returned at another kiosk

    async def scenario():
        async with open_kiosk(config, with_devices=False, background=False) as kiosk:
            await kiosk.offline.sync(force=True)
            answer, _ = await scan_once(kiosk, GRON[0])
            online, _ = await scan_once(kiosk, GRON[1])
            return answer, online, kiosk.store.journal()

    answer, online, entries = asyncio.run(scenario())
    assert answer.status == "already_returned"  # the backend's 409: no offline voucher for it
    assert online.status == "issued" and online.source == "online"
    assert [(e.packaging, e.source) for e in entries] == [(GRON[1], "online")]


def test_offline_issuances_are_forwarded_and_counted_once(proxied, backend, tmp_path: Path) -> None:
    proxy, config = proxied

    async def scenario():
        async with open_kiosk(config, with_devices=False, background=False) as kiosk:
            await kiosk.offline.sync(force=True)
            proxy.mode = "500"
            for code in NO_POOLS:
                report, _ = await scan_once(kiosk, code)
                assert report.source == "offline"
            proxy.mode = "pass"
            forwarded = await kiosk.offline.forward()
            # The acknowledgement got lost: the kiosk sends everything again.
            with contextlib.closing(sqlite3.connect(config.offline_db)) as db, db:  # as the kiosk's disk has it
                db.execute("UPDATE journal SET forwarded_at = NULL WHERE source = 'offline'")
            again = await kiosk.offline.forward()
            return forwarded, again, kiosk.store.journal()

    forwarded, again, entries = asyncio.run(scenario())
    offline = [e for e in entries if e.source == "offline"]
    assert forwarded == 3 and again == 3 and all(e.forwarded for e in offline)
    state = backend.state()
    assert sorted(i["key"] for i in state["offline_issuances"]) == sorted(e.key for e in offline)
    assert [i["status"] for i in state["offline_issuances"]] == ["accepted"] * 3
    assert not set(e.code for e in offline) & set(state["plucked"])  # reported offline, not online
    journal = run_kiosk("journal", "--json", "--config", str(config.source))
    assert {d["code"] for d in json.loads(journal.stdout) if d["source"] == "offline"} == {e.code for e in offline}


def test_tampered_expired_and_foreign_bundles_are_refused(proxied, backend) -> None:
    proxy, config = proxied

    async def scenario() -> list[str]:
        reasons = []
        async with open_kiosk(config, with_devices=False, background=False) as kiosk:
            client = kiosk.offline.client
            now = datetime.now(UTC)
            bundle = await client.reserve(2, now=now)
            tampered = Bundle(bundle.doc, bundle.body.replace(b"GB15-", b"GB16-", 1), bundle.signature)
            foreign_doc = {**bundle.doc, "drop_point_id": "elsewhere"}
            for candidate, moment in (
                (tampered, now),
                (bundle, now + timedelta(days=8)),
                (Bundle(foreign_doc, bundle.body, bundle.signature), now),
            ):
                try:
                    await client.verify(candidate, now=moment)
                    reasons.append("accepted")
                except BundleRefused as exc:
                    reasons.append(str(exc))
            await client.verify(bundle, now=now)  # the untouched bundle is fine
        return reasons

    reasons = asyncio.run(scenario())
    assert "does not match" in reasons[0] and "expired" in reasons[1] and "another drop point" in reasons[2]


def test_clock_set_back_or_offline_too_long_refuses(proxied, backend) -> None:
    proxy, config = proxied

    async def scenario():
        async with open_kiosk(config, with_devices=False, background=False) as kiosk:
            real = datetime.now(UTC)
            now = [real]
            # The kiosk's offline service as configured, on a wall clock the test sets.
            client = make_client(config)
            service = make_offline_service(config, kiosk.store, client, clock=lambda: now[0])
            try:
                await service.sync(force=True)
                now[0] = real - timedelta(days=2)  # the clock was set back
                back = service.claim(NO_POOLS[1])
                now[0] = real + timedelta(days=10)  # forward, far past the offline limit
                forward = service.claim(NO_POOLS[1])
                now[0] = real
                normal = service.claim(NO_POOLS[1])
            finally:
                await client.aclose()
            return back, forward, normal

    back, forward, normal = asyncio.run(scenario())
    assert back == "clock_untrusted" and forward in ("clock_untrusted", "offline_too_long")
    assert normal.source == "offline"


def test_a_voucher_journalled_but_never_shown_is_shown_after_a_restart(proxied, backend) -> None:
    proxy, config = proxied

    async def issue_and_crash() -> str:
        async with open_kiosk(config, with_devices=False, background=False) as kiosk:
            await kiosk.offline.sync(force=True)
            claimed = kiosk.offline.claim(NO_POOLS[2])  # journalled; the kiosk dies before showing it
            return claimed.voucher.code

    async def restart():
        reports = []
        async with open_kiosk(config, with_devices=False, background=False, on_report=reports.append):
            for _ in range(200):
                if reports:
                    break
                await asyncio.sleep(0.02)
        return reports

    code = asyncio.run(issue_and_crash())
    reports = asyncio.run(restart())
    assert [(r.status, r.voucher.code) for r in reports] == [("issued", code)]
    assert asyncio.run(restart()) == []  # marked shown: not shown a third time


def test_an_offline_limit_gives_its_own_notice(proxied, backend, tmp_path: Path) -> None:
    proxy, config = proxied
    text = Path(str(config.source)).read_text().replace("watermark = 2", "watermark = 2\nmax_issuances = 1")
    Path(str(config.source)).write_text(text)
    limited = load_config(Path(str(config.source)))

    async def scenario():
        async with open_kiosk(limited, with_devices=False, background=False) as kiosk:
            await kiosk.offline.sync(force=True)
            proxy.mode = "500"
            first, _ = await scan_once(kiosk, NO_POOLS[0])
            second, _ = await scan_once(kiosk, NO_POOLS[1])
            return first, second

    first, second = asyncio.run(scenario())
    assert first.status == "issued" and first.source == "offline"
    assert second.status == "failed" and "count limit" in second.detail
