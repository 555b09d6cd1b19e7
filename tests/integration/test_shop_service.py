"""``kiosk shop webhook`` on loopback against the stand-in Voucherify, every Voucherify request and
answer validated against the official spec: RE-ZIP's signed delivery gets a Voucherify code as the
seed's voucher, the same delivery sent again the same code, Voucherify's trouble a 503 in time for
RE-ZIP's fallback; the single-use link, the till's redemptions, health; and the real command's start
(ready line, exit 0 on SIGTERM) and its refusals to start (exit 2 or 1, one line)."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from kiosk.core.voucher import parse_voucher
from kiosk.shop.service import source_id_for
from kiosk.shop.signed_requests import Accepted
from tests.conftest import KIOSK, REPO, child_processes
from tests.integration.shop_harness import PATH, PERCENT, REZIP_TOKEN, TILL_TOKEN, LogCapture, ShopHarness
from tests.integration.test_shop_signatures import BODY, KEY_2, delivery

pytestmark = pytest.mark.integration

P384_ORDER = int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973", 16)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[ShopHarness]:
    with ShopHarness(tmp_path) as harness:
        yield harness
    assert harness.problems == [], "\n".join(harness.problems)


def voucher_of(answer) -> dict:  # type: ignore[no-untyped-def]
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- the webhook --------------------------------------------------------------------------------------


def test_a_signed_delivery_gets_a_voucherify_code_as_the_seeds_voucher(shop: ShopHarness) -> None:
    with LogCapture() as logs:
        answer = shop.deliver()
    doc = voucher_of(answer)
    assert set(doc) == {"code", "link", "type", "value", "unit", "conditions", "expires_at"}
    code = doc["code"]
    assert re.fullmatch(r"RZ20-[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    assert doc["link"] == f"https://shop.example.com/redeem?code={code}"
    assert (doc["type"], doc["value"], doc["unit"]) == ("percentage", 20, "%")
    assert doc["conditions"] == "Min. køb 300 DKK / Min. purchase 300 DKK"
    assert doc["expires_at"].startswith(shop.campaigns["percent"]["expiration_date"][:10])
    assert parse_voucher(doc).code == code  # what the kiosk reads
    assert answer.headers["Cache-Control"] == "no-store"
    assert shop.published() == [code]
    voucher = shop.voucherify.store.voucher(code)
    assert voucher["quantity"] == 1 and voucher["redeemed"] == 0
    assert logs.problems(shop.secrets_list([code])) == []


def test_the_same_delivery_sent_again_gets_the_same_code(shop: ShopHarness) -> None:
    first = delivery()
    code = voucher_of(shop.deliver(first))["code"]
    assert voucher_of(shop.deliver(first))["code"] == code  # a retry: the same signed request
    copied = delivery()
    with ThreadPoolExecutor(8) as pool:  # copies arriving at once share one publication
        again = list(pool.map(lambda _: shop.deliver(copied), range(8)))
    assert len({voucher_of(answer)["code"] for answer in again}) == 1
    twin = dict(first)  # (r, n - s) verifies too: the same delivery, not a new code
    label, _, value = twin["Signature"].partition("=")
    raw = base64.b64decode(value.strip(":"))
    s = int.from_bytes(raw[48:], "big")
    twin["Signature"] = f"{label}=:{base64.b64encode(raw[:48] + (P384_ORDER - s).to_bytes(48, 'big')).decode()}:"
    assert voucher_of(shop.deliver(twin))["code"] == code
    other = voucher_of(shop.deliver())["code"]
    assert other != code
    codes = shop.published()
    assert len(codes) == len(set(codes)) == 3  # first (its retry and twin), the concurrent copies, the other
    assert source_id_for(Accepted("k1", "ab" * 32)) == "rezip-delivery-" + "ab" * 20


@pytest.mark.parametrize(
    "change, status, error",
    [
        ({"Signature": "sig1=:AAAA:"}, 401, "malformed"),
        ({"Signature-Input": None, "Signature": None}, 401, "missing"),
        ({"Webhook-Version": "2"}, 400, "webhook_version"),
    ],
    ids=["bad signature", "unsigned", "version 2"],
)
def test_deliveries_rezip_did_not_send_as_they_are_get_a_clean_4xx(
    shop: ShopHarness, change: dict, status: int, error: str
) -> None:
    headers = {name: value for name, value in (delivery() | change).items() if value is not None}
    answer = shop.deliver(headers)
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert shop.published() == []


@pytest.mark.parametrize(
    "body, content_type, status",
    [
        (b"not json", "application/json", 400),
        (b'{"voucher_pool_id": 7}', "application/json", 400),
        (b"{}", "application/json", 400),
        (b'{"voucher_pool_id": "' + b"p" * 2000 + b'"}', "application/json", 413),
        (BODY, "text/plain", 415),
    ],
    ids=["not json", "pool id not text", "no pool id", "too large", "not json type"],
)
def test_a_signed_delivery_with_a_body_it_cannot_use_is_a_4xx(
    shop: ShopHarness, body: bytes, content_type: str, status: int
) -> None:
    answer = shop.deliver(delivery(content_type=content_type), body)  # the signature covers the Content-Type
    assert answer.status_code == status and answer.headers["content-type"].startswith("application/json")
    assert "\n" not in answer.text.strip()
    assert shop.published() == []
    voucher_of(shop.deliver())  # the next delivery is served


def test_voucherify_slow_down_or_rate_limited_is_a_503_so_rezip_falls_back(shop: ShopHarness) -> None:
    shop.voucherify.delay_s = 2.0  # longer than the service's deadline (1.2 s)
    slow = shop.deliver()
    assert slow.status_code == 503 and slow.json() == {
        "error": "unavailable",
        "message": "no voucher within the deadline: the shop's static pool answers",
    }
    shop.voucherify.delay_s = 0
    shop.voucherify.limit_requests(0)
    limited = shop.deliver()
    assert limited.status_code == 503 and limited.json()["error"] == "unavailable"
    assert "RateLimited" in limited.json()["message"] and 1 <= int(limited.headers["Retry-After"]) <= 60
    shop.voucherify.limit_requests(100_000)
    still = shop.deliver()  # the client waits out Retry-After without asking: no request, still a 503
    assert still.status_code == 503 and "RateLimited" in still.json()["message"]
    health = shop.http.get("/healthz")
    assert health.status_code == 503 and health.json()["voucherify"]["reachable"] is False


def test_voucherify_down_is_a_503_and_the_health_says_so(shop: ShopHarness) -> None:
    health = shop.http.get("/healthz")
    assert health.status_code == 200 and health.json() == {
        "status": "ok",
        "voucherify": {"reachable": True, "detail": "answering", "url": shop.voucherify_server.url},
        "rezip_keys": {"loaded": True, "jwks_url": shop.jwks.url},
        "campaign": {"id": shop.campaigns["percent"]["id"], "name": PERCENT},
        "webhook_url": "https://shop.example.com/rezip/voucher",
        "refused": {},
    }
    shop.voucherify.close()
    down = shop.deliver()
    assert down.status_code == 503 and "NetworkError" in down.json()["message"]
    health = shop.http.get("/healthz")
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert health.json()["voucherify"] == {
        "reachable": False,
        "detail": "NetworkError (ConnectError)",
        "url": shop.voucherify_server.url,
    }
    assert shop.open_link("RZ20-AAAA-BBBB").status_code == 503  # the "try again later" page


def test_rezips_keys_are_fetched_once_at_start(shop: ShopHarness) -> None:
    assert shop.jwks.requests == 1
    for _ in range(3):
        voucher_of(shop.deliver())
    assert shop.jwks.requests == 1
    assert shop.deliver(delivery(KEY_2, "k2")).status_code == 401  # a key RE-ZIP never published


# --- the single-use link and the till ------------------------------------------------------------------


def test_the_link_goes_to_the_shop_once_and_then_shows_the_customers_page(shop: ShopHarness) -> None:
    code = voucher_of(shop.deliver())["code"]
    with LogCapture() as logs:
        first = shop.open_link(code)
        assert first.status_code == 303
        assert first.headers["Location"] == f"https://shop.example.com/cart?discount={code}"
        assert first.headers["Cache-Control"] == "no-store" and first.headers["Referrer-Policy"] == "no-referrer"
        assert shop.open_link(code).status_code == 303  # opening it is not using it: the checkout redeems
        redeemed = shop.redeem(code, order_amount=40000, customer_source_id="till-3")
        assert redeemed.status_code == 200 and redeemed.json()["redeemed"] is True
        assert redeemed.json()["code"] == code and redeemed.json()["redemption_id"].startswith("r_")
        second = shop.redeem(code)
        assert second.status_code == 409 and second.json() == {
            "error": "already_redeemed",
            "message": "this voucher has already been used",
        }
        used = shop.open_link(code, "da-DK,da;q=0.9,en;q=0.5")
        assert used.status_code == 410 and "Location" not in used.headers
        assert '<html lang="da-DK">' in used.text and "Denne kupon er allerede brugt" in used.text
        assert f"<code>{code}</code>" in used.text
    assert logs.problems(shop.secrets_list([code])) == []
    assert shop.voucherify.store.voucher(code)["redeemed"] == 1


def test_a_withdrawn_unknown_or_implausible_code_gets_its_page(shop: ShopHarness) -> None:
    code = voucher_of(shop.deliver())["code"]
    shop.voucherify.store.set_active(code, False)
    withdrawn = shop.open_link(code, "de-AT")
    assert withdrawn.status_code == 410 and 'lang="de-AT"' in withdrawn.text
    unknown = shop.open_link("RZ20-NONE-NONE")
    assert unknown.status_code == 404 and "We cannot find this voucher" in unknown.text
    asked = len(shop.problems), shop.voucherify.store.read("SELECT COUNT(*) AS n FROM vouchers")[0]["n"]
    for implausible in ("", "x" * 65, "RZ20 1", "\x1b[2J"):
        page = shop.open_link(implausible)
        assert page.status_code == 404 and "\x1b" not in page.text
    assert shop.http.get("/redeem?code=A&code=B").status_code == 404
    assert (len(shop.problems), shop.voucherify.store.read("SELECT COUNT(*) AS n FROM vouchers")[0]["n"]) == asked


def test_link_checks_are_rationed(tmp_path: Path) -> None:
    with ShopHarness(tmp_path, link_checks_per_minute=2) as shop:
        code = voucher_of(shop.deliver())["code"]
        assert [shop.open_link(code).status_code for _ in range(3)] == [303, 303, 503]
        assert shop.service.refused == {"shop service: link checks rationed (Voucherify was not asked)": 1}


def test_redemptions_need_the_tills_token(shop: ShopHarness) -> None:
    code = voucher_of(shop.deliver())["code"]
    for authorization in (
        "Bearer wrong",
        "Bearer till-token-SECRET-12345",
        "Basic dGlsbDp0aWxs",
        TILL_TOKEN,
        f"Bearer {TILL_TOKEN[:-1]}",
        f"Bearer{TILL_TOKEN}",
        None,
    ):
        headers = {"Authorization": authorization} if authorization else {}
        refused = shop.http.post("/redemptions", json={"code": code}, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    for fields, message in (
        ({"order_amount": -1}, "order_amount"),
        ({"order_amount": 1.5}, "order_amount"),
        ({"customer_source_id": 3}, "customer_source_id"),
    ):
        bad = shop.redeem(code, **fields)
        assert bad.status_code == 400 and bad.json()["message"].startswith(message)
    assert shop.redeem("RZ20-NONE-NONE").json() == {"error": "unknown", "message": "there is no voucher with this code"}
    assert shop.voucherify.store.voucher(code)["redeemed"] == 0
    assert shop.redeem(code).status_code == 200


def test_without_a_till_token_file_there_are_no_redemptions(tmp_path: Path) -> None:
    with ShopHarness(tmp_path, till=False) as shop:
        code = voucher_of(shop.deliver())["code"]
        answer = shop.redeem(code)
        assert answer.status_code == 404 and answer.json()["error"] == "not_enabled"
        assert shop.voucherify.store.voucher(code)["redeemed"] == 0


# --- the real command -------------------------------------------------------------------------------------


def _start_command(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*KIOSK, "shop", "webhook", "--config", str(config)],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_the_command_serves_until_sigterm(shop: ShopHarness) -> None:
    process = _start_command(shop.write_config(listen='listen = "127.0.0.1:0"'))
    try:
        assert process.stderr is not None
        ready = process.stderr.readline()
        assert ready.startswith("kiosk shop webhook ready: listening on http://127.0.0.1:"), ready
        assert f"campaign '{PERCENT}' ({shop.campaigns['percent']['id']}), RE-ZIP's keys loaded" in ready
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_command_refuses_to_start_with_one_line(shop: ShopHarness) -> None:
    shop.voucherify.store.create_campaign(
        {
            "name": "Fixed price",
            "voucher": {
                "type": "DISCOUNT_VOUCHER",
                "discount": {"type": "FIXED", "fixed_amount": 9900},
                "redemption": {"quantity": 1},
            },
        }
    )
    (shop.folder / "wrong.token").write_text("not-the-token\n")
    (shop.folder / "wrong.token").chmod(0o600)
    cases = [
        (
            {"campaign": 'campaign = "Fixed price"'},
            2,
            "voucherify.campaign: 'Fixed price' cannot become RE-ZIP vouchers: discount.type: FIXED sets the price",
        ),
        ({"campaign": 'campaign = "No such campaign"'}, 2, "voucherify.campaign: Voucherify has no campaign"),
        ({"app_token_file": 'app_token_file = "wrong.token"'}, 2, "voucherify: Voucherify refused the app id or token"),
        ({"url": 'url = "http://127.0.0.1:9"'}, 1, "cannot read the campaign: Voucherify at http://127.0.0.1:9"),
    ]
    running = [
        (_start_command(shop.write_config(f"case-{n}.toml", **change)), status, line)
        for n, (change, status, line) in enumerate(cases)
    ]
    for process, status, line in running:
        assert process.wait(timeout=30) == status
        stderr = process.communicate()[1]
        assert stderr.startswith(f"kiosk: {line}"), stderr
        assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr and shop.voucherify.app_token not in stderr


def test_the_ready_line_arrives_when_rezips_keys_are_not_there_yet(shop: ShopHarness) -> None:
    """A JWKS that cannot be fetched does not stop the start: deliveries get 503 until it can."""
    shop.jwks.server.stop()
    process = _start_command(shop.write_config())
    try:
        assert process.stderr is not None
        lines = [process.stderr.readline() for _ in range(2)]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        lines.append(process.stderr.read())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "RE-ZIP's signing keys could not be fetched" in lines[0]
    assert (
        lines[1].startswith("kiosk shop webhook ready:")
        and "RE-ZIP's keys not fetched yet (503 until then)" in lines[1]
    )
    assert "Traceback" not in "".join(lines)


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return b""


def _reads(pid: int) -> int:
    """The read system calls process ``pid`` made: an idle worker makes none."""
    fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(fields["syscr"])


def _post(url: str) -> tuple[int, str]:
    signed = delivery(created=int(time.time()))  # a service of its own keeps the real time
    headers = {k: v for k, v in signed.items() if k.lower() != "content-length"}
    answer = httpx.post(url + PATH, content=BODY, headers=headers, timeout=10)
    return answer.status_code, answer.json().get("code", "")


def _start_pool(shop: ShopHarness, name: str) -> tuple[subprocess.Popen, str, set[int]]:
    """``kiosk shop webhook`` with two worker processes on a free port: the parent, its URL once
    ready, and the workers' process ids."""
    process = _start_command(shop.write_config(name, listen='listen = "127.0.0.1:0"\nworkers = 2'))
    assert process.stderr is not None
    ready = process.stderr.readline()
    match = re.search(r"ready: listening on (http://127\.0\.0\.1:\d+),", ready)
    if match is None or not ready.rstrip().endswith("; 2 worker processes share the port"):
        process.kill()
        process.wait()
        raise AssertionError(ready)
    workers = child_processes(process.pid)
    assert len(workers) == 2, workers
    return process, match[1], workers


