"""Regression (found by attacking the kiosk as a stranger): the offline count (and value) limit is bypassed when the
wall clock stands a little behind the moment of the last forward (a step back within the 5-minute clock tolerance,
or a Pi without an RTC that boots a few minutes behind).

Now: the limits count unforwarded issuances (no clock decides), and a time the backend signs resets the kiosk's own
journal stamps as a clock floor.

OfflineStore._state() counts journal rows with created_at > meta('last_forward'), comparing the
kiosk's own wall-clock stamps. The claims made while the clock is behind last_forward are stamped
before it, so they are never counted: max_issuances = 3 lets through as many as there are codes.
The clock checks (clock_floor - 5 min, the monotonic estimate within 5 min) do not notice.

Run: .venv/bin/python -m pytest tests/integration/test_offline_limit_clock_step_back.py -q -p no:cacheprovider -s
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from kiosk.core.offline import OfflineLimits
from kiosk.issuance.offline_store import Claim
from tests.offline_bundles import store_with_codes


def test_claims_count_against_the_limits_whatever_the_clock_says(tmp_path: Path) -> None:
    real_now = datetime.now(UTC)
    store = store_with_codes(tmp_path / "offline.sqlite", codes=20, issued_at=real_now - timedelta(hours=1))
    store.note_contact(real_now - timedelta(hours=1))  # the backend's signed time of the bundle
    limits = OfflineLimits(max_issuances=3, max_value={"DKK": 3000})

    # Three offline issuances (the limit), then the backend comes back and takes them.
    for n in range(3):
        assert isinstance(
            store.claim(f"10AB{n:05d}", country="DK", limits=limits, now=real_now - timedelta(minutes=30)), Claim
        )
    assert store.claim("10AB99999", country="DK", limits=limits, now=real_now - timedelta(minutes=29)) == "count_limit"
    store.mark_forwarded([{"key": row["key"], "status": "accepted"} for row in store.pending()])  # stamps utc_now()

    # The wall clock now stands 4 minutes behind that forward (within CLOCK_TOLERANCE).
    behind = datetime.now(UTC) - timedelta(minutes=4)
    issued = 0
    for n in range(10):
        result = store.claim(f"10AB{100 + n:05d}", country="DK", limits=limits, now=behind + timedelta(seconds=n))
        issued += isinstance(result, Claim)
    print(f"offline issuances after the forward with max_issuances=3 and max_value DKK 30.00: {issued}")
    assert issued <= 3, f"{issued} offline vouchers issued past a limit of 3 (and {issued * 1000} DKK-minor past 3000)"


def test_a_clock_that_ran_ahead_once_is_trusted_again_once_the_backend_set_it_right(tmp_path: Path) -> None:
    """Regression (found by attacking the kiosk): one journal row written while the clock ran ahead (an RTC set to local
    time instead of UTC: +1 h in Denmark) becomes the clock floor. After the clock is corrected,
    and even after the backend has since vouched for the correct time (a fresh signed bundle),
    every offline claim is refused as "clock_untrusted" until real time catches up."""
    real_now = datetime.now(UTC)
    store = store_with_codes(tmp_path / "offline.sqlite", codes=20, issued_at=real_now - timedelta(hours=1))
    store.note_contact(real_now)
    limits = OfflineLimits()
    ahead = real_now + timedelta(hours=1)
    assert isinstance(store.claim("10AB00001", country="DK", limits=limits, now=ahead), Claim)
    # The clock is corrected (NTP), and the backend is reached again: its signed time is now.
    store.note_contact(datetime.now(UTC))
    result = store.claim("10AB00002", country="DK", limits=limits, now=datetime.now(UTC))
    print("offline claim after the clock was corrected and the backend vouched for it:", result)
    assert isinstance(result, Claim), result
