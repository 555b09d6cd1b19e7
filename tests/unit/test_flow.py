"""Every (state, event) pair of the flow, walked through the public ``handle``."""

from __future__ import annotations

import pytest

from kiosk.core.flow import (
    TRANSITIONS,
    CancelTimer,
    Concluded,
    DepositDetected,
    DroppedScan,
    Flow,
    FlowError,
    FlowSettings,
    IssuanceDone,
    LanguageChosen,
    LateOutcome,
    NoticeKind,
    PrintDone,
    PrinterChanged,
    PrintVoucher,
    Resumed,
    Scanned,
    Show,
    StartIssuance,
    StartTimer,
    State,
    TimerExpired,
    Touched,
)
from kiosk.core.outcomes import AlreadyReturned, Issued, NoneAvailable, Refused, Unavailable
from kiosk.core.voucher import parse_voucher

CODE = "10HS01JAYSCS07SVDQANFS61TF0XJN"
OTHER = "20GB01JAYSCS07SVDQANFS61TF0XJM"
SETTINGS = FlowSettings(issue_timeout_s=3.5, voucher_display_s=30, notice_display_s=6)
VOUCHER = parse_voucher(
    {"code": "HS-1", "type": "amount", "value": 5000, "unit": "DKK", "conditions": "", "link": "https://s.example/r"}
)


def kinds(commands: list) -> list[type]:
    return [type(c) for c in commands]


def of(commands: list, kind: type):
    found = [c for c in commands if isinstance(c, kind)]
    assert len(found) == 1, commands
    return found[0]


def issuing() -> tuple[Flow, int]:
    flow = Flow(SETTINGS)
    start = of(flow.handle(Scanned(CODE)), StartIssuance)
    return flow, start.request_id


def showing() -> Flow:
    flow, request_id = issuing()
    flow.handle(IssuanceDone(request_id, Issued(VOUCHER, "online")))
    return flow


RETURNED_BEFORE = AlreadyReturned("returned before")


def notice(outcome=RETURNED_BEFORE) -> Flow:
    flow, request_id = issuing()
    flow.handle(IssuanceDone(request_id, outcome))
    return flow


def test_starts_idle_with_the_idle_screen() -> None:
    flow = Flow()
    assert flow.state is State.IDLE and flow.screen.state is State.IDLE


def test_idle_valid_scan_starts_issuance() -> None:
    flow = Flow(SETTINGS)
    commands = flow.handle(Scanned(f" {CODE}\r\n"))
    assert kinds(commands) == [StartIssuance, Show, StartTimer]
    assert of(commands, StartIssuance).code.value == CODE
    assert of(commands, Show).screen.state is State.ISSUING
    assert of(commands, StartTimer).seconds == SETTINGS.issue_timeout_s
    assert flow.state is State.ISSUING


def test_idle_invalid_scan_shows_notice_and_never_issues() -> None:
    flow = Flow(SETTINGS)
    commands = flow.handle(Scanned("5701234567899"))
    assert kinds(commands) == [Concluded, Show, StartTimer]
    assert of(commands, Concluded).status == "invalid"
    assert of(commands, Show).screen.notice is NoticeKind.INVALID_CODE
    assert of(commands, StartTimer).seconds == SETTINGS.notice_display_s
    assert flow.state is State.NOTICE


def test_idle_late_result_is_handed_back() -> None:
    flow = Flow(SETTINGS)
    commands = flow.handle(IssuanceDone(99, Issued(VOUCHER, "online")))
    assert kinds(commands) == [LateOutcome]
    assert flow.state is State.IDLE


def test_idle_timer_is_an_error() -> None:
    with pytest.raises(FlowError):
        Flow().handle(TimerExpired())


def test_issuing_drops_other_scans() -> None:
    flow, _ = issuing()
    commands = flow.handle(Scanned(OTHER))
    assert kinds(commands) == [DroppedScan]
    assert flow.state is State.ISSUING


