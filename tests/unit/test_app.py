"""The asyncio shell: timers, reports, late answers and a failing printer, with simulated parts."""

from __future__ import annotations

import asyncio
import logging

import pytest

from kiosk.app import KioskApp, ScanReport
from kiosk.core.codes import PackagingCode
from kiosk.core.flow import Flow, FlowSettings, State
from kiosk.core.outcomes import IssuanceOutcome, Issued, NoneAvailable
from kiosk.core.voucher import parse_voucher
from kiosk.presentation.view import ScreenView, VoucherView
from tests.virtual_time import loop_clock, run_in_virtual_time

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
    app = KioskApp(Flow(settings), issuer, screen, printer, timezone="UTC", on_report=reports.append, clock=loop_clock)
    return app, screen, reports


def test_voucher_is_shown_reported_and_the_screen_returns_to_idle() -> None:
    app, screen, reports = make(SlowIssuer(0.02, Issued(VOUCHER, "online")), FlowSettings(1.0, 0.1, 0.1))
    run_in_virtual_time(drive(app, [CODE], 0.3))
    assert screen.states == [State.IDLE, State.ISSUING, State.SHOWING_VOUCHER, State.IDLE]
    (report,) = reports
    assert report.status == "issued" and report.voucher == VOUCHER
    assert report.screen_png == b"showing_voucher"
    # Virtual time: the issuer's 20 ms exactly, and the voucher on screen after it.
    assert report.ms["issue"] == pytest.approx(20) and report.ms["total"] >= report.ms["issue"]


def test_issuance_timeout_then_late_voucher_is_logged_not_lost(caplog) -> None:
    issuer = SlowIssuer(0.2, Issued(VOUCHER, "online"))
    app, screen, reports = make(issuer, FlowSettings(0.05, 1.0, 1.0))
    with caplog.at_level(logging.ERROR):
        run_in_virtual_time(drive(app, [CODE], 0.4))
    assert [r.status for r in reports] == ["failed"]
    assert screen.states[-1] is State.NOTICE
    assert "was issued after the customer was told it failed" in caplog.text and "HS-1" not in caplog.text


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

    run_in_virtual_time(scenario())
    assert [r.status for r in reports] == ["invalid", "none_available"]


def test_unplugged_printer_still_shows_and_reports_the_voucher() -> None:
    app, screen, reports = make(
        SlowIssuer(0.0, Issued(VOUCHER, "online")), FlowSettings(1.0, 1.0, 1.0), UnpluggedPrinter()
    )
    run_in_virtual_time(drive(app, [CODE], 0.2))
    (report,) = reports
    assert report.status == "issued" and report.print_bytes is None
    assert "No such device" in report.print_error
    assert screen.states[-2:] == [State.SHOWING_VOUCHER, State.SHOWING_VOUCHER]
    assert screen.notices[-1] == "printer_trouble"  # the voucher stays, with "scan the QR" advice


def test_scans_during_issuance_do_not_start_a_second_one() -> None:
    issuer = SlowIssuer(0.1, NoneAvailable("none"))
    app, _, reports = make(issuer, FlowSettings(1.0, 1.0, 1.0))
    run_in_virtual_time(drive(app, [CODE, "20GB0042", CODE], 0.3))
    assert issuer.calls == 1 and len(reports) == 1


class FragileScreen(RecordingScreen):
    """A screen that cannot draw what ``breaks`` says (a voucher's rich form, its plain form)."""

    def __init__(self, breaks: set[str]) -> None:
        super().__init__()
        self.breaks = breaks
        self.plain: list[bool] = []

    async def show(self, view: ScreenView) -> int:
        if view.voucher is not None:
            self.plain.append(view.voucher.plain)
            if ("plain" if view.voucher.plain else "rich") in self.breaks:
                raise ValueError("a QR version that does not exist")
        return await super().show(view)


def test_a_voucher_the_screen_cannot_draw_is_shown_plainly_and_the_next_customer_is_served(caplog) -> None:
    screen = FragileScreen({"rich"})
    reports: list[ScanReport] = []
    shown: list[str] = []
    app = KioskApp(
        Flow(FlowSettings(1.0, 0.1, 0.1)),
        SlowIssuer(0.0, Issued(VOUCHER, "online", key="k1")),
        screen,
        None,
        timezone="UTC",
        clock=loop_clock,
        on_report=reports.append,
        on_shown=shown.append,
    )
    with caplog.at_level(logging.ERROR):
        run_in_virtual_time(drive(app, [CODE], 0.3))
    assert screen.plain == [False, True] and screen.states == [
        State.IDLE,
        State.ISSUING,
        State.SHOWING_VOUCHER,
        State.IDLE,
    ]
    assert [r.status for r in reports] == ["issued"] and shown == ["k1"]
    assert "could not be shown" in caplog.text and "HS-1" not in caplog.text


