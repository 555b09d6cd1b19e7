"""The kiosk flow as a state machine: feed it events, get back commands.

Rules this module keeps:
- Nothing here does I/O, reads the clock, sleeps or starts threads. Time enters only as
  ``TimerExpired`` events; the shell owns the one timer and replaces it on every ``StartTimer``.
- Every state has a screen, and every state except IDLE has a timeout.
- The transitions are the table ``TRANSITIONS`` below. An event a state does not list raises
  ``FlowError``: an unexpected event is a bug in the shell, never silently dropped.
- One issuance at a time. A voucher that was issued is always shown and printed; nothing in here can
  discard one (a late result is handed back to the shell as ``LateOutcome``).

    state            event                      next state        commands
    ---------------  -------------------------  ----------------  --------------------------------------
    IDLE             Scanned (valid)            ISSUING           StartIssuance, Show(issuing), StartTimer
    IDLE             Scanned (invalid)          NOTICE            Show(notice), Concluded, StartTimer
    IDLE             IssuanceDone (stale)       IDLE              LateOutcome
    IDLE             Resumed (at start-up)      SHOWING_VOUCHER   as an issued voucher: Show, PrintVoucher, ...
    other states     Resumed                    same              nothing (it stays journalled, unshown)
    IDLE             Scanned (valid, with a     AWAITING_DEPOSIT  Show(drop prompt), StartTimer
                     slot sensor)
    AWAITING_DEPOSIT DepositDetected            ISSUING           StartIssuance, Show(issuing), StartTimer
    AWAITING_DEPOSIT TimerExpired               NOTICE            Show(deposit timeout), Concluded, StartTimer
    AWAITING_DEPOSIT Scanned (same code)        AWAITING_DEPOSIT  DroppedScan, StartTimer; another code: as
                                                                  from IDLE
    AWAITING_DEPOSIT IssuanceDone (stale)       AWAITING_DEPOSIT  LateOutcome
    other states     DepositDetected            same              nothing (no scan, no reward)
    ISSUING          Scanned                    ISSUING           DroppedScan (one issuance at a time)
    ISSUING          IssuanceDone (issued)      SHOWING_VOUCHER   Show(voucher), PrintVoucher, Concluded, StartTimer
    ISSUING          IssuanceDone (no voucher)  NOTICE            Show(notice), Concluded, StartTimer
    ISSUING          IssuanceDone (stale)       ISSUING           LateOutcome
    ISSUING          TimerExpired               NOTICE            Show(backend trouble), Concluded, StartTimer
    SHOWING_VOUCHER  Scanned (same code)        SHOWING_VOUCHER   DroppedScan, StartTimer (keep it up); but
                     when its print failed and  SHOWING_VOUCHER   PrintVoucher (the same job), Show, StartTimer
                     the printer is back
    SHOWING_VOUCHER  Scanned (other valid)      ISSUING           as from IDLE (the next packaging)
    SHOWING_VOUCHER  Scanned (invalid)          NOTICE            as from IDLE (a new customer needs an answer)
    SHOWING_VOUCHER  IssuanceDone (stale)       SHOWING_VOUCHER   LateOutcome
    SHOWING_VOUCHER  TimerExpired               IDLE              Show(idle), CancelTimer
    SHOWING_VOUCHER  PrintDone (its job failed) SHOWING_VOUCHER   Show(printer trouble), StartTimer (longer)
    SHOWING_VOUCHER  PrinterChanged (back, its  SHOWING_VOUCHER   Show(printer back: scan again to print)
                     job had failed)
    NOTICE           Scanned (same code, when   NOTICE            DroppedScan, StartTimer
                     already returned)
    NOTICE           Scanned (other)            as from IDLE
    NOTICE           IssuanceDone (stale)       NOTICE            LateOutcome
    NOTICE           TimerExpired               IDLE              Show(idle), CancelTimer
    any              PrintDone (otherwise)      same              nothing (the shell reports print outcomes)
    any              PrinterChanged (otherwise) same              nothing (the flag is kept for later)
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Union

from kiosk.core.codes import REZIP_URL_HOSTS, PackagingCode, Rejection, normalise
from kiosk.core.outcomes import (
    AlreadyReturned,
    IssuanceOutcome,
    Issued,
    NoneAvailable,
    OfflineLimited,
    Refused,
    Source,
    Unavailable,
)
from kiosk.core.voucher import Voucher

__all__ = [
    "State",
    "NoticeKind",
    "Screen",
    "FlowSettings",
    "Flow",
    "FlowError",
    "Scanned",
    "IssuanceDone",
    "TimerExpired",
    "PrintDone",
    "PrinterChanged",
    "Resumed",
    "DepositDetected",
    "Event",
    "StartIssuance",
    "Show",
    "PrintVoucher",
    "StartTimer",
    "CancelTimer",
    "Concluded",
    "DroppedScan",
    "LateOutcome",
    "Command",
    "Status",
    "TRANSITIONS",
]


class State(enum.Enum):
    IDLE = "idle"
    AWAITING_DEPOSIT = "awaiting_deposit"
    ISSUING = "issuing"
    SHOWING_VOUCHER = "showing_voucher"
    NOTICE = "notice"


class NoticeKind(enum.Enum):
    INVALID_CODE = "invalid_code"
    ALREADY_RETURNED = "already_returned"
    NONE_AVAILABLE = "none_available"
    BACKEND_TROUBLE = "backend_trouble"
    OFFLINE_LIMIT = "offline_limit"
    DEPOSIT_TIMEOUT = "deposit_timeout"


Status = Literal["issued", "invalid", "already_returned", "none_available", "failed"]

_STATUS_OF_NOTICE: dict[NoticeKind, Status] = {
    NoticeKind.INVALID_CODE: "invalid",
    NoticeKind.ALREADY_RETURNED: "already_returned",
    NoticeKind.NONE_AVAILABLE: "none_available",
    NoticeKind.BACKEND_TROUBLE: "failed",
    NoticeKind.OFFLINE_LIMIT: "failed",
    NoticeKind.DEPOSIT_TIMEOUT: "failed",
}


@dataclass(frozen=True)
class Screen:
    """What the screen should show now; renderers turn it into pixels."""

    state: State
    voucher: Voucher | None = None
    notice: NoticeKind | None = None
    #: The specific reason behind a notice (a rejection or the backend's message), for logs and reports.
    detail: str | None = None
    code: str | None = None
    #: Why a scan was not a RE-ZIP code (a ``RejectReason`` value), so the screen can say what to do.
    reason: str | None = None
    #: The voucher's print failed ("trouble"), or failed and the printer is back ("back").
    printer: Literal["trouble", "back"] | None = None
    #: Show the voucher in its plain form (text and code, no QR, logo or formatting that could
    #: fail): for a voucher whose earlier attempts to be shown never finished.
    plain: bool = False


@dataclass(frozen=True)
class FlowSettings:
    """The flow's waits, in seconds."""

    issue_timeout_s: float = 4.0
    voucher_display_s: float = 30.0
    notice_display_s: float = 6.0
    #: A voucher whose print failed stays this much longer, so the customer can scan its QR.
    printer_trouble_extra_s: float = 30.0
    #: With a drop-slot sensor, a valid scan waits for the packaging to pass the slot first.
    deposit_required: bool = False
    deposit_timeout_s: float = 20.0
    #: Hosts whose URLs are unwrapped to the packaging code they carry (see ``kiosk.core.codes``).
    url_hosts: tuple[str, ...] = REZIP_URL_HOSTS


