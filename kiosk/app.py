"""The asyncio shell around the pure flow: it feeds events in and carries commands out.

Everything with a clock, a thread or a device lives here or below. Events are handled one at a time
from a queue, in order. The shell owns the flow's single timer: each ``StartTimer`` bumps a
generation number, and an expiry from an older generation is dropped before it reaches the flow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from kiosk.core.flow import (
    CancelTimer,
    Concluded,
    DepositDetected,
    DroppedScan,
    Event,
    Flow,
    IssuanceDone,
    LateOutcome,
    PrintDone,
    PrinterChanged,
    PrintVoucher,
    Resumed,
    Scanned,
    Screen,
    Show,
    StartIssuance,
    StartTimer,
    State,
    Status,
    TimerExpired,
)
from kiosk.core.outcomes import Issued, Source, Unavailable
from kiosk.core.voucher import Voucher
from kiosk.issuance.issuer import Issuer
from kiosk.presentation.view import ScreenView, VoucherView, build_screen_view, build_voucher_view

__all__ = ["KioskApp", "ScanReport", "ScreenOutput", "PrinterOutput"]

log = logging.getLogger(__name__)


class ScreenOutput(Protocol):
    async def show(self, view: ScreenView) -> int:
        """Put a frame on the screen without waiting for it to be painted; return its number."""

    async def settled(self, seq: int) -> bytes | None:
        """Wait (bounded) until frame ``seq`` is visible; return it as PNG when the screen can."""


class PrinterOutput(Protocol):
    async def print_voucher(self, view: VoucherView, job_id: str) -> bytes:
        """Print one voucher (once per ``job_id``); return the bytes sent; raise OSError if not."""


@dataclass
class ScanReport:
    """How one scan ended, with what the customer saw and got, and how long it took."""

    request_id: int
    status: Status
    code: str | None
    voucher: Voucher | None
    source: Source | None
    detail: str | None
    ms: dict[str, float] = field(default_factory=dict)
    screen_png: bytes | None = None
    print_bytes: bytes | None = None
    print_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "source": self.source,
            "code": self.code,
            "voucher": self.voucher.to_json() if self.voucher else None,
            "detail": self.detail if self.status != "issued" else None,
            "printed": self.print_bytes is not None,
            "ms": {name: round(value, 1) for name, value in self.ms.items()},
        }


@dataclass(frozen=True)
class _LocaleChosen:
    locale: str


class KioskApp:
    """Runs one kiosk: ``scan(text)`` from any source, ``run()`` until cancelled."""

    def __init__(
        self,
        flow: Flow,
        issuer: Issuer,
        screen: ScreenOutput,
        printer: PrinterOutput | None,
        *,
        locale: str,
        timezone: str,
        on_report: Callable[[ScanReport], None] | None = None,
        on_dropped: Callable[[DroppedScan], None] | None = None,
        on_shown: Callable[[str], None] | None = None,
        on_screen: Callable[[Screen], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.flow = flow
        self.issuer = issuer
        self.screen = screen
        self.printer = printer
        self.default_locale = locale
        self.locale = locale
        self.timezone = timezone
        self.on_report = on_report
        self.on_dropped = on_dropped
        self.on_shown = on_shown
        self.on_screen = on_screen
        self._clock = clock
        self._events: asyncio.Queue[tuple[Event | _LocaleChosen, float, int]] = asyncio.Queue()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_generation = 0
        self._scan_started: dict[int, float] = {}
        self._issue_ms: dict[int, float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- inputs ---------------------------------------------------------------------------------

    def scan(self, text: str) -> None:
        """A source read a line; call on the event loop."""
        self._events.put_nowait((Scanned(text), self._clock(), 0))

    def resume(self, code: str, issued: Issued) -> None:
        """At start-up: show again a journalled voucher that was never marked shown."""
        self._events.put_nowait((Resumed(code, issued), self._clock(), 0))

    def printer_changed(self, ready: bool) -> None:
        """The printer's monitor saw it become ready or stop being ready; call on the loop."""
        self._events.put_nowait((PrinterChanged(ready), self._clock(), 0))

    def deposit_detected(self) -> None:
        """The drop-slot sensor saw packaging pass; call on the loop."""
        self._events.put_nowait((DepositDetected(), self._clock(), 0))

    def choose_locale(self, locale: str) -> None:
        """A customer picked a language on the screen; it holds until the screen is idle again."""
        self._events.put_nowait((_LocaleChosen(locale), self._clock(), 0))

    async def run(self) -> None:
        """Show the idle screen, then handle events until cancelled."""
        await self.screen.show(build_screen_view(self.flow.screen, self.locale, self.timezone))
        try:
            while True:
                event, received_at, generation = await self._events.get()
                if isinstance(event, _LocaleChosen):
                    self.locale = event.locale
                    await self.screen.show(build_screen_view(self.flow.screen, self.locale, self.timezone))
                    continue
                if isinstance(event, TimerExpired) and generation != self._timer_generation:
                    continue  # a timer that was replaced after it fired
                await self._handle(event, received_at)
        finally:
            self._cancel_timer()
            for task in list(self._tasks):
                task.cancel()

    # --- commands -------------------------------------------------------------------------------

    async def _handle(self, event: Event, received_at: float) -> None:
        was_idle = self.flow.state is State.IDLE
        commands = self.flow.handle(event)
        if self.flow.state is State.IDLE and not was_idle:
            self.locale = self.default_locale  # the next customer starts in the kiosk's language
        concluded: Concluded | None = None
        printing: asyncio.Task[tuple[bytes | None, str | None]] | None = None
        frame = 0
        for command in commands:
            if isinstance(command, StartIssuance):
                self._scan_started[command.request_id] = received_at
                self._spawn(self._issue(command))
            elif isinstance(command, Show):
                view = build_screen_view(command.screen, self.locale, self.timezone)
                frame = await self.screen.show(view)
                if self.on_screen is not None:
                    self.on_screen(command.screen)
            elif isinstance(command, PrintVoucher):
                printing = self._spawn(self._print(command))
            elif isinstance(command, StartTimer):
                self._start_timer(command.seconds)
            elif isinstance(command, CancelTimer):
                self._cancel_timer()
            elif isinstance(command, Concluded):
                concluded = command
            elif isinstance(command, DroppedScan):
                log.info("scan ignored (%s): %r", command.reason, command.text[:80])
                if self.on_dropped is not None:
                    self.on_dropped(command)
            elif isinstance(command, LateOutcome):
                self._late(command)
        if concluded is not None:
            started = self._scan_started.pop(concluded.request_id, received_at)
            self._spawn(self._report(concluded, frame, started, printing))

    async def _issue(self, command: StartIssuance) -> None:
        started = self._clock()
        try:
            outcome = await self.issuer.issue(command.code)
        except Exception as exc:  # an issuer bug must not leave the customer on 'issuing'
            log.exception("issuer failed")
            outcome = Unavailable(f"issuer error: {type(exc).__name__}")
        self._issue_ms[command.request_id] = (self._clock() - started) * 1000
        self._events.put_nowait((IssuanceDone(command.request_id, outcome), self._clock(), 0))

    async def _print(self, command: PrintVoucher) -> tuple[bytes | None, str | None]:
        """Print, then tell the flow how it went (it keeps a voucher up longer when it failed)."""
        if self.printer is None:
            return None, None
        view = build_voucher_view(command.voucher, self.locale, self.timezone)
        try:
            data, error = await self.printer.print_voucher(view, command.voucher.code), None
        except OSError as exc:
            log.error("printing voucher %s failed: %s", command.voucher.code, exc)
            data, error = None, str(exc)
        self._events.put_nowait((PrintDone(command.request_id, error is None, error), self._clock(), 0))
        return data, error

    async def _report(self, concluded: Concluded, frame: int, started: float,
                      printing: asyncio.Task[tuple[bytes | None, str | None]] | None) -> None:  # fmt: skip
        """Report once the result is visible (and printed), timed from the scan to the screen."""
        png = await self.screen.settled(frame)
        ms = {"total": (self._clock() - started) * 1000}
        if concluded.key and self.on_shown is not None:
            self.on_shown(concluded.key)  # the customer has seen it: a restart need not show it again
        if concluded.request_id in self._issue_ms:
            ms["issue"] = self._issue_ms.pop(concluded.request_id)
        report = ScanReport(
            request_id=concluded.request_id,
            status=concluded.status,
            code=concluded.code,
            voucher=concluded.voucher,
            source=concluded.source,
            detail=concluded.detail,
            ms=ms,
            screen_png=png,
        )
        if printing is not None:
            report.print_bytes, report.print_error = await printing
        log.info("scan %s: %s %s", concluded.request_id, concluded.status, concluded.code or "")
        if self.on_report is not None:
            self.on_report(report)

    def _late(self, command: LateOutcome) -> None:
        if isinstance(command.outcome, Issued):
            log.error(
                "voucher %s was issued after the customer was told it failed (request %s)",
                command.outcome.voucher.code,
                command.request_id,
            )
        else:
            log.warning("late issuance result for request %s: %r", command.request_id, command.outcome)

    # --- timer and tasks ------------------------------------------------------------------------

    def _start_timer(self, seconds: float) -> None:
        self._cancel_timer()
        generation = self._timer_generation
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(
            seconds, lambda: self._events.put_nowait((TimerExpired(), self._clock(), generation))
        )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_generation += 1

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("kiosk task failed", exc_info=task.exception())
