"""``kiosk run`` as the process systemd supervises: it says when it is ready, it exits non-zero when
one of its tasks keeps failing (so systemd starts a fresh one), and everything it writes (its data
folder, the journal database and its -wal and -shm files, the logo cache, the screen's frames) is
private from the first run to the next."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK
from kiosk.sim.kiosk_config import write_kiosk_config
from kiosk.sim.virtual_scanner import VirtualScanner
from tests.conftest import KIOSK, REPO
from tests.integration.hostile import fresh_code

#: A bug planted from outside the kiosk's code: the printer's monitor fails every time it starts.
_BROKEN_MONITOR = """
import kiosk.devices.printer.escpos_printer as printer

async def monitor(self, on_change):
    raise RuntimeError("a bug in the printer monitor")

printer.EscposPrinter.monitor = monitor
"""


def _run(config: Path, *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*KIOSK, "run", "--config", str(config)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_a_task_that_keeps_failing_makes_kiosk_run_exit_non_zero(backend, tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "sitecustomize.py").write_text(_BROKEN_MONITOR)
    config = write_kiosk_config(
        tmp_path / "run" / "kiosk.toml",
        backend_url=backend.url,
        token=DEMO_KIOSK_TOKEN,
        drop_point=DROP_POINT_DK,
        screen_type="web",
    )
    process = _run(config, env={"PYTHONPATH": f"{planted}{os.pathsep}{REPO}"})
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, stderr
    assert "kiosk ready" in stderr and "printer monitor failed" in stderr
    assert "giving up so the kiosk restarts" in stderr and "kiosk: stopping, printer monitor" in stderr


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_everything_the_kiosk_writes_is_private_on_the_first_run_and_the_next(backend, tmp_path: Path) -> None:
    previous = os.umask(0o022)  # as a technician's shell would have it; the kiosk must not rely on it
    try:
        _write_twice_and_check(backend, tmp_path)
    finally:
        os.umask(previous)


def _write_twice_and_check(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with VirtualScanner(terminator="cr") as scanner:
        config = write_kiosk_config(
            tmp_path / "run" / "kiosk.toml",
            backend_url=backend.url,
            token=DEMO_KIOSK_TOKEN,
            drop_point=DROP_POINT_DK,
            scanner_device=scanner.path,
        )
        data = config.parent / "data"
        for run in range(2):
            process = _run(config)
            try:
                lines = []
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline and not any("kiosk ready" in line for line in lines):
                    lines.append(process.stderr.readline())
                scanner.type(fresh_code())  # a voucher with the shop's logo, shown and captured
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not list((data / "logos").glob("*.img")):
                    time.sleep(0.1)
                time.sleep(0.5)
                written = [
                    data,
                    data / "offline.sqlite",
                    data / "offline.sqlite-wal",
                    data / "offline.sqlite-shm",
                    data / "logos",
                    *(data / "logos").iterdir(),
                    config.parent / "screen",
                    *(config.parent / "screen").iterdir(),
                ]
                loose = {
                    str(path.relative_to(config.parent)): oct(_mode(path)) for path in written if _mode(path) & 0o077
                }
                assert loose == {}, f"run {run + 1}: readable by others: {loose}"
                assert len(list((data / "logos").glob("*.img"))) >= 1
            finally:
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=15) == 0
