"""The fleet's parts put into a running kiosk: the one builder ``kiosk.runtime.open_kiosk`` calls.

``prepare_fleet`` comes first (the scan client is wrapped for metrics before the issuer is built),
``follow_reports``, ``follow_screens``, ``follow_backend`` and ``page_metrics`` give the app and the
page server what they call as they are built, and ``Fleet.start``, once the kiosk's parts run, serves
the metrics, starts the watchdog and the health reporter under the supervisor and tells systemd the
kiosk is ready.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kiosk import build_info
from kiosk.config import Config
from kiosk.core.flow import Screen
from kiosk.devices.screen.web_screen import WebScreen
from kiosk.fleet.health_client import HealthReportsClient
from kiosk.fleet.journal import JournalHandler
from kiosk.fleet.metrics import KioskMetrics, MeteredScans
from kiosk.fleet.metrics_server import MetricsServer, loopback_metrics
from kiosk.fleet.notify import Notifier, Probe, Watchdog, page_server_probe, watchdog_interval_s
from kiosk.fleet.reporter import HealthReporter
from kiosk.fleet.snapshot import ContactWatch, KioskSnapshot, RecentErrors, SnapshotTaker, status_line
from kiosk.fleet.verdicts import snapshot_verdicts
from kiosk.secret_files import read_secret_file
from kiosk.toml_schema import split_listen

if TYPE_CHECKING:
    from kiosk.app import ScanReport
    from kiosk.devices.printer.escpos_printer import EscposPrinter
    from kiosk.devices.scanner.source import ScanSource
    from kiosk.issuance.offline_store import OfflineStore
    from kiosk.issuance.rezip_client import RezipClient
    from kiosk.runtime import RunningKiosk
    from kiosk.supervisor import Supervisor

__all__ = ["Fleet", "prepare_fleet"]

#: The health gate's record of the running and previous releases and of the last rollback
#: (packaging/health-gate writes it into the data folder); the health report carries it.
RELEASE_RECORD = "release-health.json"
_RELEASE_FIELDS = ("running", "previous", "failed_release", "restored_release", "reason", "at")

#: How long READY=1 waits for the scan sources to open (or to be known absent).
READY_WAIT_S = 10.0


@dataclass
class Fleet:
    config: Config
    contact: ContactWatch
    errors: RecentErrors
    metrics: KioskMetrics | None
    notifier: Notifier
    taker: SnapshotTaker | None = None
    watchdog: Watchdog | None = None
    reporter: HealthReporter | None = None
    metrics_server: MetricsServer | None = None

    def scan_client(self, client: RezipClient) -> RezipClient | MeteredScans:
        """The client the online issuer asks: counted and timed when metrics are on."""
        if self.metrics is None:
            return client
        return MeteredScans(client, self.metrics, on_answer=self.contact.answered)

    def snapshot(self) -> KioskSnapshot:
        assert self.taker is not None, "Fleet.start has not run"
        return self.taker.take()

    def status_document(self) -> dict[str, Any]:
        """The snapshot and the checks it answers, for ``/status`` and the health report (empty
        in the moment between the page starting to serve and ``start``)."""
        if self.taker is None:
            return {}
        snapshot = self.snapshot()
        offline = self.config.offline
        verdicts = snapshot_verdicts(
            snapshot,
            offline_enabled=offline.enabled,
            watermark=offline.watermark,
            max_issuances=offline.max_issuances,
            max_age_s=offline.max_offline_age_s,
        )
        return {
            **snapshot.to_json(),
            "build": build_info.as_dict(),
            "release": release_record(self.config.kiosk.data_dir / RELEASE_RECORD),
            "checks": [verdict.to_json() for verdict in verdicts],
        }

    async def start(self, stack: AsyncExitStack, kiosk: RunningKiosk, client: RezipClient, *, background: bool) -> None:
        """Hook into the running kiosk (see the module's docstring); undone through ``stack``."""
        config, app, printer, offline = self.config, kiosk.app, kiosk.printer, kiosk.offline
        page = kiosk.screen if isinstance(kiosk.screen, WebScreen) else None
        logging.getLogger("kiosk").addHandler(self.errors)
        stack.callback(logging.getLogger("kiosk").removeHandler, self.errors)
        stack.callback(self.notifier.close)
        boards = kiosk.boards
        self.taker = SnapshotTaker(
            status=kiosk.status,
            store=kiosk.store,
            contact=self.contact,
            has_printer=printer is not None,
            paper_near_end=lambda: bool(printer and printer.status and printer.status.paper_near_end),
            board=lambda: boards[0].state if boards else None,
            expected_now=offline.expected_now if offline is not None else lambda: None,
            errors=self.errors,
        )
        for handler in logging.getLogger().handlers:
            if isinstance(handler, JournalHandler):
                handler.context = lambda: {"KIOSK_STATE": app.flow.state.value}
                stack.callback(setattr, handler, "context", None)
        if self.metrics is not None:
            self.metrics.watch_http(client.http, self.contact.answered)
            if background:  # a serving kiosk, not `kiosk scan` beside one (its port would be taken)
                await self._serve_metrics(stack, kiosk.supervisor)
        interval = watchdog_interval_s()
        if self.notifier.enabled and interval is not None:
            probes: dict[str, Probe] = {"flow loop": app.probe}
            if offline is not None and background:
                probes["offline service"] = _offline_probe(kiosk.supervisor, kiosk.store)
            if page is not None:
                web = page
                probes["page server"] = page_server_probe(web.host, lambda: web.port)
            self.watchdog = Watchdog(
                self.notifier,
                probes,
                interval_s=interval,
                probe_timeout_s=config.watchdog.probe_timeout_s,
                status=lambda: status_line(self.snapshot()),
            )
            kiosk.supervisor.start("watchdog", self.watchdog.run)
        if config.health.enabled and background:
            self.reporter = HealthReporter(
                HealthReportsClient(client.http, config.backend.drop_point_location_id),
                self.status_document,
                lambda: _devices(printer, kiosk.sources),
                interval_s=config.health.interval_s,
                queue_size=config.health.queue_size,
            )
            kiosk.supervisor.start("health reports", self.reporter.run)
        if self.notifier.enabled and background:
            ready = asyncio.get_running_loop().create_task(self._ready(kiosk.sources), name="systemd ready")
            stack.callback(ready.cancel)
            stack.callback(self.notifier.notify, STOPPING="1", STATUS="stopping")

    def follow_reports(self, then: Callable[[ScanReport], object] | None) -> Callable[[ScanReport], object] | None:
        """The app's ``on_report``: each scan's result counted, then handed to ``then``."""
        metrics = self.metrics
        if metrics is None:
            return then

        def reported(report: ScanReport) -> object:
            metrics.scan_reported(report)
            return then(report) if then is not None else None

        return reported

    def follow_screens(self, then: Callable[[Screen], None] | None) -> Callable[[Screen], None] | None:
        """The app's ``on_screen``: the flow's state and notices counted, then handed to ``then``."""
        metrics = self.metrics
        if metrics is None:
            return then

        def shown(screen: Screen) -> None:
            metrics.screen_shown(screen)
            if then is not None:
                then(screen)

        return shown

    def follow_backend(self, then: Callable[[bool], bool] | None) -> Callable[[bool], bool]:
        """The app's ``on_backend``: an answer from the backend noted as contact, then ``then``."""
        contact = self.contact

        def heard(reachable: bool) -> bool:
            if reachable:
                contact.answered()
            return then(reachable) if then is not None else False

        return heard

    def page_metrics(self) -> Callable[[web.Request], Any] | None:
        """The page server's ``/metrics`` handler (loopback peers only), None when metrics are off."""
        return loopback_metrics(self.metrics.render) if self.metrics is not None else None

    async def _serve_metrics(self, stack: AsyncExitStack, supervisor: Supervisor) -> None:
        section = self.config.metrics
        if not section.listen or self.metrics is None:
            return
        token = read_secret_file(section.token_file) if section.token_file is not None else None
        host, port = split_listen(section.listen)
        self.metrics_server = MetricsServer(host, port, self.metrics.render, token=token)
        await self.metrics_server.start()
        stack.push_async_callback(self.metrics_server.stop)
        supervisor.start("metrics server", self.metrics_server.serve)

    async def _ready(self, sources: list[ScanSource]) -> None:
        """READY=1 once the screen serves (it does: this runs after it started) and every scan
        source is open or known absent."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_WAIT_S
        while any(source.state in ("closed", "restarting") for source in sources) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        self.notifier.notify(READY="1", STATUS=status_line(self.snapshot()), MAINPID=str(os.getpid()))


def prepare_fleet(config: Config, store: OfflineStore) -> Fleet:
    """The parts that must exist before the issuer: metrics, the contact watch, the error lines."""
    last = store.meta("last_contact")
    errors = RecentErrors()
    fleet = Fleet(
        config=config,
        contact=ContactWatch(last_contact=datetime.fromisoformat(last) if last else None),
        errors=errors,
        metrics=None,
        notifier=Notifier.from_environment(),
    )
    if config.metrics.enabled:
        fleet.metrics = KioskMetrics(fleet.snapshot)
    return fleet


def release_record(path: Path) -> dict[str, Any] | None:
    """The health gate's record, its known fields only, each a short string (None without one).
    The file is the gate's, but nothing read from disk reaches a report unchecked."""
    try:
        with path.open("rb") as file:
            data = json.loads(file.read(16_384))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None

    def kept(part: object) -> dict[str, str]:
        if not isinstance(part, dict):
            return {}
        return {name: part[name][:200] for name in _RELEASE_FIELDS if isinstance(part.get(name), str)}

    record: dict[str, Any] = kept(data)
    for name in ("rollback", "last_rollback"):
        if isinstance(data.get(name), dict):
            record[name] = kept(data[name])
    return record


def _printer_state(printer: EscposPrinter | None) -> tuple[str, bool] | None:
    if printer is None:
        return None
    status = printer.status
    if status is None:
        return ("unknown", False)
    return (status.state, status.paper_near_end)


def _devices(printer: EscposPrinter | None, sources: list[ScanSource]) -> tuple[object, ...]:
    """The devices' state, compared by the reporter to report each change."""
    return (_printer_state(printer), *((source.name, source.state) for source in sources))


def _offline_probe(supervisor: Supervisor, store: OfflineStore) -> Probe:
    """The offline service's task is alive (running, or waiting to be restarted) and its store answers."""

    async def probe() -> None:
        state = supervisor.status().get("offline sync", {}).get("state")
        if state not in ("running", "restarting"):
            raise RuntimeError(f"offline sync is {state}")
        store.meta("last_contact")

    return probe
