"""Hostile requests against a running ``kiosk shop webhook`` (``ShopService`` on loopback against the
stand-in Voucherify, its traffic validated against the spec), interleaved with RE-ZIP's own
deliveries: deliveries RE-ZIP did not sign as they are (``hostile_delivery``), RE-ZIP's signed
delivery with hostile bodies and framing, and anything at all at every route (methods, paths, codes,
tokens, headers, broken HTTP). Every answer is a clean one: 4xx for what was refused, never a 5xx
or a traceback; a replay of RE-ZIP's delivery only ever gets the code that delivery got; each next
delivery RE-ZIP signed gets a new code whose link works; nothing logs a traceback, a token, a code
or a link; no code is published twice; each kind of refusal is logged once, then counted."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import quote, quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.hostile import ANY, HOSTILE_TEXT, NUMBERS
from tests.integration.page_wire import exchange
from tests.integration.shop_harness import TILL_TOKEN, LogCapture, ShopHarness
from tests.integration.test_page_hostile import _raw_request
from tests.integration.test_shop_signatures import BODY, GOOD, PATH, hostile_delivery

pytestmark = pytest.mark.integration

EXAMPLES = 300
GOOD_EVERY = 25
#: RE-ZIP's one recorded delivery, as header lines without its length (each request sets its own).
GOOD_LINES = [(name, value) for name, value in GOOD.items() if name.lower() not in ("content-length", "content-type")]

bodies = st.one_of(
    st.just(BODY),
    st.builds(
        lambda value: json.dumps({"voucher_pool_id": value}).encode("utf-8", "surrogatepass"),
        st.one_of(HOSTILE_TEXT, NUMBERS, ANY),
    ),
    ANY.map(lambda value: json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")),
    st.integers(1, 2000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.integers(1000, 1100).map(lambda size: b'{"voucher_pool_id": "' + b"p" * size + b'"}'),
    st.sampled_from([b"", b"null", b"\xff\xfe", b'{"voucher_pool_id": NaN}', b"\xef\xbb\xbf{}", b"[" * 5000]),
    st.binary(max_size=200),
)
framings = st.sampled_from(
    ["length"] * 5 + ["short", "long", "none", "chunked", "bad-chunks", "bad-length", "two-lengths"]
)
codes = st.one_of(st.text(max_size=70), HOSTILE_TEXT, st.sampled_from(["RZ20-AAAA-BBBB", "", "A" * 65]))
paths = st.one_of(
    st.just(PATH),
    st.sampled_from(
        [
            "/redeem",
            "/redemptions",
            "/healthz",
            PATH + "/",
            PATH + "?pool=x",
            "/",
            "*",
            "//redeem",
            "/rezip/voucher%00",
            "http://evil.example" + PATH,
        ]
    ),
    codes.map(lambda code: "/redeem?code=" + quote(code.encode("utf-8", "surrogatepass"), safe="")),
    st.binary(max_size=30).map(lambda raw: "/" + quote_from_bytes(raw)),
)
authorizations = st.sampled_from([None, f"Bearer {TILL_TOKEN}", "Bearer wrong", "Basic x", TILL_TOKEN, "Bearer", ""])
extras = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "Expect",
                "Connection",
                "Transfer-Encoding",
                "Content-Encoding",
                "Accept-Language",
                "Webhook-Version",
                "X-Anything",
            ]
        ),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    ),
    max_size=2,
)
breakages = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    st.tuples(st.sampled_from(["method", "version", "name", "value"]), st.text(max_size=12)),
)


@st.composite
def hostile_requests(draw: st.DrawFn) -> tuple[str, bytes, bool]:
    """(what kind, the raw request, whether the client stops before its body is complete)."""
    kind = draw(st.sampled_from(["signature", "body", "anything"]))
    if kind == "signature":  # the headers RE-ZIP did not sign as they are, the body RE-ZIP sends
        lines = [(n, v) for n, v in draw(hostile_delivery()) if n.lower() != "content-length"]
        data, early = _raw_request("POST", PATH, "shop.example.com", None, None, lines, BODY, "length", None)
    elif kind == "body":  # RE-ZIP's own signed headers with a body and framing it never sends
        data, early = _raw_request(
            "POST", PATH, "shop.example.com", None, "application/json", GOOD_LINES, draw(bodies), draw(framings), None
        )
    else:
        authorization = draw(authorizations)
        lines = draw(extras) + ([("Authorization", authorization)] if authorization is not None else [])
        if draw(st.booleans()):
            lines += GOOD_LINES
        method = draw(st.sampled_from(["GET", "GET", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"]))
        content_type = draw(
            st.sampled_from(
                ["application/json", "application/json", None, "text/plain", "application/json; charset=latin-1"]
            )
        )
        if draw(st.booleans()):  # well-formed HTTP, so the route's own rules answer
            host, framing, breakage = "shop.example.com", "length", None
        else:
            host, framing, breakage = (
                draw(st.sampled_from(["shop.example.com", "", None])),
                draw(framings),
                draw(breakages),
            )
        data, early = _raw_request(
            method, draw(paths), host, None, content_type, lines, draw(bodies), framing, breakage
        )
    return kind, data, early


def test_hostile_requests_leave_the_service_answering_rezip(tmp_path: Path) -> None:
    with ShopHarness(tmp_path, link_checks_per_minute=100_000) as shop, LogCapture() as logs:
        port = shop.service.port
        good_code = shop.deliver(GOOD).json()["code"]  # RE-ZIP's recorded delivery, answered once
        fresh: list[str] = []

        def rezip_delivers() -> None:
            answer = shop.deliver()
            assert answer.status_code == 200, answer.text
            code = answer.json()["code"]
            fresh.append(code)
            assert shop.open_link(code).status_code == 303

        sent = {"requests": 0}

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(hostile_requests())
        def attack(hostile: tuple[str, bytes, bool]) -> None:
            kind, data, stops_early = hostile
            answer = exchange(port, data, half_close=stops_early)
            assert not answer.timed_out, data[:300]
            assert answer.status is not None or stops_early, (data[:300], answer)
            assert answer.status is None or answer.status < 500, (data[:300], answer.status, answer.body[:300])
            assert b"Traceback" not in answer.body
            if answer.status == 200 and data.startswith(b"POST " + PATH.encode() + b" "):
                assert json.loads(answer.body)["code"] == good_code, "a replay got a new code"
            sent["requests"] += 1
            if sent["requests"] % GOOD_EVERY == 0:
                rezip_delivers()

        attack()
        rezip_delivers()  # and the one after the attack
        published = shop.published()
        warnings = [
            r.getMessage() for r in logs.records if r.name.startswith("kiosk.") and r.levelno >= logging.WARNING
        ]
        problems = logs.problems(shop.secrets_list([good_code, *fresh]))
    assert problems == []
    assert len(published) == len(set(published)) == 1 + len(fresh) >= 1 + EXAMPLES // GOOD_EVERY
    assert shop.problems == [], "\n".join(shop.problems)
    kinds = [line.rsplit(" (", 1)[0] if line.endswith(" more)") else line for line in warnings]
    assert all(kinds.count(kind) <= 2 for kind in kinds), warnings  # a flood is a line per kind