def test_workers_share_the_port_and_one_that_dies_is_started_again(shop: ShopHarness) -> None:
    process, url, workers = _start_pool(shop, "workers.toml")
    try:
        assert process.stderr is not None
        before = {pid: _reads(pid) for pid in workers}
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: _post(url), range(40)))
        assert [status for status, _ in answers] == [200] * 40
        assert len({code for _, code in answers}) == 40
        assert all(_reads(pid) > before[pid] for pid in workers)  # the kernel shared them out
        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        for _ in range(200):
            if len(child_processes(process.pid) - {killed}) == 2:
                break
            time.sleep(0.05)
        assert len(child_processes(process.pid) - {killed}) == 2  # started again by the parent's supervisor
        assert _post(url)[0] == 200
        serving = child_processes(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        log = process.stderr.read()
        assert "shop worker" in log and "ended with status -9" in log
        assert shop.voucherify.app_token not in log and REZIP_TOKEN not in log
        assert not any(Path(f"/proc/{pid}").exists() for pid in serving)  # stopped with the parent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _hostile_requests() -> tuple[list[bytes], list[bytes]]:
    """Requests no worker may fall over on: broken HTTP, framing and sizes (which a worker may
    close without an answer, as the kiosk's page server does), and requests well-formed enough to
    be answered: deliveries RE-ZIP did not sign as they are, the till's route without its token."""
    signed = delivery(created=int(time.time()))
    wrong = signed | {"Signature": signed["Signature"][:-6] + "AAAAA="}
    old = delivery(created=int(time.time()) - 3600)

    def post(headers: dict[str, str], body: bytes = BODY, path: str = PATH) -> bytes:
        lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() != "content-length"]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    broken = [
        b"\x00\xff\xfe GARBAGE\r\n\r\n",
        b"GET /healthz HTTP/9.9\r\n\r\n",
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET /redeem?code=" + b"%41" * 3000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 999999999999\r\n\r\n{",
        b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}",
        b"POST "
        + PATH.encode()
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    ]
    answerable = [
        post({"Content-Type": "application/json", "Webhook-Version": "1"}),  # not signed at all
        post(wrong),
        post(old),  # outside the replay window
        post(signed | {"Webhook-Version": "2"}),
        post({"Content-Type": "application/json", "Signature-Input": "sig=(", "Signature": "sig=:%%%:"}),
        post(signed, b"[" * 5000),
        post({}, b"{}", "/redemptions"),  # no till token
        b"GET /redeem?code=%00%FF%C0%AF%E2%80%AE" + b"%41" * 50 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"DELETE " + PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ]
    return broken, answerable


