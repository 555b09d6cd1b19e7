"""Health reports and the fleet view: a whole running kiosk reports to the stand-in backend, several
simulated kiosks report beside it (one goes silent, one is in trouble), reports wait while the
backend is away and are batched when it is back, and hostile reports leave the view and the next
customer unharmed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.fleet.health_client import HealthReportsClient
from kiosk.fleet.reporter import HealthReporter
from kiosk.sim.demo_seed import DEMO_ADMIN_TOKEN, DEMO_KIOSK_TOKEN, DROP_POINT_DK
from kiosk.sim.fleet_view import FleetBoard, problems
from tests.integration.hostile import ANY, HOSTILE_TEXT, KioskHarness, fresh_code
from tests.integration.page_wire import wait_for

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Pat {DEMO_ADMIN_TOKEN}"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def document(hardware_id: str, **changes: Any) -> dict[str, Any]:
    """A status document as a kiosk sends it (``Fleet.status_document``)."""
    doc = {
        "hardware_id": hardware_id,
        "version": "0.1.0",
        "commit": "abc123",
        "uptime_s": 100.0,
        "flow_state": "idle",
        "online": True,
        "printer_state": "ready",
        "paper_near_end": False,
        "board_state": None,
        "scanners": {"/dev/ttyACM0": "open"},
        "offline_codes": {"shop": 30},
        "offline_codes_left": 30,
        "journal_pending": 0,
        "oldest_pending_age_s": None,
        "last_errors": [],
        "checks": [],
    }
    return doc | changes


def reporter(url: str, http: httpx.AsyncClient, doc: dict[str, Any]) -> HealthReporter:
    return HealthReporter(HealthReportsClient(http, DROP_POINT_DK), lambda: dict(doc), lambda: None)


@pytest.fixture(scope="module")
def kiosk(tmp_path_factory: pytest.TempPathFactory) -> KioskHarness:
    with KioskHarness(tmp_path_factory.mktemp("fleet")) as harness:
        yield harness


def fleet(kiosk: KioskHarness) -> list[dict[str, Any]]:
    answer = httpx.get(kiosk.world.url + "/fleet", headers=ADMIN, timeout=10)
    assert answer.status_code == 200
    return answer.json()["kiosks"]


def test_the_running_kiosk_reports_its_status(kiosk: KioskHarness) -> None:
    report = kiosk.scan(fresh_code())
    assert report.status == "issued"
    reporter = kiosk.kiosk.fleet.reporter  # type: ignore[union-attr]
    assert reporter is not None

    def latest() -> dict[str, Any] | None:
        return next((row for row in fleet(kiosk) if row["hardware_id"] == kiosk.config.kiosk.hardware_id), None)

    # The first report goes at start, before the printer's first poll; its change is reported at once.
    wait_for(lambda: (row := latest()) is not None and row["report"].get("printer_state") == "ready")
    row = latest()
    assert row is not None and reporter.sent >= 2
    sent = row["report"]
    assert sent["version"] and sent["commit"] and sent["uptime_s"] >= 0
    assert sent["printer_state"] == "ready" and sent["paper_near_end"] is False
    assert isinstance(sent["offline_codes_left"], int) and sent["offline_codes_left"] > 0
    assert isinstance(sent["journal_pending"], int) and {c["item"] for c in sent["checks"]} >= {"printer", "journal"}
    assert row["drop_point"] == DROP_POINT_DK and row["state"] in ("ok", "trouble")
    # The page's /status carries the same document.
    status = httpx.get(f"http://127.0.0.1:{kiosk.kiosk.screen.port}/status").json()  # type: ignore[union-attr]
    assert status["health"]["hardware_id"] == kiosk.config.kiosk.hardware_id
    assert {
        "version",
        "commit",
        "uptime_s",
        "offline_codes_left",
        "journal_pending",
        "last_errors",
        "clock_offset_s",
        "checks",
    } <= set(status["health"])


def test_fleet_view_with_a_silent_kiosk_and_one_in_trouble(kiosk: KioskHarness) -> None:
    board: FleetBoard = kiosk.world.backend.fleet
    clock = Clock()
    board.clock = clock

    async def report_all(docs: list[dict[str, Any]]) -> None:
        async with httpx.AsyncClient(
            base_url=kiosk.world.url, headers={"Authorization": f"Pat {DEMO_KIOSK_TOKEN}"}
        ) as http:
            for doc in docs:
                one = reporter(kiosk.world.url, http, doc)
                one.enqueue()
                assert await one.drain()

    healthy, silent = document("fleet-a"), document("fleet-c")
    troubled = document("fleet-b", printer_state="paper_out", offline_codes_left=2)
    asyncio.run(report_all([healthy, troubled, silent]))
    clock.now += 600
    asyncio.run(report_all([healthy, troubled]))  # fleet-c says nothing from now on
    clock.now += 600
    rows = [row for row in fleet(kiosk) if row["hardware_id"].startswith("fleet-")]
    assert [(row["hardware_id"], row["state"]) for row in rows] == [
        ("fleet-c", "stale"),
        ("fleet-b", "trouble"),
        ("fleet-a", "ok"),
    ]
    assert rows[0]["last_report_age_s"] == 1200 and rows[1]["problems"] == ["printer paper_out", "2 offline codes left"]
    page = httpx.get(kiosk.world.url + "/fleet.html", headers=ADMIN)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.index("fleet-c") < page.text.index("fleet-b") < page.text.index("fleet-a")
    assert httpx.get(kiosk.world.url + "/fleet").status_code == 401
    kiosk_token = {"Authorization": f"Pat {DEMO_KIOSK_TOKEN}"}
    assert httpx.get(kiosk.world.url + "/fleet", headers=kiosk_token).status_code == 403


def test_reports_wait_while_the_backend_is_away_and_the_oldest_give_way() -> None:
    sent: list[list[dict[str, Any]]] = []
    away = True

    def answer(request: httpx.Request) -> httpx.Response:
        if away:
            return httpx.Response(503, json={"message": "down"})
        batch = json.loads(request.content)["reports"]
        sent.append(batch)
        return httpx.Response(200, json={"accepted": len(batch)})

    async def run() -> HealthReporter:
        nonlocal away
        async with httpx.AsyncClient(base_url="http://127.0.0.1:9", transport=httpx.MockTransport(answer)) as http:
            count = 0

            def doc() -> dict[str, Any]:
                nonlocal count
                count += 1
                return document("k1", uptime_s=float(count))

            one = HealthReporter(HealthReportsClient(http, "dp"), doc, lambda: None, queue_size=30)
            for _ in range(45):
                one.enqueue()
                assert not await one.drain()
            away = False
            one.enqueue()
            assert await one.drain()
            return one

    done = asyncio.run(run())
    assert [len(batch) for batch in sent] == [20, 10]  # 30 kept of 46, in batches of at most 20
    uptimes = [report["uptime_s"] for batch in sent for report in batch]
    assert uptimes == [float(n) for n in range(17, 47)]  # oldest first, the 16 oldest dropped
    assert sent[-1][-1]["dropped_reports"] == 16 and done.dropped == 0 and not done.queue


def test_problems_are_read_from_known_fields_only() -> None:
    assert problems(document("k")) == []
    assert problems(document("k", online=False, board_state="missing")) == ["board missing", "backend unreachable"]
    failing = document("k", checks=[{"item": "disk", "ok": False, "detail": "40 MiB free"}])
    assert problems(failing) == ["disk: 40 MiB free"]


def test_hostile_reports_leave_the_view_and_the_next_customer_unharmed(kiosk: KioskHarness) -> None:
    url = f"{kiosk.world.url}/drop-points/{DROP_POINT_DK}/health-reports"
    auth = {"Authorization": f"Pat {DEMO_KIOSK_TOKEN}", "Content-Type": "application/json"}
    reports = st.one_of(
        ANY,
        st.fixed_dictionaries(
            {"hardware_id": st.one_of(HOSTILE_TEXT, st.just("hostile-1"))},
            optional={
                "printer_state": ANY,
                "offline_codes_left": ANY,
                "checks": ANY,
                "scanners": ANY,
                "last_errors": ANY,
                "version": HOSTILE_TEXT,
                "online": ANY,
            },
        ),
    )
    bodies = st.one_of(st.fixed_dictionaries({"reports": st.lists(reports, max_size=25)}), ANY)

    http = httpx.Client(timeout=10)

    @settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(bodies)
    def hostile(body: Any) -> None:
        raw = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
        answer = http.post(url, content=raw, headers=auth)
        assert answer.status_code in (200, 400), answer.text
        view = http.get(kiosk.world.url + "/fleet", headers=ADMIN)
        assert view.status_code == 200 and isinstance(view.json()["kiosks"], list)

    with http:
        hostile()
    page = httpx.get(kiosk.world.url + "/fleet.html", headers=ADMIN)
    assert page.status_code == 200 and "<script" not in page.text.lower() and "\x1b" not in page.text
    report = kiosk.scan(fresh_code())
    assert report.status == "issued" and report.voucher is not None
    assert kiosk.log_problems([report.voucher.code, report.voucher.link or ""]) == []


def test_doctor_reads_the_running_kiosks_backend(kiosk: KioskHarness, tmp_path: Path) -> None:
    from kiosk.fleet.doctor import examine

    verdicts = {verdict.item: verdict for verdict in examine(kiosk.config)}
    assert verdicts["backend"].ok and verdicts["token"].ok and verdicts["token"].detail == "accepted"
    assert verdicts["clock"].ok, verdicts["clock"]
    assert verdicts["printer"].ok and verdicts["data partition"].ok and verdicts["journal"].ok
    assert "offline codes" in verdicts and "disk" in verdicts