# --- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scanned:
    """A reader produced a line of text (already split at its terminator)."""

    text: str


@dataclass(frozen=True)
class IssuanceDone:
    request_id: int
    outcome: IssuanceOutcome


@dataclass(frozen=True)
class TimerExpired:
    """The shell's one timer ran out."""


@dataclass(frozen=True)
class PrintDone:
    """A voucher's print job ended; ``reason`` says why it failed."""

    request_id: int
    ok: bool
    reason: str | None = None


@dataclass(frozen=True)
class DepositDetected:
    """The drop-slot sensor saw an item pass."""


@dataclass(frozen=True)
class Resumed:
    """At start-up: a journalled voucher that was never shown (the kiosk stopped before).
    ``plain`` when earlier attempts to show it never finished: it is shown and printed plainly."""

    code: str
    issued: Issued
    plain: bool = False


@dataclass(frozen=True)
class PrinterChanged:
    """The printer became ready, or stopped being ready (paper out, cover open, unplugged)."""

    ready: bool


Event = Union[Scanned, IssuanceDone, TimerExpired, PrintDone, PrinterChanged, Resumed, DepositDetected]


# --- commands -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartIssuance:
    request_id: int
    code: PackagingCode


@dataclass(frozen=True)
class Show:
    screen: Screen