def _status_of(url: str, request: bytes) -> int:
    """The status the service answered ``request`` with (0: it closed without an answer; -1: it
    neither answered nor closed within 15 s)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as connection:
        answer = b""
        try:
            connection.sendall(request)
            while b"\r\n" not in answer:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            return -1
        except ConnectionError:
            pass  # closed while the request was still being sent
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    return int(match[1]) if match else 0


def _refused(status: int, may_close: bool = False) -> bool:
    return 400 <= status < 500 or (may_close and status == 0)


def test_hostile_requests_spread_over_the_workers_stop_none_of_them(shop: ShopHarness) -> None:
    """With workers = 2 the kernel hands each connection to either worker: hostile requests are
    refused cleanly by both, RE-ZIP's deliveries among them each get a new code, no worker dies."""
    process, url, workers = _start_pool(shop, "hostile.toml")
    try:
        assert process.stderr is not None
        before = {pid: _reads(pid) for pid in workers}
        broken, answerable = _hostile_requests()
        hostile = (broken + answerable) * 4
        with ThreadPoolExecutor(8) as pool:
            refused = pool.map(lambda request: _status_of(url, request), hostile)
            served = [pool.submit(_post, url) for _ in range(24)]
            statuses = dict(zip(hostile, refused, strict=True))
            answers = [future.result() for future in served]
        unclean = [(request[:70], statuses[request]) for request in broken if not _refused(statuses[request], True)]
        unclean += [(request[:70], statuses[request]) for request in answerable if not _refused(statuses[request])]
        assert unclean == []
        assert [status for status, _ in answers] == [200] * 24
        assert len({code for _, code in answers}) == 24
        assert child_processes(process.pid) == workers  # none died and was started again
        assert all(_reads(pid) > before[pid] for pid in workers)  # both had their share
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        log = process.stderr.read()
        assert "Traceback" not in log and "ended with status" not in log
        assert shop.voucherify.app_token not in log and REZIP_TOKEN not in log and TILL_TOKEN not in log
        assert not any(code in log for _, code in answers)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_workers_that_cannot_start_say_so_once(shop: ShopHarness) -> None:
    process = _start_command(
        shop.write_config(
            "bad-workers.toml", campaign='campaign = "No such campaign"', listen='listen = "127.0.0.1:0"\nworkers = 3'
        )
    )
    assert process.wait(timeout=30) == 2
    stderr = process.communicate()[1]
    assert stderr.startswith("kiosk: voucherify.campaign: Voucherify has no campaign"), stderr
    assert len(stderr.splitlines()) == 1


