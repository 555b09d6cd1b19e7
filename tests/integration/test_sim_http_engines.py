"""The stand-ins' two HTTP engines (``kiosk.sim.httpd``) serve the same routes the same way: the
threaded one, whose handlers may block, and the event-loop one the stand-in Voucherify runs on.
Each is driven over real loopback sockets, hostile bytes included."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kiosk.cli.sim import _serve_until_signalled
from kiosk.sim.httpd import MAX_REQUEST_BYTES, AsyncJsonServer, JsonServer, Reply, Request, json_reply
from tests.conftest import KIOSK

pytestmark = pytest.mark.integration


def _echo(request: Request) -> Reply:
    return json_reply(
        200,
        {
            "method": request.method,
            "params": request.params,
            "query": request.query,
            "body": request.body.decode("utf-8", "replace"),
            "origin": request.origin,
            "agent": request.header("User-Agent"),
        },
    )


def _broken(request: Request) -> Reply:
    raise KeyError("a stand-in bug")


ROUTES = [
    ("GET", r"/items/(?P<item>[^/]+)", _echo),
    ("POST", r"/items", _echo),
    ("GET", r"/broken", _broken),
]


#: Bytes no server should take as a request it serves; the last never sends the body it declares.
HOSTILE = [
    b"GET //[bad/v1 HTTP/1.1\r\nHost: x\r\n\r\n",  # no path urllib can split
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000000\r\n\r\n" + b"x" * 100_000,
    b"\x00\xff\x16\x03\x01 not http\r\n\r\n",
    b"GET /items/a HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /items/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n",
    b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n",
    b"GET /items/a HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",
    b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nshort",
]


def _shaped(status: int, message: str) -> Reply:
    return json_reply(status, {"error": {"code": status, "message": message}})


@pytest.fixture(params=[JsonServer, AsyncJsonServer], ids=["threads", "event-loop"])
def server(request: pytest.FixtureRequest) -> Iterator[JsonServer | AsyncJsonServer]:
    made = request.param(ROUTES, errors=_shaped).start()
    yield made
    made.stop()


def _raw(url: str, data: bytes, *, read_all: bool = True, timeout_s: float = 5) -> bytes:
    """What the server answers to ``data`` until it closes, or nothing more comes in ``timeout_s``."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        sock.sendall(data)
        chunks = []
        while read_all:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_routes_params_and_query_as_sent(server: JsonServer | AsyncJsonServer) -> None:
    answer = httpx.get(server.url + "/items/A%2FB?x=1&x=2&y=%C3%A6", headers={"User-Agent": "t"}, timeout=5)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    doc = answer.json()
    assert doc["params"] == {"item": "A%2FB"}  # a handler unquotes what it takes from the path
    assert doc["query"] == {"x": ["1", "2"], "y": ["æ"]}
    assert doc["origin"] == server.url and doc["agent"] == "t"
    posted = httpx.post(server.url + "/items", content=b'{"a": 1}', timeout=5).json()
    assert posted["method"] == "POST" and json.loads(posted["body"]) == {"a": 1}


def test_refusals_have_the_stand_ins_shape(server: JsonServer | AsyncJsonServer) -> None:
    assert httpx.get(server.url + "/nowhere", timeout=5).json() == {"error": {"code": 404, "message": "not found"}}
    wrong = httpx.delete(server.url + "/items", timeout=5)
    assert wrong.status_code == 405 and wrong.json()["error"]["message"] == "method not allowed"
    bug = httpx.get(server.url + "/broken", timeout=5)
    assert bug.status_code == 500 and "KeyError" in bug.json()["error"]["message"]
    big = httpx.post(server.url + "/items", content=b"x" * (MAX_REQUEST_BYTES + 1), timeout=10)
    assert big.status_code == 413 and big.json()["error"]["message"] == "request body too large"


def test_header_bytes_are_read_as_latin_1(server: JsonServer | AsyncJsonServer) -> None:
    answer = _raw(server.url, b"GET /items/a HTTP/1.1\r\nHost: x\r\nUser-Agent: caf\xe9\r\nConnection: close\r\n\r\n")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["agent"] == "café"


def test_no_host_header_names_the_server_itself(server: JsonServer | AsyncJsonServer) -> None:
    answer = _raw(server.url, b"GET /items/a HTTP/1.0\r\n\r\n")  # HTTP/1.1 requires a Host
    assert answer.split(b" ", 2)[1] == b"200"
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["origin"] == server.url


