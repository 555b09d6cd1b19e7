"""The whole round trip of a scan the kiosk gave up on, through the running kiosk: the shop's webhook
is slower than the kiosk's deadline, so the kiosk issues an offline code, journals the online
attempt's key with it and forwards it; the backend then counts exactly one voucher for the
packaging, the one the customer holds, and voids the one nobody received."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.hostile import KioskHarness, fresh_code

pytestmark = pytest.mark.integration


def _short_deadline(config):  # type: ignore[no-untyped-def]
    return dataclasses.replace(config, backend=dataclasses.replace(config.backend, deadline_s=0.6))


def test_a_scan_given_up_on_is_reconciled_with_the_offline_voucher(tmp_path: Path) -> None:
    with KioskHarness(tmp_path, adjust=_short_deadline, webhook_timeout_s=4.0) as harness:
        harness.world.webhook.mode = "timeout"
        harness.world.webhook.hang_s = 1.2  # answers, but long after the kiosk stopped waiting
        packaging = fresh_code("sko")
        report = harness.scan(packaging)
        assert report.status == "issued" and report.source == "offline"
        (entry,) = [e for e in harness.kiosk.store.journal() if e.packaging == packaging]
        pending = [item for item in harness.kiosk.store.pending() if item["key"] == entry.key]
        assert pending and pending[0]["online_attempt_key"]  # the attempt it gave up on is named
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the shop's voucher arrives, then the forwarder runs
            state = httpx.get(harness.world.url + "/_sim/state").json()
            mine = [r for r in state["returns"] if r["barcode"] == packaging]
            if mine and mine[0]["source"] == "offline" and state["voided"]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"not reconciled: {mine}, voided {state['voided']}")
        assert mine[0]["voucher"]["code"] == report.voucher.code  # the customer's voucher is the reward
        assert len(state["voided"]) == 1 and state["voided"][0].startswith("HS-")  # the one nobody saw
        assert [e for e in harness.kiosk.store.journal() if e.key == entry.key][0].forward_status == "accepted"
