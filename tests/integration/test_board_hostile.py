"""Hostile frames from the I/O board's side of the line, against the whole running kiosk.

The kiosk runs as in production (``open_kiosk``: the stand-in backend of ``demo_world``, a file
printer, a drop-slot sensor) with its ``[board]`` on a pseudo-terminal; on the other end a Python
stand-in board (``board_peer.BoardPeer``) does the handshake and then sends what hypothesis makes
up: garbage, truncated frames, frames of unknown types with a good CRC, oversized bodies, replays
of frames from earlier sessions, repeated sequence numbers, hellos with odd JSON, slot and scan
bodies of every kind. After each sequence the next customer's scan and deposit must end in a
voucher, nothing in it may have deposited or asked the backend for anything, the driver's status
must say what happened, and the log must hold no traceback and no secret.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kiosk.app import ScanReport
from kiosk.board import link
from kiosk.config import load_config
from kiosk.core.codes import Rejection, normalise
from kiosk.core.flow import State
from kiosk.devices.board.io_board import IoBoard
from kiosk.devices.scanner.assembler import scan_text
from kiosk.devices.scanner.scan_filter import ScanFilter
from kiosk.runtime import RunningKiosk, open_kiosk
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK
from kiosk.sim.kiosk_config import write_kiosk_config
from kiosk.sim.world import demo_world
from kiosk.supervisor import Supervisor
from tests.integration.board_peer import BoardPeer, kiosk_reads_hello

pytestmark = pytest.mark.integration

#: Fresh packaging codes of the demo shop whose on-demand pool never runs dry.
_SERIALS = itertools.count(10000)


def fresh_code() -> str:
    return f"10HS{next(_SERIALS):05d}"


class LogRecorder(logging.Handler):
    """Every record logged while the harness runs, for the traceback and secrets checks."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.records)


class Harness:
    """The running kiosk, its board driver and the peer, and what the test has seen so far. (Not a
    dataclass: hypothesis prints a dataclass argument field by field, reports and all.)"""

    def __init__(
        self,
        kiosk: RunningKiosk,
        board: IoBoard,
        peer: BoardPeer,
        backend_url: str,
        logs: LogRecorder,
        reports: list[ScanReport],
        thread_errors: list[Any],
    ) -> None:
        self.kiosk, self.board, self.peer, self.backend_url, self.logs = kiosk, board, peer, backend_url, logs
        self.reports, self.thread_errors = reports, thread_errors
        self.deposits: list[None] = []
        self.issued: set[str] = set()
        self.secrets: set[str] = {DEMO_KIOSK_TOKEN}

    def __repr__(self) -> str:
        return f"Harness(board={self.board.device}, reports={len(self.reports)})"

    @property
    def state(self) -> State:
        return self.kiosk.app.flow.state

    def backend_scans(self) -> int:
        return len(httpx.get(self.backend_url + "/_sim/state").json()["scans"])

    def session_open(self, adoptions_before: int) -> bool:
        """The peer took a new nonce and the kiosk has its echo: a new session is up."""
        return self.peer.adoptions > adoptions_before and self.board.state == "open"

    def settle(self, tag: str) -> None:
        """Wait until the kiosk has read everything sent so far: a final frame comes back as an error."""
        for _ in range(20):
            self.peer.write(b"\x00")  # ends a partial frame, if one is left; an empty frame counts as nothing
            self.peer.send(link.ERROR, tag.encode())
            if self.peer.wait_for(lambda: tag in self.board.errors, 0.5):
                return
        raise AssertionError(f"the kiosk never read {tag}")

    def serve_next_customer(self) -> ScanReport:
        """A fresh code scanned on the board, the packaging dropped when asked: its report."""
        code, before = fresh_code(), len(self.reports)
        self.peer.send(link.SCAN, code.encode())
        assert self.peer.wait_for(
            lambda: self.state is State.AWAITING_DEPOSIT and self.kiosk.app.flow.screen.code == code
        ), self.state
        deposit = self.peer.send(link.SLOT, link.ITEM_PASSED)
        assert self.peer.wait_for(lambda: any(r.code == code for r in self.reports[before:]), 10.0), "no report"
        (report,) = [r for r in self.reports[before:] if r.code == code]
        assert report.status == "issued" and report.voucher is not None, (report.status, report.detail)
        assert report.voucher.code not in self.issued, "a code was issued twice"
        self.issued.add(report.voucher.code)
        self.secrets |= {report.voucher.code, *([report.voucher.link] if report.voucher.link else [])}
        # The same deposit frame again (its sequence number seen) is no second deposit.
        deposits = len(self.deposits)
        self.peer.write(deposit, link.SLOT, self.peer.nonce)
        self.settle(f"after {code}")
        assert len(self.deposits) == deposits
        return report

    def check_logs(self) -> None:
        assert not self.thread_errors, self.thread_errors
        assert not [r for r in self.logs.records if r.exc_info], "a traceback was logged"
        text = self.logs.text()
        assert "Traceback" not in text
        leaked = [secret for secret in self.secrets if secret in text]
        assert not leaked, f"secrets in the log: {leaked}"
        assert not any(ord(char) < 32 and char not in "\n" for char in text), "control characters reached the log"