def test_hostile_bytes_then_the_next_client_is_served(
    server: JsonServer | AsyncJsonServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    hostile = HOSTILE
    for data in hostile:
        answer = _raw(server.url, data, timeout_s=1)  # a body that never comes whole is waited for
        # Refused, closed, or (the threaded engine, for bytes that are no request line) an HTTP/0.9
        # error page: never an answer as if it were a request.
        assert not answer.startswith(b"HTTP/1.1 2"), (data[:60], answer[:80])
        assert not answer.startswith(b"HTTP/1.1 5"), (data[:60], answer[:80])
    # A chunk size that is no number: the threaded engine reads no chunked bodies (so an empty
    # body, and then "zz" as a request), the event-loop engine refuses it; neither fails.
    odd = _raw(server.url, b"POST /items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert odd.startswith(b"HTTP/1.") and not odd.startswith((b"HTTP/1.1 5", b"HTTP/1.0 5"))
    for data in hostile[:2]:  # a client that hangs up half-way through its head or body
        _raw(server.url, data[: len(data) // 2], read_all=False)
    assert httpx.get(server.url + "/items/next", timeout=5).json()["params"] == {"item": "next"}
    assert not [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]
    assert "Traceback" not in capfd.readouterr().err


def test_stop_closes_kept_alive_connections(server: JsonServer | AsyncJsonServer) -> None:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /items/a HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # the connection stays open, idle
        server.stop()
        leftover = b""
        try:
            while chunk := sock.recv(65536):
                leftover += chunk
        except ConnectionResetError:
            pass
        assert leftover == b""  # closed, as a server that went away
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/items/a", timeout=2)


def test_a_slow_answer_holds_no_other_request_up() -> None:
    asked = threading.Event()

    def delay_s() -> float:  # read once per request as it arrives: the first waits 30 s
        if asked.is_set():
            return 0.0
        asked.set()
        return 30.0

    server = AsyncJsonServer(ROUTES, answer_delay=delay_s).start()
    slow: list[httpx.Response | BaseException] = []

    def ask() -> None:
        try:
            slow.append(httpx.get(server.url + "/items/slow", timeout=60))
        except httpx.HTTPError as exc:
            slow.append(exc)

    waiting = threading.Thread(target=ask, daemon=True)
    try:
        waiting.start()
        assert asked.wait(10)
        assert httpx.get(server.url + "/items/fast", timeout=10).json()["params"] == {"item": "fast"}
        assert waiting.is_alive() and not slow  # the first is still waiting out its 30 s
    finally:
        server.stop()  # the waiting answer is cut: its client sees the connection close
    waiting.join(10)
    assert slow and isinstance(slow[0], httpx.HTTPError)


def test_the_stand_in_voucherify_process_takes_hostile_bytes_and_serves_on(tmp_path: Path) -> None:
    """The real ``kiosk sim voucherify``: hostile bytes at it, then a publication is served, and it
    stops on SIGTERM with exit 0 and no traceback."""
    process = subprocess.Popen(
        [*KIOSK, "sim", "voucherify", "--db", str(tmp_path / "v.sqlite"), "--seed", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        for data in HOSTILE:
            answer = _raw(ready["url"], data, timeout_s=1)
            assert not answer.startswith((b"HTTP/1.1 2", b"HTTP/1.1 5", b"HTTP/1.0 5")), (data[:60], answer[:80])
        published = httpx.post(
            ready["url"] + "/v1/publications",
            json={
                "campaign": {"name": "RE-ZIP 20 percent", "count": 1},
                "source_id": "s-1",
                "customer": {"source_id": "c"},
            },
            headers={"X-App-Id": ready["app_id"], "X-App-Token": ready["app_token"]},
            timeout=10,
        )
        assert published.status_code == 200 and published.json()["voucher"]["code"].startswith("RZ20-")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err and "ERROR" not in err, err


def test_a_stand_in_whose_server_died_exits_1_saying_so(capsys: pytest.CaptureFixture[str]) -> None:
    server = AsyncJsonServer(ROUTES).start()
    assert server.serving
    loop = server._loop
    assert loop is not None
    threading.Timer(0.2, lambda: loop.call_soon_threadsafe(loop.stop)).start()  # its loop ends, unasked
    give_up = threading.Timer(10, os.kill, (os.getpid(), signal.SIGTERM))  # else it would wait forever
    give_up.start()
    try:
        assert _serve_until_signalled([server], check_s=0.05) == 1
    finally:
        give_up.cancel()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        server.stop()
    assert not server.serving
    assert f"the stand-in at {server.url} stopped serving" in capsys.readouterr().err
