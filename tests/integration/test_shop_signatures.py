"""The shop webhook's signature gate against RE-ZIP's keys on loopback.

RE-ZIP's JWKS is a real HTTP server on 127.0.0.1 that counts its requests, and the gate fetches it
with httpx. Signatures come from our own signer and from a third-party RFC 9421 implementation
(``http-message-signatures``), which also verifies ours. The clocks are the test's: the wall clock
for ``created``, a monotonic one for the JWKS cache and its rate limit, so "30 s later" is exact
and no test waits. Hostile headers (hypothesis) are each refused with a typed reason, never an
exception, never accepted without RE-ZIP's own signature bytes, never a JWKS fetch beyond the rate
limit, and a good delivery is accepted right after each.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kiosk.shop.config import parse_shop_config
from kiosk.shop.signed_requests import Accepted, Refused, RezipKeys, SignatureGate
from kiosk.signatures import COVERED_COMPONENTS, public_jwk, sign_request
from kiosk.sim.httpd import JsonServer, Reply, Request, error_reply, json_reply

pytestmark = pytest.mark.integration

PUBLIC = "https://shop.example.com"
PATH = "/rezip/voucher"
WEBHOOK = PUBLIC + PATH
NOW = 1_800_000_000
BODY = b'{"voucher_pool_id": "pool-1"}'
KEY_1 = ec.generate_private_key(ec.SECP384R1())
KEY_2 = ec.generate_private_key(ec.SECP384R1())
STRANGER = ec.generate_private_key(ec.SECP384R1())
INTERVAL_S, CACHE_S = 30.0, 3600.0


class RezipJwks:
    """RE-ZIP's published keys: which ones, or how the endpoint misbehaves, is the test's to set."""

    def __init__(self) -> None:
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.answer: Reply | None = None
        self.requests = 0
        self.server = JsonServer([("GET", r"/.well-known/jwks.json", self._serve)]).start()
        self.url = self.server.url + "/.well-known/jwks.json"

    def _serve(self, request: Request) -> Reply:
        self.requests += 1
        if self.answer is not None:
            return self.answer
        return json_reply(200, {"keys": [public_jwk(key.public_key(), kid) for kid, key in self.keys.items()]})

    def reset(self, **keys: ec.EllipticCurvePrivateKey) -> None:
        self.keys, self.answer, self.requests = dict(keys), None, 0


@dataclass
class Clocks:
    wall: float = NOW
    mono: float = 1000.0


@dataclass
class Harness:
    """A gate as the service makes it, on one event loop for the whole module."""

    loop: asyncio.AbstractEventLoop
    jwks: RezipJwks
    clocks: Clocks = field(default_factory=Clocks)
    gate: SignatureGate | None = None
    http: httpx.AsyncClient | None = None
    #: Checked in a thread (a service of one process) or on the loop (one of several workers).
    beside_loop: bool = True

    def fresh(self, *, public_base: str = PUBLIC, window_s: float = 300, **keys: ec.EllipticCurvePrivateKey) -> None:
        self.jwks.reset(**keys)
        self.clocks = Clocks()
        assert self.http is not None
        rezip_keys = RezipKeys(
            self.jwks.url, self.http, refetch_interval_s=INTERVAL_S, cache_s=CACHE_S, monotonic=lambda: self.clocks.mono
        )
        self.gate = SignatureGate(
            public_base=public_base,
            path=PATH,
            keys=rezip_keys,
            window_s=window_s,
            clock=lambda: self.clocks.wall,
            beside_loop=self.beside_loop,
        )

    def check(self, headers: Any, *, target: str = PATH, method: str = "POST") -> Accepted | Refused:
        assert self.gate is not None
        return self.loop.run_until_complete(self.gate.check(method, target, headers))

    def check_all(self, deliveries: list[dict[str, str]]) -> list[Accepted | Refused]:
        """Deliveries arriving at once."""
        assert self.gate is not None
        gate = self.gate

        async def at_once() -> list[Accepted | Refused]:
            return await asyncio.gather(*(gate.check("POST", PATH, headers) for headers in deliveries))

        return self.loop.run_until_complete(at_once())


@pytest.fixture(scope="module", params=[True, False], ids=["in-a-thread", "on-the-loop"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    loop = asyncio.new_event_loop()
    jwks = RezipJwks()
    running = Harness(loop, jwks, beside_loop=request.param)
    running.http = httpx.AsyncClient(timeout=2.0)
    yield running
    loop.run_until_complete(running.http.aclose())
    loop.close()
    jwks.server.stop()


def delivery(
    key: ec.EllipticCurvePrivateKey = KEY_1,
    keyid: str = "k1",
    *,
    created: int = NOW,
    url: str = WEBHOOK,
    content_type: str = "application/json",
    version: str | None = "1",
) -> dict[str, str]:
    """A delivery as RE-ZIP sends it (signed with ``key`` under ``keyid``)."""
    headers = {"Content-Type": content_type, "Content-Length": str(len(BODY))}
    if version is not None:
        headers["Webhook-Version"] = version
    return headers | sign_request(key, keyid, "POST", url, headers, created=created)


# --- interoperability: a third-party RFC 9421 implementation -------------------------------------


def _third_party_signed(url: str, created: int, *, label: str | None = None) -> httpx.Request:
    request = httpx.Request(
        "POST", url, headers={"Content-Type": "application/json", "Webhook-Version": "1"}, content=BODY
    )
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ECDSA_P384_SHA384,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={"k1": KEY_1}),
    )
    signer.sign(
        request,
        key_id="k1",
        created=datetime.datetime.fromtimestamp(created, datetime.UTC),
        label=label,
        covered_component_ids=COVERED_COMPONENTS,
    )
    return request


@pytest.mark.parametrize("label", [None, "sig1"])
def test_a_delivery_signed_by_http_message_signatures_is_accepted(harness: Harness, label: str | None) -> None:
    harness.fresh(k1=KEY_1)
    request = _third_party_signed(WEBHOOK, NOW, label=label)
    assert request.headers["Signature-Input"].startswith(f"{label or 'pyhms'}=(")  # its own parameter order
    assert harness.check(request.headers.multi_items()) == Accepted("k1")


def test_http_message_signatures_verifies_what_we_sign() -> None:
    request = httpx.Request(
        "POST", WEBHOOK, content=BODY, headers=delivery(created=int(datetime.datetime.now().timestamp()))
    )
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ECDSA_P384_SHA384,
        key_resolver=MappingKeyResolver(public_keys={"k1": KEY_1.public_key()}, private_keys={}),
    )
    [result] = verifier.verify(request, require_components=COVERED_COMPONENTS)
    assert result.parameters["keyid"] == "k1" and result.parameters["alg"] == "ecdsa-p384-sha384"
    assert result.covered_components['"@target-uri"'] == WEBHOOK
    tampered = httpx.Request("POST", WEBHOOK + "?pool=other", content=BODY, headers=request.headers)
    with pytest.raises(InvalidSignature):
        verifier.verify(tampered, require_components=COVERED_COMPONENTS)


def test_a_third_party_signature_with_another_key_is_refused(harness: Harness) -> None:
    harness.fresh(k1=KEY_2)  # RE-ZIP publishes another key under k1
    result = harness.check(_third_party_signed(WEBHOOK, NOW).headers.multi_items())
    assert result == Refused("mismatch", "signature does not match") and result.status == 401


# --- what is signed --------------------------------------------------------------------------------


def test_a_delivery_rezip_signed_is_accepted(harness: Harness) -> None:
    harness.fresh(k1=KEY_1)
    assert harness.check(delivery()) == Accepted("k1")
    assert harness.jwks.requests == 1


@pytest.mark.parametrize(
    "signed_for, target, reason, status",
    [
        ("http://127.0.0.1:8090/rezip/voucher", PATH, "mismatch", 401),  # the listen address is not what RE-ZIP called
        ("https://shop.example.com/other", PATH, "mismatch", 401),
        (WEBHOOK, PATH + "?pool=other", "mismatch", 401),
        ("https://attacker.example/rezip/voucher", PATH, "mismatch", 401),
        (WEBHOOK, "/other", "wrong_target", 404),
    ],
)
def test_the_target_uri_is_the_public_url_plus_the_path(
    harness: Harness, signed_for: str, target: str, reason: str, status: int
) -> None:
    harness.fresh(k1=KEY_1)
    result = harness.check(delivery(url=signed_for), target=target)
    assert isinstance(result, Refused) and (result.reason, result.status) == (reason, status)


def test_a_proxy_prefix_in_the_public_url_is_part_of_the_target(harness: Harness) -> None:
    harness.fresh(public_base="https://shop.example.com/bridge/", k1=KEY_1)
    assert harness.check(delivery(url="https://shop.example.com/bridge/rezip/voucher")) == Accepted("k1")
    assert isinstance(harness.check(delivery(url=WEBHOOK)), Refused)


def test_the_method_and_content_type_are_covered(harness: Harness) -> None:
    harness.fresh(k1=KEY_1)
    assert harness.check(delivery(), method="PUT").reason == "mismatch"  # type: ignore[union-attr]
    changed = delivery() | {"Content-Type": "text/plain"}
    assert harness.check(changed).reason == "mismatch"  # type: ignore[union-attr]
    missing = {k: v for k, v in delivery().items() if k != "Content-Type"}
    assert harness.check(missing).reason == "not_covered"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "offset, window, accepted",
    [
        (-299, 300, True),
        (299, 300, True),
        (-301, 300, False),
        (301, 300, False),
        (-61, 60, False),
        (59, 60, True),
        (-(10**9), 300, False),
    ],
)
def test_created_must_lie_within_the_window(harness: Harness, offset: int, window: int, accepted: bool) -> None:
    harness.fresh(window_s=window, k1=KEY_1)
    result = harness.check(delivery(created=NOW + offset))
    if accepted:
        assert result == Accepted("k1")
    else:
        assert isinstance(result, Refused) and (result.reason, result.status) == ("stale", 401)


@pytest.mark.parametrize("version, accepted", [("1", True), (" 1 ", True), ("2", False), ("", False), (None, False)])
def test_webhook_version_1_only(harness: Harness, version: str | None, accepted: bool) -> None:
    harness.fresh(k1=KEY_1)
    result = harness.check(delivery(version=version))
    if accepted:
        assert result == Accepted("k1")
    else:
        assert result == Refused("webhook_version", "Webhook-Version: only 1 is understood") and result.status == 400


def test_repeated_header_lines_are_combined_as_rfc_9421_says(harness: Harness) -> None:
    """A second Signature-Input line is one more dictionary member, not a replacement."""
    harness.fresh(k1=KEY_1)
    signed = delivery()
    lines = [(k, v) for k, v in signed.items()] + [
        ("Signature-Input", 'other=("@method");created=1'),
        ("Signature", "other=:AAAA:"),
    ]
    assert harness.check(lines) == Accepted("k1")


# --- RE-ZIP's keys -----------------------------------------------------------------------------------


def test_a_rotated_key_is_fetched_once(harness: Harness) -> None:
    harness.fresh(k1=KEY_1)
    assert harness.check(delivery()) == Accepted("k1")
    harness.jwks.keys["k2"] = KEY_2  # next month's key appears
    harness.clocks.mono += INTERVAL_S
    assert harness.check(delivery(KEY_2, "k2")) == Accepted("k2")
    assert harness.check(delivery(KEY_2, "k2")) == Accepted("k2")
    assert harness.check(delivery()) == Accepted("k1")
    assert harness.jwks.requests == 2


def test_a_flood_of_unknown_keyids_fetches_at_most_once_per_interval(harness: Harness) -> None:
    harness.fresh(k1=KEY_1)
    flood = [delivery(STRANGER, secrets.token_hex(8)) for _ in range(200)]
    results = harness.check_all(flood)
    assert {(r.reason, r.status) for r in results if isinstance(r, Refused)} == {("unknown_key", 401)}
    assert len(results) == 200 and harness.jwks.requests == 1  # the first load; every refetch waits
    harness.clocks.mono += INTERVAL_S - 1
    assert {type(r) for r in harness.check_all(flood[:50])} == {Refused} and harness.jwks.requests == 1
    harness.clocks.mono += 1
    assert {type(r) for r in harness.check_all(flood[:50])} == {Refused} and harness.jwks.requests == 2
    assert harness.check(delivery()) == Accepted("k1")  # RE-ZIP's own delivery still gets through
    assert harness.jwks.requests == 2


def test_requests_refused_on_sight_never_fetch(harness: Harness) -> None:
    harness.fresh(k1=KEY_1)
    assert harness.check(delivery()) == Accepted("k1")
    harness.clocks.mono += INTERVAL_S * 10
    stale = delivery(STRANGER, "new-key", created=NOW - 3600)
    wrong_alg = delivery(STRANGER, "new-key") | {
        "Signature-Input": 'sig1=("@method" "@target-uri" "content-type");keyid="new-key";alg="rsa-pss-sha512";'
        f"created={NOW}"
    }
    malformed = delivery(STRANGER, "new-key") | {"Signature": "sig1=not-a-byte-sequence"}
    uncovered = delivery(STRANGER, "new-key") | {"Signature-Input": f'sig1=("@method");keyid="new-key";created={NOW}'}
    huge = delivery(STRANGER, "new-key") | {"Signature-Input": "sig1=(" + '"content-type" ' * 1000 + ")"}
    reasons = [harness.check(h).reason for h in (stale, wrong_alg, malformed, uncovered, huge)]  # type: ignore[union-attr]
    assert reasons == ["stale", "algorithm", "malformed", "not_covered", "malformed"]
    assert harness.jwks.requests == 1


def test_keys_that_cannot_be_fetched_answer_503_until_they_can(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.fresh(k1=KEY_1)
    harness.jwks.answer = error_reply(503, "down")
    with caplog.at_level(logging.WARNING):
        first, second = harness.check(delivery()), harness.check(delivery())
    assert first == second == Refused("keys_unavailable", "RE-ZIP's signing keys could not be fetched")
    assert first.status == 503 and harness.jwks.requests == 1
    assert "could not be fetched from http://127.0.0.1" in caplog.text and "Traceback" not in caplog.text
    harness.jwks.answer = None
    harness.clocks.mono += INTERVAL_S
    assert harness.check(delivery()) == Accepted("k1") and harness.jwks.requests == 2


NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "answer",
    [
        Reply(200, b"not json"),
        Reply(200, b"\xff\xfe"),
        Reply(200, NESTED[:30_000] + NESTED[-30_000:]),
        Reply(200, json.dumps({"keys": [{"kty": "EC", "crv": "P-384", "kid": "k1", "x": "A" * 70_000}]}).encode()),
        json_reply(200, {"keys": "none"}),
        json_reply(200, {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "x": "AA", "y": "AA"}]}),
        json_reply(200, {"keys": [{**public_jwk(KEY_1.public_key(), "k1"), "use": "enc"}]}),
        json_reply(200, {"keys": [{**public_jwk(KEY_1.public_key(), "k1"), "x": "!!"}]}),
        json_reply(200, [1, 2]),
        error_reply(500, "oops"),
        Reply(302, b"", headers={"Location": "http://127.0.0.1:1/elsewhere"}),
    ],
    ids=[
        "not json",
        "not utf-8",
        "nested",
        "too big",
        "keys not a list",
        "P-256",
        "not for signing",
        "broken point",
        "not an object",
        "500",
        "redirect",
    ],
)
def test_a_broken_jwks_keeps_the_keys_already_known(
    harness: Harness, answer: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    harness.fresh(k1=KEY_1)
    assert harness.check(delivery()) == Accepted("k1")
    harness.jwks.answer = answer
    harness.clocks.mono += CACHE_S  # the keys are old: the gate asks again, and gets rubbish
    with caplog.at_level(logging.WARNING):
        assert harness.check(delivery()) == Accepted("k1")
    assert harness.jwks.requests == 2 and "could not be fetched" in caplog.text and "Traceback" not in caplog.text


def test_a_key_withdrawn_from_the_jwks_stops_counting_once_the_cache_is_old(harness: Harness) -> None:
    harness.fresh(k1=KEY_1)
    assert harness.check(delivery()) == Accepted("k1")
    harness.jwks.reset(k2=KEY_2)
    harness.clocks.mono += CACHE_S - 1
    assert harness.check(delivery()) == Accepted("k1")
    harness.clocks.mono += 1
    result = harness.check(delivery())
    assert isinstance(result, Refused) and result.reason == "unknown_key" and harness.jwks.requests == 1


def test_concurrent_deliveries_for_a_new_key_share_one_fetch(harness: Harness) -> None:
    harness.fresh(k1=KEY_1)
    assert harness.check(delivery()) == Accepted("k1")
    harness.jwks.keys["k2"] = KEY_2
    harness.clocks.mono += INTERVAL_S
    results = harness.check_all([delivery(KEY_2, "k2") for _ in range(50)])
    assert results == [Accepted("k2")] * 50 and harness.jwks.requests == 2


# --- hostile headers ------------------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "(",
        ")",
        '"',
        ";",
        "=",
        ":",
        ",",
        " ",
        "\t",
        "\\",
        "*",
        "sig1",
        "pyhms",
        '"@method"',
        '"@target-uri"',
        '"content-type"',
        '"@authority"',
        '"@query-param";name="x"',
        '"content-type";sf',
        'keyid="k1"',
        "keyid=k1",
        'alg="ecdsa-p384-sha384"',
        'alg="rsa-pss-sha512"',
        'alg="hmac-sha256"',
        f"created={NOW}",
        "created=-1",
        "created=99999999999999999999",
        'created="now"',
        f"expires={NOW}",
        'nonce="n"',
        "é",
        "\x00",
        "\u202e",
        "😀",
        ":AAAA:",
        "::",
        "=:" + "A" * 128 + ":",
    ]
)
_GARBAGE = st.lists(_PIECES, max_size=30).map("".join)
_KEYID_CHARACTERS = st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters='"\\')
_COMPONENTS = st.lists(
    st.sampled_from(
        ['"@method"', '"@target-uri"', '"content-type"', '"@authority"', '"@path"', '"content-digest"', '"@method"']
    ),
    max_size=5,
).map(" ".join)


#: One delivery RE-ZIP signed (ECDSA signatures differ each time: this one's bytes are known).
GOOD = delivery()


@st.composite
def hostile_delivery(draw: st.DrawFn) -> list[tuple[str, str]]:
    """A delivery RE-ZIP did not sign as it is: a good one mutated, a stranger's, or garbage."""
    good = GOOD
    kind = draw(st.sampled_from(["mutated", "stranger", "made up", "garbage", "huge", "repeated", "dropped"]))
    headers = dict(good)
    if kind == "mutated":
        name = draw(st.sampled_from(["Signature-Input", "Signature", "Content-Type"]))
        value = headers[name]
        at = draw(st.integers(0, len(value)))
        cut = draw(st.integers(0, 8))
        headers[name] = value[:at] + draw(_GARBAGE) + value[at + cut :]
    elif kind == "stranger":  # a well-formed signature by someone else's key, maybe under RE-ZIP's keyid
        keyid = draw(st.one_of(st.just("k1"), st.text(_KEYID_CHARACTERS, min_size=1, max_size=40)))
        created = draw(st.one_of(st.just(NOW), st.integers(NOW - 299, NOW + 299), st.integers(-(2**40), 2**40)))
        headers = delivery(STRANGER, keyid, created=created)
    elif kind == "made up":
        headers["Signature-Input"] = (
            f"{draw(st.sampled_from(['sig1', 'pyhms', 'a', 'Bad']))}=({draw(_COMPONENTS)}){draw(_GARBAGE)}"
        )
    elif kind == "garbage":
        headers["Signature-Input"], headers["Signature"] = draw(_GARBAGE), draw(_GARBAGE)
    elif kind == "huge":
        name = draw(st.sampled_from(["Signature-Input", "Signature", "Content-Type", "Webhook-Version"]))
        headers[name] = headers[name] + draw(st.sampled_from([" ", ",", "A", '"@method" '])) * draw(
            st.integers(4000, 20_000)
        )
    elif kind == "dropped":
        for name in draw(st.lists(st.sampled_from(["Signature-Input", "Signature", "Content-Type"]), min_size=1)):
            headers.pop(name, None)
    lines = list(headers.items())
    if kind == "repeated":
        lines += [(draw(st.sampled_from(["Signature-Input", "Signature", "signature-input"])), draw(_GARBAGE))]
    return lines


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(lines=hostile_delivery())
def test_hostile_headers_are_refused_by_reason_and_the_next_delivery_gets_through(
    harness: Harness, caplog: pytest.LogCaptureFixture, lines: list[tuple[str, str]]
) -> None:
    harness.fresh(k1=KEY_1)
    assert harness.check(delivery()) == Accepted("k1")  # the keys are loaded, as in a running service
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        result = harness.check(lines)
        following = harness.check(delivery())
    assert isinstance(result, (Accepted, Refused))
    event(result.reason if isinstance(result, Refused) else "accepted")
    if isinstance(result, Accepted):  # only a harmless edit of RE-ZIP's own signed delivery may pass
        signature = GOOD["Signature"].split("=", 1)[1]
        assert result == Accepted("k1") and any(signature in value for _, value in lines)
    else:
        assert result.status in (400, 401) and len(result.detail) <= 160 and result.detail.isprintable()
    assert following == Accepted("k1")
    assert harness.jwks.requests == 1, "a hostile delivery made the gate fetch RE-ZIP's keys again"
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(("workers", "beside_loop"), [(1, True), (2, False), (16, False)])
def test_one_process_checks_beside_its_loop_several_workers_on_theirs(
    tmp_path: Path, workers: int, beside_loop: bool
) -> None:
    config = parse_shop_config(
        {
            "server": {"public_url": "https://shop.example.com", "workers": workers},
            "rezip": {"shop_id": "shop-1", "token_file": "rezip.token"},
            "voucherify": {"app_id": "app-1", "app_token_file": "voucherify.token", "campaign": "RE-ZIP returns"},
            "voucher": {"currency": "DKK", "landing_url": "https://shop.example.com/cart?discount={code}"},
        },
        base=tmp_path,
    )
    gate = SignatureGate.for_config(config, httpx.AsyncClient())
    assert gate.beside_loop is beside_loop
