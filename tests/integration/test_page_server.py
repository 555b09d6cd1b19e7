"""The kiosk page's server as a public surface: its own Host only, no other site's page, small strict
bodies, slow clients cut off, a connection cap, and shedding page clients when descriptors run out
(in a child process under a low RLIMIT_NOFILE, with the whole kiosk issuing meanwhile)."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from kiosk.core.flow import Screen, State
from kiosk.devices.screen.browser import HeadlessBrowser
from kiosk.devices.screen.page_requests import MAX_BODY_BYTES
from kiosk.devices.screen.web_screen import WebScreen
from kiosk.presentation.view import build_screen_view
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, SHOPS, new_ulid
from kiosk.sim.kiosk_config import write_kiosk_config
from kiosk.sim.virtual_scanner import VirtualScanner
from tests.conftest import REPO
from tests.integration.page_wire import Background, event_stream, exchange, post_json, request, running, wait_for

pytestmark = pytest.mark.integration

LOCALES = ("en_GB", "da_DK")


@asynccontextmanager
async def started(screen: WebScreen, on_locale: Callable[[str], None] | None = None) -> AsyncIterator[WebScreen]:
    await screen.start(on_locale=on_locale)
    try:
        yield screen
    finally:
        await screen.stop()


@pytest.fixture
def page(caplog: pytest.LogCaptureFixture) -> Iterator[tuple[WebScreen, list[str], Background]]:
    """A page server (two languages, a 1 s client timeout) that has shown one frame, on a loop of
    its own; yields it, the locales the page chose, and that loop."""
    chosen: list[str] = []
    caplog.set_level(logging.DEBUG)
    screen = WebScreen(port=0, locales=LOCALES, client_timeout_s=1.0, max_connections=8)
    with running(lambda: started(screen, chosen.append)) as (_, background):
        background.run(screen.show(build_screen_view(Screen(State.IDLE), "en_GB", "UTC")))
        yield screen, chosen, background


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()]
    assert bad == [], [r.getMessage() for r in bad]


ROUTES = ["/", "/static/kiosk.js", "/font/regular.ttf", "/events", "/status", "/no-such-page"]


@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "127.0.0.1", "127.0.0.1:1", "localhost:{port}.evil.example", "[::2]:{port}", ""]
)
def test_a_foreign_host_reads_nothing(page, host: str, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    screen, chosen, _ = page
    for path in ROUTES:
        answer = exchange(screen.port, request(screen.port, "GET", path, host=host))
        assert answer.status == 421, (path, answer)
        assert b"event-stream" not in answer.head and b"screen" not in answer.body
        assert answer.body == b"Host: this page answers only to its own address\n"
    for path, body in (("/ack", b'{"seq": 1}'), ("/locale", b'{"locale": "da_DK"}')):
        data = request(screen.port, "POST", path, host=host, headers={"Content-Type": "application/json"}, body=body)
        assert exchange(screen.port, data).status == 421
    assert screen.acknowledged == 0 and chosen == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["page request refused (421): Host: this page answers only to its own address"]  # 8 refusals
    no_tracebacks(caplog)


def test_no_host_at_all_is_refused_too(page) -> None:  # type: ignore[no-untyped-def]
    screen, _, _ = page
    assert exchange(screen.port, request(screen.port, "GET", "/status", host=None)).status == 400  # HTTP/1.1 needs one
    assert exchange(screen.port, b"GET /status HTTP/1.0\r\n\r\n").status == 421


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LocalHost:{port}", "[::1]:{port}"])
def test_the_page_answers_to_its_own_names(page, host: str) -> None:  # type: ignore[no-untyped-def]
    screen, _, _ = page
    statuses = {path: exchange(screen.port, request(screen.port, "GET", path, host=host)).status for path in ROUTES}
    assert statuses == {**dict.fromkeys(ROUTES[:-1], 200), "/no-such-page": 404}
    origin = f"http://{host.format(port=screen.port)}"
    ack = exchange(screen.port, post_json(screen.port, "/ack", b'{"seq": 1}', host=host, Origin=origin))
    assert ack.status == 204 and screen.acknowledged == 1


def test_an_ipv6_listen_address_is_answered_in_brackets() -> None:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    screen = WebScreen(host="::1", port=0)
    with running(lambda: started(screen)) as (running_screen, _):
        assert running_screen is screen and screen.url == f"http://[::1]:{screen.port}/"
        with socket.create_connection(("::1", screen.port), timeout=5) as sock:
            sock.sendall(f"GET /status HTTP/1.1\r\nHost: [::1]:{screen.port}\r\nConnection: close\r\n\r\n".encode())
            assert sock.recv(100).startswith(b"HTTP/1.1 200")


POSTS_REFUSED = [
    # (path, body, extra headers, status)
    ("/ack", b'{"seq": 1}', {"Origin": "http://evil.example"}, 403),
    ("/ack", b'{"seq": 1}', {"Origin": "null"}, 403),
    ("/locale", b'{"locale": "da_DK"}', {"Origin": "http://localhost:{port}"}, 403),  # not the Host it reached
    ("/ack", b'{"seq": 1}', {"Content-Type": "text/plain"}, 415),
    ("/locale", b"locale=da_DK", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ("/ack", b'{"seq": 1}', {"Content-Type": "application/json; charset=utf-16"}, 415),
    ("/ack", b" " * (MAX_BODY_BYTES + 1), {}, 413),
    ("/ack", b'{"seq": ' + b"1" + b"0" * 1000 + b"}", {}, 400),  # 10**1000
    ("/ack", b'{"seq": 1.0}', {}, 400),
    ("/ack", b'{"seq": true}', {}, 400),
    ("/ack", b'{"seq": -1}', {}, 400),
    ("/ack", b'{"seq": 0}', {}, 400),
    ("/ack", b'{"seq": 2}', {}, 400),  # a frame not sent yet
    ("/ack", b'{"seq": NaN}', {}, 400),
    ("/ack", b'{"seq": 1e999}', {}, 400),
    ("/ack", b"[" * MAX_BODY_BYTES, {}, 400),  # past Python's recursion limit
    ("/ack", b'{"seq": "\xff\xfe"}', {}, 400),
    ("/ack", b"", {}, 400),
    ("/ack", b"garbage", {"Content-Encoding": "gzip"}, 400),  # never decompressed: read as it is
    ("/ack", zlib.compress(b" " * 100_000), {"Content-Encoding": "deflate"}, 400),
    ("/locale", b'{"locale": "xx_XX"}', {}, 400),
    ("/locale", b'{"locale": ["da_DK"]}', {}, 400),
]


@pytest.mark.parametrize("path, body, headers, status", POSTS_REFUSED, ids=range(len(POSTS_REFUSED)))
def test_refused_posts_change_nothing_and_say_why_in_one_line(
    page,
    path: str,
    body: bytes,
    headers: dict[str, str],  # type: ignore[no-untyped-def]
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    screen, chosen, _ = page
    headers = {"Content-Type": "application/json", **{k: v.format(port=screen.port) for k, v in headers.items()}}
    answer = exchange(screen.port, request(screen.port, "POST", path, headers=headers, body=body))
    assert answer.status == status
    assert answer.body.endswith(b"\n") and answer.body.count(b"\n") == 1 and b"Traceback" not in answer.body
    assert screen.acknowledged == 0 and chosen == []
    no_tracebacks(caplog)


def test_the_pages_own_posts_are_taken(page) -> None:  # type: ignore[no-untyped-def]
    screen, chosen, _ = page
    origin = f"http://127.0.0.1:{screen.port}"
    assert exchange(screen.port, post_json(screen.port, "/ack", b'{"seq": 1}', Origin=origin)).status == 204
    assert exchange(screen.port, post_json(screen.port, "/locale", b'{"locale": "da_DK"}')).status == 204
    chunked = (
        request(
            screen.port,
            "POST",
            "/ack",
            headers={"Content-Type": "application/json; charset=utf-8", "Transfer-Encoding": "chunked"},
        )
        + b'a\r\n{"seq": 1}\r\n0\r\n\r\n'
    )
    assert exchange(screen.port, chunked).status == 204
    assert screen.acknowledged == 1 and chosen == ["da_DK"]


MALFORMED = {
    "bad method": b"G\x00T / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n",
    "unknown method": b"BREW / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n",
    "huge header": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
    "too many headers": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + b"X: y\r\n" * 500 + b"\r\n",
    "NUL in path": b"GET /static/\x00 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n",
    "two Hosts": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n\r\n",
    "TLS hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",
    "chunked garbage": b"POST /ack HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
    "length and chunked": b"POST /ack HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad length": b"POST /ack HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: -5\r\n\r\n",
}


def test_malformed_http_gets_a_one_line_400_and_one_warning(page, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    screen, _, _ = page
    for _ in range(3):
        for name, data in MALFORMED.items():
            answer = exchange(screen.port, data.replace(b"{port}", str(screen.port).encode()))
            assert answer.status == 400, name
            assert answer.body == b"not a well-formed HTTP request\n", (name, answer.body)  # nothing echoed back
    lying = post_json(screen.port, "/ack", b'{"seq": 1}').replace(b"Content-Length: 10", b"Content-Length: 99")
    assert exchange(screen.port, lying, half_close=True).status is None  # the client went away mid-body
    no_tracebacks(caplog)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines == ["page request refused (400): not a well-formed HTTP request"], lines  # 30 requests
    status = exchange(screen.port, request(screen.port, "GET", "/status"))
    assert json.loads(status.body)["screen"]["refused"] == {
        "page request refused (400): not a well-formed HTTP request": 30
    }


def test_a_slow_client_is_cut_off_and_an_idle_one_closed(page, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    screen, _, _ = page
    head = request(screen.port, "GET", "/status")
    with (
        socket.create_connection(("127.0.0.1", screen.port), timeout=10) as slow,
        socket.create_connection(("127.0.0.1", screen.port), timeout=10) as idle,
    ):
        sent = 0
        try:
            for byte in head:  # a byte every 0.2 s: the head would take 8 s; the client has 1 s
                slow.send(bytes([byte]))
                sent += 1
                time.sleep(0.2)
        except OSError:
            pass
        assert sent < len(head)
        assert slow.recv(100) == b"" and idle.recv(100) == b""  # closed without an answer
    assert screen.complaints == {"page client cut off: no complete request within 1 s": 1}  # the idle one is no fault
    assert exchange(screen.port, head).status == 200


def test_past_the_cap_the_oldest_waiting_connection_makes_room_then_event_streams() -> None:
    screen = WebScreen(port=0, max_connections=8, client_timeout_s=60.0)  # nobody is cut off by time here
    with running(lambda: started(screen)) as (_, background):
        stream = socket.create_connection(("127.0.0.1", screen.port), timeout=5)
        stream.sendall(request(screen.port, "GET", "/events"))
        assert stream.recv(4096).startswith(b"HTTP/1.1 200")
        waiting = [_waiting(screen.port) for _ in range(7)]  # the cap reached
        waiting += [_waiting(screen.port) for _ in range(3)]  # each sheds the oldest waiting one
        assert [_open(sock) for sock in waiting] == [False] * 3 + [True] * 7
        assert exchange(screen.port, request(screen.port, "GET", "/status")).status == 200
        assert [_open(sock) for sock in waiting] == [False] * 4 + [True] * 6 and _open(stream)
        assert background.run(_shed(screen, 10)) == 7  # the six still waiting, then the event stream
        assert not any(_open(sock) for sock in [*waiting, stream])
        wait_for(lambda: screen.clients == 0, 5)  # its stream ended with the connection
        for sock in [*waiting, stream]:
            sock.close()


def _waiting(port: int) -> socket.socket:
    """A connection that sends the start of a request and never the rest."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.send(b"GET / HTTP/1.1\r\n")
    time.sleep(0.05)  # accepted in this order
    return sock


