"""Builds a running kiosk from its configuration: the one place where adapters are chosen."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from kiosk.app import KioskApp, ScanReport
from kiosk.config import Config
from kiosk.board.signals import signals_for
from kiosk.core.flow import DroppedScan, Flow, FlowSettings, Screen, State
from kiosk.devices.board.io_board import IoBoard
from kiosk.devices.printer.connection import PrinterConnection
from kiosk.devices.printer.escpos_printer import EscposPrinter
from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.devices.scanner.serial_source import ScanSource, SerialScanSource
from kiosk.devices.screen.browser import HeadlessBrowser
from kiosk.logos import LogoCache
from kiosk.devices.screen.web_screen import WebScreen
from kiosk.core.outcomes import Issued
from kiosk.issuance.issuer import OnlineIssuer
from kiosk.issuance.offline import FallbackIssuer, OfflineService
from kiosk.issuance.offline_store import OfflineStore
from kiosk.issuance.configured import make_client, make_offline_service
from kiosk.presentation.view import ScreenView

__all__ = ["open_kiosk", "RunningKiosk", "NullScreen", "ISSUE_GRACE_S", "make_scan_sources"]

log = logging.getLogger(__name__)

#: The flow waits this much longer than the issuer's own deadline before it gives up on an answer.
ISSUE_GRACE_S = 1.0
#: Of the deadline, this much is kept for the offline claim when the backend does not answer.
OFFLINE_RESERVE_S = 0.25


class NullScreen:
    """No screen at all (``kiosk scan``, or a kiosk configured with ``screen.type = "none"``)."""

    async def show(self, view: ScreenView) -> int:
        return 0

    async def settled(self, seq: int) -> None:
        return None


def make_scan_sources(config: Config) -> list[ScanSource]:
    """The configured reader and the I/O board (whose scanner module is a reader too), sharing one
    scan filter (prefix, suffix, debounce): one code seen by both counts once."""
    scanner = config.scanner
    scan_filter = ScanFilter(prefix=scanner.prefix, suffix=scanner.suffix, debounce_s=scanner.debounce_s)
    sources: list[ScanSource] = []
    if scanner.type == "serial":
        sources.append(SerialScanSource(scanner.device, baud=scanner.baud, terminator=scanner.terminator,
                                        scan_filter=scan_filter))  # fmt: skip
    elif scanner.type == "hid":
        from kiosk.devices.scanner.hid_source import HidScanSource

        sources.append(HidScanSource(scanner.device, layout=scanner.keymap, scan_filter=scan_filter))
    elif scanner.type == "camera":
        from kiosk.devices.scanner.camera_source import CameraScanSource

        width, _, height = scanner.camera_size.partition("x")
        sources.append(CameraScanSource(scanner.device, size=(int(width), int(height)), fps=scanner.camera_fps,
                                        scan_filter=scan_filter))  # fmt: skip
    if config.board.type == "serial":
        sources.append(IoBoard(config.board.device, baud=config.board.baud, scan_filter=scan_filter))
    return sources


@dataclass
class RunningKiosk:
    app: KioskApp
    sources: list[ScanSource]
    screen: WebScreen | NullScreen
    printer: EscposPrinter | None
    store: OfflineStore
    offline: OfflineService | None

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
    background: bool = True,
) -> AsyncIterator[RunningKiosk]:
    """Yield a started kiosk (its event loop task and scan sources running); stop it on exit.

    ``with_devices=False`` gives the issuance path alone: no screen, printer or scanner;
    ``background=False`` starts no offline sync and forwarding (``kiosk scan``).
    """
    backend = config.backend
    client = make_client(config)
    settings = FlowSettings(
        issue_timeout_s=backend.deadline_s + ISSUE_GRACE_S,
        voucher_display_s=config.flow.voucher_display_s,
        notice_display_s=config.flow.notice_display_s,
        deposit_required=config.board.slot_sensor,
        deposit_timeout_s=config.board.deposit_timeout_s,
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
    store = OfflineStore(config.offline_db)
    offline: OfflineService | None = None
    online_deadline_s = backend.deadline_s
    if config.offline.enabled:
        online_deadline_s = max(0.5, backend.deadline_s - OFFLINE_RESERVE_S)
        offline = make_offline_service(config, store, client)
    app = KioskApp(
        Flow(settings),
        FallbackIssuer(OnlineIssuer(client, deadline_s=online_deadline_s), store, offline),
        screen,
        printer,
        locale=config.kiosk.locale,
        timezone=config.kiosk.timezone,
        on_report=on_report,
        on_dropped=on_dropped,
        on_shown=store.mark_shown,
    )
    sources = make_scan_sources(config) if with_devices else []
    boards = [source for source in sources if isinstance(source, IoBoard)]
    for board in boards:
        board.on_deposit = app.deposit_detected
    if boards:
        app.on_screen = _board_signals(boards)
    async with AsyncExitStack() as stack:
        stack.callback(store.close)
        stack.push_async_callback(client.aclose)
        if isinstance(screen, WebScreen):
            screen.on_locale = app.choose_locale
            screen.status = lambda: {"state": app.flow.state.value, "locale": app.locale,
                                     "hardware_id": config.kiosk.hardware_id,
                                     "scanners": {s.name: s.state for s in sources},
                                     "board": {"firmware": boards[0].firmware, "errors": boards[0].errors[-5:]}
                                     if boards else None,
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
        _resume_unshown(app, store)
        if offline is not None and background:
            syncing = loop.create_task(offline.run(), name="offline-sync")
            stack.push_async_callback(_cancel, syncing)
        yield RunningKiosk(app, sources, screen, printer, store, offline)


def _board_signals(boards: list[IoBoard]) -> Callable[[Screen], None]:
    """Lights and buzzer follow what the screen shows."""
    previous: State | None = None

    def show(screen: Screen) -> None:
        nonlocal previous
        signals = signals_for(previous, screen)
        previous = screen.state
        for board in boards:
            board.signal(signals)

    return show


def _resume_unshown(app: KioskApp, store: OfflineStore) -> None:
    """The newest journalled voucher nobody saw is shown again; older ones were superseded."""
    unshown = store.unshown()
    if not unshown:
        return
    *older, (key, packaging, source, voucher) = unshown
    for old_key, _, _, old_voucher in older:
        log.warning("voucher %s was never shown, and a newer one was issued since", old_voucher.code)
        store.mark_shown(old_key)
    log.warning("showing voucher %s again: the kiosk stopped before it was shown", voucher.code)
    app.resume(packaging, Issued(voucher, "offline" if source == "offline" else "online", key=key))


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
