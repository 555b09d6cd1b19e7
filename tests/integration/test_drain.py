"""kiosk drain against a listener on a real Unix socket: it answers once the flow is idle, holds
new scans, and the command's exit codes tell the health gate what happened."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kiosk.drain import DrainListener

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def drain_command(socket: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "drain", "--socket", str(socket), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


class Kiosk:
    """A listener on its own event loop, with a flow that is busy until told otherwise."""

    def __init__(self, path: Path) -> None:
        self.idle = threading.Event()
        self.holds: list[float] = []
        self.loop = asyncio.new_event_loop()
        self.listener = DrainListener(path, self.idle.is_set, self.holds.append)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.listener.start(), self.loop).result(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.listener.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_drain_waits_for_the_customer_then_holds_new_scans(tmp_path: Path) -> None:
    socket = tmp_path / "run/control.sock"
    kiosk = Kiosk(socket)
    try:
        assert stat.S_IMODE(socket.stat().st_mode) & 0o077 == 0
        process = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "drain", "--socket", str(socket), "--hold-s", "7"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        while not kiosk.holds:  # the request arrived; the flow is still busy, so no answer yet
            threading.Event().wait(0.05)
        assert process.poll() is None
        kiosk.idle.set()
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 0 and "idle; new scans are held for 7 s" in out
        assert kiosk.holds == [7.0]
        kiosk.idle.clear()  # the next customer
        busy = drain_command(socket, "--timeout-s", "0.5")
        assert busy.returncode == 1 and "not idle within 0.5 s" in busy.stdout
    finally:
        kiosk.close()
    assert not socket.exists()


def test_no_kiosk_running_is_nothing_to_drain_and_a_stranger_is_told_apart(tmp_path: Path) -> None:
    nothing = drain_command(tmp_path / "none.sock")
    assert nothing.returncode == 0 and "nothing to drain" in nothing.stdout
    socket = tmp_path / "other.sock"
    kiosk = Kiosk(socket)
    try:
        kiosk.idle.set()
        bad = drain_command(socket, "--hold-s", "9999")
        assert bad.returncode == 2 and "did not understand" in bad.stdout
        assert kiosk.holds == []
    finally:
        kiosk.close()
