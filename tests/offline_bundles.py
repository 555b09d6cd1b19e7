"""The signed offline bundle the offline-store tests import: one shop (S1, prefix 10AB) with one
DK pool of DKK 10.00 amount vouchers, its times given by the test (the store checks the body; the
signature is the caller's)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from kiosk.core.instants import iso_z
from kiosk.issuance.offline_store import OfflineStore


def bundle_body(*, codes: int, issued_at: datetime, expires_at: datetime, codes_expire: datetime) -> bytes:
    """The body of bundle B-1 holding ``codes`` codes C-000, C-001, ..."""
    return json.dumps(
        {
            "bundle_id": "B-1",
            "drop_point_id": "DP",
            "country": "DK",
            "issued_at": iso_z(issued_at),
            "expires_at": iso_z(expires_at),
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
                    "expires_at": iso_z(codes_expire),
                }
                for n in range(codes)
            ],
        }
    ).encode()


def store_with_codes(path: Path, *, codes: int, issued_at: datetime) -> OfflineStore:
    """A kiosk's offline store at ``path`` holding bundle B-1 of ``codes`` codes, signed at
    ``issued_at``, good for a week (its codes for three days)."""
    store = OfflineStore(path)
    body = bundle_body(
        codes=codes,
        issued_at=issued_at,
        expires_at=issued_at + timedelta(days=7),
        codes_expire=issued_at + timedelta(days=3),
    )
    store.import_bundle(body, "sig")
    return store
