"""The kiosk flow as a state machine: feed it events, get back commands.

Rules this module keeps:
- Nothing here does I/O, reads the clock, sleeps or starts threads. Time enters only as data: the
  ``at`` of the events that begin a scan (when the reader produced it) and the issuance's duration in
  ``IssuanceDone``, and as ``TimerExpired`` events; the shell owns the one timer and replaces it on
  every ``StartTimer``.
- Every state has a screen, and every state except IDLE has a timeout.
- ``TRANSITIONS`` is the table: (state, event) -> the handler and the states it may lead to. A
  handler returns the next state with its commands, and ``handle`` refuses (``FlowError``) a next state
  the table does not allow, as it refuses an event a state does not list: an unexpected event is a
  bug in the shell, never silently dropped. The table below is the same data in prose, and a test
  checks the two agree.
- One issuance at a time. A voucher that was issued is always shown and printed; nothing in here can
  discard one (a late result is handed back to the shell as ``LateOutcome``).
- The customer's session lives here: the language chosen on the screen (back to the kiosk's own at
  idle) and the times of the scan being served, carried in the commands that report it.

    state             event             next states                          what happens
    ----------------  ----------------  -----------------------------------  ------------------------------------------------
    idle              Scanned           issuing, awaiting_deposit, notice    a RE-ZIP code is issued (first dropped in the slot
                                                                             with a sensor); anything else gets a notice
    idle              IssuanceDone      idle                                 a stale result: LateOutcome
    idle              Resumed           showing_voucher                      a journalled voucher nobody saw: shown and printed
    awaiting_deposit  Scanned           awaiting_deposit, issuing, notice    the same code restarts the wait; another is a new scan
    awaiting_deposit  DepositDetected   issuing                              the packaging passed the slot: the issuance starts
    awaiting_deposit  TimerExpired      notice                               nothing dropped in time
    awaiting_deposit  IssuanceDone      awaiting_deposit                     a stale result: LateOutcome
    issuing           Scanned           issuing                              ignored: one issuance at a time
    issuing           IssuanceDone      showing_voucher, notice, issuing     the voucher, or a notice; a stale result: LateOutcome
    issuing           TimerExpired      notice                               backend trouble: no answer in time
    showing_voucher   Scanned           showing_voucher, issuing,            the same code keeps the voucher up (and reprints a
                                        awaiting_deposit, notice             failed print once the printer is back); another scan
                                                                             starts over for the next customer
    showing_voucher   IssuanceDone      showing_voucher                      a stale result: LateOutcome
    showing_voucher   TimerExpired      idle                                 the voucher's time is up
    showing_voucher   Touched           showing_voucher                      time to read: the voucher's time starts again, and
                                                                             the screen says it stays up
    notice            Scanned           notice, issuing, awaiting_deposit    the same code keeps "already returned" up; another
                                                                             scan starts over
    notice            IssuanceDone      notice                               a stale result: LateOutcome
    notice            TimerExpired      idle                                 the notice's time is up
    *                 PrintDone         same                                 a failed print keeps the voucher up longer
    *                 PrinterChanged    same                                 the printer back: "scan again to print"
    *                 LanguageChosen    same                                 the screen again, in the customer's language
    * but awaiting    DepositDetected   same                                 nothing passes without a scan first
    * but idle        Resumed           same                                 it waits in the journal for the next start
    * but showing     Touched           same                                 nothing on screen to keep up
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

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
    "LanguageChosen",
    "Touched",
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
    #: The customer touched the voucher screen: it stays up for another full time, and says so.
    kept: bool = False
    #: Show the voucher in its plain form (text and code, no QR, logo or formatting that could
    #: fail): for a voucher whose earlier attempts to be shown never finished.
    plain: bool = False
    #: The customer's language (the kiosk's own unless they chose another on the screen).
    locale: str = "en_GB"


@dataclass(frozen=True)
class FlowSettings:
    """The flow's waits, in seconds, and what it needs to know of the kiosk."""

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
    #: The kiosk's own language: every customer starts in it.
    locale: str = "en_GB"


# --- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scanned:
    """A reader produced a line of text (already split at its terminator) at ``at``."""

    text: str
    at: float = 0.0