def test_issuing_issued_shows_prints_and_concludes() -> None:
    flow, request_id = issuing()
    commands = flow.handle(IssuanceDone(request_id, Issued(VOUCHER, "offline")))
    assert set(kinds(commands)) == {PrintVoucher, Concluded, Show, StartTimer}
    assert of(commands, PrintVoucher).voucher == VOUCHER
    concluded = of(commands, Concluded)
    assert (concluded.status, concluded.source, concluded.code) == ("issued", "offline", CODE)
    assert of(commands, Show).screen.voucher == VOUCHER
    assert of(commands, StartTimer).seconds == SETTINGS.voucher_display_s
    assert flow.state is State.SHOWING_VOUCHER


@pytest.mark.parametrize(
    "outcome, notice_kind, status",
    [
        (AlreadyReturned("x"), NoticeKind.ALREADY_RETURNED, "already_returned"),
        (NoneAvailable("x"), NoticeKind.NONE_AVAILABLE, "none_available"),
        (Refused("unknown packaging"), NoticeKind.INVALID_CODE, "invalid"),
        (Unavailable("HTTP 503"), NoticeKind.BACKEND_TROUBLE, "failed"),
    ],
)
def test_issuing_without_voucher_shows_the_right_notice(outcome, notice_kind, status) -> None:
    flow, request_id = issuing()
    commands = flow.handle(IssuanceDone(request_id, outcome))
    assert PrintVoucher not in kinds(commands)
    assert of(commands, Show).screen.notice is notice_kind
    assert of(commands, Concluded).status == status
    assert flow.state is State.NOTICE


def test_issuing_stale_result_is_late_and_keeps_waiting() -> None:
    flow, request_id = issuing()
    commands = flow.handle(IssuanceDone(request_id + 100, Issued(VOUCHER, "online")))
    assert kinds(commands) == [LateOutcome]
    assert flow.state is State.ISSUING


def test_issuing_timeout_is_backend_trouble_and_later_result_is_late() -> None:
    flow, request_id = issuing()
    commands = flow.handle(TimerExpired())
    assert of(commands, Concluded).status == "failed"
    assert of(commands, Show).screen.notice is NoticeKind.BACKEND_TROUBLE
    assert flow.state is State.NOTICE
    late = flow.handle(IssuanceDone(request_id, Issued(VOUCHER, "online")))
    assert kinds(late) == [LateOutcome] and late[0].outcome.voucher == VOUCHER


def test_showing_same_code_keeps_the_voucher() -> None:
    flow = showing()
    commands = flow.handle(Scanned(CODE + "\r"))
    assert kinds(commands) == [DroppedScan, StartTimer]
    assert flow.state is State.SHOWING_VOUCHER and flow.screen.voucher == VOUCHER


def test_showing_next_packaging_issues_again() -> None:
    flow = showing()
    commands = flow.handle(Scanned(OTHER))
    assert of(commands, StartIssuance).code.value == OTHER
    assert flow.state is State.ISSUING


def test_showing_invalid_scan_answers_with_a_notice() -> None:
    flow = showing()
    commands = flow.handle(Scanned("hello"))
    assert of(commands, Concluded).status == "invalid"
    assert flow.state is State.NOTICE


def test_showing_late_result() -> None:
    flow = showing()
    assert kinds(flow.handle(IssuanceDone(42, NoneAvailable("x")))) == [LateOutcome]


def test_showing_timeout_returns_to_idle() -> None:
    flow = showing()
    commands = flow.handle(TimerExpired())
    assert kinds(commands) == [Show, CancelTimer]
    assert flow.state is State.IDLE and of(commands, Show).screen.state is State.IDLE


def test_notice_same_already_returned_code_keeps_notice() -> None:
    flow = notice()
    commands = flow.handle(Scanned(CODE))
    assert kinds(commands) == [DroppedScan, StartTimer]
    assert flow.state is State.NOTICE


