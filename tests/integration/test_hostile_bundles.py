"""Hostile offline bundles, validly signed, against the whole running kiosk.

A signature only says who sent a bundle. Hypothesis writes bundles signed with the stand-in
backend's own key whose structure or codes are broken or hostile (missing and mistyped fields,
unknown pools, duplicate codes, prefixes of no shop, countries that are not, thousands of codes,
codes that expired or expire in 9999, links the QR cannot hold or the kiosk does not allow,
currencies that do not exist). After each top-up the kiosk is offline for one customer, then
online for the next: the offline customer gets a valid voucher or a clean notice, the next one a
voucher; the offline sync keeps running; nothing unexpected is logged; no code is handed out twice.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.core.instants import iso_z
from kiosk.core.voucher import parse_voucher
from kiosk.http_answers import RETRY_AFTER_CAP_S
from kiosk.issuance.offline_pools_client import BundleRefused
from kiosk.sim.demo_seed import DROP_POINT_DK, SHOPS
from tests.integration.hostile import ANY, HOSTILE_TEXT, NUMBERS, SCALAR, Answer, KioskHarness, fresh_code

pytestmark = pytest.mark.integration

GRON = SHOPS["gron"]
NOW = datetime.now(UTC)


#: Serial numbers for codes, pools and bundles: unique in the run without the random module, which
#: hypothesis must not see used while it draws.
_SERIAL = itertools.count(1)


def _code(number: int, pool: str) -> dict[str, Any]:
    return {
        "code": f"HB-{next(_SERIAL):08d}-{number}",
        "link": "https://gron-butik.example/redeem",
        "pool_id": pool,
        "type": "amount",
        "value": 2500,
        "unit": "DKK",
        "conditions": "Min. køb 100 DKK",
        "expires_at": iso_z(NOW + timedelta(days=30)),
    }


def _bundle(count: int) -> dict[str, Any]:
    pool = f"P-{next(_SERIAL):08d}"
    return {
        "bundle_id": f"B-{next(_SERIAL):08d}",
        "drop_point_id": DROP_POINT_DK,
        "country": "DK",
        "issued_at": iso_z(datetime.now(UTC)),  # when it is offered: the kiosk checks its clock against it
        "expires_at": iso_z(NOW + timedelta(days=7)),
        "shops": {GRON.id: {"name": GRON.name, "description": None, "website": GRON.website, "logo_url": None}},
        "prefixes": {GRON.prefix: GRON.id},
        "pools": [{"id": pool, "shop_id": GRON.id, "countries": ["DK"], "visibility": "private_public"}],
        "codes": [_code(n, pool) for n in range(count)],
    }


CODE_FIELDS = ["code", "link", "pool_id", "type", "value", "unit", "conditions", "expires_at"]
TOP_FIELDS = ["bundle_id", "drop_point_id", "country", "issued_at", "expires_at", "shops", "prefixes", "pools", "codes"]
VALUES = st.one_of(
    SCALAR,
    ANY,
    HOSTILE_TEXT,
    NUMBERS,
    st.sampled_from(
        [
            iso_z(NOW - timedelta(days=1)),
            iso_z(NOW + timedelta(minutes=5)),
            "javascript:x",
            "myshopapp://r",
            "https://x.example/" + "a" * 400,
            "XAU",
            "EUR",
            "percentage",
        ]
    ),
)


@st.composite
def hostile_bundles(draw: st.DrawFn) -> dict[str, Any]:
    bundle = _bundle(draw(st.sampled_from([1, 3, 3, 3, 2500])))
    for _ in range(draw(st.integers(0, 4))):  # hostile values in the codes
        item = draw(st.sampled_from(bundle["codes"]))
        field = draw(st.sampled_from(CODE_FIELDS))
        if draw(st.booleans()):
            item[field] = draw(VALUES)
        else:
            item.pop(field, None)
    if draw(st.booleans()):  # a code twice, or one of an earlier bundle
        bundle["codes"].append(dict(draw(st.sampled_from(bundle["codes"]))))
    for part in draw(st.lists(st.sampled_from(["pools.0", "prefixes.key", "shops.logo"]), max_size=2)):
        if part == "pools.0":  # a pool's field broken
            bundle["pools"][0][draw(st.sampled_from(["id", "shop_id", "countries", "visibility"]))] = draw(VALUES)
        elif part == "prefixes.key":  # a prefix of no shop, or one that is not a prefix
            bundle["prefixes"][draw(st.sampled_from(["10HS", "xx", "20GB", "\x00\x00\x00\x00"]))] = draw(VALUES)
        else:
            bundle["shops"][GRON.id]["logo_url"] = draw(VALUES)
    for field in draw(st.lists(st.sampled_from(TOP_FIELDS), max_size=2)):  # a top-level field broken or gone
        if draw(st.booleans()):
            bundle[field] = draw(VALUES)
        else:
            bundle.pop(field, None)
    return bundle


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory):
    with KioskHarness(Path(tmp_path_factory.mktemp("hostile-bundles"))) as running:
        yield running


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(bundle=hostile_bundles())
def test_no_signed_bundle_stops_the_kiosk(harness: KioskHarness, bundle: dict[str, Any]) -> None:
    harness.offer_bundle(bundle)
    try:
        harness.call(harness.kiosk.offline.sync(force=True))
    except BundleRefused:
        pass  # a broken structure: nothing of it is used
    harness.proxy.answers.put(Answer(503, b'{"message": "down for maintenance"}'))
    offline = harness.scan(fresh_code("gron"))
    secrets = []
    assert offline.status in ("issued", "none_available", "failed")
    if offline.status == "issued":
        voucher = offline.voucher
        assert offline.source == "offline"
        checked = parse_voucher(voucher.to_json(), now=datetime.now(UTC), link_schemes=harness.config.link_schemes)
        assert checked.link == voucher.link and voucher.unit in ("DKK", "EUR", "%") or voucher.type.value == "gift"
        secrets = [voucher.code, *([voucher.link] if voucher.link else [])]
    harness.let_time_pass(RETRY_AFTER_CAP_S)
    following = harness.scan(fresh_code())
    assert following.status == "issued" and following.source == "online"
    assert harness.kiosk.supervisor.status()["offline sync"]["state"] == "running"
    assert harness.log_problems(secrets + [following.voucher.code]) == []
    issued = [entry.code for entry in harness.kiosk.store.journal()]
    assert len(issued) == len(set(issued))


def test_a_code_whose_signed_entry_changed_in_the_store_is_not_handed_out(tmp_path: Path) -> None:
    """The body is the truth: an entry whose stored columns were altered (a damaged or tampered
    database) no longer agrees with its signed body and is refused at the claim."""
    with KioskHarness(tmp_path) as harness:
        bundle = _bundle(2)
        harness.offer_bundle(bundle)
        harness.call(harness.kiosk.offline.sync(force=True))
        codes = [item["code"] for item in bundle["codes"]]
        # The altered entry looks like the best choice (the soonest expiry) and is worth less.
        with contextlib.closing(sqlite3.connect(harness.config.offline_db)) as db, db:  # the disk edited behind it
            db.execute(
                "UPDATE codes SET expires_at = ?, value = 1 WHERE code = ?", (iso_z(NOW + timedelta(days=1)), codes[0])
            )
        harness.proxy.answers.put(Answer(503, b"{}"))
        report = harness.scan(fresh_code("gron"))
        assert report.status == "issued" and report.voucher.code == codes[1]
        with contextlib.closing(sqlite3.connect(harness.config.offline_db)) as db:
            refused = db.execute("SELECT refused FROM codes WHERE code = ?", (codes[0],)).fetchone()[0]
        assert refused and "disagrees" in refused
