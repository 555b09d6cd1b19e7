"""Hostile requests against the page server of a whole running kiosk (``open_kiosk`` with the
stand-in backend), interleaved with customer scans: every answer is a clean 4xx or a 2xx, a refused
request changes nothing, no traceback and no secret is logged, and each next customer still gets a
voucher of their own on the screen."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.app import ScanReport
from kiosk.config import load_config
from kiosk.devices.screen.page_requests import MAX_BODY_BYTES
from kiosk.runtime import open_kiosk
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, SHOPS, new_ulid
from kiosk.sim.kiosk_config import write_kiosk_config
from kiosk.sim.world import demo_world
from tests.integration.page_wire import exchange, running, wait_for

pytestmark = pytest.mark.integration

LANGUAGES = ("da_DK", "hu_HU")
#: Examples of hostile requests, and a customer scan after every this many.
EXAMPLES = 1000
SCAN_EVERY = 50

ROUTES = [
    "/",
    "/events",
    "/status",
    "/ack",
    "/locale",
    "/touch",
    "/static/kiosk.js",
    "/static/index.html",
    "/font/bold.ttf",
    "/static/../../config.py",
    "/static/..%2f..%2fconfig.py",
    "/static/%2e%2e/kiosk.css",
    "/font/..%2fbold.ttf",
    "/logo/..%2f..%2fetc%2fpasswd",
    "/logo/",
    "//status",
    "/status?x=1#y",
    "/ack/",
    "*",
    "http://evil.example/status",
    "/static/kiosk.js%00.html",
    "/%00",
    "/static/kiosk.js\x00",
    "/ev ents",
    "/\u00e9v\u00e9nts",
]
printable = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
visible = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
anything = st.text(max_size=20)  # CR, LF, NUL, non-Latin-1 and lone surrogates included


def hostile_requests(port: int) -> st.SearchStrategy[tuple[bytes, bool]]:
    """Raw requests (and whether the client stops sending before its body is complete). Each request
    is mostly well-formed with one or two hostile parts, so that most get past the HTTP parser to the
    page's own rules; some are broken at the HTTP level outright."""
    own = f"127.0.0.1:{port}"
    hosts = st.sampled_from(
        [
            own,
            own,
            own,
            f"localhost:{port}",
            f"[::1]:{port}",
            f"evil.example:{port}",
            "127.0.0.1",
            f"127.0.0.1:{port}.evil.example",
            "",
            "x" * 3000,
            f"{own}, evil.example",
            None,
        ]
    )
    origins = st.sampled_from(
        [None, None, f"http://{own}", "null", "http://evil.example", f"https://{own}", f"http://{own}/"]
    )
    content_types = st.sampled_from(
        [
            "application/json",
            "application/json",
            "application/json; charset=utf-8",
            None,
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json; charset=latin-1",
            "application/json, text/plain",
        ]
    )
    methods = st.sampled_from(
        ["GET", "GET", "POST", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"]
    )
    paths = st.one_of(
        st.sampled_from(ROUTES),
        st.text(visible, max_size=40).map(lambda text: "/" + text.replace(" ", "")),
        st.binary(max_size=40).map(lambda raw: "/" + quote_from_bytes(raw)),
        st.integers(1000, 9000).map(lambda n: "/" + "a" * n),
    )
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=12,
    )
    numbers = st.one_of(
        st.integers(-3, 12),
        st.integers(-(2**70), 2**70),
        st.just(10**1000),
        st.floats(),
        st.booleans(),
        st.text(max_size=6),
        st.none(),
    )
    bodies = st.one_of(
        st.builds(lambda seq: json.dumps({"seq": seq}).encode(), numbers),
        st.builds(
            lambda locale: json.dumps({"locale": locale}).encode(),
            st.one_of(st.sampled_from([*LANGUAGES, "en_GB", "xx_XX"]), st.text(max_size=8)),
        ),
        json_values.map(lambda value: json.dumps(value).encode()),
        st.integers(-8, 130).map(
            lambda less: b"[" * (MAX_BODY_BYTES - less)
        ),  # Python's recursion limit, the size limit
        st.integers(1, 600).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
        st.sampled_from(
            [b'{"seq": NaN}', b'{"seq": 1e999}', b'{"seq": 1.0}', b'{"seq": "\xff"}', b"\xef\xbb\xbf{}", b""]
        ),
        st.binary(max_size=300),
    )
    framings = st.sampled_from(
        ["length"] * 4 + ["short", "long", "none", "chunked", "bad-chunks", "bad-length", "two-lengths"]
    )
    extra = st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "Expect",
                    "Connection",
                    "Upgrade",
                    "Cookie",
                    "X-Forwarded-Host",
                    "Transfer-Encoding",
                    "Content-Encoding",
                    "X-Anything",
                ]
            ),
            st.text(visible, max_size=30),
        ),
        max_size=2,
    )
    # At most one part broken at the HTTP level: the method, the version, or a header's name or value.
    breakages = st.one_of(
        st.just(None),
        st.just(None),
        st.just(None),
        st.tuples(
            st.sampled_from(["method", "version", "name", "value"]),
            st.one_of(anything, st.binary(min_size=1, max_size=8).map(lambda raw: raw.decode("latin-1"))),
        ),
    )
    anything_at_all = st.builds(
        _raw_request, methods, paths, hosts, origins, content_types, extra, bodies, framings, breakages
    )
    # Half the requests are the page's own kind, a JSON POST to /ack, /locale or /touch from its own address,
    # with a hostile body, framing or Origin: these reach the body rules.
    page_posts = st.builds(
        _raw_request,
        st.just("POST"),
        st.sampled_from(["/ack", "/locale", "/touch"]),
        st.just(own),
        st.sampled_from([None, None, f"http://{own}", "http://evil.example"]),
        st.sampled_from(["application/json", "application/json; charset=utf-8"]),
        st.just([]),
        bodies,
        st.sampled_from(["length", "length", "chunked", "short", "long"]),
        st.just(None),
    )
    return st.one_of(page_posts, anything_at_all)