def test_a_second_pool_on_the_port_is_refused_and_workers_end_with_their_parent(shop: ShopHarness) -> None:
    """A pool's port is its own (SO_REUSEPORT would let a second pool share its deliveries); a
    parent that is killed outright leaves no worker serving; a SIGTERM while the workers start
    stops those started."""
    first, url, _ = _start_pool(shop, "pool.toml")
    try:
        port = url.rsplit(":", 1)[1]
        second = _start_command(shop.write_config("again.toml", listen=f'listen = "127.0.0.1:{port}"\nworkers = 2'))
        assert second.wait(timeout=30) == 2
        assert second.communicate()[1].startswith(f"kiosk: cannot listen on 127.0.0.1:{port}: Address already in use")
        workers = child_processes(first.pid)
        assert len(workers) == 2
        first.kill()  # SIGKILL: the parent cannot stop them; they see their pipe end and stop
        first.wait()
        for _ in range(200):
            if not any(Path(f"/proc/{pid}").exists() for pid in workers):
                break
            time.sleep(0.05)
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    starting = _start_command(shop.write_config("early.toml", listen='listen = "127.0.0.1:0"\nworkers = 3'))
    for _ in range(1000):  # the first worker is starting
        early = {pid for pid in child_processes(starting.pid) if b"--worker-port" in _command_line(pid)}
        if early:
            break
        time.sleep(0.01)
    assert early  # a worker was started (its ready line not yet read)
    starting.send_signal(signal.SIGTERM)
    assert starting.wait(timeout=30) == 0
    assert starting.stderr is not None and "Traceback" not in starting.stderr.read()
    assert not any(Path(f"/proc/{pid}").exists() for pid in early)


def test_a_pool_whose_worker_keeps_dying_gives_up_with_exit_1(shop: ShopHarness) -> None:
    """Workers killed as soon as they are up: once one worker's place has died five times within
    ten minutes the parent stops the rest and exits 1 (systemd starts a fresh service), and
    nothing is left running."""
    process = _start_command(shop.write_config("dying.toml", listen='listen = "127.0.0.1:0"\nworkers = 2'))
    seen: set[int] = set()
    workers: set[int] = set()
    try:
        assert process.stderr is not None
        assert process.stderr.readline().startswith("kiosk shop webhook ready:")
        first = min(child_processes(process.pid))
        while process.poll() is None and len(seen) < 10:
            if Path(f"/proc/{first}").exists() and b"--worker-port" in _command_line(first):
                os.kill(first, signal.SIGKILL)  # the same worker's place, again and again
                seen.add(first)
            current = {pid for pid in child_processes(process.pid) if b"--worker-port" in _command_line(pid)}
            workers |= current
            first = min(current - seen, default=first)
            time.sleep(0.02)
        assert process.wait(timeout=60) == 1
        log = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "kiosk: stopping, shop worker" in log and "Traceback" not in log.split("kiosk: stopping")[-1]
    assert 5 <= len(seen) < 10
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
