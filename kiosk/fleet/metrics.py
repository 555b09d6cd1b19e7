"""The kiosk's Prometheus metrics, in a registry of its own (never prometheus_client's global one,
so two kiosks in one process, as in the tests and the benchmark, count apart).

Counters and histograms are fed from the kiosk's callbacks (a scan's report, a screen shown, a
backend answer); gauges are read from a ``KioskSnapshot`` when Prometheus scrapes. Label values come
from fixed vocabularies (results, sources, notice kinds, states) or are shop ids: no voucher code,
link or token can become a label.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from kiosk.core.flow import NoticeKind, Screen, State
from kiosk.fleet.snapshot import KioskSnapshot
from kiosk.issuance.rezip_client import (
    ScanAccepted,
    ScanAlreadyReturned,
    ScanInvalidBody,
    ScanNetworkError,
    ScanRateLimited,
    ScanResult,
)

if TYPE_CHECKING:
    from kiosk.app import ScanReport
    from kiosk.core.codes import PackagingCode

# No "_created" series: one per labelled counter and histogram, they doubled a scrape's cost on the
# kiosk's event loop (1.8 -> 0.9 ms, scripts/bench/fleet.py), and Prometheus's text format needs none.
disable_created_metrics()  # type: ignore[no-untyped-call]  # the library leaves it unannotated

__all__ = ["KioskMetrics", "MeteredScans", "CONTENT_TYPE_LATEST", "PRINTER_STATES", "status_class"]

#: Every state a printer reports (``kiosk.devices.printer.connection.StatusState``), each a series.
PRINTER_STATES = ("ready", "paper_out", "cover_open", "offline", "error", "unplugged")
#: Seconds from scan to voucher visible: the goal is well under 2.5 s (the backend's deadline).
_SCAN_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0)
_BACKEND_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0)
#: Background calls named by the part of their path that says what they do (never the path itself:
#: it holds ids, and the shop side's paths hold codes).
_ENDPOINTS = (
    ("offline-pools/reservations", "offline_reserve"),
    ("offline-issuances", "offline_forward"),
    ("health-reports", "health_report"),
    ("jwks", "jwks"),
)


class KioskMetrics:
    """One kiosk's metrics; ``render()`` is the ``/metrics`` answer."""

    def __init__(self, snapshot: Callable[[], KioskSnapshot] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._snapshot = snapshot
        self.scans = Counter(
            "kiosk_scans", "Scans that reached a result, by result.", ["result"], registry=self.registry
        )
        self.issuances = Counter(
            "kiosk_issuances", "Vouchers issued, by source (online, offline).", ["source"], registry=self.registry
        )
        self.notices = Counter("kiosk_notices", "Notices shown, by kind.", ["kind"], registry=self.registry)
        self.print_jobs = Counter(
            "kiosk_print_jobs", "Voucher print jobs, by result (printed, failed).", ["result"], registry=self.registry
        )
        self.backend_requests = Counter(
            "kiosk_backend_requests",
            "Requests to the backend, by endpoint and status class (2xx, 4xx, 5xx, network, invalid).",
            ["endpoint", "status_class"],
            registry=self.registry,
        )
        self.scan_seconds = Histogram(
            "kiosk_scan_to_voucher_seconds",
            "Seconds from a scan to its voucher visible on screen.",
            buckets=_SCAN_BUCKETS,
            registry=self.registry,
        )
        self.backend_seconds = Histogram(
            "kiosk_backend_request_seconds",
            "Seconds the backend took to answer, by endpoint.",
            ["endpoint"],
            buckets=_BACKEND_BUCKETS,
            registry=self.registry,
        )
        for result in ("issued", "invalid", "already_returned", "none_available", "failed"):
            self.scans.labels(result)  # every series exists from the start: rate() needs a zero
        for source in ("online", "offline"):
            self.issuances.labels(source)
        for kind in NoticeKind:
            self.notices.labels(kind.value)
        for outcome in ("printed", "failed"):
            self.print_jobs.labels(outcome)
        # process_start_time_seconds (a restart, by the watchdog or not) and resident memory.
        ProcessCollector(registry=self.registry)
        if snapshot is not None:
            self.registry.register(_SnapshotCollector(snapshot))

    # --- what the kiosk tells it ----------------------------------------------------------------

    def scan_reported(self, report: ScanReport) -> None:
        """A scan reached its result (``KioskApp.on_report``)."""
        self.scans.labels(report.status).inc()
        if report.status == "issued" and report.source is not None:
            self.issuances.labels(report.source).inc()
            if "total" in report.ms:
                self.scan_seconds.observe(report.ms["total"] / 1000)
        if report.print_bytes is not None:
            self.print_jobs.labels("printed").inc()
        elif report.print_error is not None:
            self.print_jobs.labels("failed").inc()

    def screen_shown(self, screen: Screen) -> None:
        """A screen went up (``KioskApp.on_screen``): a notice counts by its kind."""
        if screen.state is State.NOTICE and screen.notice is not None:
            self.notices.labels(screen.notice.value).inc()

    def backend_answered(self, endpoint: str, status: str, seconds: float) -> None:
        self.backend_requests.labels(endpoint, status).inc()
        self.backend_seconds.labels(endpoint).observe(seconds)

    def watch_http(self, http: httpx.AsyncClient, on_answer: Callable[[], None] | None = None) -> None:
        """Count the background calls made through ``http`` (offline pools, health reports)."""

        async def sent(request: httpx.Request) -> None:
            request.extensions["kiosk_sent_at"] = time.perf_counter()

        async def answered(response: httpx.Response) -> None:
            sent_at = response.request.extensions.get("kiosk_sent_at")
            seconds = time.perf_counter() - sent_at if isinstance(sent_at, float) else 0.0
            self.backend_answered(_endpoint(response.request.url.path), f"{response.status_code // 100}xx", seconds)
            if on_answer is not None:
                on_answer()

        http.event_hooks["request"].append(sent)
        http.event_hooks["response"].append(answered)

    def render(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


class MeteredScans:
    """The scan client with each call counted and timed (it stands where ``OnlineIssuer`` expects
    its client)."""

    def __init__(self, client: Any, metrics: KioskMetrics, *, on_answer: Callable[[], None] | None = None) -> None:
        self._client = client
        self._metrics = metrics
        self._on_answer = on_answer

    async def scan(self, code: PackagingCode, idempotency_key: str) -> ScanResult:
        started = time.perf_counter()
        result: ScanResult = await self._client.scan(code, idempotency_key)
        kind = status_class(result)
        self._metrics.backend_answered("scan", kind, time.perf_counter() - started)
        if kind.endswith("xx") and self._on_answer is not None:
            self._on_answer()
        return result


def status_class(result: ScanResult) -> str:
    """ "2xx", "4xx", "5xx", or "network"/"invalid" when no usable answer came."""
    if isinstance(result, ScanAccepted):
        return "2xx"
    if isinstance(result, (ScanAlreadyReturned, ScanRateLimited)):
        return "4xx"
    if isinstance(result, ScanNetworkError):
        return "network"
    if isinstance(result, ScanInvalidBody):
        return "invalid"
    return f"{result.status // 100}xx"


def _endpoint(path: str) -> str:
    return next((name for part, name in _ENDPOINTS if part in path), "other")


class _SnapshotCollector(Collector):
    """The gauges, read from one snapshot per scrape."""

    def __init__(self, snapshot: Callable[[], KioskSnapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> list[Metric]:
        return []  # the families depend on what the kiosk has (a printer, a board): none up front

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        build = InfoMetricFamily("kiosk_build", "The kiosk's version and commit.")
        build.add_metric([], {"version": snap.version, "commit": snap.commit})
        yield build
        yield _gauge("kiosk_uptime_seconds", "Seconds since the kiosk started.", snap.uptime_s)
        codes = GaugeMetricFamily("kiosk_offline_codes_left", "Unclaimed offline codes, by shop id.", labels=["shop"])
        for shop, count in sorted(snap.offline_codes.items()):
            codes.add_metric([shop], count)
        yield codes
        yield _gauge(
            "kiosk_offline_codes_left_total", "Unclaimed offline codes of all shops.", sum(snap.offline_codes.values())
        )
        yield _gauge("kiosk_journal_pending", "Offline issuances the backend has not taken yet.", snap.journal_pending)
        yield _gauge(
            "kiosk_journal_oldest_pending_age_seconds",
            "Age of the oldest offline issuance not yet forwarded (0 when none).",
            snap.oldest_pending_age_s or 0.0,
        )
        flow = GaugeMetricFamily("kiosk_flow_state", "1 for the flow's current state.", labels=["state"])
        for state in State:
            flow.add_metric([state.value], 1.0 if state.value == snap.flow_state else 0.0)
        yield flow
        if snap.printer_state is not None:
            printer = GaugeMetricFamily("kiosk_printer_state", "1 for the printer's current state.", labels=["state"])
            for printer_state in PRINTER_STATES:
                printer.add_metric([printer_state], 1.0 if printer_state == snap.printer_state else 0.0)
            yield printer
            yield _gauge(
                "kiosk_printer_paper_near_end",
                "1 when the paper roll is nearly used up (DLE EOT 4).",
                snap.paper_near_end,
            )
        if snap.board_connected is not None:
            yield _gauge("kiosk_board_connected", "1 while the I/O board is connected.", snap.board_connected)
        yield _gauge("kiosk_backend_online", "1 while the backend answers.", snap.online)
        if snap.backend_last_heard_s is not None:
            yield _gauge(
                "kiosk_backend_last_heard_seconds",
                "Seconds since the backend last answered.",
                snap.backend_last_heard_s,
            )
        if snap.clock_offset_s is not None:
            yield _gauge(
                "kiosk_clock_offset_seconds", "The kiosk's clock minus the backend's signed time.", snap.clock_offset_s
            )
        restarts = GaugeMetricFamily(
            "kiosk_task_restarts", "Restarts of each supervised task since the kiosk started.", labels=["task"]
        )
        for task, health in sorted(snap.tasks.items()):
            restarts.add_metric([task], float(health.get("restarts", 0)))
        yield restarts


def _gauge(name: str, documentation: str, value: float | bool | None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value or 0))
