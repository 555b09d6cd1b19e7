"""Builds a running kiosk from its configuration: the one place where adapters are chosen."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from kiosk.app import KioskApp, ScanReport
from kiosk.board.signals import signals_for
from kiosk.config import Config
from kiosk.core.flow import DroppedScan, Flow, FlowSettings, Screen, State
from kiosk.devices.audio.speech import speech_for
from kiosk.devices.board.io_board import IoBoard
from kiosk.devices.printer.connection import PrinterConnection
from kiosk.devices.printer.escpos_printer import EscposPrinter
from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.devices.scanner.serial_source import SerialScanSource
from kiosk.devices.scanner.source import ScanSource
from kiosk.devices.screen.browser import HeadlessBrowser
from kiosk.devices.screen.web_screen import WebScreen
from kiosk.drain import DrainListener, socket_path
from kiosk.fleet.metrics import MeteredScans
from kiosk.fleet.wiring import Fleet, prepare_fleet
from kiosk.issuance.configured import make_client, make_offline_service
from kiosk.issuance.issuer import OnlineIssuer
from kiosk.issuance.offline import FallbackIssuer, OfflineService
from kiosk.issuance.offline_store import OfflineStore, open_store, utc_now
from kiosk.issuance.rezip_client import RezipClient
from kiosk.logos import LogoCache
from kiosk.presentation.view import ScreenView
from kiosk.status import BoardStatus, KioskStatus
from kiosk.supervisor import Supervisor

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
        sources.append(
            SerialScanSource(scanner.device, baud=scanner.baud, terminator=scanner.terminator, scan_filter=scan_filter)
        )
    elif scanner.type == "hid":
        from kiosk.devices.scanner.hid_source import HidScanSource

        sources.append(HidScanSource(scanner.device, layout=scanner.keymap, scan_filter=scan_filter))
    elif scanner.type == "camera":
        from kiosk.devices.scanner.camera_source import CameraScanSource

        sources.append(
            CameraScanSource(
                scanner.device, size=scanner.camera_pixels, fps=scanner.camera_fps, scan_filter=scan_filter
            )
        )
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
    #: Keeps the kiosk's tasks and device threads running; ``supervisor.gave_up`` resolves when one
    #: keeps failing, and the process should then exit non-zero.
    supervisor: Supervisor
    hardware_id: str = ""
    #: Metrics, watchdog, health reports (``kiosk.fleet``); set by ``open_kiosk``.
    fleet: Fleet | None = None

    async def wait_ready(self, timeout_s: float = 5.0) -> bool:
        """Wait until every scan source has its device open (pyserial drops input sent earlier)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while any(source.state != "open" for source in self.sources):
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    @property
    def boards(self) -> list[IoBoard]:
        return [source for source in self.sources if isinstance(source, IoBoard)]

    def status(self) -> KioskStatus:
        """The status document, read from the running parts now."""
        boards = self.boards
        printer = self.printer.status if self.printer is not None else None
        return KioskStatus(
            state=self.app.flow.state.value,
            locale=self.app.locale,
            hardware_id=self.hardware_id,
            offline=not self.app.backend_reachable,
            scanners={source.name: source.state for source in self.sources},
            board=BoardStatus(boards[0].firmware, tuple(boards[0].errors[-5:])) if boards else None,
            printer=printer.state if printer is not None else None,
            tasks=self.supervisor.status(),
            readers={s.name: figures for s in self.sources if (figures := s.status_figures()) is not None},
        )