@contextmanager
def running_kiosk(folder: Path) -> Iterator[Harness]:
    """The whole kiosk on its own event loop in a thread, its board the peer's pseudo-terminal."""
    logs = LogRecorder()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(logs)
    root.setLevel(logging.INFO)
    old_hook = threading.excepthook
    thread_errors: list[Any] = []
    threading.excepthook = thread_errors.append
    peer = BoardPeer()
    started = threading.Event()
    holder: dict[str, Any] = {}
    try:
        with demo_world(folder) as world:
            config_path = write_kiosk_config(
                folder / "kiosk.toml",
                backend_url=world.url,
                token=DEMO_KIOSK_TOKEN,
                drop_point=DROP_POINT_DK,
                screen_type="none",
                board_device=peer.device,
                slot_sensor=True,
            )
            config = load_config(config_path)
            reports: list[ScanReport] = []

            async def main() -> None:
                try:
                    async with open_kiosk(config, on_report=reports.append, background=False) as kiosk:
                        holder.update(loop=asyncio.get_running_loop(), kiosk=kiosk, stop=asyncio.Event())
                        started.set()
                        await holder["stop"].wait()
                finally:
                    started.set()

            thread = threading.Thread(target=lambda: holder.update(error=_run(main)), name="kiosk-loop")
            thread.start()
            started.wait(30)
            assert "kiosk" in holder, holder.get("error")
            kiosk: RunningKiosk = holder["kiosk"]
            (board,) = [source for source in kiosk.sources if isinstance(source, IoBoard)]
            harness = Harness(kiosk, board, peer, world.url, logs, reports, thread_errors)
            deposit = board.on_deposit
            assert deposit is not None

            def counted() -> None:
                harness.deposits.append(None)
                deposit()

            board.on_deposit = counted
            assert peer.wait_for(lambda: board.state == "open", 10), "no handshake"
            try:
                yield harness
            finally:
                holder["loop"].call_soon_threadsafe(holder["stop"].set)
                thread.join(30)
                assert holder.get("error") is None, holder["error"]
    finally:
        peer.close()
        threading.excepthook = old_hook
        root.removeHandler(logs)
        root.setLevel(old_level)


def _run(main: Any) -> BaseException | None:
    try:
        asyncio.run(main())
    except BaseException as exc:  # handed to the test thread, which raises it
        return exc
    return None


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with running_kiosk(tmp_path_factory.mktemp("hostile-board")) as running:
        yield running


# --- what a hostile board sends ------------------------------------------------------------------


def _no_code(body: bytes) -> bool:
    """A scan body the kiosk will never take for a packaging code."""
    accepted = ScanFilter(debounce_s=0).accept(scan_text(body), 0.0)
    return accepted is None or isinstance(normalise(accepted), Rejection)