def _open(sock: socket.socket) -> bool:
    """Still open: the server has not closed it (reads what an event stream sent meanwhile)."""
    sock.settimeout(0.2)
    try:
        while sock.recv(65536):
            pass
        return False
    except TimeoutError:
        return True
    except ConnectionResetError:
        return False


async def _shed(screen: WebScreen, count: int) -> int:
    return screen.shed_clients(count)


CHILD_PAGE = """
import asyncio, logging, resource, sys
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
from kiosk.devices.screen.web_screen import WebScreen

async def main():
    screen = WebScreen(port=0, max_connections=1000)  # a cap the descriptors cannot honour
    await screen.start()
    print(screen.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await screen.stop()

asyncio.run(main())
"""


def test_out_of_descriptors_sheds_page_clients_and_keeps_serving() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_PAGE],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(child.stdout.readline())  # type: ignore[union-attr]
        attackers = []
        for _ in range(150):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.send(b"GET / HTTP/1.1\r\n")
            attackers.append(sock)
        answers = [exchange(port, request(port, "GET", "/status")) for _ in range(5)]
        for sock in attackers:
            sock.close()
        answers.append(exchange(port, request(port, "GET", "/")))
    finally:
        _, stderr = child.communicate("", timeout=20)
    assert [a.status for a in answers] == [200] * 6
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr
    assert "out of file descriptors: page clients shed" in stderr
    assert_counted(stderr)