@asynccontextmanager
async def open_kiosk(
    config: Config,
    *,
    on_report: Callable[[ScanReport], object] | None = None,
    on_dropped: Callable[[DroppedScan], None] | None = None,
    with_devices: bool = True,
    background: bool = True,
    resume: bool = True,
    supervisor: Supervisor | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> AsyncIterator[RunningKiosk]:
    """Yield a started kiosk (its event loop task and scan sources running); stop it on exit.

    ``with_devices=False`` gives the issuance path alone: no screen, printer or scanner;
    ``background=False`` starts no offline sync and forwarding; ``resume=False`` shows no voucher
    left unshown by an earlier run (``kiosk scan`` answers for its own code only); ``monotonic`` is
    the clock the backend's Retry-After is counted on (a test moves it on).
    """
    supervisor = supervisor or Supervisor()
    logos = LogoCache(config.kiosk.data_dir / "logos", plain_loopback=config.backend.url.startswith("http:"))
    screen = _screen(config, logos) if with_devices else NullScreen()
    web = screen if isinstance(screen, WebScreen) else None
    client = make_client(config, on_descriptors_short=web.shed_clients if web is not None else None)
    store = open_store(config.offline_db, link_schemes=config.link_schemes, set_aside_damaged=True)
    fleet = prepare_fleet(config, store)
    offline = make_offline_service(config, store, client, logos=logos) if config.offline.enabled else None
    issuer = _issuer(config, fleet.scan_client(client), store, offline, monotonic)
    printer = _printer(config, logos) if with_devices else None
    sources = make_scan_sources(config) if with_devices else []
    boards = [source for source in sources if isinstance(source, IoBoard)]
    speech = speech_for(config.audio) if with_devices else None
    app = KioskApp(
        Flow(_flow_settings(config)),
        issuer,
        screen,
        printer,
        timezone=config.kiosk.timezone,
        on_report=fleet.follow_reports(on_report),
        on_dropped=on_dropped,
        on_shown=store.mark_shown,
        on_display=store.note_display_attempt,
        on_screen=fleet.follow_screens(_board_signals(boards) if boards else None),
        on_backend=fleet.follow_backend(web.note_backend if web is not None else None),
        on_view=speech,
    )
    kiosk = RunningKiosk(app, sources, screen, printer, store, offline, supervisor, config.kiosk.hardware_id, fleet)
    async with AsyncExitStack() as stack:
        stack.callback(store.close)
        stack.push_async_callback(client.aclose)
        if web is not None:
            await web.start(
                on_locale=app.choose_locale,
                on_touch=app.touched,
                status=lambda: {**kiosk.status().to_json(), "health": fleet.status_document()},
                metrics=fleet.page_metrics(),
            )
            stack.push_async_callback(web.stop)
            supervisor.start("page server", web.serve)
            if config.screen.type == "png":
                browser = HeadlessBrowser(*config.screen.pixels)
                await browser.start()
                stack.push_async_callback(browser.close)
                await web.attach_capture(browser)
        if printer is not None:
            stack.callback(printer.connection.close)
            watching = printer
            supervisor.start(
                "printer monitor", lambda: watching.monitor(lambda status: app.printer_changed(status.ready))
            )
        supervisor.start("flow", app.run)
        if speech is not None:
            supervisor.start("speech", speech.run)
        loop = asyncio.get_running_loop()
        for source in sources:
            if isinstance(source, IoBoard):
                source.start(loop, app.scan, supervisor, on_deposit=app.deposit_detected)
            else:
                source.start(loop, app.scan, supervisor)
            stack.callback(source.stop)
        if resume:
            issuer.resume_unshown(
                utc_now(), lambda packaging, issued, plain: app.resume(packaging, issued, plain=plain)
            )
        if background:
            replay = loop.create_task(issuer.replay_unanswered(app.resume), name="replay unanswered scans")
            replay.add_done_callback(_logged)
            stack.callback(replay.cancel)
            if offline is not None:
                service = offline
                supervisor.start("offline sync", lambda: service.run(on_contact=app.backend_heard))
        await fleet.start(stack, kiosk, client, background=background)
        control = socket_path() if background else None
        if control is not None:  # under systemd: the health gate drains the kiosk before an upgrade
            listener = DrainListener(control, is_idle=lambda: app.idle, hold_scans=app.hold_scans)
            await listener.start()
            stack.push_async_callback(listener.stop)
        stack.push_async_callback(supervisor.stop)  # first on the way out: no task outlives its parts
        yield kiosk


def _flow_settings(config: Config) -> FlowSettings:
    """The flow's timings and rules from the configuration (the issuer's deadline plus a grace)."""
    return FlowSettings(
        issue_timeout_s=config.backend.deadline_s + ISSUE_GRACE_S,
        voucher_display_s=config.flow.voucher_display_s,
        notice_display_s=config.flow.notice_display_s,
        deposit_required=config.board.slot_sensor,
        deposit_timeout_s=config.board.deposit_timeout_s,
        url_hosts=tuple(config.scanner.url_hosts),
        locale=config.kiosk.locale,
    )


def _screen(config: Config, logos: LogoCache) -> WebScreen | NullScreen:
    if config.screen.type == "none":
        return NullScreen()
    host, port = config.screen.address
    return WebScreen(
        host=host,
        port=port,
        touch=config.screen.touch,
        locales=config.languages,
        logos=logos,
        frames_dir=config.screen.dir if config.screen.type == "png" else None,
        # A captured frame must hold its texts: wait for the page's fonts as long as it takes.
        ack_timeout_s=10.0 if config.screen.type == "png" else 1.0,
    )


def _printer(config: Config, logos: LogoCache) -> EscposPrinter | None:
    if config.printer.type != "escpos":
        return None
    connection = PrinterConnection(config.printer_device, config.printer.profile)
    return EscposPrinter(connection, logos=logos, poll_interval_s=config.printer.poll_interval_s)


def _issuer(
    config: Config,
    client: RezipClient | MeteredScans,
    store: OfflineStore,
    offline: OfflineService | None,
    monotonic: Callable[[], float],
) -> FallbackIssuer:
    """Online first; with offline pools, part of the deadline is kept for the offline claim."""
    deadline_s = config.backend.deadline_s
    if offline is not None:
        deadline_s = max(0.5, deadline_s - OFFLINE_RESERVE_S)
    return FallbackIssuer(OnlineIssuer(client, deadline_s=deadline_s, clock=monotonic), store, offline)


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


def _logged(task: asyncio.Task[None]) -> None:
    """A one-off start-up task ends; a failure is logged (its work waits for the next start)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed", task.get_name(), exc_info=task.exception())