@dataclass(frozen=True)
class IssuanceDone:
    """An issuance ended; ``issue_ms`` is how long it took (for the report)."""

    request_id: int
    outcome: IssuanceOutcome
    issue_ms: float | None = None


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
    """The drop-slot sensor saw an item pass, at ``at``."""

    at: float = 0.0


@dataclass(frozen=True)
class Resumed:
    """At start-up: a journalled voucher that was never shown (the kiosk stopped before).
    ``plain`` when earlier attempts to show it never finished: it is shown and printed plainly."""

    code: str
    issued: Issued
    plain: bool = False
    at: float = 0.0


@dataclass(frozen=True)
class PrinterChanged:
    """The printer became ready, or stopped being ready (paper out, cover open, unplugged)."""

    ready: bool


@dataclass(frozen=True)
class LanguageChosen:
    """The customer picked a language on the screen; it holds until the screen is idle again."""

    locale: str


@dataclass(frozen=True)
class Touched:
    """The customer touched the screen (a touch kiosk's page reports it), asking for time to read."""


Event = (
    Scanned
    | IssuanceDone
    | TimerExpired
    | PrintDone
    | PrinterChanged
    | Resumed
    | DepositDetected
    | LanguageChosen
    | Touched
)


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
    locale: str = "en_GB"