@dataclass(frozen=True)
class PrintVoucher:
    voucher: Voucher
    request_id: int
    #: Print it as text only (see ``Screen.plain``).
    plain: bool = False


@dataclass(frozen=True)
class StartTimer:
    """Replace the pending timer (if any) with one that fires after ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class CancelTimer:
    pass


@dataclass(frozen=True)
class Concluded:
    """A scan has reached its result on screen; for reports, logs and the demo's files."""

    request_id: int
    status: Status
    code: str | None
    voucher: Voucher | None = None
    source: Source | None = None
    detail: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class DroppedScan:
    """A scan the flow deliberately did not act on, and why (for the log)."""

    text: str
    reason: str


@dataclass(frozen=True)
class LateOutcome:
    """An issuance finished after the flow stopped waiting for it; the shell must record it."""

    request_id: int
    outcome: IssuanceOutcome


Command = Union[StartIssuance, Show, PrintVoucher, StartTimer, CancelTimer, Concluded, DroppedScan, LateOutcome]


class FlowError(RuntimeError):
    """An event arrived that the current state does not expect: a bug in whoever fed it."""


_Handler = Callable[["Flow", Event], list[Command]]


class Flow:
    """The kiosk's decisions. ``handle(event)`` returns the commands for the shell to carry out."""

    def __init__(self, settings: FlowSettings | None = None) -> None:
        self.settings = settings or FlowSettings()
        self.state = State.IDLE
        self.screen = Screen(State.IDLE)
        self._next_request_id = 1
        self._pending: tuple[int, PackagingCode] | None = None
        #: The voucher on screen: its request and whether its print job failed.
        self._shown: tuple[int, Voucher] | None = None
        self._print_failed = False
        self._printer_ready = True

    def handle(self, event: Event) -> list[Command]:
        handler = TRANSITIONS.get((self.state, type(event)))
        if handler is None:
            raise FlowError(f"{type(event).__name__} is not expected in state {self.state.value}")
        return handler(self, event)

    def reset(self) -> list[Command]:
        """Back to idle after a bug (a ``FlowError``): whatever was pending is let go (an issuance
        still running comes back as a ``LateOutcome``); request numbers keep counting up."""
        self._pending = None
        self._shown = None
        self._print_failed = False
        return self._enter(State.IDLE, Screen(State.IDLE))

    # --- transitions ------------------------------------------------------------------------------

    def _scan_when_ready(self, event: Event) -> list[Command]:
        assert isinstance(event, Scanned)
        result = normalise(event.text, url_hosts=self.settings.url_hosts)
        if isinstance(result, PackagingCode) and self._already_answered(result):
            if self.state is State.SHOWING_VOUCHER and self._print_failed and self._printer_ready:
                return self._reprint()
            # The same packaging held to the reader again: keep what it already earned on screen.
            return [DroppedScan(event.text, "its answer is already on screen"), self._timer_for(self.state)]
        if isinstance(result, Rejection):
            request_id = self._new_request_id()
            return self._enter_notice(
                request_id, NoticeKind.INVALID_CODE, result.message, code=None, reason=result.reason.value
            )
        request_id = self._new_request_id()
        self._pending = (request_id, result)
        if self.settings.deposit_required:
            return self._enter(State.AWAITING_DEPOSIT, Screen(State.AWAITING_DEPOSIT, code=result.value))
        return self._enter(State.ISSUING, Screen(State.ISSUING, code=result.value), StartIssuance(request_id, result))

    def _scan_while_awaiting(self, event: Event) -> list[Command]:
        """The same code again restarts the wait; another valid code replaces it; junk is answered."""
        assert isinstance(event, Scanned) and self._pending is not None
        result = normalise(event.text, url_hosts=self.settings.url_hosts)
        if isinstance(result, PackagingCode) and result.value == self._pending[1].value:
            return [DroppedScan(event.text, "waiting for this packaging in the slot"), self._timer_for(self.state)]
        self._pending = None
        return self._scan_when_ready(event)

    def _deposited(self, event: Event) -> list[Command]:
        assert self._pending is not None
        request_id, code = self._pending
        return self._enter(State.ISSUING, Screen(State.ISSUING, code=code.value), StartIssuance(request_id, code))

    def _deposit_timed_out(self, event: Event) -> list[Command]:
        assert self._pending is not None
        request_id, code = self._pending
        self._pending = None
        return self._enter_notice(
            request_id, NoticeKind.DEPOSIT_TIMEOUT, "no packaging passed the slot", code=code.value
        )

    def _unexpected_deposit(self, event: Event) -> list[Command]:
        """Something fell through the slot without a scan first: nothing to reward."""
        return []

    def _resume_later(self, event: Event) -> list[Command]:
        """A voucher recovered while a customer is served: it waits in the journal (unshown, so the
        next start shows it) rather than take the screen from someone else."""
        return []

    def _already_answered(self, code: PackagingCode) -> bool:
        """The screen already holds this code's final answer: a voucher, or 'already returned'."""
        settled = self.state is State.SHOWING_VOUCHER or self.screen.notice is NoticeKind.ALREADY_RETURNED
        return settled and self.screen.code == code.value

    def _scan_while_issuing(self, event: Event) -> list[Command]:
        assert isinstance(event, Scanned)
        return [DroppedScan(event.text, "an issuance is in progress")]

    def _issuance_done(self, event: Event, *, plain: bool = False) -> list[Command]:
        assert isinstance(event, IssuanceDone)
        if self._pending is None or self._pending[0] != event.request_id:
            return [LateOutcome(event.request_id, event.outcome)]
        request_id, code = self._pending
        self._pending = None
        outcome = event.outcome
        if isinstance(outcome, Issued):
            screen = Screen(State.SHOWING_VOUCHER, voucher=outcome.voucher, code=code.value, plain=plain)
            self._shown = (request_id, outcome.voucher)
            self._print_failed = False
            return self._enter(
                State.SHOWING_VOUCHER,
                screen,
                PrintVoucher(outcome.voucher, request_id, plain=plain),
                Concluded(request_id, "issued", code.value, outcome.voucher, outcome.source, key=outcome.key),
            )
        kind, detail = _notice_for(outcome)
        return self._enter_notice(request_id, kind, detail, code=code.value)

    def _issuance_timed_out(self, event: Event) -> list[Command]:
        assert self._pending is not None
        request_id, code = self._pending
        self._pending = None
        return self._enter_notice(request_id, NoticeKind.BACKEND_TROUBLE, "no answer in time", code=code.value)

    def _late(self, event: Event) -> list[Command]:
        assert isinstance(event, IssuanceDone)
        return [LateOutcome(event.request_id, event.outcome)]

    def _resume(self, event: Event) -> list[Command]:
        """Show (and print) again a voucher the customer may never have seen."""
        assert isinstance(event, Resumed)
        request_id = self._new_request_id()
        self._pending = (request_id, PackagingCode(event.code))
        return self._issuance_done(IssuanceDone(request_id, event.issued), plain=event.plain)

    def _back_to_idle(self, event: Event) -> list[Command]:
        return self._enter(State.IDLE, Screen(State.IDLE))

    def _print_done(self, event: Event) -> list[Command]:
        assert isinstance(event, PrintDone)
        showing = self.state is State.SHOWING_VOUCHER and self._shown is not None
        if event.ok or not showing or self._shown[0] != event.request_id:  # type: ignore[index]
            return []
        self._print_failed = True
        self._printer_ready = False  # until the printer says otherwise (the shell re-reports it)
        return self._show_voucher(printer="trouble", extra_s=True)

    def _printer_changed(self, event: Event) -> list[Command]:
        assert isinstance(event, PrinterChanged)
        was_ready, self._printer_ready = self._printer_ready, event.ready
        if self.state is State.SHOWING_VOUCHER and self._print_failed and event.ready and not was_ready:
            return self._show_voucher(printer="back", extra_s=True)
        return []

    def _reprint(self) -> list[Command]:
        assert self._shown is not None
        request_id, voucher = self._shown
        self._print_failed = False
        return [
            PrintVoucher(voucher, request_id, plain=self.screen.plain),
            *self._show_voucher(printer=None, extra_s=False),
        ]

    def _show_voucher(self, *, printer: Literal["trouble", "back"] | None, extra_s: bool) -> list[Command]:
        screen = Screen(
            State.SHOWING_VOUCHER,
            voucher=self.screen.voucher,
            code=self.screen.code,
            printer=printer,
            plain=self.screen.plain,
        )
        self.screen = screen
        seconds = self.settings.voucher_display_s + (self.settings.printer_trouble_extra_s if extra_s else 0)
        return [Show(screen), StartTimer(seconds)]

    # --- helpers ----------------------------------------------------------------------------------

    def _enter_notice(
        self, request_id: int, kind: NoticeKind, detail: str, *, code: str | None, reason: str | None = None
    ) -> list[Command]:
        screen = Screen(State.NOTICE, notice=kind, detail=detail, code=code, reason=reason)
        status = _STATUS_OF_NOTICE[kind]
        return self._enter(State.NOTICE, screen, Concluded(request_id, status, code, detail=detail))

    def _enter(self, state: State, screen: Screen, *extra: Command) -> list[Command]:
        self.state = state
        self.screen = screen
        return [*extra, Show(screen), self._timer_for(state)]

    def _timer_for(self, state: State) -> StartTimer | CancelTimer:
        seconds = {
            State.AWAITING_DEPOSIT: self.settings.deposit_timeout_s,
            State.ISSUING: self.settings.issue_timeout_s,
            State.SHOWING_VOUCHER: self.settings.voucher_display_s,
            State.NOTICE: self.settings.notice_display_s,
        }.get(state)
        return CancelTimer() if seconds is None else StartTimer(seconds)

    def _new_request_id(self) -> int:
        request_id = self._next_request_id
        self._next_request_id += 1
        return request_id


