"""systemd integration: the notify protocol checked on a real NOTIFY_SOCKET datagram socket the test
owns (READY, WATCHDOG pings that stop while the flow loop is blocked and come back when it is
freed, STATUS lines), the journal's native entries, and the units checked by systemd-analyze."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.app import ScreenOutput
from kiosk.config import Config
from kiosk.fleet.journal import JournalHandler, encode_entry
from kiosk.fleet.notify import Notifier, watchdog_interval_s
from kiosk.presentation.view import ScreenView
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK
from kiosk.sim.kiosk_config import write_kiosk_config
from tests.conftest import KIOSK, REPO
from tests.integration.hostile import KioskHarness, fresh_code

pytestmark = pytest.mark.integration


class NotifySocket:
    """The systemd side: a datagram socket whose messages the test reads in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(10)

    def next(self) -> dict[str, str]:
        data = self.sock.recv(4096).decode("utf-8")
        return dict(line.split("=", 1) for line in data.split("\n") if line)

    def until(self, wanted: str, limit: int = 200) -> list[dict[str, str]]:
        """Messages up to and including the first with field ``wanted``."""
        seen = []
        for _ in range(limit):
            message = self.next()
            seen.append(message)
            if wanted in message:
                return seen
        raise AssertionError(f"no {wanted} in {limit} messages: {seen[-3:]}")

    def close(self) -> None:
        self.sock.close()


