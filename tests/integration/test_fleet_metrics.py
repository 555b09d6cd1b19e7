"""The kiosk's /metrics after real scans through the whole running kiosk (``open_kiosk`` against the
stand-in backend), read back with prometheus_client's own text parser; and hostile requests to
/metrics, after which the next customer still gets a voucher."""

from __future__ import annotations

import asyncio
import dataclasses
import select
import socket
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from kiosk import __version__
from kiosk.config import Config, ConfigError, parse_config
from kiosk.fleet.metrics import KioskMetrics
from kiosk.fleet.metrics_server import MAX_CONNECTIONS, MetricsServer, from_loopback
from kiosk.fleet.snapshot import ContactWatch, SnapshotTaker
from kiosk.secret_files import write_secret_file
from kiosk.status import KioskStatus
from tests.integration.hostile import KioskHarness, fresh_code
from tests.integration.page_wire import exchange

pytestmark = pytest.mark.integration


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels), as Prometheus would read it."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def scrape(kiosk: KioskHarness) -> str:
    response = httpx.get(f"http://127.0.0.1:{kiosk.kiosk.screen.port}/metrics", timeout=10)  # type: ignore[union-attr]
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return response.text


async def post_scan(kiosk: KioskHarness, text: str) -> None:
    kiosk.kiosk.app.scan(text)


@pytest.fixture(scope="module")
def kiosk(tmp_path_factory: pytest.TempPathFactory) -> KioskHarness:
    with KioskHarness(tmp_path_factory.mktemp("metrics")) as harness:
        yield harness


def test_metrics_count_real_scans(kiosk: KioskHarness) -> None:
    before = samples(scrape(kiosk))
    vouchers, links = [], []
    for _ in range(3):
        report = kiosk.scan(fresh_code())
        assert report.status == "issued" and report.source == "online"
        vouchers.append(report.voucher)
    kiosk.proxy.down = True  # the backend is away: the next two come from the offline cache
    try:
        for _ in range(2):
            report = kiosk.scan(fresh_code())
            assert report.status == "issued" and report.source == "offline", report.detail
            vouchers.append(report.voucher)
        kiosk.call(post_scan(kiosk, "5701234567899"))  # not ours: its report names no code to wait for
        kiosk.quiet()
        after = samples(scrape(kiosk))
    finally:
        kiosk.proxy.down = False

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert grew("kiosk_scans_total", result="issued") == 5
    assert grew("kiosk_scans_total", result="invalid") == 1
    assert grew("kiosk_issuances_total", source="online") == 3
    assert grew("kiosk_issuances_total", source="offline") == 2
    assert grew("kiosk_notices_total", kind="invalid_code") == 1
    assert grew("kiosk_print_jobs_total", result="printed") == 5
    assert grew("kiosk_scan_to_voucher_seconds_count") == 5
    assert 0 < grew("kiosk_scan_to_voucher_seconds_sum") < 5 * 6
    assert grew("kiosk_backend_requests_total", endpoint="scan", status_class="2xx") == 3
    assert value(after, "kiosk_backend_requests_total", endpoint="scan", status_class="5xx") >= 2
    assert value(after, "kiosk_backend_request_seconds_count", endpoint="scan") >= 5
    # The gauges read the kiosk's own state: the offline store, the flow, the printer.
    store = kiosk.kiosk.store
    assert value(after, "kiosk_offline_codes_left_total") == sum(row["count"] for row in store.available())
    for row in store.available():
        assert value(after, "kiosk_offline_codes_left", shop=row["shop_id"]) >= row["count"]
    assert value(after, "kiosk_journal_pending") == len(store.pending()) >= 2
    assert value(after, "kiosk_journal_oldest_pending_age_seconds") >= 0
    state = kiosk.kiosk.app.flow.state.value
    assert value(after, "kiosk_flow_state", state=state) == 1
    assert sum(v for (name, _), v in after.items() if name == "kiosk_flow_state") == 1
    assert value(after, "kiosk_printer_state", state="ready") == 1
    assert value(after, "kiosk_printer_paper_near_end") == 0
    assert value(after, "kiosk_build_info", version=__version__, commit=kiosk.kiosk.fleet.snapshot().commit) == 1
    assert value(after, "kiosk_backend_last_heard_seconds") >= 0
    assert value(after, "process_resident_memory_bytes") > 0
    # No voucher code, link or token in any label.
    secrets = [kiosk.token] + [v.code for v in vouchers if v] + [v.link for v in vouchers if v and v.link]
    for (_, labels), _ in after.items():
        for _, text in labels:
            assert not any(secret in text for secret in secrets if secret), text
    assert kiosk.log_problems(secrets + links) == []


