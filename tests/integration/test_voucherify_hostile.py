"""Hostile answers for the Voucherify client: any status, headers and body (raw bytes on a real
socket, so lying lengths, broken chunks and bad encodings are possible) end in a typed result, never
an exception; the next call on the same connection pool still gets the right answer; nothing secret
is logged."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.http_answers import tls_context
from kiosk.logs import configure_logging
from kiosk.shop.aiohttp_transport import AiohttpTransport
from kiosk.shop.voucherify import (
    Failure,
    Published,
    Redemption,
    Rollback,
    Validation,
    VoucherifyClient,
)
from kiosk.shop.voucherify_model import Campaign, VoucherifyVoucher

TOKEN = "vfy-hostile-token-0123456789"
CODE = "RZ20-SECRET-7Q"
GOOD_VOUCHER = {
    "code": "RZ20-GOOD-0001",
    "type": "DISCOUNT_VOUCHER",
    "object": "voucher",
    "discount": {"type": "PERCENT", "percent_off": 20, "effect": "APPLY_TO_ORDER"},
}
RESULTS = (Published, VoucherifyVoucher, Validation, Redemption, Rollback, Campaign, Failure)


class RawServer:
    """Answers each request with the next queued raw answer, then (keeping the connection) with a
    good voucher: a poisoned keep-alive connection would show in the next answer."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.hostile: list[bytes] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(5)
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(buffer) < length:
                    buffer += connection.recv(65536)
                buffer = buffer[length:]
                with self.lock:
                    answer = self.hostile.pop(0) if self.hostile else None
                if answer is None:
                    body = json.dumps(GOOD_VOUCHER).encode()
                    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                        len(body),
                        body,
                    )
                connection.sendall(answer)
        except OSError:
            return
        finally:
            connection.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


_TOKEN_TEXT = st.one_of(
    st.text(st.sampled_from("abcxyzABC019-_.:/ ;=,"), max_size=20),
    st.sampled_from(
        [
            "0",
            "60",
            "-1",
            "99999999999",
            "gzip",
            "chunked",
            "close",
            "application/json",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "\u00b2",
        ]
    ),
    st.text(st.sampled_from("abc019 ;=,\"'\t\x00\x7f\xe9"), max_size=30),
)
_HEADER_NAMES = st.sampled_from(
    [
        "Content-Type",
        "Content-Length",
        "Transfer-Encoding",
        "Content-Encoding",
        "Retry-After",
        "Connection",
        "Location",
        "X-Junk",
        "Set-Cookie",
    ]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "code",
                    "key",
                    "message",
                    "details",
                    "request_id",
                    "id",
                    "voucher",
                    "vouchers",
                    "discount",
                    "type",
                    "percent_off",
                    "amount_off",
                    "gift",
                    "amount",
                    "balance",
                    "redemption",
                    "quantity",
                    "redeemed_quantity",
                    "expiration_date",
                    "start_date",
                    "active",
                    "valid",
                    "redemptions",
                    "result",
                    "publications",
                    "source_id",
                    "campaign",
                    "name",
                    "code_config",
                    "pattern",
                    "parent_redemption",
                    "parent_rollback",
                    "units",
                    "inapplicable_redeemables",
                    "error",
                    "status",
                    "product",
                ]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=20,
)
#: Answers each endpoint gives, for mutating: one field replaced by anything.
_SHAPES = [
    GOOD_VOUCHER,
    {"id": "pub_1", "voucher": GOOD_VOUCHER},
    {"publications": [{"id": "pub_1", "source_id": "src-1", "result": "SUCCESS", "voucher": {"code": "X"}}]},
    {"valid": False, "inapplicable_redeemables": [{"status": "INAPPLICABLE", "result": {"error": {"key": "k"}}}]},
    {"redemptions": [{"id": "r_1", "result": "SUCCESS", "voucher": GOOD_VOUCHER}]},
    {"id": "rr_1", "result": "SUCCESS", "redemption": "r_1"},
    {
        "id": "camp_1",
        "name": "Campaign",
        "voucher": {"type": "DISCOUNT_VOUCHER", "discount": GOOD_VOUCHER["discount"], "code_config": {"pattern": "##"}},
    },
    {"code": 400, "key": "quantity_exceeded", "message": "m", "details": CODE, "request_id": "v-1"},
]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    doc = json.loads(json.dumps(draw(st.sampled_from(_SHAPES))))
    target = doc
    while isinstance(target, dict) and target and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(target)))
        if not isinstance(target[key], (dict, list)) or not target[key]:
            break
        target = target[key] if isinstance(target[key], dict) else target[key][0]
    if isinstance(target, dict) and target:
        target[draw(st.sampled_from(sorted(target)))] = draw(_JSON)
    return json.dumps(doc).encode()