class BlockingScreen:
    """The seam: the real screen, whose ``show`` can be made to hang (a wedged flow loop)."""

    def __init__(self, screen: ScreenOutput) -> None:
        self.screen = screen
        self.unblock: asyncio.Event | None = None

    async def show(self, view: ScreenView) -> int:
        if self.unblock is not None:
            await self.unblock.wait()
        return await self.screen.show(view)

    async def settled(self, seq: int) -> bytes | None:
        return await self.screen.settled(seq)


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    listener = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(listener.path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # a ping every 0.2 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    yield listener
    listener.close()


def quick_probes(config: Config) -> Config:
    return dataclasses.replace(config, watchdog=dataclasses.replace(config.watchdog, probe_timeout_s=0.15))


def test_ready_then_pings_that_stop_while_the_flow_loop_is_blocked(tmp_path: Path, notify: NotifySocket) -> None:
    with KioskHarness(tmp_path, adjust=quick_probes) as kiosk:
        ready = notify.until("READY")[-1]
        assert ready["READY"] == "1" and ready["MAINPID"] == str(os.getpid())
        assert " · " in ready["STATUS"] and "offline codes" in ready["STATUS"]
        for _ in range(3):
            ping = notify.until("WATCHDOG")[-1]
            assert ping["WATCHDOG"] == "1" and ping["STATUS"].endswith("online")
        seam = BlockingScreen(kiosk.kiosk.app.screen)

        async def block() -> None:
            seam.unblock = asyncio.Event()
            kiosk.kiosk.app.screen = seam
            kiosk.kiosk.app.scan(fresh_code())  # its "issuing" screen never goes up: the loop hangs there

        kiosk.call(block())
        wedged = [m for m in notify.until("STATUS", 50) if "not answering" in m.get("STATUS", "")]
        while not wedged:
            message = notify.next()
            wedged = [message] if "not answering" in message.get("STATUS", "") else []
        assert wedged[0]["STATUS"] == "not answering: flow loop" and "WATCHDOG" not in wedged[0]
        # While it stays blocked, no ping: only the status saying why.
        following = [notify.next() for _ in range(5)]
        assert all("WATCHDOG" not in m and m["STATUS"] == "not answering: flow loop" for m in following), following

        async def release() -> None:
            assert seam.unblock is not None
            seam.unblock.set()
            kiosk.kiosk.app.screen = seam.screen

        kiosk.call(release())
        assert notify.until("WATCHDOG", 50)[-1]["WATCHDOG"] == "1"
        kiosk.quiet()
        report = kiosk.scan(fresh_code())  # the next customer is served as ever
        assert report.status == "issued" and report.voucher is not None
        assert kiosk.log_problems([report.voucher.code, report.voucher.link or ""]) == []
    assert notify.until("STOPPING")[-1]["STOPPING"] == "1"


def test_the_watchdog_is_ours_only() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({}) is None
    assert not Notifier(None).notify(READY="1")


def test_abstract_socket_and_one_line_values() -> None:
    name = f"kiosk-test-{os.getpid()}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("\0" + name)
    listener.settimeout(5)
    try:
        notifier = Notifier("@" + name)
        assert notifier.notify(STATUS="idle\nWATCHDOG=1\x1b[2J")
        assert listener.recv(1000) == b"STATUS=idle WATCHDOG=1 [2J"
        notifier.close()
    finally:
        listener.close()


def test_journal_entries_are_native_with_fields(tmp_path: Path) -> None:
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(str(tmp_path / "journal.sock"))
    journal.settimeout(5)
    stream = (tmp_path / "fallback.log").open("w")
    handler = JournalHandler(stream, address=str(tmp_path / "journal.sock"), context=lambda: {"KIOSK_STATE": "issuing"})
    logger = logging.getLogger("kiosk.test.journal")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("scan %s: failed", 12, extra={"scan_id": 12})
        entry = journal.recv(65536)
        assert b"PRIORITY=3\n" in entry and b"SCAN_ID=12\n" in entry and b"KIOSK_STATE=issuing\n" in entry
        assert b"MESSAGE=scan 12: failed\n" in entry and b"SYSLOG_IDENTIFIER=kiosk\n" in entry
        try:
            raise ValueError("boom")
        except ValueError:
            logger.warning("with a traceback", exc_info=True)
        entry = journal.recv(65536)
        head = entry.index(b"MESSAGE\n") + len(b"MESSAGE\n")
        (length,) = struct.unpack("<Q", entry[head : head + 8])
        message = entry[head + 8 : head + 8 + length]
        assert message.startswith(b"with a traceback\nTraceback") and b"ValueError: boom" in message
        assert b"PRIORITY=4\n" in entry
    finally:
        logger.removeHandler(handler)
        handler.close()
        journal.close()
        stream.close()
    assert encode_entry({"A": "b"}) == b"A=b\n"


def _filled(unit: Path, prefix: Path) -> Path:
    text = unit.read_text().replace("@PREFIX@", str(prefix)).replace("@USER@", "root").replace("@COMPOSITOR@", "cage")
    out = prefix / unit.name
    out.write_text(text)
    return out


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (Debian: systemd)"
)
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    for program in (tmp_path / ".venv/bin/kiosk", tmp_path / "hardware/kiosk-screen"):
        program.parent.mkdir(parents=True, exist_ok=True)
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    units = [_filled(path, tmp_path) for path in sorted((REPO / "hardware/systemd").glob("*.service"))]
    kiosk_unit = next(unit for unit in units if unit.name == "rezip-kiosk.service").read_text()
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30", "Restart=on-failure"):
        assert line in kiosk_unit.splitlines()
    for unit in units:
        done = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
        )
        complaints = [line for line in done.stderr.splitlines() if unit.name in line]
        assert done.returncode == 0 and complaints == [], done.stderr
    broken = tmp_path / "broken" / "rezip-kiosk.service"
    broken.parent.mkdir()
    broken.write_text(kiosk_unit.replace("Type=notify", "Type=notifyy").replace("WatchdogSec=30", "WatchdogSecs=30"))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(broken)], capture_output=True, text=True)
    assert "WatchdogSecs" in done.stderr  # the check can fail: a misspelt key is reported


def test_kiosk_run_as_systemd_runs_it(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The real command with the environment systemd gives a Type=notify unit with WatchdogSec=."""
    listener = NotifySocket(tmp_path / "notify.sock")
    config = write_kiosk_config(
        tmp_path / "run" / "kiosk.toml",
        backend_url=backend.url,
        token=DEMO_KIOSK_TOKEN,
        drop_point=DROP_POINT_DK,
        screen_type="web",
    )
    env = {**os.environ, "NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": "1000000"}
    process = subprocess.Popen(
        [*KIOSK, "run", "--config", str(config)], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        ready = listener.until("READY")[-1]
        assert ready["MAINPID"] == str(process.pid) and "offline codes" in ready["STATUS"]
        pings = [listener.until("WATCHDOG")[-1] for _ in range(2)]
        assert all(ping["WATCHDOG"] == "1" for ping in pings)
        process.send_signal(signal.SIGTERM)
        assert listener.until("STOPPING")[-1]["STOPPING"] == "1"
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr and DEMO_KIOSK_TOKEN not in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        listener.close()