def test_notice_after_backend_trouble_same_code_tries_again() -> None:
    flow = notice(Unavailable("timeout"))
    commands = flow.handle(Scanned(CODE))
    assert of(commands, StartIssuance).code.value == CODE


def test_notice_other_scans_behave_as_from_idle() -> None:
    flow = notice()
    assert StartIssuance in kinds(flow.handle(Scanned(OTHER)))
    flow = notice()
    commands = flow.handle(Scanned("not a code"))
    assert of(commands, Show).screen.notice is NoticeKind.INVALID_CODE


def test_notice_late_result_and_timeout() -> None:
    flow = notice()
    assert kinds(flow.handle(IssuanceDone(77, NoneAvailable("x")))) == [LateOutcome]
    assert kinds(flow.handle(TimerExpired())) == [Show, CancelTimer]
    assert flow.state is State.IDLE


def test_table_covers_every_pair_except_the_idle_timer() -> None:
    events = {Scanned, IssuanceDone, TimerExpired, PrintDone, PrinterChanged, Resumed, DepositDetected, Touched}
    missing = {(state, event) for state in State for event in events} - set(TRANSITIONS)
    assert missing == {(State.IDLE, TimerExpired)}


DEPOSIT = FlowSettings(
    issue_timeout_s=3.5, voucher_display_s=30, notice_display_s=6, deposit_required=True, deposit_timeout_s=15
)


def test_with_a_slot_sensor_a_valid_scan_waits_for_the_deposit_then_issues() -> None:
    flow = Flow(DEPOSIT)
    commands = flow.handle(Scanned(CODE))
    assert StartIssuance not in kinds(commands)
    assert of(commands, Show).screen.state is State.AWAITING_DEPOSIT
    assert of(commands, StartTimer).seconds == 15
    assert kinds(flow.handle(Scanned(CODE))) == [DroppedScan, StartTimer]  # held again: still waiting
    commands = flow.handle(DepositDetected())
    assert of(commands, StartIssuance).code.value == CODE and flow.state is State.ISSUING


def test_no_deposit_in_time_is_a_notice_and_nothing_is_issued() -> None:
    flow = Flow(DEPOSIT)
    flow.handle(Scanned(CODE))
    commands = flow.handle(TimerExpired())
    assert of(commands, Show).screen.notice is NoticeKind.DEPOSIT_TIMEOUT
    assert of(commands, Concluded).status == "failed" and StartIssuance not in kinds(commands)


def test_another_code_while_waiting_replaces_the_first_and_junk_is_answered() -> None:
    flow = Flow(DEPOSIT)
    flow.handle(Scanned(CODE))
    flow.handle(Scanned(OTHER))
    assert flow.state is State.AWAITING_DEPOSIT and flow.screen.code == OTHER
    assert of(flow.handle(DepositDetected()), StartIssuance).code.value == OTHER
    flow = Flow(DEPOSIT)
    flow.handle(Scanned(CODE))
    assert of(flow.handle(Scanned("hello")), Show).screen.notice is NoticeKind.INVALID_CODE


def test_a_deposit_without_a_scan_changes_nothing() -> None:
    for flow in (Flow(DEPOSIT), showing(), notice()):
        state = flow.state
        assert flow.handle(DepositDetected()) == [] and flow.state is state


def test_resumed_voucher_is_shown_and_printed_again() -> None:
    flow = Flow(SETTINGS)
    commands = flow.handle(Resumed(CODE, Issued(VOUCHER, "offline", key="k-1")))
    assert of(commands, PrintVoucher).voucher == VOUCHER
    concluded = of(commands, Concluded)
    assert (concluded.status, concluded.source, concluded.key) == ("issued", "offline", "k-1")
    assert flow.state is State.SHOWING_VOUCHER
    # A voucher recovered while someone is served waits in the journal: it never takes the screen.
    assert flow.handle(Resumed(CODE, Issued(VOUCHER, "offline"))) == [] and flow.state is State.SHOWING_VOUCHER


