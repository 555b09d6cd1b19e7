"""Shared fixtures: real processes and servers on loopback, started and stopped per test."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiosk.sim.httpd import LoopbackHTTPServer

REPO = Path(__file__).resolve().parent.parent
KIOSK = [sys.executable, "-m", "kiosk.cli"]


class BackendProcess:
    """``kiosk sim backend`` as a child process, with the URLs it printed when ready."""

    def __init__(self, db: Path, *extra: str) -> None:
        self.db = db
        self.process = subprocess.Popen(
            [*KIOSK, "sim", "backend", "--db", str(db), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            raise RuntimeError(f"backend did not start: {self.process.stderr.read() if self.process.stderr else ''}")
        self.ready = json.loads(line)
        self.url: str = self.ready["url"]

    @property
    def webhook_control(self) -> str:
        return self.ready["webhook"].rsplit("/rezip/", 1)[0]

    def set_webhook_mode(self, mode: str) -> None:
        httpx.post(self.webhook_control + "/_sim/mode", json={"mode": mode}).raise_for_status()

    def state(self) -> dict:
        return httpx.get(self.url + "/_sim/state").json()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()


def require_runtime(available: bool, what: str) -> None:
    """The one rule for a runtime that ``make test`` installs (node and firmware/node_modules): a
    test that needs it is skipped, with the reason, when it is missing, except under ``make test``
    (``KIOSK_TESTS_COMPLETE=1``), where a missing runtime is a failure: CI never passes untested."""
    if available:
        return
    message = f"{what} missing (`make test` installs it)"
    if os.environ.get("KIOSK_TESTS_COMPLETE") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def micropython() -> None:
    """Node with the pinned MicroPython WebAssembly package (see ``require_runtime``)."""
    from kiosk.sim.virtual_board import simulator_available

    require_runtime(simulator_available(), "node and firmware/node_modules")


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[BackendProcess]:
    """The seeded stand-in backend (with its shop webhook) and a kiosk configuration for it."""
    process = BackendProcess(
        tmp_path / "backend.sqlite",
        "--seed",
        "demo",
        "--webhook-timeout",
        "0.5",
        "--kiosk-config",
        str(tmp_path / "kiosk.toml"),
    )
    try:
        yield process
    finally:
        process.stop()


class QuietHandler(BaseHTTPRequestHandler):
    """A test server's request handler that keeps the test output clean."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: object) -> None:
        pass


def serve_on_loopback(handler: type[BaseHTTPRequestHandler]) -> tuple[LoopbackHTTPServer, str]:
    """Start a threaded HTTP server on a free loopback port; returns it and its URL."""
    httpd = LoopbackHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


async def wait_until(condition, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` on the event loop until it holds; fail the test if it never does."""
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def run_kiosk(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the ``kiosk`` command in a child process."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [*KIOSK, *args], input=input, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env
    )


async def cancel_running(task: asyncio.Future[Any]) -> bool:
    """Whether ``task`` was still running (a long-lived task that must not end); it is cancelled
    and awaited either way."""
    running = not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return running


def child_processes(pid: int) -> set[int]:
    """Process ``pid``'s children, from /proc (none once it is gone)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        return {int(child) for task in tasks for child in (task / "children").read_text().split()}
    except FileNotFoundError:
        return set()
