"""Regression (found by attacking the kiosk as a stranger): a forward round in which the backend takes none of the
pending issuances still counts as "the last forward" and as contact, so the offline count and value limits (and the
max_offline_age) reset every round while nothing is forwarded.

Now: the limits count the offline issuances the backend has not taken; an empty or partial answer resets nothing and
notes no contact.

OfflineService.forward() calls store.mark_forwarded(results) with whatever the backend answered
for (an empty list when it answered {"results": []}, or only statuses the kiosk does not know),
and mark_forwarded() sets meta last_forward unconditionally; _contact(None) refreshes last_contact.
_state() then counts only journal rows created after that stamp. A backend whose scan endpoint is
down while its offline-issuances endpoint answers 200 with an empty result list (a half-broken
deployment, a captive portal or proxy answering JSON) lets the kiosk issue without limit, every
issuance still pending.

Run: .venv/bin/python -m pytest tests/integration/test_offline_limit_empty_forward.py -q -p no:cacheprovider -s
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kiosk.core.offline import OfflineLimits
from kiosk.core.outcomes import Issued
from kiosk.issuance.offline import OfflineService
from tests.offline_bundles import store_with_codes


class _TakesNothing:
    """The offline-issuances endpoint answers 200 {"results": []}."""

    def __init__(self) -> None:
        self.calls = 0

    async def forward(self, issuances):  # noqa: ANN001
        self.calls += 1
        return []


def test_an_empty_forward_resets_no_offline_limit(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    store = store_with_codes(tmp_path / "offline.sqlite", codes=30, issued_at=now - timedelta(minutes=10))
    store.note_contact(now - timedelta(minutes=10))
    client = _TakesNothing()
    service = OfflineService(
        store,
        client,
        country="DK",  # type: ignore[arg-type]
        limits=OfflineLimits(max_issuances=3, max_value={"DKK": 3000}),
    )
    issued = 0
    for n in range(20):
        if isinstance(service.claim(f"10AB{n:05d}"), Issued):
            issued += 1
        try:
            asyncio.run(service.forward())  # the background round between customers
        except ValueError:
            pass  # "the backend answered for 0 of N issuances": logged, retried with back-off
    pending = len(store.pending(10**6))
    print(
        f"max_issuances=3, max_value DKK 30.00: {issued} offline vouchers issued, {pending} still pending,"
        f" {client.calls} forward rounds that took nothing"
    )
    assert issued <= 3
