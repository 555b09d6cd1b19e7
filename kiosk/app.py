"""The asyncio shell around the pure flow: it feeds events in and carries commands out.

Everything with a clock, a thread or a device lives here or below. Events are handled one at a time
from a queue, in order. The shell owns the flow's single timer: each ``StartTimer`` bumps a
generation number, and an expiry from an older generation is dropped before it reaches the flow.

Nothing a command does can stop the loop: each command runs on its own, and one that raises is
logged once with the scan's context (never a code or link) while the rest of the batch still runs,
so a timer is always set and the next customer is always answered. A screen that cannot be built
falls back to the voucher's plain form (text and code), and failing that to the "backend trouble"
notice. A ``FlowError`` is a bug in the shell: it is logged and the flow goes back to idle.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from kiosk.core.codes import PackagingCode, normalise
from kiosk.core.flow import (
    CancelTimer,
    Command,
    Concluded,
    DepositDetected,
    DroppedScan,
    Event,
    Flow,
    FlowError,
    IssuanceDone,
    LanguageChosen,
    LateOutcome,
    NoticeKind,
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
    Touched,
)
from kiosk.core.outcomes import IssuanceOutcome, Issued, OfflineLimited, Source, Unavailable
from kiosk.core.voucher import Voucher
from kiosk.issuance.issuer import Issuer
from kiosk.logs import fingerprint
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
class _Redraw:
    """Show the current screen again (the offline banner changed): not the customer's business,
    so not the flow's either."""


@dataclass(frozen=True)
class _Probe:
    """A liveness probe (the systemd watchdog's): answered when the loop takes it from the queue."""

    answered: asyncio.Future[None]