def _notice_for(outcome: IssuanceOutcome) -> tuple[NoticeKind, str]:
    if isinstance(outcome, AlreadyReturned):
        return NoticeKind.ALREADY_RETURNED, outcome.message
    if isinstance(outcome, NoneAvailable):
        return NoticeKind.NONE_AVAILABLE, outcome.message
    if isinstance(outcome, Refused):
        return NoticeKind.INVALID_CODE, outcome.message
    if isinstance(outcome, Unavailable):
        return NoticeKind.BACKEND_TROUBLE, outcome.reason
    if isinstance(outcome, OfflineLimited):
        return NoticeKind.OFFLINE_LIMIT, outcome.reason
    raise FlowError(f"unknown outcome {outcome!r}")


TRANSITIONS: dict[tuple[State, type], _Handler] = {
    (State.IDLE, Scanned): Flow._scan_when_ready,
    (State.IDLE, IssuanceDone): Flow._late,
    (State.IDLE, Resumed): Flow._resume,
    (State.AWAITING_DEPOSIT, Scanned): Flow._scan_while_awaiting,
    (State.AWAITING_DEPOSIT, DepositDetected): Flow._deposited,
    (State.AWAITING_DEPOSIT, TimerExpired): Flow._deposit_timed_out,
    (State.AWAITING_DEPOSIT, IssuanceDone): Flow._late,
    (State.ISSUING, Scanned): Flow._scan_while_issuing,
    (State.ISSUING, IssuanceDone): Flow._issuance_done,
    (State.ISSUING, TimerExpired): Flow._issuance_timed_out,
    (State.SHOWING_VOUCHER, Scanned): Flow._scan_when_ready,
    (State.SHOWING_VOUCHER, IssuanceDone): Flow._late,
    (State.SHOWING_VOUCHER, TimerExpired): Flow._back_to_idle,
    (State.NOTICE, Scanned): Flow._scan_when_ready,
    (State.NOTICE, IssuanceDone): Flow._late,
    (State.NOTICE, TimerExpired): Flow._back_to_idle,
    **{(state, PrintDone): Flow._print_done for state in State},
    **{(state, PrinterChanged): Flow._printer_changed for state in State},
    **{(state, DepositDetected): Flow._unexpected_deposit for state in State if state is not State.AWAITING_DEPOSIT},
    **{(state, Resumed): Flow._resume_later for state in State if state is not State.IDLE},
}