def assert_counted(stderr: str) -> None:
    """Each kind of page complaint is one line, and at most one more with its count (at exit)."""
    lines = [line.split(": ", 1)[1] for line in stderr.splitlines() if "kiosk.devices.screen" in line]
    kinds = [line.rsplit(" (", 1)[0] if line.endswith(" more)") else line for line in lines]
    assert lines and all(kinds.count(kind) <= 2 for kind in kinds), stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SlowClients:
    """``count`` slowloris connections kept up from a thread: each trickles a request head a byte at
    a time, and is opened again when the kiosk cuts it off."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.head = f"GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: {'s' * 4000}".encode()
        self.sockets: list[tuple[socket.socket, int] | None] = [None] * count
        self.cut = 0  # connections the kiosk closed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for index, entry in enumerate(self.sockets):
                try:
                    if entry is None:
                        sock = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                        sock.setblocking(False)
                        entry = (sock, 0)
                    sock, sent = entry
                    sock.send(self.head[sent : sent + 1])
                    self.sockets[index] = (sock, sent + 1)
                except OSError:
                    if entry is not None:
                        entry[0].close()
                        self.cut += 1
                    self.sockets[index] = None
            self._stop.wait(0.3)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for entry in self.sockets:
            if entry is not None:
                entry[0].close()


#: ``kiosk`` run with a low descriptor limit, set in the child itself (no preexec_fn in a threaded test).
LIMITED_KIOSK = [
    sys.executable,
    "-c",
    "import resource, runpy; resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)); "
    "runpy.run_module('kiosk.cli', run_name='__main__')",
]


def test_a_kiosk_with_64_descriptors_under_hundreds_of_slow_clients_keeps_issuing(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    codes = [SHOPS["sko"].prefix + new_ulid(seed=f"ulimit:{n}") for n in range(2)]
    with VirtualScanner(terminator="cr") as scanner:
        path = write_kiosk_config(
            tmp_path / "kiosk.toml",
            backend_url=backend.url,
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            scanner_device=scanner.path,
            screen_type="web",
        )
        path.write_text(path.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"'))
        child = subprocess.Popen(
            [*LIMITED_KIOSK, "run", "--config", str(path)], cwd=REPO, stderr=subprocess.PIPE, text=True
        )
        try:
            status = _wait_for_status(port)
            assert status["scanners"] == {f"serial:{scanner.path}": "open"} and status["state"] == "idle"
            frames: list[dict] = []
            watcher = threading.Thread(target=lambda: frames.extend(event_stream(port)), daemon=True)
            watcher.start()  # the page's event stream, open before the attack
            attack = SlowClients(port, 300)
            try:
                wait_for(lambda: attack.cut > 300, 30)  # more connections cut than the kiosk has descriptors
                seen: set[str] = set()
                for code in codes:
                    scanner.type(code)
                    wait_for(lambda seen=seen: _shown(frames) - seen, 20)  # a new voucher on the page
                    seen |= _shown(frames)
                during = exchange(port, request(port, "GET", "/status"))
            finally:
                attack.stop()
            assert during.status == 200
            with httpx.Client() as client:
                assert client.get(f"http://127.0.0.1:{port}/").status_code == 200
            assert _page_shows_a_voucher(f"http://127.0.0.1:{port}/")
        finally:
            child.terminate()
            _, stderr = child.communicate(timeout=20)
    shown = [f["voucher"]["code"] for f in frames if f["state"] == "showing_voucher"]
    assert len(shown) == len(set(shown)) == 2  # no code twice
    assert [scan["barcode"] for scan in backend.state()["scans"]] == codes  # each reached the backend, once
    assert "Traceback" not in stderr and " ERROR " not in stderr, stderr
    assert_counted(stderr)
    assert not any(code in stderr for code in shown)


def _shown(frames: list[dict]) -> set[str]:
    return {f["voucher"]["code"] for f in list(frames) if f["state"] == "showing_voucher"}


def _wait_for_status(port: int) -> dict:
    deadline = time.monotonic() + 20
    while True:
        try:
            status = httpx.get(f"http://127.0.0.1:{port}/status", timeout=2).json()
            if all(state == "open" for state in status["scanners"].values()):
                return status
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the kiosk did not start"
        time.sleep(0.1)


def _page_shows_a_voucher(url: str) -> bool:
    import asyncio

    async def look() -> bool:
        async with HeadlessBrowser(800, 480) as browser:
            await browser.navigate(url)
            await browser.wait_for("document.body.dataset.state === 'showing_voucher' && document.body.dataset.seq", 10)
            return bool(await browser.evaluate("document.querySelector('.code').textContent"))

    return asyncio.run(look())