def test_when_not_even_the_plain_form_draws_the_customer_sees_a_notice_and_the_voucher_is_not_marked_seen() -> None:
    screen = FragileScreen({"rich", "plain"})
    shown: list[str] = []
    app = KioskApp(
        Flow(FlowSettings(1.0, 0.1, 0.1)),
        SlowIssuer(0.0, Issued(VOUCHER, "online", key="k1")),
        screen,
        None,
        timezone="UTC",
        clock=loop_clock,
        on_shown=shown.append,
    )
    run_in_virtual_time(
        drive(
            app,
            [
                CODE,
            ],
            0.05,
        )
    )
    assert screen.notices[-1] == "backend_trouble" and shown == []


class BrokenPrinter:
    async def print_voucher(self, view: VoucherView, job_id: str) -> bytes:
        raise RuntimeError("a bug in the layout")


def test_a_printer_bug_keeps_the_voucher_up_with_the_printer_notice() -> None:
    app, screen, reports = make(
        SlowIssuer(0.0, Issued(VOUCHER, "online")), FlowSettings(1.0, 1.0, 1.0), BrokenPrinter()
    )
    run_in_virtual_time(drive(app, [CODE], 0.2))
    (report,) = reports
    assert report.status == "issued" and report.print_error == "error: RuntimeError"
    assert screen.notices[-1] == "printer_trouble"


class NonsenseIssuer:
    """A buggy issuer that returns something no outcome is: the flow raises FlowError."""

    def __init__(self) -> None:
        self.calls = 0

    async def issue(self, code: PackagingCode) -> IssuanceOutcome:
        self.calls += 1
        if self.calls == 1:
            return "nonsense"  # type: ignore[return-value]
        return Issued(VOUCHER, "online")


def test_a_flow_error_is_logged_and_the_flow_goes_back_to_idle_for_the_next_customer(caplog) -> None:
    issuer = NonsenseIssuer()
    app, screen, reports = make(issuer, FlowSettings(1.0, 1.0, 1.0))

    async def scenario() -> None:
        task = asyncio.create_task(app.run())
        app.scan(CODE)
        await asyncio.sleep(0.1)
        app.scan("20GB0042")
        await asyncio.sleep(0.1)
        task.cancel()

    with caplog.at_level(logging.ERROR):
        run_in_virtual_time(scenario())
    assert "flow bug" in caplog.text and app.flow.state is State.SHOWING_VOUCHER
    assert screen.states[:4] == [State.IDLE, State.ISSUING, State.IDLE, State.ISSUING]
    assert [r.status for r in reports] == ["issued"]


def test_a_resumed_voucher_is_shown_and_printed_plainly_when_asked() -> None:
    printed: list[VoucherView] = []

    class Printer:
        async def print_voucher(self, view: VoucherView, job_id: str) -> bytes:
            printed.append(view)
            return b"ok"

    screen = FragileScreen(set())
    attempts: list[str] = []
    app = KioskApp(
        Flow(FlowSettings(1.0, 1.0, 1.0)),
        SlowIssuer(0, NoneAvailable("-")),
        screen,
        Printer(),
        timezone="UTC",
        clock=loop_clock,
        on_display=lambda key: attempts.append(key) or 1,
    )

    async def resumed() -> None:
        app.resume(CODE, Issued(VOUCHER, "offline", key="k9"), plain=True)
        await drive(app, [], 0.1)

    run_in_virtual_time(resumed())
    assert screen.plain == [True] and [view.plain for view in printed] == [True] and attempts == ["k9"]


def test_scans_held_while_draining_are_taken_when_the_hold_ends() -> None:
    issuer = SlowIssuer(0.0, Issued(VOUCHER, "online"))
    app, screen, reports = make(issuer, FlowSettings(1.0, 0.1, 0.1))

    async def scenario() -> tuple[int, bool, int]:
        task = asyncio.create_task(app.run())
        await asyncio.sleep(0.01)
        app.hold_scans(5.0)  # an upgrade drains the kiosk
        app.scan(CODE)
        await asyncio.sleep(4.9)
        during, idle = issuer.calls, app.idle
        await asyncio.sleep(0.5)
        task.cancel()
        return during, idle, issuer.calls

    during, idle, after = run_in_virtual_time(scenario())
    assert during == 0 and idle  # held, not dropped, and the kiosk counts as idle meanwhile
    assert after == 1 and [r.status for r in reports] == ["issued"]
