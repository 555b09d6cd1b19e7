"""Printing through the real transports (TCP and a serial pseudo-terminal) to the virtual printer:
status before every job, faults that lose nothing, unplug and replug, and jobs printed once."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from kiosk.core.voucher import Shop, parse_voucher
from kiosk.devices.printer.connection import PrinterConnection, PrintError
from kiosk.devices.printer.device import PrinterDevice
from kiosk.devices.printer.escpos_printer import EscposPrinter
from kiosk.presentation.paper import render_paper
from kiosk.presentation.view import build_voucher_view
from kiosk.sim.virtual_printer import VirtualPrinter
from tests.conftest import run_kiosk, wait_until

pytestmark = pytest.mark.integration

VOUCHER = parse_voucher(
    {
        "code": "GB15-PRINT1",
        "link": "https://gron-butik.example/redeem?code=GB15-PRINT1",
        "type": "percentage",
        "value": 15,
        "unit": "%",
        "conditions": "Valid on full-price items only.",
        "expires_at": "2027-01-01T00:00:00Z",
    },
    shop=Shop("Grøn Butik", "Økologi og zero waste."),
)
VIEW = build_voucher_view(VOUCHER, "da_DK", "Europe/Copenhagen")


@pytest.fixture(params=["tcp", "serial"])
def attached(request, tmp_path: Path):
    """A virtual printer and a connection to it over TCP or a serial pseudo-terminal."""
    virtual = VirtualPrinter("TM-T20II")
    if request.param == "tcp":
        device = PrinterDevice.parse(f"tcp://127.0.0.1:{virtual.serve_tcp()}")
    else:
        link = virtual.serve_pty(tmp_path / "by-id" / "usb-Epson_TM-T20II-if00")
        device = PrinterDevice.parse(f"serial:{link}", baud=38400)
    connection = PrinterConnection(device, "TM-T20II", timeout_s=0.5)
    yield virtual, connection
    connection.close()
    virtual.close()


def test_status_is_read_before_the_job_and_the_job_arrives_whole(attached) -> None:
    virtual, connection = attached
    printer = EscposPrinter(connection)
    sent = asyncio.run(printer.print_voucher(VIEW, "job-1"))
    assert sent == render_paper(VIEW, "TM-T20II")
    (job,) = virtual.wait_for_jobs(1)
    assert job.qr_payloads == [VOUCHER.link] and "GB15-PRINT1" in job.text and "Grøn Butik" in job.text
    assert job.count("GS V") == 1 and job.unknown == []
    assert virtual.status_queries >= 3 and printer.status.ready


@pytest.mark.parametrize("fault, reason", [("paper", "paper_out"), ("cover", "cover_open"), ("offline", "offline")])
def test_faults_are_reported_and_nothing_is_sent(attached, fault: str, reason: str) -> None:
    virtual, connection = attached
    if fault == "paper":
        virtual.paper = "out"
    elif fault == "cover":
        virtual.cover_open = True
    else:
        virtual.online = False
    printer = EscposPrinter(connection)
    with pytest.raises(PrintError) as error:
        asyncio.run(printer.print_voucher(VIEW, "job-1"))
    assert error.value.reason == reason
    assert virtual.received == bytearray()
    virtual.paper, virtual.cover_open, virtual.online = "ok", False, True
    asyncio.run(printer.print_voucher(VIEW, "job-1"))  # the failed job may be retried, and prints
    assert len(virtual.wait_for_jobs(1)) == 1


def test_near_end_paper_still_prints(attached) -> None:
    virtual, connection = attached
    virtual.paper = "near_end"
    status = connection.status()
    assert status.ready and status.paper_near_end


def test_unplugged_printer_reopens_without_a_restart(attached) -> None:
    virtual, connection = attached
    printer = EscposPrinter(connection)

    async def scenario() -> list[str]:
        outcomes = []
        await printer.print_voucher(VIEW, "job-1")
        await asyncio.to_thread(virtual.wait_for_jobs, 1)  # pulled after the job was through
        virtual.unplug()
        for job in ("job-2", "job-3"):
            try:
                await printer.print_voucher(VIEW, job)
                outcomes.append("printed")
            except PrintError as exc:
                outcomes.append(exc.reason)
        virtual.replug()
        await printer.print_voucher(VIEW, "job-2")
        outcomes.append("printed")
        return outcomes

    assert asyncio.run(scenario()) == ["unplugged", "unplugged", "printed"]
    assert len(virtual.wait_for_jobs(2)) == 2


def test_a_job_id_prints_once_however_often_it_is_retried(attached) -> None:
    virtual, connection = attached
    printer = EscposPrinter(connection)

    async def scenario() -> None:
        await asyncio.gather(*(printer.print_voucher(VIEW, "job-1") for _ in range(3)))
        await printer.print_voucher(VIEW, "job-1")

    asyncio.run(scenario())
    virtual.wait_for_jobs(2, timeout_s=0.5)  # give a wrongly repeated job the time to arrive
    assert len(virtual.jobs) == 1


def test_monitor_reports_changes_and_the_state_after_a_failure(attached) -> None:
    virtual, connection = attached
    printer = EscposPrinter(connection, poll_interval_s=0.05)
    seen: list[str] = []

    async def scenario() -> None:
        watcher = asyncio.create_task(printer.monitor(lambda status: seen.append(status.state)))
        await asyncio.sleep(0.2)
        virtual.cover_open = True
        await asyncio.sleep(0.2)
        virtual.cover_open = False
        await asyncio.sleep(0.2)
        watcher.cancel()

    asyncio.run(scenario())
    assert seen[:3] == ["ready", "cover_open", "ready"]


def test_file_device_that_is_gone_is_unplugged_not_created(tmp_path: Path) -> None:
    connection = PrinterConnection(PrinterDevice.parse("/dev/usb/lp-missing-test"), "TM-T20II")
    assert connection.status().state == "unplugged"
    assert not Path("/dev/usb/lp-missing-test").exists()
    out = tmp_path / "printer.bin"
    file_connection = PrinterConnection(PrinterDevice.parse(str(out)), "POS-5890")
    assert file_connection.status().ready and not file_connection.status().answered
    file_connection.send(b"\x1b@hello\n")
    file_connection.close()
    assert out.read_bytes() == b"\x1b@hello\n"


def test_an_unplugged_virtual_printer_leaves_no_reader_on_its_old_descriptors(tmp_path: Path) -> None:
    """The pseudo-terminal's reader held its descriptor numbers after unplug, for up to 0.2 s or,
    once the numbers were taken again, for good: it read from and answered into whatever was opened
    next (the replugged terminal, another test's file)."""
    virtual = VirtualPrinter("TM-T20II")
    link = virtual.serve_pty(tmp_path / "by-id" / "usb-Epson_TM-T20II-if00")

    def readers() -> int:
        return sum(thread.name == "vprinter-pty" and thread.is_alive() for thread in threading.enumerate())

    try:
        before = readers()
        virtual.unplug()
        assert readers() == before - 1
        virtual.replug()
        assert readers() == before and link.is_symlink()
    finally:
        virtual.close()
    assert readers() == before - 1


def test_printer_test_command_prints_a_self_test_ticket() -> None:
    virtual = VirtualPrinter("POS-5890")
    port = virtual.serve_tcp()
    try:
        result = run_kiosk("printer", "test", "--printer", "POS-5890", "--device", f"tcp://127.0.0.1:{port}")
        assert result.returncode == 0, result.stderr
        (job,) = virtual.wait_for_jobs(1)
        assert "Printer test" in job.text and "Version:" in job.text and "Address:" in job.text
        assert job.count("GS v 0") >= 1  # a raster QR: this profile cannot draw QR itself
        virtual.paper = "out"
        failed = run_kiosk("printer", "test", "--printer", "POS-5890", "--device", f"tcp://127.0.0.1:{port}")
        assert failed.returncode == 1 and "paper_out" in failed.stderr
    finally:
        virtual.close()


def test_voucher_render_escpos_writes_the_exact_job(tmp_path: Path) -> None:
    out = tmp_path / "job.bin"
    doc = json.dumps({**VOUCHER.to_json(), "shop": {"name": "Grøn Butik", "description": "Økologi og zero waste."}})
    result = run_kiosk(
        "voucher", "render", "--locale", "da_DK", "--escpos", str(out), "--printer", "POS-5890", input=doc
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == render_paper(VIEW, "POS-5890")


def test_kiosk_keeps_the_voucher_when_printing_fails_and_reprints_once_when_the_printer_returns(
    backend, tmp_path: Path
) -> None:
    from kiosk.config import load_config
    from kiosk.runtime import open_kiosk
    from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, sample_code
    from kiosk.sim.kiosk_config import write_kiosk_config

    virtual = VirtualPrinter("TM-T20II")
    port = virtual.serve_tcp()
    code = sample_code("private_public", 1)
    config = load_config(
        write_kiosk_config(
            tmp_path / "kiosk.toml",
            backend_url=backend.url,
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            printer_device=f"tcp://127.0.0.1:{port}",
            screen_type="web",
        )
    )
    reports = []

    async def scenario() -> list:
        notices = []
        async with open_kiosk(config, on_report=reports.append) as kiosk:
            screen = kiosk.screen
            await wait_until(lambda: kiosk.printer.status is not None and kiosk.printer.status.ready)
            virtual.paper = "out"
            await asyncio.sleep(0.7)  # the monitor polls every 0.5 s
            kiosk.app.scan(code)
            await wait_until(lambda: reports)
            await wait_until(lambda: screen.frame["notice"] == "printer_trouble")
            notices.append(screen.frame["notice"])
            virtual.paper = "ok"
            await wait_until(lambda: screen.frame["notice"] == "printer_back")
            notices.append(screen.frame["notice"])
            kiosk.app.scan(code)  # the customer scans the packaging again: the voucher is printed
            await wait_until(lambda: len(virtual.jobs) == 1)
            kiosk.app.scan(code)  # and again: it is not printed twice
            await asyncio.sleep(0.5)
            notices.append(screen.frame["notice"])
        return notices

    try:
        notices = asyncio.run(scenario())
    finally:
        virtual.close()
    (report,) = reports
    assert report.status == "issued" and "paper_out" in report.print_error
    assert notices == ["printer_trouble", "printer_back", None]
    (job,) = virtual.jobs
    assert report.voucher.code in job.text