def test_the_next_customer_is_served_after_hostile_metrics_requests(kiosk: KioskHarness) -> None:
    port = kiosk.kiosk.screen.port  # type: ignore[union-attr]
    heads = st.sampled_from(
        [
            "GET /metrics HTTP/1.1",
            "GET /metrics?name[]=kiosk_scans_total HTTP/1.1",
            "GET /metrics/ HTTP/1.1",
            "GET //metrics HTTP/1.1",
            "POST /metrics HTTP/1.1",
            "DELETE /metrics HTTP/1.1",
            "GET /metrics%00 HTTP/1.1",
            "GET /metrics HTTP/1.0",
            "GET /%6detrics HTTP/1.1",
            "GET /metrics\x1b[2J HTTP/1.1",
        ]
    )
    hosts = st.sampled_from([f"127.0.0.1:{port}", f"evil.example:{port}", "", f"localhost:{port}", "[::1]:0"])
    extra = st.lists(
        st.sampled_from(
            [
                "Accept: application/openmetrics-text; version=1.0.0",
                "Accept-Encoding: gzip",
                "Authorization: Bearer " + "x" * 5000,
                "Origin: http://evil.example",
                "Content-Length: 5",
                "Transfer-Encoding: chunked",
                "X-Forwarded-For: 10.0.0.1",
            ]
        ),
        max_size=3,
    )

    @settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(heads, hosts, extra)
    def hostile(head: str, host: str, headers: list[str]) -> None:
        lines = [head, *([f"Host: {host}"] if host else []), *headers, "Connection: close"]
        answer = exchange(port, ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
        assert answer.status is None or answer.status < 500, answer

    hostile()
    report = kiosk.scan(fresh_code())
    assert report.status == "issued" and report.voucher is not None
    assert report.ms["total"] < (kiosk.config.backend.deadline_s + 1) * 1000
    secrets = [report.voucher.code, report.voucher.link or ""]
    assert kiosk.log_problems(secrets) == []
    assert "kiosk_scans_total" in scrape(kiosk)


def test_loopback_peers_only() -> None:
    assert from_loopback(("127.0.0.1", 5000)) and from_loopback(("::1", 5000, 0, 0))
    assert from_loopback(("::ffff:127.0.0.1", 1, 0, 0))
    assert not from_loopback(("192.168.1.20", 5000)) and not from_loopback(None) and not from_loopback(("x",))


def test_lan_metrics_need_the_bearer_token(tmp_path: Path) -> None:
    taker = SnapshotTaker(lambda: KioskStatus("idle", "da_DK", "kiosk-7", offline=False), None, ContactWatch())
    metrics = KioskMetrics(taker.take)

    async def run() -> tuple[int, int, int, str]:
        server = MetricsServer("127.0.0.1", 0, metrics.render, token="s3cret-token")
        await server.start()
        try:
            url = f"http://127.0.0.1:{server.port}/metrics"
            async with httpx.AsyncClient() as http:
                missing = await http.get(url)
                wrong = await http.get(url, headers={"Authorization": "Bearer nope"})
                right = await http.get(url, headers={"Authorization": "Bearer s3cret-token"})
            return missing.status_code, wrong.status_code, right.status_code, right.text
        finally:
            await server.stop()

    missing, wrong, right, text = asyncio.run(run())
    assert (missing, wrong, right) == (401, 401, 200)
    assert value(samples(text), "kiosk_flow_state", state="idle") == 1


def test_a_lan_listen_needs_a_token_file(tmp_path: Path) -> None:
    doc = {
        "kiosk": {"hardware_id": "k1", "data_dir": str(tmp_path / "data")},
        "backend": {"url": "https://api.example.org", "drop_point_location_id": "dp1", "token_file": "t"},
        "metrics": {"listen": "0.0.0.0:9101"},
    }
    with pytest.raises(ConfigError, match="metrics.listen: .*token_file"):
        parse_config(doc, base=tmp_path)
    local = parse_config({**doc, "metrics": {"listen": "127.0.0.1:9101"}}, base=tmp_path)
    assert local.metrics.listen == "127.0.0.1:9101"
    (tmp_path / "m.token").write_text("abc\n")
    lan = parse_config({**doc, "metrics": {"listen": "0.0.0.0:9101", "token_file": "m.token"}}, base=tmp_path)
    assert dataclasses.replace(lan.metrics).token_file == tmp_path / "m.token"


def test_the_lan_metrics_server_outlasts_slow_and_hostile_clients(tmp_path: Path) -> None:
    """The LAN door: more idle and half-sent connections than it takes, requests aiohttp cannot
    parse and wrong tokens; the scraper with the token is still answered, the next customer is
    served, and nothing is logged with a traceback or the token."""
    token = "lan-metrics-SECRET-token"
    write_secret_file(tmp_path / "metrics.token", token.encode() + b"\n")

    def lan(config: Config) -> Config:
        metrics = dataclasses.replace(config.metrics, listen="127.0.0.1:0", token_file=tmp_path / "metrics.token")
        return dataclasses.replace(config, metrics=metrics)

    with KioskHarness(tmp_path / "kiosk", adjust=lan) as kiosk:
        assert kiosk.kiosk.fleet is not None and kiosk.kiosk.fleet.metrics_server is not None
        port = kiosk.kiosk.fleet.metrics_server.port
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(MAX_CONNECTIONS + 8)]
        for n, sock in enumerate(held):
            if n % 2:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
        hostile = [
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS hello
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n",
            b"G\x00T /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nAuthorization: Bearer wrong\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nAuthorization: Bearer " + token.encode() + b"x\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST /metrics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
        ]
        statuses = [exchange(port, data).status for data in hostile]
        assert all(status is None or 400 <= status < 500 for status in statuses), statuses
        scraped = httpx.get(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert scraped.status_code == 200 and "kiosk_scans_total" in scraped.text
        # At most MAX_CONNECTIONS are kept: the oldest waiting ones made room (unguarded, every one
        # stayed open, and a LAN host could use up the kiosk's file descriptors).
        assert _closed_by_the_server(held, len(held) - MAX_CONNECTIONS) >= len(held) - MAX_CONNECTIONS
        report = kiosk.scan(fresh_code())
        assert report.status == "issued" and report.voucher is not None
        for sock in held:
            sock.close()
        assert kiosk.log_problems([token, report.voucher.code, report.voucher.link or ""]) == []


def _closed_by_the_server(sockets: list[socket.socket], expected: int) -> int:
    """How many of ``sockets`` the server has closed, once ``expected`` have been or after 5 s."""
    closed: set[int] = set()
    for _ in range(50):
        if len(closed) >= expected:
            break
        readable, _, _ = select.select([s for s in sockets if s.fileno() not in closed], [], [], 0.1)
        for sock in readable:
            try:
                if sock.recv(65536, socket.MSG_PEEK) == b"":
                    closed.add(sock.fileno())
            except OSError:
                closed.add(sock.fileno())
    return len(closed)