class KioskApp:
    """Runs one kiosk: ``scan(text)`` from any source, ``run()`` until cancelled."""

    def __init__(
        self,
        flow: Flow,
        issuer: Issuer,
        screen: ScreenOutput,
        printer: PrinterOutput | None,
        *,
        timezone: str,
        on_report: Callable[[ScanReport], object] | None = None,
        on_dropped: Callable[[DroppedScan], None] | None = None,
        on_shown: Callable[[str], None] | None = None,
        on_screen: Callable[[Screen], None] | None = None,
        on_display: Callable[[str], int] | None = None,
        on_backend: Callable[[bool], bool] | None = None,
        on_view: Callable[[ScreenView], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """``on_shown(key)``: a journalled voucher was seen; ``on_display(key)``: showing it begins
        (the journal counts attempts); ``on_backend(reachable)``: whether the backend answers, each
        time an issuance or the offline service finds out; it returns True when that changed what
        the screen shows (the offline banner), and the current screen is then drawn again;
        ``on_view(view)``: the view that went up, as shown (the plain form when the rich one failed),
        for what follows the screen (speech)."""
        self.flow = flow
        self.issuer = issuer
        self.screen = screen
        self.printer = printer
        self.timezone = timezone
        self.on_report = on_report
        self.on_dropped = on_dropped
        self.on_shown = on_shown
        self.on_screen = on_screen
        self.on_display = on_display
        self.on_backend = on_backend
        self.on_view = on_view
        #: What the last contact said of the backend (an issuance, or the offline service's round).
        self.backend_reachable = True
        self._clock = clock
        self._events: asyncio.Queue[tuple[Event | _Redraw | _Probe, int]] = asyncio.Queue()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_generation = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Scans that came while held (``hold_scans``), and the timer that ends the hold.
        self._held: list[str] | None = None
        self._hold_timer: asyncio.TimerHandle | None = None

    # --- inputs ---------------------------------------------------------------------------------

    @property
    def locale(self) -> str:
        """The language the current customer sees."""
        return self.flow.locale

    def scan(self, text: str) -> None:
        """A source read a line; call on the event loop. While scans are held (``hold_scans``) it
        waits, and is taken when the hold ends."""
        if self._held is not None:
            self._held.append(text)
            return
        self._post(Scanned(text, self._clock()))

    def hold_scans(self, seconds: float) -> None:
        """Hold new scans for ``seconds`` (an upgrade drains the kiosk: the customer at it finishes,
        the next one waits a moment instead of being cut off); call on the loop."""
        if self._held is None:
            self._held = []
        loop = asyncio.get_running_loop()
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        self._hold_timer = loop.call_later(seconds, self._release_scans)

    @property
    def idle(self) -> bool:
        """No customer at the kiosk: the flow is idle and nothing waits to be handled."""
        return self.flow.state is State.IDLE and self._events.empty()

    def _release_scans(self) -> None:
        held, self._held, self._hold_timer = self._held or [], None, None
        for text in held:
            self.scan(text)

    def resume(self, code: str, issued: Issued, *, plain: bool = False) -> None:
        """At start-up: show again a journalled voucher that was never marked shown (``plain``
        when earlier attempts to show it never finished)."""
        self._post(Resumed(code, issued, plain, self._clock()))

    def printer_changed(self, ready: bool) -> None:
        """The printer's monitor saw it become ready or stop being ready; call on the loop."""
        self._post(PrinterChanged(ready))

    def deposit_detected(self) -> None:
        """The drop-slot sensor saw packaging pass; call on the loop."""
        self._post(DepositDetected(self._clock()))

    def choose_locale(self, locale: str) -> None:
        """A customer picked a language on the screen; it holds until the screen is idle again."""
        self._post(LanguageChosen(locale))

    def backend_heard(self, reachable: bool) -> None:
        """Whether the backend answered (an issuance, an offline round); call on the loop."""
        if reachable != self.backend_reachable:
            self.backend_reachable = reachable
            log.warning(
                "backend %s", "reachable again" if reachable else "unreachable: vouchers come from the offline cache"
            )
        if self.on_backend is not None and self.on_backend(reachable):
            self._events.put_nowait((_Redraw(), 0))

    def touched(self) -> None:
        """The customer touched the screen: time to read (a voucher stays up); call on the loop."""
        self._post(Touched())

    async def probe(self) -> None:
        """Return once the loop has reached a probe put behind the events queued now: it is
        handling events, not wedged in one (``kiosk.fleet.notify.Watchdog``)."""
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._events.put_nowait((_Probe(answered), 0))
        await answered

    def _post(self, event: Event, generation: int = 0) -> None:
        self._events.put_nowait((event, generation))

    async def run(self) -> None:
        """Show the current screen, then handle events until cancelled. Under a supervisor this
        may be started again after a failure: it carries on from the flow's current state."""
        await self._show(self.flow.screen)
        try:
            while True:
                event, generation = await self._events.get()
                if isinstance(event, _Redraw):
                    await self._show(self.flow.screen)
                    continue
                if isinstance(event, _Probe):
                    if not event.answered.done():  # a watchdog that gave up waiting cancelled it
                        event.answered.set_result(None)
                    continue
                if isinstance(event, TimerExpired) and generation != self._timer_generation:
                    continue  # a timer that was replaced after it fired
                try:
                    await self._carry_out(self.flow.handle(event))
                except FlowError as exc:
                    log.error(
                        "flow bug (%s in state %s): %s; back to idle",
                        type(event).__name__,
                        self.flow.state.value,
                        exc,
                        exc_info=True,
                    )
                    await self._carry_out(self.flow.reset())
        finally:
            self._cancel_timer()
            for task in list(self._tasks):
                task.cancel()

    # --- commands -------------------------------------------------------------------------------

    async def _carry_out(self, commands: list[Command]) -> None:
        """Carry out one batch; a command that fails is logged and the rest still run."""
        concluded = next((c for c in commands if isinstance(c, Concluded)), None)
        printing: asyncio.Task[tuple[bytes | None, str | None]] | None = None
        frame: int | None = 0
        for command in commands:
            try:
                if isinstance(command, StartIssuance):
                    self._spawn(self._issue(command))
                elif isinstance(command, Show):
                    frame = await self._show(command.screen, concluded.key if concluded else None)
                    if self.on_screen is not None:
                        self.on_screen(command.screen)
                elif isinstance(command, PrintVoucher):
                    printing = self._spawn(self._print(command))
                elif isinstance(command, StartTimer):
                    self._start_timer(command.seconds)
                elif isinstance(command, CancelTimer):
                    self._cancel_timer()
                elif isinstance(command, DroppedScan):
                    log.info("scan ignored (%s): %s", command.reason, _loggable(command.text))
                    if self.on_dropped is not None:
                        self.on_dropped(command)
                elif isinstance(command, LateOutcome):
                    self._late(command)
            except Exception:
                log.exception(
                    "%s failed in state %s (scan %s)",
                    type(command).__name__,
                    self.flow.state.value,
                    concluded.request_id if concluded else "-",
                )
        if concluded is not None:
            self._spawn(self._report(concluded, frame, printing))

    async def _show(self, screen: Screen, key: str | None = None) -> int | None:
        """Put ``screen`` up; returns its frame number, or None when no voucher frame went up.

        A journalled voucher counts an attempt first (``on_display``). When the screen cannot be
        built or shown, the voucher's plain form goes up instead, and failing that the "backend
        trouble" notice: the customer always sees something true."""
        if key is not None and screen.voucher is not None and self.on_display is not None:
            self._bookkeeping(self.on_display, key)
        attempts = [screen]
        if screen.voucher is not None and not screen.plain:
            attempts.append(replace(screen, plain=True))
        for candidate in attempts:
            try:
                view = build_screen_view(candidate, candidate.locale, self.timezone)
                seq = await self.screen.show(view)
            except Exception:
                log.exception(
                    "the %s screen%s could not be shown", screen.state.value, " (plain form)" if candidate.plain else ""
                )
            else:
                self._shown_view(view)
                return seq
        trouble = Screen(State.NOTICE, notice=NoticeKind.BACKEND_TROUBLE, code=screen.code, locale=screen.locale)
        view = build_screen_view(trouble, trouble.locale, self.timezone)
        await self.screen.show(view)
        self._shown_view(view)
        return None

    def _shown_view(self, view: ScreenView) -> None:
        """Hand the view that went up to what follows the screen; its failure never stops the screen."""
        if self.on_view is None:
            return
        try:
            self.on_view(view)
        except Exception:
            log.exception("what follows the screen failed on the %s screen", view.state.value)

    async def _issue(self, command: StartIssuance) -> None:
        started = self._clock()
        try:
            outcome = await self.issuer.issue(command.code)
        except Exception as exc:  # an issuer bug must not leave the customer on 'issuing'
            log.exception("issuer failed (scan %s)", command.request_id)
            outcome = Unavailable(f"issuer error: {type(exc).__name__}")
        self._post(IssuanceDone(command.request_id, outcome, (self._clock() - started) * 1000))
        self.backend_heard(_backend_reachable(outcome))

    async def _print(self, command: PrintVoucher) -> tuple[bytes | None, str | None]:
        """Print, then tell the flow how it went (it keeps a voucher up longer when it failed)."""
        if self.printer is None:
            return None, None
        try:
            view = build_voucher_view(command.voucher, command.locale, self.timezone, plain=command.plain)
        except Exception:
            log.exception(
                "voucher %s could not be laid out for paper; printing its plain form", fingerprint(command.voucher.code)
            )
            view = build_voucher_view(command.voucher, command.locale, self.timezone, plain=True)
        try:
            data, error = await self.printer.print_voucher(view, command.voucher.code), None
        except OSError as exc:
            log.error("printing voucher %s failed: %s", fingerprint(command.voucher.code), exc)
            data, error = None, str(exc)
        except Exception as exc:  # a bug in the layout or the transport: the voucher still stays up
            log.exception("printing voucher %s failed", fingerprint(command.voucher.code))
            data, error = None, f"error: {type(exc).__name__}"
        self._post(PrintDone(command.request_id, error is None, error))
        return data, error

    async def _report(
        self, concluded: Concluded, frame: int | None, printing: asyncio.Task[tuple[bytes | None, str | None]] | None
    ) -> None:
        """Report once the result is visible (and printed), timed from the scan to the screen (the
        flow carries when the scan began and how long its issuance took)."""
        png = None
        if frame is not None:
            try:
                png = await self.screen.settled(frame)
            except Exception:
                log.exception("frame %s of scan %s was not confirmed", frame, concluded.request_id)
        started = concluded.started_at if concluded.started_at is not None else self._clock()
        ms = {"total": (self._clock() - started) * 1000}
        if concluded.key and frame is not None and self.on_shown is not None:
            self._bookkeeping(self.on_shown, concluded.key)  # seen: a restart need not show it again
        if concluded.issue_ms is not None:
            ms["issue"] = concluded.issue_ms
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
        log.info(
            "scan %s: %s %s",
            concluded.request_id,
            concluded.status,
            concluded.code or "",  # a packaging code, not a secret
            extra={"scan_id": concluded.request_id},  # a journal field (kiosk.fleet.journal)
        )
        if self.on_report is not None:
            self.on_report(report)

    @staticmethod
    def _bookkeeping(record: Callable[[str], object], key: str) -> None:
        """The journal's note of a voucher being shown: never a reason not to show it (a full disk)."""
        try:
            record(key)
        except Exception as exc:
            log.error("the journal could not note voucher %s being shown: %s", key, exc)

    def _late(self, command: LateOutcome) -> None:
        if isinstance(command.outcome, Issued):
            log.error(
                "voucher %s was issued after the customer was told it failed (scan %s)",
                fingerprint(command.outcome.voucher.code),
                command.request_id,
            )
        else:
            log.warning("late issuance result for request %s: %r", command.request_id, command.outcome)

    # --- timer and tasks ------------------------------------------------------------------------

    def _start_timer(self, seconds: float) -> None:
        self._cancel_timer()
        generation = self._timer_generation
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(seconds, lambda: self._post(TimerExpired(), generation))

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


def _loggable(text: str) -> str:
    """A scanned text as a log line may hold it: a packaging code as it is; anything else (a
    customer scanning their own voucher's QR hands the kiosk its single-use link) by fingerprint."""
    code = normalise(text)
    return code.value if isinstance(code, PackagingCode) else f"text {fingerprint(text)}"


def _backend_reachable(outcome: IssuanceOutcome) -> bool:
    """Whether an issuance's outcome says the backend answered (the offline banner's source)."""
    if isinstance(outcome, Issued):
        return outcome.source == "online"
    return not isinstance(outcome, (Unavailable, OfflineLimited))
