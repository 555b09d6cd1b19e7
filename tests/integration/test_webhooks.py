"""Shops' on-demand webhooks as the stand-in backend calls them, and the stand-in shop webhook as RE-ZIP
calls it, under hostile input.

- Whatever a webhook does (drips its body, stalls its headers, never ends, sends a megabyte, hangs
  up, redirects), the whole call ends at ``--webhook-timeout`` and the shop's static pool answers.
- A hypothesis harness drives the running system: the stand-in backend calls a scripted webhook that
  answers generated responses, and a kiosk (``open_kiosk``) scans. Every scan ends in an online
  voucher (the webhook's, when it was valid, else the static fallback) within the kiosk's deadline;
  the next customer is served; the backend never answers 5xx, never stores an invalid voucher, never
  hands out a code twice; nothing logs a traceback or a secret.
- Requests RE-ZIP did not send (forged, missing or stale signatures, another Webhook-Version, odd
  bodies and headers) get a clean 4xx from the stand-in shop webhook, never a 5xx or a traceback.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.config import load_config
from kiosk.core.voucher import parse_voucher
from kiosk.runtime import open_kiosk
from kiosk.signatures import load_or_create_key, sign_request
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, ON_DEMAND_POOL_ID, SHOPS
from kiosk.sim.kiosk_config import write_kiosk_config
from kiosk.sim.world import DemoWorld, demo_world
from tests.scripted_webhook import DELIVERIES, Answer, ScriptedWebhook

pytestmark = pytest.mark.integration

WEBHOOK_TIMEOUT_S = 0.5
KIOSK = {"Authorization": f"Pat {DEMO_KIOSK_TOKEN}", "Accept-Version": "2.0"}
#: The kiosk's deadline (the demo configuration's deadline_s): an answer later than this is no answer.
DEADLINE_S = 2.5
GOOD = {
    "link": "https://hyggelig-sko.example/redeem?code=HOOK-1",
    "type": "percentage",
    "value": 20,
    "unit": "%",
    "conditions": "Min. køb 300 DKK",
    "expires_at": "2030-01-01T00:00:00Z",
}


def voucher_body(code: str = "HOOK-1", **fields: Any) -> bytes:
    return json.dumps({"code": code, **GOOD, **fields}).encode()


class Counter:
    """Fresh packaging numbers: every packaging earns one reward only."""

    def __init__(self) -> None:
        self._next = itertools.count(10)

    def code(self, shop: str) -> str:
        return f"{SHOPS[shop].prefix}{next(self._next):05d}"


@pytest.fixture
def scripted_world(tmp_path: Path) -> Iterator[tuple[DemoWorld, ScriptedWebhook]]:
    """The demo world with Hyggelig Sko's on-demand pool pointed at a scripted webhook, and enough
    static codes in Hyggelig Sko's fallback and Strandkorb's pool for a long run."""
    webhook = ScriptedWebhook()
    with demo_world(tmp_path, webhook_timeout_s=WEBHOOK_TIMEOUT_S) as world:
        store = world.backend.store
        store.set_webhook_url(ON_DEMAND_POOL_ID, webhook.url)
        for shop in ("sko", "strand"):
            batch = store.batches(shop_id=SHOPS[shop].id)[0]
            store.add_codes(batch["id"], [(f"{shop.upper()}-EXTRA-{n:03d}", None) for n in range(300)])
        try:
            yield world, webhook
        finally:
            webhook.close()


def scan(world: DemoWorld, code: str) -> httpx.Response:
    body = {"barcode": code, "drop_point_location_id": DROP_POINT_DK, "hardware_id": "test"}
    # The client waits at most the kiosk's deadline for the answer (the backend sends nothing before it).
    return httpx.post(world.url + "/me/packaging/scan", json=body, headers=KIOSK, timeout=DEADLINE_S)


def fallback_code(world: DemoWorld, shop: str = "sko") -> set[str]:
    return {c["code"] for c in world.backend.store.codes(SHOPS[shop].id)}


@pytest.mark.parametrize(
    "answer, reason",
    [
        # 230 bytes a byte every 20 ms: 4.6 s in all, each byte far inside any per-read timeout.
        (Answer(body=voucher_body(), delivery="drip"), "no whole answer within 0.5 s"),
        (Answer(body=voucher_body(), delivery="slow_headers"), "no whole answer within 0.5 s"),
        (Answer(body=voucher_body(), delivery="endless"), "answer larger than 65536 bytes"),
        (Answer(delivery="huge"), "answer larger than 65536 bytes"),
        (Answer(body=voucher_body(), delivery="close"), "no answer: RemoteProtocolError"),
        (Answer(body=voucher_body(), delivery="close_mid"), "no answer: RemoteProtocolError"),
        (Answer(status=302, headers=(("Location", "https://hyggelig-sko.example/"),)), "HTTP 302"),
        (Answer(body=voucher_body(expires_at="9999-12-31T23:59:59-05:00")), "invalid voucher: expires_at"),
    ],
    ids=["drip", "slow_headers", "endless", "huge", "close", "close_mid", "redirect", "expiry_9999"],
)
def test_whatever_the_webhook_does_the_shops_static_pool_answers_in_time(scripted_world, answer, reason) -> None:
    world, webhook = scripted_world
    webhook.answer = answer
    response = scan(world, Counter().code("sko"))
    assert response.status_code == 201
    voucher = response.json()["data"]
    assert voucher["code"].startswith("HS50-") and voucher["code"] in fallback_code(world)
    assert webhook.requests == 1
    failures = httpx.get(world.url + "/_sim/state").json()["webhook_failures"]
    assert [f["reason"] for f in failures] == [reason]


def test_a_webhook_repeating_a_code_is_not_believed_twice(scripted_world) -> None:
    world, webhook = scripted_world
    webhook.answer = Answer(body=voucher_body("HOOK-SAME"))
    counter = Counter()
    first, second = scan(world, counter.code("sko")), scan(world, counter.code("sko"))
    assert first.json()["data"]["code"] == "HOOK-SAME"
    assert second.json()["data"]["code"].startswith("HS50-")
    failures = httpx.get(world.url + "/_sim/state").json()["webhook_failures"]
    assert [f["reason"] for f in failures] == ["code: the webhook answered this code before"]


# --- the harness: generated webhook answers, a running kiosk scanning -------------------------------

HOSTILE_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),  # lone surrogates
    st.just(10**400),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.just("🎉" * 1000),
    st.just("https://hyggelig-sko.example/redeem?" + "🎉" * 1000),
    st.sampled_from(
        [
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-05:00",
            "0001-01-01T00:00:00+05:00",
            "2020-01-01T00:00:00Z",
            "tomorrow",
            "javascript:alert(1)",
            "http://hyggelig-sko.example/r",
            "data:text/html,<b>",
            "myshopapp://redeem?code=1",
            "HOOK 2",
            "XAU",
            "%",
            "",
            "\x1b[2J\x07",
        ]
    ),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    ),
    st.just(json.loads("[" * 400 + "]" * 400)),
)
VOUCHERISH = st.builds(
    lambda code, replaced: {"code": code, **GOOD, **replaced},
    st.one_of(st.just("HOOK-1"), st.integers(2, 10**9).map("HOOK-{}".format)),  # now and then a repeat
    st.dictionaries(st.sampled_from(["code", *GOOD]), HOSTILE_VALUES, max_size=3),
)


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # lone surrogates go out as \ud800 escapes, floats as NaN/Infinity


RAW_BODIES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"[" * 100_000, b'{"code": "HOOK-1", ', b"\xff\xfe{}", b"", b"null", b'{"a": NaN}']),
)
#: Mostly 2xx answers with voucher-like bodies, so most examples reach the voucher's checks.
ANSWERS = st.builds(
    Answer,
    status=st.one_of(
        st.just(200),
        st.just(200),
        st.just(201),
        st.sampled_from([204, 301, 302, 307, 400, 404, 429, 500, 503]),
        st.integers(100, 599),
    ),
    body=st.one_of(VOUCHERISH.map(_json), VOUCHERISH.map(_json), HOSTILE_VALUES.map(_json), RAW_BODIES),
    delivery=st.sampled_from(["whole"] * 6 + list(DELIVERIES)),
    headers=st.sampled_from(
        [
            (),
            (),
            (),
            (),
            (("Location", "https://hyggelig-sko.example/elsewhere"),),
            (("Content-Encoding", "gzip"),),
            (("Transfer-Encoding", "chunked"),),
        ]
    ),
    gap_s=st.sampled_from([0.02, 0.12]),
)


class KioskThread:
    """A kiosk (``open_kiosk`` on the given configuration) on its own event loop thread, so a
    hypothesis test can scan synchronously."""

    def __init__(self, config_path: Path) -> None:
        self._config = load_config(config_path)
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True)
        self._thread.start()
        assert self._started.wait(30), "the kiosk did not start"

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with open_kiosk(self._config, with_devices=False, background=False) as kiosk:
            self.kiosk = kiosk
            self._started.set()
            await self._stop.wait()

    def scan(self, code: str) -> Any:
        async def one() -> Any:
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.kiosk.app.on_report = lambda report: done.done() or done.set_result(report)
            self.kiosk.app.scan(code)
            return await asyncio.wait_for(done, 15)

        return asyncio.run_coroutine_threadsafe(one(), self._loop).result()

    def journal(self) -> list[Any]:
        return asyncio.run_coroutine_threadsafe(self._journal(), self._loop).result()

    async def _journal(self) -> list[Any]:
        return self.kiosk.store.journal()

    def close(self) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()


@pytest.fixture
def kiosk_on(scripted_world, tmp_path: Path) -> Iterator[KioskThread]:
    world, _ = scripted_world
    config = write_kiosk_config(
        tmp_path / "kiosk" / "kiosk.toml",
        backend_url=world.url,
        token=DEMO_KIOSK_TOKEN,
        drop_point=DROP_POINT_DK,
        screen_type="none",
    )
    kiosk = KioskThread(config)
    try:
        yield kiosk
    finally:
        kiosk.close()


def test_hostile_webhook_answers_never_break_a_scan(scripted_world, kiosk_on, caplog, capsys) -> None:
    world, webhook = scripted_world
    counter = Counter()
    caplog.set_level(logging.INFO)
    shown: list[str] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(answer=ANSWERS)
    def one_customer_then_the_next(answer: Answer) -> None:
        webhook.answer = answer
        packaging = counter.code("sko")
        report = kiosk_on.scan(packaging)
        # Online means the backend answered within the kiosk's deadline (else: offline, or a notice).
        assert (report.status, report.source) == ("issued", "online"), report.detail
        assert report.voucher.code.startswith(("HOOK-", "HS50-", "SKO-EXTRA-"))
        if report.voucher.code.startswith("HOOK-"):  # only a valid voucher of the webhook's is believed
            assert report.voucher.shop.name == "Hyggelig Sko"
        following = kiosk_on.scan(counter.code("strand"))  # the next customer, an ordinary static pool
        assert (following.status, following.source) == ("issued", "online")
        shown.extend([report.voucher.code, following.voucher.code])

    one_customer_then_the_next()
    state = httpx.get(world.url + "/_sim/state").json()
    assert all(scan["status"] < 500 for scan in state["scans"])
    codes = [r["voucher"]["code"] for r in state["returns"] if r["voucher"]]
    assert len(codes) == len(set(codes)) and len(shown) == len(set(shown))  # no code handed out twice
    for stored in (r["voucher"] for r in state["returns"]):
        voucher = parse_voucher(stored, link_schemes=None)  # what the backend keeps is a valid voucher
        assert not voucher.warnings and isinstance(stored["conditions"], str)
    journal = [entry.code for entry in kiosk_on.journal()]
    assert len(journal) == len(set(journal))
    logged = caplog.text + capsys.readouterr().err
    assert "Traceback" not in logged and not any(record.exc_info for record in caplog.records)
    for secret in [DEMO_KIOSK_TOKEN, *codes, *(r["voucher"]["link"] for r in state["returns"] if r["voucher"]["link"])]:
        assert secret not in logged


# --- requests to the stand-in shop webhook that RE-ZIP did not send --------------------------------

#: What can be wrong with a request, applied in this order to a genuine one (so a later one may undo
#: an earlier one only by replacing it with something else that is wrong).
MUTATIONS = (
    "stale",
    "future",
    "unknown_keyid",
    "stranger_key",
    "other_target",
    "flip_signature",
    "drop_signature",
    "drop_signature_input",
    "garbage_signature_input",
    "garbage_signature",
    "version",
    "no_version",
    "body",
    "content_type_after_signing",
    "latin1_content_type",
)
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
).map(str.strip)
ODD_BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b"[]",
            b"null",
            b'{"voucher_pool_id": 7}',
            b'{"voucher_pool_id": "\\ud800"}',
            b"[" * 50_000,
            b'{"voucher_pool_id": NaN}',
        ]
    ),
)


@pytest.fixture
def shop_webhook(tmp_path: Path) -> Iterator[tuple[DemoWorld, Any]]:
    with demo_world(tmp_path) as world:
        key, _ = load_or_create_key(tmp_path / "backend.sqlite.signing-key.pem")
        yield world, key


def genuine(
    world: DemoWorld,
    key: Any,
    *,
    url: str | None = None,
    created: int | None = None,
    keyid: str | None = None,
    content_type: str = "application/json",
) -> dict[str, str]:
    headers = {"Content-Type": content_type, "Webhook-Version": "1"}
    signed = sign_request(
        key,
        keyid or world.backend.keyid,
        "POST",
        url or world.webhook.url,
        headers,
        created=int(time.time()) if created is None else created,
    )
    return headers | signed


def test_requests_rezip_did_not_send_get_a_clean_4xx(shop_webhook, capsys) -> None:
    world, key = shop_webhook
    stranger = ec.generate_private_key(ec.SECP384R1())
    genuine_body = json.dumps({"voucher_pool_id": ON_DEMAND_POOL_ID}).encode()
    client = httpx.Client(timeout=10)
    statuses: list[int] = []

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        mutations=st.sets(st.sampled_from(MUTATIONS), min_size=1, max_size=3),
        text=HEADER_TEXT,
        body=ODD_BODIES,
        url=st.sampled_from([world.webhook.url, world.webhook.failing_url]),
    )
    def forged(mutations: set[str], text: str, body: bytes, url: str) -> None:
        headers = genuine(world, key, url=url)
        content = genuine_body
        for mutation in (name for name in MUTATIONS if name in mutations):
            if mutation == "flip_signature":
                signature = headers["Signature"]
                headers["Signature"] = signature[:12] + ("A" if signature[12] != "A" else "B") + signature[13:]
            elif mutation == "drop_signature":
                headers.pop("Signature", None)
            elif mutation == "drop_signature_input":
                headers.pop("Signature-Input", None)
            elif mutation in ("stale", "future"):
                headers |= genuine(
                    world, key, url=url, created=int(time.time()) + (-3600 if mutation == "stale" else 3600)
                )
            elif mutation == "unknown_keyid":
                headers |= genuine(world, key, url=url, keyid="key-00000000")
            elif mutation == "stranger_key":
                headers |= genuine(world, stranger, url=url)
            elif mutation == "other_target":
                headers |= genuine(world, key, url=url.replace("/rezip/", "/elsewhere/"))
            elif mutation == "garbage_signature_input":
                headers["Signature-Input"] = text
            elif mutation == "garbage_signature":
                headers["Signature"] = text
            elif mutation == "version":
                headers["Webhook-Version"] = text if text != "1" else "2"
            elif mutation == "no_version":
                headers.pop("Webhook-Version")
            elif mutation == "body":
                content = body if body != genuine_body else b"{}"
            elif mutation == "content_type_after_signing":
                headers["Content-Type"] = "text/plain"
            elif mutation == "latin1_content_type":
                headers["Content-Type"] = "application/json; charset=\xe9"
        # As bytes: Latin-1 header text goes out as it is (httpx would refuse str outside ASCII).
        response = client.post(url, content=content, headers={k: v.encode("latin-1") for k, v in headers.items()})
        assert 400 <= response.status_code < 500, (mutations, response.status_code, response.text)
        assert set(response.json()) == {"message"}
        statuses.append(response.status_code)

    forged()
    # Malformed framing, below what httpx lets one send.
    for raw in (
        b"POST /rezip/voucher HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /rezip/voucher HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    ):
        statuses.append(_raw_status(world.webhook.url, raw))
    assert all(400 <= status < 500 for status in statuses[-2:])
    # A genuine request is still answered: the next call from RE-ZIP is served.
    answered = client.post(world.webhook.url, content=genuine_body, headers=genuine(world, key))
    assert answered.status_code == 200 and parse_voucher(answered.json()).code.startswith("HS-")
    down = client.post(
        world.webhook.failing_url, content=genuine_body, headers=genuine(world, key, url=world.webhook.failing_url)
    )
    assert down.status_code == 503
    client.close()
    assert "Traceback" not in capsys.readouterr().err


def _raw_status(url: str, request: bytes) -> int:
    port = int(url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request)
        status_line = connection.makefile("rb").readline()
    return int(status_line.split()[1])
