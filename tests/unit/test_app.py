"""The asyncio shell: timers, reports, late answers and a failing printer, with simulated parts."""

from __future__ import annotations

import asyncio
import logging

from kiosk.app import KioskApp, ScanReport
from kiosk.core.codes import PackagingCode
from kiosk.core.flow import Flow, FlowSettings, State
from kiosk.core.outcomes import IssuanceOutcome, Issued, NoneAvailable
from kiosk.core.voucher import parse_voucher
from kiosk.presentation.view import ScreenView, VoucherView

CODE = "10HS01JAYSCS07SVDQANFS61TF0XJN"
VOUCHER = parse_voucher({"code": "HS-1", "type": "gift", "value": 1, "unit": "Tote bag", "conditions": ""})


class SlowIssuer:
    def __init__(self, delay_s: float, outcome: IssuanceOutcome) -> None:
        self.delay_s, self.outcome, self.calls = delay_s, outcome, 0

    async def issue(self, code: PackagingCode) -> IssuanceOutcome:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        return self.outcome


class RecordingScreen:
    def __init__(self) -> None:
        self.states: list[State] = []
        self.notices: list[str | None] = []

    async def show(self, view: ScreenView) -> int:
        self.states.append(view.state)
        self.notices.append(view.notice)
        return len(self.states)

    async def settled(self, seq: int) -> bytes:
        return self.states[seq - 1].value.encode()


class UnpluggedPrinter:
    async def print_voucher(self, view: VoucherView, job_id: str) -> bytes:
        raise OSError(19, "No such device")


async def drive(app: KioskApp, scans: list[str], wait_s: float) -> None:
    task = asyncio.create_task(app.run())
    await asyncio.sleep(0.01)
    for text in scans:
        app.scan(text)
    await asyncio.sleep(wait_s)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


def make(issuer, settings: FlowSettings, printer=None):
    screen = RecordingScreen()
    reports: list[ScanReport] = []
    app = KioskApp(Flow(settings), issuer, screen, printer, locale="en_GB", timezone="UTC", on_report=reports.append)
    return app, screen, reports


def test_voucher_is_shown_reported_and_the_screen_returns_to_idle() -> None:
    app, screen, reports = make(SlowIssuer(0.02, Issued(VOUCHER, "online")), FlowSettings(1.0, 0.1, 0.1))
    asyncio.run(drive(app, [CODE], 0.3))
    assert screen.states == [State.IDLE, State.ISSUING, State.SHOWING_VOUCHER, State.IDLE]
    (report,) = reports
    assert report.status == "issued" and report.voucher == VOUCHER
    assert report.screen_png == b"showing_voucher"
    assert report.ms["issue"] >= 20 and report.ms["total"] >= report.ms["issue"]


def test_issuance_timeout_then_late_voucher_is_logged_not_lost(caplog) -> None:
    issuer = SlowIssuer(0.2, Issued(VOUCHER, "online"))
    app, screen, reports = make(issuer, FlowSettings(0.05, 1.0, 1.0))
    with caplog.at_level(logging.ERROR):
        asyncio.run(drive(app, [CODE], 0.4))
    assert [r.status for r in reports] == ["failed"]
    assert screen.states[-1] is State.NOTICE
    assert "HS-1 was issued after the customer was told it failed" in caplog.text


def test_a_replaced_timer_never_fires_into_the_new_state() -> None:
    # The notice timer (0.15 s) is replaced when a second scan starts issuing; the old expiry must
    # not cut the new issuance short (issue timeout 1 s, issuance 0.3 s).
    issuer = SlowIssuer(0.3, NoneAvailable("none"))
    app, screen, reports = make(issuer, FlowSettings(1.0, 5.0, 0.15))

    async def scenario() -> None:
        task = asyncio.create_task(app.run())
        await asyncio.sleep(0.01)
        app.scan("not a code")
        await asyncio.sleep(0.1)
        app.scan(CODE)
        await asyncio.sleep(0.5)
        task.cancel()

    asyncio.run(scenario())
    assert [r.status for r in reports] == ["invalid", "none_available"]


def test_unplugged_printer_still_shows_and_reports_the_voucher() -> None:
    app, screen, reports = make(SlowIssuer(0.0, Issued(VOUCHER, "online")), FlowSettings(1.0, 1.0, 1.0), UnpluggedPrinter())
    asyncio.run(drive(app, [CODE], 0.2))
    (report,) = reports
    assert report.status == "issued" and report.print_bytes is None
    assert "No such device" in report.print_error
    assert screen.states[-2:] == [State.SHOWING_VOUCHER, State.SHOWING_VOUCHER]
    assert screen.notices[-1] == "printer_trouble"  # the voucher stays, with "scan the QR" advice


def test_scans_during_issuance_do_not_start_a_second_one() -> None:
    issuer = SlowIssuer(0.1, NoneAvailable("none"))
    app, _, reports = make(issuer, FlowSettings(1.0, 1.0, 1.0))
    asyncio.run(drive(app, [CODE, "20GB0042", CODE], 0.3))
    assert issuer.calls == 1 and len(reports) == 1
