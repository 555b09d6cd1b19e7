"""Builds a running kiosk from its configuration: the one place where adapters are chosen."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from kiosk.app import KioskApp, ScanReport
from kiosk.config import Config
from kiosk.core.flow import DroppedScan, Flow, FlowSettings
from kiosk.devices.printer.connection import PrinterConnection
from kiosk.devices.printer.escpos_printer import EscposPrinter
from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.devices.scanner.serial_source import ScanSource, SerialScanSource
from kiosk.devices.screen.browser import HeadlessBrowser
from kiosk.logos import LogoCache
from kiosk.devices.screen.web_screen import WebScreen
from kiosk.issuance.issuer import OnlineIssuer
from kiosk.issuance.rezip_client import RezipClient, read_secret_file
from kiosk.presentation.view import ScreenView

__all__ = ["open_kiosk", "RunningKiosk", "NullScreen", "ISSUE_GRACE_S", "make_scan_sources"]

log = logging.getLogger(__name__)

#: The flow waits this much longer than the issuer's own deadline before it gives up on an answer.
ISSUE_GRACE_S = 1.0


class NullScreen:
    """No screen at all (``kiosk scan``, or a kiosk configured with ``screen.type = "none"``)."""

    async def show(self, view: ScreenView) -> int:
        return 0

    async def settled(self, seq: int) -> None:
        return None


def make_scan_sources(config: Config) -> list[ScanSource]:
    """The configured reader, with the shared scan filter (prefix, suffix, debounce)."""
    scanner = config.scanner
    scan_filter = ScanFilter(prefix=scanner.prefix, suffix=scanner.suffix, debounce_s=scanner.debounce_s)
    if scanner.type == "serial":
        return [SerialScanSource(scanner.device, baud=scanner.baud, terminator=scanner.terminator,
                                 scan_filter=scan_filter)]  # fmt: skip
    if scanner.type == "hid":
        from kiosk.devices.scanner.hid_source import HidScanSource

        return [HidScanSource(scanner.device, layout=scanner.keymap, scan_filter=scan_filter)]
    if scanner.type == "camera":
        from kiosk.devices.scanner.camera_source import CameraScanSource

        width, _, height = scanner.camera_size.partition("x")
        return [CameraScanSource(scanner.device, size=(int(width), int(height)), fps=scanner.camera_fps,
                                 scan_filter=scan_filter)]  # fmt: skip
    return []


@dataclass
class RunningKiosk:
    app: KioskApp
    sources: list[ScanSource]
    screen: WebScreen | NullScreen
    printer: EscposPrinter | None

    async def wait_ready(self, timeout_s: float = 5.0) -> bool:
        """Wait until every scan source has its device open (pyserial drops input sent earlier)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while any(source.state != "open" for source in self.sources):
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True


@asynccontextmanager
async def open_kiosk(
    config: Config,
    *,
    on_report: Callable[[ScanReport], None] | None = None,
    on_dropped: Callable[[DroppedScan], None] | None = None,
    with_devices: bool = True,
) -> AsyncIterator[RunningKiosk]:
    """Yield a started kiosk (its event loop task and scan sources running); stop it on exit.

    ``with_devices=False`` gives the issuance path alone: no screen, printer or scanner.
    """
    backend = config.backend
    token = read_secret_file(backend.token_file)
    client = RezipClient(
        backend.url,
        token,
        drop_point_location_id=backend.drop_point_location_id,
        hardware_id=config.kiosk.hardware_id,
        auth_scheme=backend.auth_scheme,
        connect_timeout_s=backend.connect_timeout_s,
        read_timeout_s=backend.read_timeout_s,
        ca_file=backend.ca_file,
        link_schemes=config.link_schemes,
    )
    settings = FlowSettings(
        issue_timeout_s=backend.deadline_s + ISSUE_GRACE_S,
        voucher_display_s=config.flow.voucher_display_s,
        notice_display_s=config.flow.notice_display_s,
    )
    logos = LogoCache(config.kiosk.data_dir / "logos")
    printer: EscposPrinter | None = None
    if with_devices and config.printer.type == "escpos":
        connection = PrinterConnection(config.printer_device, config.printer.profile)
        printer = EscposPrinter(connection, logos=logos, poll_interval_s=config.printer.poll_interval_s)
    screen: WebScreen | NullScreen = NullScreen()
    if with_devices and config.screen.type != "none":
        host, port = config.screen.address
        screen = WebScreen(
            host=host,
            port=port,
            touch=config.screen.touch,
            locales=config.languages,
            logos=logos,
            frames_dir=config.screen.dir if config.screen.type == "png" else None,
        )
    app = KioskApp(
        Flow(settings),
        OnlineIssuer(client, deadline_s=backend.deadline_s),
        screen,
        printer,
        locale=config.kiosk.locale,
        timezone=config.kiosk.timezone,
        on_report=on_report,
        on_dropped=on_dropped,
    )
    sources = make_scan_sources(config) if with_devices else []
    async with AsyncExitStack() as stack:
        stack.push_async_callback(client.aclose)
        if isinstance(screen, WebScreen):
            screen.on_locale = app.choose_locale
            screen.status = lambda: {"state": app.flow.state.value, "locale": app.locale,
                                     "hardware_id": config.kiosk.hardware_id,
                                     "scanners": {s.name: s.state for s in sources},
                                     "printer": printer.status.state if printer and printer.status else None}  # fmt: skip
            await screen.start()
            stack.push_async_callback(screen.stop)
            if config.screen.type == "png":
                browser = HeadlessBrowser(*config.screen.pixels)
                await browser.start()
                stack.push_async_callback(browser.close)
                await screen.attach_capture(browser)
        if printer is not None:
            watcher = asyncio.get_running_loop().create_task(
                printer.monitor(lambda status: app.printer_changed(status.ready)), name="printer-monitor"
            )
            stack.push_async_callback(_cancel, watcher)
            stack.callback(printer.connection.close)
        task = asyncio.get_running_loop().create_task(app.run(), name="kiosk-flow")
        stack.push_async_callback(_cancel, task)
        loop = asyncio.get_running_loop()
        for source in sources:
            source.start(loop, app.scan)
            stack.callback(source.stop)
        yield RunningKiosk(app, sources, screen, printer)


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