_BODIES = st.one_of(
    st.binary(max_size=300),
    _JSON.map(lambda doc: json.dumps(doc).encode()),
    _mutated(),
    _mutated(),
    _mutated(),
    st.just(json.dumps(GOOD_VOUCHER).encode()),
    st.just(b"{" * 5000),
    st.just(b"x" * 70000),
)


@st.composite
def hostile_answers(draw: st.DrawFn) -> bytes:
    status = draw(st.one_of(st.sampled_from([200, 201, 400, 401, 404, 429, 500, 503]), st.integers(100, 599)))
    reason = draw(st.sampled_from([b"OK", b"", b"Bad \xff Gateway", b"Too Many"]))
    body = draw(_BODIES)
    headers = draw(st.lists(st.tuples(_HEADER_NAMES, _TOKEN_TEXT), max_size=4))
    lines = [b"HTTP/1.1 %d %s" % (status, reason)]
    if draw(st.integers(0, 4)):  # mostly an honest length, else only what the drawn headers say
        lines.append(b"Content-Length: %d" % len(body))
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


CALLS = {
    "publish": lambda client: client.publish("Campaign", "src-1"),
    "find_publication": lambda client: client.find_publication("src-1"),
    "get_voucher": lambda client: client.get_voucher(CODE),
    "validate": lambda client: client.validate(CODE),
    "redeem": lambda client: client.redeem(CODE),
    "rollback": lambda client: client.rollback("r_1"),
    "disable": lambda client: client.disable(CODE),
    "get_campaign": lambda client: client.get_campaign("Campaign"),
}


@given(answers=st.lists(hostile_answers(), min_size=1, max_size=3), call=st.sampled_from(sorted(CALLS)))
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
def test_any_answer_is_a_typed_result(raw_server: RawServer, answers: list[bytes], call: str) -> None:
    with raw_server.lock:
        raw_server.hostile[:] = answers
    log = io.StringIO()
    root = logging.getLogger()
    kept_handlers, kept_level = list(root.handlers), root.level
    configure_logging(logging.DEBUG, log)

    async def go() -> tuple[Any, Any]:
        # One connection pool for both clients: the hostile call's short timeouts keep 100 examples
        # quick, and the next call, on the same pool, has time enough on a loaded machine, so what
        # it shows is a poisoned keep-alive connection, not a slow one.
        pool = AiohttpTransport(ssl_context=tls_context(None), max_connections=4, keepalive_expiry_s=60.0)
        client, patient = (
            VoucherifyClient(
                raw_server.url,
                "app-1",
                TOKEN,
                connect_timeout_s=timeouts[0],
                read_timeout_s=timeouts[1],
                deadline_s=timeouts[2],
                transport_factory=lambda: pool,
            )
            for timeouts in ((1, 0.1, 0.4), (10, 10, 20))
        )
        try:
            result = await CALLS[call](client)
            with raw_server.lock:
                raw_server.hostile.clear()
            return result, await patient.get_voucher("RZ20-GOOD-0001")
        finally:
            await pool.aclose()

    try:
        result, following = asyncio.run(go())
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in kept_handlers:
            root.addHandler(handler)
        root.setLevel(kept_level)
    assert isinstance(result, RESULTS), f"{call} gave {type(result).__name__}"
    assert isinstance(following, VoucherifyVoucher) and following.code == "RZ20-GOOD-0001", following
    text = log.getvalue()
    assert TOKEN not in text and CODE not in text and "Traceback" not in text
