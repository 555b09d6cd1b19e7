"""Reconciling a scan the kiosk gave up on with the offline voucher it issued instead, over HTTP on
loopback: the kiosk's scan (with its Idempotency-Key) outlasts the kiosk's deadline because the shop's
webhook is slow, the kiosk issues an offline code and forwards it naming that key
(``online_attempt_key``). Exactly one voucher counts for the packaging, the offline one; the online
one goes back into its pool (static) or is voided (on-demand), also when it arrives only after the
offline issuance did; replaying the key never hands the released voucher to anyone."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiosk.sim.backend_store import BackendStore
from kiosk.sim.demo_seed import DEMO_ADMIN_TOKEN, DEMO_KIOSK_TOKEN, DROP_POINT_DK, ON_DEMAND_POOL_ID, SHOPS
from kiosk.sim.world import DemoWorld, demo_world

pytestmark = pytest.mark.integration

KIOSK = {"Authorization": f"Pat {DEMO_KIOSK_TOKEN}"}
#: The kiosk's deadline in these tests: shorter than the shop's webhook takes.
KIOSK_DEADLINE_S = 0.3
PACKAGING = SHOPS["sko"].prefix + "4711"  # Hyggelig Sko: its on-demand pool, then its static fallback


@pytest.fixture
def world_with(tmp_path: Path) -> Iterator[Callable[[float], DemoWorld]]:
    """Start the demo world with a given webhook timeout (the backend's), stopped after the test."""
    with ExitStack() as stack:
        yield lambda webhook_timeout_s: stack.enter_context(demo_world(tmp_path, webhook_timeout_s=webhook_timeout_s))


def slow_webhook(world: DemoWorld, answers_after_s: float) -> None:
    """The stand-in shop webhook answers a good voucher, but only after ``answers_after_s``."""
    world.webhook.mode = "timeout"
    world.webhook.hang_s = answers_after_s


def scan_given_up(world: DemoWorld, key: str, packaging: str = PACKAGING) -> None:
    """The kiosk's scan, abandoned at its deadline: the backend goes on with it regardless."""
    body = {"barcode": packaging, "drop_point_location_id": DROP_POINT_DK, "hardware_id": "kiosk-1"}
    with pytest.raises(httpx.TimeoutException):
        httpx.post(
            world.url + "/me/packaging/scan",
            json=body,
            headers={**KIOSK, "Idempotency-Key": key},
            timeout=KIOSK_DEADLINE_S,
        )


def replay(world: DemoWorld, key: str, packaging: str = PACKAGING) -> httpx.Response:
    body = {"barcode": packaging, "drop_point_location_id": DROP_POINT_DK, "hardware_id": "kiosk-1"}
    return httpx.post(
        world.url + "/me/packaging/scan", json=body, headers={**KIOSK, "Idempotency-Key": key}, timeout=10
    )


def offline_code(world: DemoWorld) -> str:
    """A Hyggelig Sko fallback code reserved for this drop point, as the kiosk caches them."""
    bundle = httpx.post(
        f"{world.url}/drop-points/{DROP_POINT_DK}/offline-pools/reservations", json={"per_pool": 2}, headers=KIOSK
    ).json()
    return next(c["code"] for c in bundle["codes"] if c["code"].startswith("HS50-"))


def forward(
    world: DemoWorld,
    code: str,
    *,
    key: str,
    attempt: str | None,
    packaging: str = PACKAGING,
    headers: dict[str, str] = KIOSK,
) -> str:
    item: dict[str, Any] = {"key": key, "code": code, "packaging": packaging, "issued_at": "2026-12-01T10:00:00.000Z"}
    if attempt is not None:
        item["online_attempt_key"] = attempt
    answer = httpx.post(
        f"{world.url}/drop-points/{DROP_POINT_DK}/offline-issuances", json={"issuances": [item]}, headers=headers
    ).json()
    return answer["results"][0]["status"]


def state(world: DemoWorld) -> dict[str, Any]:
    return httpx.get(world.url + "/_sim/state").json()


def rewards(world: DemoWorld, packaging: str = PACKAGING) -> list[tuple[str, str | None]]:
    """(source, code) of every return counted for the packaging."""
    return [
        (r["source"], r["voucher"]["code"] if r["voucher"] else None)
        for r in state(world)["returns"]
        if r["barcode"] == packaging
    ]


def eventually(condition: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    """Poll until ``condition`` gives something truthy (the backend finishing a scan we gave up on)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("the backend never got there")


def static_codes(world: DemoWorld) -> dict[str, dict[str, Any]]:
    return {c["code"]: c for c in world.backend.store.codes(SHOPS["sko"].id)}


def test_a_static_fallback_the_customer_never_saw_goes_back_into_its_pool(world_with) -> None:
    world = world_with(1.0)
    slow_webhook(world, answers_after_s=10)  # past the backend's webhook timeout: static fallback
    mine = offline_code(world)
    scan_given_up(world, "scan-1")
    online = eventually(lambda: rewards(world)[0][1])
    assert online.startswith("HS50-") and static_codes(world)[online]["plucked_at"]
    assert forward(world, mine, key="offline-1", attempt="scan-1") == "accepted"
    assert rewards(world) == [("offline", mine)]  # one voucher counted for the packaging: the customer's
    after = state(world)
    assert after["put_back"] == [online] and online not in after["plucked"] and after["voided"] == []
    assert static_codes(world)[online]["plucked_at"] is None
    answer = replay(world, "scan-1")  # the kiosk asks again with the key it gave up on
    assert answer.status_code == 201 and answer.json()["data"]["code"] == mine
    world.webhook.mode = "error"
    nxt = replay(world, "scan-2", packaging=SHOPS["sko"].prefix + "4712")
    assert nxt.json()["data"]["code"] == online  # the code put back is handed out again, to the next customer


def test_an_on_demand_voucher_the_customer_never_saw_is_voided(world_with) -> None:
    world = world_with(3.0)
    slow_webhook(world, answers_after_s=0.8)  # inside the backend's timeout, past the kiosk's deadline
    mine = offline_code(world)
    scan_given_up(world, "scan-1")
    late = eventually(lambda: rewards(world)[0][1])
    assert late.startswith("HS-")
    assert forward(world, mine, key="offline-1", attempt="scan-1") == "accepted"
    assert rewards(world) == [("offline", mine)]
    after = state(world)
    assert after["voided"] == [late] and after["put_back"] == []
    answer = replay(world, "scan-1")
    assert answer.json()["data"]["code"] == mine and late not in answer.text


@pytest.mark.parametrize("webhook_answers_after_s", [1.2, 10], ids=["late_on_demand_voucher", "late_static_fallback"])
def test_an_online_voucher_arriving_after_the_offline_issuance_is_released_at_once(
    world_with, webhook_answers_after_s
) -> None:
    world = world_with(3.0)
    slow_webhook(world, answers_after_s=webhook_answers_after_s)
    mine = offline_code(world)
    before = {code for code, row in static_codes(world).items() if row["plucked_at"]}
    scan_given_up(world, "scan-1")
    assert rewards(world) == [("online", None)]  # recorded, its voucher still being looked for
    assert forward(world, mine, key="offline-1", attempt="scan-1") == "accepted"
    assert rewards(world) == [("offline", mine)]
    in_flight = replay(world, "scan-1")
    assert in_flight.status_code == 409 and "in progress" in in_flight.json()["message"]
    # Wait for the backend to finish the scan: its answer is stored for the key.
    eventually(lambda: replay(world, "scan-1").status_code == 201, timeout_s=15)
    after = state(world)
    assert rewards(world) == [("offline", mine)]  # still the only voucher counted
    plucked_now = {code for code, row in static_codes(world).items() if row["plucked_at"]}
    assert plucked_now - before == {mine}  # no static fallback was taken for the scan given up on
    if webhook_answers_after_s < 3.0:
        assert len(after["voided"]) == 1 and after["voided"][0].startswith("HS-")  # the late voucher, void
    else:
        assert after["voided"] == [] and after["webhook_failures"][-1]["reason"] == "no whole answer within 3 s"
    assert replay(world, "scan-1").json()["data"]["code"] == mine  # never the late voucher


def test_a_return_recorded_by_another_scan_stays_a_duplicate_return(world_with) -> None:
    world = world_with(1.5)
    world.backend.store.add_token("second-kiosk-token", "kiosk")
    answered = replay(world, "scan-1")  # answered in time: the customer got this voucher
    online = answered.json()["data"]["code"]
    mine = offline_code(world)
    other_kiosk = {"Authorization": "Pat second-kiosk-token"}
    assert forward(world, mine, key="offline-1", attempt="scan-other") == "duplicate_return"  # another scan
    assert forward(world, mine, key="offline-2", attempt=None) == "duplicate_return"  # no key: as before
    assert forward(world, mine, key="offline-3", attempt="scan-1", headers=other_kiosk) == "duplicate_return"
    assert forward(world, mine, key="offline-1", attempt="scan-1") == "duplicate"  # that key counted already
    assert rewards(world) == [("online", online)]
    assert state(world)["voided"] == [] and state(world)["put_back"] == []
    # A key nobody used, for a packaging nobody returned: counted as an offline return, as before.
    fresh = SHOPS["sko"].prefix + "4713"
    assert forward(world, mine, key="offline-4", attempt="never-sent", packaging=fresh) == "accepted"
    assert rewards(world, fresh) == [("offline", mine)]


def test_a_database_from_before_reconciliation_is_migrated(tmp_path: Path) -> None:
    with demo_world(tmp_path) as world:
        online = replay(world, "old-scan").json()["data"]["code"]  # an on-demand voucher, HS-…
    db = tmp_path / "backend.sqlite"
    _make_it_old(db)
    store = BackendStore(db)
    row = store.returns()[0]
    assert (row["barcode"], row["idempotency_key"], row["reward_source"]) == (PACKAGING, None, "online")
    pool = next(p for p in store.pools() if p.id == ON_DEMAND_POOL_ID)
    voucher = {**row["voucher"], "code": online}
    # The old on-demand voucher is known again: the shop's webhook cannot hand it out a second time.
    assert store.settle_on_demand("some-return", pool, voucher, "2026-12-01T10:00:00.000Z") == "repeated"
    with demo_world(tmp_path) as world:
        assert replay(world, "old-scan").status_code == 201  # the stored answer, still replayed
        mine = offline_code(world)
        assert forward(world, mine, key="offline-1", attempt="old-scan") == "duplicate_return"  # no key was kept
        admin = {"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"}
        assert httpx.get(f"{world.url}/shops/{SHOPS['sko'].id}/vouchers/pools", headers=admin).status_code == 200


def _make_it_old(db: Path) -> None:
    """Take the database back to the schema before returns kept their keys and rewards' rows."""
    connection = sqlite3.connect(db)
    connection.executescript("""
        DROP INDEX returns_by_key;
        ALTER TABLE returns DROP COLUMN idempotency_key;
        ALTER TABLE returns DROP COLUMN token_sha256;
        ALTER TABLE returns DROP COLUMN reward_source;
        ALTER TABLE returns DROP COLUMN voucher_id;
        ALTER TABLE returns DROP COLUMN offline_key;
        DROP TABLE on_demand_vouchers;
        DROP TABLE reconciliations;
    """)
    connection.close()