def _raw_request(
    method: str,
    path: str,
    host: str | None,
    origin: str | None,
    content_type: str | None,
    extra: list[tuple[str, str]],
    body: bytes,
    framing: str,
    breakage: tuple[str, str] | None,
) -> tuple[bytes, bool]:
    version = "HTTP/1.1"
    headers = [("Host", host), ("Origin", origin), ("Content-Type", content_type), *extra]
    if breakage is not None:
        part, text = breakage
        method = text if part == "method" else method
        version = text if part == "version" else version
        headers += [(text, "x")] if part == "name" else [("X-Broken", text)] if part == "value" else []
    lines = [f"{method} {path} {version}"] + [f"{name}: {value}" for name, value in headers if value is not None]
    payload = body
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}")
    elif framing == "short":  # the rest of the body reads as a next request
        lines.append(f"Content-Length: {len(body) // 2}")
    elif framing == "long":  # the client stops sending before the body it announced is complete
        lines.append(f"Content-Length: {len(body) + 10}")
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        payload = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    elif framing == "bad-chunks":
        lines.append("Transfer-Encoding: chunked")
        payload = b"zz\r\n" + body
    elif framing == "bad-length":
        lines.append("Content-Length: " + ["-1", "abc", "1e3", " 5 5", "99999999999999999999"][len(body) % 5])
    elif framing == "two-lengths":
        lines += [f"Content-Length: {len(body)}", f"Content-Length: {len(body) + 1}"]
    head = "\r\n".join(lines).encode("utf-8", "surrogatepass") + b"\r\n\r\n"
    return head + payload, framing == "long"


# The kiosk's own threads use the random module while hypothesis draws examples; that is no test's doing.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_hostile_page_requests_leave_the_kiosk_serving_customers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    reports: list[ScanReport] = []
    with demo_world(tmp_path / "world") as world:
        path = write_kiosk_config(
            tmp_path / "kiosk.toml",
            backend_url=world.url,
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            screen_type="web",
        )
        path.write_text(
            path.read_text().replace('locale = "en_GB"', f'locale = "en_GB"\nlanguages = {list(LANGUAGES)}')
        )
        config = load_config(path)
        with running(lambda: open_kiosk(config, on_report=reports.append)) as (kiosk, background):
            screen = kiosk.screen
            chosen: list[str] = []
            choose = screen.on_locale
            screen.on_locale = lambda locale: (chosen.append(locale), choose(locale))  # type: ignore[union-attr, func-returns-value]
            sent = {"requests": 0, "scans": 0}

            def customer_scans() -> None:
                n = sent["scans"] = sent["scans"] + 1
                background.call(kiosk.app.scan, SHOPS["sko"].prefix + new_ulid(seed=f"hostile:{tmp_path}:{n}"))
                wait_for(lambda: len(reports) == n)
                report = reports[-1]
                assert report.status == "issued" and report.source == "online" and report.voucher is not None, report
                frame = screen.frame
                assert frame is not None and frame["state"] == "showing_voucher"
                assert frame["voucher"]["code"] == report.voucher.code

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(hostile_requests(screen.port))
            def attack(hostile: tuple[bytes, bool]) -> None:
                data, stops_early = hostile
                before = (screen.acknowledged, list(chosen))
                answer = exchange(screen.port, data, half_close=stops_early)
                assert not answer.timed_out, data[:200]
                assert answer.status is not None or stops_early, (data[:200], answer)
                assert answer.status is None or answer.status < 500, (data[:200], answer)
                assert b"Traceback" not in answer.body
                if answer.status is None or not 200 <= answer.status < 300:
                    assert (screen.acknowledged, chosen) == before, data[:200]  # refused: nothing moved
                else:
                    assert screen.acknowledged <= (screen.frame or {}).get("seq", 0)
                    assert set(chosen) <= set(config.languages)
                sent["requests"] += 1
                if sent["requests"] % SCAN_EVERY == 0:
                    customer_scans()

            attack()
            customer_scans()  # and the one after the attack
            assert (
                exchange(screen.port, b"GET /status HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % screen.port).status == 200
            )
        plucked = httpx.get(world.url + "/_sim/state").json()["plucked"]
    codes = [report.voucher.code for report in reports if report.voucher]
    assert len(codes) == len(set(codes)) == sent["scans"] >= EXAMPLES // SCAN_EVERY  # no code twice
    assert len(plucked) == len(set(plucked))
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert tracebacks == []
    secrets = [
        DEMO_KIOSK_TOKEN,
        *codes,
        *(report.voucher.link for report in reports if report.voucher and report.voucher.link),
    ]
    leaked = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and any(secret in r.getMessage() for secret in secrets)
    ]
    assert leaked == []
    page_warnings = [r.getMessage() for r in caplog.records if r.name.startswith("kiosk.devices.screen")]
    kinds = [line.rsplit(" (", 1)[0] if line.endswith(" more)") else line for line in page_warnings]
    assert all(kinds.count(kind) <= 2 for kind in kinds), page_warnings  # a flood is a line per kind