ODD_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
HELLO_BODIES = st.one_of(
    st.binary(max_size=60),  # not JSON, or not UTF-8
    ODD_JSON.map(lambda doc: json.dumps(doc).encode()),  # JSON, mostly not an object
    st.dictionaries(st.sampled_from(["fw", "nonce", "manifest"]), ODD_JSON, max_size=3).map(
        lambda doc: json.dumps(doc).encode()
    ),  # an object whose nonce, if any, is not well formed
    st.text("0123456789abcdefXYZ", min_size=15, max_size=17).map(lambda text: json.dumps({"nonce": text}).encode()),
    st.just(b'{"fw": NaN, "nonce": NaN}'),
)
ACTIONS = st.one_of(
    st.tuples(st.just("garbage"), st.binary(min_size=1, max_size=700)),
    st.tuples(st.just("truncated"), st.sampled_from(link.TYPES), st.binary(max_size=60), st.integers(1, 1000)),
    st.tuples(
        st.just("unknown type"), st.integers(0, 255).filter(lambda kind: kind not in link.TYPES), st.binary(max_size=60)
    ),
    st.tuples(
        st.just("huge"),
        st.sampled_from([link.SCAN, link.SLOT, link.HELLO, link.ERROR]),
        st.integers(link.MAX_FRAME + 1, 4096),
    ),
    st.tuples(st.just("replay"), st.integers(0, 10**6)),
    st.tuples(st.just("replay hello"), st.integers(0, 10**6)),
    st.tuples(st.just("hello"), HELLO_BODIES),
    st.tuples(st.just("odd echo"), st.dictionaries(st.text(max_size=6), ODD_JSON, max_size=3)),
    st.tuples(st.just("slot"), st.binary(max_size=40).filter(lambda body: body != link.ITEM_PASSED)),
    st.tuples(
        st.just("scan"),
        st.one_of(
            st.binary(max_size=300),
            st.text(max_size=40).map(lambda text: ("10HS\x1b[2J" + text).encode()),
            st.binary(max_size=40).map(lambda noise: b"10HS0042\xff" + noise),
        ).filter(_no_code),
    ),
    st.tuples(st.just("repeated error"), st.integers(0, 10**9)),
    st.tuples(st.just("wrong way"), st.sampled_from([link.LIGHTS, link.BUZZER]), st.binary(max_size=30)),
)


@dataclass
class Expected:
    rejected: int = 0
    renewed: bool = False
    errors_once: list[str] = field(default_factory=list)


def act(h: Harness, action: tuple[Any, ...], expected: Expected) -> None:
    """Send one hostile action, and note what the kiosk must make of it."""
    peer, name = h.peer, action[0]
    if name == "garbage":
        peer.write(action[1] + b"\x00")
        expected.rejected += sum(1 for piece in action[1].split(b"\x00") if piece)
    elif name == "truncated":
        frame = peer.frame(action[1], action[2])
        peer.write(frame[: 1 + action[3] % (len(frame) - 2)] + b"\x00")
        expected.rejected += 1
    elif name == "unknown type":
        peer.write(peer.frame(action[1], action[2]))
        expected.rejected += 1
    elif name == "huge":
        peer.write(peer.frame(action[1], b"\x07" * action[2]))
        expected.rejected += 1
    elif name in ("replay", "replay hello"):
        # Frames the peer sent in earlier sessions (every hello it recorded echoes its session's nonce).
        hello, before = name == "replay hello", peer.adoptions
        old = [
            frame
            for kind, frame, nonce in peer.sent
            if kind is not None and (kind == link.HELLO) == hello and nonce not in (peer.nonce, b"")
        ]
        if not old:  # nothing recorded yet: a frame of a session that never was
            never = b"\x5a" * link.NONCE_SIZE
            old = [
                peer.frame(link.HELLO, link.hello_body(peer.IDENTITY, never))
                if hello
                else peer.frame(link.SLOT, link.ITEM_PASSED, nonce=never)
            ]
        replayed = old[action[1] % len(old)]
        peer.write(replayed)
        if hello and kiosk_reads_hello(replayed):
            expected.renewed = True
            _await_new_session(h, before)
        else:  # another session's frame, or a hello too long for a frame (an odd echo may be)
            expected.rejected += 1
    elif name == "hello":
        before, frame = peer.adoptions, peer.frame(link.HELLO, action[1])
        peer.write(frame)  # not recorded as a hello: it echoes no session
        if not kiosk_reads_hello(frame):
            expected.rejected += 1
        elif (hello := link.read_hello(action[1])) is not None:
            assert hello[1] != peer.nonce
            expected.renewed = True
            _await_new_session(h, before)
    elif name == "odd echo":
        fields = {key: value for key, value in action[1].items() if key != "nonce"}
        if not kiosk_reads_hello(peer.hello(fields)):  # too long for a frame: the kiosk keeps the last echo
            expected.rejected += 1
    elif name == "slot":
        peer.send(link.SLOT, action[1])
    elif name == "scan":
        peer.send(link.SCAN, action[1])
    elif name == "repeated error":
        text = f"error {action[1]} #{next(_SERIALS)}"  # unique: hypothesis may run an example twice
        frame = peer.send(link.ERROR, text.encode())
        peer.write(frame, link.ERROR, peer.nonce)
        expected.errors_once.append(text)
    elif name == "wrong way":
        peer.send(action[1], action[2])


def _await_new_session(h: Harness, before: int) -> None:
    """A hello without this session's nonce makes the kiosk start a new one: wait for it (``before``:
    the peer's adoptions before that hello was sent)."""
    assert h.peer.wait_for(lambda: h.session_open(before), 5.0), "no new session"


