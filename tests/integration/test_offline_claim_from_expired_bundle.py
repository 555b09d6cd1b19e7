"""Regression (found by attacking the kiosk as a stranger): codes are still handed out offline after their bundle (the reservation) has expired.

Now: a claim reads the bundle's expiry from its signed body and refuses a code of an expired reservation.

A bundle carries expires_at: how long the backend holds the reservation for this drop point. The
kiosk checks it only when the bundle arrives (OfflinePoolsClient.verify); OfflineStore.claim()
and code_from_body() check each code's own expiry, the clock and the limits, never the bundle's.
A kiosk that could not top up (the reservations endpoint failing while forwards still work, or
simply offline within max_offline_age) goes on issuing codes from a reservation the backend may
already have given back to the pool and handed to other customers: a code shown twice.

Run: .venv/bin/python -m pytest tests/integration/test_offline_claim_from_expired_bundle.py -q -p no:cacheprovider -s
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kiosk.core.offline import OfflineLimits
from kiosk.issuance.offline_store import Claim, OfflineStore


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_no_claim_from_a_bundle_past_its_expiry(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    store = OfflineStore(tmp_path / "offline.sqlite")
    bundle_expires = now + timedelta(hours=1)
    store.import_bundle(
        json.dumps(
            {
                "bundle_id": "B-1",
                "drop_point_id": "DP",
                "country": "DK",
                "issued_at": _iso(now),
                "expires_at": _iso(bundle_expires),
                "shops": {"S1": {"name": "Shop"}},
                "prefixes": {"10AB": "S1"},
                "pools": [{"id": "P1", "shop_id": "S1", "countries": ["DK"], "visibility": "private_public"}],
                "codes": [
                    {
                        "code": f"C-{n:03d}",
                        "link": None,
                        "pool_id": "P1",
                        "type": "amount",
                        "value": 1000,
                        "unit": "DKK",
                        "conditions": "",
                        "expires_at": _iso(now + timedelta(days=30)),
                    }
                    for n in range(5)
                ],
            }
        ).encode(),
        "sig",
    )
    store.note_contact(now)
    later = now + timedelta(days=2)  # within max_offline_age (3 days), a day past the reservation
    result = store.claim("10AB00001", country="DK", limits=OfflineLimits(), now=later)
    print(
        "bundle expired at",
        _iso(bundle_expires),
        "; claim at",
        _iso(later),
        "->",
        result if isinstance(result, str) else f"issued {result.voucher.code}",
    )
    assert not isinstance(result, Claim), "a code of an expired reservation was handed out"
