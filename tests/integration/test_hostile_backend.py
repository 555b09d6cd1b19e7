"""Hostile backend answers against the whole running kiosk.

Hypothesis writes the scan answers a broken or hostile backend could send: the right shape with
hostile values (expiry in the year 9999, a link of 1,000 emoji, URLs that do not parse, lone
surrogates, numbers past any range, wrong types), wrong shapes, bodies that are not JSON or not
UTF-8, nesting deeper than any parser goes, odd statuses and headers (Retry-After with unusual
digits, a content encoding that does not decode), and connections that close, lie about their
length or drip. After each one, the next customer's scan must get a voucher; whatever the kiosk
showed for the hostile answer must be a valid voucher or a notice; nothing is logged as an
unexpected failure, no secret reaches the log, and no code is ever handed out twice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.core.voucher import MAX_LINK_BYTES, parse_voucher
from kiosk.http_answers import RETRY_AFTER_CAP_S
from tests.integration.hostile import ANY, NUMBERS, SCALAR, Answer, KioskHarness, fresh_code

pytestmark = pytest.mark.integration

CODES = st.one_of(st.from_regex(r"[A-Z]{2}-[0-9A-F]{6}", fullmatch=True), SCALAR)
EXPIRIES = st.one_of(st.sampled_from(["2027-06-01T00:00:00Z", None, "2027-03-15T12:00:00"]), SCALAR)
LINKS = st.one_of(
    st.sampled_from([None, "https://shop.example/redeem?code=X", "myshopapp://r"]),
    SCALAR,
    st.builds(lambda n: "https://shop.example/" + "a" * n, st.integers(MAX_LINK_BYTES - 40, MAX_LINK_BYTES + 40)),
)
SHOPS = st.one_of(
    st.none(),
    ANY,
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.one_of(st.just("Shop"), SCALAR),
            "description": SCALAR,
            "logo_url": st.one_of(st.just("https://[::1/logo"), st.just("http://shop.example/logo.png"), SCALAR),
            "website": SCALAR,
        },
    ),
)
VALUE_DATA = st.one_of(
    ANY,
    st.fixed_dictionaries(
        {
            "type": st.one_of(st.sampled_from(["amount", "percentage", "gift"]), SCALAR),
            "value": st.one_of(st.sampled_from([5000, 15, 1]), NUMBERS),
            "unit": st.one_of(st.sampled_from(["DKK", "EUR", "%", "Tote bag"]), SCALAR),
        },
        optional={"link": LINKS},
    ),
)
DATA = st.one_of(
    ANY,
    st.fixed_dictionaries(
        {"code": CODES, "value_data": VALUE_DATA},
        optional={
            "conditions": st.one_of(st.just("Min. køb 200 DKK"), SCALAR),
            "expires_at": EXPIRIES,
            "link": LINKS,
            "value": SCALAR,
            "shop": SHOPS,
        },
    ),
)
DOCUMENTS = st.one_of(
    ANY,
    st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(["Voucher", "Ticket"]), SCALAR)},
        optional={"id": SCALAR, "data": DATA, "created_at": SCALAR},
    ),
)


def _encode(doc: object, ascii_only: bool) -> bytes:
    text = json.dumps(doc, ensure_ascii=ascii_only, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")  # lone surrogates become bytes that are not UTF-8


BODIES = st.one_of(
    st.builds(_encode, DOCUMENTS, st.booleans()),
    st.sampled_from(
        [
            b"",
            b"{",
            b"null",
            b"[]",
            b"\xff\xfe{}",
            b"\xef\xbb\xbf{}",
            b"[" * 100_000 + b"]" * 100_000,
            b'{"message": "' + b"\x1b[31m" * 50 + b'"}',
            b'{"type": "Voucher", "data": {"code": 1e400}}',
        ]
    ),
    st.binary(max_size=200),
)
STATUSES = st.sampled_from(
    [200, 201, 201, 201, 202, 204, 299, 301, 304, 400, 401, 403, 404, 409, 418, 422, 429, 500, 503, 599]
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Retry-After": st.sampled_from(
            [
                "²",
                "١٢٣",
                "-1",
                "1e9",
                "99999999999999999999",
                "Wed, 99 Foo 2026 99:99:99 GMT",
                "Fri, 31 Dec 9999 23:59:59 GMT",
                "\x7f",
                "3",
            ]
        ),
        "Content-Type": st.sampled_from(["application/json", "text/html", "application/json; charset=latin-1", "\x01"]),
        "Content-Encoding": st.sampled_from(["gzip", "br", "deflate", "identity", "x-unknown"]),
    },
)
ANSWERS = st.builds(
    Answer,
    status=STATUSES,
    body=BODIES,
    headers=HEADERS,
    behaviour=st.sampled_from(["normal"] * 12 + ["close", "short", "drip"]),
)

ALLOWED = {"issued", "invalid", "already_returned", "none_available", "failed"}


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory):
    with KioskHarness(Path(tmp_path_factory.mktemp("hostile-backend"))) as running:
        yield running


def _check_shown(report, harness: KioskHarness) -> list[str]:
    """What the customer was shown for this report must be true: a valid, unexpired voucher whose
    code is on screen, or a notice."""
    assert report.status in ALLOWED
    frame = harness.frame()
    if report.status != "issued":
        return []
    voucher = report.voucher
    checked = parse_voucher(voucher.to_json(), now=datetime.now(UTC), link_schemes=harness.config.link_schemes)
    assert checked.link == voucher.link  # the link allow-list held
    assert frame is not None and frame["state"] in ("showing_voucher", "notice", "idle")
    if frame["state"] == "showing_voucher":
        assert frame["voucher"]["code"] == voucher.code
    return [voucher.code, *([voucher.link] if voucher.link else [])]


@settings(
    max_examples=140,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(answer=ANSWERS, shop=st.sampled_from(["sko", "gron", "papir"]))
def test_no_backend_answer_stops_the_next_customer(harness: KioskHarness, answer: Answer, shop: str) -> None:
    harness.proxy.answers.put(answer)
    hostile = harness.scan(fresh_code(shop))
    secrets = _check_shown(hostile, harness)
    harness.let_time_pass(RETRY_AFTER_CAP_S)  # a hostile 429 must not decide the next example
    following = harness.scan(fresh_code())
    assert following.status == "issued", (following.status, following.detail)
    secrets += _check_shown(following, harness)
    assert harness.log_problems(secrets) == []
    issued = [entry.code for entry in harness.kiosk.store.journal()]
    assert len(issued) == len(set(issued))


def test_a_code_the_kiosk_handed_out_before_is_never_shown_again(tmp_path: Path) -> None:
    with KioskHarness(tmp_path) as harness:
        _replayed_code_is_refused(harness)


def _replayed_code_is_refused(harness: KioskHarness) -> None:
    first = harness.scan(fresh_code())
    assert first.status == "issued" and first.source == "online"
    replay = {
        "id": "x",
        "type": "Voucher",
        "data": {
            "code": first.voucher.code,
            "conditions": "",
            "expires_at": None,
            "value_data": {"type": "percentage", "value": 20, "unit": "%"},
        },
    }
    harness.proxy.answers.put(Answer(201, json.dumps(replay).encode()))
    second = harness.scan(fresh_code("gron"))
    assert second.status == "issued" and second.voucher.code != first.voucher.code
    assert second.source == "offline"
    assert harness.log_problems([first.voucher.code, second.voucher.code]) == []
