"""Regression (found by attacking the kiosk as a stranger): a cached offline code that this kiosk already handed out
online (a signed bundle that repeats a code the backend answered earlier) blocks every offline claim after it.

Now: a code the journal holds is never a candidate, and an online voucher marks its cached copy refused.

The claim picks the soonest-expiring code; the journal's UNIQUE(code) refuses the insert; the
transaction rolls back (the code stays unclaimed and unrefused), FallbackIssuer reports "the
journal cannot be written" and the next offline customer hits the same code again: no offline
voucher for anyone while other cached codes sit unused.

Run: .venv/bin/python -m pytest tests/integration/test_bundle_code_already_journalled.py -q -p no:cacheprovider -s
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from kiosk.core.instants import iso_z
from kiosk.http_answers import RETRY_AFTER_CAP_S
from kiosk.sim.demo_seed import DROP_POINT_DK, SHOPS
from tests.integration.hostile import Answer, KioskHarness, fresh_code

GRON = SHOPS["gron"]
NOW = datetime.now(UTC)


def test_a_cached_code_handed_out_online_is_never_claimed_and_blocks_nothing(tmp_path: Path) -> None:
    with KioskHarness(tmp_path) as harness:
        online = harness.scan(fresh_code())
        assert online.status == "issued" and online.source == "online"
        pool = "P-attack-2"
        codes = [online.voucher.code, "HB-ATTACK-A", "HB-ATTACK-B"]
        bundle = {
            "bundle_id": "B-attack-2",
            "drop_point_id": DROP_POINT_DK,
            "country": "DK",
            "issued_at": iso_z(datetime.now(UTC)),  # when it is offered: the kiosk checks its clock against it
            "expires_at": iso_z(NOW + timedelta(days=7)),
            "shops": {GRON.id: {"name": GRON.name}},
            "prefixes": {GRON.prefix: GRON.id},
            "pools": [{"id": pool, "shop_id": GRON.id, "countries": ["DK"], "visibility": "private_public"}],
            "codes": [
                {
                    "code": code,
                    "link": None,
                    "pool_id": pool,
                    "type": "amount",
                    "value": 2500,
                    "unit": "DKK",
                    "conditions": "",
                    "expires_at": iso_z(NOW + timedelta(hours=2 + i)),
                }
                for i, code in enumerate(codes)
            ],
        }
        harness.offer_bundle(bundle)
        print("sync:", harness.call(harness.kiosk.offline.sync(force=True)))
        results = []
        for _ in range(3):
            harness.proxy.answers.put(Answer(503, b'{"message": "down"}'))
            report = harness.scan(fresh_code("gron"))
            results.append((report.status, report.source, report.detail))
            harness.let_time_pass(RETRY_AFTER_CAP_S)
        for r in results:
            print("offline scan ->", r)
        assert all(status == "issued" for status, _, _ in results), results