#: An echo ODD_JSON can make that is too long for a frame (some 600 bytes of JSON): the kiosk drops it.
TOO_LONG_ECHO = {"a": ["\U0001f600" * 12] * 4}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(actions=st.lists(ACTIONS, min_size=1, max_size=10))
@example(
    actions=[
        ("garbage", b"\x00"),
        ("odd echo", TOO_LONG_ECHO),
        ("huge", link.ERROR, 1642),
        ("hello", b""),
        ("replay", 663172),
        ("scan", b""),
    ]
)
@example(actions=[("replay hello", 1642), ("odd echo", TOO_LONG_ECHO)])
@example(actions=[("hello", json.dumps({"manifest": "x" * link.MAX_FRAME}).encode()), ("odd echo", {"fw": None})])
def test_hostile_board_frames_never_deposit_and_the_next_customer_is_served(
    harness: Harness, actions: list[tuple[Any, ...]]
) -> None:
    h = harness
    # Each sequence in a session of its own: the board restarts, so earlier ones are replayable.
    before = h.peer.adoptions
    h.peer.heartbeats.set()
    h.peer.reboot()
    _await_new_session(h, before)
    code = fresh_code()
    h.peer.send(link.SCAN, code.encode())
    assert h.peer.wait_for(lambda: h.state is State.AWAITING_DEPOSIT and h.kiosk.app.flow.screen.code == code)
    h.peer.heartbeats.clear()  # from here on only the hostile frames (exact counts)
    h.settle(f"quiet before {code}")
    scans, deposits, rejected, reports = h.backend_scans(), len(h.deposits), h.board.rejected_frames, len(h.reports)
    expected = Expected()
    for action in actions:
        act(h, action, expected)
    h.settle(f"read {code}")

    assert len(h.deposits) == deposits, "a hostile frame was taken for a deposit"
    assert h.backend_scans() == scans and not [r for r in h.reports[reports:] if r.status == "issued"]
    if expected.renewed:  # frames in flight during a new handshake may be rejected as well
        assert h.board.rejected_frames - rejected >= expected.rejected
    else:
        assert h.board.rejected_frames - rejected == expected.rejected
    for text in expected.errors_once:
        assert h.board.errors.count(text) == 1, text
    assert h.board.state == "open" and h.board.firmware == h.peer.last_echo

    h.peer.heartbeats.set()
    h.serve_next_customer()
    assert h.board.state == "open" and h.board.firmware == h.peer.last_echo
    h.check_logs()


def test_a_driver_error_is_supervised_but_a_lost_port_only_reconnects() -> None:
    """An unexpected exception in the driver's thread reaches the supervisor (logged, the driver
    restarted, and given up on when it keeps failing), never swallowed; the expected faults of a
    link (the port gone) keep the reconnect loop going without counting as failures."""

    class BrokenFilter(ScanFilter):
        def accept(self, text: str, now: float) -> str | None:
            raise RuntimeError("a bug in the scan path")

    async def scenario() -> tuple[str, dict, str]:
        loop = asyncio.get_running_loop()
        supervisor = Supervisor(max_failures=2, first_delay_s=0.05)
        first, second = BoardPeer(), BoardPeer()
        healthy = IoBoard(first.device, reopen_interval_s=0.05)
        broken = IoBoard(second.device, scan_filter=BrokenFilter())
        try:
            healthy.start(loop, lambda code: None, supervisor)
            broken.start(loop, lambda code: None, supervisor)
            await asyncio.to_thread(first.wait_for, lambda: healthy.state == "open" and broken.state == "open", 10)
            first.close()  # unplugged
            await asyncio.to_thread(first.wait_for, lambda: healthy.state == "missing", 5)
            for _ in range(2):  # the driver is restarted after the first failure, and fails again
                await asyncio.to_thread(second.wait_for, lambda: broken.state == "open", 10)
                second.send(link.SCAN, b"10HS0042")
                await asyncio.sleep(0.3)
            reason = await asyncio.wait_for(supervisor.gave_up, 10)
            return reason, supervisor.status(), healthy.state
        finally:
            healthy.stop()
            broken.stop()
            second.close()

    reason, status, healthy_state = asyncio.run(scenario())
    assert "a bug in the scan path" in reason
    broken_status = next(value for name, value in status.items() if value["state"] == "failed")
    assert "RuntimeError: a bug in the scan path" in broken_status["last_error"]
    assert healthy_state == "missing" and all(
        value["restarts"] == 0 for value in status.values() if value["state"] != "failed"
    )