def test_print_failure_keeps_the_voucher_longer_and_the_printer_return_offers_a_reprint() -> None:
    flow, request_id = issuing()
    flow.handle(IssuanceDone(request_id, Issued(VOUCHER, "online")))
    trouble = flow.handle(PrintDone(request_id, ok=False, reason="paper_out"))
    assert of(trouble, Show).screen.printer == "trouble"
    assert of(trouble, StartTimer).seconds == SETTINGS.voucher_display_s + SETTINGS.printer_trouble_extra_s
    assert kinds(flow.handle(Scanned(CODE))) == [DroppedScan, StartTimer]  # printer not back: no reprint
    back = flow.handle(PrinterChanged(ready=True))
    assert of(back, Show).screen.printer == "back"
    reprint = flow.handle(Scanned(CODE))
    assert of(reprint, PrintVoucher).request_id == request_id and of(reprint, Show).screen.printer is None
    assert kinds(flow.handle(Scanned(CODE))) == [DroppedScan, StartTimer]  # printed again only once
    assert flow.handle(PrintDone(request_id, ok=True)) == []


def test_print_outcomes_and_printer_changes_elsewhere_change_nothing() -> None:
    for flow in (Flow(SETTINGS), issuing()[0], notice()):
        assert flow.handle(PrintDone(1, ok=False, reason="x")) == []
        assert flow.handle(PrinterChanged(ready=False)) == []


def test_every_state_but_idle_has_a_timeout_and_every_screen_matches_its_state() -> None:
    for flow in (issuing()[0], showing(), notice()):
        assert flow.screen.state is flow.state
    assert [type(c) for c in Flow(SETTINGS).handle(Scanned(CODE))][-1] is StartTimer


def test_request_ids_are_unique_per_scan() -> None:
    flow = Flow(SETTINGS)
    first = of(flow.handle(Scanned(CODE)), StartIssuance).request_id
    flow.handle(IssuanceDone(first, NoneAvailable("x")))
    second = of(flow.handle(Scanned(OTHER)), StartIssuance).request_id
    assert second != first


def _documented_transitions() -> dict[tuple[State, str], frozenset[State]]:
    """The module docstring's table, read as data: rows of state, event and next states (a row may
    go on below its first line; "*" is every state, "* but X" every state but those starting X)."""
    import re

    from kiosk.core import flow as module

    rows: list[list[str]] = []
    for line in module.__doc__.splitlines():
        match = re.match(r"    (\* but \w+|\*|[a-z_]+)\s+([A-Z]\w+)\s+(.*?)(\s{2,}.*)?$", line)
        if match:
            rows.append([match.group(1), match.group(2), match.group(3)])
        elif rows and re.match(r"\s{40}[a-z_]", line) and rows[-1][2].endswith(","):
            rows[-1][2] += " " + line.strip().split("  ")[0]
    table: dict[tuple[State, str], frozenset[State]] = {}
    for where, event, nexts in rows:
        if where.startswith("*"):
            states = [s for s in State if not (where.startswith("* but ") and s.value.startswith(where[6:]))]
        else:
            states = [State(where)]
        for state in states:
            names = [n.strip() for n in nexts.split(",")]
            table[(state, event)] = frozenset(state if n == "same" else State(n) for n in names)
    return table


def test_the_docstring_table_is_the_transition_table() -> None:
    data = {(state, event.__name__): allowed for (state, event), (_, allowed) in TRANSITIONS.items()}
    assert _documented_transitions() == data


