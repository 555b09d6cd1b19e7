"""The Voucherify client against the stand-in Voucherify on loopback, every request and answer
validated against the official spec (patched copy, tests/data/voucherify-openapi/PATCHES.md); and
against scripted servers for what the stand-in never does (slow, dripping, malformed answers)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from kiosk.core.instants import iso_z
from kiosk.core.voucher import DiscountType
from kiosk.shop.mapping import campaign_problem, rezip_voucher
from kiosk.shop.voucherify import (
    ApiError,
    InvalidAnswer,
    NetworkError,
    Published,
    RateLimited,
    Redemption,
    ServerError,
    TimedOut,
    VoucherifyClient,
)
from kiosk.sim.voucherify import StandInVoucherify, seed_demo
from tests.conftest import KIOSK, REPO, QuietHandler, serve_on_loopback
from tests.integration.test_client import answer as reply
from tests.voucherify_spec import SpecCheckingTransport

PERCENT, AMOUNT, UNIT = "RE-ZIP 20 percent", "RE-ZIP 50 DKK", "RE-ZIP tote bag"


class Harness:
    """A seeded stand-in and a client whose traffic is checked against the spec."""

    def __init__(self, folder: Path, *, rate_limit: int = 100) -> None:
        self.stand_in = StandInVoucherify(folder / "voucherify.sqlite", rate_limit=rate_limit)
        self.campaigns = seed_demo(self.stand_in.store)
        self.server = self.stand_in.serve().start()
        self.transport = SpecCheckingTransport()

    def client(self, **options: Any) -> VoucherifyClient:
        options.setdefault("transport_factory", lambda: self.transport)
        app_id = options.pop("app_id", self.stand_in.app_id)
        token = options.pop("app_token", self.stand_in.app_token)
        return VoucherifyClient(self.server.url, app_id, token, **options)

    def run(self, calls: Callable[[VoucherifyClient], Any], **options: Any) -> Any:
        async def go() -> Any:
            client = self.client(**options)
            try:
                return await calls(client)
            finally:
                await client.aclose()

        result = asyncio.run(go())
        assert self.transport.problems == [], "\n".join(self.transport.problems)
        return result


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    made = Harness(tmp_path)
    yield made
    made.stand_in.close()


def test_publish_validate_redeem_roll_back_disable(harness: Harness) -> None:
    async def calls(client: VoucherifyClient) -> dict[str, Any]:
        published = await client.publish(PERCENT, "delivery-1")
        assert isinstance(published, Published)
        code = published.voucher.code
        return {
            "published": published,
            "campaign": await client.get_campaign(PERCENT),
            "by_id": await client.get_campaign(harness.campaigns["percent"]["id"]),
            "voucher": await client.get_voucher(code),
            "valid": await client.validate(code),
            "redeemed": (redeemed := await client.redeem(code, customer_source_id="till-3", order_amount=30000)),
            "again": await client.redeem(code),
            "invalid_now": await client.validate(code),
            "rolled_back": await client.rollback(redeemed),
            "rolled_back_twice": await client.rollback(redeemed),
            "redeemed_after_rollback": await client.redeem(code),
            "disabled": await client.disable(code),
            "validate_disabled": await client.validate(code),
        }

    got = harness.run(calls)
    published = got["published"]
    code = published.voucher.code
    assert code.startswith("RZ20-") and len(code) == len("RZ20-####-####")
    assert published.source_id == "delivery-1" and not published.recovered
    assert published.voucher.redemption.quantity == 1 and published.voucher.campaign == PERCENT
    assert got["campaign"].id == got["by_id"].id == harness.campaigns["percent"]["id"]
    assert campaign_problem(got["campaign"], "DKK") is None
    assert got["voucher"].code == code and got["voucher"].discount.percent_off == 20
    assert got["valid"].valid and got["valid"].error is None
    assert isinstance(got["redeemed"], Redemption) and got["redeemed"].result == "SUCCESS"
    assert isinstance(got["again"], ApiError) and got["again"].status == 400 and got["again"].key == "quantity_exceeded"
    assert not got["invalid_now"].valid and got["invalid_now"].error.key == "quantity_exceeded"
    assert got["rolled_back"].redemption_id == got["redeemed"].id and got["rolled_back"].result == "SUCCESS"
    assert isinstance(got["rolled_back_twice"], ApiError) and got["rolled_back_twice"].key == "already_rolled_back"
    assert isinstance(got["redeemed_after_rollback"], Redemption)
    assert got["disabled"].active is False
    assert got["validate_disabled"].error.key == "voucher_disabled"


def test_same_source_id_gives_the_same_code(harness: Harness) -> None:
    async def calls(client: VoucherifyClient) -> list[Any]:
        return [
            await client.publish(AMOUNT, "delivery-7"),
            await client.publish(AMOUNT, "delivery-7"),  # a retried delivery: the same publication
            await client.publish(AMOUNT, "delivery-7", customer_source_id="someone-else"),  # duplicate_source_id
            await client.find_publication("delivery-7", campaign=AMOUNT),
            await client.publish(AMOUNT, "delivery-8"),
            await client.publish(PERCENT, "delivery-7"),  # the source_id belongs to another campaign
            await client.find_publication("never-published"),
        ]

    first, retried, recovered, found, other, foreign, missing = harness.run(calls)
    assert first.voucher.code == retried.voucher.code == recovered.voucher.code == found.voucher.code
    assert recovered.recovered and found.recovered and not retried.recovered
    assert other.voucher.code != first.voucher.code
    assert isinstance(foreign, ApiError) and foreign.key == "duplicate_source_id"
    assert isinstance(missing, ApiError) and missing.status == 404
    assert any(entry.startswith("GET /v1/publications") for entry in harness.transport.checked)


@pytest.mark.parametrize("currency, value", [("DKK", 5000), ("JPY", 50), ("KWD", 50000)])
def test_every_seeded_kind_maps_exactly(harness: Harness, currency: str, value: int) -> None:
    async def calls(client: VoucherifyClient) -> list[Any]:
        return [await client.publish(name, f"map-{name}") for name in (PERCENT, AMOUNT, UNIT)]

    now = datetime.now(UTC)
    percent, amount, unit = (
        rezip_voucher(
            p.voucher,
            currency=currency,
            now=now,
            conditions="Min. 200 DKK",
            link=f"https://shop.example/redeem?code={p.voucher.code}",
        )
        for p in harness.run(calls)
    )
    assert (percent.type, percent.value, percent.unit) == (DiscountType.PERCENTAGE, 20, "%")
    assert (amount.type, amount.value, amount.unit) == (DiscountType.AMOUNT, value, currency)
    assert (unit.type, unit.value, unit.unit) == (DiscountType.GIFT, 1, "RE-ZIP tote bag")
    assert percent.conditions == "Min. 200 DKK" and percent.link.endswith(percent.code)
    assert percent.expires_at is not None and percent.expires_at > now


def test_expired_and_unknown_codes(harness: Harness) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    harness.stand_in.store.create_campaign(
        {
            "name": "Last year",
            "type": "AUTO_UPDATE",
            "expiration_date": iso_z(past),
            "voucher": {
                "type": "DISCOUNT_VOUCHER",
                "discount": {"type": "PERCENT", "percent_off": 10},
                "redemption": {"quantity": 1},
                "code_config": {"pattern": "OLD-####"},
            },
        }
    )

    async def calls(client: VoucherifyClient) -> list[Any]:
        old = await client.publish("Last year", "old-1")
        return [
            old,
            await client.validate(old.voucher.code),
            await client.redeem(old.voucher.code),
            await client.get_voucher("NO-SUCH-CODE"),
            await client.redeem("NO-SUCH-CODE"),
            await client.get_campaign("No such campaign"),
            await client.publish("No such campaign", "x"),
            await client.rollback("r_missing"),
            await client.disable("NO-SUCH-CODE"),
        ]

    old, validation, redemption, *missing = harness.run(calls)
    assert validation.error.key == "voucher_expired"
    assert isinstance(redemption, ApiError) and redemption.key == "voucher_expired"
    assert all(
        isinstance(result, ApiError) and result.status == 404 and result.key == "not_found" for result in missing
    )
    with pytest.raises(ValueError, match="expired"):
        rezip_voucher(old.voucher, currency="DKK", now=datetime.now(UTC))


@pytest.mark.parametrize("app_id, token", [("wrong-app", None), (None, "wrong-token"), ("", "")])
def test_wrong_or_missing_keys_are_401(harness: Harness, app_id: str | None, token: str | None) -> None:
    options: dict[str, Any] = {}
    if app_id is not None:
        options["app_id"] = app_id or "-"
    if token is not None:
        options["app_token"] = token or "-"
    result = harness.run(lambda client: client.get_voucher("ANY"), **options)
    assert isinstance(result, ApiError) and result.status == 401 and result.key == "unauthorized"


def test_no_keys_at_all_is_401(harness: Harness) -> None:
    import httpx

    answer = httpx.get(harness.server.url + "/v1/vouchers/ANY")
    assert answer.status_code == 401 and answer.json()["key"] == "unauthorized"
    assert set(answer.json()) >= {"code", "key", "message", "details", "request_id"}


def test_rate_limit_is_honoured(tmp_path: Path) -> None:
    harness = Harness(tmp_path, rate_limit=3)
    now = [1000.0]
    try:

        async def calls(client: VoucherifyClient) -> list[Any]:
            results = [await client.get_campaign(PERCENT) for _ in range(4)]
            asked = len(harness.transport.checked)
            results.append(await client.get_campaign(PERCENT))  # still held off: not asked
            assert len(harness.transport.checked) == asked
            now[0] += results[3].retry_after_s + 0.1
            return results

        results = harness.run(calls, clock=lambda: now[0])
    finally:
        harness.stand_in.close()
    assert all(not isinstance(result, RateLimited) for result in results[:3])
    limited, local = results[3], results[4]
    assert isinstance(limited, RateLimited) and not limited.local and 1 <= limited.retry_after_s <= 60
    assert limited.error.key == "too_many_requests"
    assert isinstance(local, RateLimited) and local.local and 0 < local.retry_after_s <= limited.retry_after_s


def test_credentials_and_ready_line_of_the_command(tmp_path: Path) -> None:
    import subprocess

    db = tmp_path / "vfy.sqlite"
    lines = []
    for _ in range(2):  # a restart on the same database keeps the credentials
        process = subprocess.Popen(
            [*KIOSK, "sim", "voucherify", "--db", str(db), "--seed", "demo"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        try:
            lines.append(json.loads(process.stdout.readline()))
        finally:
            process.terminate()
            process.communicate(timeout=10)
    assert lines[0]["app_id"] == lines[1]["app_id"] and lines[0]["app_token"] == lines[1]["app_token"]
    token_file = Path(lines[0]["app_token_file"])
    assert token_file.parent == tmp_path and token_file.read_text().strip() == lines[0]["app_token"]
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and stat.S_IMODE(db.stat().st_mode) == 0o600
    assert lines[0]["url"].startswith("http://127.0.0.1:")


def test_concurrent_redemptions_of_a_single_use_code(harness: Harness) -> None:
    async def calls(client: VoucherifyClient) -> list[Any]:
        code = (await client.publish(UNIT, "race")).voucher.code
        return list(await asyncio.gather(*(client.redeem(code) for _ in range(8))))

    results = harness.run(calls)
    assert sum(isinstance(result, Redemption) for result in results) == 1
    assert sum(isinstance(result, ApiError) and result.key == "quantity_exceeded" for result in results) == 7


# --- what the stand-in never does: scripted servers --------------------------------------------------

#: Scripts answer a request: (handler, its JSON body or {}), as tests/integration/test_client.py's do.
Script = Callable[[BaseHTTPRequestHandler, Any], None]


class Scripted:
    def __init__(self) -> None:
        self.script: Script = reply(200, {})
        outer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                try:
                    outer.script(self, {})
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = do_GET

        self.httpd, self.url = serve_on_loopback(Handler)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.stop()


def call(server: Scripted, script: Script, method: str = "get_voucher", *args: Any, **options: Any) -> Any:
    server.script = script

    async def go() -> Any:
        client = VoucherifyClient(server.url, "app-1", "token-secret-1", **options)
        try:
            return await getattr(client, method)(*(args or ("CODE-1",)))
        finally:
            await client.aclose()

    return asyncio.run(go())


VOUCHER = {"code": "CODE-1", "type": "DISCOUNT_VOUCHER", "discount": {"type": "PERCENT", "percent_off": 10}}


def test_deadline_bounds_a_server_that_never_answers(scripted: Scripted) -> None:
    release = threading.Event()
    scripted_then = reply(200, VOUCHER)

    def stall(handler: BaseHTTPRequestHandler, _: Any) -> None:
        release.wait(10)

    result = call(scripted, stall, read_timeout_s=30, deadline_s=0.3)
    release.set()
    # The deadline's answer, not the 30 s read timeout's (which would say ReadTimeout).
    assert isinstance(result, TimedOut) and "deadline" in result.reason
    assert call(scripted, scripted_then).code == "CODE-1"


def test_deadline_bounds_a_dripping_body(scripted: Scripted) -> None:
    raw = json.dumps(VOUCHER).encode()

    def drip(handler: BaseHTTPRequestHandler, _: Any) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        for byte in raw:  # each byte well within the read timeout, the whole far beyond the deadline
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.05)

    result = call(scripted, drip, read_timeout_s=2, deadline_s=0.4)
    assert isinstance(result, TimedOut) and "deadline" in result.reason


def test_read_timeout(scripted: Scripted) -> None:
    def slow(handler: BaseHTTPRequestHandler, body: Any) -> None:
        time.sleep(0.6)
        reply(200, VOUCHER)(handler, body)

    assert isinstance(call(scripted, slow, read_timeout_s=0.1, deadline_s=5), TimedOut)


def test_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def go() -> Any:
        client = VoucherifyClient(f"http://127.0.0.1:{port}", "app-1", "token-1")
        try:
            return await client.get_voucher("X")
        finally:
            await client.aclose()

    assert isinstance(asyncio.run(go()), NetworkError)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway</html>",
        b"",
        b"[1, 2]",
        b'"text"',
        b'{"code": 5}',
        b'{"code": "X", "discount": "ten"}',
        b'{"code": "X", "expiration_date": "tomorrow"}',
        b'{"code": "X", "discount": {"type": "AMOUNT", "amount_off": "5"}}',
        b'{"code": "X", "redemption": {"quantity": -1}}',
        b'{"code": "X", "gift": {"balance": 5}}',
        b'{"code": "X", "active": "yes"}',
        b'{"code": "X", "expiration_date": "0001-01-01T00:00:00+01:00"}',
        b"[" * 100000,
    ],
)
def test_malformed_answers_are_typed(scripted: Scripted, body: bytes) -> None:
    assert isinstance(call(scripted, reply(200, body)), InvalidAnswer)


def test_oversized_and_odd_statuses(scripted: Scripted) -> None:
    assert isinstance(call(scripted, reply(200, {**VOUCHER, "pad": "x" * 70000})), InvalidAnswer)
    assert isinstance(call(scripted, reply(302, b"", {"Location": "https://elsewhere.example/"})), InvalidAnswer)
    server_error = call(scripted, reply(503, {"code": 503, "key": "service_unavailable", "message": "down"}))
    assert isinstance(server_error, ServerError) and server_error.error.key == "service_unavailable"
    proxy = call(scripted, reply(404, b"<html>not here</html>"))
    assert isinstance(proxy, ApiError) and proxy.key is None and proxy.error.message


def test_cookies_never_come_back_and_only_a_whole_answer_keeps_its_connection(scripted: Scripted) -> None:
    """The client's own wire (kiosk.shop.aiohttp_transport): a cookie that Voucherify, or a proxy in
    front of it, sets is not sent back; an answer received whole leaves its connection for the next
    call, one given up on before its end (it says it is too large) takes its connection with it."""
    seen: list[tuple[str | None, int]] = []
    whole = reply(200, VOUCHER, {"Set-Cookie": "session=abc; Path=/"})

    def oversized(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.wfile.write(b'{"code": "CODE-1", "pad": "')  # and the rest never comes

    def script(handler: BaseHTTPRequestHandler, body: Any) -> None:
        seen.append((handler.headers.get("Cookie"), handler.client_address[1]))
        oversized(handler) if len(seen) == 3 else whole(handler, body)

    scripted.script = script

    async def go() -> list[Any]:
        client = VoucherifyClient(scripted.url, "app-1", "token-secret-1")
        try:
            return [await client.get_voucher("CODE-1") for _ in range(5)]
        finally:
            await client.aclose()

    results = asyncio.run(go())
    assert [type(result).__name__ for result in results] == ["VoucherifyVoucher"] * 2 + ["InvalidAnswer"] + [
        "VoucherifyVoucher"
    ] * 2
    assert [cookie for cookie, _ in seen] == [None] * 5
    ports = [port for _, port in seen]
    assert ports[0] == ports[1] == ports[2] != ports[3] == ports[4]


def test_retry_after_as_a_date_and_as_nonsense(scripted: Scripted) -> None:
    dated = call(scripted, reply(429, {}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert isinstance(dated, RateLimited) and dated.retry_after_s == 0
    nonsense = call(scripted, reply(429, {}, {"Retry-After": "soon"}))
    assert isinstance(nonsense, RateLimited) and nonsense.retry_after_s == 30


def test_publication_answering_codes_only_and_stacked_rollback(scripted: Scripted) -> None:
    answers = iter(
        [
            reply(200, {"id": "pub_1", "vouchers": ["CODE-1"]}),
            reply(200, VOUCHER),
        ]
    )
    paths: list[str] = []

    def script(handler: BaseHTTPRequestHandler, body: Any) -> None:
        paths.append(handler.path)
        next(answers)(handler, body)

    published = call(scripted, script, "publish", "Campaign", "src-1")
    assert isinstance(published, Published) and published.voucher.code == "CODE-1"
    assert paths == ["/v1/publications", "/v1/vouchers/CODE-1"]
    stacked = Redemption("r_child", "CODE-1", "SUCCESS", parent_id="r_parent")
    paths.clear()

    def rolled(handler: BaseHTTPRequestHandler, body: Any) -> None:
        paths.append(handler.path)
        reply(200, {"parent_rollback": {"id": "rr_1", "result": "SUCCESS", "redemption": "r_parent"}})(handler, body)

    rollback = call(scripted, rolled, "rollback", stacked)
    assert paths == ["/v1/redemptions/r_parent/rollbacks"] and rollback.redemption_id == "r_parent"


def test_codes_are_one_path_segment(scripted: Scripted) -> None:
    paths: list[str] = []

    def script(handler: BaseHTTPRequestHandler, body: Any) -> None:
        paths.append(handler.path)
        reply(404, {"code": 404, "key": "not_found", "message": "Resource not found"})(handler, body)

    for code in ("../campaigns/x", "..", "A B?c=1#f"):
        call(scripted, script, "get_voucher", code)
    assert paths == ["/v1/vouchers/..%2Fcampaigns%2Fx", "/v1/vouchers/%2E%2E", "/v1/vouchers/A%20B%3Fc%3D1%23f"]


@pytest.mark.parametrize(
    "url",
    [
        "http://api.voucherify.io",
        "https://api.voucherify.io/v1",
        "ftp://127.0.0.1",
        "https://user:pw@api.voucherify.io",
        "https://api.voucherify.io?x=1",
        "",
    ],
)
def test_base_url_must_be_a_cluster_over_https(url: str) -> None:
    with pytest.raises(ValueError, match="^url: "):
        VoucherifyClient(url, "app", "token")


def test_token_is_never_logged_nor_quoted(caplog: pytest.LogCaptureFixture) -> None:
    from kiosk.logs import ScrubbingFormatter

    VoucherifyClient("https://api.voucherify.io", "app", "s3cret-token-value")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s", ("s3cret-token-value",), None)
    assert "s3cret-token-value" not in ScrubbingFormatter().format(record)
    with pytest.raises(ValueError) as refused:
        VoucherifyClient("https://api.voucherify.io", "app", "bad token\nwith newline")
    assert "newline" not in str(refused.value) and "bad token" not in str(refused.value)
