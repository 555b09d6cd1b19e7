"""Regression (found by attacking the kiosk as a stranger): codes are still handed out offline after their bundle
(the reservation) has expired.

Now: a claim reads the bundle's expiry from its signed body and refuses a code of an expired reservation.

A bundle carries expires_at: how long the backend holds the reservation for this drop point. The
kiosk checks it only when the bundle arrives (OfflinePoolsClient.verify); OfflineStore.claim()
and code_from_body() check each code's own expiry, the clock and the limits, never the bundle's.
A kiosk that could not top up (the reservations endpoint failing while forwards still work, or
simply offline within max_offline_age) goes on issuing codes from a reservation the backend may
already have given back to the pool and handed to other customers: a code shown twice.

Run: .venv/bin/python -m pytest tests/integration/test_offline_claim_from_expired_bundle.py -q -p no:cacheprovider
-s"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from kiosk.core.instants import iso_z
from kiosk.core.offline import OfflineLimits
from kiosk.issuance.offline_store import Claim, OfflineStore
from tests.offline_bundles import bundle_body


def test_no_claim_from_a_bundle_past_its_expiry(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    store = OfflineStore(tmp_path / "offline.sqlite")
    bundle_expires = now + timedelta(hours=1)
    store.import_bundle(
        bundle_body(codes=5, issued_at=now, expires_at=bundle_expires, codes_expire=now + timedelta(days=30)),
        "sig",
    )
    store.note_contact(now)
    later = now + timedelta(days=2)  # within max_offline_age (3 days), a day past the reservation
    result = store.claim("10AB00001", country="DK", limits=OfflineLimits(), now=later)
    print(
        "bundle expired at",
        iso_z(bundle_expires),
        "; claim at",
        iso_z(later),
        "->",
        result if isinstance(result, str) else f"issued {result.voucher.code}",
    )
    assert not isinstance(result, Claim), "a code of an expired reservation was handed out"