def test_a_handler_that_chooses_a_next_state_the_table_does_not_allow_is_a_flow_error() -> None:
    flow = Flow(SETTINGS)
    strict = dict(TRANSITIONS)
    strict[(State.IDLE, Scanned)] = (TRANSITIONS[(State.IDLE, Scanned)][0], frozenset({State.NOTICE}))
    import kiosk.core.flow as module

    original = module.TRANSITIONS
    module.TRANSITIONS = strict
    try:
        with pytest.raises(FlowError, match="may not lead to issuing"):
            flow.handle(Scanned(CODE))
    finally:
        module.TRANSITIONS = original
    assert flow.state is State.IDLE  # refused before anything changed the state


def test_the_chosen_language_lives_in_the_flow_and_returns_to_the_kiosks_at_idle() -> None:
    flow = Flow(FlowSettings(issue_timeout_s=3.5, voucher_display_s=30, notice_display_s=6, locale="da_DK"))
    assert of(flow.handle(LanguageChosen("de_DE")), Show).screen.locale == "de_DE"
    start = of(flow.handle(Scanned(CODE, at=5.0)), StartIssuance)
    shown = flow.handle(IssuanceDone(start.request_id, Issued(VOUCHER, "online"), issue_ms=12.5))
    assert of(shown, Show).screen.locale == "de_DE" and of(shown, PrintVoucher).locale == "de_DE"
    assert flow.handle(TimerExpired()) and flow.locale == "da_DK" and flow.screen.locale == "da_DK"


def test_a_scans_times_travel_with_it_and_nothing_is_kept_for_one_that_timed_out() -> None:
    flow = Flow(SETTINGS)
    start = of(flow.handle(Scanned(CODE, at=10.0)), StartIssuance)
    timed_out = of(flow.handle(TimerExpired()), Concluded)
    assert (timed_out.started_at, timed_out.issue_ms) == (10.0, None)
    late = flow.handle(IssuanceDone(start.request_id, Issued(VOUCHER, "online"), issue_ms=9000.0))
    assert kinds(late) == [LateOutcome]
    again = of(flow.handle(Scanned(OTHER, at=20.0)), StartIssuance)
    done = of(flow.handle(IssuanceDone(again.request_id, NoneAvailable("none"), issue_ms=40.0)), Concluded)
    assert (done.started_at, done.issue_ms, done.status) == (20.0, 40.0, "none_available")
    invalid = of(flow.handle(Scanned("hello", at=30.0)), Concluded)
    assert (invalid.started_at, invalid.issue_ms) == (30.0, None)


def test_a_touch_keeps_the_voucher_up_for_its_whole_time_and_says_so() -> None:
    flow = showing()
    commands = flow.handle(Touched())
    assert kinds(commands) == [Show, StartTimer] and of(commands, StartTimer).seconds == 30
    assert of(commands, Show).screen.kept and of(commands, Show).screen.voucher == VOUCHER
    assert flow.state is State.SHOWING_VOUCHER
    # a failed print: the touch keeps the printer's notice and its extra time
    flow.handle(PrintDone(1, ok=False, reason="paper out"))
    commands = flow.handle(Touched())
    assert of(commands, Show).screen.printer == "trouble" and of(commands, Show).screen.kept
    assert of(commands, StartTimer).seconds == 30 + SETTINGS.printer_trouble_extra_s
    flow.handle(PrinterChanged(True))
    assert of(flow.handle(Touched()), Show).screen.printer == "back"
    # the next voucher starts without the note
    commands = flow.handle(Scanned(OTHER))
    start = of(commands, StartIssuance)
    assert not of(flow.handle(IssuanceDone(start.request_id, Issued(VOUCHER, "online"))), Show).screen.kept


@pytest.mark.parametrize("where", ["idle", "issuing", "notice"])
def test_a_touch_without_a_voucher_on_screen_changes_nothing(where: str) -> None:
    flow = {"idle": lambda: Flow(SETTINGS), "issuing": lambda: issuing()[0], "notice": notice}[where]()
    state = flow.state
    assert flow.handle(Touched()) == [] and flow.state is state