@dataclass(frozen=True)
class StartTimer:
    """Replace the pending timer (if any) with one that fires after ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class CancelTimer:
    pass


@dataclass(frozen=True)
class Concluded:
    """A scan has reached its result on screen; for reports, logs and the demo's files. ``started_at``
    is the ``at`` of the event that began it (the scan, or the deposit that started the issuance)."""

    request_id: int
    status: Status
    code: str | None
    voucher: Voucher | None = None
    source: Source | None = None
    detail: str | None = None
    key: str | None = None
    started_at: float | None = None
    issue_ms: float | None = None


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


Command = StartIssuance | Show | PrintVoucher | StartTimer | CancelTimer | Concluded | DroppedScan | LateOutcome


class FlowError(RuntimeError):
    """An event arrived that the current state does not expect, or a handler chose a next state the
    table does not allow: a bug in whoever fed it, or in the flow."""


@dataclass(frozen=True)
class _Pending:
    """The scan being served while awaiting the deposit or issuing."""

    request_id: int
    code: PackagingCode
    started_at: float


@dataclass(frozen=True)
class _Shown:
    """The voucher on screen while showing it."""

    request_id: int
    voucher: Voucher
    code: str
    plain: bool


_Step = tuple[State, list[Command]]


class Flow:
    """The kiosk's decisions. ``handle(event)`` returns the commands for the shell to carry out.

    Besides ``state``, the flow keeps a few extra bits of state, each meaningful only in the states
    named:

    - ``_pending``: the scan being served (its request number, code and start), in AWAITING_DEPOSIT
      and ISSUING;
    - ``_shown``: the voucher on screen, in SHOWING_VOUCHER;
    - ``_answered``: the packaging code whose final answer is on screen (its voucher, or "already
      returned"), so the same packaging held up again keeps that screen instead of asking again;
    - ``_print_failed``: the voucher on screen was not printed; ``_printer_ready``: the printer's last
      word (a reprint waits for it);
    - ``_locale``: the customer's language, the kiosk's own again at idle;
    - ``_next_request_id``: request numbers only ever count up.

    ``screen`` is what the last ``Show`` showed, for the shell to redraw; decisions read the state
    above, never the screen.
    """

    def __init__(self, settings: FlowSettings | None = None) -> None:
        self.settings = settings or FlowSettings()
        self.state = State.IDLE
        self._pending: _Pending | None = None
        self._shown: _Shown | None = None
        self._answered: str | None = None
        self._print_failed = False
        self._printer_ready = True
        self._locale = self.settings.locale
        self._next_request_id = 1
        self.screen = Screen(State.IDLE, locale=self._locale)

    @property
    def locale(self) -> str:
        """The language the current customer sees."""
        return self._locale

    def handle(self, event: Event) -> list[Command]:
        entry = TRANSITIONS.get((self.state, type(event)))
        if entry is None:
            raise FlowError(f"{type(event).__name__} is not expected in state {self.state.value}")
        handler, allowed = entry
        next_state, commands = handler(self, event)
        if next_state not in allowed:
            raise FlowError(f"{type(event).__name__} in state {self.state.value} may not lead to {next_state.value}")
        if next_state is State.IDLE and self.state is not State.IDLE:
            self._locale = self.settings.locale  # the next customer starts in the kiosk's language
        self.state = next_state
        return commands

    def reset(self) -> list[Command]:
        """Back to idle after a bug (a ``FlowError``): whatever was pending is let go (an issuance
        still running comes back as a ``LateOutcome``); request numbers keep counting up."""
        self._pending = self._shown = self._answered = None
        self._print_failed = False
        self._locale = self.settings.locale
        self.state, commands = self._enter(State.IDLE, Screen(State.IDLE))
        return commands

    # --- transitions ------------------------------------------------------------------------------

    def _scan(self, event: Scanned) -> _Step:
        result = normalise(event.text, url_hosts=self.settings.url_hosts)
        if isinstance(result, PackagingCode) and result.value == self._answered:
            if self.state is State.SHOWING_VOUCHER and self._print_failed and self._printer_ready:
                return self._reprint()
            # The same packaging held to the reader again: keep what it already earned on screen.
            return self.state, [DroppedScan(event.text, "its answer is already on screen"), self._timer_for(self.state)]
        self._shown = self._answered = None
        request_id = self._new_request_id()
        if isinstance(result, Rejection):
            return self._enter_notice(
                request_id,
                NoticeKind.INVALID_CODE,
                result.detail,
                code=None,
                reason=result.reason.value,
                started_at=event.at,
            )
        self._pending = _Pending(request_id, result, event.at)
        if self.settings.deposit_required:
            return self._enter(State.AWAITING_DEPOSIT, Screen(State.AWAITING_DEPOSIT, code=result.value))
        return self._enter(State.ISSUING, Screen(State.ISSUING, code=result.value), StartIssuance(request_id, result))

    def _scan_while_awaiting(self, event: Scanned) -> _Step:
        """The same code again restarts the wait; another valid code replaces it; junk is answered."""
        assert self._pending is not None
        result = normalise(event.text, url_hosts=self.settings.url_hosts)
        if isinstance(result, PackagingCode) and result.value == self._pending.code.value:
            return self.state, [
                DroppedScan(event.text, "waiting for this packaging in the slot"),
                self._timer_for(self.state),
            ]
        self._pending = None
        return self._scan(event)

    def _deposited(self, event: DepositDetected) -> _Step:
        assert self._pending is not None
        self._pending = pending = replace(self._pending, started_at=event.at)  # timed from the deposit
        return self._enter(
            State.ISSUING,
            Screen(State.ISSUING, code=pending.code.value),
            StartIssuance(pending.request_id, pending.code),
        )

    def _deposit_timed_out(self, event: TimerExpired) -> _Step:
        pending = self._take_pending()
        return self._enter_notice(
            pending.request_id,
            NoticeKind.DEPOSIT_TIMEOUT,
            "no packaging passed the slot",
            code=pending.code.value,
            started_at=pending.started_at,
        )

    def _unchanged(self, event: Event) -> _Step:
        """Nothing to do: something fell through the slot without a scan first (nothing to reward),
        a voucher was recovered while a customer is served (it waits in the journal, unshown, so
        the next start shows it, rather than take the screen from someone else), or a touch came
        with no voucher on screen to keep up."""
        return self.state, []

    def _scan_while_issuing(self, event: Scanned) -> _Step:
        return self.state, [DroppedScan(event.text, "an issuance is in progress")]

    def _issuance_done(self, event: IssuanceDone, *, plain: bool = False) -> _Step:
        if self._pending is None or self._pending.request_id != event.request_id:
            return self._late(event)
        pending = self._take_pending()
        outcome = event.outcome
        if isinstance(outcome, Issued):
            code = pending.code.value
            self._shown = _Shown(pending.request_id, outcome.voucher, code, plain)
            self._answered = code
            self._print_failed = False
            screen = Screen(State.SHOWING_VOUCHER, voucher=outcome.voucher, code=code, plain=plain)
            return self._enter(
                State.SHOWING_VOUCHER,
                screen,
                PrintVoucher(outcome.voucher, pending.request_id, plain=plain, locale=self._locale),
                Concluded(
                    pending.request_id,
                    "issued",
                    code,
                    outcome.voucher,
                    outcome.source,
                    key=outcome.key,
                    started_at=pending.started_at,
                    issue_ms=event.issue_ms,
                ),
            )
        kind, detail = _notice_for(outcome)
        if kind is NoticeKind.ALREADY_RETURNED:
            self._answered = pending.code.value
        return self._enter_notice(
            pending.request_id,
            kind,
            detail,
            code=pending.code.value,
            started_at=pending.started_at,
            issue_ms=event.issue_ms,
        )

    def _issuance_timed_out(self, event: TimerExpired) -> _Step:
        pending = self._take_pending()
        return self._enter_notice(
            pending.request_id,
            NoticeKind.BACKEND_TROUBLE,
            "no answer in time",
            code=pending.code.value,
            started_at=pending.started_at,
        )

    def _late(self, event: IssuanceDone) -> _Step:
        return self.state, [LateOutcome(event.request_id, event.outcome)]

    def _resume(self, event: Resumed) -> _Step:
        """Show (and print) again a voucher the customer may never have seen."""
        request_id = self._new_request_id()
        self._pending = _Pending(request_id, PackagingCode(event.code), event.at)
        return self._issuance_done(IssuanceDone(request_id, event.issued), plain=event.plain)

    def _back_to_idle(self, event: TimerExpired) -> _Step:
        self._shown = self._answered = None
        return self._enter(State.IDLE, Screen(State.IDLE))

    def _print_done(self, event: PrintDone) -> _Step:
        shown = self._shown
        if event.ok or self.state is not State.SHOWING_VOUCHER or shown is None or shown.request_id != event.request_id:
            return self.state, []
        self._print_failed = True
        self._printer_ready = False  # until the printer says otherwise (the shell re-reports it)
        return self.state, self._show_voucher(printer="trouble", extra_s=True)

    def _printer_changed(self, event: PrinterChanged) -> _Step:
        was_ready, self._printer_ready = self._printer_ready, event.ready
        if self.state is State.SHOWING_VOUCHER and self._print_failed and event.ready and not was_ready:
            return self.state, self._show_voucher(printer="back", extra_s=True)
        return self.state, []

    def _language_chosen(self, event: LanguageChosen) -> _Step:
        self._locale = event.locale
        self.screen = replace(self.screen, locale=event.locale)
        return self.state, [Show(self.screen)]

    def _touched(self, event: Touched) -> _Step:
        """Time to read (WCAG 2.2.1): the voucher stays up for its whole time again, a failed
        print's extra time included."""
        printer: Literal["trouble", "back"] | None = None
        if self._print_failed:
            printer = "back" if self._printer_ready else "trouble"
        return self.state, self._show_voucher(printer=printer, extra_s=self._print_failed, kept=True)

    def _reprint(self) -> _Step:
        assert self._shown is not None
        shown = self._shown
        self._print_failed = False
        return self.state, [
            PrintVoucher(shown.voucher, shown.request_id, plain=shown.plain, locale=self._locale),
            *self._show_voucher(printer=None, extra_s=False),
        ]

    def _show_voucher(
        self, *, printer: Literal["trouble", "back"] | None, extra_s: bool, kept: bool = False
    ) -> list[Command]:
        assert self._shown is not None
        shown = self._shown
        self.screen = Screen(
            State.SHOWING_VOUCHER,
            voucher=shown.voucher,
            code=shown.code,
            printer=printer,
            kept=kept,
            plain=shown.plain,
            locale=self._locale,
        )
        seconds = self.settings.voucher_display_s + (self.settings.printer_trouble_extra_s if extra_s else 0)
        return [Show(self.screen), StartTimer(seconds)]

    # --- helpers ----------------------------------------------------------------------------------

    def _take_pending(self) -> _Pending:
        assert self._pending is not None  # the table only routes here in states that have one
        pending, self._pending = self._pending, None
        return pending

    def _enter_notice(
        self,
        request_id: int,
        kind: NoticeKind,
        detail: str,
        *,
        code: str | None,
        reason: str | None = None,
        started_at: float | None = None,
        issue_ms: float | None = None,
    ) -> _Step:
        screen = Screen(State.NOTICE, notice=kind, detail=detail, code=code, reason=reason)
        concluded = Concluded(
            request_id, _STATUS_OF_NOTICE[kind], code, detail=detail, started_at=started_at, issue_ms=issue_ms
        )
        return self._enter(State.NOTICE, screen, concluded)

    def _enter(self, state: State, screen: Screen, *extra: Command) -> _Step:
        locale = self._locale if state is not State.IDLE else self.settings.locale
        self.screen = replace(screen, locale=locale)
        return state, [*extra, Show(self.screen), self._timer_for(state)]

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


_Handler = Callable[[Flow, Any], _Step]
_S = State
_STARTS = frozenset({_S.ISSUING, _S.AWAITING_DEPOSIT, _S.NOTICE})  # where a new scan can lead

#: (state, event type) -> (handler, the states it may lead to). The module's docstring says the same.
TRANSITIONS: dict[tuple[State, type], tuple[_Handler, frozenset[State]]] = {
    (_S.IDLE, Scanned): (Flow._scan, _STARTS),
    (_S.IDLE, IssuanceDone): (Flow._late, frozenset({_S.IDLE})),
    (_S.IDLE, Resumed): (Flow._resume, frozenset({_S.SHOWING_VOUCHER})),
    (_S.AWAITING_DEPOSIT, Scanned): (Flow._scan_while_awaiting, _STARTS),
    (_S.AWAITING_DEPOSIT, DepositDetected): (Flow._deposited, frozenset({_S.ISSUING})),
    (_S.AWAITING_DEPOSIT, TimerExpired): (Flow._deposit_timed_out, frozenset({_S.NOTICE})),
    (_S.AWAITING_DEPOSIT, IssuanceDone): (Flow._late, frozenset({_S.AWAITING_DEPOSIT})),
    (_S.ISSUING, Scanned): (Flow._scan_while_issuing, frozenset({_S.ISSUING})),
    (_S.ISSUING, IssuanceDone): (Flow._issuance_done, frozenset({_S.SHOWING_VOUCHER, _S.NOTICE, _S.ISSUING})),
    (_S.ISSUING, TimerExpired): (Flow._issuance_timed_out, frozenset({_S.NOTICE})),
    (_S.SHOWING_VOUCHER, Scanned): (Flow._scan, _STARTS | {_S.SHOWING_VOUCHER}),
    (_S.SHOWING_VOUCHER, IssuanceDone): (Flow._late, frozenset({_S.SHOWING_VOUCHER})),
    (_S.SHOWING_VOUCHER, TimerExpired): (Flow._back_to_idle, frozenset({_S.IDLE})),
    (_S.SHOWING_VOUCHER, Touched): (Flow._touched, frozenset({_S.SHOWING_VOUCHER})),
    (_S.NOTICE, Scanned): (Flow._scan, _STARTS),
    (_S.NOTICE, IssuanceDone): (Flow._late, frozenset({_S.NOTICE})),
    (_S.NOTICE, TimerExpired): (Flow._back_to_idle, frozenset({_S.IDLE})),
    **{(state, PrintDone): (Flow._print_done, frozenset({state})) for state in State},
    **{(state, PrinterChanged): (Flow._printer_changed, frozenset({state})) for state in State},
    **{(state, LanguageChosen): (Flow._language_chosen, frozenset({state})) for state in State},
    **{
        (state, DepositDetected): (Flow._unchanged, frozenset({state}))
        for state in State
        if state is not _S.AWAITING_DEPOSIT
    },
    **{(state, Resumed): (Flow._unchanged, frozenset({state})) for state in State if state is not _S.IDLE},
    **{(state, Touched): (Flow._unchanged, frozenset({state})) for state in State if state is not _S.SHOWING_VOUCHER},
}
