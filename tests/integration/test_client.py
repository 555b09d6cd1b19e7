"""The RE-ZIP client and the online issuer against a scripted HTTP server on loopback.

The server is real (sockets, HTTP/1.1); only its answers are scripted, so every failure the network
and the backend can produce is produced for real.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from kiosk.core.codes import PackagingCode
from kiosk.core.outcomes import AlreadyReturned, Issued, NoneAvailable, Refused, Unavailable
from kiosk.issuance.issuer import OnlineIssuer
from kiosk.issuance.rezip_client import (
    MAX_BODY_BYTES,
    RezipClient,
    ScanAccepted,
    ScanAlreadyReturned,
    ScanAuthFailed,
    ScanInvalidBody,
    ScanNetworkError,
    ScanRateLimited,
    ScanRefused,
    ScanServerError,
)
from tests.conftest import QuietHandler, serve_on_loopback

CODE = PackagingCode("10HS01JAYSCS07SVDQANFS61TF0XJN")
GOOD = {
    "id": "01JB0000000000000000000000",
    "type": "Voucher",
    "created_at": "2026-11-22T10:00:00.000Z",
    "updated_at": "2026-11-22T10:00:00.000Z",
    "deleted_at": None,
    "data": {
        "code": "SAVE50-A1B2C3",
        "link": "https://shop.example.com/redeem?code=SAVE50-A1B2C3",
        "conditions": "Min. purchase 200 DKK",
        "expires_at": "2027-01-01T00:00:00.000Z",
        "value": 5000,
        "value_data": {"type": "amount", "value": 5000, "unit": "DKK"},
        "shop": {"name": "Shop", "description": None, "logo_url": None, "website": None},
    },
}

Script = Callable[[BaseHTTPRequestHandler, dict], None]


class ScriptedServer:
    def __init__(self) -> None:
        self.script: Script = lambda handler, body: None
        self.requests: list[tuple[dict, dict]] = []
        outer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((dict(self.headers), body))
                try:
                    outer.script(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd, self.url = serve_on_loopback(Handler)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(status: int, body: bytes | dict, headers: dict | None = None) -> Script:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    def script(handler: BaseHTTPRequestHandler, _: dict) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(raw)

    return script


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    yield scripted
    scripted.stop()


def scan(server: ScriptedServer, script: Script, *, read_timeout_s: float = 2.0):
    server.script = script

    async def go():
        client = RezipClient(
            server.url, "tok-123", drop_point_location_id="dp-1", hardware_id="hw-1", read_timeout_s=read_timeout_s
        )
        try:
            return await client.scan(CODE, "key-1")
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_request_shape(server) -> None:
    result = scan(server, answer(201, GOOD))
    headers, body = server.requests[0]
    assert body == {"barcode": CODE.value, "drop_point_location_id": "dp-1", "hardware_id": "hw-1"}
    assert headers["Accept-Version"] == "2.0"
    assert headers["Authorization"] == "Pat tok-123"
    assert headers["Idempotency-Key"] == "key-1"
    assert isinstance(result, ScanAccepted) and result.kind == "voucher"
    assert result.voucher.code == "SAVE50-A1B2C3" and result.voucher.value == 5000
    assert result.voucher.shop.name == "Shop"


def test_ticket_and_no_voucher(server) -> None:
    ticket = scan(server, answer(201, {**GOOD, "type": "Ticket"}))
    assert isinstance(ticket, ScanAccepted) and ticket.kind == "ticket"
    for data in (None, {**GOOD["data"], "code": None}):
        empty = scan(server, answer(201, {**GOOD, "data": data}))
        assert isinstance(empty, ScanAccepted) and empty.voucher is None


@pytest.mark.parametrize(
    "status, kind",
    [
        (409, ScanAlreadyReturned),
        (400, ScanRefused),
        (404, ScanRefused),
        (422, ScanRefused),
        (401, ScanAuthFailed),
        (403, ScanAuthFailed),
        (500, ScanServerError),
        (503, ScanServerError),
    ],
)
def test_status_codes(server, status: int, kind: type) -> None:
    result = scan(server, answer(status, {"message": f"said {status}"}))
    assert isinstance(result, kind)
    assert result.message == f"said {status}"


def test_rate_limit_honours_retry_after(server) -> None:
    result = scan(server, answer(429, {"message": "slow down"}, {"Retry-After": "42"}))
    assert result == ScanRateLimited(42.0, "slow down")
    dated = scan(server, answer(429, {}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert isinstance(dated, ScanRateLimited) and dated.retry_after_s == 0


@pytest.mark.parametrize(
    "body",
    [
        b"<html>oops</html>",
        b"",
        json.dumps({**GOOD, "type": "Coupon"}).encode(),
        json.dumps({**GOOD, "data": {**GOOD["data"], "value_data": None}}).encode(),
        json.dumps(
            {**GOOD, "data": {**GOOD["data"], "value_data": {"type": "amount", "value": "50", "unit": "DKK"}}}
        ).encode(),
        json.dumps({**GOOD, "data": {**GOOD["data"], "expires_at": 12}}).encode(),
        json.dumps({**GOOD, "data": "voucher"}).encode(),
        json.dumps([GOOD]).encode(),
    ],
)
def test_malformed_bodies_are_typed_failures(server, body: bytes) -> None:
    assert isinstance(scan(server, answer(201, body)), ScanInvalidBody)


def test_oversized_body(server) -> None:
    big = {**GOOD, "padding": "x" * (MAX_BODY_BYTES + 10)}
    assert isinstance(scan(server, answer(201, big)), ScanInvalidBody)


def test_endless_body_without_length(server) -> None:
    def endless(handler: BaseHTTPRequestHandler, _: dict) -> None:
        handler.send_response(201)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"x" * 4096
        for _ in range(100):
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    assert isinstance(scan(server, endless), ScanInvalidBody)


def test_slow_answer_is_a_timeout(server) -> None:
    def slow(handler, body) -> None:
        time.sleep(1.0)
        answer(201, GOOD)(handler, body)

    result = scan(server, slow, read_timeout_s=0.2)
    assert isinstance(result, ScanNetworkError) and "timeout" in result.reason


def test_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def go():
        client = RezipClient(f"http://127.0.0.1:{port}", "t", drop_point_location_id="d", hardware_id="h")
        try:
            return await client.scan(CODE, "k")
        finally:
            await client.aclose()

    assert isinstance(asyncio.run(go()), ScanNetworkError)


def test_connection_dropped_without_an_answer(server) -> None:
    def drop(handler, body) -> None:
        handler.connection.shutdown(socket.SHUT_RDWR)
        handler.close_connection = True

    assert isinstance(scan(server, drop), ScanNetworkError)


def issue(server: ScriptedServer, script: Script, issuer_factory=None, times: int = 1, deadline_s: float = 2.5):
    server.script = script

    async def go():
        client = RezipClient(server.url, "t", drop_point_location_id="d", hardware_id="h")
        issuer = OnlineIssuer(client, deadline_s=deadline_s)
        try:
            return [await issuer.issue(CODE) for _ in range(times)]
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_issuer_maps_results(server) -> None:
    assert isinstance(issue(server, answer(201, GOOD))[0], Issued)
    assert isinstance(issue(server, answer(201, {**GOOD, "data": None}))[0], NoneAvailable)
    assert isinstance(issue(server, answer(409, {"message": "returned"}))[0], AlreadyReturned)
    assert isinstance(issue(server, answer(404, {"message": "unknown packaging"}))[0], Refused)
    assert isinstance(issue(server, answer(502, {}))[0], Unavailable)


def test_issuer_stops_asking_while_rate_limited(server) -> None:
    outcomes = issue(server, answer(429, {"message": "slow"}, {"Retry-After": "30"}), times=3)
    assert all(isinstance(o, Unavailable) for o in outcomes)
    assert len(server.requests) == 1  # the second and third scans never reached the backend
    assert "rate limited" in outcomes[2].reason


def test_issuer_deadline_bounds_a_trickling_answer(server) -> None:
    def trickle(handler, body) -> None:
        handler.send_response(201)
        handler.send_header("Content-Length", "5000")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.05)

    started = time.monotonic()
    outcome = issue(server, trickle, deadline_s=0.5)[0]
    assert isinstance(outcome, Unavailable) and "0.5 s" in outcome.reason
    assert time.monotonic() - started < 2.0


def _self_signed(tmp_path) -> tuple[str, str]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stand-in")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


def test_tls_is_verified(server, tmp_path) -> None:
    import ssl
    from pathlib import Path

    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    server.script = answer(201, GOOD)
    url = server.url.replace("http://", "https://")

    async def go(ca_file):
        client = RezipClient(url, "t", drop_point_location_id="d", hardware_id="h", ca_file=ca_file)
        try:
            return await client.scan(CODE, "k")
        finally:
            await client.aclose()

    refused = asyncio.run(go(None))
    assert isinstance(refused, ScanNetworkError) and "CERTIFICATE_VERIFY_FAILED" in refused.reason
    assert server.requests == []  # nothing was sent to an unverified server
    trusted = asyncio.run(go(Path(cert_file)))
    assert isinstance(trusted, ScanAccepted)
